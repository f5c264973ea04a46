"""Notebook 04's exercises (Grad-CAM and Grad-CAM++ on Fashion-MNIST): the
weights of Grad-CAM and of Grad-CAM++.

Notebook 04 comes from an iThome-style article in Chinese that implements
Grad-CAM and Grad-CAM++ on a Fashion-MNIST model with tf-keras-vis; here
the learner computes the channel weights of those two methods from the
gradients.
"""

from __future__ import annotations

import numpy as np

from camlab.exercises.framework import Verdict, exercise, report, run_check
from camlab.methods import gradcam_plus_plus_weights, gradcam_weights


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
    return gradcam_weights(gradients[np.newaxis]).numpy()[0]


def reference_gradcam_plus_plus_weights(feature_maps, gradients):
    """Grad-CAM++'s w_k (Chattopadhay et al. 2018, eq. 19): (h, w, K) twice -> (K,)."""
    return gradcam_plus_plus_weights(feature_maps[np.newaxis], gradients[np.newaxis]).numpy()[0]


def _alpha(numerator, denominator):
    safe = np.where(denominator != 0, denominator, 1.0)
    return np.where(denominator != 0, numerator / safe, 0.0)


def _gradcam_plus_plus_mistakes(feature_maps, gradients):
    """{what the learner got wrong: the weights that mistake gives}, each (K,)."""
    g, total = gradients.astype("float64"), feature_maps.astype("float64").sum(axis=(0, 1))
    alpha = _alpha(g ** 2, 2 * g ** 2 + total * g ** 3)
    over_channels = _alpha(g ** 2, 2 * g ** 2 + feature_maps.sum(axis=-1, keepdims=True) * g ** 3)
    return {
        "You weighed alpha by the gradient itself: Grad-CAM++ keeps only the positive gradients, "
        "w_k = sum alpha * ReLU(g).": (alpha * g).sum(axis=(0, 1)),
        "You returned Grad-CAM's weights (the mean gradient): Grad-CAM++ weighs each positive "
        "gradient by its own alpha and sums them.": g.mean(axis=(0, 1)),
        "Your sum of A in alpha's denominator runs over the channels at each position; it runs "
        "over the positions (a, b) of the same map k: A.sum(axis=(0, 1)).":
            (over_channels * np.maximum(g, 0)).sum(axis=(0, 1)),
        "Your alpha has no factor 2: alpha = g^2 / (2 g^2 + sum_ab A_ab g^3).":
            (_alpha(g ** 2, g ** 2 + total * g ** 3) * np.maximum(g, 0)).sum(axis=(0, 1)),
        "You averaged alpha * ReLU(g) over the positions; Grad-CAM++ sums them.":
            (alpha * np.maximum(g, 0)).mean(axis=(0, 1)),
    }


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
    verdict = run_check(function, cases, reference_gradcam_plus_plus_weights, hints,
                        mistakes_for=_gradcam_plus_plus_mistakes)
    if not verdict.ok and "NaN" in verdict.message:
        verdict = Verdict(False, verdict.message + " Where g = 0 the denominator is 0 too: "
                          "set alpha to 0 there (np.where).")
    return report(verdict)
