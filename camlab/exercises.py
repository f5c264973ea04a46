"""Checks for the learners' exercises: run their function, say what is wrong.

Each ``check_*`` calls the learner's function on a few generated cases,
compares with camlab's reference, prints one message (right, or what is
wrong: the shape, the scale, the largest error) and returns True or False.
It never raises because of the learner's code, so a notebook with an
unfinished exercise still runs to the end.

Every check is registered with ``@exercise`` (its notebook, a title, the
name of the function the learner writes): ``progress("01")`` then shows which
exercises of a notebook pass, and ``passed_or_reference(function)`` lets the
cells after an exercise use camlab's answer while the learner's is not right
yet. The instructor guide (docs/instructors.md) shows how to add a check.
"""

from __future__ import annotations

import dataclasses
import functools
import traceback

import numpy as np


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``ok`` and the message shown to the learner."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok


def _describe_call(arguments) -> str:
    shapes = ", ".join(str(np.shape(a)) for a in arguments)
    return f"arguments of shapes {shapes}"


def compare(answer, expected, hints=None, tolerance=1e-4) -> Verdict:
    """Compare an answer with the expected array and explain the difference.

    ``hints`` maps a diagnosis to a sentence: keys "shape:<shape>" (a wrong
    shape), "factor:<value>" (an answer that is the expected one times a
    constant). The tolerance is relative to the largest expected value.
    """
    hints = hints or {}
    expected = np.asarray(expected, dtype="float64")
    if answer is None:
        return Verdict(False, "Your function returned None: compute the result and `return` it.")
    try:
        got = np.asarray(answer, dtype="float64")
    except (TypeError, ValueError):
        return Verdict(False, f"Your function returned a {type(answer).__name__}, not an array of numbers.")
    if got.shape != expected.shape:
        message = f"Wrong shape: expected {expected.shape}, got {got.shape}."
        hint = hints.get(f"shape:{got.shape}")
        return Verdict(False, message + (f" {hint}" if hint else ""))
    if not np.isfinite(got).all():
        return Verdict(False, "Your result contains NaN or Inf: look for a division by zero.")
    scale = max(1.0, float(np.abs(expected).max()))
    error = np.abs(got - expected)
    worst = float(error.max())
    if worst <= tolerance * scale:
        return Verdict(True, f"Correct! (largest difference {worst:.2g})")
    energy = float((expected * expected).sum())
    if energy > 0:
        factor = float((got * expected).sum() / energy)
        if np.abs(got - factor * expected).max() <= tolerance * scale * max(1.0, abs(factor)):
            message = (f"Right pattern, wrong scale: your result is {factor:.4g} times "
                       "the expected one.")
            for key, hint in hints.items():
                if key.startswith("factor:") and np.isclose(factor, float(key[7:]), rtol=1e-3):
                    message += f" {hint}"
            return Verdict(False, message)
    where = np.unravel_index(int(error.argmax()), error.shape)
    return Verdict(
        False,
        f"Not yet: the largest error is {worst:.4g} at index {tuple(int(i) for i in where)} "
        f"(expected {expected[where]:.4g}, got {got[where]:.4g}).",
    )


def run_check(function, cases, reference, hints_for=None, mistakes_for=None) -> Verdict:
    """Call ``function(*case)`` for every case and compare with ``reference(*case)``.

    ``hints_for(*case)``: hints for ``compare``. ``mistakes_for(*case)``:
    {message: the array a known mistake gives}; a wrong answer equal to one of
    them gets that message instead of the raw difference.
    """
    for case in cases:
        try:
            answer = function(*[np.array(a, copy=True) for a in case])
        except Exception as error:  # the learner's code: report, never raise
            where = traceback.extract_tb(error.__traceback__)[-1]
            return Verdict(
                False,
                f"Your function raised {type(error).__name__}: {error} "
                f"(line {where.lineno}) when called with {_describe_call(case)}.",
            )
        verdict = compare(answer, reference(*case), hints_for(*case) if hints_for else None)
        if not verdict.ok:
            known = mistakes_for(*case) if mistakes_for else {}
            message = next((m for m, wrong in known.items()
                            if np.shape(answer) == np.shape(wrong) and compare(answer, wrong).ok),
                           verdict.message)
            return Verdict(False, message + f" [Called with {_describe_call(case)}.]")
    return verdict


def report(verdict: Verdict) -> bool:
    """Print the verdict for the learner (✅ or ❌ and its message); return ``ok``."""
    print(("✅ " if verdict.ok else "❌ ") + verdict.message)
    return verdict.ok


