"""camlab.graph: how camlab reads a model, and the Keras internals it leans on.

channels_first models are refused from their layers' configuration, before any
layer runs (TensorFlow's CPU kernels raise UnimplementedError on them), and each
private Keras name camlab reads is simulated missing: the user gets a clear
CamlabError or the same maps, never a wrong diagnosis or a silent change.
"""

import inspect
import re
from pathlib import Path

import keras
import numpy as np
import pytest

import camlab
from camlab import graph
from camlab.errors import CamlabError, KerasVersionError, ModelError
from conftest import tiny_gap_models
from tolerances import UNIT

X16 = np.random.default_rng(0).random((4, 16, 16, 1)).astype("float32")


def _channels_first_layers():
    return [keras.layers.Conv2D(4, 3, activation="relu", data_format="channels_first"),
            keras.layers.GlobalAveragePooling2D(data_format="channels_first"),
            keras.layers.Dense(3, activation="softmax")]


def channels_first_models():
    sequential = keras.Sequential([keras.Input((1, 16, 16)), *_channels_first_layers()])
    inputs = keras.Input((1, 16, 16))
    x = inputs
    for layer in _channels_first_layers():
        x = layer(x)
    functional = keras.Model(inputs, x)
    # channels_last outside, channels_first deep inside a nested backbone.
    backbone_in = keras.Input((16, 16, 1))
    y = keras.layers.Permute((3, 1, 2))(backbone_in)
    y = keras.layers.Conv2D(4, 3, data_format="channels_first", name="inner_conv")(y)
    backbone = keras.Model(backbone_in, keras.layers.Permute((2, 3, 1))(y), name="backbone")
    nested = keras.Sequential([keras.Input((16, 16, 1)), backbone,
                               keras.layers.GlobalAveragePooling2D(),
                               keras.layers.Dense(3, activation="softmax")])
    return {"sequential": sequential, "functional": functional, "nested": nested}


@pytest.mark.parametrize("kind", ["sequential", "functional", "nested"])
@pytest.mark.parametrize("method", ["cam", "gradcam"])
def test_channels_first_models_are_refused_before_any_layer_runs(kind, method, monkeypatch):
    model = channels_first_models()[kind]
    images = np.zeros((2, 1, 16, 16) if kind != "nested" else (2, 16, 16, 1), "float32")

    def must_not_run(*args, **kwargs):
        raise AssertionError("a layer ran before channels_first was refused")

    monkeypatch.setattr(graph, "walk", must_not_run)
    with pytest.raises(ModelError, match="channels_first.*channels_last") as error:
        camlab.explain(model, images, method)
    assert "GlobalAveragePooling2D" not in str(error.value)  # not the misleading GAP message
    if kind == "nested":
        assert "backbone/inner_conv" in str(error.value)  # the path through the nesting


def test_channels_first_is_refused_by_the_explorer_too():
    with pytest.raises(ModelError, match="channels_first"):
        camlab.explore(channels_first_models()["sequential"], np.zeros((2, 1, 16, 16), "float32"))


# --- the private Keras seam -------------------------------------------------

@pytest.mark.parametrize("kind", ["functional", "nested"])
def test_a_keras_without_the_graph_runner_gets_a_clear_error(kind, monkeypatch):
    """If keras.Function._run_through_graph is renamed, say which Keras to install."""
    model = tiny_gap_models(input_shape=(8, 8, 3))[kind]
    images = np.random.default_rng(1).random((2, 8, 8, 3)).astype("float32")
    monkeypatch.delattr(keras.Function, "_run_through_graph")
    with pytest.raises(KerasVersionError) as error:
        camlab.gradcam(model, images)
    message = str(error.value)
    assert "subclassed" not in message  # not the wrong diagnosis
    assert keras.__version__ in message
    for version in graph.TESTED_KERAS:
        assert version in message
    assert "pip install" in message
    assert isinstance(error.value, CamlabError)


def test_the_oldest_tested_keras_is_the_claimed_floor():
    """The error's advice and pyproject.toml's range agree: the oldest leg of make matrix
    installs the floor, so the floor is what was tested."""
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    floor = re.search(r'"keras>=([0-9.]+)', pyproject).group(1)
    assert tuple(map(int, graph.TESTED_KERAS[0].split("."))) == tuple(
        map(int, (floor + ".0.0").split(".")[:3]))


