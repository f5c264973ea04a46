"""Class activation maps: one shared pipeline, one short function per method.

Every method explains class c of image x through the feature maps A^k (k = 1..K)
of one conv layer, shape (N, h, w, K). ``explain`` does everything that is the
same for all methods:

1. check the images and the class indices;
2. find the layer (``camlab.graph``) and run the batch through the model once,
   keeping A and the class scores S^c (the logits, before softmax or sigmoid);
3. for methods that need them, take dS^c/dA in the same pass (one backward pass);
4. call the method, which turns these into one map (N, h, w);
5. upsample the maps to the image size and normalise each to [0, 1].

Steps 2-5 run as one compiled ``tf.function`` per batch. A method is only the
part that differs, written like its paper's equation (notebooks 01, 03, 04):

- ``cam``: M = sum_k w_k^c A^k, with w^c the Dense weights of class c
  (Zhou et al. 2016, eq. 2). Needs a GlobalAveragePooling2D + Dense head.
- ``gradcam``: M = ReLU(sum_k alpha_k^c A^k), alpha_k^c = mean_ij dS^c/dA^k_ij
  (Selvaraju et al. 2017, eqs. 1-2).
- ``gradcam_plus_plus``: the closed-form alphas of Chattopadhay et al. 2018, eq. 19.
- ``layercam``: M = ReLU(sum_k ReLU(dS^c/dA^k) * A^k) (Jiang et al. 2021, eqs. 4-5).
- ``scorecam``: M = ReLU(sum_k softmax_k(S^c(x * H^k)) A^k), H^k the
  upsampled, normalised A^k (Wang et al. 2020): no gradients, K forward passes.

Notebook 05 adds the methods that pytorch-grad-cam has and Keras lacked:

- ``hirescam``: M = ReLU(sum_k dS^c/dA^k * A^k) (Draelos & Carin 2020).
- ``xgradcam``: alpha_k = sum_ij (A^k_ij / sum_ab A^k_ab) dS^c/dA^k_ij (Fu et al. 2020).
- ``eigencam``: the first principal component of A (Muhammad & Yeasin 2020), class-agnostic.
- ``ablationcam``: w_k = (S^c - S^c_k) / |S^c|, S^c_k with channel k zeroed
  (Desai & Ramaswamy 2020): the model after the layer only, K + 1 times.

Methods registered with ``@method`` appear in ``METHODS`` and, with that, in
the explorer widget.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import numbers
import weakref

import numpy as np
import tensorflow as tf

from camlab import graph
from camlab.errors import ClassIndexError, InputError, ModelError
from camlab.backprop import ReluRewriter, check_modifier
from camlab.maps import INTERPOLATIONS, normalize_tensor, upsample_tensor


# ----------------------------------------------------------------------------
# The methods. Each receives tensors of one batch and returns maps (N, h, w):
#   feature_maps  A        (N, h, w, K)
#   gradients     dS^c/dA  (N, h, w, K)   (methods with gradients=True)
#   class_weights w^c      (N, K)         (methods with gap_head=True)
#   images        x        (N, H, W, C)
#   class_score   f(x')    a function: images (N, H, W, C) -> S^c (N,)
#   class_score_from_layer  a function: feature maps A' (copies * N, h, w, K),
#                 copy-major -> S^c (copies * N,) float64, the model run on from the
#                 layer only (``graph.walk_from``)
# ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Method:
    """A registered CAM method: its map function and what it needs."""

    name: str
    title: str
    compute: object
    gradients: bool
    gap_head: bool
    paper: str


METHODS: dict = {}


def method(name, title, paper, *, gradients=False, gap_head=False):
    """Register a map function under ``name`` (used by ``explain`` and the widget)."""

    def register(compute):
        METHODS[name] = Method(name, title, compute, gradients, gap_head, paper)
        return compute

    return register


def weighted_sum(feature_maps, channel_weights):
    """sum_k weights_k A^k for every image: (N, h, w, K), (N, K) -> (N, h, w)."""
    return tf.einsum("nhwk,nk->nhw", feature_maps, channel_weights)


@method("cam", "CAM", "Zhou et al. 2016, Learning Deep Features for Discriminative "
        "Localization, CVPR, eq. 2", gap_head=True)
def cam_map(feature_maps, class_weights, **_):
    """M^c(x, y) = sum_k w_k^c f_k(x, y)."""
    return weighted_sum(feature_maps, class_weights)


@method("gradcam", "Grad-CAM", "Selvaraju et al. 2017, Grad-CAM: Visual Explanations "
        "from Deep Networks via Gradient-based Localization, ICCV, eqs. 1-2",
        gradients=True)
def gradcam_map(feature_maps, gradients, **_):
    """L^c = ReLU(sum_k alpha_k^c A^k), alpha_k^c = (1/Z) sum_ij dS^c/dA^k_ij."""
    return tf.nn.relu(weighted_sum(feature_maps, gradcam_weights(gradients)))


def gradcam_weights(gradients):
    """alpha_k^c: the spatial mean of each map's gradient, (N, h, w, K) -> (N, K)."""
    return tf.reduce_mean(gradients, axis=(1, 2))


