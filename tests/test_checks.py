"""camlab.checks and every hostile input: each case that once gave a wrong map in silence, a
foreign exception or a misleading message, with its exact reproduction.

Grouped by what each test guards: silent wrong results, messages that must say
what is really wrong, errors that must be camlab's own, models freed after use,
and a property test that throws random bad arguments at every public function.
"""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

import camlab
from camlab import anatomy, graph, methods, pipeline
from camlab.errors import CamlabError, ClassIndexError, InputError, ModelError
from tolerances import RELATIVE_SAME, UNIT

X16 = np.random.default_rng(0).random((4, 16, 16, 1)).astype("float32")


def small_gap_model(conv_activation="relu", head_activation="softmax", extra=(), seed=0):
    model = keras.Sequential([
        keras.Input((16, 16, 1)), *extra,
        keras.layers.Conv2D(4, 3, activation=conv_activation, name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, activation=head_activation, name="head"),
    ])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


# ----------------------------------------------------------------------------
# Silent wrong results
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["cam", "gradcam", "scorecam"])
def test_augmentation_layers_are_off_while_explaining(method):
    model = small_gap_model(extra=[keras.layers.RandomFlip(), keras.layers.RandomRotation(0.3)])
    first, second = (camlab.explain(model, X16, method) for _ in range(2))
    np.testing.assert_array_equal(first.maps, second.maps)
    np.testing.assert_allclose(first.probabilities, model.predict(X16, verbose=0), atol=UNIT)


def test_walk_calls_every_layer_in_inference_mode():
    model = small_gap_model(extra=[keras.layers.RandomFlip(seed=1), keras.layers.Dropout(0.9),
                                   keras.layers.GaussianNoise(1.0)])
    output = graph.walk(model, tf.constant(X16), lambda *args: None)
    np.testing.assert_allclose(output.numpy(), model.predict(X16, verbose=0), atol=UNIT)


@pytest.mark.parametrize("softmax", ["softmax", keras.activations.softmax, tf.nn.softmax,
                                     lambda x: tf.nn.softmax(x)])
def test_a_softmax_is_recognised_whatever_it_is_called(softmax):
    model = small_gap_model(head_activation=softmax)
    reference = small_gap_model(head_activation="softmax")
    result = camlab.explain(model, X16, "gradcam")
    # Probabilities are softmax(logits) once, as predict gives them.
    np.testing.assert_allclose(result.probabilities, model.predict(X16, verbose=0), atol=UNIT)
    np.testing.assert_allclose(result.maps, camlab.gradcam(reference, X16), atol=UNIT)
    np.testing.assert_allclose(camlab.cam(model, X16), camlab.cam(reference, X16), atol=UNIT)
    assert anatomy.read_model(model).head.activation == "softmax"


@pytest.mark.parametrize("fn, kind", [
    (tf.nn.relu, "relu"), (keras.activations.relu, "relu"), ("relu", "relu"),
    (tf.nn.relu6, "other"), (tf.nn.sigmoid, "sigmoid"), (keras.activations.linear, "linear"),
    (None, "linear"), (tf.nn.tanh, "other"), (lambda x: tf.nn.leaky_relu(x, 0.2), "other"),
])
def test_activations_are_recognised_by_what_they_compute(fn, kind):
    fn = keras.activations.get(fn) if isinstance(fn, str) else fn
    assert anatomy.activation_kind(fn) == kind


def assert_modifiers_see_the_same_relus(model, twin):
    """The guided and rectified maps of ``model`` equal ``twin``'s (its ReLUs written the known
    way), and differ from the unmodified ones: the modifier found every ReLU of ``model``."""
    for modifier in ("guided", "relu"):
        np.testing.assert_allclose(camlab.guided_backprop(model, X16, modifier=modifier),
                                   camlab.guided_backprop(twin, X16, modifier=modifier),
                                   atol=UNIT)
    plain = camlab.guided_backprop(model, X16, modifier=None)
    assert np.abs(camlab.guided_backprop(model, X16, modifier="guided") - plain).max() > 1e-6


def test_guided_backprop_sees_tf_nn_relu():
    assert_modifiers_see_the_same_relus(small_gap_model(conv_activation=tf.nn.relu, seed=1),
                                        small_gap_model(conv_activation="relu", seed=1))


