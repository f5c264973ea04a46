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


def _as_maps(maps, name="maps"):
    array = np.asarray(maps, dtype="float32")
    if array.ndim == 2:
        return array[np.newaxis], True
    if array.ndim != 3:
        raise InputError(
            f"{name} must be one map (h, w) or a batch (N, h, w); got shape {array.shape}."
        )
    return array, False


def upsample(maps, size, method="bilinear"):
    """Resize one map (h, w) or a batch (N, h, w) to ``size`` = (H, W).

    Seed 002 upsamples with ``scipy.ndimage.zoom(order=2)`` and seed 001 with
    cubic interpolation; camlab resizes the whole batch in one
    ``tf.image.resize`` call. ``method`` is one of "bilinear" (default),
    "bicubic", "nearest", "area", "lanczos3". Returns float32 of the same rank.
    """
    if method not in INTERPOLATIONS:
        raise InputError(f"method must be one of {INTERPOLATIONS}, got {method!r}.")
    batch, single = _as_maps(maps)
    height, width = (int(s) for s in size)
    out = upsample_tensor(tf.constant(batch), (height, width), method).numpy()
    return out[0] if single else out


def normalize(maps):
    """Scale each map to [0, 1] by its own minimum and maximum.

    One map (h, w) or a batch (N, h, w); float32 out, same shape. A constant
    map (nothing to see) comes back as zeros, never NaN. NaN in the input is
    an error.
    """
    batch, single = _as_maps(maps)
    if not np.isfinite(batch).all():
        raise InputError("maps contain NaN or Inf; camlab cannot normalise them.")
    out = normalize_tensor(tf.constant(batch)).numpy()
    return out[0] if single else out
