"""Notebook 06's exercises (When maps lie: a bug zoo): six broken CAM pipelines
to repair, each a mistake found in published tutorials and answers.

Each check runs the learner's repaired function on cases made to expose the
bug (a model whose softmax saturates, a model with augmentation and Dropout,
a head with a Flatten...), compares it with camlab's answer, and when the
answer is the broken pipeline's (or another usual mistake) says which.
"""

from __future__ import annotations

import traceback

import keras
import numpy as np
import tensorflow as tf

from camlab.exercises.framework import Verdict, compare, exercise, report, run_check
from camlab.exercises.questions import question
from camlab.pipeline import explain

# -- bug 1: gradients of the probability ------------------------------------------------


def _tiny_gap_model(seed, saturated=False, augmented=False, input_shape=(12, 12, 1), classes=4):
    """A gap_cnn-like model with distinct weights: conv1, pool1, last_conv, gap, classifier.
    ``saturated``: logits 40 times larger (a softmax at 1.0); ``augmented``: a random
    translation at the input and Dropout before the classifier, as keras-io's models have."""
    rng = np.random.default_rng(seed)
    layers = [keras.Input(input_shape)]
    if augmented:
        layers.append(keras.layers.RandomTranslation(0.3, 0.3, seed=seed))
    layers += [keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
               keras.layers.MaxPooling2D(2, name="pool1"),
               keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="last_conv"),
               keras.layers.GlobalAveragePooling2D(name="gap")]
    if augmented:
        layers.append(keras.layers.Dropout(0.5, seed=seed))
    layers.append(keras.layers.Dense(classes, activation="softmax", name="classifier"))
    model = keras.Sequential(layers)
    weights = [rng.normal(scale=0.6, size=w.shape).astype("float32") for w in model.get_weights()]
    if saturated:
        weights[-2] *= 40.0
    model.set_weights(weights)
    images = rng.random((3, *input_shape)).astype("float32")
    return model, images


def _call(function, *arguments):
    """The learner's answer, or a Verdict that says what it raised, or that it returned None."""
    try:
        answer = function(*arguments)
    except Exception as error:  # the learner's code: report, never raise
        where = traceback.extract_tb(error.__traceback__)[-1]
        return Verdict(False, f"Your function raised {type(error).__name__}: {error} "
                              f"(line {where.lineno}).")
    if answer is None:
        return Verdict(False, "Your function returned None: compute the result and `return` it.")
    return answer


def _as_array(answer):
    return answer.numpy() if hasattr(answer, "numpy") else answer


def reference_fixed_gradcam(model, images):
    """Grad-CAM of the predicted class's *score* at "last_conv", raw: (N, h, w), >= 0."""
    return explain(model, images, "gradcam", layer="last_conv", normalize=False, upsample=False).maps


def _probability_gradcam(model, images):
    """The broken pipeline of bug 1: Grad-CAM of the top probability."""
    parts = keras.Model(model.inputs[0], [model.get_layer("last_conv").output, model.outputs[0]])
    with tf.GradientTape() as tape:
        feature_maps, probabilities = parts(images)
        top = tf.reduce_max(probabilities, axis=-1)
    gradients = tape.gradient(top, feature_maps)
    return tf.nn.relu(tf.einsum("nhwk,nk->nhw", feature_maps, tf.reduce_mean(gradients, (1, 2)))).numpy()


