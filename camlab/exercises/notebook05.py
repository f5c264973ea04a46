"""Notebook 05's exercises (judging explanations): the learner's own metrics,
the pointing game for one map, the IoU of two pixel boxes and the area under
a deletion or insertion curve.

Notebook 05 has no source tutorial: its metrics come from the papers, as
``camlab.metrics`` computes them (``pointing_game``, ``box_iou``, and the
area under the curves of ``deletion`` and ``insertion``), and each check
compares the learner's function with them.
"""

from __future__ import annotations

import numpy as np

from camlab.exercises.framework import exercise, report, run_check
from camlab.metrics import box_iou, pointing_game


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
    def answer_as_float(*case):  # True/False (or 1/0) as 1.0/0.0; anything else as it is
        answer = function(*case)
        if isinstance(answer, (bool, np.bool_)) or (
                isinstance(answer, (int, np.integer)) and answer in (0, 1)):
            return float(answer)
        return answer

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
