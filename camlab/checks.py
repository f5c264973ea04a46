"""Every input check of camlab, in one place: one behaviour for every public function.

Each check takes what a learner passed, returns it in the one form camlab
computes with, or raises an ``InputError`` (a ``CamlabError``) that says what
to pass instead. The rules are the same everywhere:

- images: float (N, H, W, C), or one image (H, W, C), finite, fitting the model;
- class indices: None (the predicted class), an int, or one int per image, in range;
- maps: float (N, h, w), or one map (h, w), finite: NaN or Inf is an error in
  every function that takes maps, never a silent answer;
- boxes: (x_min, y_min, x_max, y_max), whole, inclusive pixel coordinates;
  None or a row of -1 is "no box"; NaN, fractions, negative corners and
  inverted boxes are errors;
- class names: one per class; labels: one int class per image.

Nothing here imports TensorFlow or Keras: the checks run before any model does.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from camlab.errors import ClassIndexError, InputError

INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area", "lanczos3")
MODIFIERS = (None, "guided", "relu")  # how gradients pass back through ReLUs (camlab.backprop)


# --- Images and classes -----------------------------------------------------------------

def as_image_batch(images, input_shape) -> np.ndarray:
    """Check ``images`` against a model input (H, W, C) and return float32 (N, H, W, C).

    Accepts one image (H, W, C) or a batch (N, H, W, C); for one-channel models
    also (H, W) and (N, H, W). Integer images are refused (scale them as the
    model was trained), as are NaN and Inf.
    """
    if hasattr(images, "numpy"):  # a tf.Tensor or a Keras variable
        images = images.numpy()
    array = _numeric(images, "images", "one array (N, H, W, C) of equally sized images")
    expected = tuple(input_shape)
    shown = "(N, " + ", ".join("?" if d is None else str(d) for d in expected) + ")"
    if array.dtype.kind in "iub":
        raise InputError(
            f"images have dtype {array.dtype}; the model expects float images "
            "scaled as in training. Convert them first, e.g. "
            "images.astype('float32') / 255 for a model trained on [0, 1] pixels."
        )
    if array.ndim == 3 and expected[-1] == 1 and array.shape[-1] != 1:
        array = array[..., np.newaxis]  # (N, H, W) grayscale batch
    elif array.ndim == 2 and expected[-1] == 1:
        array = array[np.newaxis, ..., np.newaxis]  # one (H, W) grayscale image
    if array.ndim == 3:
        array = array[np.newaxis]
    if array.ndim != 4:
        raise InputError(
            f"images have shape {np.shape(images)}; pass one image (H, W, C) or a "
            f"batch (N, H, W, C); this model expects {shown}."
        )
    for got, want in zip(array.shape[1:], expected):
        if want is not None and got != want:
            raise InputError(
                f"images have shape {np.shape(images)} but the model expects {shown}. "
                "Resize or reshape them to the model's input size first."
            )
    if len(array) == 0:
        raise InputError("images is an empty batch; pass at least one image.")
    if not np.isfinite(array).all():
        raise InputError(
            f"images contain {int(np.isnan(array).sum())} NaN and "
            f"{int(np.isinf(array).sum())} Inf values (in images {_bad_images(array)}). "
            "Fix or drop those images first."
        )
    # float32 and narrower cannot hold a finite value beyond float32's range: one pass fewer
    largest = float(np.abs(array).max()) if array.dtype.itemsize > 4 else 0.0
    if largest > float(np.finfo("float32").max):
        raise InputError(
            f"images hold values up to {largest:.3g}, which overflow float32 (the "
            f"largest float32 is {np.finfo('float32').max:.3g}), the type models compute "
            "in. Scale the images as the model was trained, e.g. to [0, 1]."
        )
    return array.astype("float32", copy=False)


def _bad_images(array) -> str:
    """'[3, 7]': the first five images holding a NaN or Inf value."""
    bad = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
    return f"{bad[:5].tolist()}{' ...' if len(bad) > 5 else ''}"


def class_indices(class_index, count, num_classes) -> np.ndarray:
    """Turn ``class_index`` into int32 (count,); -1 means "the predicted class"."""
    if class_index is None:
        return np.full(count, -1, dtype="int32")
    if isinstance(class_index, (bool, np.bool_)):
        raise InputError("class_index must be an int or a sequence of ints, not a bool.")

    def out_of_range(value):
        return ClassIndexError(
            f"class_index {value} is out of range: this model has "
            f"{num_classes} classes, so use 0 .. {num_classes - 1}."
        )

    if isinstance(class_index, numbers.Integral):
        if not -1 < int(class_index) < num_classes:
            raise out_of_range(int(class_index))
        indices = np.full(count, int(class_index), dtype="int64")
    else:
        try:
            indices = np.asarray(class_index)
        except (ValueError, TypeError):
            indices = np.asarray(class_index, dtype=object)
        if indices.dtype == object and indices.ndim == 1 and all(
                isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
                for v in indices):  # ints too large for int64
            raise out_of_range(next(v for v in indices if not -1 < v < num_classes))
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise InputError(
                "class_index must be None, an int, or a sequence of ints (one per "
                f"image); got {type(class_index).__name__} with shape {indices.shape}"
                f" and dtype {indices.dtype}."
            )
        if len(indices) != count:
            raise InputError(
                f"class_index has {len(indices)} entries for {count} images; give "
                "one class per image, or one int for all."
            )
    bad = (indices < 0) | (indices >= num_classes)
    if bad.any():
        raise out_of_range(indices[bad][0])
    return indices.astype("int32")


def check_labels(labels, count, num_classes):
    """True classes: None, or int64 (count,) in 0 .. num_classes - 1."""
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != count or array.dtype.kind not in "iu":
        raise InputError(
            f"labels must hold one integer class per image ({count}); got shape "
            f"{array.shape} and dtype {array.dtype}."
        )
    if ((array < 0) | (array >= num_classes)).any():
        raise ClassIndexError(
            f"labels must lie in 0 .. {num_classes - 1} (the model has {num_classes} "
            f"classes); got values {array.min()} .. {array.max()}."
        )
    return array.astype("int64")


def class_names_for(class_names, num_classes) -> tuple:
    """One name per class, as strings; None gives "0", "1", ..."""
    if class_names is None:
        return tuple(str(c) for c in range(num_classes))
    if isinstance(class_names, (str, bytes, dict)) or not hasattr(class_names, "__iter__"):
        raise InputError(
            f"class_names must be a sequence of names, one per class, in class order (for a "
            f"dict {{index: name}}, pass [names[i] for i in range(n)]); got {class_names!r:.80}."
        )
    names = tuple(str(n) for n in class_names)
    if len(names) != num_classes:
        raise InputError(
            f"class_names has {len(names)} names but the model has {num_classes} "
            "classes; give one name per class."
        )
    return names


def check_named(name, indices, class_names) -> None:
    """Every class index in ``indices`` (called ``name``) has a name in ``class_names``."""
    if indices is None or class_names is None:
        return
    values = np.asarray(indices).reshape(-1)
    if values.dtype.kind not in "iu":
        raise InputError(f"{name} must hold class indices (ints); got dtype {values.dtype}.")
    outside = values[(values < 0) | (values >= len(class_names))]
    if len(outside):
        raise InputError(
            f"{name} holds class {int(outside[0])}, but class_names has {len(class_names)} "
            f"names (classes 0 .. {len(class_names) - 1}). Pass the model's class names."
        )


# --- Options of explain and its friends -------------------------------------------------

def check_method(method, registry):
    """The registered entry of ``method``, a name in ``registry`` (``camlab.METHODS``)."""
    if not isinstance(method, str) or method not in registry:
        raise InputError(f"Unknown method {method!r}; camlab has {sorted(registry)}.")
    return registry[method]


def check_modifier(modifier):
    """``modifier``: None, "guided" or "relu"."""
    if not (modifier is None or isinstance(modifier, str)) or modifier not in MODIFIERS:
        raise InputError(f"modifier must be one of {MODIFIERS}; got {modifier!r}.")
    return modifier


def check_batch_size(batch_size):
    """``batch_size``: None (the default for the image size) or a positive int."""
    if batch_size is not None and (
            isinstance(batch_size, (bool, np.bool_))
            or not isinstance(batch_size, numbers.Integral) or batch_size < 1):
        raise InputError(
            f"batch_size must be a positive int (images per compiled call), or None for "
            f"the default; got {batch_size!r}."
        )
    return batch_size


def check_interpolation(method) -> str:
    """An interpolation name of ``tf.image.resize``: one of ``INTERPOLATIONS``."""
    if not isinstance(method, str) or method not in INTERPOLATIONS:
        raise InputError(f"method must be one of {INTERPOLATIONS}, got {method!r}.")
    return method


def upsample_option(upsample):
    """``explain``'s ``upsample``: True -> "bilinear", False or None -> None, or a name."""
    if upsample is True:
        return "bilinear"
    if upsample is False or upsample is None:
        return None
    if isinstance(upsample, str) and upsample in INTERPOLATIONS:
        return upsample
    raise InputError(f"upsample must be True, False or one of {INTERPOLATIONS}; got {upsample!r}.")


