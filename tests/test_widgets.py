"""The explorer widget, driven without a browser: set a control, check what is shown."""

import ast
import gc
import base64
import inspect
import io
import sys
import weakref

import numpy as np
import pytest
from PIL import Image

import camlab
from camlab import methods, widgets
from camlab.widgets import cache as widget_cache
from camlab.widgets import explorer as widget_explorer
from conftest import tiny_gap_models
from tolerances import BY_HAND

NAMES = ("cat", "dog", "bird")


@pytest.fixture(scope="module")
def model():
    return tiny_gap_models(seed=4)["nested"]


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(7).random((40, 8, 8, 3)).astype("float32")


@pytest.fixture
def labels(batch):
    return np.arange(len(batch)) % 3


@pytest.fixture
def explorer(model, batch, labels):
    return camlab.explore(model, batch, labels, NAMES)


def pixels(image_widget):
    return np.asarray(Image.open(io.BytesIO(image_widget.value)).convert("RGB"))


def expected_colours(heat, scale, cmap="jet"):
    table = widgets.colormap_table(cmap)
    colours = table[(np.clip(heat, 0, 1) * 255 + 0.5).astype("uint8")]
    return np.repeat(np.repeat(colours, scale, axis=0), scale, axis=1)


def test_the_explorer_is_an_ipywidgets_container_with_its_controls(explorer):
    import ipywidgets

    assert isinstance(explorer, ipywidgets.Box)
    assert set(explorer.controls) == {"image", "number", "class", "follow", "method", "opacity"}
    assert explorer.controls["image"].max == 39
    assert explorer.controls["class"].options == (("cat", 0), ("dog", 1), ("bird", 2))


def test_moving_the_image_slider_shows_that_image_its_prediction_and_map(explorer, model, batch, labels):
    explorer.controls["image"].value = 23
    reference = camlab.explain(model, batch[23], "cam")
    shown = explorer.shown
    assert shown["index"] == 23 and shown["label"] == labels[23]
    assert shown["predicted"] == reference.predicted[0]
    assert shown["class_index"] == reference.predicted[0]  # the class follows the prediction
    assert shown["probability"] == pytest.approx(float(reference.confidence[0]), abs=BY_HAND)
    np.testing.assert_allclose(shown["map"], reference.maps[0], atol=BY_HAND)
    # the pictures on screen are this image and this map
    picture = (camlab.viz.display_image(batch[23]) * 255 + 0.5).astype("uint8")
    scale = explorer.scale
    assert scale * 8 >= 150  # small images are enlarged to be seen
    np.testing.assert_array_equal(pixels(explorer.panels["image"]),
                                  np.repeat(np.repeat(picture, scale, 0), scale, 1))
    np.testing.assert_array_equal(pixels(explorer.panels["map"]),
                                  expected_colours(reference.maps[0], scale))
    assert NAMES[reference.predicted[0]] in explorer._caption.value
    assert f"true: <b>{NAMES[labels[23]]}</b>" in explorer._caption.value


def test_moving_the_class_slider_shows_that_class_its_probability_and_map(explorer, model, batch):
    explorer.controls["image"].value = 5
    predicted = explorer.shown["predicted"]
    other = (predicted + 1) % 3
    explorer.controls["class"].value = other
    reference = camlab.explain(model, batch[5], "cam", class_index=other)
    shown = explorer.shown
    assert shown["class_index"] == other and shown["class_name"] == NAMES[other]
    assert explorer.controls["class"].label == NAMES[other]  # the slider reads out the name
    assert shown["probability"] == pytest.approx(float(reference.confidence[0]), abs=BY_HAND)
    assert shown["predicted"] == predicted  # the prediction does not change with the class shown
    np.testing.assert_allclose(shown["map"], reference.maps[0], atol=BY_HAND)
    assert not np.allclose(shown["map"], camlab.cam(model, batch[5])[0])
    assert f"{shown['probability']:.3f}" in explorer._class_label.value
    # the slider reads out the class name; the label beside it does not repeat it
    assert NAMES[other] not in explorer._class_label.value
    # a chosen class stays while the image moves, until "class = prediction" is ticked again
    assert explorer.controls["follow"].value is False
    explorer.controls["image"].value = 6
    assert explorer.shown["class_index"] == other
    np.testing.assert_allclose(explorer.shown["map"],
                               camlab.cam(model, batch[6], class_index=other)[0], atol=BY_HAND)
    explorer.controls["follow"].value = True
    assert explorer.shown["class_index"] == explorer.shown["predicted"]


