"""The compiled work of one batch: what ``camlab.pipeline`` runs in each ``tf.function``.

Each builder returns ``run(images, classes, rewriter)`` for a batch of images
(B, H, W, C) float32 and classes (B,) int32 (-1: the predicted class), which
returns five tensors of B rows: the values (maps (B, h, w) or (B, H, W),
input gradients (B, H, W, C), or probabilities), the class of each image,
the class scores (B, classes), the probabilities (B, classes), and whether
each image's values and scores are finite (for maps: the raw maps, with room
to be upsampled and scaled, see ``HEADROOM``). ``camlab.pipeline`` compiles it
and runs it on one device or on a strategy's replicas (``camlab.replicas``).
"""

from __future__ import annotations

import tensorflow as tf

from camlab.forward import all_finite, forward, model_probabilities, pick, probabilities
from camlab.maps import normalize_tensor, upsample_tensor


HEADROOM = 8.0  # a map beyond float32's largest value / HEADROOM counts as overflowed


def map_pipeline(anatomy, target, chosen, interpolation, normalize):
    """Steps 2-5 of the module docstring for one batch, as one function."""
    head = anatomy.head
    height, width = anatomy.input_shape[:2]

    def run(images, classes, rewriter):
        earlier = {}  # outputs of the calls before the layer, for class_score_from_layer
        if chosen.gradients:
            with tf.GradientTape() as tape:
                feature_maps, scores, kernel = forward(
                    anatomy, images, target.index, tape, rewriter, earlier)
                chosen_class, class_score = pick(classes, scores)
            gradients = tf.cast(tape.gradient(class_score, feature_maps), tf.float32)
        else:
            feature_maps, scores, kernel = forward(anatomy, images, target.index, None, rewriter,
                                                    earlier)
            chosen_class, class_score = pick(classes, scores)
            gradients = None

        def class_score_of(masked_images):
            _, masked_scores, _ = forward(anatomy, masked_images)
            return tf.gather(masked_scores, chosen_class, batch_dims=1)

        def class_probability_of(masked_images):
            _, masked_scores, _ = forward(anatomy, masked_images)
            return tf.gather(probabilities(head, masked_scores), chosen_class, batch_dims=1)

        def class_score_from_layer(edited):
            copies = tf.shape(edited)[0] // tf.shape(images)[0]
            _, edited_scores, _ = forward(anatomy, images, target.index, earlier=earlier,
                                           resume=tf.cast(edited, feature_maps.dtype))
            return tf.gather(edited_scores, tf.tile(chosen_class, [copies]), batch_dims=1)

        maps = chosen.compute(
            feature_maps=tf.cast(feature_maps, tf.float32),
            gradients=gradients,
            class_weights=tf.gather(tf.transpose(kernel), chosen_class) if chosen.gap_head else None,
            images=images,
            class_score=class_score_of,
            class_probability=class_probability_of,
            class_score_from_layer=class_score_from_layer,
        )
        # Maps within 1/8 of float32's range stay finite when upsampled (bicubic overshoots
        # by less than 2.25x) and scaled, so the small maps are the ones checked.
        finite = tf.logical_and(all_finite(maps * HEADROOM, (1, 2)), all_finite(scores, -1))
        if interpolation is not None:
            maps = upsample_tensor(maps, (height, width), interpolation)
        if normalize:
            maps = normalize_tensor(maps)
        return maps, chosen_class, scores, probabilities(head, scores), finite

    return run


def input_gradient_pipeline(anatomy):
    """dS^c/dx for one batch: the gradient of the class score at every pixel."""
    head = anatomy.head

    def run(images, classes, rewriter):
        with tf.GradientTape() as tape:
            tape.watch(images)
            _, scores, _ = forward(anatomy, images, None, None, rewriter)
            chosen_class, class_score = pick(classes, scores)
        gradients = tf.cast(tape.gradient(class_score, images), tf.float32)
        finite = tf.logical_and(all_finite(gradients, (1, 2, 3)), all_finite(scores, -1))
        return gradients, chosen_class, scores, probabilities(head, scores), finite

    return run


def probability_pipeline(anatomy):
    """Class probabilities for one batch, from the same forward pass as every map."""
    of_images = model_probabilities(anatomy)

    def run(images, classes, rewriter):
        values = of_images(images)
        top = tf.argmax(values, axis=-1, output_type=tf.int32)
        return values, top, values, values, all_finite(values, -1)

    return run
