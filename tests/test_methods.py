"""camlab.methods: the registry, and the methods notebook 05 adds.

HiResCAM, XGrad-CAM, Eigen-CAM and Ablation-CAM each against its paper's equation computed by
hand in NumPy, their identities, and Ablation-CAM against the naive "zero channel k and run the
whole model" on every model form. Then the registry: METHODS is the one list (camlab.<name>,
__all__, explain, the explorer), the developer guide's "Add a method" recipe, run as written,
and what a method refuses (a modifier without gradients, a class where the map has none)."""

import inspect
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import camlab
from camlab import methods
from conftest import _randomize, tiny_gap_models
from tolerances import BY_HAND, RELATIVE, RELATIVE_SAME, UNIT

RAW = dict(normalize=False, upsample=False)
NEW = ["hirescam", "xgradcam", "eigencam", "ablationcam"]


def flatten_head_model(seed=0):
    """Conv(4, relu) -> Flatten -> Dense(3): S^c = flat(A) . W[:, c] + b, so dS^c/dA is the
    Dense column reshaped to (h, w, K), different at every position. Channel 3 is dead
    (zero kernel, negative bias): its maps sum to 0."""
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax", name="head"),
    ], name="flatten_head")
    _randomize(model, seed)
    conv = model.get_layer("conv")
    kernel, bias = conv.get_weights()
    kernel[..., 3], bias[3] = 0.0, -1.0
    conv.set_weights([kernel, bias])
    return model


def by_hand(model, images):
    """A (N, h, w, K), the logits S (N, 3) and the Dense kernel W (h * w * K, 3)."""
    feature_maps = keras.Model(model.inputs[0], model.get_layer("conv").output)(images).numpy()
    kernel, bias = (w.numpy() for w in model.get_layer("head").weights)
    scores = feature_maps.reshape(len(images), -1) @ kernel + bias
    return feature_maps, scores, kernel


@pytest.fixture(scope="module")
def flat_head():
    model = flatten_head_model()
    images = np.random.default_rng(4).normal(size=(5, 6, 6, 2)).astype("float32")
    return model, images


def test_hirescam_is_its_equation_by_hand(flat_head):
    model, images = flat_head
    feature_maps, _, kernel = by_hand(model, images)
    classes = np.array([0, 1, 2, 1, 0])
    gradients = kernel[:, classes].T.reshape(feature_maps.shape)  # dS^c/dA, per position
    expected = np.maximum((gradients * feature_maps).sum(-1), 0)
    got = camlab.hirescam(model, images, class_index=classes, **RAW)
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, atol=BY_HAND, rtol=RELATIVE_SAME)
    # Not Grad-CAM here: the gradient differs from position to position.
    assert np.abs(got - camlab.gradcam(model, images, class_index=classes, **RAW)).max() > 1e-3


@pytest.mark.parametrize("form", ["functional", "sequential", "nested"])
def test_hirescam_equals_gradcam_on_a_gap_head(form, gap_models, images):
    """dS/dA^k_ij = w_k / (h w) at every position: the same raw map, not only up to a scale."""
    model = gap_models[form]
    for options in (RAW, {}):
        hires = camlab.hirescam(model, images, class_index=[0, 1, 2, 0, 1, 2], **options)
        grad = camlab.gradcam(model, images, class_index=[0, 1, 2, 0, 1, 2], **options)
        assert hires.max() > 0
        np.testing.assert_allclose(hires, grad, atol=UNIT, rtol=RELATIVE_SAME)