def test_the_opacity_slider_blends_map_and_image(explorer, batch):
    explorer.controls["image"].value = 3
    for alpha in (0.0, 0.3, 1.0):
        explorer.controls["opacity"].value = alpha
        shown = pixels(explorer.panels["overlay"]).astype("float32")
        picture = pixels(explorer.panels["image"]).astype("float32")
        colours = pixels(explorer.panels["map"]).astype("float32")
        expected = (1 - alpha) * picture + alpha * colours
        assert np.abs(shown - expected).max() <= 1.0
    assert explorer.shown["opacity"] == 1.0


def test_the_method_selector_lists_every_registered_method_that_applies(model, batch):
    explorer = camlab.explore(model, batch)
    listed = [name for _, name in explorer.controls["method"].options]
    assert listed == list(camlab.METHODS)  # a GAP model: every method applies
    explorer.controls["image"].value = 9
    explorer.controls["method"].value = "gradcam"
    np.testing.assert_allclose(explorer.shown["map"], camlab.gradcam(model, batch[9])[0], atol=BY_HAND)
    assert "Grad-CAM" in explorer._titles["map"].value


def test_a_method_registered_later_appears_without_changing_the_widget(model, batch):
    @methods.method("test_inverse_cam", "Inverse CAM", "a test method", gap_head=True)
    def inverse_cam(feature_maps, class_weights, **_):
        return -methods.weighted_sum(feature_maps, class_weights)

    try:
        explorer = camlab.explore(model, batch)
        assert ("Inverse CAM", "test_inverse_cam") in explorer.controls["method"].options
        explorer.controls["method"].value = "test_inverse_cam"
        np.testing.assert_allclose(explorer.shown["map"],
                                   camlab.explain(model, batch[0], "test_inverse_cam").maps[0],
                                   atol=BY_HAND)
    finally:
        del methods.METHODS["test_inverse_cam"]


def test_cam_is_left_out_for_a_model_without_gap_and_the_reason_is_shown(flatten_model, images):
    explorer = camlab.explore(flatten_model, images)
    listed = [name for _, name in explorer.controls["method"].options]
    assert "cam" not in listed and "gradcam" in listed
    assert explorer.controls["method"].value == listed[0]
    assert "CAM" in explorer._note.value and "GlobalAveragePooling2D" in explorer._note.value
    assert "GlobalAveragePooling2D" in explorer.unavailable["cam"]
    np.testing.assert_allclose(explorer.shown["map"],
                               camlab.explain(flatten_model, images[0], listed[0]).maps[0], atol=BY_HAND)


def test_maps_are_computed_in_batches_ahead_and_cached(model, batch, monkeypatch):
    calls = []
    real = widget_cache.explain

    def counting(model, images, *args, **kwargs):
        calls.append(len(images))
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(widget_cache, "explain", counting)  # where MapCache looks it up
    explorer = camlab.explore(model, batch)
    assert calls == [len(batch)]  # one batched call: every image's predicted-class map
    for index in (0, 39, 17, 17, 2):
        explorer.controls["image"].value = index
    assert len(calls) == 1  # image moves are drawn from the cache
    explorer.controls["follow"].value = False
    explorer.controls["class"].value = (explorer.shown["predicted"] + 1) % 3
    assert calls == [len(batch), len(batch)]  # a new class: one batched call for the block
    for index in (4, 30, 11):
        explorer.controls["image"].value = index
    assert len(calls) == 2


def test_large_sets_are_computed_block_by_block(model, batch, monkeypatch):
    monkeypatch.setattr(widget_cache, "PREFETCH_VALUES", 2 * 16 * 64)
    explorer = widgets.Explorer(model, batch, block_size=16)
    assert explorer.blocks_computed == 2  # two blocks of 16 ahead of time, not the third
    explorer.controls["image"].value = 37  # in the third block
    assert explorer.blocks_computed == 3
    np.testing.assert_allclose(explorer.shown["map"], camlab.cam(model, batch[37])[0], atol=BY_HAND)


