"""The one forward pass: feature maps, class scores and probabilities (notebooks 01, 04).

``forward`` runs a model once (``camlab.graph.walk``), keeps the feature maps
of one layer (watched by a gradient tape when a method needs dS^c/dA) and
reads the class scores S from the head that ``camlab.anatomy`` found: with a
Dense head, S = x @ kernel + bias from the Dense layer's input, so its softmax
or sigmoid is never in the way (Grad-CAM differentiates the score, not the
probability: Selvaraju et al. 2017, sec. 3). ``probabilities`` then applies the
head's own softmax or sigmoid, which gives ``model.predict``'s numbers.
Everything camlab reports, maps, predictions and every metric, goes through here.
"""

from __future__ import annotations

import tensorflow as tf

from camlab import graph

def class_scores(head, captured, dtype=tf.float32):
    """Class scores S (N, classes) and the Dense kernel as (K, classes), or None.

    With a Dense head the scores are computed from its input, x @ kernel + bias,
    so its softmax or sigmoid is never in the way; otherwise they are the
    output of ``head.scores``. One sigmoid unit z becomes two classes (-z, z).
    """
    dense = head.dense.layer if head.dense is not None else None
    if dense is not None:
        kernel = tf.cast(dense.kernel, dtype)
        inputs = tf.cast(captured["dense_input"], dtype)
        if dense.use_bias:  # the bias as one more kernel row: a fused matmul + bias
            # add in float64 makes oneDNN log "Not handling type DT_DOUBLE" on stderr
            inputs = tf.concat([inputs, tf.ones_like(inputs[:, :1])], axis=-1)
            bias = tf.cast(dense.bias, dtype)[tf.newaxis]
            scores = tf.matmul(inputs, tf.concat([kernel, bias], axis=0))
        else:
            scores = tf.matmul(inputs, kernel)
    else:
        raw = tf.cast(captured["scores"], dtype)
        scores, kernel = tf.reshape(raw, (tf.shape(raw)[0], -1)), None
    if head.binary_sigmoid:
        scores = tf.concat([-scores, scores], axis=-1)
        kernel = None if kernel is None else tf.concat([-kernel, kernel], axis=-1)
    return scores, kernel


def forward(anatomy, images, target_index=None, tape=None, rewriter=None, earlier=None,
             resume=None):
    """Run the model once: (feature maps at ``target_index`` or None, scores, kernel).

    The feature maps are watched by ``tape`` as soon as they exist, so one
    backward pass gives dS/dA; ``rewriter`` swaps ReLUs for modified ones.
    ``earlier`` (a dict) receives the outputs of every call before
    ``target_index``. Given ``resume``, feature maps (copies * N, h, w, K),
    the model runs only from ``target_index`` on, reading ``earlier`` instead
    of recomputing it (``graph.walk_from``); scores are then (copies * N, classes)
    and float64, for Ablation-CAM subtracts them: with float32 scores near 300,
    S^c - S^c_k would keep only about three digits.
    """
    head = anatomy.head
    captured = {}

    def on_call(index, path, layer, args, outputs):
        replaced = rewriter.on_call(index, path, layer, args, outputs) if rewriter else None
        if replaced is not None:
            outputs = replaced
        if index == target_index:
            if tape is not None:
                tape.watch(outputs)
            captured["feature_maps"] = outputs
        if head.dense is not None and index == head.dense.index:
            captured["dense_input"] = graph.tensors_in(args)[0]
        if head.dense is None and index == head.scores.index:
            captured["scores"] = outputs
        if earlier is not None and index < target_index:
            earlier[index] = outputs
        return replaced

    if resume is None:
        graph.walk(anatomy.model, images, on_call)
    else:
        graph.walk_from(anatomy.model, images, target_index, resume, earlier, on_call)
    scores, kernel = class_scores(head, captured, tf.float32 if resume is None else tf.float64)
    return captured.get("feature_maps"), scores, kernel


def pick(classes, scores):
    """The class of each image (-1: the top-scoring one) and its score S^c (N,)."""
    top = tf.argmax(scores, axis=-1, output_type=tf.int32)
    chosen = tf.where(classes < 0, top, classes)
    return chosen, tf.gather(scores, chosen, batch_dims=1)


def probabilities(head, scores):
    return tf.sigmoid(scores) if head.activation == "sigmoid" else tf.nn.softmax(scores, axis=-1)


def all_finite(tensor, axes):
    """Whether each row of ``tensor`` is free of NaN and Inf, reduced over ``axes``."""
    return tf.reduce_all(tf.math.is_finite(tensor), axis=axes)


def sum_is_finite(tensor, axes):
    """The same answer in one pass, cheaper on large tensors: NaN or Inf makes the sum
    NaN or Inf. A sum that overflows finite values also says False (check again)."""
    return tf.math.is_finite(tf.reduce_sum(tensor, axis=axes))


def model_probabilities(anatomy):
    """In a compiled function: images (B, H, W, C) -> class probabilities (B, classes).

    The class scores read from the model's head, then its softmax or sigmoid
    (one sigmoid unit gives two classes, 1 - p and p): ``model.predict``'s
    probabilities, for metrics that compute inside their own ``tf.function``.
    """
    def run(images):
        _, scores, _ = forward(anatomy, images)
        return probabilities(anatomy.head, scores)

    return run