@exercise("06", "bug 1: Grad-CAM of the score", "fixed_gradcam", reference_fixed_gradcam)
def check_fixed_gradcam(function) -> bool:
    """Notebook 06: ``function(model, images)`` -> raw Grad-CAM (N, h, w) of the predicted
    class's score S_c (the logit, before the softmax) at the layer "last_conv".

    Checked on gap_cnn-like models whose softmax saturates (p_c = 1.0 in float32),
    where the gradient of the probability has vanished.
    """
    for seed in (0, 1):
        model, images = _tiny_gap_model(seed, saturated=True)
        answer = _call(function, model, images.copy())
        if isinstance(answer, Verdict):
            return report(answer)
        answer = _as_array(answer)
        verdict = compare(answer, reference_fixed_gradcam(model, images))
        if verdict.ok:
            continue
        if compare(answer, _probability_gradcam(model, images)).ok:
            verdict = Verdict(False, "These are still the gradients of the probability: on a model "
                                     "this sure they have all but vanished. Take the gradient of the "
                                     "score, S = gap @ W + b, read from the classifier's input.")
        elif compare(np.maximum(np.asarray(answer, "float64"), 0), reference_fixed_gradcam(model, images)).ok:
            verdict = Verdict(False, "Right weights, but your map keeps its negative part: Grad-CAM "
                                     "ends with a ReLU.")
        return report(verdict)
    return report(verdict)


# -- bug 2: the wrong layer ------------------------------------------------------------


def reference_gap_input_layer(model):
    """The name of the layer whose output the GlobalAveragePooling2D averages (a Sequential)."""
    at = next(i for i, layer in enumerate(model.layers)
              if isinstance(layer, keras.layers.GlobalAveragePooling2D))
    return model.layers[at - 1].name


def _layer_cases():
    def conv(name, activation="relu"):
        return keras.layers.Conv2D(4, 3, padding="same", activation=activation, name=name)

    return [
        keras.Sequential([keras.Input((12, 12, 1)), conv("conv1"), keras.layers.MaxPooling2D(2),
                          conv("conv2"), keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(3)]),
        keras.Sequential([keras.Input((12, 12, 3)), conv("block1_conv"),
                          conv("block2_conv", None), keras.layers.BatchNormalization(name="block2_bn"),
                          keras.layers.Activation("relu", name="block2_relu"),
                          keras.layers.GlobalAveragePooling2D(name="avg_pool"),
                          keras.layers.Dropout(0.2), keras.layers.Dense(3, name="predictions")]),
    ]


@exercise("06", "bug 2: the layer CAM reads", "gap_input_layer", reference_gap_input_layer)
def check_gap_input_layer(function) -> bool:
    """Notebook 06: ``function(model)`` -> the name (str) of the layer whose output the
    model's GlobalAveragePooling2D averages, for Sequential models with or without a
    BatchNormalization and an Activation between the last Conv2D and the pool."""
    for model in _layer_cases():
        answer = _call(function, model)
        if isinstance(answer, Verdict):
            return report(answer)
        expected = reference_gap_input_layer(model)
        if isinstance(answer, str) and answer == expected:  # an array would compare per element
            continue
        convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        names = [layer.name for layer in model.layers]
        if not isinstance(answer, str):
            message = f"Return the layer's name (a str), not a {type(answer).__name__}: layer.name."
        elif answer == convs[0] and len(convs) > 1:
            message = ("That is the first conv layer: its maps are sharp, but CAM's weights belong to "
                       "what the GAP averages, the last of them.")
        elif answer == convs[-1]:
            message = (f"{answer} is the last Conv2D, but its output goes through "
                       f"{', '.join(names[names.index(answer) + 1:names.index(expected) + 1])} before "
                       "the GAP: the Dense weights multiply the averages of what the GAP receives.")
        elif answer in names and names.index(answer) > names.index(expected):
            message = f"{answer} comes after the pool: its output has no positions left."
        else:
            message = f"Not this layer ({answer!r}): find the GlobalAveragePooling2D, take the layer before it."
        return report(Verdict(False, f"{message} [The model's layers: {names}.]"))
    return report(Verdict(True, "Correct! The GAP's input, after every BatchNormalization and activation."))


# -- bug 3: augmentation and Dropout in training mode -----------------------------------


def reference_steady_cam(model, images):
    """Raw CAM (N, h, w) of the predicted class at "last_conv", the model in inference mode."""
    return explain(model, images, "cam", normalize=False, upsample=False).maps