def test_one_sigmoid_unit_is_two_classes(batch):
    model = tiny_gap_models(num_classes=1, activation="sigmoid", seed=5)["functional"]
    explorer = camlab.explore(model, batch, class_names=["cat", "dog"])
    assert [value for _, value in explorer.controls["class"].options] == [0, 1]
    explorer.controls["image"].value = 4
    probability = float(model.predict(batch[4:5], verbose=0)[0, 0])
    expected = probability if explorer.shown["class_index"] == 1 else 1 - probability
    assert explorer.shown["probability"] == pytest.approx(expected, abs=BY_HAND)


def test_bad_arguments_get_clear_errors(model, batch):
    with pytest.raises(camlab.InputError, match="one integer class per image"):
        camlab.explore(model, batch, labels=np.zeros(3, dtype=int))
    with pytest.raises(camlab.ClassIndexError, match="0 .. 2"):
        camlab.explore(model, batch, labels=np.full(len(batch), 3))
    with pytest.raises(camlab.InputError, match="2 names but the model has 3 classes"):
        camlab.explore(model, batch, class_names=["a", "b"])
    with pytest.raises(camlab.InputError):
        camlab.explore(model, batch[..., :1])
    with pytest.raises(camlab.InputError, match="NaN"):
        camlab.explore(model, np.full((2, 8, 8, 3), np.nan, dtype="float32"))


def test_a_static_figure_shows_the_current_view(explorer, monkeypatch):
    drawn = []
    monkeypatch.setattr(widget_explorer, "show_explanation",
                        lambda image, heat, title, alpha: drawn.append((image, heat, title, alpha)))
    explorer.controls["image"].value = 12
    explorer.controls["opacity"].value = 0.7
    explorer.show_static()
    image, heat, title, alpha = drawn[0]
    np.testing.assert_array_equal(heat, explorer.shown["map"])
    assert alpha == 0.7 and NAMES[explorer.shown["class_index"]] in title and "true" in title


def test_show_static_draws_a_matplotlib_figure(explorer):
    import matplotlib.pyplot as plt

    plt.close("all")
    explorer.show_static()  # Agg backend: plt.show() returns at once
    assert plt.get_fignums()
    plt.close("all")


