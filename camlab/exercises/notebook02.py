"""Notebook 02's exercises (CAM on Fashion-MNIST, step by step): upsample and
weigh one map, and the images the model is least sure of.

Notebook 02 comes from a lab that builds "a simple class activation map
(CAM) of a model trained on the Fashion MNIST dataset" by hand: it upsamples
the last conv layer's maps with ``scipy.ndimage.zoom(order=2)`` and weighs
them with the Dense weights of one class; the first exercise repeats that.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from camlab.exercises.framework import exercise, report, run_check
from camlab.exercises.notebook01 import reference_cam
from camlab.exercises.questions import question
from camlab.maps import upsample


def _zoom_cam(feature_maps, class_weights, size, order=2):
    cam = reference_cam(feature_maps, class_weights)
    factors = (size[0] / cam.shape[0], size[1] / cam.shape[1])
    return ndimage.zoom(cam.astype("float64"), factors, order=order)


def reference_upsampled_cam(feature_maps, class_weights, size):
    """The CAM of one class upsampled to ``size`` as the Fashion-MNIST CAM lab
    notebook 02 comes from does it: (h, w, K), (K,), (H, W) -> (H, W),
    ``scipy.ndimage.zoom(order=2)``.

    Zooming the features and then weighting them (the lab's order) gives the
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
    ``scipy.ndimage.zoom(..., order=2)`` as in the lab notebook 02 comes
    from; not normalised.
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
        cam = reference_cam(feature_maps, class_weights)
        found["Right map, other interpolation: yours matches camlab.upsample "
              "(bilinear). This exercise asks for scipy.ndimage.zoom(..., order=2), "
              "as the lesson does by hand."] = upsample(cam, tuple(int(s) for s in size))
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


# -- the questions at the end of notebook 02 (their text is in the notebook)

question("02", 1, "why weighing and zooming can be swapped", "a",
         "zoom is linear: zoom(sum_k w_k f_k) = sum_k w_k zoom(f_k). Weighing first upsamples one "
         "map instead of 128.",
         {"b": "The lab's zoom is a quadratic spline (order=2), not nearest neighbour; what "
               "matters is that any spline zoom is linear in its input.",
          "c": "The cell that compares them finds them equal up to float rounding; ask which "
               "property of zoom makes that so."})

question("02", 2, "how wide one cell of a 3x3 map is", 28 / 3,
         "28 pixels over 3 cells: about 9.3 pixels each, so a map this coarse can only say "
         "which ninth of the image holds the evidence.",
         {3: "3 is the number of cells along a side; divide the image's width by it.",
          28 * 3: "Divide the image's width by the number of cells, do not multiply."},
         tolerance=0.04)  # 9 counts as right: 3.6% off

question("02", 3, "why one batched call is faster than the loop", "a",
         "The model and the map are computed for a whole batch in one compiled pass; the loop "
         "pays Python's and TensorFlow's overhead once per image, and upsamples 128 maps each time.",
         {"b": "The maps are the same size (28x28), and the test above checks they are equal.",
          "c": "The softmax is cheap, and camlab computes it too: Explanation.probabilities."})

question("02", 4, "why average only the correctly classified images", "a",
         "When the prediction is right, the map of the predicted class is the map of the class the "
         "image shows: each average is the evidence for one class.",
         {"b": "Fewer images would make the averages noisier, not better; what is special about "
               "the images kept?",
          "c": "Every image has a map of its predicted class, right or wrong; but whose map "
               "would a wrong one be?"})

question("02", 5, "the shape of the weights after the GAP", "a",
         "A Keras Dense kernel is (inputs, outputs): (128, 10), one column of 128 weights per "
         "class, which is why the lab writes gap_weights[:, class_id].",
         {"b": "Keras stores a Dense kernel as (inputs, outputs); the lab's gap_weights[:, class_id] "
               "takes a column.",
          "c": "(3, 3, 128) is one image's feature maps; the weights do not depend on the position."})

question("02", 6, "evidence beside the garment", "a",
         "A map marks what tells a class from its neighbours: an empty space where an ankle boot "
         "would have its shaft is evidence for Sneaker.",
         {"b": "The model is right on most sneakers; a map can point at an absence and still "
               "explain a right answer.",
          "c": "Upsampling only interpolates between the cells' values; the cells above the "
               "shoe hold that evidence themselves."})
