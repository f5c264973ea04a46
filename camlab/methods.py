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
from camlab.maps import INTERPOLATIONS, normalize_tensor, upsample_tensor


# ----------------------------------------------------------------------------
# The methods. Each receives tensors of one batch and returns maps (N, h, w):
#   feature_maps  A        (N, h, w, K)
#   gradients     dS^c/dA  (N, h, w, K)   (methods with gradients=True)
#   class_weights w^c      (N, K)         (methods with gap_head=True)
#   images        x        (N, H, W, C)
#   class_score   f(x')    a function: images (N, H, W, C) -> S^c (N,)
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
    alpha = tf.reduce_mean(gradients, axis=(1, 2))
    return tf.nn.relu(weighted_sum(feature_maps, alpha))


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
    g2 = tf.square(gradients)
    g3 = g2 * gradients
    spatial_sum = tf.reduce_sum(feature_maps, axis=(1, 2), keepdims=True)
    denominator = 2.0 * g2 + spatial_sum * g3
    safe = tf.where(denominator != 0.0, denominator, tf.ones_like(denominator))
    alpha = tf.where(denominator != 0.0, g2 / safe, tf.zeros_like(g2))
    weights = tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=(1, 2))
    return tf.nn.relu(weighted_sum(feature_maps, weights))


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
    array = np.asarray(images)
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
    array = array.astype("float32", copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))
        raise InputError(
            f"images contain {int(np.isnan(array).sum())} NaN and "
            f"{int(np.isinf(array).sum())} Inf values (in images {bad[:5].tolist()}"
            f"{' ...' if len(bad) > 5 else ''}). Fix or drop those images first."
        )
    return array


def class_indices(class_index, count, num_classes) -> np.ndarray:
    """Turn ``class_index`` into int32 (count,); -1 means "the predicted class"."""
    if class_index is None:
        return np.full(count, -1, dtype="int32")
    if isinstance(class_index, (bool, np.bool_)):
        raise InputError("class_index must be an int or a sequence of ints, not a bool.")
    if isinstance(class_index, numbers.Integral):
        indices = np.full(count, int(class_index), dtype="int64")
    else:
        indices = np.asarray(class_index)
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
        raise ClassIndexError(
            f"class_index {indices[bad][0]} is out of range: this model has "
            f"{num_classes} classes, so use 0 .. {num_classes - 1}."
        )
    return indices.astype("int32")


def _resolve_upsample(upsample):
    if upsample is True:
        return "bilinear"
    if upsample is False or upsample is None:
        return None
    if upsample in INTERPOLATIONS:
        return upsample
    raise InputError(f"upsample must be True, False or one of {INTERPOLATIONS}; got {upsample!r}.")


