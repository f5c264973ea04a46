"""The sanity check: model randomisation (Adebayo et al. 2018, sec. 3.1; notebook 05).

A copy of the model has its layers randomised one by one from the top, and
the maps after each step are compared with the trained model's by ``spearman``
rank correlation and ``ssim`` (Wang et al. 2004). The user's model is never
modified.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from scipy import ndimage, stats

from camlab.anatomy import read_model
from camlab.checks import as_map_batch, check_method, class_indices
from camlab.errors import InputError, ModelError
from camlab.methods import METHODS
from camlab.pipeline import class_probabilities, explain, read


def spearman(maps_a, maps_b) -> np.ndarray:
    """Spearman rank correlation of each pair of maps: (N, H, W) x2 -> float64 (N,).

    Pearson correlation of the pixel ranks (ties get their average rank);
    a pair with a flat map has no order and scores 0.
    """
    a, b = as_map_batch(maps_a, "maps_a"), as_map_batch(maps_b, "maps_b")
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
    a, b = as_map_batch(maps_a, "maps_a"), as_map_batch(maps_b, "maps_b")
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
    """``(model, images, classes) -> maps``: a registered method's maps at ``layer``, or ``method``.

    A method whose map does not depend on the class (Eigen-CAM) is called without one.
    """
    if callable(method):
        return method
    entry = check_method(method, METHODS)

    def maps(model, images, classes):
        return explain(model, images, method, classes if entry.class_specific else None,
                       layer).maps

    return maps


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
    batch, anatomy = read(model, images)
    if class_index is None:
        classes = class_probabilities(model, batch).argmax(axis=-1)
    else:
        classes = class_indices(class_index, len(batch), anatomy.head.num_classes)
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    except Exception as error:  # noqa: BLE001 (Keras raises many kinds here)
        raise ModelError(f"camlab could not copy model {model.name!r} to randomise it "
                         f"({error}); the check needs keras.models.clone_model to work.") from error
    calls = [c for c in read_model(copy, batch.shape[1:]).calls
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
