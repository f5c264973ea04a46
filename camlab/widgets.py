"""The explorer: browse a model's class activation maps with sliders (notebooks 01, 02).

``explore(model, images, labels, class_names)`` returns one ipywidgets
container: sliders for the image and for the class whose map is shown, a
selector listing every method registered in ``camlab.METHODS`` that applies to
the model (a method registered later appears with no change here; one that
cannot apply, such as CAM on a model without a GAP + Dense head, is left out
and the reason is shown), an opacity slider, and three pictures: the image, its
map and the overlay, captioned with the class names, the model's probabilities,
the prediction and the true label. A number box jumps to an image by its index
(images are numbered from 0, as in ``images[i]``). When the method just left
gives the same map as the one shown, a line says so and why (on a GAP + Dense
head, Grad-CAM is ReLU(CAM) divided by a constant).

Moving a slider must feel instant, so nothing is drawn with Matplotlib and no
map is computed for one image at a time:

- maps come from ``camlab.explain`` in blocks of images (one batched call
  per method, class and block) and are kept in a cache; the predicted-class
  maps of the whole set (or of the first blocks, for large images) are
  computed ahead of time, together with every image's probabilities;
- a redraw only looks a map up, colours it through a 256-entry lookup table,
  blends it with the image in NumPy and encodes small PNGs with Pillow;
- a class slider move that needs a new block costs one batched call.

``bench/bench_widget.py`` measures the redraw time, and ``tests/test_browser.py``
the time from a key press to the new picture in JupyterLab. ``Explorer.show_static``
draws the current view as a Matplotlib figure.

Displayed in a notebook, the explorer writes two outputs (``Explorer.outputs``),
under ipywidgets 7 (Colab) and 8 alike: the live widget, then a still picture
of its first view with a one-line "re-run this cell" note. While the widget
lives, it hides the still picture; where no widget can be drawn (GitHub, a
saved notebook reopened after its kernel stopped, where JupyterLab says
"model not found") the picture and the note stay.
"""

from __future__ import annotations

import base64
import collections
import html
import io
import uuid

import ipywidgets
import numpy as np
from PIL import Image

from camlab import graph
from camlab.errors import CamlabError, ClassIndexError, InputError, ModelError
from camlab.methods import METHODS, as_image_batch, default_batch_size, explain
from camlab.viz import colormap, display_image, show_explanation

PANEL_PIXELS = 196  # the displayed size of the longer side of each picture
CACHE_BLOCKS = 256  # blocks of maps kept (least recently used go first)
PREFETCH_VALUES = 1 << 23  # map values computed ahead of time (32 MB of float32)
PREDICTED = -1  # the cache's class key for "each image's predicted class"
SLIDER_WIDTH = "520px"  # about one image per pixel for a few hundred images
LABEL_WIDTH = "60px"  # the controls' descriptions
SAME_MAP_TOLERANCE = 1e-3  # maps in [0, 1] closer than this everywhere are "the same map"
RERUN_NOTE = ("A still picture of the explorer's first view. If no explorer shows above "
              "(a saved notebook, or its kernel has stopped), re-run this cell to use it.")
# Why two methods can give one map (Selvaraju et al. 2017, sec. 3.1: on a GAP + Dense head
# Grad-CAM's channel weights are the Dense weights divided by H*W).
SAME_MAP_REASONS = {
    frozenset(("cam", "gradcam")): (
        "On a GAP + Dense head, Grad-CAM's channel weights are the Dense weights divided by "
        "the number of positions, so Grad-CAM is ReLU(CAM) divided by a constant: scaled to "
        "[0, 1], the two maps are equal wherever the CAM has no negative values."),
    frozenset(("gradcam", "hirescam")): (
        "On a GAP head the gradient is the same at every position, so HiResCAM's "
        "position-wise product equals Grad-CAM's averaged weights."),
}


def method_availability(model, input_shape=None) -> tuple:
    """Which registered methods apply to ``model``: ({name: title}, {name: why not}).

    Read from ``camlab.METHODS`` at call time. A method that needs a GAP +
    Dense head (``Method.gap_head``, i.e. CAM) is unavailable on other models;
    the reason is the message ``camlab.explain`` would raise.
    """
    anatomy = graph.read_model(model, input_shape)
    available, unavailable = {}, {}
    for name, entry in METHODS.items():
        try:
            anatomy.feature_layer(None, for_cam=entry.gap_head)
        except ModelError as error:
            unavailable[name] = str(error)
        else:
            available[name] = entry.title
    return available, unavailable