def segmentation_model():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Conv2D(3, 1, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_a_model_with_a_4d_output_is_refused():
    model = segmentation_model()
    for call in (lambda: camlab.gradcam(model, X16),
                 lambda: camlab.explore(model, X16, np.zeros(4, int))):
        with pytest.raises(ModelError, match=r"\(N, num_classes\)"):
            call()


def test_grad_cam_plus_plus_survives_extreme_gradients():
    model = small_gap_model(conv_activation="relu")
    kernel, bias = model.get_layer("head").get_weights()
    model.get_layer("head").set_weights([kernel * 1e17, bias])
    maps = camlab.gradcam_plus_plus(model, X16)
    assert np.isfinite(maps).all() and (maps.max(axis=(1, 2)) == 1.0).all()
    assert (camlab.gradcam(model, X16).max(axis=(1, 2)) == 1.0).all()


def test_grad_cam_plus_plus_weights_at_1e17_equal_eq_19_in_float64():
    rng = np.random.default_rng(4)
    feature_maps = rng.random((2, 3, 3, 4)).astype("float32")
    gradients = (rng.normal(size=(2, 3, 3, 4)) * 1e17).astype("float32")
    g = gradients.astype("float64")  # g**3 reaches 1e51: fine in float64, inf in float32
    total = feature_maps.astype("float64").sum(axis=(1, 2), keepdims=True)
    expected = (g ** 2 / (2 * g ** 2 + total * g ** 3) * np.maximum(g, 0)).sum(axis=(1, 2))
    got = methods.gradcam_plus_plus_weights(tf.constant(feature_maps), tf.constant(gradients))
    assert np.isfinite(got.numpy()).all() and (got.numpy() > 0).all()
    np.testing.assert_allclose(got.numpy(), expected, rtol=RELATIVE_SAME)


def test_grad_cam_plus_plus_weights_equal_eq_19_where_it_is_finite():
    rng = np.random.default_rng(3)
    feature_maps = rng.random((2, 3, 3, 4)).astype("float32")
    gradients = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    gradients[0, 0, 0, 0] = 0.0
    g = gradients.astype("float64")
    total = feature_maps.astype("float64").sum(axis=(1, 2), keepdims=True)
    denominator = 2 * g ** 2 + total * g ** 3
    alpha = np.where(denominator != 0, g ** 2 / np.where(denominator != 0, denominator, 1), 0)
    expected = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    got = methods.gradcam_plus_plus_weights(tf.constant(feature_maps), tf.constant(gradients))
    np.testing.assert_allclose(got.numpy(), expected, rtol=RELATIVE_SAME)


def test_map_helpers_refuse_nan_maps_alike():
    maps = np.random.default_rng(0).random((2, 5, 5)).astype("float32")
    maps[0, 1, 1] = np.nan
    for call in (lambda: camlab.map_peaks(maps),
                 lambda: camlab.peak_in_box(maps, [(0, 0, 4, 4)] * 2),
                 lambda: camlab.peak_on_mask(maps, np.ones((2, 5, 5), bool)),
                 lambda: camlab.boxes_from_maps(maps),
                 lambda: camlab.box_from_map(maps[0]),
                 lambda: camlab.normalize(maps),
                 lambda: camlab.upsample(maps, (10, 10)),
                 lambda: camlab.pointing_game(maps, [(0, 0, 4, 4)] * 2),
                 lambda: camlab.box_localization(maps, [(0, 0, 4, 4)] * 2),
                 lambda: camlab.metrics.spearman(maps, maps),
                 lambda: camlab.show_explanation(np.ones((5, 5)), maps[0]),
                 lambda: camlab.show_boxes(np.ones((2, 5, 5)), maps)):
        with pytest.raises(InputError, match="NaN"):
            call()


def test_every_function_that_takes_boxes_refuses_a_nan_box_alike():
    """One box check (camlab.checks.box_table): a NaN coordinate is an error, never a miss."""
    maps = np.random.default_rng(0).random((2, 5, 5)).astype("float32")
    boxes = np.array([[0, 0, 4, 4], [0, np.nan, 4, 4]])
    for call in (lambda: camlab.pointing_game(maps, boxes),
                 lambda: camlab.peak_in_box(maps, boxes),
                 lambda: camlab.box_localization(maps, boxes),
                 lambda: camlab.box_iou(boxes, boxes),
                 lambda: camlab.box_iou((0, 0, 4, 4), (0, float("nan"), 4, 4))):
        with pytest.raises(InputError, match="four finite numbers"):
            call()
    # None, or a row of -1, is "no box": a miss, not an error
    assert camlab.pointing_game(maps, [None, (-1, -1, -1, -1)]).tolist() == [False, False]


def test_overlay_refuses_an_image_with_nan_instead_of_drawing_it_black():
    image = np.random.default_rng(0).random((8, 8)).astype("float32")
    clean = camlab.overlay(image, np.ones((8, 8)))
    assert clean.max() > 0
    image[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        camlab.overlay(image, np.ones((8, 8)))


# ----------------------------------------------------------------------------
# Messages that say what is really wrong
# ----------------------------------------------------------------------------

def test_a_float64_input_beyond_float32_is_called_an_overflow():
    with pytest.raises(InputError, match="overflow float32"):
        camlab.gradcam(small_gap_model(), X16.astype("float64") * 1e300)


def test_an_input_that_overflows_inside_the_model_is_not_blamed_on_the_weights():
    with pytest.raises(ModelError, match="weights are finite.*overflowed") as error:
        camlab.gradcam(small_gap_model(), X16 * 3e38)
    assert "did training diverge" not in str(error.value)


def test_nan_weights_are_named_as_such():
    model = small_gap_model()
    kernel, bias = model.get_layer("head").get_weights()
    kernel[0, 0] = np.nan
    model.get_layer("head").set_weights([kernel, bias])
    with pytest.raises(ModelError, match="weights hold NaN"):
        camlab.gradcam(model, X16)


def test_integer_layer_indices_work_as_in_keras():
    model = small_gap_model()  # a Sequential: model.layers[0] is the conv layer
    np.testing.assert_allclose(camlab.gradcam(model, X16, layer=0),
                               camlab.gradcam(model, X16, layer="conv"))
    np.testing.assert_allclose(camlab.gradcam(model, X16, layer=-3),
                               camlab.gradcam(model, X16, layer="conv"))
    with pytest.raises(ModelError, match="out of range.*3 layers"):
        camlab.gradcam(model, X16, layer=7)
    with pytest.raises(ModelError, match="4-D feature maps"):
        camlab.gradcam(model, X16, layer=1)  # the GAP layer
    with pytest.raises(ModelError, match="layer must be"):
        camlab.gradcam(model, X16, layer=2.0)


def test_the_input_layer_is_named_as_the_input():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    with pytest.raises(ModelError, match="is the model's input.*'conv'"):
        camlab.gradcam(model, X16, layer=model.layers[0])


# ----------------------------------------------------------------------------
# Errors that are camlab's own and say what to do
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("images", [
    [np.zeros((16, 16, 1)), np.zeros((8, 8, 1))],  # ragged
    "images", [["a"]], object(),
])
def test_images_that_are_not_one_array(images):
    with pytest.raises(InputError):
        camlab.gradcam(small_gap_model(), images)


@pytest.mark.parametrize("class_index", [2 ** 70, -(2 ** 70), [2 ** 70] * 4, 3, -2])
def test_class_indices_far_out_of_range(class_index):
    with pytest.raises(ClassIndexError, match="out of range"):
        camlab.gradcam(small_gap_model(), X16, class_index=class_index)


@pytest.mark.parametrize("batch_size", [-1, 0, 2.5, "2", True])
def test_batch_size_must_be_a_positive_int(batch_size):
    with pytest.raises(InputError, match="batch_size must be a positive int"):
        camlab.explain(small_gap_model(), X16, "gradcam", batch_size=batch_size)


def test_batch_size_one_gives_the_same_maps():
    model = small_gap_model()
    np.testing.assert_allclose(camlab.gradcam(model, X16, batch_size=1),
                               camlab.gradcam(model, X16), atol=UNIT)


@pytest.mark.parametrize("call", [
    lambda: camlab.box_from_map(np.zeros((0, 0))),
    lambda: camlab.box_from_map(np.ones((4, 4)), threshold="abc"),
    lambda: camlab.box_from_map(np.ones((4, 4)), threshold=None),
    lambda: camlab.box_from_map(np.ones((4, 4)), threshold=float("nan")),
    lambda: camlab.box_from_map(np.array([["a", "b"], ["c", "d"]])),
    lambda: camlab.map_peaks(np.zeros((1, 0, 0))),
    lambda: camlab.peak_in_box(np.ones((1, 4, 4)), [(0, 0, 3)]),
    lambda: camlab.peak_in_box(np.ones((1, 4, 4)), ["abcd"]),
    lambda: camlab.peak_in_box(np.ones((1, 4, 4)), "abcd"),
    lambda: camlab.peak_in_box(np.ones((2, 4, 4)), [(0, 0, 3, 3)]),
])
def test_boxes_refuse_bad_arguments(call):
    with pytest.raises(InputError):
        call()


@pytest.mark.parametrize("call", [
    lambda: camlab.colorize(np.ones((4, 4)), cmap="bogus"),
    lambda: camlab.show_maps(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), predicted=[5],
                             class_names=["a", "b"]),
    lambda: camlab.show_maps(np.zeros((0, 4, 4)), np.zeros((0, 4, 4))),
    lambda: camlab.upsample(np.ones((4, 4)), (0, 0)),
    lambda: camlab.upsample(np.ones((4, 4)), "big"),
    lambda: camlab.overlay(np.zeros((4, 4)), "heatmap"),
    lambda: camlab.overlay(np.zeros((4, 4)), np.ones((4, 4)), alpha="half"),
])
def test_viz_refuses_bad_arguments(call):
    with pytest.raises(InputError):
        call()


def softmax_written_four_ways(units=3):
    """The same conv + GAP + Dense logits, then a softmax (or, for one unit, a sigmoid) written
    as a layer, a Lambda and a keras.ops node: every form must read as the same head."""
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    logits = keras.layers.Dense(units, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    base = keras.Model(inputs, logits, name="logits")
    rng = np.random.default_rng(3)
    base.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32")
                      for w in base.get_weights()])
    if units == 1:
        return base, {"Lambda(tf.nn.sigmoid)": keras.Model(inputs, keras.layers.Lambda(tf.nn.sigmoid)(logits)),
                      "keras.ops.sigmoid": keras.Model(inputs, keras.ops.sigmoid(logits))}
    return base, {"Softmax layer": keras.Model(inputs, keras.layers.Softmax()(logits)),
                  "Lambda(tf.nn.softmax)": keras.Model(inputs, keras.layers.Lambda(tf.nn.softmax)(logits)),
                  "keras.ops.softmax": keras.Model(inputs, keras.ops.softmax(logits))}


