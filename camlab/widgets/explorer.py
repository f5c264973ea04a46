"""The explorer's view: ``Explorer``, an ``ipywidgets.VBox`` of controls and pictures, and ``explore``.

The view only looks maps up in its ``MapCache`` (``camlab.widgets.cache``),
draws them with ``camlab.widgets.pictures`` and words them with
``camlab.widgets.captions``; its widgets come from ``camlab.widgets.controls``.
See the package docstring for the whole design.
"""

from __future__ import annotations

import uuid

import ipywidgets
import numpy as np

from camlab.checks import check_labels, check_method, check_number, class_names_for
from camlab.errors import CamlabError, ModelError
from camlab.methods import METHODS
from camlab.viz import show_explanation
from camlab.widgets import captions, pictures
from camlab.widgets.controls import make_controls, make_panels
from camlab.widgets.cache import MapCache, method_availability

PANEL_PIXELS = 196  # the displayed size of the longer side of each picture


class Explorer(ipywidgets.VBox):
    """The explorer widget that ``explore`` returns; see the package docstring.

    ``controls``: the widgets a learner moves, by name: "image", "number"
    (go to an index), "class", "follow" (the class follows the prediction),
    "method", "opacity". ``panels``: the ``ipywidgets.Image`` of "image",
    "map" and "overlay". ``shown``: what is on screen now (image index, class,
    its probability in [0, 1], the predicted and true class, the method, the
    map (H, W) in [0, 1] and the opacity in [0, 1]). ``cache``: the
    ``MapCache`` the maps and probabilities come from.
    """

    def __init__(self, model, images, labels=None, class_names=None, *, cmap="jet",
                 alpha=0.5, layer=None, block_size=None, method=None):
        alpha = check_number(alpha, "alpha (the map's opacity)", low=0.0, high=1.0)
        self.cache = MapCache(model, images, layer, block_size)
        self.model, self.images, self.layer = model, self.cache.images, layer
        available, self.unavailable = method_availability(model, self.images.shape[1:])
        if not available:
            raise ModelError("No camlab method applies to this model: " + " ".join(
                f"{METHODS[n].title}: {why}" for n, why in self.unavailable.items()))
        num_classes = self.cache.num_classes
        self.labels = check_labels(labels, len(self.images), num_classes)
        self.class_names = class_names_for(class_names, num_classes)
        self.table = pictures.colormap_table(cmap)
        height, width = self.images.shape[1:3]
        self.scale = max(1, PANEL_PIXELS // max(height, width))
        self._pictures = {}  # image index -> uint8 (H, W, 3), for display
        self._quiet = False
        first = _starting_method(method, available, self.unavailable)
        self.controls = make_controls(available, first, self.class_names, len(self.images), alpha)
        self.panels = make_panels()
        self._titles = {name: ipywidgets.HTML() for name in self.panels}
        self._class_label = ipywidgets.HTML()
        self._caption = ipywidgets.HTML()
        self._note = ipywidgets.HTML(captions.unavailable_note(self.unavailable))
        self._same = ipywidgets.HTML()  # "these two methods give the same map here, because ..."
        self._compared = None  # the method shown before the current one
        self._token = uuid.uuid4().hex[:12]  # names this explorer's still picture in the page
        # While the widget is drawn, this style hides its still picture (see ``outputs``).
        self._hide_still = ipywidgets.HTML(pictures.hide_still_style(self._still_class()),
                                           layout=ipywidgets.Layout(height="0px", overflow="hidden"))
        colour_bar = ipywidgets.Image(value=pictures.png_bytes(np.repeat(self.table[np.newaxis], 10, 0)),
                                      format="png", width=width * self.scale, height=10)
        self.shown = {}

        self.cache.prefetch(first)
        self.controls["class"].value = self.cache.predicted(0)
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        legend = [colour_bar, ipywidgets.HTML("<small>low &rarr; high evidence for the class</small>")]
        columns = [ipywidgets.VBox([self._titles[name], self.panels[name]]
                                   + (legend if name == "map" else []))
                   for name in self.panels]
        super().__init__([
            ipywidgets.HBox([self.controls["image"], self.controls["number"]]),
            ipywidgets.HBox([self.controls["class"], self._class_label, self.controls["follow"]]),
            ipywidgets.HBox([self.controls["method"], self.controls["opacity"]]),
            ipywidgets.HBox(columns),
            self._caption,
            self._same,
            self._note,
            self._hide_still,
        ])
        self.add_class("camlab-explorer")
        self.redraw()

    # -- maps, from the cache ----------------------------------------------
    @property
    def block(self) -> int:
        """Images per block of maps (one batched ``camlab.explain`` call each)."""
        return self.cache.block

    @property
    def blocks_computed(self) -> int:
        """Blocks of maps computed so far (tests, benchmark)."""
        return self.cache.blocks_computed

    def heatmap(self, index, class_index, method) -> np.ndarray:
        """The map float32 (H, W) in [0, 1] of image ``index`` for ``class_index``, from the cache."""
        return self.cache.heatmap(index, class_index, method)

    # -- drawing -------------------------------------------------------------
    def _picture(self, index) -> np.ndarray:
        """uint8 (H, W, 3): image ``index`` as displayed (a few blocks are kept)."""
        if index not in self._pictures:
            if len(self._pictures) > 4 * self.block:
                self._pictures.clear()
            self._pictures[index] = pictures.display_pixels(self.images[index])
        return self._pictures[index]

    def _set_quietly(self, name, value):
        """Move a control from code without triggering another redraw."""
        self._quiet = True
        try:
            self.controls[name].value = value
        finally:
            self._quiet = False

    def _on_change(self, change):
        if self._quiet:
            return
        name = next(n for n, c in self.controls.items() if c is change["owner"])
        if name == "number":  # the box moves the slider, which redraws
            self.controls["image"].value = change["new"]
            return
        if name == "method":
            self._compared = change["old"]
        image = self.controls["image"].value
        # Controls moved from here tell the page after the new pictures (hold_sync),
        # so that the picture arrives first.
        with self.controls["number"].hold_sync(), self.controls["class"].hold_sync(), \
                self.controls["follow"].hold_sync():
            if name == "image":
                self._set_quietly("number", image)
            if name in ("image", "follow") and self.controls["follow"].value:
                self._set_quietly("class", self.cache.predicted(image))
            if name == "class" and change["new"] != self.cache.predicted(image):
                self._set_quietly("follow", False)
            self.redraw(only_overlay=name == "opacity")

    def redraw(self, only_overlay=False):
        """Update the pictures and captions to the controls' values."""
        index = self.controls["image"].value
        class_index = self.controls["class"].value
        method = self.controls["method"].value
        alpha = float(self.controls["opacity"].value)
        try:
            heat = self.heatmap(index, class_index, method)
        except CamlabError as error:  # a method that fails on this model: drop it, say why
            self._drop_method(method, error)
            return
        picture = self._picture(index)
        colours = pictures.colour(self.table, heat)
        self.panels["overlay"].value = pictures.png_bytes(pictures.blend(picture, colours, alpha),
                                                          self.scale)
        if only_overlay and self.shown.get("index") == index:
            self.shown["opacity"] = alpha
            return
        if self.shown.get("index") != index:
            self.panels["image"].value = pictures.png_bytes(picture, self.scale)
        self.panels["map"].value = pictures.png_bytes(colours, self.scale)
        self._write_captions(index, class_index, method, heat, alpha)
        self._same.value = self._same_map_note(index, class_index, method, heat)

    def _same_map_note(self, index, class_index, method, heat) -> str:
        """A line saying that the map is flat, or that the method shown before gives
        this same map, and why; or ""."""
        if heat.max() <= 0:
            return captions.flat_map_note(method, self.class_names[class_index])
        other = self._compared
        if other is None or other == method or other not in METHODS:
            return ""
        return captions.same_map_note(method, other, heat,
                                      self.cache.cached(index, class_index, other))

    def _write_captions(self, index, class_index, method, heat, alpha):
        probabilities = self.cache.probability_row(index)
        label = None if self.labels is None else int(self.labels[index])
        self.shown = dict(index=index, class_index=class_index,
                          class_name=self.class_names[class_index],
                          probability=float(probabilities[class_index]),
                          predicted=int(probabilities.argmax()), label=label, method=method,
                          map=heat, opacity=alpha)
        # the slider and the number box show the index (0 .. N-1): the title does not change,
        # so an image move sends one message less to the page
        self._titles["image"].value = "<b>image</b>"
        self._titles["map"].value = captions.map_title(method, self.class_names[class_index])
        self._titles["overlay"].value = "<b>overlay</b>"
        # the slider already reads out the class name: only its probability here
        self._class_label.value = f"&nbsp;p = {probabilities[class_index]:.3f}&nbsp;"
        self._caption.value = captions.caption(probabilities, self.class_names, label)

    def _drop_method(self, method, error):
        self.unavailable[method] = str(error)
        options = [(t, n) for t, n in self.controls["method"].options if n != method]
        self._note.value = captions.unavailable_note(self.unavailable)
        if not options:
            raise ModelError(f"No camlab method works on this model; the last one failed: {error}")
        self._quiet = True
        try:
            self.controls["method"].options = options
            self.controls["method"].value = options[0][1]
        finally:
            self._quiet = False
        self.redraw()

    # -- static views and what a notebook saves ------------------------------
    def show_static(self):
        """Draw the current view as one Matplotlib figure (image, map, overlay)."""
        state = self.shown
        title = (f"{captions.title_of(state['method'])} of {state['class_name']} "
                 f"(p = {state['probability']:.2f}) | predicted "
                 f"{self.class_names[state['predicted']]}")
        if state["label"] is not None:
            title += f" | true {self.class_names[state['label']]}"
        show_explanation(self.images[state["index"]], state["map"], title=title,
                         alpha=state["opacity"])

    def view_png(self) -> bytes:
        """The current view as one PNG: image, map and overlay side by side."""
        state = self.shown
        return pictures.view_png(self._picture(state["index"]),
                                 pictures.colour(self.table, state["map"]), state["opacity"],
                                 self.scale)

    def _still_class(self) -> str:
        return f"camlab-still-{self._token}"

    def _repr_mimebundle_(self, **kwargs):
        """The live widget's output: the widget view and a one-line text."""
        return {
            "text/plain": "camlab explorer (interactive: run this cell in Jupyter to use it)",
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self.model_id},
        }

    def outputs(self) -> list:
        """The two output bundles (mime type -> data) the explorer writes into a notebook.

        First the live widget (``_repr_mimebundle_``). Then the current view as
        a still picture (PNG, and HTML with the same picture and the
        ``RERUN_NOTE``) that the live widget hides. Front ends that cannot draw
        the widget (GitHub, nbviewer, JupyterLab after the kernel stopped)
        show the picture and the note.
        """
        return [self._repr_mimebundle_(), pictures.still_bundle(self.view_png(), self._still_class())]

    def close(self):
        """Close the explorer, every widget inside it and its observers, and drop its maps.

        ipywidgets keeps every open widget in a registry until it is closed, and each
        control's observer holds the explorer: closing only the outer box would keep the
        explorer, its model and its map cache alive for the rest of the session.
        """
        for widget in _inside(self):
            widget.unobserve_all()
            if widget is not self:
                widget.close()
        self.cache = None
        self.model = None
        super().close()

    def _ipython_display_(self, **kwargs):
        """How IPython displays the explorer, under ipywidgets 7 (which displays
        every widget through ``_ipython_display_``) and 8 alike: ``outputs``."""
        from IPython.display import display  # IPython is needed only to display

        widget, still = self.outputs()
        display(widget, raw=True)
        handle_displayed = getattr(self, "_handle_displayed", None)  # ipywidgets 7's callbacks
        if handle_displayed is not None:
            handle_displayed(**kwargs)
        display(still, raw=True)