def colormap_table(cmap="jet") -> np.ndarray:
    """uint8 (256, 3): the RGB colour of map values 0/255 .. 255/255 in ``cmap``."""
    return (colormap(cmap)(np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype("uint8")


def png_bytes(pixels, scale=1) -> bytes:
    """Encode uint8 (H, W, 3) as PNG, enlarged ``scale`` times (nearest neighbour)."""
    picture = Image.fromarray(pixels)
    if scale > 1:
        picture = picture.resize((pixels.shape[1] * scale, pixels.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def blend(picture, colours, alpha) -> np.ndarray:
    """(1 - alpha) * picture + alpha * colours for uint8 (H, W, 3) arrays, as uint8."""
    mixed = (1.0 - alpha) * picture.astype("float32") + alpha * colours.astype("float32")
    return (mixed + 0.5).astype("uint8")


def _check_labels(labels, count, num_classes):
    if labels is None:
        return None
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != count or array.dtype.kind not in "iu":
        raise InputError(
            f"labels must hold one integer class per image ({count}); got shape "
            f"{array.shape} and dtype {array.dtype}."
        )
    if ((array < 0) | (array >= num_classes)).any():
        raise ClassIndexError(
            f"labels must lie in 0 .. {num_classes - 1} (the model has {num_classes} "
            f"classes); got values {array.min()} .. {array.max()}."
        )
    return array.astype("int64")


def _check_class_names(class_names, num_classes):
    if class_names is None:
        return tuple(str(c) for c in range(num_classes))
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
        raise InputError(
            f"class_names must be a sequence of names, one per class; got {class_names!r}."
        )
    names = tuple(str(n) for n in class_names)
    if len(names) != num_classes:
        raise InputError(
            f"class_names has {len(names)} names but the model has {num_classes} "
            "classes; give one name per class."
        )
    return names


class Explorer(ipywidgets.VBox):
    """The explorer widget that ``explore`` returns; see the module docstring.

    ``controls``: the widgets a learner moves, by name: "image", "class",
    "follow" (the class follows the prediction), "method", "opacity".
    ``panels``: the ``ipywidgets.Image`` of "image", "map" and "overlay".
    ``shown``: what is on screen now (image index, class, its probability,
    the predicted and true class, the method and the map (H, W) in [0, 1]).
    """

    def __init__(self, model, images, labels=None, class_names=None, *, cmap="jet",
                 alpha=0.5, layer=None, block_size=None, method=None):
        batch = as_image_batch(images, graph.model_input_shape(model))
        anatomy = graph.read_model(model, batch.shape[1:])
        available, unavailable = method_availability(model, batch.shape[1:])
        if not available:
            raise ModelError(
                "No camlab method applies to this model: "
                + " ".join(f"{METHODS[n].title}: {why}" for n, why in unavailable.items())
            )
        self.model, self.images, self.layer = model, batch, layer
        num_classes = anatomy.head.num_classes
        self.labels = _check_labels(labels, len(batch), num_classes)
        self.class_names = _check_class_names(class_names, num_classes)
        self.unavailable = unavailable
        self.table = colormap_table(cmap)
        height, width = batch.shape[1:3]
        self.scale = max(1, PANEL_PIXELS // max(height, width))
        self.block = int(block_size or min(128, default_batch_size(batch.shape[1:], True)))
        self._cache = collections.OrderedDict()  # (method, class key, block) -> maps
        self._probabilities = np.full((len(batch), num_classes), np.nan, dtype="float32")
        self._pictures = {}  # image index -> uint8 (H, W, 3), for display
        self.blocks_computed = 0  # blocks of maps computed (tests, benchmark)
        self._quiet = False

        first = _starting_method(method, available, unavailable)
        wide = dict(layout=ipywidgets.Layout(width=SLIDER_WIDTH),
                    style={"description_width": LABEL_WIDTH})
        last = len(batch) - 1
        self.controls = {
            "image": ipywidgets.IntSlider(0, min=0, max=last, description="image",
                                          continuous_update=True, **wide),
            # type an index and press Enter (or use the arrows) to jump to that image
            "number": ipywidgets.BoundedIntText(0, min=0, max=last, description=f"go to (0-{last})",
                                                layout=ipywidgets.Layout(width="190px"),
                                                style={"description_width": "90px"}),
            # the value is the class index; the slider reads out the class name
            "class": ipywidgets.SelectionSlider(options=list(zip(self.class_names, range(num_classes))),
                                                value=0, description="class", **wide),
            "follow": ipywidgets.Checkbox(True, description="class = prediction", indent=False,
                                          layout=ipywidgets.Layout(width="160px")),
            "method": ipywidgets.Dropdown(options=[(t, n) for n, t in available.items()],
                                          value=first, description="method",
                                          layout=ipywidgets.Layout(width="300px"),
                                          style={"description_width": LABEL_WIDTH}),
            "opacity": ipywidgets.FloatSlider(alpha, min=0.0, max=1.0, step=0.05,
                                              description="opacity",
                                              layout=ipywidgets.Layout(width="360px"),
                                              style={"description_width": LABEL_WIDTH}),
        }
        for name, control in self.controls.items():
            control.add_class(f"camlab-{name}")  # for the browser test, and for custom styles
        self.panels = {name: ipywidgets.Image(format="png") for name in ("image", "map", "overlay")}
        for name, panel in self.panels.items():
            panel.add_class(f"camlab-panel-{name}")
        self._titles = {name: ipywidgets.HTML() for name in self.panels}
        self._class_label = ipywidgets.HTML()
        self._caption = ipywidgets.HTML()
        self._note = ipywidgets.HTML(self._unavailable_note())
        self._same = ipywidgets.HTML()  # "these two methods give the same map here, because ..."
        self._compared = None  # the method shown before the current one
        self._token = uuid.uuid4().hex[:12]  # names this explorer's still picture in the page
        # While the widget is drawn, this style hides its still picture (see ``outputs``).
        self._hide_still = ipywidgets.HTML(
            f"<style>.{self._still_class()} {{display: none !important;}} "
            f".jp-OutputArea-child:has(.{self._still_class()}) {{display: none !important;}}</style>",
            layout=ipywidgets.Layout(height="0px", overflow="hidden"))
        colour_bar = ipywidgets.Image(value=png_bytes(np.repeat(self.table[np.newaxis], 10, 0)),
                                      format="png", width=width * self.scale, height=10)
        self.shown = {}

        self._prefetch(first)
        self.controls["class"].value = int(self._predicted(0))
        for name, control in self.controls.items():
            control.observe(self._on_change, names="value")
        columns = [
            ipywidgets.VBox([self._titles[name], self.panels[name]]
                            + ([colour_bar, ipywidgets.HTML(
                                "<small>low &rarr; high evidence for the class</small>")]
                               if name == "map" else []))
            for name in self.panels
        ]
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

    # -- maps and probabilities ------------------------------------------
    def _compute(self, method, key, first, count=1):
        """Maps of ``count`` blocks from block ``first`` for one class key, in one
        batched call; each block (B, H, W) goes into the cache."""
        start = first * self.block
        chunk = self.images[start:start + count * self.block]
        classes = None if key == PREDICTED else np.full(len(chunk), key, dtype="int64")
        result = explain(self.model, chunk, method, class_index=classes, layer=self.layer,
                         batch_size=self.block)
        self._probabilities[start:start + len(chunk)] = result.probabilities
        for block in range(first, first + -(-len(chunk) // self.block)):
            offset = (block - first) * self.block
            self._cache[(method, key, block)] = result.maps[offset:offset + self.block]
            self.blocks_computed += 1
        while len(self._cache) > CACHE_BLOCKS:
            self._cache.popitem(last=False)

    def _maps(self, method, key, block):
        cache_key = (method, key, block)
        if cache_key not in self._cache:
            self._compute(method, key, block)
        self._cache.move_to_end(cache_key)
        return self._cache[cache_key]

    def _prefetch(self, method):
        """Predicted-class maps and probabilities ahead of time, within a budget."""
        per_block = self.block * int(np.prod(self.images.shape[1:3]))
        blocks = -(-len(self.images) // self.block)
        budget = min(PREFETCH_VALUES // per_block, CACHE_BLOCKS // 2)
        self._compute(method, PREDICTED, 0, max(1, min(blocks, budget)))

    def _probability_row(self, index):
        if np.isnan(self._probabilities[index, 0]):
            self._maps(self.controls["method"].value, PREDICTED, index // self.block)
        return self._probabilities[index]

    def _predicted(self, index) -> int:
        return int(self._probability_row(index).argmax())

    def heatmap(self, index, class_index, method) -> np.ndarray:
        """The map (H, W) in [0, 1] of image ``index`` for ``class_index``, from the cache."""
        block, offset = divmod(index, self.block)
        key = PREDICTED if class_index == self._predicted(index) else class_index
        return self._maps(method, key, block)[offset]

    # -- drawing ---------------------------------------------------------
    def _picture(self, index):
        if index not in self._pictures:
            if len(self._pictures) > 4 * self.block:
                self._pictures.clear()
            self._pictures[index] = (display_image(self.images[index]) * 255 + 0.5).astype("uint8")
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
                self._set_quietly("class", self._predicted(image))
            if name == "class" and change["new"] != self._predicted(image):
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
        colours = self.table[(np.clip(heat, 0.0, 1.0) * 255 + 0.5).astype("uint8")]
        self.panels["overlay"].value = png_bytes(blend(picture, colours, alpha), self.scale)
        if only_overlay and self.shown.get("index") == index:
            self.shown["opacity"] = alpha
            return
        if self.shown.get("index") != index:
            self.panels["image"].value = png_bytes(picture, self.scale)
        self.panels["map"].value = png_bytes(colours, self.scale)
        self._write_captions(index, class_index, method, heat, alpha)
        self._same.value = self._same_map_note(index, class_index, method, heat)

    def _same_map_note(self, index, class_index, method, heat) -> str:
        """A line saying that the map is flat, or that the method shown before gives
        this same map, and why; or ""."""
        if heat.max() <= 0:
            return (f"<small>Note: This map is zero everywhere: "
                    f"{html.escape(METHODS[method].title)} finds no positive evidence for "
                    f"<i>{html.escape(self.class_names[class_index])}</i> in this image.</small>")
        other = self._compared
        if other is None or other == method or other not in METHODS:
            return ""
        block, offset = divmod(index, self.block)
        key = PREDICTED if class_index == self._predicted(index) else class_index
        before = self._cache.get((other, key, block))
        if before is None or np.abs(before[offset] - heat).max() > SAME_MAP_TOLERANCE:
            return ""
        why = SAME_MAP_REASONS.get(frozenset((method, other)),
                                   "The two methods weigh the feature maps alike on this model "
                                   "and image; they differ on others.")
        return (f"<small>Note: <b>{html.escape(METHODS[method].title)}</b> gives the same map "
                f"as <b>{html.escape(METHODS[other].title)}</b> here. {html.escape(why)}</small>")

    def _write_captions(self, index, class_index, method, heat, alpha):
        probabilities = self._probability_row(index)
        predicted = int(probabilities.argmax())
        name = self.class_names
        label = None if self.labels is None else int(self.labels[index])
        self.shown = dict(index=index, class_index=class_index, class_name=name[class_index],
                          probability=float(probabilities[class_index]), predicted=predicted,
                          label=label, method=method, map=heat, opacity=alpha)
        title = METHODS[method].title
        # the slider and the number box show the index (0 .. N-1): the title does not change,
        # so an image move sends one message less to the page
        self._titles["image"].value = "<b>image</b>"
        self._titles["map"].value = f"<b>{title}</b> of <i>{html.escape(name[class_index])}</i>"
        self._titles["overlay"].value = "<b>overlay</b>"
        # the slider already reads out the class name: only its probability here
        self._class_label.value = f"&nbsp;p = {probabilities[class_index]:.3f}&nbsp;"
        verdict = ""
        if label is not None:
            right = label == predicted
            verdict = (f" &nbsp; true: <b>{html.escape(name[label])}</b> "
                       f"<span style='color:{'green' if right else 'red'}'>"
                       f"{'&#10003; right' if right else '&#10007; wrong'}</span>")
        top = np.argsort(probabilities)[::-1][:3]
        ranking = ", ".join(f"{html.escape(name[c])} {probabilities[c]:.2f}" for c in top)
        self._caption.value = (f"predicted: <b>{html.escape(name[predicted])}</b> "
                               f"(p = {probabilities[predicted]:.3f}){verdict}"
                               f"<br><small>top classes: {ranking}</small>")

    def _unavailable_note(self):
        if not self.unavailable:
            return ""
        items = "".join(f"<li><b>{html.escape(METHODS[n].title)}</b>: {html.escape(why)}</li>"
                        for n, why in self.unavailable.items() if n in METHODS)
        return f"<small>Not available for this model:<ul>{items}</ul></small>"

    def _drop_method(self, method, error):
        self.unavailable[method] = str(error)
        options = [(t, n) for t, n in self.controls["method"].options if n != method]
        self._note.value = self._unavailable_note()
        if not options:
            raise ModelError(f"No camlab method works on this model; the last one failed: {error}")
        self._quiet = True
        try:
            self.controls["method"].options = options
            self.controls["method"].value = options[0][1]
        finally:
            self._quiet = False
        self.redraw()

    # -- static views ----------------------------------------------------
    def show_static(self):
        """Draw the current view as one Matplotlib figure (image, map, overlay)."""
        state = self.shown
        title = (f"{METHODS[state['method']].title} of {state['class_name']} "
                 f"(p = {state['probability']:.2f}) | predicted "
                 f"{self.class_names[state['predicted']]}")
        if state["label"] is not None:
            title += f" | true {self.class_names[state['label']]}"
        show_explanation(self.images[state["index"]], state["map"], title=title,
                         alpha=state["opacity"])

    def view_png(self) -> bytes:
        """The current view as one PNG: image, map and overlay side by side."""
        state = self.shown
        picture = self._picture(state["index"])
        colours = self.table[(np.clip(state["map"], 0.0, 1.0) * 255 + 0.5).astype("uint8")]
        gap = np.full((picture.shape[0], max(1, picture.shape[1] // 8), 3), 255, dtype="uint8")
        row = np.concatenate([picture, gap, colours, gap,
                              blend(picture, colours, state["opacity"])], axis=1)
        return png_bytes(row, self.scale)

    # -- what a notebook saves ------------------------------------------
    def _still_class(self):
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
        picture = self.view_png()
        source = "data:image/png;base64," + base64.b64encode(picture).decode("ascii")
        still = {
            "text/plain": RERUN_NOTE,
            "image/png": picture,
            "text/html": (f"<div class='camlab-still {self._still_class()}'>"
                          f"<img src='{source}' alt='still picture of the explorer'>"
                          f"<div><small>{html.escape(RERUN_NOTE)}</small></div></div>"),
        }
        return [self._repr_mimebundle_(), still]

    def _ipython_display_(self, **kwargs):
        """How IPython displays the explorer, under ipywidgets 7 (which displays
        every widget through ``_ipython_display_``) and 8 alike: ``outputs``."""
        from IPython.display import display

        widget, still = self.outputs()
        display(widget, raw=True)
        handle_displayed = getattr(self, "_handle_displayed", None)  # ipywidgets 7's callbacks
        if handle_displayed is not None:
            handle_displayed(**kwargs)
        display(still, raw=True)


def _starting_method(method, available, unavailable) -> str:
    """The method shown first: ``method`` if it applies, else CAM, else the first that applies."""
    if method is None:
        return "cam" if "cam" in available else next(iter(available))
    if not isinstance(method, str) or method not in METHODS:
        raise InputError(f"Unknown method {method!r}; camlab has {sorted(METHODS)}.")
    if method not in available:
        raise ModelError(f"{METHODS[method].title} does not apply to this model: "
                         f"{unavailable.get(method, 'see camlab.explain')}")
    return method


def explore(model, images, labels=None, class_names=None, *, cmap="jet", alpha=0.5,
            layer=None, method=None) -> Explorer:
    """An interactive explorer of ``model``'s class activation maps on ``images``.

    Args:
        model: a Keras 3 image classifier (as for ``camlab.explain``).
        images: float (N, H, W, C) scaled as the model was trained.
        labels: optional int (N,) true classes, shown beside the prediction.
        class_names: optional names, one per class.
        cmap, alpha: the map's colour map and the starting opacity.
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
