"""Is a map right? Localization, faithfulness and sanity checks (notebook 05).

Each metric is a short function named as in its paper:

- ``pointing_game`` (Zhang et al. 2016/2018): does the map's maximum fall on
  the object, within a tolerance in pixels?
- ``box_iou`` and ``box_localization`` (Zhou et al. 2016, sec. 3): the CAM
  paper's box (20% of the map's maximum, largest region) against the true box,
  correct at IoU >= 0.5.
- ``deletion`` and ``insertion`` (Petsiuk et al. 2018, RISE, sec. 4.1): the
  class probability as the map's most important pixels are removed (or
  revealed), and the area under that curve. All images and all steps go
  through one compiled forward pass, in chunks.
- ``average_drop`` and ``increase_in_confidence`` (Chattopadhay et al. 2018,
  Grad-CAM++, sec. 6.1.1): the class probability of the image masked by its own map.
- ``model_randomization`` (Adebayo et al. 2018, Sanity Checks for Saliency
  Maps, sec. 3.1): cascading randomisation of a copy of the model from the top,
  compared with ``spearman`` rank correlation and ``ssim`` (Wang et al. 2004).
- Baselines every number must beat: ``random_maps``, ``centre_maps`` and
  ``edge_maps`` (a Sobel filter of the image, as pytorch-grad-cam advises).
- The checks of notebook 05's exercises: ``check_pointing_game``,
  ``check_box_iou``, ``check_curve_auc``.

Probabilities are those of ``model(x, training=False)``, read the way camlab
reads the head (``camlab.graph``): a softmax or sigmoid output as it is, a
linear output through softmax, one sigmoid unit as two classes (1 - p, p).
The user's model is never modified.
"""

from __future__ import annotations

import dataclasses
import numbers
import weakref

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage, stats

from camlab import graph
from camlab.boxes import THRESHOLD, boxes_from_maps, map_peaks
from camlab.errors import InputError, ModelError
from camlab.exercises import exercise, report, run_check
from camlab.methods import as_image_batch, class_indices, default_batch_size, explain


def _as_maps(maps, name="maps") -> np.ndarray:
    """Check a batch of maps (N, H, W): numeric and finite; returns float64."""
    array = np.asarray(maps)
    if array.dtype == object or array.dtype.kind not in "fiub":
        raise InputError(f"{name} must be a numeric array (N, H, W); got dtype {array.dtype}.")
    if array.ndim != 3:
        raise InputError(f"{name} must be a batch (N, H, W); got shape {array.shape}. "
                         "For one map use maps[np.newaxis].")
    if not np.isfinite(array).all():
        raise InputError(f"{name} contain NaN or Inf; a metric cannot be read from them.")
    return array.astype("float64")


def _as_boxes(boxes, count) -> np.ndarray:
    """Boxes as int64 (N, 4); None or a row of -1 means "no box" (kept as -1)."""
    if isinstance(boxes, np.ndarray) and boxes.dtype != object:
        table = boxes
    else:
        table = [(-1, -1, -1, -1) if b is None else tuple(b) for b in boxes]
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[1] != 4 or table.dtype.kind not in "iuf":
        raise InputError(f"boxes must be (N, 4) rows (x_min, y_min, x_max, y_max); got "
                         f"shape {table.shape}.")
    if len(table) != count:
        raise InputError(f"{count} maps but {len(table)} boxes; pass one box per map.")
    table = table.astype("int64")
    table[(table < 0).any(axis=1)] = -1
    return table


# ----------------------------------------------------------------------------
# Localization: pointing game and boxes
# ----------------------------------------------------------------------------