@exercise("06", "bug 3: the same map every run", "steady_cam", reference_steady_cam)
def check_steady_cam(function) -> bool:
    """Notebook 06: ``function(model, images)`` -> raw CAM (N, h, w) of each image's
    predicted class at "last_conv", for a model with a RandomTranslation at its input
    and Dropout before its classifier: the same maps on every call."""
    for seed in (2, 3):
        model, images = _tiny_gap_model(seed, augmented=True)
        first = _call(function, model, images.copy())
        if isinstance(first, Verdict):
            return report(first)
        second = _call(function, model, images.copy())
        first, second = _as_array(first), _as_array(second)
        if not isinstance(second, Verdict) and compare(first, reference_steady_cam(model, images)).ok:
            continue
        try:
            changes = not np.array_equal(np.asarray(first, "float64"), np.asarray(second, "float64"))
        except (TypeError, ValueError):
            changes = False
        if changes:
            return report(Verdict(False, "Your maps change from one call to the next: the "
                                         "RandomTranslation and the Dropout are running in training mode. "
                                         "Call the model (or its parts) with training=False."))
        return report(compare(first, reference_steady_cam(model, images)))
    return report(Verdict(True, "Correct! The same maps on every call, those of the model as it predicts."))


# -- bug 4: preprocessing that does not match the backbone ------------------------------

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype="float32")  # ImageNet's mean pixel


def reference_resnet50_inputs(images):
    """RGB images in [0, 1] (N, H, W, 3) -> what ResNet50's ImageNet weights expect:
    0-255, channels in BGR order, minus ImageNet's mean pixel ("caffe" style), float32."""
    return (np.asarray(images, "float32") * 255.0)[..., ::-1] - CAFFE_MEAN_BGR


def _preprocessing_cases(seed=6):
    rng = np.random.default_rng(seed)
    return [(rng.random((2, 5, 4, 3)).astype("float32"),), (rng.random((1, 3, 3, 3)).astype("float32"),)]


@exercise("06", "bug 4: ResNet50's inputs", "resnet50_inputs", reference_resnet50_inputs)
def check_resnet50_inputs(function) -> bool:
    """Notebook 06: ``function(images)``, RGB in [0, 1] (N, H, W, 3) -> ResNet50's inputs
    (``keras.applications.resnet50.preprocess_input`` of the 0-255 image)."""
    def mistakes(images):
        pixels = images.astype("float32") * 255.0
        return {
            "Your pixels are still in [0, 1]: ResNet50 learned on 0-255 pixels minus the mean, "
            "so multiply by 255 first.": images[..., ::-1] - CAFFE_MEAN_BGR,
            "You kept RGB order: ResNet50's weights (converted from Caffe) expect BGR, "
            "image[..., ::-1].": pixels - CAFFE_MEAN_BGR,
            "You subtracted the mean in RGB order: flip to BGR first, then subtract "
            "(103.939, 116.779, 123.68).": pixels[..., ::-1] - CAFFE_MEAN_BGR[::-1],
            "That is the preprocessing of other backbones (to [-1, 1]): ResNet50's is "
            "Caffe's, BGR minus the mean.": pixels / 127.5 - 1.0,
            "That is EfficientNet-Lite0's (x - 127) / 128: ResNet50's is BGR minus the mean.":
                (pixels - 127.0) / 128.0,
            "The images as they are: ResNet50 needs them prepared.": images,
        }

    return report(run_check(function, _preprocessing_cases(), reference_resnet50_inputs, None, mistakes))


# -- bug 6: min-max scaling hides negative evidence -------------------------------------