@pytest.mark.parametrize("units", [3, 1])
def test_a_softmax_or_sigmoid_written_as_a_lambda_or_an_op_is_read_as_the_head(units):
    """Before, a Lambda or ops softmax was taken for a linear head: the gradient methods
    differentiated the probability, and the metrics applied a second softmax."""
    base, variants = softmax_written_four_ways(units)
    for name, model in variants.items():
        # one sigmoid unit z is two classes, scores (-z, z): class 1's map is the map of z
        explained = camlab.explain(model, X16, "gradcam", 1 if units == 1 else None,
                                   normalize=False, upsample=False)
        predicted = model.predict(X16, verbose=0)
        if units == 1:
            predicted = np.concatenate([1.0 - predicted, predicted], axis=-1)
        np.testing.assert_allclose(explained.probabilities, predicted, atol=UNIT, err_msg=name)
        on_logits = camlab.explain(base, X16, "gradcam", 0 if units == 1 else explained.class_index,
                                   normalize=False, upsample=False)
        np.testing.assert_allclose(explained.maps, on_logits.maps, rtol=RELATIVE_SAME,
                                   atol=UNIT * np.abs(on_logits.maps).max(), err_msg=name)
        curves = camlab.deletion(model, X16, np.ones((4, 16, 16), "float32"), steps=2)
        chosen = predicted[np.arange(4), curves.class_index]
        np.testing.assert_allclose(curves.curves[:, 0], chosen, atol=UNIT, err_msg=name)