def pointing_game(maps, targets, tolerance=0) -> np.ndarray:
    """Zhang et al. 2018 (Top-down Neural Attention by Excitation Backprop, IJCV, sec. 5.1).

    A hit when the map's maximum lies within ``tolerance`` pixels (Euclidean)
    of the object. maps: (N, H, W); targets: bool masks (N, H, W) of the
    object's pixels, or boxes (N, 4) ``(x_min, y_min, x_max, y_max)``
    inclusive (None or -1 rows: no object, a miss). The paper allows 15 px at
    ImageNet's 224 px; for an image of side S use about 15 * S / 224 (4 px at
    64). Ties for the maximum go to the first pixel in reading order; a flat
    map (no maximum) is a miss. Returns bool (N,).
    """
    maps = _as_maps(maps)
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or tolerance < 0:
        raise InputError(f"tolerance is a distance in pixels, >= 0; got {tolerance!r}.")
    peaks = map_peaks(maps)  # (N, 2) rows, columns
    flat = maps.max(axis=(1, 2)) == maps.min(axis=(1, 2))
    targets_array = np.asarray(targets) if not isinstance(targets, list) else None
    if targets_array is not None and targets_array.ndim == 3:
        if targets_array.shape != maps.shape:
            raise InputError(f"masks {targets_array.shape} must match maps {maps.shape}.")
        height, width = maps.shape[1:]
        rows = np.arange(height)[None, :, None] - peaks[:, 0, None, None]
        columns = np.arange(width)[None, None, :] - peaks[:, 1, None, None]
        distance2 = np.where(targets_array.astype(bool), rows ** 2 + columns ** 2, np.inf)
        near = distance2.min(axis=(1, 2)) <= float(tolerance) ** 2
    else:
        table = _as_boxes(targets, len(maps))
        present = (table >= 0).all(axis=1)
        rows, columns = peaks[:, 0], peaks[:, 1]
        dx = np.maximum.reduce([table[:, 0] - columns, np.zeros_like(columns), columns - table[:, 2]])
        dy = np.maximum.reduce([table[:, 1] - rows, np.zeros_like(rows), rows - table[:, 3]])
        near = present & (dx ** 2 + dy ** 2 <= float(tolerance) ** 2)
    return near & ~flat


def _is_one_box(box) -> bool:
    """None, a 1-D array, or a sequence of four numbers."""
    if box is None:
        return True
    if isinstance(box, np.ndarray):
        return box.ndim == 1
    return len(box) == 4 and all(isinstance(v, numbers.Real) for v in box)


