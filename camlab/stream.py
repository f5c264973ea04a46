"""Images as a stream: an array or a ``tf.data.Dataset``, read as checked batches.

Every map method (``camlab.explain``) and every metric that runs the model
takes its images through ``image_source`` (and its maps through ``paired``),
so an array in memory and a dataset that never is go down one path:

- an array (N, H, W, C) is checked whole, then cut into batches;
- a ``tf.data.Dataset`` is checked by its ``element_spec`` before anything
  runs, then read one batch at a time: only that batch is in memory. Its
  elements are float images, batched (B, H, W, C) or single (H, W, C) (then
  batched here, ``batch_size`` at a time), alone or as (images, labels) with
  int labels (B,) (or ()) that choose the class of each image, as
  ``class_index`` does for arrays (giving both is an error);
- ``count`` (a number of images) bounds a dataset: it is needed for an endless
  one (``repeat()`` without ``take``) and may shorten any other.

A dataset's batches stay TensorFlow tensors, handed to the compiled pipeline
as they come (no copy through NumPy): their size is checked as each arrives,
their values (finite) inside the pipeline's own pass (``camlab.passes``), and
a batch that fails gets the error an array gets (``camlab.checks.as_image_batch``),
naming the batch's first image (``Images.check``). The metrics, which work on
NumPy, take each batch checked (``paired``). The rules on a dataset's
structure are the ``check_*`` functions below.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from camlab import graph
from camlab.anatomy import read_model
from camlab.checks import as_image_batch, as_maps, check_count, check_labels, class_indices
from camlab.errors import InputError

# ----------------------------------------------------------------------------
# The checks of a dataset, by its element_spec: nothing runs before they pass
# ----------------------------------------------------------------------------


def _dims(spec):
    shape = getattr(spec, "shape", None)
    return None if shape is None or shape.rank is None else tuple(shape.as_list())


def _found(spec) -> str:
    """'(float32 (None, 8, 8, 3), int64 (None,))': what a dataset's element holds."""
    if isinstance(spec, (tuple, list)):
        return "(" + ", ".join(_found(part) for part in spec) + ")"
    if isinstance(spec, dict):
        return "{" + ", ".join(f"{k!r}: {_found(v)}" for k, v in spec.items()) + "}"
    kind = "" if type(spec).__name__ == "TensorSpec" else f"{type(spec).__name__} "
    dtype = getattr(getattr(spec, "dtype", None), "name", "?")
    dims = _dims(spec)
    return f"{kind}{dtype} {'of unknown rank' if dims is None else dims}"


def check_image_spec(spec, input_shape, name="images"):
    """(batched, labelled, (H, W, C)) of a dataset of images, from its ``element_spec``.

    Accepts float images (B, H, W, C) or (H, W, C), alone or with int labels
    (B,) or (). (H, W, C) must fit the model's ``input_shape`` and be known.
    """
    shown = ", ".join("?" if d is None else str(d) for d in input_shape)
    wanted = (f"float images (B, {shown}) (or single images ({shown})), alone or as (images, "
              "labels) with int labels (B,)")
    parts = tuple(spec) if isinstance(spec, tuple) else (spec,)
    if len(parts) not in (1, 2) or any(type(p).__name__ != "TensorSpec" for p in parts):
        raise InputError(f"Each element of the {name} dataset is {_found(spec)}; camlab expects "
                         f"{wanted}. Map it to that first, e.g. dataset.map(lambda x, y, w: (x, y)) "
                         "(ragged images: resize them to one size).")
    images, labels = parts[0], (parts[1] if len(parts) == 2 else None)
    dims = _dims(images)
    if dims is None or len(dims) not in (3, 4) or any(
            None not in (got, want) and got != want for got, want in zip(dims[-3:], input_shape)):
        raise InputError(f"The {name} dataset gives images {_found(images)}; this model expects "
                         f"{wanted}. Resize or reshape them first (dataset.map(...)); for a batch, "
                         "dataset.batch(32).")
    if not images.dtype.is_floating:
        raise InputError(f"The {name} dataset gives {images.dtype.name} images; the model expects "
                         "float images scaled as in training, e.g. dataset.map(lambda x, y: "
                         "(tf.cast(x, tf.float32) / 255, y)) for a model trained on [0, 1] pixels.")
    batched = len(dims) == 4
    if labels is not None and (not labels.dtype.is_integer or _dims(labels) is None
                               or len(_dims(labels)) != batched):
        raise InputError(f"The {name} dataset's labels are {_found(labels)}; camlab expects int "
                         f"class indices, {'(B,) for (B, H, W, C) images' if batched else '()'}. "
                         "For one-hot labels map them: dataset.map(lambda x, y: (x, tf.argmax(y, -1))).")
    shape = tuple(want if want is not None else got for got, want in zip(dims[-3:], input_shape))
    if None in shape:
        raise InputError(f"The {name} dataset's images are {_found(images)} and the model takes "
                         f"({shown}): camlab needs the image size. Fix it in the dataset: "
                         "dataset.map(lambda x: tf.ensure_shape(x, (None, H, W, C))).")
    return batched, labels is not None, shape


