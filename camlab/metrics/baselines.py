"""Baselines every map must beat (notebook 05): noise, a centre bump, edges.

pytorch-grad-cam advises comparing every method with such simple maps; a
metric that does not separate a method from these measures nothing.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from camlab.errors import InputError


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