def box_iou(box_a, box_b):
    """Intersection over union of inclusive pixel boxes (Zhou et al. 2016, sec. 3).

    Boxes are ``(x_min, y_min, x_max, y_max)`` with the last row and column
    inside, so a box covers (x_max - x_min + 1) * (y_max - y_min + 1) pixels.
    Two boxes give a float in [0, 1]; two (N, 4) arrays (or lists of boxes)
    give float64 (N,), element by element. None (or a row of -1) is no box: IoU 0.
    """
    single = _is_one_box(box_a)
    if single != _is_one_box(box_b):
        raise InputError("box_iou takes two boxes, or two (N, 4) arrays of boxes.")
    if single:
        box_a, box_b = [box_a], [box_b]
    count = len(box_a)
    a, b = _as_boxes(box_a, count), _as_boxes(box_b, len(box_b))
    if len(b) != count:
        raise InputError(f"{count} boxes against {len(b)}; pass the same number.")
    if ((a[:, 2] < a[:, 0]) | (a[:, 3] < a[:, 1]) | (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])).any():
        raise InputError("a box has x_max < x_min or y_max < y_min; boxes are "
                         "(x_min, y_min, x_max, y_max).")
    wide = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1
    tall = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1
    overlap = np.clip(wide, 0, None) * np.clip(tall, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    present = (a >= 0).all(axis=1) & (b >= 0).all(axis=1)
    iou = np.where(present, overlap / np.maximum(area_a + area_b - overlap, 1), 0.0)
    return float(iou[0]) if single else iou


@dataclasses.dataclass(frozen=True)
class BoxScores:
    """What ``box_localization`` returns.

    boxes: the box read from each map (a list of N tuples, None where the map
    has no positive value); iou: float64 (N,); correct: bool (N,), iou >= min_iou.
    """

    boxes: list
    iou: np.ndarray
    correct: np.ndarray

    @property
    def rate(self) -> float:
        """The share of correct boxes, in [0, 1]."""
        return float(self.correct.mean())


def box_localization(maps, true_boxes, threshold=THRESHOLD, min_iou=0.5) -> BoxScores:
    """The CAM paper's localization (Zhou et al. 2016, sec. 3) for a batch.

    maps: (N, H, W) at the image's size; true_boxes: (N, 4) inclusive. Each
    map's box is ``camlab.boxes_from_maps`` (pixels >= ``threshold`` of its
    maximum, largest 8-connected region); it is correct when its IoU with the
    true box is at least ``min_iou`` (0.5 in the paper, as in PASCAL VOC).
    """
    maps = _as_maps(maps)
    boxes = boxes_from_maps(maps, threshold)
    iou = box_iou(boxes, _as_boxes(true_boxes, len(maps)))
    return BoxScores(boxes=boxes, iou=iou, correct=iou >= float(min_iou))


# ----------------------------------------------------------------------------
# Class probabilities, compiled once per model
# ----------------------------------------------------------------------------

_PROBABILITIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _probability_function(model, input_shape):
    """images (B, H, W, C) -> class probabilities (B, classes), as camlab reads the head.

    Cached per model and input shape with ``graph.cached_per_model``; the
    function holds the model weakly, so a cached entry never keeps it alive.
    """
    return graph.cached_per_model(_PROBABILITIES, model, tuple(input_shape),
                                  lambda: _read_probabilities(weakref.ref(model), input_shape))


def _read_probabilities(model_ref, input_shape):
    head = graph.read_model(model_ref(), input_shape).head

    def probabilities(images):
        outputs = model_ref()(images, training=False)
        if isinstance(outputs, (list, tuple, dict)):
            raise ModelError("camlab's metrics need a model with one output.")
        outputs = tf.reshape(tf.cast(outputs, tf.float32), (tf.shape(images)[0], -1))
        if head.binary_sigmoid:
            return tf.concat([1.0 - outputs, outputs], axis=-1)
        if head.activation in ("softmax", "sigmoid"):
            return outputs
        return tf.nn.softmax(outputs, axis=-1)  # a linear head: softmax of its scores

    return head, probabilities


def _prepare(model, images, maps, class_index):
    """Checked images (N, H, W, C), maps (N, H, W) float64 of their size, classes (N,) (-1: top)."""
    batch = as_image_batch(images, graph.model_input_shape(model))
    maps = np.asarray(maps)
    if maps.ndim == 2 and len(batch) == 1:
        maps = maps[np.newaxis]
    maps = _as_maps(maps)
    if maps.shape != batch.shape[:3]:
        raise InputError(f"maps {maps.shape} must be one map per image at the image's size "
                         f"{batch.shape[:3]}; compute them with upsample=True.")
    head, _ = _probability_function(model, batch.shape[1:])
    return batch, maps, class_indices(class_index, len(batch), head.num_classes)


def class_probabilities(model, images, batch_size=None) -> np.ndarray:
    """float32 (N, classes): the probabilities camlab's metrics read (module docstring)."""
    batch = as_image_batch(images, graph.model_input_shape(model))
    _, probabilities = _probability_function(model, batch.shape[1:])
    signature = [tf.TensorSpec((None,) + batch.shape[1:], tf.float32)]
    run = _compiled(model, batch.shape[1:], "probabilities",
                    lambda: tf.function(probabilities, input_signature=signature))
    size = batch_size or default_batch_size(batch.shape[1:], False)
    return np.concatenate([run(tf.constant(batch[i:i + size])).numpy()
                           for i in range(0, len(batch), size)])


_CURVES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _compiled(model, input_shape, key, build):
    """A compiled function for this model and input shape, cached (bounded, held weakly)."""
    return graph.cached_per_model(_CURVES, model, (tuple(input_shape), key), build)


# ----------------------------------------------------------------------------
# Deletion and insertion (RISE)
# ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Curves:
    """What ``deletion`` and ``insertion`` return.

    curves: float32 (N, steps + 1), the class probability after 0 .. steps steps;
    auc: float64 (N,), the trapezoid area under each curve over x in [0, 1];
    fractions: float64 (steps + 1,), the share of pixels removed (or revealed)
    at each step; class_index: int64 (N,), the class each curve follows.
    """

    curves: np.ndarray
    auc: np.ndarray
    fractions: np.ndarray
    class_index: np.ndarray
    kind: str


def pixel_ranks(maps) -> np.ndarray:
    """int32 (N, H, W): each pixel's place when its map is sorted from high to low.

    Rank 0 is the highest value; ties keep pixel (reading) order: a stable sort.
    """
    maps = _as_maps(maps)
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None, :], axis=1)
    return ranks.reshape(maps.shape).astype("int32")


