"""CAM: exact math on tiny models, the three model forms, class indices, errors."""

import keras
import numpy as np
import pytest

import camlab
from conftest import tiny_gap_models
from tolerances import BY_HAND, LOGITS, UNIT


def hand_features(model, images):
    """conv_b's output, computed with a separate functional model of the same layers."""
    conv_b = model.get_layer("conv_b")
    return keras.Model(model.inputs[0], conv_b.output)(images).numpy()


def hand_cam(model, images, classes):
    feature_maps = hand_features(model, images)  # (N, h, w, K)
    kernel = model.get_layer("head").kernel.numpy()  # (K, classes)
    return np.einsum("nhwk,kn->nhw", feature_maps, kernel[:, classes])


def test_raw_cam_is_the_weighted_sum(gap_models, images):
    model = gap_models["functional"]
    classes = np.array([0, 1, 2, 0, 1, 2])
    maps = camlab.cam(model, images, class_index=classes, normalize=False, upsample=False)
    assert maps.shape == (6, 8, 8) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, hand_cam(model, images, classes), atol=BY_HAND)


def test_raw_cam_is_not_trivially_zero(gap_models, images):
    maps = camlab.cam(gap_models["functional"], images, normalize=False, upsample=False)
    assert np.abs(maps).max() > 0.1  # the exact-math test above compares real numbers


@pytest.mark.parametrize("form", ["sequential", "nested"])
def test_model_forms_give_identical_maps(gap_models, images, form):
    reference = camlab.explain(gap_models["functional"], images, "cam", normalize=False)
    other = camlab.explain(gap_models[form], images, "cam", normalize=False)
    np.testing.assert_allclose(other.maps, reference.maps, atol=UNIT)
    np.testing.assert_array_equal(other.class_index, reference.class_index)
    assert other.layer.endswith("conv_b")


def test_explanation_carries_the_predictions_of_the_same_pass(gap_models, images):
    model = gap_models["nested"]
    explanation = camlab.explain(model, images, "cam")
    predicted = model.predict(images, verbose=0)
    np.testing.assert_allclose(explanation.probabilities, predicted, atol=UNIT)
    np.testing.assert_array_equal(explanation.predicted, predicted.argmax(1))
    np.testing.assert_array_equal(explanation.class_index, predicted.argmax(1))
    np.testing.assert_allclose(explanation.confidence, predicted.max(1), atol=UNIT)
    logits = np.log(predicted)
    np.testing.assert_allclose(explanation.scores - explanation.scores.mean(1, keepdims=True),
                               logits - logits.mean(1, keepdims=True), atol=LOGITS)


def test_class_index_forms(gap_models, images):
    model = gap_models["functional"]
    raw = dict(normalize=False, upsample=False)
    predicted = model.predict(images, verbose=0).argmax(1)
    by_default = camlab.cam(model, images, **raw)
    np.testing.assert_allclose(by_default, hand_cam(model, images, predicted), atol=BY_HAND)
    for one in (0, 2, np.int64(1)):
        np.testing.assert_allclose(camlab.cam(model, images, class_index=one, **raw),
                                   hand_cam(model, images, np.full(6, int(one))), atol=BY_HAND)
    per_image = [2, 0, 1, 1, 0, 2]
    for sequence in (per_image, tuple(per_image), np.array(per_image, dtype="uint8")):
        np.testing.assert_allclose(camlab.cam(model, images, class_index=sequence, **raw),
                                   hand_cam(model, images, np.array(per_image)), atol=BY_HAND)


def test_one_image_and_grayscale_shapes():
    model = camlab.gap_cnn(input_shape=(28, 28, 1), filters=(4, 8))
    image = np.random.default_rng(0).random((28, 28)).astype("float32")
    for shape in [(28, 28), (28, 28, 1), (1, 28, 28, 1), (1, 28, 28)]:
        maps = camlab.cam(model, image.reshape(shape))
        assert maps.shape == (1, 28, 28)


def test_upsampled_normalized_maps_lie_in_unit_range(gap_models, images):
    maps = camlab.cam(gap_models["sequential"], images)
    assert maps.shape == (6, 8, 8)
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert np.allclose(maps.reshape(6, -1).max(1), 1.0)


def test_feature_map_resolution_without_upsampling():
    model = camlab.gap_cnn(input_shape=(28, 28, 1), filters=(4, 8, 8))
    maps = camlab.cam(model, np.ones((2, 28, 28, 1), "float32") * 0.5, upsample=False)
    assert maps.shape == (2, 7, 7)


def test_constant_map_is_zeros_not_nan():
    model = camlab.gap_cnn(input_shape=(8, 8, 1), filters=(2,))
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    maps = camlab.cam(model, np.zeros((3, 8, 8, 1), "float32"))
    assert np.isfinite(maps).all() and (maps == 0).all()


def test_batches_do_not_change_results(gap_models, images):
    model = gap_models["functional"]
    whole = camlab.explain(model, images, "cam", batch_size=64)
    pieces = camlab.explain(model, images, "cam", batch_size=4)
    np.testing.assert_allclose(pieces.maps, whole.maps, atol=UNIT)
    np.testing.assert_array_equal(pieces.class_index, whole.class_index)


