"""Grad-CAM and its relatives: identities, closed forms, numerics, model forms."""

import keras
import numpy as np
import pytest

import camlab
from conftest import _randomize, tiny_gap_models
from tolerances import BY_HAND, RELATIVE, RELATIVE_SAME, UNIT

RAW = dict(normalize=False, upsample=False)


def tutorial_model():
    """The MNIST article's model (notebook 01): two valid 3x3 convs, GAP, Dense 10 softmax (notebook 01)."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


COURSE_GAP_MODELS = {  # name: (builder, input shape); random weights throughout
    "tutorial (notebook 01)": (tutorial_model, (28, 28, 1)),
    "gap_cnn 32-64-128 (notebook 01)": (lambda: camlab.gap_cnn((28, 28, 1), 10, (32, 64, 128)),
                                        (28, 28, 1)),
    "gap_cnn 16-32-64-128 (notebook 02)": (
        lambda: camlab.gap_cnn((28, 28, 1), 10, (16, 32, 64, 128)), (28, 28, 1)),
    "ResNet50 nested (notebook 03)": (
        lambda: camlab.pretrained_gap_model("resnet50", 10, (64, 64, 3), weights=None), (64, 64, 3)),
    "VGG16 nested (notebook 03)": (
        lambda: camlab.pretrained_gap_model("vgg16", 10, (64, 64, 3), weights=None), (64, 64, 3)),
}


@pytest.mark.parametrize("name", COURSE_GAP_MODELS)
def test_gradcam_is_relu_cam_over_hw_on_every_course_gap_model(name):
    build, shape = COURSE_GAP_MODELS[name]
    model = build()
    if "nested" in name:  # a random head on the random backbone; the backbone stays as built
        head = model.layers[-1]
        head.set_weights([np.random.default_rng(3).normal(size=w.shape).astype("float32")
                          for w in head.get_weights()])
    else:
        model = _randomize(model, seed=3)
    images = np.random.default_rng(0).random((5,) + shape).astype("float32")
    classes = [0, 3, 5, 7, 9]
    raw_cam = camlab.cam(model, images, class_index=classes, **RAW)
    raw_gradcam = camlab.gradcam(model, images, class_index=classes, **RAW)
    height, width = raw_cam.shape[1:]
    assert (raw_cam > 0).any() and (raw_cam < 0).any()  # the ReLU matters
    scale = np.abs(raw_cam).max() / (height * width)
    np.testing.assert_allclose(raw_gradcam, np.maximum(raw_cam, 0) / (height * width),
                               atol=RELATIVE_SAME * max(1.0, scale), rtol=RELATIVE)


def test_gradcam_plus_plus_matches_the_closed_form_by_hand(gap_models, images):
    """On GAP + Dense, dS^c/dA^k_ij = w_k^c / (h w) everywhere: eq. 19 by hand."""
    model = gap_models["functional"]
    classes = np.array([0, 1, 2, 2, 1, 0])
    feature_maps = keras.Model(model.inputs[0], model.get_layer("conv_b").output)(images).numpy()
    n, h, w, k = feature_maps.shape
    kernel = model.get_layer("head").kernel.numpy()[:, classes].T  # (N, K)
    g = np.broadcast_to((kernel / (h * w))[:, None, None, :], feature_maps.shape)
    denominator = 2 * g**2 + feature_maps.sum(axis=(1, 2), keepdims=True) * g**3
    alpha = np.where(denominator != 0, g**2 / np.where(denominator != 0, denominator, 1), 0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))  # (N, K)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", feature_maps, weights), 0)
    got = camlab.gradcam_plus_plus(model, images, class_index=classes, **RAW)
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, atol=UNIT, rtol=RELATIVE)


def test_layercam_matches_its_formula_by_hand(gap_models, images):
    model = gap_models["functional"]
    feature_maps = keras.Model(model.inputs[0], model.get_layer("conv_b").output)(images).numpy()
    h, w = feature_maps.shape[1:3]
    kernel = model.get_layer("head").kernel.numpy()[:, 1]
    expected = np.maximum((np.maximum(kernel / (h * w), 0) * feature_maps).sum(-1), 0)
    np.testing.assert_allclose(camlab.layercam(model, images, class_index=1, **RAW), expected,
                               atol=UNIT)


def masked_predictions(model, images):
    """By hand: the feature maps of conv_b, and the model's answer on the image masked by each
    of them (upsampled, scaled to [0, 1]): logits and probabilities (N, K, classes)."""
    feature_maps = keras.Model(model.inputs[0], model.get_layer("conv_b").output)(images).numpy()
    channels = feature_maps.shape[-1]
    masks = camlab.normalize(camlab.upsample(  # (N, K, H, W): every channel, upsampled, in [0, 1]
        feature_maps.transpose(0, 3, 1, 2).reshape(-1, 8, 8), (8, 8))).reshape(6, channels, 8, 8)
    masked = images[:, None] * masks[..., None]  # (N, K, H, W, C)
    answer = camlab.explain(model, masked.reshape(-1, 8, 8, 3), "cam")
    probabilities = model.predict(masked.reshape(-1, 8, 8, 3), verbose=0)
    return (feature_maps, answer.scores.reshape(6, channels, -1),
            probabilities.reshape(6, channels, -1))


def test_scorecam_matches_masked_forward_passes_by_hand(gap_models, images):
    model = gap_models["functional"]
    feature_maps, logits, _ = masked_predictions(model, images)
    scores = logits[..., 2]  # class 2, per image and channel
    weights = np.exp(scores - scores.max(1, keepdims=True))  # a softmax over the channels
    weights /= weights.sum(1, keepdims=True)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", feature_maps, weights), 0)
    np.testing.assert_allclose(camlab.scorecam(model, images, class_index=2, **RAW), expected,
                               atol=BY_HAND)


def test_scorecam_paper_weighs_each_map_by_its_masked_images_probability(gap_models, images):
    model = gap_models["functional"]
    feature_maps, _, probabilities = masked_predictions(model, images)
    weights = probabilities[..., 2]  # model.predict's probability of class 2, not normalised
    expected = np.maximum(np.einsum("nhwk,nk->nhw", feature_maps, weights), 0)
    got = camlab.scorecam_paper(model, images, class_index=2, **RAW)
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, atol=BY_HAND)
    # not the default's weights: a softmax over channels is another map
    assert np.abs(got - camlab.scorecam(model, images, class_index=2, **RAW)).max() > 10 * BY_HAND


@pytest.mark.parametrize("method", sorted(camlab.METHODS))
def test_logits_shifted_by_300_give_finite_identical_maps(method, images):
    """+300 on every logit (through the bias) changes no gradient; exp(300) overflows float32."""
    model = tiny_gap_models(seed=5)["functional"]
    shifted = tiny_gap_models(seed=5)["functional"]
    weights = shifted.get_weights()
    weights[-1] = weights[-1] + 300.0
    shifted.set_weights(weights)
    class_index = 1 if camlab.METHODS[method].class_specific else None  # Eigen-CAM takes none
    reference = camlab.explain(model, images, method, class_index=class_index)
    got = camlab.explain(shifted, images, method, class_index=class_index)
    assert np.isfinite(got.maps).all() and got.maps.max() > 0
    # The gradient methods never see the bias: the same float32 arithmetic, up to the
    # order of sums (1e-6 on maps in [0, 1]). Score-CAM (both weightings) and Ablation-CAM compute with
    # the logits themselves, which float32 holds near 300 only to within
    # np.spacing(np.float32(300)) = 3.1e-5: a few of those, on maps scaled to [0, 1].
    shifted_logits_used = method in ("scorecam", "scorecam_paper", "ablationcam")
    tolerance = 4 * float(np.spacing(np.float32(300))) if shifted_logits_used else UNIT
    np.testing.assert_allclose(got.maps, reference.maps, atol=tolerance)
    assert got.scores.min() > 290 and np.isfinite(got.probabilities).all()


@pytest.mark.parametrize("method", sorted(camlab.METHODS))
@pytest.mark.parametrize("form", ["sequential", "nested"])
def test_every_method_gives_identical_maps_on_the_three_model_forms(method, form, gap_models,
                                                                      images):
    reference = camlab.explain(gap_models["functional"], images, method, normalize=False)
    other = camlab.explain(gap_models[form], images, method, normalize=False)
    assert np.abs(reference.maps).max() > 0
    np.testing.assert_allclose(other.maps, reference.maps, atol=UNIT, rtol=RELATIVE_SAME)


@pytest.mark.parametrize("method", ["gradcam", "gradcam_plus_plus", "layercam", "scorecam"])
def test_gradient_methods_reach_a_layer_inside_a_nested_backbone(method, gap_models, images):
    reference = camlab.explain(gap_models["functional"], images, method, layer="conv_a")
    nested = camlab.explain(gap_models["nested"], images, method, layer="backbone/conv_a")
    assert nested.layer == "nested/backbone/conv_a"
    np.testing.assert_allclose(nested.maps, reference.maps, atol=UNIT)


def test_gradcam_works_without_gap(flatten_model, images):
    explanation = camlab.explain(flatten_model, images, "gradcam")
    assert explanation.maps.shape == (6, 8, 8) and explanation.layer.endswith("conv")
    np.testing.assert_allclose(explanation.probabilities,
                               flatten_model.predict(images, verbose=0), atol=UNIT)


def test_a_saturated_softmax_does_not_flatten_the_maps(images):
    """Scores are logits: a softmax at p = 1.0 still gives full Grad-CAM maps."""
    model = tiny_gap_models(seed=7)["functional"]
    weights = model.get_weights()
    weights[-2] = weights[-2] * 400.0  # the Dense kernel: logits in the thousands
    model.set_weights(weights)
    explanation = camlab.explain(model, images, "gradcam", **RAW)
    assert explanation.probabilities.max(1).min() > 1 - 1e-6  # saturated
    raw_cam = camlab.cam(model, images, **RAW)
    # Logits in the thousands: float32 holds them to 2.4e-4 (np.spacing at 2000), and the raw
    # maps (up to about 50) inherit that; 1e-3 is 4 of those gaps, 2e-5 of the maps' size.
    np.testing.assert_allclose(explanation.maps, np.maximum(raw_cam, 0) / 64, rtol=RELATIVE,
                               atol=1e-3)
    assert (explanation.maps.reshape(6, -1).max(1) > 0).all()


def test_binary_sigmoid_gradcam_has_the_right_sign(images):
    model = tiny_gap_models(num_classes=1, activation="sigmoid", seed=4)["functional"]
    raw_cam = camlab.cam(model, images, class_index=1, **RAW)
    for cls, sign in ((1, 1), (0, -1)):
        got = camlab.gradcam(model, images, class_index=cls, **RAW)
        np.testing.assert_allclose(got, np.maximum(sign * raw_cam, 0) / 64, atol=UNIT)


def test_softmax_as_a_separate_layer_and_heads_without_dense(images):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    split = _randomize(keras.Model(inputs, keras.layers.Softmax()(logits)), 8)
    explanation = camlab.explain(split, images, "cam")
    np.testing.assert_allclose(explanation.probabilities, split.predict(images, verbose=0),
                               atol=UNIT)
    # A fully convolutional head: 1x1 conv to 3 class maps, GAP, softmax. No Dense: Grad-CAM only.
    x = keras.layers.Conv2D(3, 1, name="class_maps")(
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs))
    outputs = keras.layers.Activation("softmax")(keras.layers.GlobalAveragePooling2D()(x))
    fully_conv = _randomize(keras.Model(inputs, outputs), 9)
    got = camlab.explain(fully_conv, images, "gradcam", layer="conv")
    np.testing.assert_allclose(got.probabilities, fully_conv.predict(images, verbose=0), atol=UNIT)
    with pytest.raises(camlab.ModelError, match="gradcam"):
        camlab.cam(fully_conv, images)


# ---------------------------------------------------------------- guided backpropagation


def one_relu_model(seed=0):
    """x -> 1x1 Conv (relu, 4 maps) -> GAP -> Dense 2: derivatives by hand."""
    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(4, 1, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return _randomize(keras.Model(inputs, keras.layers.Dense(2, name="head")(x)), seed)


@pytest.mark.parametrize("modifier", [None, "guided", "relu"])
def test_guided_backprop_on_a_one_relu_model_equals_the_hand_computation(modifier):
    model = one_relu_model(seed=11)
    images = np.random.default_rng(2).normal(size=(3, 5, 5, 2)).astype("float32")
    conv_kernel, conv_bias = (w.numpy() for w in model.get_layer("conv").weights)
    head = model.get_layer("head").kernel.numpy()
    z = np.einsum("nhwc,ck->nhwk", images, conv_kernel[0, 0]) + conv_bias  # before the ReLU
    g = np.broadcast_to(head[:, 1] / 25.0, z.shape)  # dS_1 / d relu(z)
    gate = {None: z > 0, "guided": (z > 0) & (g > 0), "relu": g > 0}[modifier]
    expected = np.einsum("nhwk,ck->nhwc", g * gate, conv_kernel[0, 0])
    got = camlab.guided_backprop(model, images, class_index=1, modifier=modifier)
    assert got.shape == images.shape and np.abs(expected).max() > 0
    np.testing.assert_allclose(got, expected, atol=UNIT)


def test_standalone_relu_layers_are_rewritten_too():
    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(4, 1, name="conv")(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    standalone = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    built_in = one_relu_model(seed=12)
    standalone.set_weights(built_in.get_weights())
    images = np.random.default_rng(3).normal(size=(2, 5, 5, 2)).astype("float32")
    for modifier in (None, "guided", "relu"):
        np.testing.assert_allclose(
            camlab.guided_backprop(standalone, images, 0, modifier),
            camlab.guided_backprop(built_in, images, 0, modifier), atol=UNIT)


def test_modifiers_change_gradcam_only_through_relus_after_the_layer(images):
    plain = tiny_gap_models(seed=6)["functional"]
    for modifier in ("guided", "relu"):  # nothing but GAP and Dense after conv_b
        np.testing.assert_allclose(camlab.gradcam(plain, images, modifier=modifier),
                                   camlab.gradcam(plain, images), atol=UNIT)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="after")(x)
    x = keras.layers.Dense(5, activation="relu")(keras.layers.Flatten()(x))
    deep = _randomize(keras.Model(inputs, keras.layers.Dense(3)(x)), 13)
    maps = {m: camlab.explain(deep, images, "gradcam", layer="conv", modifier=m, **RAW).maps
            for m in (None, "guided", "relu")}
    assert not np.allclose(maps["guided"], maps[None]) and not np.allclose(maps["relu"], maps[None])


def test_guided_gradcam_is_guided_backprop_times_gradcam(gap_models, images):
    model = gap_models["nested"]
    got = camlab.guided_gradcam(model, images, class_index=2)
    expected = (camlab.guided_backprop(model, images, 2)
                * camlab.gradcam(model, images, class_index=2)[..., None])
    assert got.shape == images.shape
    # The same two float32 products, multiplied again: one rounding, values below 1.
    np.testing.assert_allclose(got, expected, atol=1e-7)


def test_guided_backprop_never_touches_the_model(images):
    model = tiny_gap_models(seed=14)["nested"]
    before = model.predict(images, verbose=0)
    activations = [getattr(layer, "activation", None) for layer in model._flatten_layers()]
    camlab.guided_backprop(model, images, modifier="relu")
    assert [getattr(layer, "activation", None) for layer in model._flatten_layers()] == activations
    np.testing.assert_array_equal(model.predict(images, verbose=0), before)


def test_twins_follow_weight_updates(images):
    model = one_relu_model(seed=15)
    x = np.random.default_rng(4).normal(size=(2, 5, 5, 2)).astype("float32")
    first = camlab.guided_backprop(model, x, 0, "relu")
    model.set_weights([w * 2 for w in model.get_weights()])
    second = camlab.guided_backprop(model, x, 0, "relu")
    np.testing.assert_allclose(second, first * 4, rtol=RELATIVE_SAME, atol=UNIT)


def test_bad_modifier(gap_models, images):
    with pytest.raises(camlab.InputError, match="modifier"):
        camlab.guided_backprop(gap_models["functional"], images, modifier="deconv")