def check_size(size) -> tuple:
    """(H, W): two positive ints."""
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise InputError(f"size must be (H, W), two positive ints; got {size!r}.") from None
    if height < 1 or width < 1:
        raise InputError(f"size must be (H, W), two positive ints; got {size!r}.")
    return height, width


def check_threshold(threshold) -> float:
    """A fraction of a map's maximum, in [0, 1]."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise InputError(f"threshold is a fraction of the map's maximum, in [0, 1]; got {threshold}.")
    return value


# --- Maps and boxes ---------------------------------------------------------------------

def as_maps(maps, name="maps", *, single=True):
    """Check maps and return them as float (N, h, w), and whether one map was given.

    Accepts one map (h, w) when ``single``, else only a batch (N, h, w). Refuses,
    with an ``InputError`` that says what to pass: non-numeric values, other
    ranks, maps with no pixels, and NaN or Inf, so that every function that
    takes maps treats NaN the same way: as an error, never a silent answer.
    Float maps keep their float type; others become float32.
    """
    wanted = "one map (h, w) or a batch (N, h, w)" if single else "a batch (N, h, w)"
    array = _numeric(maps, name, wanted)
    if array.ndim == 2 and single:
        array, one = array[np.newaxis], True
    elif array.ndim == 3:
        one = False
    else:
        raise InputError(f"{name} must be {wanted}; got shape {array.shape}."
                         + ("" if single or array.ndim != 2 else
                            " For one map pass maps[np.newaxis]."))
    if 0 in array.shape[1:]:
        raise InputError(f"{name} have shape {array.shape}: a map needs at least one pixel.")
    array = array.astype("float32" if array.dtype.kind != "f" else array.dtype, copy=False)
    if not np.isfinite(array).all():
        raise InputError(
            f"{name} contain {int(np.isnan(array).sum())} NaN and "
            f"{int(np.isinf(array).sum())} Inf values; camlab's maps are always finite. "
            "Replace them first, e.g. np.nan_to_num(maps)."
        )
    return array, one


def as_finite_float32(values, name, shapes) -> np.ndarray:
    """Any numeric array as float32, or an ``InputError``: not numbers, NaN, Inf, or
    values beyond float32's range. ``shapes`` says what to pass, e.g. "(H, W, C)"."""
    array = _numeric(values, name, f"a numeric array {shapes}")
    with np.errstate(over="ignore"):  # beyond float32: Inf, refused below
        array = array.astype("float32", copy=False)
    if not np.isfinite(array).all():
        raise InputError(
            f"{name} contain NaN or Inf values, or values beyond float32's range (about "
            "3.4e38), the type camlab computes in; replace them first, e.g. np.nan_to_num.")
    return array


