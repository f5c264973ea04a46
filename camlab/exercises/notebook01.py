"""Notebook 01's exercises (CAM on MNIST): the CAM by hand, and from raw map to picture.

Notebook 01 comes from a Qiita-style article, "CAM on MNIST with Keras",
which draws its maps with keras-vis's ``visualize_cam``, and from the
tutorial "Implementation of Class Activation Map (CAM) with PyTorch": both
compute a CAM as the weighted sum of the last conv layer's maps, which the
learner writes here.
"""

from __future__ import annotations

import numpy as np

from camlab.exercises.framework import exercise, report, run_check
from camlab.exercises.questions import question
from camlab.maps import normalize, upsample


def reference_cam(feature_maps, class_weights):
    """M(x, y) = sum_k w_k f_k(x, y): (h, w, K), (K,) -> (h, w)."""
    return np.tensordot(feature_maps, class_weights, axes=([-1], [0]))


def reference_class_scores(feature_maps, kernel, bias):
    """Every class's score from its CAM: S_c = mean_xy M_c(x, y) + b_c.

    (h, w, K), (K, C), (C,) -> (C,): the scores before the softmax (logits).
    """
    maps = np.tensordot(feature_maps, kernel, axes=([-1], [0]))  # (h, w, C): every class's CAM
    return maps.mean(axis=(0, 1)) + bias


def _score_cases(seed=0):
    rng = np.random.default_rng(seed)
    cases = []
    for height, width, channels, classes in ((3, 3, 8, 4), (7, 7, 16, 10), (4, 6, 5, 3)):
        feature_maps = np.maximum(rng.normal(size=(height, width, channels)), 0).astype("float32")
        kernel = rng.normal(size=(channels, classes)).astype("float32")
        bias = rng.normal(size=(classes,)).astype("float32")
        cases.append((feature_maps, kernel, bias))
    return cases


@exercise("01", "the class scores from the maps", "class_scores", reference_class_scores)
def check_class_scores(function) -> bool:
    """Notebook 01: ``function(feature_maps, kernel, bias)`` -> every class's score (C,),
    computed from the classes' CAMs: the mean of each map plus its bias.

    feature_maps: float32 (h, w, K), the last conv layer's output for one image;
    kernel: (K, C), the Dense kernel; bias: (C,).
    """
    def mistakes(feature_maps, kernel, bias):
        maps = np.tensordot(feature_maps, kernel, axes=([-1], [0]))
        scores = maps.mean(axis=(0, 1)) + bias
        probabilities = np.exp(scores - scores.max())
        return {
            "You added the maps up over the positions: the GAP averages them, so take the mean "
            "(the sum is h * w times too large).": maps.sum(axis=(0, 1)) + bias,
            "Right maps, but no bias: S_c = mean of M_c + b_c.": maps.mean(axis=(0, 1)),
            "Those are probabilities (a softmax): the question asks the scores before it.":
                probabilities / probabilities.sum(),
        }

    def hints(feature_maps, kernel, bias):
        height, width, _ = feature_maps.shape
        classes = kernel.shape[1]
        return {f"shape:{(height, width, classes)}": "These are the maps of every class: average "
                                                     "each over the positions, then add its bias.",
                f"shape:{(height, width)}": "That is one class's map: compute every class's, with "
                                            "the whole kernel.",
                "shape:()": "One score per class: a vector of length C, not one number."}

    return report(run_check(function, _score_cases(), reference_class_scores, hints, mistakes))


def reference_cam_image(raw_map, size):
    """The map ``camlab.cam`` shows: the raw map (h, w) upsampled to ``size``
    (H, W) bilinearly (``camlab.upsample``), then min-max scaled to [0, 1];
    a flat map becomes zeros. -> float (H, W) in [0, 1].
    """
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

    return report(run_check(function, _cam_image_cases(), reference_cam_image, hints, mistakes,
                            nan_hint="A flat map (all values equal) has max - min = 0: return "
                                     "zeros for it, as camlab.normalize does."))


# -- the questions at the end of notebook 01 (their text is in the notebook)

question("01", 1, "why CAM needs a global average pool", "b",
         "After the GAP each weight w^c_k multiplies one map's average, so it can move inside "
         "the sum over positions: S_c = (1/Z) sum_xy sum_k w^c_k f_k(x, y) + b_c, and the inner "
         "sum is the map M_c.",
         {"a": "The GAP does keep the head small, but that is not what CAM needs: ask what each "
               "Dense weight multiplies.",
          "c": "The GAP throws the positions away (it averages over them); CAM takes them from "
               "the feature maps before the GAP.",
          "d": "The softmax takes the class scores, whatever layer computed them."})

question("01", 2, "how many weights CAM reads", 1280,
         "128 feature maps x 10 classes: one weight per map and class, whatever the map's size.",
         {1290: "That counts the 10 biases too; a map is weighted by the weights only.",
          128: "That is one class's weights; each of the 10 classes has its own column.",
          62720: "That is 7 x 7 x 128 x 10, what a Flatten head needs: one weight per position "
                 "and channel. After a GAP there is one per channel."})

question("01", 3, "where the map goes when the digit moves", "a",
         "Convolutions slide the same filters over every position, so what they find moves with "
         "the digit; the map (and its peak) moves by about the same 4 pixels, the class not at all.",
         {"b": "The map is made of the feature maps, which are computed at every position: move "
               "the ink, and what the filters find there moves too.",
          "c": "The digit is the same digit, and the GAP averages over every position: the score, "
               "and the map's strength, barely change."})

question("01", 4, "what a map's brightest pixel says", "b",
         "Scaling maps each map's own minimum to 0 and maximum to 1: every map reaches 1, for a "
         "sure prediction and an unsure one alike.",
         {"a": "Every scaled map reaches 1, whatever the probability: a map cannot tell you how "
               "sure the model is.",
          "c": "A map is not a probability per pixel; the average of the raw map is the class score."})

question("01", 5, "why the tutorial's model is weak", "a",
         "Two stacked 3x3 convolutions see a 5x5 patch; the GAP then averages what the patches "
         "found, so the model counts stroke pieces and never sees a digit's shape.",
         {"b": "gap_cnn's first layer has fewer filters (32) and it works: what differs is how "
               "far one position of the last layer sees.",
          "c": "The 46% was measured after the tutorial's 30 epochs; the limit is in the "
               "architecture: how far can one position of last_conv see?"})

question("01", 6, "what the maps of all classes share", "a",
         "M_c = sum_k w^c_k f_k: every class mixes the same feature maps, only with its own "
         "weights, so weak features make alike maps.",
         {"b": "Each class has its own column of weights w^c_k.",
          "c": "A bias adds one constant to a class's score and nothing to its map's shape."})