def test_binary_sigmoid_head_explains_class_zero_with_the_opposite_sign(images):
    model = tiny_gap_models(num_classes=1, activation="sigmoid")["functional"]
    explanation = camlab.explain(model, images, "cam", class_index=1, normalize=False,
                                 upsample=False)
    zero = camlab.cam(model, images, class_index=0, normalize=False, upsample=False)
    np.testing.assert_allclose(zero, -explanation.maps, atol=UNIT)
    p = model.predict(images, verbose=0)[:, 0]
    np.testing.assert_allclose(explanation.probabilities, np.stack([1 - p, p], 1), atol=UNIT)
    with pytest.raises(camlab.ClassIndexError):
        camlab.cam(model, images, class_index=2)


def test_the_model_is_not_modified(images):
    model = tiny_gap_models()["nested"]
    before = [w.copy() for w in model.get_weights()]
    nodes = [len(layer._inbound_nodes) for layer in model._flatten_layers()]
    activation = model.layers[-1].activation
    output = model.predict(images, verbose=0)
    for name in camlab.METHODS:
        camlab.explain(model, images, name)
    assert model.layers[-1].activation is activation
    assert [len(layer._inbound_nodes) for layer in model._flatten_layers()] == nodes
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_array_equal(model.predict(images, verbose=0), output)


def test_layer_by_name_object_and_nested_path(gap_models, images):
    nested = gap_models["nested"]
    reference = camlab.cam(nested, images)
    inner = nested.layers[0].get_layer("conv_b")
    for layer in ("conv_b", "backbone/conv_b", "nested/backbone/conv_b", inner, "backbone"):
        np.testing.assert_allclose(camlab.cam(nested, images, layer=layer), reference, atol=UNIT)


# ---------------------------------------------------------------- errors


def test_no_conv_layer_is_a_clear_error():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(camlab.ModelError, match="no convolutional layer"):
        camlab.cam(model, np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(camlab.ModelError, match="no convolutional layer"):
        camlab.gradcam(model, np.zeros((1, 8, 8, 3), "float32"))


def test_cam_without_gap_points_to_gradcam(flatten_model, images):
    with pytest.raises(camlab.ModelError, match=r"camlab\.gradcam"):
        camlab.cam(flatten_model, images)


def test_cam_on_another_layer_points_to_gradcam(gap_models, images):
    with pytest.raises(camlab.ModelError, match="gradcam"):
        camlab.cam(gap_models["functional"], images, layer="conv_a")


def test_class_index_out_of_range(gap_models, images):
    model = gap_models["functional"]
    with pytest.raises(camlab.ClassIndexError, match=r"3 classes, so use 0 \.\. 2"):
        camlab.cam(model, images, class_index=3)
    with pytest.raises(camlab.ClassIndexError):
        camlab.cam(model, images, class_index=-1)
    with pytest.raises(camlab.ClassIndexError):
        camlab.cam(model, images, class_index=[0, 1, 2, 3, 0, 0])
    with pytest.raises(IndexError):  # also a built-in IndexError
        camlab.cam(model, images, class_index=7)


def test_bad_class_index_types(gap_models, images):
    model = gap_models["functional"]
    with pytest.raises(camlab.InputError, match="one class per image"):
        camlab.cam(model, images, class_index=[0, 1])
    with pytest.raises(camlab.InputError):
        camlab.cam(model, images, class_index=[0.5] * 6)
    with pytest.raises(camlab.InputError):
        camlab.cam(model, images, class_index=True)


@pytest.mark.parametrize("shape", [(6, 9, 9, 3), (6, 8, 8, 1), (8, 8), (2, 3, 8, 8, 3)])
def test_image_shape_that_does_not_fit(gap_models, shape):
    with pytest.raises(camlab.InputError, match=r"\(N, 8, 8, 3\)"):
        camlab.cam(gap_models["functional"], np.zeros(shape, "float32"))


def test_nan_and_inf_inputs(gap_models, images):
    bad = images.copy()
    bad[2, 0, 0, 0] = np.nan
    bad[4, 1, 1, 1] = np.inf
    with pytest.raises(camlab.InputError, match=r"1 NaN and 1 Inf values \(in images \[2, 4\]"):
        camlab.cam(gap_models["functional"], bad)


def test_integer_images_are_refused_with_advice(gap_models):
    with pytest.raises(camlab.InputError, match="astype"):
        camlab.cam(gap_models["functional"], np.zeros((1, 8, 8, 3), "uint8"))


def test_unknown_layer_and_method(gap_models, images):
    with pytest.raises(camlab.ModelError, match="No layer named 'nope'"):
        camlab.gradcam(gap_models["functional"], images, layer="nope")
    with pytest.raises(camlab.ModelError, match="4-D feature maps"):
        camlab.gradcam(gap_models["functional"], images, layer="gap")
    with pytest.raises(camlab.InputError, match="Unknown method"):
        camlab.explain(gap_models["functional"], images, "nope")


def test_subclassed_and_non_models_are_refused(images):
    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    with pytest.raises(camlab.ModelError, match="subclassed"):
        camlab.cam(Custom(), images)
    with pytest.raises(camlab.ModelError, match="Keras model"):
        camlab.cam(lambda x: x, images)


def test_nan_weights_are_reported_not_returned(images):
    model = tiny_gap_models()["functional"]
    weights = model.get_weights()
    weights[-2][...] = np.nan  # the Dense kernel (a NaN conv kernel is hidden by ReLU)
    model.set_weights(weights)
    with pytest.raises(camlab.ModelError, match="NaN"):
        camlab.cam(model, images)