def displayed_outputs(thing):
    """The outputs IPython writes into a notebook for ``display(thing)``, whatever route
    it takes (``_ipython_display_`` under ipywidgets 7, ``_repr_mimebundle_`` under 8)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    with capture_output() as captured:
        display(thing)
    return [output.data for output in captured.outputs]


def test_the_widget_carries_a_picture_for_front_ends_without_widgets(explorer):
    import ipywidgets

    explorer.controls["image"].value = 7
    outputs = displayed_outputs(explorer)
    assert len(outputs) == 2, f"ipywidgets {ipywidgets.__version__}"
    widget, still = outputs
    assert widget["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.model_id
    assert "image/png" not in widget  # one picture per notebook, in the still output
    assert still["image/png"] == explorer.view_png()  # what is shown now
    picture = Image.open(io.BytesIO(still["image/png"]))
    assert picture.size[1] == 8 * explorer.scale
    assert widgets.RERUN_NOTE in still["text/plain"]
    assert "re-run this cell" in still["text/html"]
    # the HTML carries the same picture, in an element the live widget hides by its class
    assert base64.b64encode(still["image/png"]).decode() in still["text/html"]
    hidden = explorer._still_class()
    assert hidden in still["text/html"]
    assert f".{hidden} {{display: none" in explorer._hide_still.value
    assert explorer._hide_still in explorer.children


def test_the_number_box_jumps_to_an_image_and_follows_the_slider(explorer, model, batch):
    box = explorer.controls["number"]
    assert (box.min, box.max) == (0, 39) and "0-39" in box.description
    box.value = 31
    assert explorer.controls["image"].value == 31 and explorer.shown["index"] == 31
    np.testing.assert_allclose(explorer.shown["map"], camlab.cam(model, batch[31])[0], atol=BY_HAND)
    explorer.controls["image"].value = 12
    assert box.value == 12


def test_images_are_counted_from_zero_everywhere(explorer):
    explorer.controls["image"].value = 39
    assert explorer.controls["image"].min == 0 and explorer.controls["image"].max == 39
    assert explorer.controls["number"].value == 39 and "0-39" in explorer.controls["number"].description
    assert "of 40" not in explorer._titles["image"].value  # no count that starts at 1


def test_sliders_are_wide_enough_to_pick_one_image(explorer):
    for name in ("image", "class"):
        width = explorer.controls[name].layout.width
        assert width.endswith("px") and int(width[:-2]) >= 400


def gap_model_with_positive_head(seed):
    """A tiny GAP model whose raw CAMs are >= 0 (ReLU features, positive Dense weights)."""
    model = tiny_gap_models(seed=seed)["functional"]
    kernel, bias = model.get_layer("head").get_weights()
    model.get_layer("head").set_weights([np.abs(kernel), bias])
    return model


def test_a_method_that_gives_the_same_map_says_so_and_why(batch):
    model = gap_model_with_positive_head(seed=6)
    explorer = camlab.explore(model, batch, class_names=NAMES)
    explorer.controls["image"].value = 3
    assert explorer._same.value == ""
    explorer.controls["method"].value = "gradcam"
    np.testing.assert_allclose(camlab.gradcam(model, batch[3])[0], camlab.cam(model, batch[3])[0],
                               atol=1e-4)  # two methods' float32 paths, maps in [0, 1]
    note = explorer._same.value
    assert "Grad-CAM</b> gives the same map as <b>CAM" in note and "ReLU(CAM)" in note
    explorer.controls["image"].value = 4  # still the same map on the next image
    assert "same map" in explorer._same.value


def test_no_same_map_note_when_the_maps_differ(explorer, model, batch):
    explorer.controls["image"].value = 0
    explorer.controls["method"].value = "gradcam"
    assert np.abs(camlab.gradcam(model, batch[0])[0] - camlab.cam(model, batch[0])[0]).max() > 0.01
    assert explorer._same.value == ""


def test_a_flat_map_is_explained(batch, monkeypatch):
    model = gap_model_with_positive_head(seed=6)
    explorer = camlab.explore(model, batch, class_names=NAMES)
    flat = np.zeros_like(explorer.shown["map"])
    monkeypatch.setattr(explorer, "heatmap", lambda index, class_index, method: flat)
    explorer.controls["image"].value = 2
    assert "zero everywhere" in explorer._same.value and "no positive evidence" in explorer._same.value


def test_controls_moved_by_the_explorer_reach_the_page_after_the_pictures(explorer):
    sent = []

    class RecordingComm:  # stands for the comm to the page; ipywidgets 7 sends only with a kernel
        kernel = object()

        def __init__(self, name, comm):
            self.name, self.comm_id = name, comm.comm_id

        def send(self, data=None, metadata=None, buffers=None):
            sent.append((self.name, data.get("method") == "update"))

        def close(self, *args, **kwargs):
            pass

    for name, widget in [("number", explorer.controls["number"]), ("class", explorer.controls["class"]),
                         ("overlay", explorer.panels["overlay"])]:
        widget._trait_values["comm"] = RecordingComm(name, widget.comm)  # no validation, no observers
    explorer.controls["image"].value = 17
    names = [name for name, update in sent if update]
    assert names.index("overlay") < names.index("number") and explorer.controls["number"].value == 17
    explorer.controls["class"].value = (explorer.shown["predicted"] + 1) % 3
    sent.clear()
    explorer.controls["follow"].value = True  # the explorer moves the class slider back
    names = [name for name, update in sent if update]
    assert names.index("overlay") < names.index("class")
    assert explorer.controls["class"].value == explorer.shown["predicted"]


def test_the_starting_method_is_a_parameter(model, batch, flatten_model, images):
    explorer = camlab.explore(model, batch, method="gradcam")
    assert explorer.controls["method"].value == "gradcam"
    assert explorer.shown["method"] == "gradcam"
    assert camlab.explore(model, batch).controls["method"].value == "cam"
    with pytest.raises(camlab.InputError, match="Unknown method"):
        camlab.explore(model, batch, method="bogus")
    with pytest.raises(camlab.ModelError, match="CAM does not apply"):
        camlab.explore(flatten_model, images, method="cam")


def test_the_map_cache_works_without_a_widget(model, batch, monkeypatch):
    monkeypatch.setattr(widget_cache, "CACHE_BLOCKS", 2)
    cache = widgets.MapCache(model, batch, block_size=8)
    assert cache.blocks_computed == 0 and np.isnan(cache.probabilities).all()  # nothing ahead
    reference = camlab.explain(model, batch, "gradcam")
    for index in (0, 9, 17):  # blocks 0, 1 and 2: one batched call each
        np.testing.assert_allclose(cache.heatmap(index, int(reference.predicted[index]), "gradcam"),
                                   reference.maps[index], atol=BY_HAND)
    assert cache.blocks_computed == 3 and len(cache._blocks) == 2  # the oldest block went
    np.testing.assert_allclose(cache.probability_row(17), reference.probabilities[17], atol=BY_HAND)
    assert cache.predicted(9) == reference.predicted[9]
    assert cache.cached(17, cache.predicted(17), "gradcam") is not None
    assert cache.cached(17, cache.predicted(17), "cam") is None
    other = (cache.predicted(9) + 1) % 3
    np.testing.assert_allclose(cache.heatmap(9, other, "gradcam"),
                               camlab.explain(model, batch[9], "gradcam", class_index=other).maps[0],
                               atol=BY_HAND)
    assert cache.blocks_computed == 4
    cache.heatmap(0, int(reference.predicted[0]), "gradcam")  # block 0 was dropped: computed again
    assert cache.blocks_computed == 5


def test_a_class_agnostic_method_shows_its_one_map_whatever_the_class(model, batch, monkeypatch):
    calls = []
    real = widget_cache.explain

    def recording(model, images, method="cam", class_index=None, **kwargs):
        calls.append((method, class_index))
        return real(model, images, method, class_index=class_index, **kwargs)

    monkeypatch.setattr(widget_cache, "explain", recording)
    explorer = camlab.explore(model, batch, class_names=NAMES, method="eigencam")
    explorer.controls["image"].value = 5
    other = (explorer.shown["predicted"] + 1) % 3
    explorer.controls["class"].value = other
    assert explorer.shown["class_index"] == other and explorer.shown["method"] == "eigencam"
    assert "eigencam" not in explorer.unavailable  # camlab.explain refused no class: not dropped
    np.testing.assert_allclose(explorer.shown["map"], real(model, batch[5], "eigencam").maps[0],
                               atol=BY_HAND)
    assert calls == [("eigencam", None)]  # the map of every class is the prefetched one
    assert "same for every class" in explorer._titles["map"].value


def test_the_widget_modules_import_at_the_top_and_the_cache_needs_no_ipywidgets():
    modules = [sys.modules[f"camlab.widgets.{name}"]
               for name in ("cache", "explorer", "pictures", "captions", "controls", "box_slider")]
    for module in modules:
        tree = ast.parse(inspect.getsource(module))
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            inner = [n for n in ast.walk(function) if isinstance(n, (ast.Import, ast.ImportFrom))]
            # IPython is needed only to display, so the explorer imports it there
            assert not inner or (function.name == "_ipython_display_"
                                 and [n.module for n in inner] == ["IPython.display"]), \
                f"{module.__name__}.{function.name} imports inside a function"
    imported = {alias.name for node in ast.walk(ast.parse(inspect.getsource(widget_cache)))
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(ast.parse(inspect.getsource(widget_cache)))
                 if isinstance(node, ast.ImportFrom)}
    assert not any(name.split(".")[0] == "ipywidgets" for name in imported)


def test_box_slider_lives_in_the_widgets(batch):
    import ipywidgets
    import matplotlib.pyplot as plt

    assert camlab.box_slider is widgets.box_slider
    heatmap = np.zeros((8, 8), dtype="float32")
    heatmap[2:5, 3:6] = 1.0
    widget = widgets.box_slider(batch[0], heatmap, threshold=0.5)
    assert isinstance(widget, ipywidgets.VBox)
    assert "x 3-5, y 2-4" in widget.children[1].value
    with pytest.raises(camlab.InputError, match="threshold"):
        widgets.box_slider(batch[0], heatmap, threshold=1.5)
    plt.close("all")


def test_a_closed_explorer_frees_its_model_and_its_maps():
    """ipywidgets keeps open widgets, and each control's observer holds the explorer: close()
    must let the explorer, its model and its map cache go (a re-run explorer cell frees the last)."""
    images = np.random.default_rng(2).random((6, 8, 8, 3)).astype("float32")
    alive = []
    for seed in range(3):
        model = tiny_gap_models(seed=seed)["functional"]
        explorer = camlab.explore(model, images)
        explorer.controls["image"].value = 3
        explorer.close()
        alive.append((weakref.ref(model), weakref.ref(explorer)))
        del model, explorer
    gc.collect()
    assert [(m(), e()) for m, e in alive] == [(None, None)] * 3