@dataclasses.dataclass(frozen=True)
class Exercise:
    """A registered check: where it is taught and what the learner writes."""

    notebook: str  # "01"
    title: str  # what the learner writes, in a few words
    function_name: str  # the name of the learner's function in the notebook
    reference: object = None  # camlab's answer, same signature, or None
    check: object = None  # the registered check itself


EXERCISES: dict[str, Exercise] = {}  # check name -> its exercise, in course order
_LATEST: dict[str, tuple[bool, object]] = {}  # check name -> (passed, the function checked)


def exercise(notebook: str, title: str, function_name: str, reference=None):
    """Register a check (a decorator): its verdicts feed ``progress`` and
    ``passed_or_reference``, and it never raises, whatever the learner wrote.

    The check takes the learner's function and returns True or False; it
    should print its verdict with ``report``.
    """
    def register(check):
        @functools.wraps(check)
        def recorded(function) -> bool:
            try:
                passed = bool(check(function))
            except Exception as error:  # a check never stops a learner's notebook
                passed = report(Verdict(False, "The check could not judge your answer "
                                               f"({type(error).__name__}: {error})."))
            _LATEST[check.__name__] = (passed, function)
            return passed

        EXERCISES[check.__name__] = Exercise(notebook, title, function_name, reference, recorded)
        return recorded

    return register


@dataclasses.dataclass(frozen=True)
class Progress:
    """Which exercises of a notebook pass, as last checked in this session.

    ``results``: check name -> True (passes), False (checked, not yet) or
    None (not run yet). Shown as one line per exercise.
    """

    notebook: str
    results: dict

    @property
    def passed(self) -> int:
        return sum(1 for ok in self.results.values() if ok)

    def __repr__(self) -> str:
        lines = [f"Exercises of notebook {self.notebook}: {self.passed} of "
                 f"{len(self.results)} pass"]
        for name, ok in self.results.items():
            item = EXERCISES[name]
            mark = {True: "✅", False: "❌", None: "⬜"}[ok]
            state = {True: "passes", False: "not yet", None: "not run yet"}[ok]
            lines.append(f"  {mark} {item.title} ({item.function_name}, "
                         f"camlab.{name}): {state}")
        return "\n".join(lines)


def progress(notebook: str) -> Progress:
    """The exercises of ``notebook`` ("01") and whether each passes, from the
    latest run of each check in this Python session (this notebook's kernel)."""
    names = [name for name, item in EXERCISES.items() if item.notebook == notebook]
    return Progress(notebook, {name: _LATEST.get(name, (None, None))[0] for name in names})


def passed_or_reference(function):
    """The learner's ``function`` if its check passed on it, else camlab's answer.

    Cells after an exercise call what the learner wrote through this, so that
    the notebook still runs (and shows the right pictures) while the answer is
    not right yet; it says so when it stands in.
    """
    for name, item in EXERCISES.items():
        if item.function_name != getattr(function, "__name__", None) or item.reference is None:
            continue
        passed, checked = _LATEST.get(name, (False, None))
        if passed and checked is function:
            return function
        print(f"ℹ️ Your {item.function_name} does not pass camlab.{name} yet: the cells "
              "below use camlab's answer instead.")
        return item.reference
    return function


def _cam_cases(seed=0):
    rng = np.random.default_rng(seed)
    cases = []
    for height, width, channels in ((3, 3, 8), (7, 7, 16), (4, 6, 5)):
        feature_maps = np.maximum(rng.normal(size=(height, width, channels)), 0).astype("float32")
        class_weights = rng.normal(size=(channels,)).astype("float32")
        cases.append((feature_maps, class_weights))
    return cases


def reference_cam(feature_maps, class_weights):
    """M(x, y) = sum_k w_k f_k(x, y): (h, w, K), (K,) -> (h, w)."""
    return np.tensordot(feature_maps, class_weights, axes=([-1], [0]))


@exercise("01", "the CAM by hand", "my_cam", reference_cam)
def check_cam(function) -> bool:
    """Notebook 01: ``function(feature_maps, class_weights)`` -> the raw CAM.

    feature_maps: float32 (h, w, K), the last conv layer's output for one
    image; class_weights: (K,), the Dense weights of one class. Expected: the
    weighted sum over channels, (h, w), not normalised, not upsampled.
    """
    def hints(feature_maps, class_weights):
        height, width, channels = feature_maps.shape
        return {
            f"shape:{(height, width, channels)}": "You multiplied each channel by its "
            "weight but did not add the channels up: sum over the last axis.",
            f"shape:{(channels,)}": "You summed over the positions; sum over the "
            "channels (the last axis) instead.",
            "shape:()": "You added up everything; keep one value per position (h, w).",
            f"factor:{1 / channels}": "You averaged over the channels: CAM sums them.",
            f"factor:{1 / (height * width)}": "You divided by h * w: CAM does not average positions.",
            "factor:-1.0": "The sign is flipped.",
        }

    return report(run_check(function, _cam_cases(), reference_cam, hints))


