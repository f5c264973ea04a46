"""The explorer's pictures without Matplotlib: colour lookup, blending, PNG, the still picture.

A redraw colours a map through a 256-entry table (``colormap_table``,
``colour``), blends it with the image in NumPy (``blend``) and encodes small
PNGs with Pillow (``png_bytes``), each a few milliseconds for the course's
image sizes. ``view_png`` and ``still_bundle`` make the still picture a saved
notebook keeps (image, map and overlay side by side, with ``RERUN_NOTE``),
and ``hide_still_style`` the style by which the live widget hides it.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
from PIL import Image

from camlab.viz import colormap, display_image

RERUN_NOTE = ("A still picture of the explorer's first view. If no explorer shows above "
              "(a saved notebook, or its kernel has stopped), re-run this cell to use it.")


def colormap_table(cmap="jet") -> np.ndarray:
    """uint8 (256, 3): the RGB colour of map values 0/255 .. 255/255 in ``cmap``."""
    return (colormap(cmap)(np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype("uint8")


def colour(table, heat) -> np.ndarray:
    """uint8 (H, W, 3): map ``heat`` (H, W), clipped to [0, 1], coloured through ``table``."""
    return table[(np.clip(heat, 0.0, 1.0) * 255 + 0.5).astype("uint8")]


def display_pixels(image) -> np.ndarray:
    """uint8 (H, W, 3): one image (H, W, C), any range, scaled for display as ``camlab.viz``."""
    return (display_image(image) * 255 + 0.5).astype("uint8")


def png_bytes(pixels, scale=1) -> bytes:
    """Encode uint8 (H, W, 3) as PNG, enlarged ``scale`` times (nearest neighbour)."""
    picture = Image.fromarray(pixels)
    if scale > 1:
        picture = picture.resize((pixels.shape[1] * scale, pixels.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def blend(picture, colours, alpha) -> np.ndarray:
    """(1 - alpha) * picture + alpha * colours for uint8 (H, W, 3) arrays, as uint8.

    ``alpha`` in [0, 1]: 0 shows the picture alone, 1 the colours alone.
    """
    mixed = (1.0 - alpha) * picture.astype("float32") + alpha * colours.astype("float32")
    return (mixed + 0.5).astype("uint8")


def view_png(picture, colours, alpha, scale=1) -> bytes:
    """One PNG of a view: image, map and overlay side by side, white gaps between.

    ``picture`` and ``colours``: uint8 (H, W, 3); ``alpha`` in [0, 1] the
    overlay's opacity; the row (H, 3 W + 2 gaps, 3) is enlarged ``scale`` times.
    """
    gap = np.full((picture.shape[0], max(1, picture.shape[1] // 8), 3), 255, dtype="uint8")
    row = np.concatenate([picture, gap, colours, gap, blend(picture, colours, alpha)], axis=1)
    return png_bytes(row, scale)


def still_bundle(picture, css_class) -> dict:
    """The still picture's output bundle (mime type -> data) for PNG bytes ``picture``.

    PNG for front ends that show images, HTML with the same picture and the
    ``RERUN_NOTE`` in an element of class ``css_class`` (which the live widget
    hides, see ``hide_still_style``), and the note as text.
    """
    source = "data:image/png;base64," + base64.b64encode(picture).decode("ascii")
    return {
        "text/plain": RERUN_NOTE,
        "image/png": picture,
        "text/html": (f"<div class='camlab-still {css_class}'>"
                      f"<img src='{source}' alt='still picture of the explorer'>"
                      f"<div><small>{html.escape(RERUN_NOTE)}</small></div></div>"),
    }


def hide_still_style(css_class) -> str:
    """A <style> that hides the still picture of class ``css_class`` and its output area."""
    return (f"<style>.{css_class} {{display: none !important;}} "
            f".jp-OutputArea-child:has(.{css_class}) {{display: none !important;}}</style>")