def reference_signed_scale(raw_map):
    """A raw map (h, w) scaled by its largest magnitude to [-1, 1], zero kept at zero;
    zeros for an all-zero map. Shown with a diverging colour map, negative evidence stays
    visible (min-max scaling would paint the least negative value as bright)."""
    raw_map = np.asarray(raw_map, "float64")
    largest = np.abs(raw_map).max()
    return raw_map / largest if largest > 0 else np.zeros_like(raw_map)


def _signed_cases(seed=7):
    rng = np.random.default_rng(seed)
    negative = -np.abs(rng.normal(size=(4, 4))) - 0.2  # a class with evidence against it only
    mixed = rng.normal(size=(5, 3))
    return [(negative.astype("float32"),), (mixed.astype("float32"),), (np.zeros((3, 3), "float32"),)]


@exercise("06", "bug 6: a scale that keeps the sign", "signed_scale", reference_signed_scale)
def check_signed_scale(function) -> bool:
    """Notebook 06: ``function(raw_map)`` -> the map divided by its largest absolute value,
    in [-1, 1] with 0 kept at 0 (h, w); zeros for a map of zeros."""
    def mistakes(raw_map):
        low, high = raw_map.min(), raw_map.max()
        span = high - low if high > low else 1.0
        return {
            "That is min-max scaling, the bug itself: it paints the least negative value bright. "
            "Divide by the largest absolute value instead.": (raw_map - low) / span,
            "You divided by the maximum: where the map is mostly negative that flips or blows up "
            "the scale. Divide by np.abs(raw_map).max().": raw_map / (high if high != 0 else 1.0),
            "You took the absolute value: evidence against the class then looks like evidence "
            "for it. Keep the sign.": np.abs(raw_map) / max(np.abs(raw_map).max(), 1e-12),
            "You cut the negative part (a ReLU): that hides the evidence against the class, the "
            "very thing to show.": np.maximum(raw_map, 0) / max(np.abs(raw_map).max(), 1e-12),
        }

    return report(run_check(function, _signed_cases(), reference_signed_scale, None, mistakes,
                            nan_hint="A map of zeros has no largest magnitude: return zeros for it."))


# -- bug 7: a Flatten head mistaken for a GAP head --------------------------------------


def reference_flatten_contributions(feature_maps, kernel, class_index):
    """Each position's share of class c's score through a Flatten + Dense head:
    M(x, y) = sum_k W[(x, y, k), c] A[x, y, k]; (h, w, K), (h*w*K, classes), int -> (h, w).
    M.sum() + b_c is the score, exactly; ReLU(M) is HiResCAM's map on this head."""
    height, width, channels = feature_maps.shape
    weights = kernel[:, int(class_index)].reshape(height, width, channels)  # Flatten's order
    return (feature_maps * weights).sum(axis=-1)


def _flatten_cases(seed=8):
    rng = np.random.default_rng(seed)
    cases = []
    for height, width, channels, classes, c in ((3, 3, 4, 5, 2), (4, 2, 3, 3, 0)):
        feature_maps = np.maximum(rng.normal(size=(height, width, channels)), 0).astype("float32")
        kernel = rng.normal(size=(height * width * channels, classes)).astype("float32")
        cases.append((feature_maps, kernel, np.int64(c)))
    return cases


@exercise("06", "bug 7: what a Flatten head adds up", "flatten_contributions",
          reference_flatten_contributions)
def check_flatten_contributions(function) -> bool:
    """Notebook 06: ``function(feature_maps, kernel, class_index)`` -> (h, w), each
    position's contribution to the class score through Flatten + Dense."""
    def mistakes(feature_maps, kernel, class_index):
        height, width, channels = feature_maps.shape
        weights = kernel[:, int(class_index)]
        averaged = weights.reshape(height, width, channels).mean(axis=(0, 1))
        channels_first = weights.reshape(channels, height, width).transpose(1, 2, 0)
        return {
            "That is the broken pipeline's CAM: averaging the weights over the positions throws "
            "away that each position has its own. Multiply by the weights of each position.":
                feature_maps @ averaged,
            "Flatten orders the values position by position, the channels fastest: reshape the "
            "weights to (h, w, K), not (K, h, w).": (feature_maps * channels_first).sum(axis=-1),
        }

    def hints(feature_maps, kernel, class_index):
        height, width, channels = feature_maps.shape
        return {f"shape:{(height, width, channels)}": "Sum over the channels: one value per position.",
                "shape:()": "That is the whole score; keep one value per position (h, w)."}

    return report(run_check(function, _flatten_cases(), reference_flatten_contributions, hints, mistakes))