@method("gradcam_plus_plus", "Grad-CAM++", "Chattopadhay et al. 2018, Grad-CAM++: "
        "Generalized Gradient-based Visual Explanations for Deep Convolutional "
        "Networks, WACV, eq. 19", gradients=True)
def gradcam_plus_plus_map(feature_maps, gradients, **_):
    """L^c = ReLU(sum_k w_k^c A^k), w_k^c = sum_ij alpha_ij^kc ReLU(dS^c/dA^k_ij).

    With Y^c = exp(S^c) the paper's alphas (eq. 19) depend on the gradients of
    S^c only, so exp is never evaluated:
    alpha = g^2 / (2 g^2 + sum_ab A_ab g^3), g = dS^c/dA, and 0 where g = 0.
    The paper's weights carry one more factor exp(S^c), the same for every k
    and position; it is dropped, so raw maps are the paper's divided by
    exp(S^c) and normalised maps are identical (and never overflow).
    """
    return tf.nn.relu(weighted_sum(feature_maps, gradcam_plus_plus_weights(feature_maps, gradients)))


def gradcam_plus_plus_weights(feature_maps, gradients):
    """w_k^c = sum_ij alpha_ij^kc ReLU(g), alpha = g^2 / (2 g^2 + sum_ab A_ab g^3).

    feature_maps, gradients: (N, h, w, K) -> weights (N, K). Dividing through
    by g^2, alpha = 1 / (2 + sum_ab A_ab g) wherever g != 0: the same number,
    but g^3 is never formed, so it cannot overflow float32 at large gradients
    (g^3 does above about 7e12) nor underflow at small ones. alpha is 0 where
    g = 0 (the paper's 0/0) or its denominator is 0.
    """
    spatial_sum = tf.reduce_sum(feature_maps, axis=(1, 2), keepdims=True)
    denominator = 2.0 + spatial_sum * gradients
    usable = tf.logical_and(gradients != 0.0, denominator != 0.0)
    alpha = tf.where(usable, 1.0 / tf.where(usable, denominator, tf.ones_like(denominator)),
                     tf.zeros_like(denominator))
    return tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=(1, 2))


@method("layercam", "Layer-CAM", "Jiang et al. 2021, LayerCAM: Exploring Hierarchical "
        "Class Activation Maps for Localization, IEEE TIP, eqs. 4-5", gradients=True)
def layercam_map(feature_maps, gradients, **_):
    """M^c = ReLU(sum_k ReLU(dS^c/dA^k) * A^k): a weight per position, not per channel."""
    return tf.nn.relu(tf.reduce_sum(tf.nn.relu(gradients) * feature_maps, axis=-1))


@method("scorecam", "Score-CAM", "Wang et al. 2020, Score-CAM: Score-Weighted Visual "
        "Explanations for Convolutional Neural Networks, CVPR Workshops")
def scorecam_map(feature_maps, images, class_score, **_):
    """L^c = ReLU(sum_k softmax_k(S^c(x * H^k)) A^k).

    H^k is A^k upsampled to the image and scaled to [0, 1]; each masked image
    x * H^k goes forward once (K passes over the batch, one channel at a time),
    with no gradients. Subtracting a baseline score (the paper's f(X_b)) would
    not change the softmax over k, so it is left out.
    """
    size = tf.shape(images)[1:3]
    channels_first = tf.transpose(feature_maps, (3, 0, 1, 2))  # (K, N, h, w)

    def score_of_channel(channel):
        mask = normalize_tensor(upsample_tensor(channel, size))  # (N, H, W)
        return class_score(images * mask[..., tf.newaxis])

    scores = tf.map_fn(score_of_channel, channels_first,
                       fn_output_signature=tf.float32, parallel_iterations=1)
    weights = tf.nn.softmax(tf.transpose(scores), axis=-1)  # (N, K)
    return tf.nn.relu(weighted_sum(feature_maps, weights))


@method("hirescam", "HiResCAM", "Draelos & Carin 2020, Use HiResCAM instead of Grad-CAM "
        "for Faithful Explanations of Convolutional Neural Networks, arXiv:2011.08891",
        gradients=True)
def hirescam_map(feature_maps, gradients, **_):
    """M^c = ReLU(sum_k dS^c/dA^k * A^k), element-wise, gradients as they are.

    Grad-CAM averages each gradient map before weighing; HiResCAM keeps every
    position's own gradient, positive or negative (Layer-CAM's, without its
    ReLU on the gradients). On a GAP + Dense head the gradient is the same at
    every position, so HiResCAM equals Grad-CAM there, raw maps included.
    """
    return tf.nn.relu(tf.reduce_sum(gradients * feature_maps, axis=-1))