def _baseline_images(baseline, batch) -> np.ndarray:
    """The image each pixel goes to (deletion) or comes from (insertion): (N, H, W, C)."""
    if isinstance(baseline, str):
        if baseline == "blur":  # RISE blurs with sigma 5 at 224 px: scale it to the image
            sigma = 5.0 * batch.shape[1] / 224.0
            return ndimage.gaussian_filter(batch, sigma=(0, sigma, sigma, 0), mode="nearest")
        if baseline == "mean":
            return np.broadcast_to(batch.mean(axis=(1, 2), keepdims=True), batch.shape)
        raise InputError(f"baseline must be a number, an image-shaped array, 'blur' or "
                         f"'mean'; got {baseline!r}.")
    value = np.asarray(baseline, dtype="float32")
    try:
        value = np.broadcast_to(value, batch.shape)
    except ValueError:
        raise InputError(f"baseline of shape {value.shape} does not fit images "
                         f"{batch.shape}; give a number, (H, W, C) or (N, H, W, C).") from None
    if not np.isfinite(value).all():
        raise InputError("baseline contains NaN or Inf.")
    return value


def _curve_function(model, input_shape, steps, kind):
    """Compiled: (images, ranks, baseline, counts) -> probabilities (B, steps + 1, classes)."""
    _, probabilities = _probability_function(model, input_shape)
    height, width, channels = input_shape

    def run(images, ranks, baseline, counts):
        changed = ranks[:, tf.newaxis] < counts[tf.newaxis, :, tf.newaxis, tf.newaxis]
        show_image = tf.logical_not(changed) if kind == "deletion" else changed
        stacked = tf.where(show_image[..., tf.newaxis], images[:, tf.newaxis],
                           baseline[:, tf.newaxis])  # (B, steps + 1, H, W, C)
        flat = tf.reshape(stacked, (-1, height, width, channels))
        return tf.reshape(probabilities(flat), (tf.shape(images)[0], steps + 1, -1))

    signature = [tf.TensorSpec((None,) + tuple(input_shape), tf.float32),
                 tf.TensorSpec((None, height, width), tf.int32),
                 tf.TensorSpec((None,) + tuple(input_shape), tf.float32),
                 tf.TensorSpec((steps + 1,), tf.int32)]
    return tf.function(run, input_signature=signature)