# ----------------------------------------------------------------------------
# Notebook 05's surface: boxes, numbers, baselines, expect, progress, the explorer's options
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("box, message", [
    ((-2, 0, 5, 5), "negative corner"), ((0.5, 0, 5, 5), "whole pixel"),
    ((4, 0, 2, 5), "x_max < x_min"), ((0, 0, 6, 5), "does not fit"), ((0, 0, 5, 6), "does not fit"),
])
def test_a_box_is_whole_non_negative_upright_and_inside_the_map(box, message):
    maps = np.zeros((1, 6, 6))
    maps[0, 2, 2] = 1.0
    for call in (lambda: camlab.pointing_game(maps, [box]), lambda: camlab.peak_in_box(maps, [box]),
                 lambda: camlab.box_localization(maps, [box])):
        with pytest.raises(InputError, match=message):
            call()
    if message != "does not fit":  # box_iou has no image to fit in
        with pytest.raises(InputError, match=message):
            camlab.box_iou(box, (0, 0, 5, 5))
    assert camlab.pointing_game(maps, [(0, 0, 5, 5)]).tolist() == [True]
    assert camlab.box_iou((0, 0, 5, 5), (0.0, 0.0, 5.0, 5.0)) == 1.0  # whole floats are whole


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "2", True])
def test_metrics_refuse_a_batch_size_that_is_not_a_positive_int(batch_size):
    maps = np.ones((4, 16, 16), "float32")
    for call in (lambda: camlab.deletion(_model(), X16, maps, steps=2, batch_size=batch_size),
                 lambda: camlab.insertion(_model(), X16, maps, steps=2, batch_size=batch_size),
                 lambda: camlab.average_drop(_model(), X16, maps, batch_size=batch_size)):
        with pytest.raises(InputError, match="batch_size"):
            call()


