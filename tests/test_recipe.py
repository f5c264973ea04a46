"""camlab's gradient maps against the public-API recipe (keras-io's Grad-CAM example), on a model
written the Keras 3 way (op calls as graph nodes, a final `ops.softmax`) and on keras.applications
classifiers (random weights, small inputs).

The recipe: ``keras.Model(model.inputs, [feature_maps, logits])`` and a GradientTape, the class
score being the logit (the output before the softmax), as camlab's methods use it. Each map is
computed from the recipe's feature maps and gradients in float64, by its paper's equation.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import camlab
from tolerances import RELATIVE, UNIT

RAW = dict(normalize=False, upsample=False)


def recipe_maps(feature_and_logits, images, classes):
    """Grad-CAM, Layer-CAM and HiResCAM from the recipe's feature maps A and gradients dS/dA."""
    with tf.GradientTape() as tape:
        feature_maps, logits = feature_and_logits(images, training=False)
        score = tf.gather(logits, classes, axis=1, batch_dims=1)
    gradients = tape.gradient(score, feature_maps).numpy().astype("float64")
    feature_maps = feature_maps.numpy().astype("float64")
    alpha = gradients.mean(axis=(1, 2), keepdims=True)
    return {"gradcam": np.maximum((alpha * feature_maps).sum(-1), 0),
            "layercam": np.maximum((np.maximum(gradients, 0) * feature_maps).sum(-1), 0),
            "hirescam": np.maximum((gradients * feature_maps).sum(-1), 0)}


def assert_maps_match_the_recipe(model, feature_and_logits, images, layer, outputs_logits=False):
    classes = np.arange(len(images)) % model.output_shape[-1]
    expected = recipe_maps(feature_and_logits, images, classes)
    for method, maps in expected.items():
        explained = camlab.explain(model, images, method, class_index=classes, layer=layer, **RAW)
        assert maps.max() > 0, method
        np.testing.assert_allclose(explained.maps, maps, atol=RELATIVE * maps.max(), err_msg=method)
    predicted = model.predict(images, verbose=0)
    if outputs_logits:  # a model that ends in logits: camlab's probabilities are their softmax
        predicted = keras.ops.convert_to_numpy(keras.ops.softmax(predicted))
    np.testing.assert_allclose(explained.probabilities, predicted, atol=UNIT)


def ops_model(head):
    """conv -> ops.relu -> conv -> x + y * 0.5 -> ops.maximum -> GAP -> Dense -> the head."""
    inputs = keras.Input((16, 16, 3))
    x = keras.ops.relu(keras.layers.Conv2D(6, 3, padding="same", name="conv_a")(inputs))
    y = keras.layers.Conv2D(6, 3, padding="same", name="conv_b")(x)
    x = keras.ops.maximum(x + y * 0.5, 0.0)
    logits = keras.layers.Dense(4, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    outputs = {"ops.softmax": keras.ops.softmax, "logits": lambda t: t,
               "Activation": keras.layers.Activation("softmax")}[head](logits)
    keras.utils.set_random_seed(0)
    model = keras.Model(inputs, outputs)
    return model, keras.Model(inputs, [y, logits])


@pytest.mark.parametrize("head", ["ops.softmax", "logits", "Activation"])
def test_a_graph_of_op_calls_gives_the_recipes_maps(head):
    """Before, a final ops.softmax was not recognised: camlab differentiated the probability
    and its maps were 63-73% away from the recipe's, without a word."""
    model, feature_and_logits = ops_model(head)
    images = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    assert_maps_match_the_recipe(model, feature_and_logits, images, "conv_b", head == "logits")


# 64 px: the last feature maps are 2x2 (at 32 px, the smallest these take, they are 1x1).
# MobileNetV3 ends in a 1x1 classifier conv after its pool and an Activation("softmax");
# MobileNetV2 in GAP + Dense(softmax). Two of the keras.applications that gave the recipe's
# maps when tried, the cheapest (ResNet50 and DenseNet121 passed too, at 64 px, December 2026,
# at tens of seconds each; ResNet50 nested as the course uses it: tests/test_backbones.py).
APPLICATIONS = {"MobileNetV3Small": 64, "MobileNetV2": 64}
# The release matrix (make matrix sets CAMLAB_ALL_APPLICATIONS=1) tries every classifier the
# hardening pass tried, each at a small size whose last feature maps have several positions.
if os.environ.get("CAMLAB_ALL_APPLICATIONS") == "1":
    APPLICATIONS.update({"ResNet50": 64, "ResNet50V2": 64, "ResNet101": 64, "VGG16": 64,
                         "VGG19": 64, "DenseNet121": 64, "MobileNet": 64, "MobileNetV3Large": 64,
                         "InceptionV3": 139, "Xception": 96})
    # InceptionResNetV2 is left out: with random weights, at 139 px, the recipe's own Grad-CAM of
    # the predicted class is zero everywhere (measured December 2026), so it would compare nothing.


@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_keras_applications_give_the_recipes_maps_at_the_default_layer(name):
    size = APPLICATIONS[name]
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=5)
    images = np.random.default_rng(1).random((2, size, size, 3)).astype("float32") * 255
    layer = camlab.explain(model, images[:1], "gradcam").layer  # the default: a path in the model
    feature_maps = model.get_layer(layer.rsplit("/", 1)[-1]).output
    assert len(feature_maps.shape) == 4 and feature_maps.shape[1] * feature_maps.shape[2] > 1
    softmax = model.layers[-1]  # every one of them ends in an Activation("softmax") or a Dense
    logits = softmax.input if isinstance(softmax, keras.layers.Activation) else None
    if logits is None:  # a Dense with the softmax inside: the recipe rebuilds its linear part
        dense = softmax
        logits = keras.ops.matmul(dense.input, dense.kernel) + dense.bias
    feature_and_logits = keras.Model(model.inputs[0], [feature_maps, logits])
    assert_maps_match_the_recipe(model, feature_and_logits, images, layer)
