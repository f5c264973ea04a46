"""A backbone nested in a Sequential (the cats-vs-dogs tutorial's model) explains exactly as its flat twin (notebook 03)."""

import keras
import numpy as np
import pytest

import camlab
from conftest import _randomize
from tolerances import BY_HAND, RELATIVE, RELATIVE_SAME, UNIT

METHODS = list(camlab.METHODS)  # every registered method, on the nested model and its flat twin


def residual_backbone(input_shape=(16, 16, 3)):
    """A tiny ResNet-like functional backbone: conv, BatchNorm, a residual Add, pooling."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    branch = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="block_conv1")(x)
    branch = keras.layers.Conv2D(6, 3, padding="same", name="block_conv2")(branch)
    x = keras.layers.Add(name="block_add")([x, branch])
    x = keras.layers.Activation("relu", name="block_out")(x)
    return keras.Model(inputs, x, name="tiny_resnet")


def nested_and_flat(backbone, num_classes=2, seed=0):
    """The cats-vs-dogs tutorial's Sequential[backbone, GAP, Dense], and a flat functional model of the same layers."""
    backbone.trainable = False
    nested = keras.Sequential([
        keras.Input(backbone.inputs[0].shape[1:]),
        backbone,
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(num_classes, activation="softmax", name="classifier"),
    ], name="nested")
    _randomize(nested, seed)
    for layer in backbone.layers:  # a variance must be positive
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(np.abs(layer.moving_variance.numpy()) + 0.5)
    gap, dense = nested.layers[1], nested.layers[2]
    flat = keras.Model(backbone.inputs[0], dense(gap(backbone.outputs[0])), name="flat")
    return nested, flat


@pytest.fixture(scope="module")
def tiny_pair():
    return nested_and_flat(residual_backbone())


@pytest.fixture(scope="module")
def photos():
    return np.random.default_rng(3).normal(size=(5, 16, 16, 3)).astype("float32")


@pytest.mark.parametrize("method", METHODS)
def test_nested_and_flat_give_identical_raw_maps(tiny_pair, photos, method):
    nested, flat = tiny_pair
    raw = dict(normalize=False, upsample=False)
    a = camlab.explain(nested, photos, method, **raw)
    b = camlab.explain(flat, photos, method, **raw)
    assert a.maps.shape == (5, 8, 8) and np.abs(a.maps).max() > 1e-4
    np.testing.assert_allclose(a.maps, b.maps, rtol=RELATIVE_SAME, atol=UNIT * np.abs(b.maps).max())
    np.testing.assert_array_equal(a.class_index, b.class_index)
    np.testing.assert_allclose(a.probabilities, flat.predict(photos, verbose=0), atol=UNIT)
    assert a.layer.endswith("tiny_resnet/block_out") and b.layer.endswith("block_out")


def test_nested_cam_is_the_hand_made_weighted_sum(tiny_pair, photos):
    nested, _ = tiny_pair
    backbone, dense = nested.layers[0], nested.layers[-1]
    features = backbone.predict(photos, verbose=0)  # as in the tutorial: the backbone alone gives the maps
    classes = np.array([0, 1, 1, 0, 1])
    hand = np.einsum("nhwk,kn->nhw", features, dense.kernel.numpy()[:, classes])
    maps = camlab.cam(nested, photos, class_index=classes, normalize=False, upsample=False)
    np.testing.assert_allclose(maps, hand, rtol=RELATIVE_SAME, atol=BY_HAND)


def test_a_layer_inside_the_nested_backbone_can_be_explained(tiny_pair, photos):
    nested, flat = tiny_pair
    a = camlab.gradcam(nested, photos, layer="block_conv1", normalize=False, upsample=False)
    b = camlab.gradcam(flat, photos, layer="block_conv1", normalize=False, upsample=False)
    # Raw gradients of order 1e-3 (random weights): relative, and 1e-7 absolute where they cross 0.
    np.testing.assert_allclose(a, b, rtol=RELATIVE_SAME, atol=1e-7)


