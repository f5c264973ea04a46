"""Localization: does a map point at the object, and does its box fit? (notebook 05)

- ``pointing_game`` (Zhang et al. 2016/2018): does the map's maximum fall on
  the object, within a tolerance in pixels?
- ``box_iou`` and ``box_localization`` (Zhou et al. 2016, sec. 3): the CAM
  paper's box (20% of the map's maximum, largest region) against the true box,
  correct at IoU >= 0.5.

Maps, boxes and masks are checked by ``camlab.checks``: NaN is an error.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from camlab.boxes import THRESHOLD, boxes_from_maps, map_peaks
from camlab.checks import as_map_batch, box_table, check_number
from camlab.errors import InputError


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
    maps = as_map_batch(maps)
    tolerance = check_number(tolerance, "tolerance (a distance in pixels)", low=0)
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
        table = box_table(targets, len(maps), size=maps.shape[1:])
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
    if isinstance(box, (str, bytes)) or not hasattr(box, "__len__"):
        return True  # not a box at all: box_table says so
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
    a, b = box_table(box_a, count), box_table(box_b, len(box_b))
    if len(b) != count:
        raise InputError(f"{count} boxes against {len(b)}; pass the same number.")
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
    maps = as_map_batch(maps)
    min_iou = check_number(min_iou, "min_iou", low=0.0, high=1.0)
    true_boxes = box_table(true_boxes, len(maps), size=maps.shape[1:])
    boxes = boxes_from_maps(maps, threshold)
    iou = box_iou(boxes, true_boxes)
    return BoxScores(boxes=boxes, iou=iou, correct=iou >= min_iou)