def test_hirescam_equals_gradcam_on_a_course_gap_model():
    model = _randomize(camlab.gap_cnn((28, 28, 1), 10, (8, 16, 32)), seed=6)
    images = np.random.default_rng(5).random((4, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(camlab.hirescam(model, images, **RAW),
                               camlab.gradcam(model, images, **RAW), atol=UNIT, rtol=RELATIVE)


def test_xgradcam_is_its_equation_by_hand_with_a_dead_channel(flat_head):
    model, images = flat_head
    feature_maps, _, kernel = by_hand(model, images)
    assert (feature_maps[..., 3] == 0).all()  # the dead channel: sum_ab A_ab = 0
    gradients = kernel[:, 2].reshape(feature_maps.shape[1:])
    total = feature_maps.sum(axis=(1, 2))  # (N, K)
    weighted = (feature_maps * gradients).sum(axis=(1, 2))
    alpha = np.where(total != 0, weighted / np.where(total != 0, total, 1), 0.0)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", feature_maps, alpha), 0)
    got = camlab.xgradcam(model, images, class_index=2, **RAW)
    assert np.isfinite(got).all() and expected.max() > 0
    np.testing.assert_allclose(got, expected, atol=BY_HAND, rtol=RELATIVE_SAME)


def test_xgradcam_on_a_gap_head_is_gradcam(gap_models, images):
    """Constant gradients: alpha_k = sum_ij A_ij g / sum_ij A_ij = g, Grad-CAM's weight."""
    model = gap_models["functional"]
    np.testing.assert_allclose(camlab.xgradcam(model, images, **RAW),
                               camlab.gradcam(model, images, **RAW), atol=UNIT, rtol=RELATIVE)


def eigencam_by_hand(feature_maps):
    """Per image: centre the (h w, K) table over positions, project it on the first right
    singular vector (NumPy's SVD), sign it to covary positively with sum_k A^k, ReLU."""
    maps = []
    for image_maps in feature_maps:
        table = image_maps.reshape(-1, image_maps.shape[-1]).astype("float64")
        centred = table - table.mean(axis=0)
        projection = centred @ np.linalg.svd(centred)[2][0]
        if projection @ table.sum(axis=1) < 0:
            projection = -projection
        maps.append(np.maximum(projection, 0).reshape(image_maps.shape[:2]))
    return np.stack(maps)


def test_eigencam_is_the_first_principal_component_by_hand(flat_head):
    model, images = flat_head
    feature_maps, _, _ = by_hand(model, images)
    expected = eigencam_by_hand(feature_maps)
    got = camlab.eigencam(model, images, **RAW)
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, atol=RELATIVE * expected.max(), rtol=RELATIVE)


def test_eigencam_sign_holds_when_the_feature_maps_share_a_large_offset():
    """1e4 on every channel plus a blob: the blob is the first component and must light up
    (the sign rule once took its covariance with the offset's float32 rounding, and flipped)."""
    rng = np.random.default_rng(0)
    blob = np.zeros((8, 8))
    blob[2:5, 3:6] = 1.0
    feature_maps = (1e4 + blob[None, :, :, None] * (rng.random(6) + 0.5)
                    + rng.normal(scale=0.01, size=(2, 8, 8, 6)))
    expected = eigencam_by_hand(feature_maps)  # float64
    got = methods.eigencam_map(tf.constant(feature_maps, tf.float32)).numpy()
    assert (got[:, blob > 0].min(axis=1) > got[:, blob == 0].max(axis=1)).all()
    # float32 holds 1e4 to within 1e-3 (np.spacing(1e4) = 9.8e-4), a thousandth of the blob's
    # height, so the centred maps carry that relative error: 1e-2 of the peak leaves a margin.
    np.testing.assert_allclose(got, expected, atol=1e-2 * expected.max())


def test_eigencam_is_class_agnostic_and_refuses_a_class(gap_models, images):
    model = gap_models["functional"]
    explanation = camlab.explain(model, images, "eigencam")
    assert explanation.maps.max() > 0
    np.testing.assert_array_equal(explanation.class_index, explanation.predicted)
    for class_index in (1, [0] * len(images)):
        with pytest.raises(camlab.InputError, match="does not depend on the class"):
            camlab.eigencam(model, images, class_index=class_index)


def test_eigencam_sign_points_at_the_active_blob_whatever_the_svd_sign():
    """Feature maps that are a blob times a channel profile, on a background: the first
    principal component is the blob, or its negative, as the SVD happens to return it. The
    sign rule makes every map peak on its blob, for profiles of either sign."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:7, :7]
    centres = rng.integers(0, 7, size=(12, 2))
    profiles = rng.normal(size=(12, 4)) + 0.5  # mixed signs: the total may still be positive
    blobs = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 2.0)
    feature_maps = 0.3 + blobs[..., None] * profiles[:, None, None, :] \
        + 0.01 * rng.random((12, 7, 7, 4))
    got = methods.eigencam_map(tf.constant(feature_maps, tf.float32)).numpy()
    # Normalised maps; the SVD runs in float32 in TensorFlow and float64 by hand, and the
    # principal direction of float32 data is known to about 1e-5: 1e-4 leaves a margin.
    np.testing.assert_allclose(got, eigencam_by_hand(feature_maps), atol=1e-4)
    for image_maps, image_map, profile, centre in zip(feature_maps, got, profiles, centres):
        total = image_maps.sum(-1)
        # The rule as stated: the map covaries positively with the total activation ...
        assert ((image_map - image_map.mean()) * (total - total.mean())).sum() > 0
        if profile.sum() > 0:  # ... so it peaks on the blob wherever the blob adds activation
            assert np.unravel_index(image_map.argmax(), image_map.shape) == tuple(centre)


@pytest.mark.parametrize("shape", [(4, 2, 3, 16), (4, 5, 5, 3), (2, 4, 4, 16)])
def test_eigencam_by_hand_with_fewer_and_more_positions_than_channels(shape):
    """P = h w <= K takes the P x P Gram matrix, P > K the K x K one: both are the SVD's."""
    rng = np.random.default_rng(sum(shape))
    n, h, w, k = shape
    low_rank = rng.random((n, h, w, 1)) * rng.normal(size=(n, 1, 1, k)) * 3.0
    feature_maps = np.maximum(low_rank + rng.random(shape), 0.0).astype("float32")
    got = methods.eigencam_map(tf.constant(feature_maps)).numpy()
    expected = eigencam_by_hand(feature_maps)
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, atol=RELATIVE * expected.max())


