"""Seeing maps: colour them, lay them over images, and draw grids (notebook 01).

Images may be grayscale (H, W), (H, W, 1) or RGB (H, W, 3), in any range:
they are scaled to [0, 1] for display only. Maps are (H, W) floats, shown
after min-max scaling (a flat map shows as zeros).
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from camlab.checks import as_finite_float32, as_maps, check_named
from camlab.errors import InputError
from camlab.maps import normalize, upsample


def display_image(image) -> np.ndarray:
    """One image as float RGB (H, W, 3) in [0, 1], min-max scaled for display."""
    try:
        array = np.asarray(image, dtype="float32")
    except (TypeError, ValueError):
        raise InputError(f"An image must be a numeric array; got {type(image).__name__}.") from None
    if not np.isfinite(array).all():
        raise InputError(
            f"The image holds {int(np.isnan(array).sum())} NaN and "
            f"{int(np.isinf(array).sum())} Inf pixels, which have no colour. Replace them "
            "first, e.g. np.nan_to_num(image)."
        )
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., np.newaxis], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise InputError(f"An image must be (H, W), (H, W, 1) or (H, W, 3); got {np.shape(image)}.")
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def gradient_image(gradients) -> np.ndarray:
    """Pixel gradients (H, W, C) as an image in [0, 1]: 0.5 is zero gradient.

    Each image is centred and scaled by its own standard deviation (0.15 per
    unit), as keras-vis and Selvaraju et al. show guided backpropagation;
    one channel comes back as (H, W), three as (H, W, 3). Batches (N, H, W, C)
    are scaled image by image.
    """
    array = as_finite_float32(gradients, "gradients", "(H, W, C) or (N, H, W, C)")
    if array.ndim not in (3, 4) or 0 in array.shape:
        raise InputError(f"gradients must be (H, W, C) or (N, H, W, C), with at least one "
                         f"pixel; got {array.shape}.")
    axes = tuple(range(array.ndim - 3, array.ndim))
    wide = array.astype("float64")  # sums of float32 gradients near 3e38 overflow float32
    centred = wide - wide.mean(axis=axes, keepdims=True)
    spread = centred.std(axis=axes, keepdims=True)
    scaled = np.clip(0.5 + 0.15 * centred / np.where(spread > 0, spread, 1.0), 0.0, 1.0)
    scaled = scaled.astype("float32")
    return scaled[..., 0] if scaled.shape[-1] == 1 else scaled


def colorize(heatmap, cmap="jet") -> np.ndarray:
    """A map (H, W) or maps (N, H, W) as RGB float (..., 3) in [0, 1].

    Each map is min-max scaled first; "jet" is the colour map of the tutorials, any
    Matplotlib colour map name works ("Greens", "Reds", "inferno", ...).
    """
    scaled = normalize(heatmap)
    return colormap(cmap)(scaled)[..., :3].astype("float32")


def colormap(cmap):
    """A Matplotlib colour map by name (or a Colormap), or an ``InputError`` naming some."""
    if isinstance(cmap, matplotlib.colors.Colormap):
        return cmap
    try:
        return matplotlib.colormaps[cmap]
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"Unknown colour map {cmap!r}; use a Matplotlib name such as 'jet', "
            "'inferno', 'Greens' or 'Reds' (see matplotlib.colormaps)."
        ) from None


def overlay(image, heatmap, alpha=0.5, cmap="jet") -> np.ndarray:
    """Lay a coloured map over an image: (1 - alpha) * image + alpha * colour.

    image: (H, W), (H, W, 1) or (H, W, 3), any range. heatmap: (h, w); it is
    upsampled (bilinear) when smaller than the image. alpha in [0, 1].
    Returns RGB float (H, W, 3) in [0, 1]. The cats-vs-dogs tutorial of
    notebook 03 does the same with ``cv2.addWeighted(img, 0.5, cam, 0.25, 0)``.
    """
    if not isinstance(alpha, (int, float, np.number)) or not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be a number in [0, 1]; got {alpha!r}.")
    picture = display_image(image)
    heatmap, one = as_maps(heatmap, "heatmap")
    if not one:
        raise InputError(f"heatmap must be one map (H, W); got shape {heatmap.shape}.")
    heatmap = heatmap[0].astype("float32", copy=False)
    if heatmap.shape != picture.shape[:2]:
        heatmap = upsample(heatmap, picture.shape[:2])
    return ((1.0 - alpha) * picture + alpha * colorize(heatmap, cmap)).astype("float32")


def caption(predicted=None, probability=None, label=None, class_names=None) -> str:
    """"pred 7 (0.98)\ntrue 7" from what is known; names via ``class_names``."""
    def name(index):
        return str(class_names[index]) if class_names is not None else str(index)

    parts = []
    if predicted is not None:
        text = f"pred {name(int(predicted))}"
        if probability is not None:
            text += f" ({float(probability):.2f})"
        parts.append(text)
    if label is not None:
        parts.append(f"true {name(int(label))}")
    return "\n".join(parts)


def image_grid(count, columns=5, cell=(2.4, 2.6)):
    """A figure of ``count`` picture cells, ``columns`` wide; returns (figure, axes).

    ``axes`` holds exactly ``count`` axes, in reading order, without ticks;
    the cells left over in the last row are hidden. ``cell`` is one cell's
    (width, height) in inches.
    """
    if count < 1:
        raise InputError("There is nothing to draw: pass at least one image.")
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(cell[0] * columns, cell[1] * rows),
                                squeeze=False)
    for axis in grid.flat:
        axis.axis("off")
    return figure, list(grid.flat)[:count]


def show_maps(images, maps, predicted=None, probabilities=None, labels=None,
              class_names=None, columns=5, cmap="jet", alpha=0.5, titles=None):
    """A grid: each image with its map laid over it, captioned with the prediction.

    images: (N, H, W[, C]); maps: (N, H, W) or smaller (upsampled to fit).
    predicted, labels: (N,) class indices; probabilities: (N,) the predicted
    class's probability, or (N, classes). class_names turns indices into names;
    titles replaces the captions. Draws one Matplotlib figure and shows it.
    """
    images, maps = np.asarray(images), np.asarray(maps)
    if images.ndim == 0 or maps.ndim == 0 or len(images) != len(maps):
        raise InputError(f"{np.shape(images)} images but {np.shape(maps)} maps; pass a batch "
                         "of images (N, H, W[, C]) and one map per image.")
    if len(images) == 0:
        raise InputError("show_maps got an empty batch; pass at least one image and its map.")
    for name, indices in (("predicted", predicted), ("labels", labels)):
        check_named(name, indices, class_names)
    figure, axes = image_grid(len(images), columns)
    for index, axis in enumerate(axes):
        axis.imshow(overlay(images[index], maps[index], alpha=alpha, cmap=cmap))
        if titles is not None:
            axis.set_title(str(titles[index]), fontsize=9)
            continue
        probability = None
        if probabilities is not None:
            row = np.asarray(probabilities)[index]
            probability = row[int(predicted[index])] if np.ndim(row) else row
        axis.set_title(
            caption(None if predicted is None else predicted[index], probability,
                    None if labels is None else labels[index], class_names),
            fontsize=9,
        )
    figure.tight_layout()
    plt.show()


def show_explanation(image, heatmap, title=None, cmap="jet", alpha=0.5):
    """One image three ways, side by side: the image, its map, the overlay.

    As the cats-vs-dogs tutorial of notebook 03 shows them. image: (H, W[, C]);
    heatmap: (h, w), finite.
    """
    heatmap = as_maps(heatmap, "heatmap")[0][0]
    picture = display_image(image)
    figure, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    axes[0].imshow(picture)
    axes[0].set_title("image")
    shown = axes[1].imshow(normalize(heatmap), cmap=cmap, vmin=0, vmax=1)
    axes[1].set_title("map")
    figure.colorbar(shown, ax=axes[1], fraction=0.046)
    axes[2].imshow(overlay(image, heatmap, alpha=alpha, cmap=cmap))
    axes[2].set_title("overlay")
    for axis in axes:
        axis.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    plt.show()


def show_comparison(images, maps_by_name, titles=None, cmap="jet", alpha=0.5):
    """Images in rows; the image, then one overlay per method (or model) in columns.

    images: (N, H, W[, C]); maps_by_name: {"Grad-CAM": maps (N, h, w), ...}, every
    entry one map per image; titles: optional (N,) row labels shown on the image.
    A value of ``maps_by_name`` may also be pixel gradients (N, H, W, C), shown
    with ``gradient_image`` (guided backpropagation).
    """
    images = np.asarray(images)
    if images.ndim == 0 or len(images) == 0:
        raise InputError("show_comparison needs at least one image (N, H, W[, C]).")
    names = list(maps_by_name)
    for name in names:
        if len(maps_by_name[name]) != len(images):
            raise InputError(f"{name!r} has {len(maps_by_name[name])} maps for {len(images)} images.")
    rows, columns = len(images), len(names) + 1
    figure, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.3 * rows), squeeze=False)
    for row in range(rows):
        axes[row, 0].imshow(display_image(images[row]))
        axes[row, 0].set_title(str(titles[row]) if titles is not None else "image", fontsize=9)
        for column, name in enumerate(names, start=1):
            value = np.asarray(maps_by_name[name][row])
            if value.ndim == 3:  # pixel gradients
                axes[row, column].imshow(gradient_image(value), cmap="gray", vmin=0, vmax=1)
            else:
                axes[row, column].imshow(overlay(images[row], value, alpha=alpha, cmap=cmap))
            if row == 0:
                axes[row, column].set_title(name, fontsize=10)
    for axis in axes.flat:
        axis.axis("off")
    figure.tight_layout()
    plt.show()
