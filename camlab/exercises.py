"""Checks for the learners' exercises: run their function, say what is wrong.

Each ``check_*`` calls the learner's function on a few generated cases,
compares with camlab's reference, prints one message (right, or what is
wrong: the shape, the scale, the largest error) and returns True or False.
It never raises because of the learner's code, so a notebook with an
unfinished exercise still runs to the end.
"""

from __future__ import annotations

import dataclasses
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


def run_check(function, cases, reference, hints_for=None) -> Verdict:
    """Call ``function(*case)`` for every case and compare with ``reference(*case)``."""
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
            return Verdict(False, verdict.message + f" [Called with {_describe_call(case)}.]")
    return verdict


def report(verdict: Verdict) -> bool:
    print(("✅ " if verdict.ok else "❌ ") + verdict.message)
    return verdict.ok


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