def test_eigencam_of_flat_feature_maps_is_zero_not_nan():
    for shape in ((2, 4, 4, 3), (2, 2, 2, 8)):
        constant = tf.ones(shape)
        np.testing.assert_array_equal(methods.eigencam_map(constant).numpy(), 0.0)


def ablation_by_hand(feature_maps, score_of):
    """w_k = (S - S_k) / |S|, with S_k the score with channel k zeroed; 0 where S = 0.

    The paper divides by S: the same where S > 0 (see ``ablationcam_map`` for |S|)."""
    score = score_of(feature_maps)
    weights = []
    for k in range(feature_maps.shape[-1]):
        ablated = feature_maps.copy()
        ablated[..., k] = 0.0
        weights.append(score - score_of(ablated))
    weights = np.stack(weights, axis=1)
    weights = np.where(score[:, None] != 0,
                       weights / np.abs(np.where(score == 0, 1, score))[:, None], 0)
    return np.maximum(np.einsum("nhwk,nk->nhw", feature_maps, weights), 0)


def test_ablationcam_is_its_equation_by_hand(flat_head):
    model, images = flat_head
    feature_maps, scores, kernel = by_hand(model, images)
    bias = model.get_layer("head").bias.numpy()
    classes = np.array([2, 0, 1, 2, 0])
    assert (scores[np.arange(5), classes] < 0).any() and (scores[np.arange(5), classes] > 0).any()

    def score_of(maps):
        return (maps.reshape(len(maps), -1) @ kernel + bias)[np.arange(5), classes]

    expected = ablation_by_hand(feature_maps, score_of)
    got = camlab.ablationcam(model, images, class_index=classes, **RAW)
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, atol=RELATIVE_SAME * expected.max(), rtol=RELATIVE)


