"""The course's models (notebooks 01 and 02; 03: ``pretrained_gap_model``).

A CAM model ends in conv layers, a GlobalAveragePooling2D and one Dense layer:
the average pool turns each feature map A^k into one number, so the Dense
weight w_k^c says how much map k counts for class c (Zhou et al. 2016).
"""

from __future__ import annotations

import keras

from camlab.course import notice
from camlab.errors import ModelError


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

BACKBONES = {"resnet50": keras.applications.ResNet50, "vgg16": keras.applications.VGG16}


def _is_download_failure(error) -> bool:
    # keras.utils.get_file turns every network error into Exception("URL fetch failure ...").
    return isinstance(error, OSError) or "URL fetch failure" in str(error)


def pretrained_gap_model(backbone="resnet50", num_classes=2, input_shape=(224, 224, 3),
                         weights="imagenet", name=None) -> keras.Sequential:
    """The cats-vs-dogs tutorial's model (notebook 03).

    Sequential[backbone (frozen), GlobalAveragePooling2D, Dense softmax].

    ``backbone`` is "resnet50" (He et al. 2016; its last block gives 7x7x2048
    feature maps at 224x224) or "vgg16" (Simonyan and Zisserman 2015; 7x7x512
    after its last pool, the PyTorch CAM tutorial's variant), built by
    ``keras.applications``
    without its classifier and used, frozen, as *one layer* of the Sequential,
    exactly as the tutorial builds it. camlab's methods explain it as it is.
    ``weights``: "imagenet" (downloaded and cached by Keras), None (random), or
    a weights file. When the ImageNet weights cannot be downloaded (no
    network), the backbone keeps random weights and a loud notice says so.
    ``model.backbone_weights`` is "imagenet" or "random": check it before
    reading anything into the maps. Input: photos (N, *input_shape)
    preprocessed with ``camlab.preprocess(images, backbone)``; output: class
    probabilities (N, num_classes). Train only the head (the Dense layer).
    """
    if backbone not in BACKBONES:
        raise ModelError(f"Unknown backbone {backbone!r}; camlab has {sorted(BACKBONES)}.")
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3 or min(input_shape[:2]) < 32:
        raise ModelError(
            f"{backbone} takes RGB photos of at least 32x32, input_shape=(H, W, 3); "
            f"got {input_shape}."
        )
    build = BACKBONES[backbone]
    in_use = "random" if weights is None else ("imagenet" if weights == "imagenet" else str(weights))
    try:
        base = build(include_top=False, weights=weights, input_shape=input_shape)
    except Exception as error:
        if weights != "imagenet" or not _is_download_failure(error):
            raise
        notice(
            f"No ImageNet weights for {backbone}: its weights are RANDOM",
            f"{error}\nThe {backbone} backbone could not get its ImageNet weights, so it "
            "keeps random ones. The model still runs and camlab still draws its maps, "
            "but a random backbone has learned nothing: its maps do not show where a cat "
            "or a dog is. Run online to get the real weights (Keras caches them).",
        )
        base = build(include_top=False, weights=None, input_shape=input_shape)
        in_use = "random"
    base.trainable = False
    model = keras.Sequential([
        keras.Input(shape=input_shape),
        base,
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(num_classes, activation="softmax", name="classifier"),
    ], name=name or f"{backbone}_gap")
    model.backbone_weights = in_use
    return model