def _perturbation(kind, model, images, maps, class_index, steps, baseline, batch_size) -> Curves:
    batch, maps, classes = _prepare(model, images, maps, class_index)
    pixels = maps.shape[1] * maps.shape[2]
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or not 1 <= steps <= pixels:
        raise InputError(f"steps must be an int from 1 to H * W = {pixels}; got {steps!r}.")
    steps = int(steps)
    counts = np.round(np.arange(steps + 1) * pixels / steps).astype("int32")
    ranks, base = pixel_ranks(maps), _baseline_images(baseline, batch).astype("float32")
    run = _compiled(model, batch.shape[1:], (kind, steps),
                    lambda: _curve_function(model, batch.shape[1:], steps, kind))
    per_call = max(1, (batch_size or default_batch_size(batch.shape[1:], False)) // (steps + 1))
    parts = [run(tf.constant(batch[i:i + per_call]), tf.constant(ranks[i:i + per_call]),
                 tf.constant(base[i:i + per_call]), tf.constant(counts)).numpy()
             for i in range(0, len(batch), per_call)]
    probabilities = np.concatenate(parts)  # (N, steps + 1, classes)
    whole_image = 0 if kind == "deletion" else steps  # the unperturbed image's step
    chosen = np.where(classes < 0, probabilities[:, whole_image].argmax(axis=-1), classes)
    curves = probabilities[np.arange(len(batch)), :, chosen]
    if not np.isfinite(curves).all():
        raise ModelError("The model gave NaN or Inf probabilities; check its weights "
                         "(np.isfinite(model.predict(images)).all()).")
    auc = (curves.sum(axis=1, dtype="float64") - (curves[:, 0] + curves[:, -1]) / 2.0) / steps
    return Curves(curves=curves.astype("float32"), auc=auc, fractions=counts / pixels,
                  class_index=chosen.astype("int64"), kind=kind)


def deletion(model, images, maps, class_index=None, steps=50, baseline=0.0,
             batch_size=None) -> Curves:
    """Deletion (Petsiuk et al. 2018, RISE, BMVC, sec. 4.1): lower AUC is better.

    images: (N, H, W, C) as the model takes them; maps: (N, H, W) at the
    image's size. Step i (0 .. ``steps``) replaces the round(i * P / steps)
    pixels of highest map value (P = H * W; ties in pixel order, all channels
    of a pixel) by ``baseline``: a number, an array that broadcasts to the
    images ((H, W, C) or (N, H, W, C)), "blur" (a Gaussian blur of the image,
    sigma 5 * H / 224, RISE's 5 at 224 px) or "mean" (the image's mean colour).
    The curve is the probability of ``class_index`` (None: the class predicted
    for the whole image) after each step; ``batch_size`` caps the images in one
    forward pass (all steps of several images go through it together).
    Returns ``Curves``: curves (N, steps + 1), auc (N,).
    """
    return _perturbation("deletion", model, images, maps, class_index, steps, baseline, batch_size)


def insertion(model, images, maps, class_index=None, steps=50, baseline=0.0,
              batch_size=None) -> Curves:
    """Insertion (Petsiuk et al. 2018, RISE, BMVC, sec. 4.1): higher AUC is better.

    The reverse of ``deletion``, with the same arguments: step i shows the
    round(i * P / steps) pixels of highest map value of the image over the
    ``baseline`` image (RISE starts from a blurred image: ``baseline="blur"``),
    so step 0 is the baseline and the last step the whole image.
    Returns ``Curves``: curves (N, steps + 1), auc (N,).
    """
    return _perturbation("insertion", model, images, maps, class_index, steps, baseline, batch_size)


# ----------------------------------------------------------------------------
# Average Drop and Increase in Confidence (Grad-CAM++)
# ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Confidence:
    """The class probability of each image, whole (``original``) and masked by its map
    (``masked``): float32 (N,) each; ``class_index`` int64 (N,)."""

    original: np.ndarray
    masked: np.ndarray
    class_index: np.ndarray


def masked_confidence(model, images, maps, class_index=None, batch_size=None) -> Confidence:
    """Y^c = f(x) and O^c = f(x * M) (Chattopadhay et al. 2018, sec. 6.1.1).

    maps: (N, H, W) in [0, 1] at the image's size (camlab's normalised maps);
    every channel of pixel (i, j) is multiplied by M_ij. class_index None: the
    class predicted for the whole image.
    """
    batch, maps, classes = _prepare(model, images, maps, class_index)
    if maps.min() < 0.0 or maps.max() > 1.0:
        raise InputError("maps must lie in [0, 1] to mask an image; scale them first "
                         "(camlab.normalize(maps)).")
    masked = (batch * maps[..., np.newaxis]).astype("float32")
    both = class_probabilities(model, np.concatenate([batch, masked]), batch_size)
    whole, covered = both[:len(batch)], both[len(batch):]
    chosen = np.where(classes < 0, whole.argmax(axis=-1), classes)
    rows = np.arange(len(batch))
    return Confidence(whole[rows, chosen], covered[rows, chosen], chosen.astype("int64"))


def average_drop(model, images, maps, class_index=None, batch_size=None) -> float:
    """Average Drop % (Chattopadhay et al. 2018, eq. 21): lower is better.

    100 / N * sum_i max(0, Y_i^c - O_i^c) / Y_i^c, with Y the class probability
    of image i and O that of the image masked by its map (``masked_confidence``).
    """
    found = masked_confidence(model, images, maps, class_index, batch_size)
    drop = np.maximum(found.original - found.masked, 0.0) / np.maximum(found.original, 1e-12)
    return float(100.0 * drop.mean())


def increase_in_confidence(model, images, maps, class_index=None, batch_size=None) -> float:
    """Increase in Confidence % (Chattopadhay et al. 2018, eq. 22): higher is better.

    100 / N * sum_i 1[O_i^c > Y_i^c]: how often masking the image by its own
    map raises the class probability (``masked_confidence``).
    """
    found = masked_confidence(model, images, maps, class_index, batch_size)
    return float(100.0 * (found.masked > found.original).mean())


# ----------------------------------------------------------------------------
# Sanity check: model randomisation (Adebayo et al. 2018)
# ----------------------------------------------------------------------------

def spearman(maps_a, maps_b) -> np.ndarray:
    """Spearman rank correlation of each pair of maps: (N, H, W) x2 -> float64 (N,).

    Pearson correlation of the pixel ranks (ties get their average rank);
    a pair with a flat map has no order and scores 0.
    """
    a, b = _as_maps(maps_a, "maps_a"), _as_maps(maps_b, "maps_b")
    if a.shape != b.shape:
        raise InputError(f"maps_a {a.shape} and maps_b {b.shape} must have the same shape.")
    ranks_a = stats.rankdata(a.reshape(len(a), -1), axis=1)
    ranks_b = stats.rankdata(b.reshape(len(b), -1), axis=1)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_b -= ranks_b.mean(axis=1, keepdims=True)
    scale = np.sqrt((ranks_a ** 2).sum(axis=1) * (ranks_b ** 2).sum(axis=1))
    return np.where(scale > 0, (ranks_a * ranks_b).sum(axis=1) / np.where(scale > 0, scale, 1), 0.0)


def ssim(maps_a, maps_b, data_range=1.0) -> np.ndarray:
    """Structural similarity (Wang et al. 2004, eq. 13) of each pair of maps: float64 (N,).

    maps: (N, H, W) in a range of width ``data_range`` (1 for camlab's maps).
    Local statistics under a Gaussian window (sigma 1.5, 11x11), C1 = (0.01 L)^2,
    C2 = (0.03 L)^2, averaged over the positions whose window fits the map
    (as ``skimage.metrics.structural_similarity(gaussian_weights=True,
    use_sample_covariance=False)``). Maps must be at least 11x11.
    """
    a, b = _as_maps(maps_a, "maps_a"), _as_maps(maps_b, "maps_b")
    if a.shape != b.shape or min(a.shape[1:]) < 11:
        raise InputError(f"maps_a {a.shape} and maps_b {b.shape} must have the same shape, "
                         "at least 11x11 (upsample them first).")

    def local_mean(x):
        return ndimage.gaussian_filter(x, sigma=(0, 1.5, 1.5), truncate=3.5, mode="reflect")

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mean_a, mean_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mean_a ** 2
    var_b = local_mean(b * b) - mean_b ** 2
    cov = local_mean(a * b) - mean_a * mean_b
    index = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)
             / ((mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2)))
    return index[:, 5:-5, 5:-5].mean(axis=(1, 2))