def naive_ablationcam(model, images, layer, feature_maps, classes):
    """Ablation-CAM the slow way: zero output channel k of ``layer`` (a conv whose activation
    maps 0 to 0: its kernel and bias of channel k set to 0), run the WHOLE model, once per
    channel; the weights are restored. ``model`` ends in a linear Dense: outputs are scores."""
    rows = np.arange(len(images))
    score = model(images, training=False).numpy()[rows, classes]
    kernel, bias = layer.kernel.numpy().copy(), layer.bias.numpy().copy()
    ablated = []
    try:
        for k in range(kernel.shape[-1]):
            zeroed_kernel, zeroed_bias = kernel.copy(), bias.copy()
            zeroed_kernel[..., k], zeroed_bias[k] = 0.0, 0.0
            layer.kernel.assign(zeroed_kernel)
            layer.bias.assign(zeroed_bias)
            ablated.append(model(images, training=False).numpy()[rows, classes])
    finally:
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    weights = (score[:, None] - np.stack(ablated, axis=1)) / np.abs(score)[:, None]
    return np.maximum(np.einsum("nhwk,nk->nhw", feature_maps, weights), 0)


def assert_close_maps(got, expected, tolerance=RELATIVE):
    assert expected.max() > 0 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * expected.max())


@pytest.fixture(scope="module")
def linear_head_models():
    return tiny_gap_models(activation=None, seed=12)


@pytest.mark.parametrize("form", ["functional", "sequential", "nested"])
@pytest.mark.parametrize("layer", ["conv_a", "conv_b"])
def test_ablationcam_equals_zeroing_channels_in_the_whole_model(form, layer, linear_head_models,
                                                                images):
    """conv_a: conv_b, GAP and Dense run after the layer; conv_b: only the head."""
    model = linear_head_models[form]
    functional = linear_head_models["functional"]
    feature_maps = keras.Model(functional.inputs[0], functional.get_layer(layer).output)(images)
    classes = np.array([0, 1, 2, 2, 1, 0])
    inner = model.layers[0] if form == "nested" else model
    expected = naive_ablationcam(model, images, inner.get_layer(layer), feature_maps.numpy(),
                                 classes)
    got = camlab.ablationcam(model, images, class_index=classes, layer=layer, **RAW)
    assert_close_maps(got, expected)


def residual_backbone():
    """stem -> [target conv -> conv] + stem (a skip around the target) + a 1x1 conv of the
    model's input (a second skip, from the input itself), ReLU."""
    inputs = keras.Input((10, 10, 3))
    stem = keras.layers.Conv2D(6, 3, padding="same", name="stem")(inputs)
    stem = keras.layers.BatchNormalization(name="stem_bn")(stem)
    stem = keras.layers.Activation("relu", name="stem_relu")(stem)
    branch = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="target")(stem)
    branch = keras.layers.Conv2D(6, 3, padding="same", name="after")(branch)
    from_input = keras.layers.Conv2D(6, 1, name="from_input")(inputs)
    x = keras.layers.Add(name="add")([stem, branch, from_input])
    x = keras.layers.Activation("relu", name="out")(x)
    return keras.Model(inputs, x, name="residual")


@pytest.fixture(scope="module")
def residual_models():
    """The same weights as a nested Sequential[backbone, GAP, Dense] and a flat functional."""
    backbone = residual_backbone()
    nested = keras.Sequential([keras.Input((10, 10, 3)), backbone,
                               keras.layers.GlobalAveragePooling2D(name="gap"),
                               keras.layers.Dense(3, name="scores")], name="nested_residual")
    _randomize(nested, 13)
    bn = backbone.get_layer("stem_bn")
    bn.moving_variance.assign(np.abs(bn.moving_variance.numpy()) + 0.5)
    gap, dense = nested.layers[1], nested.layers[2]
    flat = keras.Model(backbone.inputs[0], dense(gap(backbone.outputs[0])), name="flat_residual")
    return {"nested": nested, "functional": flat, "backbone": backbone}


@pytest.mark.parametrize("form", ["functional", "nested"])
def test_ablationcam_with_skip_connections_after_the_layer(form, residual_models):
    model, backbone = residual_models[form], residual_models["backbone"]
    images = np.random.default_rng(7).normal(size=(4, 10, 10, 3)).astype("float32")
    feature_maps = keras.Model(backbone.inputs[0], backbone.get_layer("target").output)(images)
    classes = np.array([0, 1, 2, 1])
    expected = naive_ablationcam(model, images, backbone.get_layer("target"),
                                 feature_maps.numpy(), classes)
    got = camlab.ablationcam(model, images, class_index=classes, layer="target", **RAW)
    assert_close_maps(got, expected)


