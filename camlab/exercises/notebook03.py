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


def reference_class_cam(feature_maps, kernel, class_index):
    """The CAM of any class from the whole Dense kernel: (h, w, K), (K, C), c -> (h, w)."""
    return reference_cam(feature_maps, kernel[:, int(class_index)])


def _class_cam_cases(seed=4):
    rng = np.random.default_rng(seed)
    cases = []
    for height, width, channels, classes, chosen in ((7, 7, 16, 2, 1), (7, 7, 16, 2, 0),
                                                     (3, 5, 6, 3, 2)):
        feature_maps = np.maximum(rng.normal(size=(height, width, channels)), 0).astype("float32")
        kernel = rng.normal(size=(channels, classes)).astype("float32")
        cases.append((feature_maps, kernel, chosen))
    return cases


@exercise("03", "the map of the other class", "class_cam", reference_class_cam)
def check_class_cam(function) -> bool:
    """Notebook 03: ``function(feature_maps, kernel, class_index)`` -> that class's raw CAM.

    feature_maps: float32 (h, w, K), the backbone's output for one photo;
    kernel: (K, C), the whole Dense kernel (one column per class);
    class_index: an int. Expected: sum_k kernel[k, class_index] * f_k, (h, w).
    """
    def mistakes(feature_maps, kernel, class_index):
        others = [c for c in range(kernel.shape[1]) if c != int(class_index)]
        return {
            f"That is the map of class {c}: take column class_index of the kernel, "
            "kernel[:, class_index].": reference_class_cam(feature_maps, kernel, c)
            for c in others
        }

    def hints(feature_maps, kernel, class_index):
        height, width, channels = feature_maps.shape
        return {
            f"shape:{(height, width, kernel.shape[1])}": "You computed the maps of every "
            "class at once: keep only column class_index of the kernel.",
            f"shape:{(height, width, channels)}": "You weighted the channels but did not "
            "add them up: sum over the last axis.",
            f"factor:{1 / (height * width)}": "You divided by h * w: CAM does not average positions.",
            "factor:-1.0": "The sign is flipped.",
        }

    return report(run_check(function, _class_cam_cases(), reference_class_cam, hints, mistakes))


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
