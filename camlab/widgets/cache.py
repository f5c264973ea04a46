"""The explorer's maps and probabilities, computed in blocks and cached (no ipywidgets here).

A ``MapCache`` holds one checked batch of images and answers, for any image,
class and method, the map (H, W) in [0, 1] and the image's probabilities.
Maps come from ``camlab.explain`` in blocks of ``block`` images: one batched
call per method, class key and block (or several consecutive blocks at once
when prefetching). The class key is the class index, or ``PREDICTED`` for
"each image's predicted class", so the maps the explorer shows first are one
call for the whole block. A method whose map does not depend on the class
(``Method.class_specific`` False, Eigen-CAM) is always computed under
``PREDICTED``, with ``class_index=None``: ``camlab.explain`` refuses a class for it.

The cache keeps the ``CACHE_BLOCKS`` blocks used most recently;
``prefetch`` computes the predicted-class maps of the first blocks (all of
them for small sets) within ``PREFETCH_VALUES`` map values. Tests patch
these constants, and ``explain``, in this module.
"""

from __future__ import annotations

import collections

import numpy as np

from camlab.anatomy import read_model
from camlab.errors import ModelError
from camlab.methods import METHODS
from camlab.pipeline import default_batch_size, explain, read

CACHE_BLOCKS = 256  # blocks of maps kept (least recently used go first)
PREFETCH_VALUES = 1 << 23  # map values computed ahead of time (32 MB of float32)
PREDICTED = -1  # the cache's class key for "each image's predicted class"


def method_availability(model, input_shape=None) -> tuple:
    """Which registered methods apply to ``model``: ({name: title}, {name: why not}).

    ``input_shape``: (H, W, C), default the model's. Read from
    ``camlab.METHODS`` at call time. A method that needs a GAP + Dense head
    (``Method.gap_head``, i.e. CAM) is unavailable on other models; the reason
    is the message ``camlab.explain`` would raise.
    """
    anatomy = read_model(model, input_shape)
    available, unavailable = {}, {}
    for name, entry in METHODS.items():
        try:
            anatomy.feature_layer(None, for_cam=entry.gap_head)
        except ModelError as error:
            unavailable[name] = str(error)
        else:
            available[name] = entry.title
    return available, unavailable


def class_specific(method) -> bool:
    """Whether ``method``'s map depends on the class (True for names no longer registered)."""
    entry = METHODS.get(method)
    return entry is None or entry.class_specific


class MapCache:
    """Maps and probabilities of ``images`` under ``model``, computed a block at a time.

    Args:
        model: a Keras 3 classifier, as for ``camlab.explain``.
        images: float (N, H, W, C) (or one image), scaled as the model was trained;
            checked as ``camlab.explain`` checks them (an ``InputError`` otherwise).
        layer: the layer to explain (default as in ``camlab.explain``).
        block_size: images per block and per batched call (default from the image size, <= 128).

    Attributes: ``images`` float32 (N, H, W, C); ``anatomy``; ``num_classes``;
    ``block``; ``probabilities`` float32 (N, num_classes) in [0, 1], NaN rows
    for images not run yet; ``blocks_computed``, the blocks of maps computed so
    far (tests, benchmark); ``method``, the method last asked for, which also
    computes the probabilities an image still lacks.
    """

    def __init__(self, model, images, layer=None, block_size=None):
        self.images, self.anatomy = read(model, images)
        self.model, self.layer = model, layer
        self.num_classes = self.anatomy.head.num_classes
        self.block = int(block_size or min(128, default_batch_size(self.images.shape[1:], True)))
        self.probabilities = np.full((len(self.images), self.num_classes), np.nan, dtype="float32")
        self.blocks_computed = 0
        self.method = "cam" if "cam" in METHODS else next(iter(METHODS))
        self._blocks = collections.OrderedDict()  # (method, class key, block) -> float32 (B, H, W)

    def __len__(self) -> int:
        return len(self.images)

    # -- computing -------------------------------------------------------
    def _compute(self, method, key, first, count=1):
        """Maps of ``count`` blocks from block ``first`` for one class key, in one
        batched call; each block (B, H, W) goes into the cache."""
        start = first * self.block
        chunk = self.images[start:start + count * self.block]
        classes = None if key == PREDICTED else np.full(len(chunk), key, dtype="int64")
        result = explain(self.model, chunk, method, class_index=classes, layer=self.layer,
                         batch_size=self.block)
        self.probabilities[start:start + len(chunk)] = result.probabilities
        for block in range(first, first + -(-len(chunk) // self.block)):
            offset = (block - first) * self.block
            self._blocks[(method, key, block)] = result.maps[offset:offset + self.block]
            self.blocks_computed += 1
        while len(self._blocks) > CACHE_BLOCKS:
            self._blocks.popitem(last=False)

    def _maps(self, method, key, block) -> np.ndarray:
        """float32 (B, H, W) in [0, 1]: one block's maps, computed if not cached."""
        cache_key = (method, key, block)
        if cache_key not in self._blocks:
            self._compute(method, key, block)
        self._blocks.move_to_end(cache_key)
        return self._blocks[cache_key]

    def prefetch(self, method):
        """Predicted-class maps of ``method`` and probabilities ahead of time: the
        first blocks (all of a small set) within ``PREFETCH_VALUES`` map values."""
        self.method = method
        per_block = self.block * int(np.prod(self.images.shape[1:3]))
        blocks = -(-len(self.images) // self.block)
        budget = min(PREFETCH_VALUES // per_block, CACHE_BLOCKS // 2)
        self._compute(method, PREDICTED, 0, max(1, min(blocks, budget)))

    # -- looking up ------------------------------------------------------
    def probability_row(self, index) -> np.ndarray:
        """float32 (num_classes,) in [0, 1]: image ``index``'s class probabilities.

        An image not run yet costs one batched call for its block (the
        predicted-class maps of ``self.method``, which the view needs next).
        """
        if np.isnan(self.probabilities[index, 0]):
            self._maps(self.method, PREDICTED, index // self.block)
        return self.probabilities[index]

    def predicted(self, index) -> int:
        """The class the model predicts for image ``index`` (0 .. num_classes - 1)."""
        return int(self.probability_row(index).argmax())

    def class_key(self, index, class_index, method) -> int:
        """Where the map of (image, class, method) is cached: ``PREDICTED`` for the
        predicted class and for class-agnostic methods, else ``class_index``."""
        if not class_specific(method) or class_index == self.predicted(index):
            return PREDICTED
        return int(class_index)

    def heatmap(self, index, class_index, method) -> np.ndarray:
        """The map float32 (H, W) in [0, 1] of image ``index`` for ``class_index``
        (0 .. num_classes - 1) by ``method``, from the cache (computed once per block)."""
        self.method = method
        block, offset = divmod(index, self.block)
        return self._maps(method, self.class_key(index, class_index, method), block)[offset]

    def cached(self, index, class_index, method):
        """The map as ``heatmap`` if it is already cached, else None (computes nothing
        but the image's probabilities)."""
        block, offset = divmod(index, self.block)
        maps = self._blocks.get((method, self.class_key(index, class_index, method), block))
        return None if maps is None else maps[offset]
