"""``box_slider``: move the threshold of a map's box and watch the box change (notebook 03).

The box is ``camlab.boxes.box_from_map`` (Zhou et al. 2016, sec. 3: the
largest connected region of the pixels at least ``threshold`` times the map's
maximum); the slider redraws it with Matplotlib when released.
"""

from __future__ import annotations

import ipywidgets
import matplotlib.pyplot as plt

from camlab.boxes import THRESHOLD, box_from_map, describe_box, draw_box
from camlab.checks import as_maps, check_threshold
from camlab.errors import InputError
from camlab.viz import display_image, overlay


def box_slider(image, heatmap, threshold=THRESHOLD, cmap="jet", alpha=0.5):
    """A slider for the threshold and the box it gives, redrawn as it moves.

    image: (H, W[, C]), any range (scaled for display); heatmap: (H, W), the
    image's size, any range (a raw or normalised map); threshold: the starting
    fraction of the map's maximum, in [0, 1]; alpha: the map's opacity, in
    [0, 1]. Returns an ipywidgets VBox: the slider, a line describing the box,
    and the figure (the kept pixels, and the image with its map and box).
    """
    heatmap = as_maps(heatmap, "heatmap")[0][0].astype("float32")
    picture = display_image(image)
    if heatmap.shape != picture.shape[:2]:
        raise InputError(f"heatmap {heatmap.shape} must have the image's size {picture.shape[:2]}.")
    slider = ipywidgets.FloatSlider(value=check_threshold(threshold), min=0.0, max=1.0,
                                    step=0.05, description="threshold", readout_format=".2f",
                                    continuous_update=False,
                                    layout=ipywidgets.Layout(width="520px"))
    text = ipywidgets.Label()
    figure_area = ipywidgets.Output()

    def redraw(change=None):
        fraction = slider.value
        box = box_from_map(heatmap, fraction)
        text.value = f"threshold {fraction:.2f} of the maximum: {describe_box(box, heatmap.shape)}"
        with figure_area:
            figure_area.clear_output(wait=True)
            figure, axes = plt.subplots(1, 2, figsize=(7, 3.4))
            peak = float(heatmap.max())
            axes[0].imshow((heatmap >= fraction * peak) & (peak > 0), cmap="gray", vmin=0, vmax=1)
            axes[0].set_title("kept pixels")
            axes[1].imshow(draw_box(overlay(picture, heatmap, alpha=alpha, cmap=cmap), box,
                                    color="white"))
            axes[1].set_title("map and box")
            for axis in axes:
                axis.axis("off")
            figure.tight_layout()
            plt.show()

    slider.observe(redraw, names="value")
    redraw()
    return ipywidgets.VBox([slider, text, figure_area])