@pytest.mark.parametrize("call, message", [
    (lambda: camlab.box_localization(np.ones((1, 4, 4)), [None], min_iou=1.5), "min_iou"),
    (lambda: camlab.box_localization(np.ones((1, 4, 4)), [None], min_iou=float("nan")), "min_iou"),
    (lambda: camlab.pointing_game(np.ones((1, 4, 4)), [None], tolerance=float("nan")), "tolerance"),
    (lambda: camlab.pointing_game(np.ones((1, 4, 4)), [None], tolerance=float("inf")), "tolerance"),
    (lambda: camlab.metrics.random_maps(2.7, (4, 4)), "count"),
    (lambda: camlab.metrics.random_maps(2, "ab"), "size"),
    (lambda: camlab.metrics.random_maps(2, 4), "size"),
    (lambda: camlab.metrics.random_maps(2, (4, 4), seed="x"), "seed"),
    (lambda: camlab.metrics.random_maps(2, (4, 4), seed=-1), "seed"),
    (lambda: camlab.metrics.centre_maps(2, (4, 4), sigma=0), "sigma"),
    (lambda: camlab.metrics.edge_maps(np.full((2, 4, 4), np.nan)), "NaN"),
    (lambda: camlab.expect("False", "a", "b", "c", "d"), "True or False"),
    (lambda: camlab.expect(float("nan"), "a", "b", "c", "d"), "True or False"),
    (lambda: camlab.expect(np.array([True, False]), "a", "b", "c", "d"), "True or False"),
    (lambda: camlab.progress("5"), "one of"),
    (lambda: camlab.progress(5), "one of"),
    (lambda: camlab.progress("07"), "one of"),
    (lambda: camlab.explore(_model(), X16, alpha=2.0), "alpha"),
    (lambda: camlab.explore(_model(), X16, class_names={0: "a", 1: "b", 2: "c"}), "class order"),
])
def test_numbers_and_options_are_checked_with_what_to_pass(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_expect_takes_numpy_bools_and_one_element_bool_arrays():
    assert camlab.expect(np.float64(0.9) >= 0.5, "a", "b", "c", "d") is True
    assert camlab.expect(np.array([True]), "a", "b", "c", "d") is True


def test_edge_maps_filter_each_image_on_its_own():
    """The Sobel filter must not reach across the batch: a blank image stays blank."""
    rng = np.random.default_rng(0)
    images = rng.random((3, 12, 12, 1)).astype("float32")
    images[1] = 0.0
    together = camlab.metrics.edge_maps(images)
    one_by_one = np.concatenate([camlab.metrics.edge_maps(image[np.newaxis]) for image in images])
    assert together[1].max() == 0.0
    np.testing.assert_allclose(together, one_by_one, atol=UNIT)


# ----------------------------------------------------------------------------
# Models are freed; caches are bounded
# ----------------------------------------------------------------------------

def test_explained_models_are_freed():
    alive = []
    for seed in range(4):
        model = small_gap_model(seed=seed)
        for method in ("cam", "gradcam", "scorecam"):
            camlab.explain(model, X16, method)
        camlab.gradcam(model, X16, modifier="guided")
        camlab.guided_backprop(model, X16)
        alive.append(weakref.ref(model))
        del model
    gc.collect()
    assert [ref() for ref in alive] == [None] * 4


def test_a_free_input_size_keeps_a_bounded_number_of_compiled_pipelines():
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    for size in range(6, 6 + graph.CACHE_LIMIT + 4):
        camlab.gradcam(model, np.ones((1, size, size, 1), "float32"))
    assert len(pipeline._COMPILED[model]) == graph.CACHE_LIMIT
    assert len(anatomy._ANATOMIES[model]) == graph.CACHE_LIMIT


# ----------------------------------------------------------------------------
# Property: random bad arguments only ever raise CamlabError
# ----------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 80, 2 ** 80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
    st.lists(st.integers(-3, 40), max_size=5),
    st.sampled_from([np.zeros((0,)), np.zeros((2, 0, 3)), np.full((3, 3), np.nan),
                     np.array(["a", "b"]), np.ones((2, 16, 16, 1), "float32") * np.inf,
                     np.ones((1, 16, 16, 1), "int64"), np.ones((16, 16, 1)), object()]),
)

_MODEL = None


def _model():
    global _MODEL
    if _MODEL is None:
        _MODEL = small_gap_model()
    return _MODEL


