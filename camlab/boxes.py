"""Bounding boxes from class activation maps, and where maps point (notebooks 01-04).

Zhou et al. 2016 (Learning Deep Features for Discriminative Localization,
CVPR, sec. 3) localise an object with its CAM alone: keep the pixels whose
value is at least 20% of the map's maximum, and take the box around the
largest connected region, as the cats-vs-dogs tutorial of notebook 03 suggests.
``box_from_map`` does exactly that for one map, ``boxes_from_maps`` for a batch
in one labelling pass; ``draw_box`` and ``show_boxes`` show the result, and
``camlab.widgets.box_slider`` moves the threshold.

A box is ``(x_min, y_min, x_max, y_max)`` in inclusive pixel coordinates of
the map: x is the column, y the row, and ``x_max`` is the last column inside
the box, so the box is ``x_max - x_min + 1`` pixels wide. A map with no
positive value (an all-zero map, say) has nothing to box: its box is None.

Every notebook asks whether its maps point at the object. ``map_peaks``
finds each map's brightest pixel, ``mask_boxes`` boxes an object given as a
mask (the ink of a digit, the pixels of a garment), and ``peak_in_box`` /
``peak_on_mask`` answer the question for a whole batch at once.
"""

from __future__ import annotations

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage

from camlab.checks import as_maps, box_table, check_threshold
from camlab.errors import InputError
from camlab.viz import display_image, image_grid, overlay

THRESHOLD = 0.2  # the CAM paper's 20% of the maximum
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)  # diagonal neighbours touch


def boxes_from_maps(maps, threshold=THRESHOLD) -> list:
    """One box per map: ``(x_min, y_min, x_max, y_max)`` or None (see the module docstring).

    maps: float (N, H, W), any range (raw or normalised CAMs). For each map,
    the pixels >= ``threshold`` * its maximum are split into 8-connected
    regions (``scipy.ndimage.label`` with a 3x3 structure; the whole batch is
    labelled at once, no region crossing from one map to the next), and the
    box encloses the region with the most pixels. Of equally large regions,
    the one holding the higher value wins, then the first in reading order.
    Returns a list of N tuples of ints, or None for a map with no positive value.
    """
    threshold = check_threshold(threshold)
    maps = as_maps(maps, single=False)[0].astype("float64")
    peak = maps.max(axis=(1, 2), keepdims=True)
    mask = (maps >= threshold * peak) & (peak > 0)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = EIGHT_CONNECTED  # connect within a map, never across maps
    labels, count = ndimage.label(mask, structure=structure)
    boxes = [None] * len(maps)
    if count == 0:
        return boxes
    index = np.arange(1, count + 1)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    highest = np.asarray(ndimage.maximum(maps, labels, index))
    extents = ndimage.find_objects(labels)  # (map, rows, columns) slices per region
    owner = np.array([extent[0].start for extent in extents])
    # Sort regions by map, then largest, then highest, then reading order.
    order = np.lexsort((index, -highest, -sizes, owner))
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    for region in first:
        _, rows, columns = extents[region]
        boxes[owner[region]] = (int(columns.start), int(rows.start),
                                int(columns.stop - 1), int(rows.stop - 1))
    return boxes


def box_from_map(heatmap, threshold=THRESHOLD):
    """The box of one map (H, W): ``(x_min, y_min, x_max, y_max)``, or None.

    Pixels >= ``threshold`` * the map's maximum, largest 8-connected region,
    inclusive pixel coordinates with x the column (Zhou et al. 2016 use 0.2).
    A map with no positive value, such as an all-zero map, gives None; a flat
    positive map gives the whole map.
    """
    maps, one = as_maps(heatmap, "heatmap")
    if not one:
        raise InputError(f"heatmap must be one map (H, W); got shape {maps.shape}. "
                         "For a batch use camlab.boxes_from_maps.")
    return boxes_from_maps(maps, threshold)[0]


def map_peaks(maps) -> np.ndarray:
    """The (row, column) of each map's maximum: (N, H, W) -> int (N, 2).

    Ties go to the first in reading order (``argmax``). NaN or Inf in a map
    is an ``InputError``, as in every map helper (a NaN has no place to point).
    """
    maps = as_maps(maps, single=False)[0]
    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    return np.stack(np.unravel_index(flat, maps.shape[1:]), axis=1)


