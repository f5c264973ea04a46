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
from camlab.exercises.questions import question
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


# -- the questions at the end of notebook 05 (their text is in the notebook)

question("05", 1, "the images a deletion curve costs", 1300,
         "Each image's curve has STEPS + 1 points (0 to 25 steps), each a forward pass: "
         "50 x 26 = 1,300 images, per method. That is why the notebook scores the curves on "
         "fewer images than the rest.",
         {1250: "That forgets the first point of each curve: the image before anything is "
                "removed, STEPS + 1 points in all.",
          26: "That is one image's curve; there are 50 images.",
          25: "That is one image's steps; each of the 50 images has a curve of STEPS + 1 points."})

question("05", 2, "a faithful map's deletion curve", "a",
         "Removing first the pixels the model needs most makes its probability fall fastest: "
         "a low area under the deletion curve (and a high one under insertion).",
         {"b": "That is what a map of unimportant pixels gives: removing them first leaves the "
               "probability up for long.",
          "c": "A random map removes pixels in no useful order; a faithful one should do "
               "better than that."})

question("05", 3, "why score a random and a centre map", "a",
         "The digits lie near the middle of many canvases: a map that knows nothing about the "
         "model can score well. A method's score means what it beats these baselines by.",
         {"b": "The baselines are not tests of camlab (the unit tests are); they are the "
               "floor a method must clear.",
          "c": "They are scored on their own, row by row in the table; nothing is averaged "
               "with them."})

question("05", 4, "IoU of two boxes", 25 / 175,
         "Each box is 10 x 10 = 100 pixels (inclusive: x_max - x_min + 1 wide); they share "
         "5 x 5 = 25, the union is 100 + 100 - 25 = 175, and 25 / 175 = 0.143.",
         {16 / 146: "You counted a box as x_max - x_min wide: with inclusive pixels it is "
                    "x_max - x_min + 1.",
          25 / 100: "That is the shared part over one box: divide by the union of both.",
          25 / 200: "The union counts the shared pixels once: 100 + 100 - 25."},
         tolerance=0.01)

question("05", 5, "maps that survive a random model", "a",
         "If the weights are random and the map barely changes, the map cannot be about what "
         "the model learned: it shows the image (edges, ink), as guided backprop does.",
         {"b": "Robust to what? The model it explains was destroyed; a map that does not "
               "notice is not explaining it.",
          "c": "The sanity check is a test a method can fail; high rank correlation after "
               "randomising is the failure."})

question("05", 6, "why choose the threshold on validation images", "a",
         "A threshold picked for the test images also fits their chance quirks; its test score "
         "is then optimistic. Choose on validation, report on test.",
         {"b": "The test canvases have boxes (the IoU needs them); the reason is what picking "
               "on them would do to the score.",
          "c": "It is the same computation on either set; the question is which set's score "
               "you can trust afterwards."})