def test_a_graph_runner_without_operation_fn_is_refused_too(monkeypatch):
    model = tiny_gap_models()["functional"]
    monkeypatch.setattr(keras.Function, "_run_through_graph", lambda self, inputs: None)
    with pytest.raises(KerasVersionError, match="operation_fn"):
        camlab.cam(model, np.zeros((1, 8, 8, 3), "float32"))


def test_subclassed_models_are_still_called_subclassed():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    model = Subclassed()
    model(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(ModelError, match="subclassed"):
        camlab.gradcam(model, np.zeros((1, 8, 8, 3), "float32"))


def test_training_false_reaches_layers_without_the_private_flag(monkeypatch):
    """Without layer._call_has_training_arg, camlab reads call's signature: augmentation stays off."""
    plain = keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, activation="softmax", name="head"),
    ])
    augmented = keras.Sequential([
        keras.Input((16, 16, 1)), keras.layers.RandomFlip(), keras.layers.RandomRotation(0.3),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, activation="softmax", name="head"),
    ])
    augmented.set_weights(plain.get_weights())
    for layer in augmented.layers:
        # call_signature_parameters is newer than Keras 3.1: the signature itself is the truth.
        assert graph.takes_training(layer) == ("training" in inspect.signature(layer.call).parameters)
    # A Keras that renamed both names (Keras' own __call__ still reads its names, so they are
    # hidden from camlab only).
    monkeypatch.setattr(graph, "_TRAINING_FLAG", "_renamed_training_flag")
    monkeypatch.setattr(graph, "_SIGNATURE_PARAMETERS", "renamed_signature_parameters")
    assert graph.takes_training(augmented.layers[0])  # RandomFlip.call(inputs, training=True)
    np.testing.assert_allclose(camlab.gradcam(augmented, X16), camlab.gradcam(plain, X16), atol=UNIT)
    np.testing.assert_allclose(camlab.explain(augmented, X16, "cam").probabilities,
                               plain.predict(X16, verbose=0), atol=UNIT)


def _backbone_with_two_outputs():
    """A backbone that returns two stages, as keras-hub's backbones (HGNetV2) return their
    stages; the classifier averages and classifies one of them."""
    inputs = keras.Input((16, 16, 1))
    stage1 = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stage1")(inputs)
    stage2 = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu",
                                 name="stage2")(stage1)
    backbone = keras.Model(inputs, {"P1": stage1, "P2": stage2}, name="backbone")
    images = keras.Input((16, 16, 1))
    features = backbone(images)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(features["P2"])
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(pooled)
    return keras.Model(images, outputs), keras.Model(images, features["P2"])


def test_a_nested_backbone_with_several_outputs_is_walked():
    model, feature_model = _backbone_with_two_outputs()
    by_hand = feature_model.predict(X16, verbose=0)
    kernel = model.get_layer("head").get_weights()[0]
    for method in ("cam", "gradcam", "scorecam", "ablationcam"):
        explained = camlab.explain(model, X16, method, normalize=False, upsample=False)
        assert explained.layer.endswith("backbone/stage2") and np.isfinite(explained.maps).all()
        np.testing.assert_allclose(explained.probabilities, model.predict(X16, verbose=0), atol=UNIT)
    predicted = model.predict(X16, verbose=0).argmax(axis=1)
    cam = np.einsum("nhwk,kn->nhw", by_hand, kernel[:, predicted])
    np.testing.assert_allclose(camlab.cam(model, X16, normalize=False, upsample=False), cam,
                               rtol=1e-5, atol=UNIT)
    grad = camlab.gradcam(model, X16, normalize=False, upsample=False)
    np.testing.assert_allclose(grad, np.maximum(cam, 0) / 64, rtol=1e-4, atol=UNIT)  # 8x8 positions
    assert camlab.gradcam(model, X16, layer="stage1", upsample=False).shape == (4, 16, 16)


def test_naming_a_nested_model_with_several_outputs_says_which_layer_to_name():
    model, _ = _backbone_with_two_outputs()
    with pytest.raises(ModelError, match="nested model with 2 outputs.*'stage2'"):
        camlab.gradcam(model, X16, layer="backbone")
    two_outputs = model.get_layer("backbone")  # explained itself, it has two outputs: refused
    with pytest.raises(ModelError, match="one image input and one output"):
        camlab.gradcam(two_outputs, X16)