def mask_boxes(masks) -> np.ndarray:
    """The box around all True pixels of each mask: bool (N, H, W) -> int (N, 4).

    Rows are ``(x_min, y_min, x_max, y_max)``, inclusive, as ``box_from_map``;
    an empty mask gives (-1, -1, -1, -1). E.g. ``mask_boxes(images[..., 0] > 0.2)``
    boxes the ink of MNIST digits.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise InputError(f"masks must be a batch (N, H, W); got shape {masks.shape}.")
    rows, columns = masks.any(axis=2), masks.any(axis=1)  # (N, H), (N, W)
    height, width = masks.shape[1:]
    boxes = np.stack([columns.argmax(1), rows.argmax(1),
                      width - 1 - columns[:, ::-1].argmax(1),
                      height - 1 - rows[:, ::-1].argmax(1)], axis=1)
    boxes[~rows.any(axis=1)] = -1
    return boxes


def peak_in_box(maps, boxes, margin=0) -> np.ndarray:
    """Does each map's maximum lie in its box, grown by ``margin`` pixels? bool (N,).

    maps: (N, H, W); boxes: (N, 4) or a list of boxes, None (or -1 rows)
    meaning no box, which counts as False.
    """
    peaks = map_peaks(maps)
    table = box_table(boxes, len(peaks), size=np.shape(maps)[1:])
    present = (table >= 0).all(axis=1)
    x_min, y_min, x_max, y_max = (table[:, i] for i in range(4))
    rows, columns = peaks[:, 0], peaks[:, 1]
    inside = ((x_min - margin <= columns) & (columns <= x_max + margin)
              & (y_min - margin <= rows) & (rows <= y_max + margin))
    return inside & present


def peak_on_mask(maps, masks) -> np.ndarray:
    """Does each map's maximum lie on a True pixel of its mask? bool (N,).

    maps: (N, H, W); masks: bool (N, H, W), e.g. the object's pixels.
    """
    peaks, masks = map_peaks(maps), np.asarray(masks)
    if masks.dtype.kind not in "biuf":
        raise InputError(f"masks must be booleans or numbers (True or non-zero on the object), "
                         f"not {masks.dtype}: pass a bool array (N, H, W).")
    masks = masks.astype(bool)
    if masks.shape != np.shape(maps):
        raise InputError(f"masks {masks.shape} must match maps {np.shape(maps)}.")
    return masks[np.arange(len(peaks)), peaks[:, 0], peaks[:, 1]]


def draw_box(image, box, color="red", width=2) -> np.ndarray:
    """The image with the box's outline painted in: RGB float (H, W, 3) in [0, 1].

    image: (H, W), (H, W, 1) or (H, W, 3), any range (scaled for display);
    box: ``(x_min, y_min, x_max, y_max)`` inclusive, in the image's pixels, or
    None (the image comes back unchanged). The outline is ``width`` pixels
    wide, drawn inside the box. ``color``: any Matplotlib colour.
    """
    picture = display_image(image).copy()
    if box is None:
        return picture
    height, width_px = picture.shape[:2]
    x_min, y_min, x_max, y_max = box_table([box])[0]
    if not (0 <= x_min <= x_max < width_px and 0 <= y_min <= y_max < height):
        raise InputError(f"box {tuple(box)} does not fit in an image of {width_px}x{height} pixels.")
    if not isinstance(width, (int, np.integer)) or int(width) < 1:
        raise InputError(f"width must be a whole number of pixels, at least 1; got {width!r}.")
    rgb = np.asarray(matplotlib.colors.to_rgb(color), dtype="float32")
    line = int(width)
    inner = picture[y_min:y_max + 1, x_min:x_max + 1]
    inner[:line], inner[-line:] = rgb, rgb
    inner[:, :line], inner[:, -line:] = rgb, rgb
    return picture


def describe_box(box, shape) -> str:
    """'x 40-180, y 30-200 (141x171 px, 48% of the image)', or 'no box'."""
    if box is None:
        return "no box (no positive value in the map)"
    x_min, y_min, x_max, y_max = box
    wide, tall = x_max - x_min + 1, y_max - y_min + 1
    share = wide * tall / float(shape[0] * shape[1])
    return f"x {x_min}-{x_max}, y {y_min}-{y_max} ({wide}x{tall} px, {share:.0%} of the image)"


def show_boxes(images, maps, threshold=THRESHOLD, titles=None, columns=5, cmap="jet",
               alpha=0.5, color="white"):
    """A grid: each image with its map laid over it and the map's box drawn.

    images: (N, H, W[, C]); maps: (N, H, W), the size of the images (upsample
    them first). Returns the boxes (a list, as ``boxes_from_maps``) and shows
    one Matplotlib figure.
    """
    images = np.asarray(images)
    maps = as_maps(maps, single=False)[0]
    if images.ndim < 3 or len(images) != len(maps) or maps.shape[1:] != images.shape[1:3]:
        raise InputError(f"images {images.shape} and maps {maps.shape} must pair up: one map "
                         "(H, W) per image (H, W[, C]); upsample the maps first.")
    boxes = boxes_from_maps(maps, threshold)
    figure, axes = image_grid(len(images), columns, cell=(2.6, 2.8))
    for index, axis in enumerate(axes):
        axis.imshow(draw_box(overlay(images[index], maps[index], alpha=alpha, cmap=cmap),
                             boxes[index], color=color))
        title = titles[index] if titles is not None else (
            "no box" if boxes[index] is None else "box {}".format(boxes[index]))
        axis.set_title(str(title), fontsize=8)
    figure.suptitle(f"boxes at {threshold:.0%} of each map's maximum", fontsize=10)
    figure.tight_layout()
    plt.show()
    return boxes