@dataclasses.dataclass(frozen=True)
class RandomizationCheck:
    """What ``model_randomization`` returns.

    layers: the randomised layers, top first (entry i of the arrays below has
    layers[:i] randomised; entry 0 is the trained model); maps: float32
    (L + 1, N, H, W); spearman, ssim: float64 (L + 1, N), against entry 0.
    """

    layers: list
    maps: np.ndarray
    spearman: np.ndarray
    ssim: np.ndarray


def _map_function(method, layer):
    if callable(method):
        return method
    return lambda model, images, classes: explain(model, images, method, classes, layer).maps


def _randomize_layer(layer, rng) -> None:
    """Redraw each trainable weight array from a Gaussian with its own mean and spread."""
    for weight in layer.trainable_weights:
        values = np.asarray(weight.numpy(), dtype="float64")
        drawn = rng.normal(values.mean(), values.std(), size=values.shape)
        weight.assign(drawn.astype(weight.dtype))


def model_randomization(model, images, method="gradcam", class_index=None, layer=None,
                        seed=0) -> RandomizationCheck:
    """Cascading model parameter randomisation (Adebayo et al. 2018, NeurIPS, sec. 3.1).

    A copy of ``model`` (``keras.models.clone_model`` with the trained weights;
    the model itself is never touched) has its layers with weights randomised
    one by one from the top (the output) down: each trainable weight array is
    redrawn from a Gaussian with that array's own mean and standard deviation,
    so the scale stays and what was learned goes. After each layer the maps are
    recomputed for the same classes and compared with the trained model's.

    images: (N, H, W, C); method: a name in ``camlab.METHODS`` (maps at ``layer``)
    or a function ``(model, images, class_index) -> maps (N, H, W)``, e.g. the
    absolute guided-backprop gradient; class_index None: each image's class
    predicted by the trained model. Maps must be at least 11x11 for SSIM.
    An explanation that barely changes as the model forgets what it learned
    does not explain the model.
    """
    compute = _map_function(method, layer)
    batch = as_image_batch(images, graph.model_input_shape(model))
    if class_index is None:
        classes = class_probabilities(model, batch).argmax(axis=-1)
    else:
        head, _ = _probability_function(model, batch.shape[1:])
        classes = class_indices(class_index, len(batch), head.num_classes)
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    except Exception as error:  # noqa: BLE001 (Keras raises many kinds here)
        raise ModelError(f"camlab could not copy model {model.name!r} to randomise it "
                         f"({error}); the check needs keras.models.clone_model to work.") from error
    calls = [c for c in graph.read_model(copy, batch.shape[1:]).calls
             if not c.is_model and c.layer.trainable_weights]
    seen, order = set(), []
    for call in reversed(calls):  # top first, each layer once
        if id(call.layer) not in seen:
            seen.add(id(call.layer))
            order.append(call)
    rng = np.random.default_rng(seed)
    maps = [np.asarray(compute(model, batch, classes), dtype="float32")]
    for call in order:
        _randomize_layer(call.layer, rng)
        maps.append(np.asarray(compute(copy, batch, classes), dtype="float32"))
    maps = np.stack(maps)
    return RandomizationCheck(
        layers=[c.path for c in order], maps=maps,
        spearman=np.stack([spearman(maps[0], m) for m in maps]),
        ssim=np.stack([ssim(maps[0], m) for m in maps]),
    )


