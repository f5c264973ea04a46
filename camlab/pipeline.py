"""The pipeline every method shares: one forward (and one backward) pass per batch.

``explain`` does everything that is the same for all methods of ``camlab.METHODS``:

1. check the images and the class indices (``camlab.checks``);
2. read the model (``camlab.anatomy``) and run the batch through it once
   (``camlab.graph.walk``), keeping the feature maps A of one layer and the
   class scores S^c (the logits, before softmax or sigmoid);
3. for methods that need them, take dS^c/dA in the same pass (one backward pass);
4. call the method's map function (``camlab.methods``), which turns these into maps (N, h, w);
5. upsample the maps to the image size and normalise each to [0, 1].

Steps 2-5 run as one compiled ``tf.function`` per model, layer, method and
options, on batches of images. Every probability camlab reports, the metrics'
included (``class_probabilities``, ``model_probabilities``), comes from the same
forward pass: the class scores read from the model's head, then softmax or
sigmoid as the head does (equal to ``model.predict``). ``method_function``
makes the public ``camlab.<method>`` of each registered method.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import weakref

import numpy as np
import tensorflow as tf

from camlab import graph
from camlab.anatomy import read_model
from camlab.backprop import ReluRewriter
from camlab.checks import (
    as_image_batch,
    check_batch_size,
    check_method,
    check_modifier,
    class_indices,
    upsample_option,
)
from camlab.errors import InputError, ModelError
from camlab.forward import all_finite, forward, model_probabilities, pick, probabilities
from camlab.maps import normalize_tensor, upsample_tensor
from camlab.methods import METHODS

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



def default_batch_size(input_shape, gradients) -> int:
    """Images per compiled call: about 2 M input values (1 M with gradients)."""
    values = int(np.prod(input_shape))
    budget = (1 << 20) if gradients else (1 << 21)
    return int(max(1, min(1024, budget // values)))




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
        finite = tf.logical_and(all_finite(maps, (1, 2)), all_finite(scores, -1))
        if interpolation is not None:
            maps = upsample_tensor(maps, (height, width), interpolation)
        if normalize:
            maps = normalize_tensor(maps)
        return maps, chosen_class, scores, probabilities(head, scores), finite

    return run


def _input_gradient_pipeline(anatomy):
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
    batch, anatomy = read(model, images)
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


def _probability_pipeline(anatomy):
    """Class probabilities for one batch, from the same forward pass as every map."""
    of_images = model_probabilities(anatomy)

    def run(images, classes, rewriter):
        values = of_images(images)
        top = tf.argmax(values, axis=-1, output_type=tf.int32)
        return values, top, values, values, all_finite(values, -1)

    return run


def read(model, images):
    """Checked images float32 (N, H, W, C) and the model's ``Anatomy`` at their size."""
    batch = as_image_batch(images, graph.model_input_shape(model))
    return batch, read_model(model, batch.shape[1:])


def class_probabilities(model, images, batch_size=None) -> np.ndarray:
    """float32 (N, classes): the model's class probabilities, equal to ``model.predict``.

    From the pipeline's own forward pass (compiled once per model and input
    size), as every probability camlab reports.
    """
    check_batch_size(batch_size)
    batch, anatomy = read(model, images)
    pipeline = _compiled(anatomy, ("probabilities",), lambda: _probability_pipeline(anatomy), None)
    size = batch_size or default_batch_size(anatomy.input_shape, False)
    classes = np.full(len(batch), -1, dtype="int32")
    probabilities, *_ = _run_in_batches(pipeline, batch, classes, size, "in the class scores",
                                        model)
    return probabilities.astype("float32", copy=False)


