"""Notebook 03's exercises (CAM on cats vs. dogs, and boxes from maps): the map
of the class the model did not choose, and the box from a map.

Notebook 03 comes from part II of a four-part blog series on the black box of
CNNs, which computes Class Activation Maps of a pretrained ResNet50 fitted on
cats vs. dogs, and from the tutorial "Implementation of Class Activation Map
(CAM) with PyTorch" (a VGG16). The box is the CAM paper's (Zhou et al. 2016,
sec. 3): pixels >= 20% of the map's maximum, the largest connected region.
"""

from __future__ import annotations

import traceback

import numpy as np

from camlab.boxes import box_from_map
from camlab.exercises.framework import Verdict, exercise, report, run_check
from camlab.exercises.notebook01 import reference_cam
from camlab.exercises.questions import question


def reference_decision_map(feature_maps, kernel, bias, chosen, other):
    """Why class ``chosen`` and not ``other``: D = M_chosen - M_other + (b_chosen - b_other).

    (h, w, K), (K, C), (C,), int, int -> (h, w). Its mean over the positions is the
    difference of the two class scores, S_chosen - S_other: for two classes, the
    whole decision (p_chosen = sigmoid of it).
    """
    chosen, other = int(chosen), int(other)
    difference = reference_cam(feature_maps, kernel[:, chosen] - kernel[:, other])
    return difference + (bias[chosen] - bias[other])


def _decision_cases(seed=4):
    rng = np.random.default_rng(seed)
    cases = []
    for height, width, channels, classes, chosen, other in ((7, 7, 16, 2, 1, 0), (7, 7, 16, 2, 0, 1),
                                                            (3, 5, 6, 3, 2, 0)):
        feature_maps = np.maximum(rng.normal(size=(height, width, channels)), 0).astype("float32")
        kernel = rng.normal(size=(channels, classes)).astype("float32")
        bias = rng.normal(size=(classes,)).astype("float32")
        cases.append((feature_maps, kernel, bias, chosen, other))
    return cases


@exercise("03", "the map of a decision", "decision_map", reference_decision_map)
def check_decision_map(function) -> bool:
    """Notebook 03: ``function(feature_maps, kernel, bias, chosen, other)`` -> (h, w),
    a map whose mean over the positions is S_chosen - S_other, built from the two
    classes' CAMs.

    feature_maps: float32 (h, w, K), the backbone's output for one photo; kernel: (K, C),
    the whole Dense kernel; bias: (C,); chosen, other: two class indices.
    """
    def mistakes(feature_maps, kernel, bias, chosen, other):
        first, second = reference_cam(feature_maps, kernel[:, int(chosen)]), \
            reference_cam(feature_maps, kernel[:, int(other)])
        shift = bias[int(chosen)] - bias[int(other)]
        height, width = first.shape
        return {
            "That is the chosen class's own CAM: it says what speaks for it, not what tells it "
            "from the other class. Subtract the other class's map.": first,
            "The sign is flipped: that is why the *other* class would win. Chosen minus other.":
                second - first - shift,
            "Right maps, but no biases: the mean of M_chosen - M_other is S_chosen - S_other "
            "minus (b_chosen - b_other). Add that difference at every position.": first - second,
            "You divided the bias difference by h * w: every position gets all of it, so that "
            "the mean gains exactly b_chosen - b_other.":
                first - second + shift / (height * width),
        }

    def hints(feature_maps, kernel, bias, chosen, other):
        height, width, channels = feature_maps.shape
        return {f"shape:{(height, width, channels)}": "Sum over the channels: one value per position.",
                "shape:()": "That is the score difference itself; keep one value per position (h, w)."}

    return report(run_check(function, _decision_cases(), reference_decision_map, hints, mistakes))


def _box_cases():
    """(description, heatmap, threshold, {message: a known mistake's box})."""
    cases = []
    one = np.zeros((12, 16), dtype="float32")  # not square: x and y cannot be mixed up unseen
    one[3:7, 5:13] = np.linspace(0.5, 1.0, 8)
    cases.append(("one blob", one, 0.2, {}))

    two = np.zeros((12, 16), dtype="float32")
    two[1:9, 1:6] = 0.6  # 40 pixels
    two[8:11, 10:14] = 1.0  # 12 pixels, but brighter
    cases.append(("two blobs", two, 0.2, {
        "You boxed the region with the highest value; keep the LARGEST region "
        "(the most pixels), as the CAM paper does.": box_from_map(np.where(two == 1.0, two, 0)),
        "You boxed every kept pixel at once; label the connected regions "
        "(scipy.ndimage.label) and keep the largest.": (1, 1, 13, 10),
    }))

    corners = np.zeros((12, 16), dtype="float32")
    corners[1:4, 1:4] = 1.0  # two 3x3 squares that touch only at a corner: 18 pixels together
    corners[4:7, 4:7] = 1.0
    corners[6:10, 10:14] = 1.0  # 16 pixels
    cases.append(("blobs touching at a corner", corners, 0.2, {
        "Diagonal neighbours count: use 8-connectivity, "
        "scipy.ndimage.label(mask, structure=np.ones((3, 3))).": (10, 6, 13, 9),
    }))

    relative = np.zeros((12, 16), dtype="float32")
    relative[:, :] = 1.0  # a wide plateau at 13% of the maximum...
    relative[4:8, 6:10] = 7.5  # ...and a peak
    cases.append(("a plateau below 20% of the maximum", relative, 0.2, {
        "The threshold is a fraction of the map's maximum: keep heatmap >= threshold * "
        "heatmap.max(), not heatmap >= threshold.": (0, 0, 15, 11),
    }))
    cases.append(("the same map, threshold 0.1", relative, 0.1, {
        "Use the threshold argument you are given, not a fixed 0.2.": (6, 4, 9, 7),
    }))
    cases.append(("an all-zero map", np.zeros((6, 8), dtype="float32"), 0.2, {}))
    return cases