def _numeric(values, name, wanted) -> np.ndarray:
    """``values`` as a NumPy array of numbers, or an ``InputError`` asking for ``wanted``."""
    try:
        array, ragged = np.asarray(values), ""
    except (ValueError, TypeError):  # rows of unequal sizes
        array = np.asarray(values, dtype=object)
        ragged = " Its rows differ in size: make them equal, then np.stack them."
    if array.dtype == object or array.dtype.kind not in "fiub":
        raise InputError(f"{name} must be {wanted} of numbers; got {type(values).__name__} of "
                         f"dtype {array.dtype}.{ragged}")
    return array


def as_map_batch(maps, name="maps") -> np.ndarray:
    """A batch of maps (N, h, w), checked as ``as_maps``, as float64 (for scores)."""
    return as_maps(maps, name, single=False)[0].astype("float64")


NO_BOX = (-1, -1, -1, -1)


def box_table(boxes, count=None, size=None) -> np.ndarray:
    """Boxes as int64 (N, 4); None, or the row (-1, -1, -1, -1), is "no box".

    ``boxes``: an (N, 4) array, or a list of ``(x_min, y_min, x_max, y_max)``
    boxes and Nones: whole, non-negative pixel coordinates, inclusive, with
    x_min <= x_max and y_min <= y_max. Given ``size`` = (H, W), every box must
    fit in it; given ``count``, there must be that many boxes. Anything else
    (NaN, fractions, a negative corner, an inverted box, a box past the edge)
    is an ``InputError`` that says what to pass: never a silent miss.
    """
    if isinstance(boxes, (str, bytes)) or not hasattr(boxes, "__len__"):
        raise InputError(f"boxes must be (N, 4) numbers or a list of boxes; got {boxes!r}.")
    if isinstance(boxes, np.ndarray) and boxes.dtype != object and boxes.ndim != 2:
        raise InputError(f"boxes must be (N, 4) rows (x_min, y_min, x_max, y_max); got "
                         f"shape {boxes.shape}.")

    def row(box):
        if box is None:
            return NO_BOX
        values = np.asarray(box)
        if values.shape != (4,) or values.dtype.kind not in "iuf" \
                or not np.isfinite(values).all():
            raise InputError(
                f"a box is (x_min, y_min, x_max, y_max), four finite numbers, or None; "
                f"got {box!r}."
            )
        if (values != np.round(values)).any():
            raise InputError(f"a box holds whole pixel coordinates; got {box!r}. Round them "
                             "first, e.g. np.round(box).astype(int).")
        whole = tuple(int(v) for v in values)
        if whole == NO_BOX:
            return NO_BOX
        if min(whole) < 0:
            raise InputError(f"box {whole} has a negative corner: pixel coordinates start at 0. "
                             "Clip it to the image first; None or (-1, -1, -1, -1) means no box.")
        if whole[2] < whole[0] or whole[3] < whole[1]:
            raise InputError(f"box {whole} has x_max < x_min or y_max < y_min; boxes are "
                             "(x_min, y_min, x_max, y_max), inclusive.")
        if size is not None and (whole[2] >= size[1] or whole[3] >= size[0]):
            raise InputError(f"box {whole} does not fit in {size[1]}x{size[0]} pixels (the last "
                             f"column is {size[1] - 1}, the last row {size[0] - 1}): boxes are "
                             "inclusive pixel coordinates of the map.")
        return whole

    table = np.array([row(box) for box in boxes], dtype="int64").reshape(-1, 4)
    if count is not None and len(table) != count:
        raise InputError(f"{count} maps but {len(table)} boxes; pass one box per map.")
    return table


# --- Numbers ----------------------------------------------------------------------------

def check_count(value, name="count", low=1) -> int:
    """A whole number, at least ``low`` (a seed: ``check_count(seed, "seed", low=0)``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{name} must be a whole number, at least {low}; got {value!r}.")
    return int(value)


def _is_finite_number(value) -> bool:
    try:  # math.isfinite: any Python int, where np.isfinite refuses one beyond int64
        return math.isfinite(value)
    except OverflowError:  # an int beyond float64's range
        return False


def check_number(value, name, *, low=None, high=None, positive=False) -> float:
    """A finite real number, optionally in [low, high] or > 0."""
    finite = (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
              and _is_finite_number(value))
    if not finite or (low is not None and value < low) or (high is not None and value > high) \
            or (positive and value <= 0):
        where = ("> 0" if positive else f"in [{low}, {high}]" if high is not None
                 else f">= {low}" if low is not None else "finite")
        raise InputError(f"{name} must be a number {where}; got {value!r}.")
    return float(value)