def test_resnet50_nested_at_64x64():
    """The real backbone, small: CAM is the weighted sum; Grad-CAM = ReLU(CAM) / (h w)."""
    keras.utils.set_random_seed(0)
    model = camlab.pretrained_gap_model("resnet50", input_shape=(64, 64, 3), weights=None)
    backbone, dense = model.layers[0], model.layers[-1]
    dense.kernel.assign(np.random.default_rng(0).normal(size=dense.kernel.shape))
    photos = camlab.preprocess(np.random.default_rng(1).uniform(0, 255, (3, 64, 64, 3)), "resnet50")
    features = backbone.predict(photos, verbose=0)
    assert features.shape == (3, 2, 2, 2048)
    raw = dict(normalize=False, upsample=False)
    result = camlab.explain(model, photos, "cam", **raw)
    hand = np.einsum("nhwk,kn->nhw", features, dense.kernel.numpy()[:, result.class_index])
    np.testing.assert_allclose(result.maps, hand, rtol=RELATIVE, atol=RELATIVE * np.abs(hand).max())
    assert result.layer == "resnet50_gap/resnet50/conv5_block3_out"
    gradcam = camlab.gradcam(model, photos, **raw)
    np.testing.assert_allclose(gradcam, np.maximum(hand, 0) / 4, rtol=RELATIVE,
                               atol=RELATIVE * np.abs(hand).max())
    upsampled = camlab.cam(model, photos)
    assert upsampled.shape == (3, 64, 64) and 0 <= upsampled.min() and upsampled.max() <= 1


def test_the_builder_gives_the_seeds_nested_model_with_a_frozen_backbone():
    model = camlab.pretrained_gap_model("vgg16", input_shape=(32, 32, 3), weights=None)
    assert model.backbone_weights == "random"
    assert [type(layer).__name__ for layer in model.layers] == [
        "Functional", "GlobalAveragePooling2D", "Dense"]
    assert model.layers[0].name == "vgg16" and not model.layers[0].trainable
    assert [w.name for w in model.trainable_weights] == ["kernel", "bias"]  # only the head learns
    assert model.output_shape == (None, 2)
    explanation = camlab.explain(model, np.zeros((1, 32, 32, 3), "float32"), "cam", upsample=False)
    assert explanation.layer.endswith("vgg16/block5_pool") and explanation.maps.shape == (1, 1, 1)


def offline(monkeypatch, error):
    """Make Keras's weight download fail as it does without a network."""
    from keras.src.utils import file_utils

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(file_utils, "urlretrieve", refuse)
    monkeypatch.setenv("KERAS_HOME", "/nonexistent-camlab-test")  # no cached weights


def test_without_imagenet_weights_the_backbone_is_random_and_says_so(monkeypatch, capsys):
    import urllib.error

    offline(monkeypatch, urllib.error.URLError("no network"))
    model = camlab.pretrained_gap_model("resnet50", input_shape=(32, 32, 3), fallback=None,
                                        offline=False)
    assert (model.backbone_name, model.backbone_weights) == ("resnet50", "random")
    out = capsys.readouterr().out
    assert "No ImageNet weights for resnet50: its weights are RANDOM" in out


def test_without_imagenet_weights_the_fallback_has_real_ones(monkeypatch, capsys):
    import urllib.error

    offline(monkeypatch, urllib.error.URLError("no network"))  # online, but the download fails
    model = camlab.pretrained_gap_model("vgg16", input_shape=(32, 32, 3), offline=False)
    assert (model.backbone_name, model.backbone_weights) == ("efficientnet_lite0", "imagenet")
    assert "using efficientnet_lite0 with ITS ImageNet weights" in capsys.readouterr().out


def test_other_errors_are_not_hidden_as_random_weights(monkeypatch):
    offline(monkeypatch, ValueError("something else broke"))
    with pytest.raises(ValueError, match="something else broke"):
        camlab.pretrained_gap_model("vgg16", input_shape=(32, 32, 3), offline=False)


@pytest.mark.parametrize("options, message", [
    (dict(backbone="mobilenet"), "Unknown backbone"),
    (dict(input_shape=(224, 224, 1)), "RGB"),
    (dict(input_shape=(16, 16, 3)), "at least 32x32"),
])
def test_builder_errors(options, message):
    with pytest.raises(camlab.ModelError, match=message):
        camlab.pretrained_gap_model(**{"weights": None, **options})
