"""The explorer: browse a model's class activation maps with sliders (notebooks 01, 02).

``explore(model, images, labels, class_names)`` returns one ipywidgets
container: sliders for the image and for the class whose map is shown, a
selector listing every method registered in ``camlab.METHODS`` that applies to
the model (a method registered later appears with no change here; one that
cannot apply, such as CAM on a model without a GAP + Dense head, is left out
and the reason is shown), an opacity slider, and three pictures: the image, its
map and the overlay, captioned with the class names, the model's probabilities,
the prediction and the true label.

Moving a slider must feel instant, so nothing is drawn with Matplotlib and no
map is computed for one image at a time:

- maps come from ``camlab.explain`` in blocks of images (one batched call
  per method, class and block) and are kept in a cache; the predicted-class
  maps of the whole set (or of the first blocks, for large images) are
  computed ahead of time, together with every image's probabilities;
- a redraw only looks a map up, colours it through a 256-entry lookup table,
  blends it with the image in NumPy and encodes small PNGs with Pillow;
- a class slider move that needs a new block costs one batched call.

``bench/bench_widget.py`` measures the redraw time. ``Explorer.show_static``
draws the current view as a Matplotlib figure, and the widget carries a PNG
of its first view, so a notebook read on GitHub or run under nbval shows a
picture.
"""

from __future__ import annotations

import collections
import html
import io

import ipywidgets
import matplotlib
import numpy as np
from PIL import Image

from camlab import graph
from camlab.errors import CamlabError, ClassIndexError, InputError, ModelError
from camlab.methods import METHODS, as_image_batch, default_batch_size, explain
from camlab.viz import display_image, show_explanation

PANEL_PIXELS = 196  # the displayed size of the longer side of each picture
CACHE_BLOCKS = 256  # blocks of maps kept (least recently used go first)
PREFETCH_VALUES = 1 << 23  # map values computed ahead of time (32 MB of float32)
PREDICTED = -1  # the cache's class key for "each image's predicted class"


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
    return (matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype("uint8")


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
                 alpha=0.5, layer=None, block_size=None):
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

        first = "cam" if "cam" in available else next(iter(available))
        self.controls = {
            "image": ipywidgets.IntSlider(0, min=0, max=len(batch) - 1, description="image",
                                          continuous_update=True),
            # the value is the class index; the slider reads out the class name
            "class": ipywidgets.SelectionSlider(options=list(zip(self.class_names, range(num_classes))),
                                                value=0, description="class"),
            "follow": ipywidgets.Checkbox(True, description="class = prediction", indent=False),
            "method": ipywidgets.Dropdown(options=[(t, n) for n, t in available.items()],
                                          value=first, description="method"),
            "opacity": ipywidgets.FloatSlider(alpha, min=0.0, max=1.0, step=0.05,
                                              description="opacity"),
        }
        self.panels = {name: ipywidgets.Image(format="png") for name in ("image", "map", "overlay")}
        self._titles = {name: ipywidgets.HTML() for name in self.panels}
        self._class_label = ipywidgets.HTML()
        self._caption = ipywidgets.HTML()
        self._note = ipywidgets.HTML(self._unavailable_note())
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
            ipywidgets.HBox([self.controls["image"], self.controls["method"]]),
            ipywidgets.HBox([self.controls["class"], self._class_label, self.controls["follow"]]),
            self.controls["opacity"],
            ipywidgets.HBox(columns),
            self._caption,
            self._note,
        ])
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
        image = self.controls["image"].value
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

    def _write_captions(self, index, class_index, method, heat, alpha):
        probabilities = self._probability_row(index)
        predicted = int(probabilities.argmax())
        name = self.class_names
        label = None if self.labels is None else int(self.labels[index])
        self.shown = dict(index=index, class_index=class_index, class_name=name[class_index],
                          probability=float(probabilities[class_index]), predicted=predicted,
                          label=label, method=method, map=heat, opacity=alpha)
        title = METHODS[method].title
        self._titles["image"].value = f"<b>image {index}</b> of {len(self.images)}"
        self._titles["map"].value = f"<b>{title}</b> of <i>{html.escape(name[class_index])}</i>"
        self._titles["overlay"].value = "<b>overlay</b>"
        self._class_label.value = (f"<b>{html.escape(name[class_index])}</b>: "
                                   f"p = {probabilities[class_index]:.3f}")
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

    def _repr_mimebundle_(self, **kwargs):
        parent = getattr(super(), "_repr_mimebundle_", None)  # ipywidgets 7 has none
        bundle = parent(**kwargs) if parent is not None else {}
        # Front ends without the widget manager (GitHub, nbviewer) show this picture.
        bundle["image/png"] = self.view_png()
        return bundle


def explore(model, images, labels=None, class_names=None, *, cmap="jet", alpha=0.5,
            layer=None) -> Explorer:
    """An interactive explorer of ``model``'s class activation maps on ``images``.

    Args:
        model: a Keras 3 image classifier (as for ``camlab.explain``).
        images: float (N, H, W, C) scaled as the model was trained.
        labels: optional int (N,) true classes, shown beside the prediction.
        class_names: optional names, one per class.
        cmap, alpha: the map's colour map and the starting opacity.
        layer: the layer to explain (default as in ``camlab.explain``).

    Returns:
        An ``Explorer`` (an ``ipywidgets.VBox``): display it in a notebook.
        Its ``controls`` can also be set from code, and ``show_static()``
        draws the current view as a Matplotlib figure. Maps are cached: after
        training the model further, open a new explorer.
    """
    return Explorer(model, images, labels, class_names, cmap=cmap, alpha=alpha, layer=layer)