def explain(model, images, method="cam", class_index=None, layer=None,
            upsample=True, normalize=True, batch_size=None, modifier=None) -> Explanation:
    """Explain ``images`` with one CAM method, in batches; see the module docstring.

    Args:
        model: a Keras 3 classifier (Sequential, functional or nested) whose
            input is (N, H, W, C). It is never modified.
        images: one image (H, W, C) or a batch (N, H, W, C), float, scaled as
            the model was trained.
        method: a name in ``camlab.METHODS`` (``sorted(camlab.METHODS)``).
        class_index: None (each image's predicted class), an int (that class
            for all), or a sequence with one class per image. A method whose
            map does not depend on the class (Eigen-CAM) refuses one.
        layer: None (the layer feeding GAP, else the last conv layer), a layer
            name (nested ones too, e.g. "conv5_block3_out"), a layer object, or
            an index into ``model.layers`` (as ``model.get_layer(index=...)``).
        upsample: True (bilinear, to the image size), False (feature-map size),
            or an interpolation name ("bicubic", "nearest", ...).
        normalize: scale each map to [0, 1]; False keeps the raw map.
        batch_size: images per compiled call; default from the image size.
        modifier: how gradients pass back through the ReLUs after ``layer``:
            None, "guided" or "relu" (keras-vis's ``backprop_modifier``; see
            ``camlab.backprop``). Methods without gradients refuse one.

    Returns:
        ``Explanation`` with maps (N, H, W) and the predictions of the same pass.
    """
    chosen = check_method(method, METHODS)
    check_modifier(modifier)
    check_batch_size(batch_size)
    if modifier is not None and not chosen.gradients:
        raise InputError(
            f"{chosen.title} uses no gradients, so a backprop modifier cannot change its "
            f"map; leave modifier=None (modifiers apply to "
            f"{', '.join(n for n, m in METHODS.items() if m.gradients)})."
        )
    if class_index is not None and not chosen.class_specific:
        raise InputError(
            f"{chosen.title}'s map does not depend on the class, so class_index would be "
            "ignored; leave class_index=None (the Explanation then reports each image's "
            "predicted class)."
        )
    batch, anatomy, classes = _prepare(model, images, class_index)
    target = anatomy.feature_layer(layer, for_cam=chosen.gap_head)  # CAM: GAP + Dense or an error
    interpolation = upsample_option(upsample)
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

_PUBLIC: dict = {}  # method name -> its public function


def method_function(name):
    """The public function of a registered method: ``camlab.<name>``, made once.

    ``camlab.gradcam(model, images, ...)`` is ``camlab.explain(model, images,
    "gradcam", ...).maps``: float32 (N, H, W), in [0, 1] unless
    ``normalize=False``. Its docstring is the method's equation and paper.
    """
    entry = check_method(name, METHODS)
    known = _PUBLIC.get(name)
    if known is not None and known.entry is entry:
        return known

    def maps(model, images, class_index=None, layer=None, upsample=True, normalize=True,
             batch_size=None, modifier=None):
        return explain(model, images, name, class_index, layer, upsample, normalize,
                       batch_size, modifier).maps

    notes = [
        "Needs a GlobalAveragePooling2D + Dense head; other models raise a ModelError "
        "(use gradcam)." if entry.gap_head else "",
        "modifier: None, \"guided\" or \"relu\" (camlab.backprop)." if entry.gradients
        else "No gradients: a modifier is refused.",
        "" if entry.class_specific else "The map does not depend on the class: class_index "
        "must be None.",
    ]
    maps.__name__ = maps.__qualname__ = name
    maps.__module__ = "camlab"
    maps.__doc__ = (
        f"{entry.title} ({entry.paper}) as float32 (N, H, W), in [0, 1] unless normalize=False.\n\n"
        f"{inspect.cleandoc(entry.compute.__doc__ or '')}\n\n"
        + " ".join(n for n in notes if n)
        + f" Arguments as in ``camlab.explain``; ``camlab.explain(model, images, {name!r})`` "
        "also returns the predictions of the same pass."
    )
    parameters = [p for p in inspect.signature(maps).parameters.values()
                  if entry.gradients or p.name != "modifier"]
    maps.__signature__ = inspect.Signature(parameters)
    maps.entry = entry
    _PUBLIC[name] = maps
    return maps