# ----------------------------------------------------------------------------
# Baselines: the floor every metric must beat
# ----------------------------------------------------------------------------

def random_maps(count, size, seed=0) -> np.ndarray:
    """float32 (count, H, W) of uniform noise in [0, 1]: a map that knows nothing."""
    height, width = size
    return np.random.default_rng(seed).random((int(count), int(height), int(width))).astype("float32")


def centre_maps(count, size, sigma=None) -> np.ndarray:
    """float32 (count, H, W): a Gaussian bump at the image centre, peak 1.

    ``sigma`` defaults to a quarter of the smaller side. Objects are often near
    the centre, so this guess is the one to beat (Zhang et al. 2018 use it too).
    """
    height, width = size
    sigma = min(height, width) / 4.0 if sigma is None else float(sigma)
    rows = (np.arange(height) - (height - 1) / 2.0)[:, None]
    columns = (np.arange(width) - (width - 1) / 2.0)[None, :]
    bump = np.exp(-(rows ** 2 + columns ** 2) / (2.0 * sigma ** 2))
    return np.broadcast_to(bump / bump.max(), (int(count), height, width)).astype("float32")


def edge_maps(images) -> np.ndarray:
    """float32 (N, H, W) in [0, 1]: the Sobel gradient magnitude of each image.

    The channels are averaged first; each map is scaled by its own maximum.
    pytorch-grad-cam suggests such an edge detector as a map every method must beat.
    """
    batch = np.asarray(images, dtype="float64")
    if batch.ndim == 3:
        batch = batch[..., np.newaxis]
    if batch.ndim != 4:
        raise InputError(f"images must be (N, H, W, C) or (N, H, W); got {np.shape(images)}.")
    gray = batch.mean(axis=-1)
    magnitude = np.hypot(ndimage.sobel(gray, axis=1), ndimage.sobel(gray, axis=2))
    peak = magnitude.max(axis=(1, 2), keepdims=True)
    return (magnitude / np.where(peak > 0, peak, 1.0)).astype("float32")


# ----------------------------------------------------------------------------
# Notebook 05's exercises: checks of the learner's own metrics
# ----------------------------------------------------------------------------

def reference_pointing_hit(heatmap, mask):
    """One map (H, W) and one object mask (H, W) -> 1.0 if the maximum is on the mask, else 0.0."""
    return float(pointing_game(np.asarray(heatmap)[np.newaxis], np.asarray(mask)[np.newaxis])[0])


