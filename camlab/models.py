"""The course's models (notebooks 01 and 02).

A CAM model ends in conv layers, a GlobalAveragePooling2D and one Dense layer:
the average pool turns each feature map A^k into one number, so the Dense
weight w_k^c says how much map k counts for class c (Zhou et al. 2016).
"""

from __future__ import annotations

import keras


def gap_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(32, 64, 128),
            name="gap_cnn") -> keras.Sequential:
    """Conv blocks, global average pooling and a softmax Dense layer.

    Every entry of ``filters`` is a 3x3 "same" ReLU convolution; all but the
    last are followed by 2x2 max-pooling, which widens what each feature-map
    position sees. ``filters=(32, 64, 128)`` is notebook 01's MNIST model
    (feature maps 7x7x128); ``(16, 32, 64, 128)`` is seed 002's Fashion-MNIST
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