PUBLIC_CALLS = {
    "explain images": lambda v: camlab.explain(_model(), v, "gradcam"),
    "explain method": lambda v: camlab.explain(_model(), X16, v),
    "explain count": lambda v: camlab.explain(_model(), X16, "gradcam", count=v),
    "explain strategy": lambda v: camlab.explain(_model(), X16, "gradcam", strategy=v),
    "explain_stream images": lambda v: list(camlab.explain_stream(_model(), v, "gradcam")),
    "explain_stream class_index": lambda v: list(camlab.explain_stream(_model(), X16, "cam", v)),
    "explain_stream batch_size": lambda v: list(camlab.explain_stream(_model(), X16, batch_size=v)),
    "explain_stream count": lambda v: list(camlab.explain_stream(_model(), X16, count=v)),
    "scorecam_paper images": lambda v: camlab.scorecam_paper(_model(), v),
    "deletion count": lambda v: camlab.deletion(_model(), X16, MAPS16, steps=2, count=v),
    "average_drop strategy": lambda v: camlab.average_drop(_model(), X16, MAPS16, strategy=v),
    "check_question key": lambda v: camlab.check_question(v, "a"),
    "cam class_index": lambda v: camlab.cam(_model(), X16, class_index=v),
    "gradcam layer": lambda v: camlab.gradcam(_model(), X16, layer=v),
    "gradcam upsample": lambda v: camlab.gradcam(_model(), X16, upsample=v),
    "gradcam batch_size": lambda v: camlab.gradcam(_model(), X16, batch_size=v),
    "guided_backprop modifier": lambda v: camlab.guided_backprop(_model(), X16, modifier=v),
    "normalize": lambda v: camlab.normalize(v),
    "upsample maps": lambda v: camlab.upsample(v, (4, 4)),
    "upsample size": lambda v: camlab.upsample(np.ones((2, 2)), v),
    "colorize": lambda v: camlab.colorize(np.ones((3, 3)), cmap=v),
    "overlay heatmap": lambda v: camlab.overlay(np.ones((4, 4)), v),
    "overlay alpha": lambda v: camlab.overlay(np.ones((4, 4)), np.ones((4, 4)), alpha=v),
    "box_from_map": lambda v: camlab.box_from_map(v),
    "box_from_map threshold": lambda v: camlab.box_from_map(np.ones((3, 3)), threshold=v),
    "boxes_from_maps": lambda v: camlab.boxes_from_maps(v),
    "map_peaks": lambda v: camlab.map_peaks(v),
    "mask_boxes": lambda v: camlab.mask_boxes(v),
    "peak_in_box boxes": lambda v: camlab.peak_in_box(np.ones((1, 3, 3)), v),
    "peak_on_mask masks": lambda v: camlab.peak_on_mask(np.ones((1, 3, 3)), v),
    "draw_box box": lambda v: camlab.draw_box(np.ones((4, 4)), v),
    "preprocess": lambda v: camlab.preprocess(v),
    "preprocess backbone": lambda v: camlab.preprocess(np.ones((1, 4, 4, 3)), v),
    "oxford_pets image_size": lambda v: camlab.oxford_pets(v),
    "imagenet_classifier backbone": lambda v: camlab.imagenet_classifier(v),
    "imagenet_classifier input_shape": lambda v: camlab.imagenet_classifier(input_shape=v),
    "pretrained_gap_model backbone": lambda v: camlab.pretrained_gap_model(v, weights=None),
    "pretrained_gap_model fallback": lambda v: camlab.pretrained_gap_model(input_shape=(32, 32, 3),
                                                                          weights=None, fallback=v),
    "pretrained_gap_model offline": lambda v: camlab.pretrained_gap_model(input_shape=(32, 32, 3),
                                                                         weights=None, offline=v),
    "imagenet_classifier offline": lambda v: camlab.imagenet_classifier(offline=v),  # Lite0: no download
    "gradient_image": lambda v: camlab.gradient_image(v),
    "show_explanation heatmap": lambda v: camlab.show_explanation(np.ones((4, 4)), v),
    "show_boxes images": lambda v: camlab.show_boxes(v, np.ones((1, 4, 4))),
    "show_comparison images": lambda v: camlab.show_comparison(v, {"map": np.ones((1, 4, 4))}),
    "box_slider heatmap": lambda v: camlab.box_slider(np.ones((4, 4)), v),
    "explore labels": lambda v: camlab.explore(_model(), X16, v),
    "explore class_names": lambda v: camlab.explore(_model(), X16, None, v),
    "explore method": lambda v: camlab.explore(_model(), X16, method=v),
    "explore cmap": lambda v: camlab.explore(_model(), X16, cmap=v),
    "explain modifier": lambda v: camlab.explain(_model(), X16, "cam", modifier=v),
    "eigencam class_index": lambda v: camlab.eigencam(_model(), X16, class_index=v),
    "pointing_game maps": lambda v: camlab.pointing_game(v, np.zeros((1, 4))),
    "pointing_game targets": lambda v: camlab.pointing_game(np.ones((1, 3, 3)), v),
    "pointing_game tolerance": lambda v: camlab.pointing_game(np.ones((1, 3, 3)), [None], v),
    "box_iou": lambda v: camlab.box_iou(v, (0, 0, 1, 1)),
    "box_localization boxes": lambda v: camlab.box_localization(np.ones((1, 3, 3)), v),
    "deletion maps": lambda v: camlab.deletion(_model(), X16, v, steps=4),
    "deletion steps": lambda v: camlab.deletion(_model(), X16, np.ones((4, 16, 16)), steps=v),
    "insertion baseline": lambda v: camlab.insertion(_model(), X16, np.ones((4, 16, 16)),
                                                     steps=4, baseline=v),
    "average_drop maps": lambda v: camlab.average_drop(_model(), X16, v),
    "class_probabilities images": lambda v: camlab.metrics.class_probabilities(_model(), v),
    "spearman": lambda v: camlab.metrics.spearman(v, v),
    # the metrics' numbers, the baselines, the localization set, the checkers, expect, progress
    "deletion batch_size": lambda v: camlab.deletion(_model(), X16, MAPS16, steps=4, batch_size=v),
    "insertion steps": lambda v: camlab.insertion(_model(), X16, MAPS16, steps=v),
    "deletion class_index": lambda v: camlab.deletion(_model(), X16, MAPS16, v, steps=4),
    "average_drop class_index": lambda v: camlab.average_drop(_model(), X16, MAPS16, v),
    "increase_in_confidence maps": lambda v: camlab.increase_in_confidence(_model(), X16, v),
    "box_localization min_iou": lambda v: camlab.box_localization(np.ones((1, 3, 3)), [(0, 0, 1, 1)],
                                                                  min_iou=v),
    "box_localization threshold": lambda v: camlab.box_localization(np.ones((1, 3, 3)), [(0, 0, 1, 1)], v),
    "random_maps size": lambda v: camlab.metrics.random_maps(2, v),
    "random_maps seed": lambda v: camlab.metrics.random_maps(2, (4, 4), seed=v),
    "centre_maps sigma": lambda v: camlab.metrics.centre_maps(2, (4, 4), sigma=v),
    "edge_maps images": lambda v: camlab.metrics.edge_maps(v),
    "localization_set split": lambda v: camlab.localization_set(v, count=2, dataset=_digits()),
    "localization_set objects": lambda v: camlab.localization_set(count=2, objects=v, dataset=_digits()),
    "localization_set sizes": lambda v: camlab.localization_set(count=2, sizes=v, dataset=_digits()),
    "localization_set noise": lambda v: camlab.localization_set(count=2, noise=v, dataset=_digits()),
    "localization_set seed": lambda v: camlab.localization_set(count=2, seed=v, dataset=_digits()),
    "localization_set dataset": lambda v: camlab.localization_set(count=2, dataset=v),
    "check_class_scores answer": lambda v: camlab.check_class_scores(v),
    "check_gradcam_plus_plus_weights answer": lambda v: camlab.check_gradcam_plus_plus_weights(v),
    "check_box_iou answer": lambda v: camlab.check_box_iou(v),
    "check_steps_to_half answer": lambda v: camlab.check_steps_to_half(v),
    "check_steps_to_half returns": lambda v: camlab.check_steps_to_half(lambda curve: v),
    "check_question answer": lambda v: camlab.check_question("05.4", v),
    "check_box_iou returns": lambda v: camlab.check_box_iou(lambda a, b: v),
    "expect condition": lambda v: camlab.expect(v, "a", "b", "c", "d"),
    "progress notebook": lambda v: camlab.progress(v),
}
# Left out, on purpose: counts and canvas sizes (a huge whole number is a valid count that
# memory cannot hold; NumPy's MemoryError says so better than camlab could).
MAPS16 = np.ones((4, 16, 16), "float32")
_DIGITS = []