def _reference_box(heatmap, threshold):
    return box_from_map(heatmap, threshold)


def _as_box(answer):
    try:
        values = np.asarray(answer, dtype="float64").ravel()
    except (TypeError, ValueError):
        return None
    if values.shape != (4,) or not np.all(values == np.round(values)):
        return None
    return tuple(int(v) for v in values)


@exercise("03", "the box from a map", "my_box_from_map", _reference_box)
def check_box_from_map(function) -> bool:
    """Notebook 03: ``function(heatmap, threshold)`` -> ``(x_min, y_min, x_max, y_max)`` or None.

    As ``camlab.box_from_map``: pixels >= threshold * max, the largest
    8-connected region, inclusive pixel coordinates with x the column, None
    for a map with no positive value.
    """
    for description, heatmap, threshold, mistakes in _box_cases():
        expected = box_from_map(heatmap, threshold)
        try:
            answer = function(heatmap.copy(), threshold)
        except Exception as error:  # the learner's code: report, never raise
            where = traceback.extract_tb(error.__traceback__)[-1]
            return report(Verdict(False, f"Your function raised {type(error).__name__}: {error} "
                                         f"(line {where.lineno}) on {description}."))
        if expected is None:
            if answer is not None:
                return report(Verdict(False, f"On {description} there is nothing to box: "
                                             f"return None (you returned {answer!r})."))
            continue
        if answer is None:
            return report(Verdict(False, f"Your function returned None on {description}; "
                                         f"expected the box {expected}."))
        box = _as_box(answer)
        if box is None:
            return report(Verdict(False, "Return four whole numbers (x_min, y_min, x_max, "
                                         f"y_max); on {description} you returned {answer!r}."))
        if box == expected:
            continue
        x_min, y_min, x_max, y_max = expected
        known = dict(mistakes)
        known["x is the column and y the row: return (x_min, y_min, x_max, y_max), "
              "not (row, column, ...)."] = (y_min, x_min, y_max, x_max)
        known["The coordinates are inclusive: x_max is the last column inside the box, "
              "not one past it (slice.stop - 1)."] = (x_min, y_min, x_max + 1, y_max + 1)
        for message, wrong in known.items():
            if box == tuple(wrong):
                return report(Verdict(False, f"{message} [On {description}: expected "
                                             f"{expected}, got {box}.]"))
        return report(Verdict(False, f"Not yet: on {description} (threshold {threshold}) the "
                                     f"box is {expected}; you returned {box}."))
    return report(Verdict(True, "Correct! Your boxes match camlab.box_from_map on every case."))


# -- the questions at the end of notebook 03 (their text is in the notebook)

question("03", 1, "the parameters of ResNet50's head", 4098,
         "2,048 feature maps x 2 classes = 4,096 weights, and 2 biases: all that one epoch "
         "trains, while ResNet50's 23 million stay frozen.",
         {4096: "That is the weights; the Dense layer has a bias per class too.",
          2048: "That is one class's weights; each of the 2 classes has its own.",
          2050: "2,048 + 2: but every class has its own weight for each feature map."})

question("03", 2, "how wide one cell of a 7x7 map is", 32,
         "224 / 7 = 32: the map says which of 49 squares of 32x32 pixels holds the evidence, "
         "and upsampling smooths it, it adds no detail.",
         {7: "7 is the number of cells along a side; divide the photo's width by it.",
          1024: "That is a cell's area; the question asks for its width along one side."})

question("03", 3, "why preprocessing must match the backbone", "a",
         "Features learned on BGR pixels minus the ImageNet mean (ResNet50), or on (x - 127) / 128 "
         "(Lite0), respond to other inputs in ways nobody trained: the features, the prediction "
         "and so the map go wrong, often without an error.",
         {"b": "Resizing happens before, when the photos are loaded; preprocess changes the "
               "pixels' values and, for ResNet50, the order of the channels.",
          "c": "Skipping it raises no error and runs as fast; what would the backbone's filters, "
               "learned on prepared pixels, make of raw ones?"})

question("03", 4, "the pixels a higher threshold keeps", "a",
         "A pixel kept at 0.8 of the maximum is also above 0.2 of it: the kept pixels shrink "
         "to the strongest evidence, and the box with them (on the pets, often the head).",
         {"b": "A higher threshold asks more of a pixel; can a pixel below 0.2 of the maximum "
               "be above 0.8 of it?",
          "c": "Only for a map with two values; try the slider in section 6."})

question("03", 5, "what a strong centre guess says", "a",
         "The pets were photographed in the middle of the frame, so pointing at the middle "
         "scores well: a map's score means something only next to that baseline, and on crops "
         "where the two differ.",
         {"b": "Off centre, the centre guess fails and CAM still finds the pet: the maps work.",
          "c": "The masks come with the Oxford-IIIT Pet data set, drawn by people around each "
               "pet; the centre guess scores well on them because of where the pets are."})

question("03", 6, "why CAM cannot explain a Flatten head", "a",
         "After a Flatten, the Dense layer has a weight for every position and channel: no one "
         "weight per feature map to weigh it with. Grad-CAM (notebook 04) takes its weights "
         "from gradients instead.",
         {"b": "VGG16 is 13 conv layers; CAM's trouble is in what comes after them.",
          "c": "Size is not the problem: ResNet50 is bigger and CAM works on it, because of its "
               "head."})
