"""The explorer's controls and picture panels, as ipywidgets, at their starting values."""

from __future__ import annotations

import ipywidgets

SLIDER_WIDTH = "520px"  # about one image per pixel for a few hundred images
LABEL_WIDTH = "60px"  # the controls' descriptions


def make_controls(available, first, class_names, count, alpha) -> dict:
    """The controls a learner moves, by name, at their starting values.

    available: {method name: title} for the menu; first: the method shown
    first; class_names: one per class; count: the number of images (indices
    0 .. count - 1); alpha: the starting opacity, in [0, 1]. Each control has
    the CSS class ``camlab-<name>`` (the browser test finds them by it).
    """
    wide = dict(layout=ipywidgets.Layout(width=SLIDER_WIDTH), style={"description_width": LABEL_WIDTH})
    last = count - 1
    controls = {
        "image": ipywidgets.IntSlider(0, min=0, max=last, description="image",
                                      continuous_update=True, **wide),
        # type an index and press Enter (or use the arrows) to jump to that image
        "number": ipywidgets.BoundedIntText(0, min=0, max=last, description=f"go to (0-{last})",
                                            layout=ipywidgets.Layout(width="190px"),
                                            style={"description_width": "90px"}),
        # the value is the class index; the slider reads out the class name
        "class": ipywidgets.SelectionSlider(options=list(zip(class_names, range(len(class_names)))),
                                            value=0, description="class", **wide),
        "follow": ipywidgets.Checkbox(True, description="class = prediction", indent=False,
                                      layout=ipywidgets.Layout(width="160px")),
        "method": ipywidgets.Dropdown(options=[(t, n) for n, t in available.items()], value=first,
                                      description="method", layout=ipywidgets.Layout(width="300px"),
                                      style={"description_width": LABEL_WIDTH}),
        "opacity": ipywidgets.FloatSlider(alpha, min=0.0, max=1.0, step=0.05, description="opacity",
                                          layout=ipywidgets.Layout(width="360px"),
                                          style={"description_width": LABEL_WIDTH}),
    }
    for name, control in controls.items():
        control.add_class(f"camlab-{name}")
    return controls


def make_panels() -> dict:
    """The three PNG pictures, "image", "map" and "overlay", with CSS classes ``camlab-panel-<name>``."""
    panels = {name: ipywidgets.Image(format="png") for name in ("image", "map", "overlay")}
    for name, panel in panels.items():
        panel.add_class(f"camlab-panel-{name}")
    return panels
