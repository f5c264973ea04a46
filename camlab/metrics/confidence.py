"""Average Drop and Increase in Confidence (Chattopadhay et al. 2018, Grad-CAM++,
sec. 6.1.1; notebook 05): the class probability of the image masked by its own map.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from camlab import replicas
from camlab.checks import as_maps, check_batch_size
from camlab.errors import InputError
from camlab.pipeline import class_probabilities, default_batch_size
from camlab.stream import is_dataset, paired


@dataclasses.dataclass(frozen=True)
class Confidence:
    """The class probability of each image, whole (``original``) and masked by its map
    (``masked``): float32 (N,) each; ``class_index`` int64 (N,)."""

    original: np.ndarray
    masked: np.ndarray
    class_index: np.ndarray


def masked_confidence(model, images, maps, class_index=None, batch_size=None, *, count=None,
                      strategy=None) -> Confidence:
    """Y^c = f(x) and O^c = f(x * M) (Chattopadhay et al. 2018, sec. 6.1.1).

    maps: (N, H, W) in [0, 1] at the image's size (camlab's normalised maps);
    every channel of pixel (i, j) is multiplied by M_ij. class_index None: the
    class predicted for the whole image. ``images`` may be a ``tf.data.Dataset``
    (batches, or (images, int labels) whose labels replace ``class_index``), read
    one batch at a time, with ``maps`` an array or a dataset of maps batched alike;
    ``count`` bounds it (``camlab.stream``); ``strategy`` splits each forward pass
    across a ``tf.distribute`` strategy's replicas (default: the active one).
    """
    check_batch_size(batch_size)
    strategy = replicas.strategy_for(strategy)
    _, anatomy, batches = paired(model, images, maps, class_index, count)
    maps_stream = is_dataset(maps)
    if not maps_stream:
        _check_range(as_maps(maps)[0])  # all of them, before any image runs
    size = batch_size or default_batch_size(anatomy.input_shape, False)
    found = []
    for _, batch, batch_maps, classes in batches(max(1, size // 2)):
        if maps_stream:  # a stream's maps are known only batch by batch
            _check_range(batch_maps)
        masked = (batch * batch_maps[..., np.newaxis]).astype("float32")
        both = class_probabilities(model, np.concatenate([batch, masked]), batch_size,
                                   strategy=strategy)
        whole, covered = both[:len(batch)], both[len(batch):]
        chosen = np.where(classes < 0, whole.argmax(axis=-1), classes)
        rows = np.arange(len(batch))
        found.append((whole[rows, chosen], covered[rows, chosen], chosen.astype("int64")))
    return Confidence(*(np.concatenate(part) for part in zip(*found)))


def _check_range(maps):
    if maps.min() < 0.0 or maps.max() > 1.0:
        raise InputError("maps must lie in [0, 1] to mask an image; scale them first "
                         "(camlab.normalize(maps)).")


def average_drop(model, images, maps, class_index=None, batch_size=None, *, count=None,
                 strategy=None) -> float:
    """Average Drop % (Chattopadhay et al. 2018, eq. 21): lower is better.

    100 / N * sum_i max(0, Y_i^c - O_i^c) / Y_i^c, with Y the class probability
    of image i and O that of the image masked by its map (``masked_confidence``;
    datasets, ``count`` and ``strategy`` as there).
    """
    found = masked_confidence(model, images, maps, class_index, batch_size, count=count,
                              strategy=strategy)
    drop = np.maximum(found.original - found.masked, 0.0) / np.maximum(found.original, 1e-12)
    return float(100.0 * drop.mean())


def increase_in_confidence(model, images, maps, class_index=None, batch_size=None, *, count=None,
                           strategy=None) -> float:
    """Increase in Confidence % (Chattopadhay et al. 2018, eq. 22): higher is better.

    100 / N * sum_i 1[O_i^c > Y_i^c]: how often masking the image by its own
    map raises the class probability (``masked_confidence``; datasets, ``count``
    and ``strategy`` as there).
    """
    found = masked_confidence(model, images, maps, class_index, batch_size, count=count,
                              strategy=strategy)
    return float(100.0 * (found.masked > found.original).mean())