def _inside(widget) -> list:
    """``widget`` and every widget in it (boxes' children, recursively)."""
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += _inside(child)
    return found


def _starting_method(method, available, unavailable) -> str:
    """The method shown first: ``method`` if it applies, else CAM, else the first that applies."""
    if method is None:
        return "cam" if "cam" in available else next(iter(available))
    entry = check_method(method, METHODS)
    if method not in available:
        raise ModelError(f"{entry.title} does not apply to this model: "
                         f"{unavailable.get(method, 'see camlab.explain')}")
    return method


def explore(model, images, labels=None, class_names=None, *, cmap="jet", alpha=0.5,
            layer=None, method=None) -> Explorer:
    """An interactive explorer of ``model``'s class activation maps on ``images``.

    Args:
        model: a Keras 3 image classifier (as for ``camlab.explain``).
        images: float (N, H, W, C) scaled as the model was trained.
        labels: optional int (N,) true classes, in 0 .. num_classes - 1.
        class_names: optional names, one per class.
        cmap, alpha: the map's colour map and the starting opacity, in [0, 1].
        layer: the layer to explain (default as in ``camlab.explain``).
        method: the method shown first, a name in ``camlab.METHODS`` (default
            "cam" where it applies); the menu offers every method that applies.

    Returns:
        An ``Explorer`` (an ``ipywidgets.VBox``): display it in a notebook.
        Its ``controls`` can also be set from code, and ``show_static()``
        draws the current view as a Matplotlib figure. Maps are cached: after
        training the model further, open a new explorer.
    """
    return Explorer(model, images, labels, class_names, cmap=cmap, alpha=alpha, layer=layer,
                    method=method)