def _digits():
    if not _DIGITS:
        _DIGITS.append(camlab.load_mnist(fast=True, offline=True))
    return _DIGITS[0]


@pytest.mark.parametrize("name", sorted(PUBLIC_CALLS))
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(value=ODD_VALUES)
@pytest.mark.filterwarnings("error::RuntimeWarning")  # NumPy saying NaN or overflow is near
def test_random_bad_arguments_raise_only_camlab_errors(name, value):
    """An odd argument gets a CamlabError, or an answer without NaN or Inf in it."""
    try:
        found = PUBLIC_CALLS[name](value)
    except CamlabError:
        found = None
    for array in _float_arrays(found):
        assert np.isfinite(array).all(), f"{name}({value!r:.60}) answered NaN or Inf"
    import matplotlib.pyplot as plt
    plt.close("all")


def _float_arrays(found):
    """The float arrays in an answer: itself, its fields, its items (one level down)."""
    fields = vars(found).values() if hasattr(found, "__dataclass_fields__") else ()
    items = found if isinstance(found, (tuple, list)) else ()
    for value in (found, *fields, *items):
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            yield value


def test_a_keras_2_model_is_named_as_such():
    """tf_keras (Keras 2) models are not keras.Model: say what they are and what to do."""
    keras_2_model = type("Functional", (), {"__module__": "tf_keras.src.engine.functional",
                                            "name": "old"})()
    with pytest.raises(ModelError, match="Keras 2 model.*load the weights"):
        camlab.gradcam(keras_2_model, X16)