def default_batch_size(input_shape, gradients) -> int:
    """Images per compiled call: about 2 M input values (1 M with gradients)."""
    values = int(np.prod(input_shape))
    budget = (1 << 20) if gradients else (1 << 21)
    return int(max(1, min(1024, budget // values)))


class _Scorer:
    """The compiled pipeline of one model, layer, method and output options."""

    def __init__(self, anatomy, target, chosen, interpolation, normalize):
        self.anatomy, self.target, self.method = anatomy, target, chosen
        head = anatomy.head
        model = anatomy.model
        dense = head.dense.layer if head.dense is not None else None

        def class_scores_and_weights(captured):
            """Scores S (N, classes) and the Dense weights as (K, classes)."""
            if dense is not None:
                kernel = tf.cast(dense.kernel, tf.float32)
                scores = tf.matmul(tf.cast(captured["dense_input"], tf.float32), kernel)
                if dense.use_bias:
                    scores = scores + tf.cast(dense.bias, tf.float32)
            else:
                scores = tf.reshape(tf.cast(captured["scores"], tf.float32),
                                    (tf.shape(captured["scores"])[0], -1))
                kernel = None
            if head.binary_sigmoid:  # one sigmoid unit: class 0 is -z, class 1 is z
                scores = tf.concat([-scores, scores], axis=-1)
                kernel = None if kernel is None else tf.concat([-kernel, kernel], axis=-1)
            return scores, kernel

        def forward(images, tape=None):
            captured = {}

            def on_call(index, path, layer, args, outputs):
                if index == target.index:
                    if tape is not None:
                        tape.watch(outputs)
                    captured["feature_maps"] = outputs
                if head.dense is not None and index == head.dense.index:
                    captured["dense_input"] = graph._tensors(args)[0]
                if head.dense is None and index == head.scores.index:
                    captured["scores"] = outputs

            graph.walk(model, images, on_call)
            scores, kernel = class_scores_and_weights(captured)
            return captured["feature_maps"], scores, kernel

        def pick(classes, scores):
            chosen_class = tf.where(classes < 0, tf.argmax(scores, axis=-1, output_type=tf.int32), classes)
            return chosen_class, tf.gather(scores, chosen_class, batch_dims=1)

        def class_score_fn(chosen_class):
            def class_score(masked_images):
                _, scores, _ = forward(masked_images)
                return tf.gather(scores, chosen_class, batch_dims=1)

            return class_score

        height, width = anatomy.input_shape[:2]

        def run(images, classes):
            if chosen.gradients:
                with tf.GradientTape() as tape:
                    feature_maps, scores, kernel = forward(images, tape)
                    chosen_class, class_score = pick(classes, scores)
                gradients = tape.gradient(class_score, feature_maps)
                gradients = tf.cast(gradients, tf.float32)
            else:
                feature_maps, scores, kernel = forward(images)
                chosen_class, class_score = pick(classes, scores)
                gradients = None
            feature_maps = tf.cast(feature_maps, tf.float32)
            class_weights = None
            if chosen.gap_head:
                class_weights = tf.gather(tf.transpose(kernel), chosen_class)
            maps = chosen.compute(
                feature_maps=feature_maps,
                gradients=gradients,
                class_weights=class_weights,
                images=images,
                class_score=class_score_fn(chosen_class),
            )
            finite = tf.logical_and(
                tf.reduce_all(tf.math.is_finite(maps), axis=(1, 2)),
                tf.reduce_all(tf.math.is_finite(scores), axis=-1),
            )
            if interpolation is not None:
                maps = upsample_tensor(maps, (height, width), interpolation)
            if normalize:
                maps = normalize_tensor(maps)
            if head.activation == "sigmoid":
                probabilities = tf.sigmoid(scores)
            else:
                probabilities = tf.nn.softmax(scores, axis=-1)
            return maps, chosen_class, scores, probabilities, finite

        signature = [
            tf.TensorSpec((None,) + anatomy.input_shape, tf.float32),
            tf.TensorSpec((None,), tf.int32),
        ]
        self.run = tf.function(run, input_signature=signature, reduce_retracing=True)


_SCORERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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


def explain(model, images, method="cam", class_index=None, layer=None,
            upsample=True, normalize=True, batch_size=None) -> Explanation:
    """Explain ``images`` with one CAM method, in batches; see the module docstring.

    Args:
        model: a Keras 3 classifier (Sequential, functional or nested) whose
            input is (N, H, W, C). It is never modified.
        images: one image (H, W, C) or a batch (N, H, W, C), float, scaled as
            the model was trained.
        method: a name in ``camlab.METHODS``: "cam", "gradcam",
            "gradcam_plus_plus", "layercam", "scorecam".
        class_index: None (each image's predicted class), an int (that class
            for all), or a sequence with one class per image.
        layer: None (the layer feeding GAP, else the last conv layer), a layer
            name (nested ones too, e.g. "conv5_block3_out"), or a layer object.
        upsample: True (bilinear, to the image size), False (feature-map size),
            or an interpolation name ("bicubic", "nearest", ...).
        normalize: scale each map to [0, 1]; False keeps the raw map.
        batch_size: images per compiled call; default from the image size.

    Returns:
        ``Explanation`` with maps (N, H, W) and the predictions of the same pass.
    """
    if method not in METHODS:
        raise InputError(f"Unknown method {method!r}; camlab has {sorted(METHODS)}.")
    chosen = METHODS[method]
    batch = as_image_batch(images, graph.model_input_shape(model))
    anatomy = graph.read_model(model, batch.shape[1:])
    target = anatomy.feature_layer(layer, for_cam=chosen.gap_head)
    if chosen.gap_head and anatomy.head.dense is None:
        raise ModelError("CAM needs a Dense layer after the global average pool.")
    classes = class_indices(class_index, len(batch), anatomy.head.num_classes)
    interpolation = _resolve_upsample(upsample)

    key = (anatomy.input_shape, target.index, method, interpolation, bool(normalize))
    per_model = _SCORERS.setdefault(model, {})
    if key not in per_model:
        per_model[key] = _Scorer(anatomy, target, chosen, interpolation, bool(normalize))
    scorer = per_model[key]

    size = batch_size or default_batch_size(anatomy.input_shape, chosen.gradients)
    with _quiet_tracing():
        parts = [
            scorer.run(tf.constant(batch[start:start + size]),
                       tf.constant(classes[start:start + size]))
            for start in range(0, len(batch), size)
        ]
    maps, chosen_class, scores, probabilities, finite = (
        np.concatenate([p[i].numpy() for p in parts]) for i in range(5)
    )
    if not (finite.all() and np.isfinite(maps).all()):
        bad = np.flatnonzero(~finite)[:5].tolist()
        raise ModelError(
            f"The model produced NaN or Inf values for images {bad} (at layer "
            f"{target.name!r} or in its class scores); its weights may hold NaN "
            "(did training diverge?). Check np.isfinite(model.predict(images)).all()."
        )
    return Explanation(
        maps=maps.astype("float32", copy=False),
        class_index=chosen_class.astype("int64"),
        predicted=scores.argmax(axis=-1),
        probabilities=probabilities.astype("float32", copy=False),
        scores=scores.astype("float32", copy=False),
        method=method,
        layer=target.path,
    )


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
            batch_size=None):
    """Grad-CAM (Selvaraju et al. 2017) as float32 (N, H, W).

    ReLU(sum_k alpha_k^c A^k) with alpha_k^c the spatial mean of dS^c/dA^k,
    S^c the class score before softmax/sigmoid. Works on any conv layer
    (``layer`` may name one inside a nested backbone). On a GAP + Dense model
    the raw map equals ReLU(raw CAM) / (h * w). Arguments as in ``explain``.
    """
    return explain(model, images, "gradcam", class_index, layer, upsample, normalize,
                   batch_size).maps


def gradcam_plus_plus(model, images, class_index=None, layer=None, upsample=True,
                      normalize=True, batch_size=None):
    """Grad-CAM++ (Chattopadhay et al. 2018) as float32 (N, H, W).

    Grad-CAM with per-position weights alpha (the paper's closed form, eq. 19),
    computed from dS^c/dA without ever evaluating exp(S^c). Arguments as in
    ``explain``.
    """
    return explain(model, images, "gradcam_plus_plus", class_index, layer, upsample, normalize,
                   batch_size).maps


def layercam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
             batch_size=None):
    """Layer-CAM (Jiang et al. 2021) as float32 (N, H, W).

    ReLU(sum_k ReLU(dS^c/dA^k) * A^k): every position weighted by its own
    positive gradient, which keeps detail in earlier, larger layers.
    Arguments as in ``explain``.
    """
    return explain(model, images, "layercam", class_index, layer, upsample, normalize,
                   batch_size).maps


def scorecam(model, images, class_index=None, layer=None, upsample=True, normalize=True,
             batch_size=None):
    """Score-CAM (Wang et al. 2020) as float32 (N, H, W).

    Gradient-free: each channel's upsampled map masks the image, and the class
    score of each masked image weights that channel (softmax over channels).
    Costs K forward passes of the batch. Arguments as in ``explain``.
    """
    return explain(model, images, "scorecam", class_index, layer, upsample, normalize,
                   batch_size).maps
