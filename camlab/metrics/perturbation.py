"""Deletion and insertion curves (Petsiuk et al. 2018, RISE, sec. 4.1; notebook 05).

The class probability as the map's most important pixels are removed (or
revealed), and the area under that curve. Maps are ranked in NumPy, 32 at a time
(``_rank_keys``); then one compiled call per 32 images sends them through the model
in parts, every step of an image in the same forward pass (``_curve_function``).
"""

from __future__ import annotations

import dataclasses
import numbers
import weakref

import numpy as np
import tensorflow as tf
from scipy import ndimage

from camlab import graph, replicas
from camlab.checks import as_finite_float32, as_maps, check_batch_size
from camlab.errors import InputError, ModelError
from camlab.forward import model_probabilities
from camlab.pipeline import default_batch_size
from camlab.stream import paired


_CURVES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
RANKED = 32  # maps ranked together (about): the images of one compiled call


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

    Rank 0 is the highest value; ties keep pixel (reading) order, as NumPy's
    stable sort of the negated map does. The pixels are sorted by their keys
    (``_rank_keys``), then each sorted pixel's place is read back.
    """
    maps = as_maps(maps, single=False)[0]  # float32 or float64, as given
    keys = _rank_keys(maps)
    order = np.argsort(keys, axis=1)  # keys all differ: any sort is the stable one
    ranks = np.empty(keys.shape, dtype="int32")
    np.put_along_axis(ranks, order, np.arange(keys.shape[1], dtype="int32")[np.newaxis], axis=1)
    return ranks.reshape(maps.shape)


INDEX_BITS = 30  # pixels per map up to 2**30 get the fast keys


def _rank_keys(maps) -> np.ndarray:
    """int64 (N, H * W): one key per pixel, all different, that sort in rank order.

    maps: float (N, H, W), finite. A map whose values are float32 numbers
    (camlab's maps are) gets, for each pixel, its value's 32 bits turned into an
    integer that grows as the value falls, with the pixel's index in the bits
    below: an ordinary sort of these keys is the stable sort from high to low,
    and NumPy sorts 64-bit integers with SIMD instructions, several times
    faster than any stable sort of the values. Other maps get their ranks
    (``tf.argsort``, stable) as keys.
    """
    pixels = int(np.prod(maps.shape[1:]))
    flat = maps.reshape(len(maps), pixels)
    index_bits = max(1, (pixels - 1).bit_length())
    values = flat.astype("float32")  # a copy: changed below
    if len(flat) and (index_bits > INDEX_BITS or flat.dtype.itemsize > 4
                      and not np.array_equal(values, flat)):
        return _ranks(tf.constant(maps, tf.float64)).numpy().reshape(flat.shape).astype("int64")
    values += np.float32(0.0)  # -0.0 becomes 0.0: equal values get equal bits
    bits = values.view("uint32")
    flip = bits >> 31  # 1 for negative values: their bits already grow as they fall
    flip -= 1  # 0 for negative values, 0xFFFFFFFF for the rest
    flip &= 0x7FFFFFFF  # positive values: all bits but the sign flipped, so they shrink
    bits ^= flip  # as they grow, and every negative value comes after every positive one
    keys = bits.astype("int64")
    keys <<= index_bits
    keys |= np.arange(pixels, dtype="int64")[np.newaxis]
    return keys


def _step_thresholds(keys, counts) -> np.ndarray:
    """int64 (N, steps + 1): at step s the pixels whose key is below row[s] have
    changed, counts[s] of them (the keys of ``_rank_keys``, counts from 0 to H * W)."""
    ordered = np.sort(keys, axis=1)
    pixels = keys.shape[1]
    inside = np.minimum(counts, pixels - 1)
    return np.where(counts < pixels, ordered[:, inside], np.iinfo("int64").max)


@tf.function(input_signature=[tf.TensorSpec((None, None, None), tf.float64)])
def _ranks(maps):
    shape = tf.shape(maps)
    order = tf.argsort(tf.reshape(maps, (shape[0], -1)), axis=-1, direction="DESCENDING",
                       stable=True)
    ranks = tf.map_fn(tf.math.invert_permutation, order, parallel_iterations=4)
    return tf.reshape(ranks, shape)


def _baseline(baseline, shape):
    """``baseline`` checked once, for images of ``shape`` (H, W, C): (one, rows).

    A number or one image is the same for every image: ``one`` is float32
    (1, H, W, C) and ``rows`` None. Otherwise ``one`` is None and ``rows(batch,
    offset)`` gives float32 (B, H, W, C): the baseline of each image ``offset`` ..
    ``offset + B - 1`` (its row of an (N, H, W, C) array, its blur, its mean colour).
    """
    if isinstance(baseline, str):
        if baseline == "blur":  # camlab's blur: a Gaussian, sigma 5 at 224 px scaled to the image
            sigma = 5.0 * shape[0] / 224.0
            return None, lambda batch, offset: ndimage.gaussian_filter(
                batch, sigma=(0, sigma, sigma, 0), mode="nearest")
        if baseline == "mean":
            return None, lambda batch, offset: np.broadcast_to(
                batch.mean(axis=(1, 2), keepdims=True), batch.shape)
        raise InputError(f"baseline must be a number, an image-shaped array, 'blur' or "
                         f"'mean'; got {baseline!r}.")
    value = as_finite_float32(baseline, "baseline", "(a number, (H, W, C) or (N, H, W, C))")
    if value.ndim == 4 and len(value) > 1:  # one baseline per image
        _fit(value[:1], (1,) + tuple(shape))
        return None, lambda batch, offset: _fit(value[offset:offset + len(batch)], batch.shape)
    return np.ascontiguousarray(_fit(value, (1,) + tuple(shape))), None


def _fit(value, shape) -> np.ndarray:
    """``value`` broadcast to ``shape`` (B, H, W, C), or an ``InputError``."""
    try:
        return np.broadcast_to(value, shape)
    except ValueError:
        raise InputError(f"baseline of shape {value.shape} does not fit images "
                         f"{shape}; give a number, (H, W, C) or (N, H, W, C).") from None


def _curve_function(anatomy, steps, kind, per_call):
    """Compiled: (images, keys, thresholds, classes, baseline) -> (curves float32 (B, steps
    + 1), classes int32 (B,)). The B images go through the model per_call at a time, all
    steps of each together (one forward pass of per_call * (steps + 1) images), in a loop
    inside the graph; baseline is B rows, or one row for all."""
    probabilities = model_probabilities(anatomy)
    height, width, channels = input_shape = anatomy.input_shape
    whole_image = 0 if kind == "deletion" else steps  # the unperturbed image's step

    def curves_of(images, keys, thresholds, classes, baseline):
        changed = keys[:, tf.newaxis] < thresholds[:, :, tf.newaxis, tf.newaxis]
        show_image = tf.logical_not(changed) if kind == "deletion" else changed
        stacked = tf.where(show_image[..., tf.newaxis], images[:, tf.newaxis],
                           baseline[:, tf.newaxis])  # (B, steps + 1, H, W, C)
        flat = tf.reshape(stacked, (-1, height, width, channels))
        scores = tf.reshape(probabilities(flat), (tf.shape(images)[0], steps + 1, -1))
        predicted = tf.argmax(scores[:, whole_image], axis=-1, output_type=tf.int32)
        picked = tf.where(classes < 0, predicted, classes)
        return tf.gather(tf.transpose(scores, (0, 2, 1)), picked, batch_dims=1), picked

    def run(images, keys, thresholds, classes, baseline):
        count = tf.shape(images)[0]
        one_for_all = tf.shape(baseline)[0] == 1

        def step(start, curves, picked):
            part = slice(start, tf.minimum(start + per_call, count))
            base = tf.cond(one_for_all, lambda: baseline, lambda: baseline[part])
            found = curves_of(images[part], keys[part], thresholds[part], classes[part], base)
            return start + per_call, curves.write(start // per_call, found[0]), \
                picked.write(start // per_call, found[1])

        parts = (tf.TensorArray(tf.float32, 0, dynamic_size=True, infer_shape=False),
                 tf.TensorArray(tf.int32, 0, dynamic_size=True, infer_shape=False))
        _, curves, picked = tf.while_loop(lambda start, *_: start < count, step,
                                          (tf.constant(0),) + parts, parallel_iterations=1)
        return curves.concat(), picked.concat()

    signature = [tf.TensorSpec((None,) + tuple(input_shape), tf.float32),
                 tf.TensorSpec((None, height, width), tf.int64),
                 tf.TensorSpec((None, steps + 1), tf.int64),
                 tf.TensorSpec((None,), tf.int32),
                 tf.TensorSpec((None,) + tuple(input_shape), tf.float32)]
    return tf.function(run, input_signature=signature)


def _perturbation(kind, model, images, maps, class_index, steps, baseline, batch_size, count,
                  strategy) -> Curves:
    check_batch_size(batch_size)
    strategy = replicas.strategy_for(strategy)
    source, anatomy, batches = paired(model, images, maps, class_index, count)
    pixels = source.shape[0] * source.shape[1]
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or not 1 <= steps <= pixels:
        raise InputError(f"steps must be an int from 1 to H * W = {pixels}; got {steps!r}.")
    steps = int(steps)
    one, rows_of = _baseline(baseline, source.shape)
    shared = () if one is None else (tf.constant(one),)  # one for all: a tensor, made once
    counts = np.round(np.arange(steps + 1) * pixels / steps).astype("int64")
    per_call = max(1, (batch_size or default_batch_size(source.shape, False)) // (steps + 1))
    per_call = min(per_call, 1 << 24)  # the graph's loop counts images in int32
    run = graph.cached_per_model(_CURVES, model, (anatomy.input_shape, kind, steps, per_call),
                                 lambda: _curve_function(anatomy, steps, kind, per_call))
    curves, chosen = [], []
    # Maps are ranked about RANKED at a time (one NumPy call each), a whole number of forward
    # passes; each such batch is one call, whose loop runs per_call images a forward pass
    for offset, batch, batch_maps, classes in batches(per_call * -(-RANKED // per_call)):
        keys = _rank_keys(batch_maps)  # paired checked them
        rows = (batch, keys.reshape(batch_maps.shape), _step_thresholds(keys, counts), classes)
        if rows_of:
            rows += (rows_of(batch, offset),)
        found = replicas.run(run, rows, shared, strategy)
        curves.append(found[0])
        chosen.append(found[1])
    curves, chosen = np.concatenate(curves), np.concatenate(chosen)
    if not np.isfinite(curves).all():
        raise ModelError("The model gave NaN or Inf probabilities; check its weights "
                         "(np.isfinite(model.predict(images)).all()).")
    auc = (curves.sum(axis=1, dtype="float64") - (curves[:, 0] + curves[:, -1]) / 2.0) / steps
    return Curves(curves=curves.astype("float32"), auc=auc, fractions=counts / pixels,
                  class_index=chosen.astype("int64"), kind=kind)


def deletion(model, images, maps, class_index=None, steps=50, baseline=0.0,
             batch_size=None, *, count=None, strategy=None) -> Curves:
    """Deletion (Petsiuk et al. 2018, RISE, BMVC, sec. 4.1): lower AUC is better.

    images: (N, H, W, C) as the model takes them; maps: (N, H, W) at the
    image's size. Step i (0 .. ``steps``) replaces the round(i * P / steps)
    pixels of highest map value (P = H * W; ties in pixel order, all channels
    of a pixel) by ``baseline``: a number, an array that broadcasts to the
    images ((H, W, C) or (N, H, W, C)), "blur" (camlab's own: a Gaussian blur
    of the image, sigma 5 * H / 224, edges padded with the nearest pixel) or
    "mean" (the image's mean colour). RISE's code blurs differently (an 11x11
    kernel of sigma 5, zero padding: nearly a box filter), so insertion AUCs
    with "blur" are not RISE's numbers. Pixels of equal map value are taken in
    pixel order (a stable sort; RISE's reversed quicksort takes them in
    another order, which changes a curve wherever a map has ties). ``steps``
    splits the pixels into that many equal parts; RISE's code moves a fixed
    number of pixels a step (224 in its examples).
    The curve is the probability of ``class_index`` (None: the class predicted
    for the whole image) after each step; ``batch_size`` caps the images in one
    forward pass (all steps of several images go through it together).
    ``images`` may be a ``tf.data.Dataset`` (batches (B, H, W, C), or (images,
    int labels) whose labels replace ``class_index``), read one batch at a time,
    with ``maps`` an array (N, H, W) or a dataset of (B, H, W) maps batched alike;
    ``count`` bounds it (``camlab.stream``); ``strategy`` splits each forward pass
    across a ``tf.distribute`` strategy's replicas (default: the active one).
    Returns ``Curves``: curves (N, steps + 1), auc (N,).
    """
    return _perturbation("deletion", model, images, maps, class_index, steps, baseline, batch_size,
                         count, strategy)


def insertion(model, images, maps, class_index=None, steps=50, baseline=0.0,
              batch_size=None, *, count=None, strategy=None) -> Curves:
    """Insertion (Petsiuk et al. 2018, RISE, BMVC, sec. 4.1): higher AUC is better.

    The reverse of ``deletion``, with the same arguments: step i shows the
    round(i * P / steps) pixels of highest map value of the image over the
    ``baseline`` image (RISE starts from a blurred image; ``baseline="blur"``
    is camlab's blur, see ``deletion``),
    so step 0 is the baseline and the last step the whole image. Datasets,
    ``count`` and ``strategy`` as in ``deletion``.
    Returns ``Curves``: curves (N, steps + 1), auc (N,).
    """
    return _perturbation("insertion", model, images, maps, class_index, steps, baseline,
                         batch_size, count, strategy)