@method("xgradcam", "XGrad-CAM", "Fu et al. 2020, Axiom-based Grad-CAM: Towards Accurate "
        "Visualization and Explanation of CNNs, BMVC", gradients=True)
def xgradcam_map(feature_maps, gradients, **_):
    """L^c = ReLU(sum_k alpha_k^c A^k), alpha_k^c = sum_ij (A^k_ij / sum_ab A^k_ab) dS^c/dA^k_ij.

    Grad-CAM's spatial mean of the gradient, weighted by where the map is
    active; alpha_k = 0 for a map whose sum is 0 (nothing to weigh).
    """
    total = tf.reduce_sum(feature_maps, axis=(1, 2))  # (N, K)
    weights = tf.math.divide_no_nan(tf.reduce_sum(feature_maps * gradients, axis=(1, 2)), total)
    return tf.nn.relu(weighted_sum(feature_maps, weights))


@method("eigencam", "Eigen-CAM", "Muhammad & Yeasin 2020, Eigen-CAM: Class Activation Map "
        "using Principal Components, IJCNN")
def eigencam_map(feature_maps, **_):
    """M = ReLU(+-(A - mean A) v_1): the first principal component of A, per image.

    Each image's A is a table of h * w positions by K channels; v_1 (K,) is
    the first right-singular vector of that table centred over positions (a
    principal component proper, as pytorch-grad-cam does; the uncentred
    table's v_1 mostly follows the mean activation). The map is each
    position's projection on v_1, found as the top eigenvector of the
    smaller Gram matrix (P x P or K x K, P = h * w), faster than an SVD.
    A singular vector's sign is arbitrary, so it is fixed: the map's
    covariance with sum_k A^k (where the layer is active) is made >= 0,
    which is the same as making v_1's entries sum to >= 0. No class enters:
    every class gets the same map.
    """
    shape = tf.shape(feature_maps)
    table = tf.reshape(feature_maps, (shape[0], -1, shape[3]))  # (N, P = h * w, K)
    centred = table - tf.reduce_mean(table, axis=1, keepdims=True)
    positions, channels = feature_maps.shape[1] * feature_maps.shape[2], feature_maps.shape[3]
    if positions <= channels:  # X v_1 = s_1 u_1: the top eigenvector of X X^T (P x P) ...
        values, vectors = tf.linalg.eigh(tf.matmul(centred, centred, transpose_b=True))
        projection = vectors[:, :, -1] * tf.sqrt(tf.maximum(values[:, -1:], 0.0))
    else:  # ... or v_1, the top eigenvector of X^T X (K x K), whichever is smaller
        _, vectors = tf.linalg.eigh(tf.matmul(centred, centred, transpose_a=True))
        projection = tf.einsum("npk,nk->np", centred, vectors[:, :, -1])  # mean 0 over p
    agreement = tf.reduce_sum(projection * tf.reduce_sum(table, axis=-1), axis=1, keepdims=True)
    projection = tf.where(agreement < 0.0, -projection, projection)
    return tf.nn.relu(tf.reshape(projection, shape[:3]))


ABLATION_VALUES = 1 << 23  # feature-map values in one pass after the layer (32 MB of float32)


@method("ablationcam", "Ablation-CAM", "Desai & Ramaswamy 2020, Ablation-CAM: Visual "
        "Explanations for Deep Convolutional Network via Gradient-free Localization, WACV")