def check_map_spec(spec, batched, size, name="maps"):
    """A dataset of maps aligned with the images: float (B, H, W) ((H, W) if the images come
    one by one), with H, W = ``size``, the images' size."""
    wanted = f"float maps {'(B, ' if batched else '('}{size[0]}, {size[1]}), one per image"
    dims = _dims(spec)
    if (type(spec).__name__ != "TensorSpec" or not spec.dtype.is_floating or dims is None
            or len(dims) != 2 + batched
            or any(got not in (None, want) for got, want in zip(dims[-2:], size))):
        raise InputError(f"Each element of the {name} dataset is {_found(spec)}; camlab expects "
                         f"{wanted}, batched as the images (compute them with upsample=True).")


def check_stream_count(count, cardinality, name="images"):
    """``count`` (None or a whole number of images); None is refused for an endless dataset."""
    if count is not None:
        return check_count(count, "count")
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise InputError(f"The {name} dataset never ends (its cardinality is infinite: repeat() "
                         "without take()); pass count=N, the number of images to use, or "
                         "dataset.take(...).")
    return None


def check_labels_or_class(labelled, class_index):
    """A dataset of (images, labels) chooses its classes: ``class_index`` must then be None."""
    if labelled and class_index is not None:
        raise InputError("The dataset gives (images, labels): its labels choose the class of each "
                         "image, so leave class_index=None (or drop the labels: "
                         "dataset.map(lambda x, y: x)).")


# ----------------------------------------------------------------------------
# Sources of batches
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Images:
    """Images read batch by batch: ``batches(size)`` yields (offset, images float32
    (B, H, W, C), labels int (B,) or None); ``shape`` is (H, W, C).

    An array's batches are NumPy slices of the array, checked whole. A dataset's
    are ``tf.Tensor``s as the dataset gives them (``size`` batches single
    images; batched ones come as they are), of the model's size but with their
    values not yet checked: ``check(images, offset)`` does that (an ``InputError``
    naming the batch) and returns them as NumPy.
    """

    shape: tuple
    labelled: bool
    batches: Callable
    dataset: Optional[tf.data.Dataset] = None  # None for an array
    total: Optional[int] = None  # the number of images of an array
    batched: bool = False  # a dataset of batches (B, H, W, C), read as they come
    name: str = "images"

    def check(self, images, offset) -> np.ndarray:
        """A batch from ``batches`` as checked float32 NumPy (``as_image_batch``)."""
        return images if self.dataset is None else _checked(images, self.shape, offset, self.name)


def _checked(images, shape, offset, name) -> np.ndarray:
    """One batch of a dataset, checked as an array is; the error names the batch."""
    try:
        return as_image_batch(images, shape)
    except InputError as error:
        raise InputError(f"In the {name} dataset's batch from image {offset} on: "
                         f"{error}") from None


def is_dataset(value) -> bool:
    return isinstance(value, tf.data.Dataset)


def image_source(model, images, count=None, name="images") -> Images:
    """``images`` (an array or a dataset, see the module docstring) as an ``Images`` source."""
    expected = graph.model_input_shape(model)
    if not is_dataset(images):
        if hasattr(images, "element_spec"):  # a tf.distribute DistributedDataset
            raise InputError(f"{name} is a distributed dataset; pass the tf.data.Dataset itself "
                             "and the strategy as strategy= (or in its scope): camlab splits it.")
        if count is not None:
            raise InputError(f"count= bounds a tf.data.Dataset; for an array pass {name}[:count].")
        batch = as_image_batch(images, expected)
        return Images(batch.shape[1:], False, lambda size: (
            (start, batch[start:start + size], None) for start in range(0, len(batch), size)),
            total=len(batch))
    batched, labelled, shape = check_image_spec(images.element_spec, expected, name)
    count = check_stream_count(count, int(images.cardinality()), name)

    def batches(size):
        return _read(images if batched else images.batch(size), shape, count, labelled, name)

    return Images(shape, labelled, batches, images, batched=batched, name=name)


