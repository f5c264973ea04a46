"""Operations on maps themselves: upsampling and normalising (notebook 01).

A map here is a float array (N, h, w): one value per feature-map position and
image. Both functions work on a whole batch at once and are used inside the
compiled pipeline (TensorFlow tensors) and, through thin NumPy wrappers, by
learners and by ``camlab.viz``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from camlab.errors import InputError

INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area", "lanczos3")
# A map whose values span less than this fraction of their magnitude is flat:
# float32 carries about 7 significant digits, so smaller spans are rounding noise.
FLAT_SPAN = 1e-6


def upsample_tensor(maps, size, method="bilinear"):
    """Resize maps (N, h, w) to (N, H, W) with ``tf.image.resize``, in one call."""
    resized = tf.image.resize(maps[..., tf.newaxis], size, method=method)
    return resized[..., 0]


def normalize_tensor(maps):
    """Min-max scale each map (N, H, W) to [0, 1]; a flat map becomes all zeros."""
    low = tf.reduce_min(maps, axis=(1, 2), keepdims=True)
    high = tf.reduce_max(maps, axis=(1, 2), keepdims=True)
    span = high - low
    magnitude = tf.maximum(tf.abs(high), tf.abs(low))
    flat = span <= FLAT_SPAN * magnitude
    scaled = (maps - low) / tf.where(flat, tf.ones_like(span), span)
    return tf.where(flat, tf.zeros_like(maps), tf.clip_by_value(scaled, 0.0, 1.0))


def as_maps(maps, name="maps", *, single=True, finite=True):
    """Check maps and return them as float (N, h, w), and whether one map was given.

    Accepts one map (h, w) when ``single``, else only a batch (N, h, w). Refuses,
    with an ``InputError`` that says what to pass: non-numeric values, other
    ranks, maps with no pixels, and (when ``finite``) NaN or Inf, so that
    every map helper treats NaN the same way: as an error, never a silent answer.
    """
    try:
        array = np.asarray(maps)
    except (ValueError, TypeError):
        array = np.asarray(maps, dtype=object)
    if array.dtype == object or array.dtype.kind not in "fiub":
        raise InputError(f"{name} must be numeric arrays; got dtype {array.dtype}.")
    wanted = "one map (h, w) or a batch (N, h, w)" if single else "a batch (N, h, w)"
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
    if finite and not np.isfinite(array).all():
        raise InputError(
            f"{name} contain {int(np.isnan(array).sum())} NaN and "
            f"{int(np.isinf(array).sum())} Inf values; camlab's maps are always finite. "
            "Replace them first, e.g. np.nan_to_num(maps)."
        )
    return array, one


def _as_maps(maps, name="maps"):
    array, one = as_maps(maps, name, finite=False)
    return array.astype("float32", copy=False), one


def upsample(maps, size, method="bilinear"):
    """Resize one map (h, w) or a batch (N, h, w) to ``size`` = (H, W).

    Seed 002 upsamples with ``scipy.ndimage.zoom(order=2)`` and seed 001 with
    cubic interpolation; camlab resizes the whole batch in one
    ``tf.image.resize`` call. ``method`` is one of "bilinear" (default),
    "bicubic", "nearest", "area", "lanczos3". Returns float32 of the same rank.
    """
    if not isinstance(method, str) or method not in INTERPOLATIONS:
        raise InputError(f"method must be one of {INTERPOLATIONS}, got {method!r}.")
    batch, single = _as_maps(maps)
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise InputError(f"size must be (H, W), two positive ints; got {size!r}.") from None
    if height < 1 or width < 1:
        raise InputError(f"size must be (H, W), two positive ints; got {size!r}.")
    out = upsample_tensor(tf.constant(batch), (height, width), method).numpy()
    return out[0] if single else out


def normalize(maps):
    """Scale each map to [0, 1] by its own minimum and maximum.

    One map (h, w) or a batch (N, h, w); float32 out, same shape. A constant
    map (nothing to see) comes back as zeros, never NaN. NaN in the input is
    an error.
    """
    batch, single = as_maps(maps)
    batch = batch.astype("float32", copy=False)
    out = normalize_tensor(tf.constant(batch)).numpy()
    return out[0] if single else out
