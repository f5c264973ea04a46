"""Baselines every map must beat (notebook 05): noise, a centre bump, edges.

pytorch-grad-cam advises comparing every method with such simple maps; a
metric that does not separate a method from these measures nothing.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from camlab.checks import check_count, check_number, check_size
from camlab.errors import InputError


def random_maps(count, size, seed=0) -> np.ndarray:
    """float32 (count, H, W) of uniform noise in [0, 1]: a map that knows nothing.

    count: a whole number >= 1; size: (H, W); seed: a whole number >= 0.
    """
    count, (height, width) = check_count(count), check_size(size)
    seed = check_count(seed, "seed", low=0)
    return np.random.default_rng(seed).random((count, height, width)).astype("float32")


def centre_maps(count, size, sigma=None) -> np.ndarray:
    """float32 (count, H, W): a Gaussian bump at the image centre, peak 1.

    ``sigma`` defaults to a quarter of the smaller side. Objects are often near
    the centre, so this guess is the one to beat (Zhang et al. 2018 use it too).
    """
    count, (height, width) = check_count(count), check_size(size)
    sigma = min(height, width) / 4.0 if sigma is None else check_number(sigma, "sigma", positive=True)
    rows = (np.arange(height) - (height - 1) / 2.0)[:, None]
    columns = (np.arange(width) - (width - 1) / 2.0)[None, :]
    bump = np.exp(-(rows ** 2 + columns ** 2) / (2.0 * sigma ** 2))
    return np.broadcast_to(bump / bump.max(), (int(count), height, width)).astype("float32")


def edge_maps(images) -> np.ndarray:
    """float32 (N, H, W) in [0, 1]: the Sobel gradient magnitude of each image.

    The channels are averaged first; each map is scaled by its own maximum.
    Each image is filtered on its own (the filter never reaches across the
    batch). pytorch-grad-cam suggests such an edge detector as a map every
    method must beat. images: (N, H, W, C) or (N, H, W), finite numbers.
    """
    try:
        batch = np.asarray(images, dtype="float64")
    except (TypeError, ValueError):
        raise InputError(f"images must be a numeric array (N, H, W, C); got "
                         f"{type(images).__name__}.") from None
    if batch.ndim == 3:
        batch = batch[..., np.newaxis]
    if batch.ndim != 4 or 0 in batch.shape:
        raise InputError(f"images must be (N, H, W, C) or (N, H, W); got {np.shape(images)}.")
    if not np.isfinite(batch).all():
        raise InputError("images contain NaN or Inf values; fix or drop those images first.")
    gray = batch.mean(axis=-1)
    magnitude = np.hypot(_sobel(gray, axis=1), _sobel(gray, axis=2))
    peak = magnitude.max(axis=(1, 2), keepdims=True)
    return (magnitude / np.where(peak > 0, peak, 1.0)).astype("float32")


def _sobel(gray, axis):
    """The Sobel derivative of each image of (N, H, W) along ``axis`` (1: rows, 2: columns):
    [-1, 0, 1] along it, [1, 2, 1] along the other spatial axis, never along the batch."""
    derivative = ndimage.correlate1d(gray, [-1.0, 0.0, 1.0], axis=axis, mode="reflect")
    return ndimage.correlate1d(derivative, [1.0, 2.0, 1.0], axis=3 - axis, mode="reflect")
