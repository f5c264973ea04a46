"""Notebook 05's exercises (judging explanations): the learner's own metrics,
Average Drop from the two probabilities, the IoU of two pixel boxes, and how
many deletion steps halve the model's probability.

Notebook 05 has no source tutorial: its metrics come from the papers, as
``camlab.metrics`` computes them (``average_drop``, ``box_iou``, ``deletion``),
and each check compares the learner's function with them.
"""

from __future__ import annotations

import numpy as np

from camlab.exercises.framework import exercise, report, run_check
from camlab.exercises.questions import question
from camlab.metrics import box_iou


def reference_average_drop(original, masked):
    """Average Drop in % (Chattopadhay et al. 2018, sec. 6.1.1): 100 * mean_i max(0, Y_i - O_i) / Y_i.

    original: (N,) the class probability Y of each whole image, > 0; masked: (N,) the
    probability O of the same class on the image multiplied by its map. -> a float
    in [0, 100]: how much of its confidence the model loses, on average, when it sees
    only what the map shows. A rise (O > Y) counts as no drop.
    """
    original, masked = np.asarray(original, "float64"), np.asarray(masked, "float64")
    return float(100.0 * np.mean(np.maximum(0.0, original - masked) / original))


def _confidence_cases(seed=6):
    rng = np.random.default_rng(seed)
    cases = []
    for count in (6, 9):
        original = rng.uniform(0.3, 1.0, count)
        masked = np.clip(original + rng.normal(scale=0.3, size=count), 0.01, 1.0)  # drops and rises
        cases.append((original, masked))
    return cases


@exercise("05", "Average Drop by hand", "my_average_drop", reference_average_drop)
def check_average_drop(function) -> bool:
    """Notebook 05: ``function(original, masked)`` -> Average Drop in %, a float.

    original, masked: float (N,), each image's class probability whole and masked by
    its map. Expected: 100 * mean of max(0, original - masked) / original.
    """
    def mistakes(original, masked):
        drop = original - masked
        return {
            "You let rises count: where the masked image is more probable (O > Y), the drop is "
            "negative, and Average Drop counts it as 0: max(0, Y - O).": 100 * np.mean(drop / original),
            "Right, but as a fraction: Average Drop is in percent (times 100).":
                np.mean(np.maximum(0, drop) / original),
            "You divided by the masked probability O: the drop is relative to the whole "
            "image's, Y.": 100 * np.mean(np.maximum(0, drop) / masked),
            "You averaged the drops and the probabilities separately: divide each image's drop "
            "by its own Y, then average.":
                100 * np.mean(np.maximum(0, drop)) / np.mean(original),
            "That is the drop of the mean, not the mean of the drops: max(0, Y - O) / Y per "
            "image first.": 100 * max(0.0, np.mean(drop)) / np.mean(original),
        }

    def hints(original, masked):
        return {f"shape:{original.shape}": "One number for the whole set: the mean over the images."}

    return report(run_check(function, _confidence_cases(), reference_average_drop, hints, mistakes))


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


def reference_steps_to_half(curve):
    """How many steps a deletion curve takes to lose half its start: the first index i with
    curve[i] <= curve[0] / 2, or len(curve) when it never does. curve: (steps + 1,)
    probabilities, curve[0] the whole image's. -> int in [1, len(curve)] (0 only for a
    curve that starts at 0).
    """
    curve = np.asarray(curve, dtype="float64")
    below = np.flatnonzero(curve <= curve[0] / 2)
    return int(below[0]) if len(below) else len(curve)


def _half_cases():
    return [(np.array([0.9, 0.8, 0.6, 0.45, 0.2, 0.1]),),  # exactly half at step 3
            (np.array([0.6, 0.55, 0.5, 0.35, 0.28, 0.1]),),  # below 0.5 early, half (0.3) later
            (np.array([0.99, 0.9, 0.8, 0.7]),),  # never: len(curve)
            (np.array([0.4, 0.3, 0.25, 0.19, 0.1]),),  # starts below 0.5
            (np.array([0.8, 0.3, 0.6, 0.2]),)]  # falls, rises, falls: the first time counts


@exercise("05", "steps to half the probability", "steps_to_half", reference_steps_to_half)
def check_steps_to_half(function) -> bool:
    """Notebook 05: ``function(curve)`` -> the first step at which a deletion curve is at
    most half its start (curve[0] / 2), or len(curve) if it never is."""
    def mistakes(curve):
        def first(condition, otherwise=len(curve)):
            hits = np.flatnonzero(condition)
            return float(hits[0]) if len(hits) else float(otherwise)
        return {
            "You compared with 0.5, not with half of where the curve starts: a model that "
            "starts at p = 0.6 has lost half at 0.3.": first(curve <= 0.5),
            "Half counts: the step where the curve is exactly curve[0] / 2 is the answer (<=, "
            "not <).": first(curve < curve[0] / 2),
            "When the curve never halves, return len(curve) (more steps than it has), not "
            "the last index.": first(curve <= curve[0] / 2, len(curve) - 1),
            "That is the last step above half, one too early: the first step at or below half.":
                first(curve <= curve[0] / 2) - 1,
            "You returned a fraction of the steps: return the step's index.":
                first(curve <= curve[0] / 2) / (len(curve) - 1),
        }

    def as_number(curve):
        answer = function(curve)
        return float(answer) if isinstance(answer, (int, np.integer, float, np.floating)) else answer

    return report(run_check(as_number, _half_cases(), lambda c: float(reference_steps_to_half(c)),
                            mistakes_for=mistakes))


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