def _pointing_cases(seed=6):
    rng = np.random.default_rng(seed)
    cases = []
    for inside in (True, False, True):
        heatmap = rng.random((9, 11))
        mask = np.zeros((9, 11), dtype=bool)
        mask[2:6, 3:8] = True
        row, column = (3, 5) if inside else (7, 1)
        heatmap[row, column] = 2.0
        cases.append((heatmap, mask))
    tie = np.zeros((9, 11))
    tie[1, 1] = tie[4, 4] = 1.0  # the first maximum in reading order is off the mask
    cases.append((tie, cases[0][1]))
    corner = np.zeros((9, 11), dtype=bool)
    corner[:3, :3] = True  # argmax of a flat map is pixel (0, 0), on this mask
    cases.append((np.full((9, 11), 0.3), corner))  # but a flat map points nowhere: a miss
    return cases


@exercise("05", "the pointing game for one map", "pointing_hit", reference_pointing_hit)
def check_pointing_game(function) -> bool:
    """Notebook 05: ``function(heatmap, mask)`` -> True when the map's maximum is on the object.

    heatmap: float (H, W); mask: bool (H, W). Ties go to the first maximum in
    reading order (``argmax``); a flat map is a miss.
    """
    def answer_as_float(*case):
        answer = function(*case)
        return None if answer is None else float(bool(answer))

    cases = _pointing_cases()
    mistakes = {"A flat map has no maximum: it points nowhere, so it is a miss. Check "
                "heatmap.max() > heatmap.min() first.": 1.0}
    verdict = run_check(answer_as_float, cases, reference_pointing_hit,
                        mistakes_for=lambda heatmap, mask: mistakes if np.ptp(heatmap) == 0 else {})
    return report(verdict)


def reference_box_iou(box_a, box_b):
    """IoU of two inclusive boxes (x_min, y_min, x_max, y_max) -> float in [0, 1]."""
    return box_iou(tuple(int(v) for v in box_a), tuple(int(v) for v in box_b))


@exercise("05", "IoU of two pixel boxes", "my_box_iou", reference_box_iou)
def check_box_iou(function) -> bool:
    """Notebook 05: ``function(box_a, box_b)`` -> the IoU of two inclusive pixel boxes."""
    cases = [(np.array([0, 0, 3, 3]), np.array([2, 2, 5, 5])),
             (np.array([1, 1, 1, 1]), np.array([1, 1, 1, 1])),
             (np.array([0, 0, 9, 4]), np.array([5, 0, 14, 4])),
             (np.array([0, 0, 2, 2]), np.array([5, 5, 7, 7]))]

    def forgot_the_last_pixel(box_a, box_b):
        a, b = np.asarray(box_a, float), np.asarray(box_b, float)
        wide = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        tall = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - wide * tall
        return wide * tall / union if union > 0 else 0.0

    inclusive = ("The boxes are inclusive: x_max is the last column inside, so a box is "
                 "x_max - x_min + 1 pixels wide (and the same for the height).")
    verdict = run_check(function, cases, reference_box_iou,
                        mistakes_for=lambda a, b: {inclusive: forgot_the_last_pixel(a, b)})
    return report(verdict)


def reference_curve_auc(curve):
    """The trapezoid area under one curve (steps + 1,) over x = 0, 1/steps, ..., 1."""
    curve = np.asarray(curve, dtype="float64")
    return float((curve.sum() - (curve[0] + curve[-1]) / 2.0) / (len(curve) - 1))


@exercise("05", "the area under a deletion or insertion curve", "curve_auc", reference_curve_auc)
def check_curve_auc(function) -> bool:
    """Notebook 05: ``function(curve)`` -> the AUC of one curve (steps + 1,), x from 0 to 1."""
    rng = np.random.default_rng(7)
    cases = [(np.linspace(1.0, 0.0, 11),), (np.sort(rng.random(51))[::-1],), (rng.random(6),)]
    mistakes_for = lambda curve: {  # noqa: E731
        "Right shape of the idea, wrong x axis: x runs from 0 to 1, so the step is "
        "dx = 1 / steps, that is 1 / (len(curve) - 1).":
            reference_curve_auc(curve) * (len(curve) - 1),
        "The mean of the points is not the trapezoid area: the first and last points "
        "count half.": float(np.mean(curve)),
    }
    return report(run_check(function, cases, reference_curve_auc, mistakes_for=mistakes_for))
