"""The explorer: browse a model's class activation maps with sliders (notebooks 01, 02), and ``box_slider``.

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
head, Grad-CAM is ReLU(CAM) divided by a constant). A method whose map does not
depend on the class (Eigen-CAM) shows the same map whatever the class slider says.

Moving a slider must feel instant, so nothing is drawn with Matplotlib and no
map is computed for one image at a time:

- maps come from ``camlab.explain`` in blocks of images (one batched call
  per method, class and block) and are kept in a cache; the predicted-class
  maps of the whole set (or of the first blocks, for large images) are
  computed ahead of time, together with every image's probabilities;
- a redraw only looks a map up, colours it through a 256-entry lookup table,
  blends it with the image in NumPy and encodes small PNGs with Pillow;
- a class slider move that needs a new block costs one batched call.

The package is split along these seams:

- ``cache``: ``MapCache`` (maps (H, W) in [0, 1] and probabilities, computed
  in blocks, least recently used blocks dropped) and ``method_availability``;
  no ipywidgets, so tests and ``bench/bench_widget.py`` can use it alone.
  Its constants (``CACHE_BLOCKS``, ``PREFETCH_VALUES``) and its ``explain``
  are looked up there: patch ``camlab.widgets.cache``, not this package.
- ``pictures``: colour table, blending, PNG encoding, and the still picture a
  saved notebook keeps (``RERUN_NOTE``).
- ``captions``: the map's title, the caption and the notes, as HTML.
- ``controls``: the sliders, menu and picture panels, at their starting values.
- ``explorer``: the view, ``Explorer`` (an ``ipywidgets.VBox``), and ``explore``.
- ``box_slider``: a threshold slider for the box of one map (notebook 03).

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

from camlab.widgets.box_slider import box_slider
from camlab.widgets.cache import CACHE_BLOCKS, PREDICTED, PREFETCH_VALUES, MapCache, method_availability
from camlab.widgets.captions import SAME_MAP_REASONS, SAME_MAP_TOLERANCE
from camlab.widgets.explorer import PANEL_PIXELS, Explorer, explore
from camlab.widgets.pictures import RERUN_NOTE, blend, colormap_table, png_bytes

__all__ = [
    "CACHE_BLOCKS", "PANEL_PIXELS", "PREDICTED", "PREFETCH_VALUES", "RERUN_NOTE",
    "SAME_MAP_REASONS", "SAME_MAP_TOLERANCE", "Explorer", "MapCache", "blend", "box_slider",
    "colormap_table", "explore", "method_availability", "png_bytes",
]