def test_the_default_layer_is_not_a_1x1_classifier_conv_after_the_pool():
    """MobileNet ends in GAP(keepdims) -> 1x1 Conv2D -> Reshape -> softmax: its last conv has
    one position, so its maps would be flat. The default is the last conv with positions."""
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = keras.layers.Conv2D(3, 1, name="classifier")(x)
    outputs = keras.layers.Activation("softmax")(keras.layers.Reshape((3,))(x))
    model = keras.Model(inputs, outputs)
    explained = camlab.explain(model, X16, "gradcam")
    assert explained.layer.endswith("features") and explained.maps.max() > 0
    np.testing.assert_allclose(explained.probabilities, model.predict(X16, verbose=0), atol=UNIT)


class _SubclassedBackbone(keras.Model):
    """Two convs in a subclassed model: camlab cannot look inside it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
        self.second = keras.layers.Conv2D(5, 3, padding="same", activation="relu")

    def call(self, inputs):
        return self.second(self.first(inputs))


class _ConvBlock(keras.layers.Layer):
    """A custom layer of one conv: a block as users write them."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")

    def call(self, inputs):
        return self.conv(inputs)


def test_a_subclassed_backbone_in_a_sequential_is_explained_at_its_output():
    """Before: "has no convolutional layer" (the convs are inside it). Now its output is the
    default layer, for CAM (it feeds the GAP head) and for Grad-CAM, as layer= naming it gives."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 1)), _SubclassedBackbone(name="backbone"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    for method in ("cam", "gradcam"):
        explained = camlab.explain(model, X16, method)
        assert explained.layer.endswith("backbone") and np.isfinite(explained.maps).all()
        np.testing.assert_array_equal(explained.maps,
                                      camlab.explain(model, X16, method, layer="backbone").maps)


def test_custom_conv_blocks_before_a_flatten_head_default_to_the_last_block():
    """Before: the default silently became the first conv of the network, the only built-in one."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(4, 3, name="stem"),
                              _ConvBlock(6, name="block_1"), _ConvBlock(6, name="block_2"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    explained = camlab.explain(model, X16, "gradcam")
    assert explained.layer.endswith("block_2") and explained.maps.max() > 0
    np.testing.assert_allclose(explained.probabilities, model.predict(X16, verbose=0), atol=UNIT)


def test_a_custom_layer_without_convolutions_is_not_taken_for_one():
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Rescaling(2.0),
                              keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(ModelError, match="no convolutional layer"):
        camlab.gradcam(model, X16)


def test_guided_backprop_sees_keras_ops_relu_in_a_graph():
    """keras.ops.relu(x) in a functional model is a graph node, not a layer: the modifier swaps
    it as it swaps a ReLU layer (the same model with Activation("relu") gives the same map)."""
    def build(relu):
        inputs = keras.Input((16, 16, 1))
        x = relu(keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs))
        x = relu(keras.layers.Conv2D(5, 3, padding="same", name="conv_b")(x))
        outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
        keras.utils.set_random_seed(3)
        return keras.Model(inputs, outputs)

    with_ops = build(keras.ops.relu)
    with_layers = build(lambda t: keras.layers.Activation("relu")(t))
    with_layers.set_weights(with_ops.get_weights())
    assert_modifiers_see_the_same_relus(with_ops, with_layers)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_non_finite_gradients_photos_and_numbers_are_told_not_warned():
    """NaN, Inf and values past float32 get a CamlabError, not NumPy's RuntimeWarning and
    a NaN answer; gradients near float32's limit still give a finite image."""
    for bad in (np.full((4, 4, 3), np.nan), np.full((4, 4, 3), 1e39)):
        with pytest.raises(InputError, match="float32's range"):
            camlab.gradient_image(bad)
        with pytest.raises(InputError, match="float32's range"):
            camlab.preprocess(bad)
    with pytest.raises(InputError, match="at least one pixel"):
        camlab.gradient_image(np.zeros((2, 0, 3)))
    huge = np.full((4, 4, 3), 3e38, "float32")
    huge[0, 0] = -3e38
    assert np.isfinite(camlab.gradient_image(huge)).all()
    with pytest.raises(InputError, match="sigma"):
        camlab.metrics.centre_maps(2, (4, 4), sigma=-2 ** 63 - 1)  # past int64
    with pytest.raises(InputError, match="sigma"):
        camlab.metrics.centre_maps(2, (4, 4), sigma=10 ** 400)  # past float64