def ablationcam_map(feature_maps, class_score_from_layer, **_):
    """L^c = ReLU(sum_k w_k^c A^k), w_k^c = (S^c - S^c_k) / |S^c|.

    S^c_k is the class score with channel k of the layer set to 0: how much
    of the score the channel carries. Only the part of the model after the
    layer runs again (``class_score_from_layer``, ``graph.walk_from``), on
    K + 1 copies of the batch: the unchanged maps (S^c, computed the same way
    as every S^c_k) and one copy per zeroed channel, several channels per
    pass, at most ``ABLATION_VALUES`` feature-map values per pass.

    The paper divides by S^c; |S^c| is the same wherever S^c > 0. For a
    negative score the paper's ratio flips every weight, and the ReLU then
    keeps the channels that speak against the class. With |S^c|, logits
    shifted by a constant (the same probabilities) change a map only by a
    positive factor, so normalised maps do not change, as for every other
    method. Where S^c = 0 the ratio is undefined: the weights are 0 and the
    map is flat (zeros), never NaN.
    """
    shape = tf.shape(feature_maps)
    count, channels = shape[0], shape[3]
    per_pass = tf.clip_by_value(ABLATION_VALUES // tf.reduce_prod(shape), 1, channels + 1)
    passes = (channels + per_pass) // per_pass  # ceil((K + 1) / per_pass)
    # Channel K zeroes nothing (one_hot(K, K) is all zeros): first for S^c, then as padding.
    zeroed = tf.concat([[channels], tf.range(channels),
                        tf.fill([passes * per_pass - channels - 1], channels)], 0)

    def scores_without(zeroed_channels):  # (per_pass,) -> S^c (per_pass, N), float64
        keep = 1.0 - tf.one_hot(zeroed_channels, channels)  # (per_pass, K)
        edited = feature_maps[tf.newaxis] * keep[:, tf.newaxis, tf.newaxis, tf.newaxis, :]
        scores = class_score_from_layer(tf.reshape(edited, tf.concat([[-1], shape[1:]], 0)))
        return tf.reshape(scores, (-1, count))

    scores = tf.map_fn(scores_without, tf.reshape(zeroed, (passes, per_pass)),
                       fn_output_signature=tf.TensorSpec((None, None), tf.float64),
                       parallel_iterations=1)
    scores = tf.transpose(tf.reshape(scores, (-1, count))[:channels + 1])  # (N, 1 + K)
    class_score, ablated = scores[:, :1], scores[:, 1:]
    weights = tf.math.divide_no_nan(class_score - ablated, tf.abs(class_score))  # (N, K)
    return tf.nn.relu(weighted_sum(feature_maps, tf.cast(weights, tf.float32)))


# ----------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Explanation:
    """What ``explain`` returns: the maps and the predictions of the same pass.

    maps: float32 (N, H, W), in [0, 1] when normalised (H, W = the image size
        when upsampled, else the feature map's).
    class_index: int (N,): the class each map explains.
    predicted: int (N,): the model's top class.
    probabilities: float32 (N, num_classes): softmax (or sigmoid) of ``scores``.
    scores: float32 (N, num_classes): class scores before softmax/sigmoid (logits).
    method: the method's name; layer: the path of the explained layer.
    """

    maps: np.ndarray
    class_index: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray
    scores: np.ndarray
    method: str
    layer: str

    @property
    def confidence(self) -> np.ndarray:
        """float32 (N,): the probability of the explained class of each image."""
        return self.probabilities[np.arange(len(self.maps)), self.class_index]


def as_image_batch(images, input_shape) -> np.ndarray:
    """Check ``images`` against a model input (H, W, C) and return float32 (N, H, W, C).

    Accepts one image (H, W, C) or a batch (N, H, W, C); for one-channel models
    also (H, W) and (N, H, W). Integer images are refused (scale them as the
    model was trained), as are NaN and Inf.
    """
    if isinstance(images, tf.Tensor) or hasattr(images, "numpy"):
        images = images.numpy()
    try:
        array = np.asarray(images)
    except (ValueError, TypeError) as error:  # a ragged list of images
        raise InputError(
            "images must be one array of equally sized images (N, H, W, C); these "
            f"could not be stacked ({error}). Resize them to one size and pass "
            "np.stack(images)."
        ) from None
    expected = tuple(input_shape)
    shown = "(N, " + ", ".join("?" if d is None else str(d) for d in expected) + ")"
    if array.dtype == object or array.dtype.kind not in "fiub":
        raise InputError(f"images must be a numeric array; got dtype {array.dtype}.")
    if array.dtype.kind in "iub":
        raise InputError(
            f"images have dtype {array.dtype}; the model expects float images "
            "scaled as in training. Convert them first, e.g. "
            "images.astype('float32') / 255 for a model trained on [0, 1] pixels."
        )
    if array.ndim == 3 and expected[-1] == 1 and array.shape[-1] != 1:
        array = array[..., np.newaxis]  # (N, H, W) grayscale batch
    elif array.ndim == 2 and expected[-1] == 1:
        array = array[np.newaxis, ..., np.newaxis]  # one (H, W) grayscale image
    if array.ndim == 3:
        array = array[np.newaxis]
    if array.ndim != 4:
        raise InputError(
            f"images have shape {np.shape(images)}; pass one image (H, W, C) or a "
            f"batch (N, H, W, C); this model expects {shown}."
        )
    for got, want in zip(array.shape[1:], expected):
        if want is not None and got != want:
            raise InputError(
                f"images have shape {np.shape(images)} but the model expects {shown}. "
                "Resize or reshape them to the model's input size first."
            )
    if len(array) == 0:
        raise InputError("images is an empty batch; pass at least one image.")
    if not np.isfinite(array).all():
        raise InputError(
            f"images contain {int(np.isnan(array).sum())} NaN and "
            f"{int(np.isinf(array).sum())} Inf values (in images {_bad_images(array)}). "
            "Fix or drop those images first."
        )
    largest = float(np.abs(array).max())
    if largest > float(np.finfo("float32").max):
        raise InputError(
            f"images hold values up to {largest:.3g}, which overflow float32 (the "
            f"largest float32 is {np.finfo('float32').max:.3g}), the type models compute "
            "in. Scale the images as the model was trained, e.g. to [0, 1]."
        )
    return array.astype("float32", copy=False)


def _bad_images(array) -> str:
    """'[3, 7]': the first five images holding a NaN or Inf value."""
    bad = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
    return f"{bad[:5].tolist()}{' ...' if len(bad) > 5 else ''}"


def class_indices(class_index, count, num_classes) -> np.ndarray:
    """Turn ``class_index`` into int32 (count,); -1 means "the predicted class"."""
    if class_index is None:
        return np.full(count, -1, dtype="int32")
    if isinstance(class_index, (bool, np.bool_)):
        raise InputError("class_index must be an int or a sequence of ints, not a bool.")
    def out_of_range(value):
        return ClassIndexError(
            f"class_index {value} is out of range: this model has "
            f"{num_classes} classes, so use 0 .. {num_classes - 1}."
        )

    if isinstance(class_index, numbers.Integral):
        if not -1 < int(class_index) < num_classes:
            raise out_of_range(int(class_index))
        indices = np.full(count, int(class_index), dtype="int64")
    else:
        try:
            indices = np.asarray(class_index)
        except (ValueError, TypeError):
            indices = np.asarray(class_index, dtype=object)
        if indices.dtype == object and indices.ndim == 1 and all(
                isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
                for v in indices):  # ints too large for int64
            raise out_of_range(next(v for v in indices if not -1 < v < num_classes))
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise InputError(
                "class_index must be None, an int, or a sequence of ints (one per "
                f"image); got {type(class_index).__name__} with shape {indices.shape}"
                f" and dtype {indices.dtype}."
            )
        if len(indices) != count:
            raise InputError(
                f"class_index has {len(indices)} entries for {count} images; give "
                "one class per image, or one int for all."
            )
    bad = (indices < 0) | (indices >= num_classes)
    if bad.any():
        raise out_of_range(indices[bad][0])
    return indices.astype("int32")


def _resolve_upsample(upsample):
    if upsample is True:
        return "bilinear"
    if upsample is False or upsample is None:
        return None
    if isinstance(upsample, str) and upsample in INTERPOLATIONS:
        return upsample
    raise InputError(f"upsample must be True, False or one of {INTERPOLATIONS}; got {upsample!r}.")


def check_batch_size(batch_size):
    """``batch_size``: None (the default for the image size) or a positive int."""
    if batch_size is not None and (
            isinstance(batch_size, (bool, np.bool_))
            or not isinstance(batch_size, numbers.Integral) or batch_size < 1):
        raise InputError(
            f"batch_size must be a positive int (images per compiled call), or None for "
            f"the default; got {batch_size!r}."
        )
    return batch_size


def default_batch_size(input_shape, gradients) -> int:
    """Images per compiled call: about 2 M input values (1 M with gradients)."""
    values = int(np.prod(input_shape))
    budget = (1 << 20) if gradients else (1 << 21)
    return int(max(1, min(1024, budget // values)))


def _class_scores(head, captured, dtype=tf.float32):
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


def _forward(anatomy, images, target_index=None, tape=None, rewriter=None, earlier=None,
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
    scores, kernel = _class_scores(head, captured, tf.float32 if resume is None else tf.float64)
    return captured.get("feature_maps"), scores, kernel


def _pick(classes, scores):
    """The class of each image (-1: the top-scoring one) and its score S^c (N,)."""
    top = tf.argmax(scores, axis=-1, output_type=tf.int32)
    chosen = tf.where(classes < 0, top, classes)
    return chosen, tf.gather(scores, chosen, batch_dims=1)


def _probabilities(head, scores):
    return tf.sigmoid(scores) if head.activation == "sigmoid" else tf.nn.softmax(scores, axis=-1)


def _all_finite(tensor, axes):
    return tf.reduce_all(tf.math.is_finite(tensor), axis=axes)


class _Compiled:
    """One compiled pipeline: a model at one input shape, a layer, a method, options.

    Holds the ``tf.function`` (traced once per batch shape) and the ReLU
    rewriter whose weight copies must be refreshed before every call.
    """

    def __init__(self, anatomy, run, modifier):
        self.rewriter = ReluRewriter(anatomy, modifier)
        signature = [tf.TensorSpec((None,) + anatomy.input_shape, tf.float32),
                     tf.TensorSpec((None,), tf.int32)]
        self.run = tf.function(lambda images, classes: run(images, classes, self.rewriter),
                               input_signature=signature, reduce_retracing=True)

    def __call__(self, images, classes):
        self.rewriter.sync()
        return self.run(images, classes)


def _map_pipeline(anatomy, target, chosen, interpolation, normalize):
    """Steps 2-5 of the module docstring for one batch, as one function."""
    head = anatomy.head
    height, width = anatomy.input_shape[:2]

    def run(images, classes, rewriter):
        earlier = {}  # outputs of the calls before the layer, for class_score_from_layer
        if chosen.gradients:
            with tf.GradientTape() as tape:
                feature_maps, scores, kernel = _forward(
                    anatomy, images, target.index, tape, rewriter, earlier)
                chosen_class, class_score = _pick(classes, scores)
            gradients = tf.cast(tape.gradient(class_score, feature_maps), tf.float32)
        else:
            feature_maps, scores, kernel = _forward(anatomy, images, target.index, None, rewriter,
                                                    earlier)
            chosen_class, class_score = _pick(classes, scores)
            gradients = None

        def class_score_of(masked_images):
            _, masked_scores, _ = _forward(anatomy, masked_images)
            return tf.gather(masked_scores, chosen_class, batch_dims=1)

        def class_score_from_layer(edited):
            copies = tf.shape(edited)[0] // tf.shape(images)[0]
            _, edited_scores, _ = _forward(anatomy, images, target.index, earlier=earlier,
                                           resume=tf.cast(edited, feature_maps.dtype))
            return tf.gather(edited_scores, tf.tile(chosen_class, [copies]), batch_dims=1)

        maps = chosen.compute(
            feature_maps=tf.cast(feature_maps, tf.float32),
            gradients=gradients,
            class_weights=tf.gather(tf.transpose(kernel), chosen_class) if chosen.gap_head else None,
            images=images,
            class_score=class_score_of,
            class_score_from_layer=class_score_from_layer,
        )
        finite = tf.logical_and(_all_finite(maps, (1, 2)), _all_finite(scores, -1))
        if interpolation is not None:
            maps = upsample_tensor(maps, (height, width), interpolation)
        if normalize:
            maps = normalize_tensor(maps)
        return maps, chosen_class, scores, _probabilities(head, scores), finite

    return run


def _input_gradient_pipeline(anatomy):
    """dS^c/dx for one batch: the gradient of the class score at every pixel."""
    head = anatomy.head

    def run(images, classes, rewriter):
        with tf.GradientTape() as tape:
            tape.watch(images)
            _, scores, _ = _forward(anatomy, images, None, None, rewriter)
            chosen_class, class_score = _pick(classes, scores)
        gradients = tf.cast(tape.gradient(class_score, images), tf.float32)
        finite = tf.logical_and(_all_finite(gradients, (1, 2, 3)), _all_finite(scores, -1))
        return gradients, chosen_class, scores, _probabilities(head, scores), finite

    return run


_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _compiled(anatomy, key, build, modifier):
    """The compiled pipeline for this model, input size, modifier and ``key`` (cached)."""
    key = (anatomy.input_shape, modifier) + key
    return graph.cached_per_model(_COMPILED, anatomy.model, key,
                                  lambda: _Compiled(anatomy, build(), modifier))


@contextlib.contextmanager
def _quiet_tracing():
    """Silence TensorFlow's "triggered tf.function retracing" warning: camlab
    compiles one function per model, layer and method on purpose."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _prepare(model, images, class_index):
    """Checked images (N, H, W, C), the model's anatomy at that size, class indices."""
    batch = as_image_batch(images, graph.model_input_shape(model))
    anatomy = graph.read_model(model, batch.shape[1:])
    return batch, anatomy, class_indices(class_index, len(batch), anatomy.head.num_classes)


def _run_in_batches(pipeline, batch, classes, size, where, model):
    """Call ``pipeline`` on slices of ``size`` images; concatenate its five outputs."""
    with _quiet_tracing():
        parts = [pipeline(tf.constant(batch[start:start + size]),
                          tf.constant(classes[start:start + size]))
                 for start in range(0, len(batch), size)]
    values, chosen_class, scores, probabilities, finite = (
        np.concatenate([part[i].numpy() for part in parts]) for i in range(5))
    if not (finite.all() and np.isfinite(values).all()):
        raise _not_finite_error(model, batch, np.flatnonzero(~finite)[:5].tolist(), where)
    return values, chosen_class.astype("int64"), scores, probabilities


def _not_finite_error(model, batch, bad, where) -> ModelError:
    """Why the model computed NaN or Inf: its weights, or its images overflowing."""
    weights_finite = all(np.isfinite(w).all() for w in model.get_weights())
    if not weights_finite:
        return ModelError(
            f"The model produced NaN or Inf values for images {bad} ({where}): its "
            "weights hold NaN or Inf (did training diverge?). Check "
            "all(np.isfinite(w).all() for w in model.get_weights()), and retrain "
            "or reload the weights."
        )
    return ModelError(
        f"The model produced NaN or Inf values for images {bad} ({where}), although "
        "its weights are finite: its activations overflowed float32 on these images "
        f"(their values reach {float(np.abs(batch).max()):.3g}). Are the images "
        "scaled as in training (e.g. to [0, 1])?"
    )


def explain(model, images, method="cam", class_index=None, layer=None,
            upsample=True, normalize=True, batch_size=None, modifier=None) -> Explanation:
    """Explain ``images`` with one CAM method, in batches; see the module docstring.

    Args:
        model: a Keras 3 classifier (Sequential, functional or nested) whose
            input is (N, H, W, C). It is never modified.
        images: one image (H, W, C) or a batch (N, H, W, C), float, scaled as
            the model was trained.
        method: a name in ``camlab.METHODS``: "cam", "gradcam",
            "gradcam_plus_plus", "layercam", "scorecam", "hirescam",
            "xgradcam", "eigencam", "ablationcam".
        class_index: None (each image's predicted class), an int (that class
            for all), or a sequence with one class per image.
        layer: None (the layer feeding GAP, else the last conv layer), a layer
            name (nested ones too, e.g. "conv5_block3_out"), a layer object, or
            an index into ``model.layers`` (as ``model.get_layer(index=...)``).
        upsample: True (bilinear, to the image size), False (feature-map size),
            or an interpolation name ("bicubic", "nearest", ...).
        normalize: scale each map to [0, 1]; False keeps the raw map.
        batch_size: images per compiled call; default from the image size.
        modifier: how gradients pass back through the ReLUs after ``layer``:
            None, "guided" or "relu" (keras-vis's ``backprop_modifier``; see
            ``camlab.backprop``). Only gradient methods are affected.

    Returns:
        ``Explanation`` with maps (N, H, W) and the predictions of the same pass.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise InputError(f"Unknown method {method!r}; camlab has {sorted(METHODS)}.")
    chosen = METHODS[method]
    check_modifier(modifier)
    check_batch_size(batch_size)
    batch, anatomy, classes = _prepare(model, images, class_index)
    target = anatomy.feature_layer(layer, for_cam=chosen.gap_head)  # CAM: GAP + Dense or an error
    interpolation = _resolve_upsample(upsample)
    pipeline = _compiled(
        anatomy, (target.index, method, interpolation, bool(normalize)),
        lambda: _map_pipeline(anatomy, target, chosen, interpolation, bool(normalize)),
        modifier)
    size = batch_size or default_batch_size(anatomy.input_shape, chosen.gradients)
    maps, chosen_class, scores, probabilities = _run_in_batches(
        pipeline, batch, classes, size, f"at layer {target.name!r} or in the class scores",
        model)
    return Explanation(
        maps=maps.astype("float32", copy=False),
        class_index=chosen_class,
        predicted=scores.argmax(axis=-1),
        probabilities=probabilities.astype("float32", copy=False),
        scores=scores.astype("float32", copy=False),
        method=method,
        layer=target.path,
    )


def guided_backprop(model, images, class_index=None, modifier="guided", batch_size=None):
    """The gradient of the class score at every pixel, dS^c/dx, as float32 (N, H, W, C).

    ``modifier`` sets how the gradient passes back through every ReLU of the
    model: "guided" (guided backpropagation, Springenberg et al. 2015), "relu"
    (keras-vis's rectified rule: only positive gradients flow back) or None
    (the plain gradient, a "saliency map", Simonyan et al. 2014). Values are
    raw gradients, positive and negative; ``camlab.gradient_image`` makes them visible.
    """
    check_modifier(modifier)
    check_batch_size(batch_size)
    batch, anatomy, classes = _prepare(model, images, class_index)
    pipeline = _compiled(anatomy, ("input_gradients",),
                         lambda: _input_gradient_pipeline(anatomy), modifier)
    size = batch_size or default_batch_size(anatomy.input_shape, True)
    gradients, *_ = _run_in_batches(pipeline, batch, classes, size, "in the gradients", model)
    return gradients


def guided_gradcam(model, images, class_index=None, layer=None, modifier="guided",
                   batch_size=None):
    """Guided Grad-CAM (Selvaraju et al. 2017, section 3.1) as float32 (N, H, W, C).

    The pixel-sharp ``guided_backprop`` times the coarse Grad-CAM map
    (upsampled to the image, scaled to [0, 1]), channel by channel: detail,
    but only where the class's evidence is.
    """
    explanation = explain(model, images, "gradcam", class_index, layer, True, True, batch_size)
    gradients = guided_backprop(model, images, explanation.class_index, modifier, batch_size)
    return gradients * explanation.maps[..., np.newaxis]


def cam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
        batch_size=None):
    """Class Activation Maps (Zhou et al. 2016) as float32 (N, H, W).

    M^c(x, y) = sum_k w_k^c f_k(x, y): the feature maps f_k (N, h, w, K) that
    feed the model's GlobalAveragePooling2D, weighted by the Dense weights w^c
    of class c. ``normalize=False, upsample=False`` returns exactly that sum at
    feature-map size (N, h, w); by default maps are upsampled to the image and
    scaled to [0, 1]. Raises ``ModelError`` for a model without a GAP + Dense
    head (use ``gradcam``). Arguments as in ``explain``; predictions of the
    same pass: ``camlab.explain(model, images, "cam")``.
    """
    return explain(model, images, "cam", class_index, layer, upsample, normalize,
                   batch_size).maps


def gradcam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
            batch_size=None, modifier=None):
    """Grad-CAM (Selvaraju et al. 2017) as float32 (N, H, W).

    ReLU(sum_k alpha_k^c A^k) with alpha_k^c the spatial mean of dS^c/dA^k,
    S^c the class score before softmax/sigmoid. Works on any conv layer
    (``layer`` may name one inside a nested backbone). On a GAP + Dense model
    the raw map equals ReLU(raw CAM) / (h * w). Arguments as in ``explain``;
    ``modifier`` ("guided", "relu") reproduces keras-vis's ``backprop_modifier``.
    """
    return explain(model, images, "gradcam", class_index, layer, upsample, normalize,
                   batch_size, modifier).maps


def gradcam_plus_plus(model, images, class_index=None, layer=None, upsample=True,
                      normalize=True, batch_size=None, modifier=None):
    """Grad-CAM++ (Chattopadhay et al. 2018) as float32 (N, H, W).

    Grad-CAM with per-position weights alpha (the paper's closed form, eq. 19),
    computed from dS^c/dA without ever evaluating exp(S^c). Arguments as in
    ``explain``.
    """
    return explain(model, images, "gradcam_plus_plus", class_index, layer, upsample, normalize,
                   batch_size, modifier).maps


def layercam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
             batch_size=None, modifier=None):
    """Layer-CAM (Jiang et al. 2021) as float32 (N, H, W).

    ReLU(sum_k ReLU(dS^c/dA^k) * A^k): every position weighted by its own
    positive gradient, which keeps detail in earlier, larger layers.
    Arguments as in ``explain``.
    """
    return explain(model, images, "layercam", class_index, layer, upsample, normalize,
                   batch_size, modifier).maps


def scorecam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
             batch_size=None):
    """Score-CAM (Wang et al. 2020) as float32 (N, H, W).

    Gradient-free: each channel's upsampled map masks the image, and the class
    score of each masked image weights that channel (softmax over channels).
    Costs K forward passes of the batch. Arguments as in ``explain``.
    """
    return explain(model, images, "scorecam", class_index, layer, upsample, normalize,
                   batch_size).maps


def hirescam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
             batch_size=None, modifier=None):
    """HiResCAM (Draelos & Carin 2020) as float32 (N, H, W).

    ReLU(sum_k dS^c/dA^k * A^k): every position weighted by its own gradient,
    not the gradient's spatial mean. Equals Grad-CAM on a GAP + Dense head.
    Arguments as in ``explain``.
    """
    return explain(model, images, "hirescam", class_index, layer, upsample, normalize,
                   batch_size, modifier).maps


def xgradcam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
             batch_size=None, modifier=None):
    """XGrad-CAM (Fu et al. 2020) as float32 (N, H, W).

    Grad-CAM with each channel's weight the gradient averaged where the
    channel is active: alpha_k = sum_ij A^k_ij dS^c/dA^k_ij / sum_ij A^k_ij.
    Arguments as in ``explain``.
    """
    return explain(model, images, "xgradcam", class_index, layer, upsample, normalize,
                   batch_size, modifier).maps


def eigencam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
             batch_size=None):
    """Eigen-CAM (Muhammad & Yeasin 2020) as float32 (N, H, W).

    The first principal component of the layer's feature maps, signed to
    agree with the layer's total activation. No gradients and no class:
    ``class_index`` changes only the predictions reported by ``explain``,
    never the map. Arguments as in ``explain``.
    """
    return explain(model, images, "eigencam", class_index, layer, upsample, normalize,
                   batch_size).maps


def ablationcam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
                batch_size=None):
    """Ablation-CAM (Desai & Ramaswamy 2020) as float32 (N, H, W).

    Gradient-free: each channel's weight is the fraction of the class score
    lost when that channel is zeroed. Only the model after ``layer`` runs
    again, K + 1 times, batched over channels. Arguments as in ``explain``.
    """
    return explain(model, images, "ablationcam", class_index, layer, upsample, normalize,
                   batch_size).maps