def test_ablationcam_on_resnet50_nested_in_a_sequential():
    """The course's shape (notebook 03), small: a layer early in ResNet50, so that 15 residual
    blocks, BatchNorm in inference mode and projection shortcuts run after it."""
    keras.utils.set_random_seed(1)
    backbone = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    model = keras.Sequential([keras.Input((64, 64, 3)), backbone,
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4)], name="resnet50_gap")
    images = np.random.default_rng(2).normal(size=(2, 64, 64, 3)).astype("float32")
    layer = backbone.get_layer("conv2_block1_1_conv")  # 64 channels, 16x16
    feature_maps = keras.Model(backbone.inputs[0], layer.output)(images).numpy()
    classes = np.array([1, 3])
    got = camlab.ablationcam(model, images, class_index=classes, layer="conv2_block1_1_conv",
                             **RAW)
    expected = naive_ablationcam(model, images, layer, feature_maps, classes)
    # Through 16 ResNet layers in float32, with one channel ablated at a time: each weight is a
    # difference of two nearby scores, so float32's relative error grows to about 1e-3.
    assert_close_maps(got, expected, tolerance=2e-3)


def test_ablationcam_zero_class_score_gives_a_flat_zero_map(images):
    model = tiny_gap_models(activation=None, seed=14)["functional"]
    dense = model.get_layer("head")
    kernel, bias = dense.get_weights()
    kernel[:, 1], bias[1] = 0.0, 0.0  # S^1 = 0 for every image, with or without a channel
    dense.set_weights([kernel, bias])
    for options in (RAW, {}):
        maps = camlab.ablationcam(model, images, class_index=1, **options)
        assert np.isfinite(maps).all()
        np.testing.assert_array_equal(maps, 0.0)


@pytest.mark.parametrize("values", [1, 4 * 6 * 8 * 8 * 5])  # one channel a pass; 4 a pass, padded
def test_ablationcam_in_passes_of_few_channels_gives_the_same_maps(values, monkeypatch, images):
    reference = camlab.ablationcam(tiny_gap_models(seed=15)["nested"], images, **RAW)
    monkeypatch.setattr(methods, "ABLATION_VALUES", values)
    chunked = camlab.ablationcam(tiny_gap_models(seed=15)["nested"], images, **RAW)
    np.testing.assert_allclose(chunked, reference, rtol=RELATIVE_SAME, atol=UNIT * reference.max())


class CountRows(keras.layers.Layer):
    """The identity, counting in a variable the rows (images) it has run on."""

    def build(self, input_shape):
        self.rows = self.add_weight(shape=(), initializer="zeros", trainable=False, name="rows")

    def call(self, x):
        self.rows.assign_add(tf.cast(tf.shape(x)[0], "float32"))
        return x


def test_ablationcam_runs_only_the_layers_after_the_target(images):
    before, after = CountRows(name="before"), CountRows(name="after")
    model = _randomize(keras.Sequential([
        keras.Input((8, 8, 3)), before,
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"), after,
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]), seed=16)
    camlab.ablationcam(model, images)  # traced and compiled
    before.rows.assign(0.0)
    after.rows.assign(0.0)
    camlab.ablationcam(model, images)
    channels = 4
    assert before.rows.numpy() == len(images)  # the first pass only
    assert after.rows.numpy() == len(images) * (1 + channels + 1)  # first pass, S^c, K ablations


@pytest.mark.parametrize("method", NEW)
def test_new_methods_reach_a_layer_inside_a_nested_backbone(method, gap_models, images):
    reference = camlab.explain(gap_models["functional"], images, method, layer="conv_a")
    nested = camlab.explain(gap_models["nested"], images, method, layer="backbone/conv_a")
    assert nested.layer == "nested/backbone/conv_a" and reference.maps.max() > 0
    np.testing.assert_allclose(nested.maps, reference.maps, atol=BY_HAND)