# -- the diagnosis questions, one per bug (their text is in the notebook) ------------------

question("06", 1, "bug 1: a blank map where the model is surest", "a",
         "dp_c/dS_c = p_c (1 - p_c): once p_c is 1.0 in float32, the probability's gradient is "
         "rounding noise, and so is a Grad-CAM made from it. The score's gradient is intact.",
         {"b": "The layer is last_conv, the right one; and a wrong layer still gives a map, not a "
               "blank one. What does the tape differentiate?",
          "c": "The same images give a clear map with camlab.gradcam; the difference is in what "
               "the gradient is taken of."})

question("06", 2, "bug 2: a map that does not add up to the score", "a",
         "The GAP averages what reaches it, after BatchNormalization and ReLU; the Dense weights "
         "multiply those averages. Weigh the conv layer's raw output with them and the map no "
         "longer splits the score: take the GAP's input.",
         {"b": "Upsampling changes the picture's size, not what its values add up to; the map is "
               "off before any upsampling.",
          "c": "The bias is the classifier's, the same in both rows; the maps differ, so the "
               "feature maps do."})

question("06", 3, "bug 3: two runs, two maps", "a",
         "training=True switches on the model's RandomTranslation (a new shift every call) and "
         "its Dropout (new features dropped every call): the map explains a random variant of "
         "the model, not the one that predicts.",
         {"b": "A GPU's sums can differ in their last digits, not by a shifted map; and this runs "
               "on a CPU.",
          "c": "Setting a seed would make the randomness repeatable, not remove it: the model "
               "would still be explained in training mode."})

question("06", 4, "bug 4: an ImageNet model that recognises nothing", "a",
         "The backbone's filters were learned on pixels prepared one way; other pixels are "
         "images it has never seen: wrong classes, and maps of those wrong classes, with no error.",
         {"b": "224x224 is the size the backbone was trained at; the same photos, prepared right, "
               "are recognised.",
          "c": "The same model and the same CAM work on the prepared photos, a few cells above."})

question("06", 5, "bug 5: pictures that never reach 1", "a",
         "Upsampling smooths: the peak of a map scaled first is averaged with its neighbours and "
         "falls below 1. Upsample the raw map, then scale.",
         {"b": "Nearest-neighbour upsampling keeps the peak at 1 but paints the map in blocks; the "
               "bug is the order of the two steps.",
          "c": "Each map loses a different amount; a fixed factor cannot know how much, and can "
               "push values above 1."})

question("06", 6, "bug 6: a rejected class that looks bright", "a",
         "Min-max scaling sends each map's largest value to 1, even when every value is negative: "
         "the spot with the least evidence against the class is painted as the strongest for it.",
         {"b": "The model gives that class a tiny probability: it is sure. The picture says "
               "otherwise because of how it was scaled.",
          "c": "CAM is exact for this head: mean(M_c) + b_c = S_c. The raw map is right; its "
               "picture is not."})

question("06", 7, "bug 7: a Flatten head's averaged weights", "a",
         "After a Flatten, every position has its own weight for each channel; averaging them "
         "over the positions makes a map whose sum is not the class score, a picture of nothing "
         "the model computed.",
         {"b": "CAM's derivation needs the weights to be the same at every position, which only a "
               "GAP gives; here they are not.",
          "c": "The biases add a constant to each class's score; averaging the weights is what "
               "changes the map."})