def _read(dataset, shape, count, labelled, name):
    """The batches of a dataset as float32 tensors of the model's size, at most ``count``
    images in all (their values are checked by whoever uses them: ``Images.check``)."""
    offset = 0
    for element in dataset:
        images, labels = element if labelled else (element, None)
        if count is not None:
            images = images[:count - offset]
        if images.shape[0] == 0:
            continue
        if tuple(images.shape[1:]) != shape or images.dtype != tf.float32:
            images = _checked(images, shape, offset, name)  # the rare case: checked now
        yield offset, images, (None if labels is None else labels.numpy()[:len(images)])
        offset += len(images)
        if count is not None and offset >= count:
            break
    if offset == 0:
        raise InputError(f"The {name} dataset gave no images; pass a dataset with at least one.")


class Classes:
    """The class of each image of a source, batch by batch: from the dataset's labels, or
    ``class_index`` (None: -1, "the predicted class"; an int; one int per image)."""

    def __init__(self, source, class_index, num_classes, count=None, labels=True):
        self.labels = labels and source.labelled  # labels=False: ignore a dataset's labels
        check_labels_or_class(self.labels, class_index)
        self.num_classes, self.table, self.fixed = num_classes, None, -1
        if isinstance(class_index, numbers.Integral) or class_index is None:
            self.fixed = class_indices(class_index, 1, num_classes)[0]
        else:  # one per image: all of them must be known before a dataset is read
            if count is not None and np.ndim(class_index) == 1:  # the first count images'
                class_index = class_index[:count]
            length = source.total or count or len(np.asarray(class_index).reshape(-1))
            self.table = class_indices(class_index, length, num_classes)

    def at(self, offset, size, labels=None) -> np.ndarray:
        """int32 (size,): the classes of images offset .. offset + size - 1."""
        if labels is not None and self.labels:
            return check_labels(labels, size, self.num_classes).astype("int32")
        if self.table is None:
            return np.full(size, self.fixed, dtype="int32")
        part = self.table[offset:offset + size]
        if len(part) != size:
            raise InputError(f"class_index has {len(self.table)} entries but the dataset has "
                             "more images; give one class per image, or one int for all.")
        return part

    def finish(self, total):
        if self.table is not None and len(self.table) != total:
            raise InputError(f"class_index has {len(self.table)} entries for {total} images; "
                             "give one class per image, or one int for all.")


def paired(model, images, maps, class_index=None, count=None):
    """A source of images and their maps for the metrics: (``Images``, the model's
    ``Anatomy`` at their size, ``batches(size)``) yielding (offset, images (B, H, W, C)
    float32, maps (B, H, W) float (float32, or float64 as given), classes int32 (B,),
    -1 = the predicted class). ``maps``: an array (N, H, W) (one (H, W) map for one
    image), or, with a dataset of images, a dataset of maps batched as the images."""
    source = image_source(model, images, count)
    size = source.shape[:2]
    if is_dataset(maps):
        if source.dataset is None:
            raise InputError("maps is a dataset but images an array; pass both as arrays, "
                             "or the images as a dataset too (tf.data.Dataset.from_tensor_slices).")
        batched = len(_dims(source.dataset.element_spec[0] if source.labelled
                            else source.dataset.element_spec)) == 4
        check_map_spec(maps.element_spec, batched, size)
        cardinality = (int(source.dataset.cardinality()), int(maps.cardinality()))
        if min(cardinality) >= 0 and cardinality[0] != cardinality[1]:
            raise InputError(f"The images dataset has {cardinality[0]} elements but the maps "
                             f"dataset {cardinality[1]}; give one map per image, batched alike.")
        table = None
    else:
        table = as_maps(maps)[0][:count]  # with count, the first count images' maps
        if source.total is not None and table.shape != (source.total,) + size:  # two arrays
            raise InputError(f"maps {table.shape} must be one map per image at the image's "
                             f"size {(source.total,) + size}; compute them with upsample=True.")
    anatomy = read_model(model, source.shape)
    classes = Classes(source, class_index, anatomy.head.num_classes, count)

    def batches(chunk):
        map_batches = None if table is not None else iter(maps if batched else maps.batch(chunk))
        total = 0
        for offset, batch, labels in source.batches(chunk):
            batch = source.check(batch, offset)
            if table is None:
                found = next(map_batches, None)
                part = None if found is None else found.numpy()[:len(batch)]
            else:
                part = table[offset:offset + len(batch)]
            if part is None or part.shape != batch.shape[:3]:
                raise InputError(f"The maps for images {offset} .. {offset + len(batch) - 1} are "
                                 f"{'missing' if part is None else part.shape}; give one map per "
                                 f"image at the image's size {batch.shape[:3]}, batched alike.")
            yield offset, batch, as_maps(part)[0], classes.at(offset, len(batch), labels)
            total = offset + len(batch)
        if table is not None and len(table) != total:
            raise InputError(f"{len(table)} maps for {total} images; give one map per image.")
        classes.finish(total)

    return source, anatomy, batches