@pytest.mark.parametrize("method", NEW)
def test_new_methods_are_registered_and_public(method):
    assert method in camlab.METHODS and method in camlab.__all__
    assert getattr(camlab, method).__name__ == method
    maps = getattr(camlab, method)(tiny_gap_models(seed=17)["sequential"],
                                   np.random.default_rng(3).random((2, 8, 8, 3)).astype("float32"))
    assert maps.shape == (2, 8, 8) and 0 <= maps.min() and maps.max() <= 1


# ------------------------------------------------------------------ the registry


def recipe(title):
    """The python block of a section of docs/developers.md, as written there."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "developers.md").read_text()
    section = guide[guide.index(f"## {title}"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def recipe_method():
    """Register the developer guide's example method for one test, then take it out again."""
    before = dict(methods.METHODS)
    exec(compile(recipe("Add a method"), "docs/developers.md", "exec"), {})
    added = [name for name in methods.METHODS if name not in before]
    yield added
    for name in added:
        del methods.METHODS[name]


def test_the_add_a_method_recipe_registers_it_everywhere_in_one_step(recipe_method):
    assert recipe_method == ["gradcam_abs"]
    model = tiny_gap_models(seed=17)["functional"]
    images = np.random.default_rng(3).random((4, 8, 8, 3)).astype("float32")
    assert "gradcam_abs" in camlab.__all__ and "gradcam_abs" in dir(camlab)
    function = camlab.gradcam_abs
    assert function.__name__ == "gradcam_abs" and "mean_ij |dS^c/dA^k_ij|" in function.__doc__
    explained = camlab.explain(model, images, "gradcam_abs", normalize=False, upsample=False)
    # by hand: |dS^c/dA| averaged over positions weighs the feature maps
    feature_maps = keras.Model(model.inputs[0], model.get_layer("conv_b").output)(images)
    with tf.GradientTape() as tape:
        tape.watch(feature_maps)
        dense = model.layers[-1]
        pooled = keras.layers.GlobalAveragePooling2D()(feature_maps)
        scores = tf.matmul(pooled, dense.kernel) + dense.bias
        chosen = tf.gather(scores, explained.class_index, batch_dims=1)
    alpha = tf.reduce_mean(tf.abs(tape.gradient(chosen, feature_maps)), axis=(1, 2))
    expected = tf.nn.relu(tf.einsum("nhwk,nk->nhw", feature_maps, alpha)).numpy()
    np.testing.assert_allclose(explained.maps, expected, rtol=RELATIVE, atol=BY_HAND)
    np.testing.assert_allclose(function(model, images), camlab.explain(model, images, "gradcam_abs").maps)
    explorer = camlab.explore(model, images)
    assert ("Grad-CAM of |gradients|", "gradcam_abs") in explorer.controls["method"].options


def test_every_registered_method_is_public_documented_and_star_importable():
    namespace = {}
    exec("from camlab import *", namespace)
    for name, entry in camlab.METHODS.items():
        function = getattr(camlab, name)
        assert name in camlab.__all__ and namespace[name] is function
        assert function.__name__ == name and entry.paper in function.__doc__
        assert ("modifier" in inspect.signature(function).parameters) == entry.gradients


@pytest.mark.parametrize("method", [n for n, m in camlab.METHODS.items() if not m.gradients])
def test_a_method_without_gradients_refuses_a_modifier(method):
    model = tiny_gap_models(seed=17)["sequential"]
    images = np.random.default_rng(3).random((2, 8, 8, 3)).astype("float32")
    with pytest.raises(camlab.InputError, match="uses no gradients"):
        camlab.explain(model, images, method, modifier="guided")


def test_only_class_agnostic_methods_refuse_a_class():
    agnostic = [n for n, m in camlab.METHODS.items() if not m.class_specific]
    assert agnostic == ["eigencam"]


def test_a_method_name_must_be_a_public_identifier():
    for name in ("", "two words", "_private", 3):
        with pytest.raises(ValueError, match="identifier"):
            methods.method(name, "t", "p")