def reference_cam_image(raw_map, size):
    """The map ``camlab.cam`` shows: the raw map (h, w) upsampled to ``size``
    (H, W) bilinearly (``camlab.upsample``), then min-max scaled to [0, 1];
    a flat map becomes zeros. -> float (H, W) in [0, 1].
    """
    from camlab.maps import normalize, upsample

    return normalize(upsample(raw_map, tuple(int(s) for s in size)))


def _cam_image_cases(seed=1):
    rng = np.random.default_rng(seed)
    cases = []
    for shape, size in (((7, 7), (28, 28)), ((3, 5), (12, 20)), ((4, 6), (24, 30))):
        raw = rng.normal(size=shape).astype("float32")  # raw CAMs have negative values too
        raw[shape[0] // 2, shape[1] // 2] = 3.0  # the peak inside: upsampling then smooths it
        cases.append((raw, np.array(size)))
    cases.append((np.full((3, 3), -1.5, dtype="float32"), np.array((12, 12))))  # a flat map
    return cases


@exercise("01", "from raw map to picture", "cam_image", reference_cam_image)
def check_cam_image(function) -> bool:
    """Notebook 01: ``function(raw_map, size)`` -> the map as ``camlab.cam`` shows it.

    raw_map: float32 (h, w), a raw CAM (negative values too); size: (H, W).
    Expected: upsampled bilinearly to (H, W) (``camlab.upsample``), THEN
    scaled to [0, 1] by its own minimum and maximum; zeros for a flat map.
    """
    from camlab.maps import normalize, upsample

    def hints(raw_map, size):
        height, width = (int(s) for s in size)
        return {
            f"shape:{raw_map.shape}": "This is the map at feature-map size: upsample it to "
            "`size` first (camlab.upsample(raw_map, size)).",
            f"shape:{(width, height)}": "`size` is (H, W): rows first, then columns.",
        }

    def mistakes(raw_map, size):
        size = tuple(int(s) for s in size)
        upsampled = upsample(raw_map, size)
        found = {
            "You scaled before upsampling: upsampling smooths the peak, so your map's "
            "maximum stays below 1. Upsample first, then scale.":
                upsample(normalize(raw_map), size),
            "You divided by the maximum only: subtract the minimum first, "
            "(m - m.min()) / (m.max() - m.min()).": upsampled / np.abs(upsampled).max(),
            "Upsampled but not scaled: map the minimum to 0 and the maximum to 1.": upsampled,
            "You cut the negative values (a ReLU): that is Grad-CAM's rule, "
            "CAM scales the whole map.": normalize(np.maximum(upsampled, 0)),
        }
        for method in ("bicubic", "nearest", "area"):
            found[f"Right idea, other interpolation ({method}): camlab.cam upsamples "
                  "bilinearly, camlab.upsample(raw_map, size)."] = \
                normalize(upsample(raw_map, size, method))
        return found

    verdict = run_check(function, _cam_image_cases(), reference_cam_image, hints, mistakes)
    if not verdict.ok and "NaN" in verdict.message:
        verdict = Verdict(False, verdict.message + " A flat map (all values equal) has "
                          "max - min = 0: return zeros for it, as camlab.normalize does.")
    return report(verdict)


# ----------------------------------------------------------------------------
# Notebook 02: CAM on Fashion-MNIST, step by step
# ----------------------------------------------------------------------------

def _zoom_cam(feature_maps, class_weights, size, order=2):
    from scipy import ndimage

    cam = reference_cam(feature_maps, class_weights)
    factors = (size[0] / cam.shape[0], size[1] / cam.shape[1])
    return ndimage.zoom(cam.astype("float64"), factors, order=order)


def reference_upsampled_cam(feature_maps, class_weights, size):
    """The CAM of one class upsampled to ``size`` as seed 002 does it:
    (h, w, K), (K,), (H, W) -> (H, W), ``scipy.ndimage.zoom(order=2)``.

    Zooming the features and then weighting them (the seed's order) gives the
    same map as weighting and then zooming: spline interpolation is linear.
    """
    return _zoom_cam(feature_maps, class_weights, size, order=2)


def _upsampled_cam_cases(seed=2):
    rng = np.random.default_rng(seed)
    cases = []
    for (height, width, channels), size in (((3, 3, 16), (28, 28)), ((7, 7, 8), (28, 28)),
                                            ((4, 6, 5), (16, 24))):
        feature_maps = np.maximum(rng.normal(size=(height, width, channels)), 0).astype("float32")
        class_weights = rng.normal(size=(channels,)).astype("float32")
        cases.append((feature_maps, class_weights, np.array(size)))
    return cases


@exercise("02", "upsample and weigh one map", "upsampled_cam",
          reference_upsampled_cam)
def check_upsampled_cam(function) -> bool:
    """Notebook 02: ``function(feature_maps, class_weights, size)`` -> the upsampled CAM.

    feature_maps: float32 (h, w, K) of one image; class_weights: (K,), the
    Dense weights of one class; size: (H, W), the image size. Expected: the
    weighted sum over channels, upsampled to (H, W) with
    ``scipy.ndimage.zoom(..., order=2)`` as in seed 002; not normalised.
    """
    def hints(feature_maps, class_weights, size):
        height, width, channels = feature_maps.shape
        return {
            f"shape:{(height, width)}": "This is the map at feature-map size: upsample it "
            "to `size` with scipy.ndimage.zoom.",
            f"shape:{(int(size[0]), int(size[1]), channels)}": "You upsampled the feature "
            "maps but did not weight and add them up: take the dot product with the weights.",
            f"factor:{1 / channels}": "You averaged over the channels: CAM sums them.",
            "factor:-1.0": "The sign is flipped.",
        }

    def mistakes(feature_maps, class_weights, size):
        found = {}
        for order, name in ((1, "linear (order=1)"), (3, "cubic (order=3)"), (0, "nearest (order=0)")):
            found[f"Right map, other interpolation: yours matches a {name} zoom. The "
                  "lesson uses order=2: scipy.ndimage.zoom(cam, factors, order=2)."] = \
                _zoom_cam(feature_maps, class_weights, size, order)
        try:
            from camlab.maps import upsample

            cam = reference_cam(feature_maps, class_weights)
            found["Right map, other interpolation: yours matches camlab.upsample "
                  "(bilinear). This exercise asks for scipy.ndimage.zoom(..., order=2), "
                  "as the lesson does by hand."] = upsample(cam, tuple(int(s) for s in size))
        except Exception:  # TensorFlow missing: skip this diagnosis
            pass
        return found

    return report(run_check(function, _upsampled_cam_cases(), reference_upsampled_cam,
                            hints, mistakes))


def reference_least_sure(probabilities, class_index, count):
    """Indices of the ``count`` images predicted as ``class_index`` with the
    lowest probability for it, least sure first: (N, C), int, int -> int (<= count,).
    """
    probabilities = np.asarray(probabilities)
    members = np.flatnonzero(probabilities.argmax(axis=1) == int(class_index))
    order = np.argsort(probabilities[members, int(class_index)], kind="stable")
    return members[order][:int(count)]


def _least_sure_cases(seed=3):
    rng = np.random.default_rng(seed)
    cases = []
    for images, classes, class_index, count in ((60, 4, 2, 5), (300, 10, 8, 12), (40, 10, 3, 9)):
        logits = rng.normal(scale=2.0, size=(images, classes))
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        cases.append((probabilities.astype("float32"), np.array(class_index), np.array(count)))
    return cases


@exercise("02", "the images the model is least sure of", "least_sure",
          reference_least_sure)
def check_least_sure(function) -> bool:
    """Notebook 02: ``function(probabilities, class_index, count)`` -> image indices.

    probabilities: float32 (N, C), the model's output for N images;
    class_index: a class; count: how many images. Expected: the indices (into
    all N images) of the images the model *predicts* as ``class_index`` whose
    probability for it is lowest, least sure first; all of them when fewer
    than ``count`` are predicted as that class.
    """
    def mistakes(probabilities, class_index, count):
        c, n = int(class_index), int(count)
        members = np.flatnonzero(probabilities.argmax(axis=1) == c)
        by_probability = members[np.argsort(probabilities[members, c], kind="stable")]
        everyone = np.argsort(probabilities[:, c], kind="stable")
        return {
            "These are the images the model is MOST sure of: sort by probability in "
            "increasing order (np.argsort) and keep the first ones.": by_probability[::-1][:n],
            "These are positions inside the images of the class, not indices into all "
            "images: map them back, e.g. members[order].":
                np.argsort(probabilities[members, c], kind="stable")[:n],
            "You took the lowest probabilities for the class over ALL images; keep only "
            "the images the model predicts as this class (argmax == class_index).": everyone[:n],
            "These are the right images in index order: sort them by probability, least "
            "sure first.": np.sort(by_probability[:n]),
        }

    def hints(probabilities, class_index, count):
        return {"shape:()": "Return an array of image indices, not one number."}

    return report(run_check(function, _least_sure_cases(), reference_least_sure, hints, mistakes))


# ----------------------------------------------------------------------------
# Notebook 03: CAM on cats vs. dogs, and boxes from maps
# ----------------------------------------------------------------------------

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
    from camlab.boxes import box_from_map

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
    from camlab.boxes import box_from_map

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
    from camlab.boxes import box_from_map

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


# ---------------------------------------------------------------- notebook 04: Grad-CAM, Grad-CAM++


def _gradient_cases(seed=5):
    """(feature_maps, gradients) pairs, (h, w, K); some gradients exactly zero."""
    rng = np.random.default_rng(seed)
    cases = []
    for height, width, channels in ((3, 3, 4), (7, 7, 16), (5, 4, 6)):
        feature_maps = np.maximum(rng.normal(size=(height, width, channels)), 0).astype("float32")
        gradients = rng.normal(scale=0.1, size=(height, width, channels)).astype("float32")
        gradients[rng.random(gradients.shape) < 0.2] = 0.0
        cases.append((feature_maps, gradients))
    return cases


def reference_gradcam_weights(gradients):
    """alpha_k = mean over positions of dS/dA^k: (h, w, K) -> (K,)."""
    from camlab.methods import gradcam_weights

    return gradcam_weights(gradients[np.newaxis]).numpy()[0]


def reference_gradcam_plus_plus_weights(feature_maps, gradients):
    """Grad-CAM++'s w_k (Chattopadhay et al. 2018, eq. 19): (h, w, K) twice -> (K,)."""
    from camlab.methods import gradcam_plus_plus_weights

    return gradcam_plus_plus_weights(feature_maps[np.newaxis], gradients[np.newaxis]).numpy()[0]


@exercise("04", "Grad-CAM's weights", "my_gradcam_weights",
          reference_gradcam_weights)
def check_gradcam_weights(function) -> bool:
    """Notebook 04: ``function(gradients)`` -> Grad-CAM's alpha, shape (K,).

    gradients: float32 (h, w, K), dS^c/dA for one image. Expected: the mean
    over the h * w positions of each channel.
    """
    def hints(gradients):
        height, width, channels = gradients.shape
        return {
            f"shape:{(height, width)}": "You averaged over the channels; average over the "
            "positions (axes 0 and 1) to get one weight per channel.",
            "shape:()": "You averaged everything into one number; keep one weight per channel.",
            f"factor:{height * width}": "You summed the positions: Grad-CAM averages them "
            "(divide by h * w).",
        }

    cases = [(gradients,) for _, gradients in _gradient_cases()]
    return report(run_check(function, cases, reference_gradcam_weights, hints))


@exercise("04", "Grad-CAM++'s weights", "my_gradcam_plus_plus_weights",
          reference_gradcam_plus_plus_weights)
def check_gradcam_plus_plus_weights(function) -> bool:
    """Notebook 04: ``function(feature_maps, gradients)`` -> Grad-CAM++'s w, shape (K,).

    Both (h, w, K). alpha = g^2 / (2 g^2 + sum_ab A_ab g^3) per position
    (0 where the denominator is 0); w_k = sum_ij alpha_ij ReLU(g_ij).
    """
    def hints(feature_maps, gradients):
        height, width, channels = gradients.shape
        return {
            f"shape:{(height, width, channels)}": "Sum alpha * ReLU(g) over the positions "
            "(axes 0 and 1) to get one weight per channel.",
            f"shape:{(height, width)}": "You summed over the channels; sum over the positions.",
        }

    cases = _gradient_cases(seed=6)
    verdict = run_check(function, cases, reference_gradcam_plus_plus_weights, hints)
    if not verdict.ok and "NaN" in verdict.message:
        verdict = Verdict(False, verdict.message + " Where g = 0 the denominator is 0 too: "
                          "set alpha to 0 there (np.where).")
    return report(verdict)
