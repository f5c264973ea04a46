"""Class activation maps: the registry of methods, and each method's equation.

Every method explains class c of image x through the feature maps A^k (k = 1..K)
of one conv layer, shape (N, h, w, K). ``camlab.pipeline`` does everything that
is the same for all methods (check the input, run the model once, take dS^c/dA
in the same pass, upsample and normalise); a method is only the part that
differs, one short function written like its paper's equation:

- ``cam``: M = sum_k w_k^c A^k, with w^c the Dense weights of class c
  (Zhou et al. 2016, eq. 2). Needs a GlobalAveragePooling2D + Dense head.
- ``gradcam``: M = ReLU(sum_k alpha_k^c A^k), alpha_k^c = mean_ij dS^c/dA^k_ij
  (Selvaraju et al. 2017, eqs. 1-2).
- ``gradcam_plus_plus``: the closed-form alphas of Chattopadhay et al. 2018, eq. 19.
- ``layercam``: M = ReLU(sum_k ReLU(dS^c/dA^k) * A^k) (Jiang et al. 2021, eqs. 4-5).
- ``scorecam``: M = ReLU(sum_k softmax_k(S^c(x * H^k)) A^k), H^k the
  upsampled, normalised A^k: no gradients, K forward passes; the weights as
  pytorch-grad-cam computes them (the default Score-CAM: see its docstring).
- ``scorecam_paper``: M = ReLU(sum_k p^c(x * H^k) A^k), the weights of Wang et
  al. 2020 (eq. 2) and of their code: each masked image's class probability.
- ``hirescam``: M = ReLU(sum_k dS^c/dA^k * A^k) (Draelos & Carin 2020).
- ``xgradcam``: alpha_k = sum_ij (A^k_ij / sum_ab A^k_ab) dS^c/dA^k_ij (Fu et al. 2020).
- ``eigencam``: the first principal component of A (Muhammad & Yeasin 2020), class-agnostic.
- ``ablationcam``: w_k = (S^c - S^c_k) / |S^c|, S^c_k with channel k zeroed
  (Desai & Ramaswamy 2020): the model after the layer only, K + 1 times.

Notebooks 01 and 03 build CAM by hand, notebook 04 Grad-CAM and Grad-CAM++,
notebook 05 compares them all. ``@method`` registers a map function in
``METHODS``; that one line makes it ``camlab.<name>(model, images, ...)``, a
method of ``camlab.explain``, an entry of the explorer's menu and a name in
``camlab.__all__`` (docs/developers.md, "Add a method").

A map function receives tensors of one batch, by keyword, and returns maps (N, h, w):

- feature_maps  A        (N, h, w, K)
- gradients     dS^c/dA  (N, h, w, K)   (methods registered with gradients=True)
- class_weights w^c      (N, K)         (methods registered with gap_head=True)
- images        x        (N, H, W, C)
- class_score   a function: images (N, H, W, C) -> S^c (N,), the model run again
- class_probability  the same, -> p^c (N,): softmax (or sigmoid) of the scores
- class_score_from_layer  a function: feature maps A' (copies * N, h, w, K),
  copy-major -> S^c (copies * N,) float64, the model run on from the layer only
  (``camlab.graph.walk_from``)

S^c is the class score before softmax or sigmoid (the logit).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from camlab.maps import normalize_tensor, upsample_tensor


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered CAM method: its map function and what it needs.

    ``gradients``: it reads dS^c/dA (one backward pass), so a backprop
    ``modifier`` applies to it; the others refuse one. ``gap_head``: it reads
    the Dense weights of a GAP + Dense head (CAM). ``class_specific``: its map
    depends on the class; a method whose map does not (Eigen-CAM) refuses a
    ``class_index``.
    """

    name: str
    title: str
    compute: object
    gradients: bool
    gap_head: bool
    paper: str
    class_specific: bool = True


METHODS: dict = {}


def method(name, title, paper, *, gradients=False, gap_head=False, class_specific=True):
    """Register a map function under ``name``: the one step that adds a method."""
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"a method's name is a Python identifier without a leading _; got {name!r}")

    def register(compute):
        METHODS[name] = Method(name, title, compute, gradients, gap_head, paper, class_specific)
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
        "Explanations for Convolutional Neural Networks, CVPR Workshops; weights as in "
        "pytorch-grad-cam")
def scorecam_map(feature_maps, images, class_score, **_):
    """L^c = ReLU(sum_k softmax_k(S^c(x * H^k)) A^k): pytorch-grad-cam's Score-CAM.

    H^k is A^k upsampled to the image and scaled to [0, 1]; each masked image
    x * H^k goes forward once (K passes over the batch, one channel at a time),
    with no gradients. The weights are a softmax *over the K channels* of the
    masked images' class scores S^c (logits), as pytorch-grad-cam computes them;
    subtracting a baseline score (the paper's f(X_b)) would not change that
    softmax, so it is left out.

    The paper's own weights are ``scorecam_paper``'s: each masked image's class
    *probability* (a softmax over the classes), one weight per channel, not
    normalised across channels. The two differ: with hundreds of channels the
    channel softmax can put nearly all the weight on the few channels with the
    highest scores. This one is camlab's default Score-CAM because it is what
    pytorch-grad-cam, the library most readers will compare with, computes, and
    the course's measurements (notebooks 04 and 05) were made with it.
    """
    weights = tf.nn.softmax(tf.transpose(masked_image_scores(feature_maps, images, class_score)), axis=-1)
    return tf.nn.relu(weighted_sum(feature_maps, weights))


@method("scorecam_paper", "Score-CAM (paper)", "Wang et al. 2020, Score-CAM: Score-Weighted "
        "Visual Explanations for Convolutional Neural Networks, CVPR Workshops, eq. 2")
def scorecam_paper_map(feature_maps, images, class_probability, **_):
    """L^c = ReLU(sum_k p^c(x * H^k) A^k): Score-CAM with the paper's weights.

    The weight of map k is the class probability of the image masked by it
    (H^k: A^k upsampled and scaled to [0, 1]), as eq. 2 of the paper and its
    authors' code compute it; their baseline f(X_b) is left out, as in that
    code. Weights lie in [0, 1] and are not normalised across channels: a map
    whose masked image keeps the class probable counts, however many others
    do too. K forward passes, no gradients, as ``scorecam``.
    """
    weights = tf.transpose(masked_image_scores(feature_maps, images, class_probability))
    return tf.nn.relu(weighted_sum(feature_maps, weights))


def masked_image_scores(feature_maps, images, score):
    """score(x * H^k) for every channel k: (N, h, w, K), (N, H, W, C) -> (K, N).

    H^k is A^k upsampled to the image size and scaled to [0, 1]; one channel
    at a time over the whole batch (K forward passes), never all K at once.
    """
    size = tf.shape(images)[1:3]
    channels_first = tf.transpose(feature_maps, (3, 0, 1, 2))  # (K, N, h, w)

    def score_of_channel(channel):
        mask = normalize_tensor(upsample_tensor(channel, size))  # (N, H, W)
        return score(images * mask[..., tf.newaxis])

    return tf.map_fn(score_of_channel, channels_first,
                     fn_output_signature=tf.float32, parallel_iterations=1)


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
        "using Principal Components, IJCNN", class_specific=False)
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
    # Against the centred sum: the same covariance (the projection has mean 0 over positions),
    # but a large common offset in A (1e4 + a blob) no longer swamps it in float32 rounding.
    agreement = tf.reduce_sum(projection * tf.reduce_sum(centred, axis=-1), axis=1, keepdims=True)
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
