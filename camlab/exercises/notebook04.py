"""Notebook 04's exercises (Grad-CAM and Grad-CAM++ on Fashion-MNIST): HiResCAM
from the feature maps and their gradients, and the weights of Grad-CAM++.

Notebook 04 comes from an iThome-style article in Chinese that implements
Grad-CAM and Grad-CAM++ on a Fashion-MNIST model with tf-keras-vis; here
the learner computes HiResCAM (Grad-CAM without its averaging) and
Grad-CAM++'s channel weights from the gradients.
"""

from __future__ import annotations

import numpy as np

from camlab.exercises.framework import exercise, report, run_check
from camlab.exercises.questions import question
from camlab.methods import gradcam_plus_plus_weights


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


def reference_hirescam(feature_maps, gradients):
    """HiResCAM's raw map (Draelos & Carin 2020): M = ReLU(sum_k g_k * A_k), element-wise.

    (h, w, K), (h, w, K) -> (h, w): every position weighed by its own gradient, where
    Grad-CAM first averages each gradient map into one number.
    """
    return np.maximum((gradients * feature_maps).sum(axis=-1), 0)


@exercise("04", "HiResCAM from A and its gradients", "my_hirescam", reference_hirescam)
def check_hirescam(function) -> bool:
    """Notebook 04: ``function(feature_maps, gradients)`` -> HiResCAM's map, (h, w).

    Both (h, w, K), one image. Expected: ReLU of the channel sum of the element-wise
    product of gradients and feature maps.
    """
    def mistakes(feature_maps, gradients):
        return {
            "That is Grad-CAM: you averaged each gradient map first. HiResCAM keeps each "
            "position's own gradient: multiply g and A element by element.":
                np.maximum(feature_maps @ gradients.mean(axis=(0, 1)), 0),
            "That is Layer-CAM: you cut the negative gradients before multiplying. HiResCAM "
            "keeps the gradients as they are and applies the ReLU to the sum.":
                np.maximum(np.maximum(gradients, 0) * feature_maps, 0).sum(axis=-1),
            "No ReLU: the map keeps the evidence against the class. Cut it at zero, as "
            "Grad-CAM does.": (gradients * feature_maps).sum(axis=-1),
        }

    def hints(feature_maps, gradients):
        height, width, channels = gradients.shape
        return {
            f"shape:{(height, width, channels)}": "Sum the products over the channels: one value "
            "per position.",
            f"shape:{(channels,)}": "You summed over the positions; sum over the channels.",
            "shape:()": "You summed everything; keep one value per position (h, w).",
        }

    return report(run_check(function, _gradient_cases(), reference_hirescam, hints, mistakes))


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
    return report(run_check(function, cases, reference_gradcam_plus_plus_weights, hints,
                            mistakes_for=_gradcam_plus_plus_mistakes,
                            nan_hint="Where g = 0 the denominator is 0 too: set alpha to 0 there "
                                     "(np.where)."))


# -- the questions at the end of notebook 04 (their text is in the notebook)

question("04", 1, "Grad-CAM's weights on a GAP + Dense head", "a",
         "S_c = (1/Z) sum_ij sum_k w^c_k A^k_ij + b_c, so dS_c/dA^k_ij = w^c_k / Z at every "
         "position, and its mean is w^c_k / Z: Grad-CAM's raw map is CAM's divided by Z, then "
         "cut at zero. Scaled to [0, 1], the two pictures still differ where CAM is negative.",
         {"b": "Close: the gradient at each position is w^c_k divided by something. What does "
               "the GAP divide by?",
          "c": "Grad-CAM takes the gradient of the score, before the softmax; the probability "
               "never enters."})

question("04", 2, "why the score and not the probability", "a",
         "dp_c/dS_c = p_c (1 - p_c): near p_c = 1 the probability stops moving, so its "
         "gradient, and the map made from it, fades exactly where the model is surest.",
         {"b": "The softmax is smooth and TensorFlow differentiates it; the trouble is the size "
               "of its gradient, not its existence.",
          "c": "Reading the logit costs the same pass; the reason is what the probability's "
               "gradient does once the model is sure."})

question("04", 3, "Score-CAM's masked passes at `final`", 256,
         "One masked image per feature map: `final` has 256, so 256 forward passes per image, "
         "against Grad-CAM's one forward and one backward pass.",
         {1: "That is Grad-CAM's one backward pass. Score-CAM uses no gradient: it masks the "
             "image with each feature map in turn.",
          49: "7 x 7 is the number of positions; Score-CAM makes one masked image per feature "
              "map, not per position.",
          7 * 7 * 256: "One pass per map, not per map and position: each map masks the whole image."})

question("04", 4, "what Grad-CAM++ weighs", "a",
         "Grad-CAM++ still gives each feature map one weight w^c_k, a sum of the positive "
         "gradients each with its own coefficient; a weight per position is Layer-CAM's idea.",
         {"b": "That is Layer-CAM (section 7); Grad-CAM++'s formula sums over positions into "
               "one w^c_k per map.",
          "c": "Weights per input pixel are what guided backprop computes; Grad-CAM++ weighs "
               "feature maps."})

question("04", 5, "what Grad-CAM's ReLU removes", "a",
         "A negative value of sum_k alpha_k A^k is evidence against the class: raising those "
         "features would lower its score. The ReLU keeps what speaks for the class.",
         {"b": "The negative part is as systematic as the positive part; it is evidence of the "
               "other sign.",
          "c": "The background can hold evidence of either sign (notebook 02's sneakers); the "
               "sign, not the place, decides."})
