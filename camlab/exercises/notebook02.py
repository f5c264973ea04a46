"""Notebook 02's exercises (CAM on Fashion-MNIST, step by step): the share of a
map that lies off the garment, and the images the model is least sure of.

Notebook 02 comes from a lab that builds "a simple class activation map
(CAM) of a model trained on the Fashion MNIST dataset" by hand; its maps
often sit beside the garment, which the first exercise measures.
"""

from __future__ import annotations

import numpy as np

from camlab.exercises.framework import exercise, report, run_check
from camlab.exercises.questions import question


def reference_mass_off_item(maps, images, ink=0.1):
    """The share of each map's mass that lies off the item: (N, H, W) >= 0, (N, H, W, 1) in
    [0, 1], float -> (N,) in [0, 1]. Off the item: pixels whose image value is <= ``ink``.
    A map with no mass (all zeros) has share 0.
    """
    maps = np.asarray(maps, "float64")
    off = np.asarray(images)[..., 0] <= ink
    total = maps.sum(axis=(1, 2))
    return np.where(total > 0, (maps * off).sum(axis=(1, 2)) / np.where(total > 0, total, 1.0), 0.0)


def _mass_cases(seed=2):
    rng = np.random.default_rng(seed)
    cases = []
    for count, height, width in ((3, 8, 8), (2, 5, 7)):
        images = np.zeros((count, height, width, 1), "float32")
        images[:, 2:-2, 2:-2] = rng.uniform(0.3, 1.0, size=(count, height - 4, width - 4, 1))
        maps = rng.random((count, height, width)).astype("float32")
        maps[0] *= 3.0  # maps are not all scaled alike
        cases.append((maps, images, np.float64(0.1)))
    maps, images, ink = cases[0]
    maps = maps.copy()
    maps[-1] = 0.0  # a map with no mass
    cases.append((maps, images, ink))
    return cases


@exercise("02", "the share of a map off the garment", "mass_off_item", reference_mass_off_item)
def check_mass_off_item(function) -> bool:
    """Notebook 02: ``function(maps, images, ink)`` -> (N,), each map's share of its total
    value on pixels where the image is <= ``ink`` (off the garment); 0 for an empty map."""
    def mistakes(maps, images, ink):
        maps64 = maps.astype("float64")
        off = images[..., 0] <= ink
        total = np.maximum(maps64.sum(axis=(1, 2)), 1e-300)
        return {
            "That is the share ON the garment: take the pixels where the image is <= ink.":
                np.where(maps64.sum(axis=(1, 2)) > 0, (maps64 * ~off).sum(axis=(1, 2)) / total, 0.0),
            "You counted pixels, not mass: weigh each pixel by the map's value there.":
                off.mean(axis=(1, 2)),
            "That is the map's mass off the garment, not its share: divide by the map's total.":
                (maps64 * off).sum(axis=(1, 2)),
            "You divided by the number of pixels off the garment (a mean there): divide by the "
            "map's total mass instead.": (maps64 * off).sum(axis=(1, 2)) / np.maximum(off.sum(axis=(1, 2)), 1),
        }

    def hints(maps, images, ink):
        return {"shape:()": "One share per map: sum over the pixels of each image (axes 1 and 2), "
                            "not over the whole batch.",
                f"shape:{maps.shape}": "Add up each map's pixels: one number per map."}

    return report(run_check(function, _mass_cases(), reference_mass_off_item, hints, mistakes,
                            nan_hint="An all-zero map has no mass to share: return 0 for it."))


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
