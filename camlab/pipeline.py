"""The pipeline every method shares: one forward (and one backward) pass per batch.

``explain`` does everything that is the same for all methods of ``camlab.METHODS``:

1. check the images and the class indices (``camlab.checks``), and read them
   batch by batch: an array, or a ``tf.data.Dataset`` (``camlab.stream``);
2. read the model (``camlab.anatomy``) and run the batch through it once
   (``camlab.graph.walk``), keeping the feature maps A of one layer and the
   class scores S^c (the logits, before softmax or sigmoid);
3. for methods that need them, take dS^c/dA in the same pass (one backward pass);
4. call the method's map function (``camlab.methods``), which turns these into maps (N, h, w);
5. upsample the maps to the image size and normalise each to [0, 1].

Steps 2-5 (``camlab.passes``) run as one compiled ``tf.function`` per model,
layer, method and options, on batches of images: on one device, or split across
the replicas of a ``tf.distribute`` strategy (``camlab.replicas``). ``explain``
collects every batch; ``explain_stream`` hands them over one by one. Every probability camlab reports, the metrics'
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

from camlab import graph, replicas
from camlab.anatomy import read_model
from camlab.backprop import ReluRewriter
from camlab.checks import as_image_batch, check_batch_size, check_method, check_modifier, upsample_option
from camlab.errors import InputError, ModelError
from camlab.forward import sum_is_finite
from camlab.methods import METHODS
from camlab.passes import input_gradient_pipeline, map_pipeline, probability_pipeline
from camlab.stream import Classes, image_source

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


def call_size(source, batch_size, gradients):
    """Images per compiled call: ``batch_size`` if given; else a dataset's batches whole,
    as they come (None), as ``model.predict`` takes them; else ``default_batch_size``."""
    if batch_size or source.batched:
        return batch_size
    return default_batch_size(source.shape, gradients)




class _Compiled:
    """One compiled pipeline: a model at one input shape, a layer, a method, options.

    Holds the ``tf.function`` (traced once per batch shape) and the ReLU
    rewriter whose weight copies must be refreshed before every call.
    """

    def __init__(self, anatomy, run, modifier):
        self.rewriter = ReluRewriter(anatomy, modifier)
        signature = [tf.TensorSpec((None,) + anatomy.input_shape, tf.float32),
                     tf.TensorSpec((None,), tf.int32)]

        def checked(images, classes):  # a dataset's batch is checked here, in the same pass
            return (*run(images, classes, self.rewriter), sum_is_finite(images, (1, 2, 3)))

        self.run = tf.function(checked, input_signature=signature, reduce_retracing=True)

    def __call__(self, images, classes, strategy=None):
        """Images (B, H, W, C) and classes (B,) (NumPy or tensors) -> the five outputs
        and whether each image is finite, as NumPy."""
        self.rewriter.sync()
        return replicas.run(self.run, (images, classes), strategy=strategy)


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


def _prepare(model, images, class_index, count=None):
    """The images as a checked source (``camlab.stream``), the model's anatomy at
    their size, and the class of each image (``stream.Classes``)."""
    source = image_source(model, images, count)
    anatomy = read_model(model, source.shape)
    return source, anatomy, Classes(source, class_index, anatomy.head.num_classes, count)


def _run_in_batches(pipeline, source, classes, size, where, model, strategy=None):
    """Per batch of ``source``: call ``pipeline`` on slices of ``size`` images (None: the
    whole batch; on the strategy's replicas, if any) and yield (values, classes, scores,
    probabilities)."""
    total = 0
    for offset, batch, labels in source.batches(size):
        count = len(batch)
        chosen = classes.at(offset, count, labels)
        step = size or count
        with _quiet_tracing():
            parts = [pipeline(batch[start:start + step], chosen[start:start + step], strategy)
                     for start in range(0, count, step)]
        values, chosen_class, scores, probabilities, finite, images_finite = (
            parts[0][i] if len(parts) == 1 else np.concatenate([part[i] for part in parts])
            for i in range(6))
        if not images_finite.all():  # NaN or Inf (or a sum overflowing): checked as an array
            source.check(batch, offset)
        if not finite.all():
            bad = (offset + np.flatnonzero(~finite)[:5]).tolist()
            raise _not_finite_error(model, np.asarray(batch), bad, where)
        total = offset + count
        yield values, chosen_class.astype("int64"), scores, probabilities
    classes.finish(total)


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


def read(model, images):
    """Checked images float32 (N, H, W, C) and the model's ``Anatomy`` at their size."""
    batch = as_image_batch(images, graph.model_input_shape(model))
    return batch, read_model(model, batch.shape[1:])


def class_probabilities(model, images, batch_size=None, *, count=None, strategy=None) -> np.ndarray:
    """float32 (N, classes): the model's class probabilities, equal to ``model.predict``.

    From the pipeline's own forward pass (compiled once per model and input
    size), as every probability camlab reports. ``images``: an array or a
    ``tf.data.Dataset`` (``camlab.stream``; its labels are ignored), ``count``
    bounds a dataset; ``strategy`` as in ``explain``.
    """
    check_batch_size(batch_size)
    strategy = replicas.strategy_for(strategy)
    source, anatomy, _ = _prepare(model, images, None, count)
    pipeline = _compiled(anatomy, ("probabilities",), lambda: probability_pipeline(anatomy), None)
    size = call_size(source, batch_size, False)
    classes = Classes(source, None, anatomy.head.num_classes, labels=False)
    parts = _run_in_batches(pipeline, source, classes, size, "in the class scores", model,
                            strategy)
    return np.concatenate([part[3] for part in parts]).astype("float32", copy=False)


def explain(model, images, method="cam", class_index=None, layer=None, upsample=True,
            normalize=True, batch_size=None, modifier=None, *, count=None,
            strategy=None) -> Explanation:
    """Explain ``images`` with one CAM method, in batches; see the module docstring.

    Args:
        model: a Keras 3 classifier (Sequential, functional or nested) whose
            input is (N, H, W, C). It is never modified.
        images: one image (H, W, C) or a batch (N, H, W, C), float, scaled as
            the model was trained; or a ``tf.data.Dataset`` of such batches
            (B, H, W, C) or single images, alone or as (images, int labels),
            the labels choosing the classes (``camlab.stream``; docs/api.md,
            "Explaining a whole data set").
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
        batch_size: images per compiled call; default from the image size
            (a dataset of batches: each batch whole, as ``model.predict``).
        modifier: how gradients pass back through the ReLUs after ``layer``:
            None, "guided" or "relu" (keras-vis's ``backprop_modifier``; see
            ``camlab.backprop``). Methods without gradients refuse one.
        count: a dataset only: use its first ``count`` images (needed for an
            endless dataset).
        strategy: a ``tf.distribute.Strategy`` to split every batch across its
            replicas (``camlab.replicas``); None: the one whose scope is active, if any.

    Returns:
        ``Explanation`` with maps (N, H, W) and the predictions of the same pass,
        all in memory: for a large dataset see ``explain_stream``.
    """
    parts = list(explain_stream(model, images, method, class_index, layer, upsample, normalize,
                                batch_size, modifier, count=count, strategy=strategy))
    return Explanation(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("maps", "class_index", "predicted", "probabilities", "scores")),
                       method=method, layer=parts[0].layer)


def explain_stream(model, images, method="cam", class_index=None, layer=None, upsample=True,
                   normalize=True, batch_size=None, modifier=None, *, count=None, strategy=None):
    """``explain``, one batch at a time: an iterator of ``Explanation``s, one per batch.

    The arguments are ``explain``'s, checked now, before any image is read. A
    dataset gives one ``Explanation`` per batch of the dataset (single images:
    per ``batch_size`` images), an array one per ``batch_size`` images; only
    that batch's maps are in memory.
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
    strategy = replicas.strategy_for(strategy)
    source, anatomy, classes = _prepare(model, images, class_index, count)
    if source.labelled and not chosen.class_specific:
        raise InputError(f"{chosen.title}'s map does not depend on the class, so the dataset's "
                         "labels would be ignored; drop them: dataset.map(lambda x, y: x).")
    target = anatomy.feature_layer(layer, for_cam=chosen.gap_head)  # CAM: GAP + Dense or an error
    interpolation = upsample_option(upsample)
    pipeline = _compiled(
        anatomy, (target.index, method, interpolation, bool(normalize)),
        lambda: map_pipeline(anatomy, target, chosen, interpolation, bool(normalize)),
        modifier)
    size = call_size(source, batch_size, chosen.gradients)
    where = f"at layer {target.name!r} or in the class scores"
    return (Explanation(maps=maps.astype("float32", copy=False), class_index=chosen_class,
                        predicted=scores.argmax(axis=-1),
                        probabilities=probabilities.astype("float32", copy=False),
                        scores=scores.astype("float32", copy=False), method=method,
                        layer=target.path)
            for maps, chosen_class, scores, probabilities
            in _run_in_batches(pipeline, source, classes, size, where, model, strategy))


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
    source, anatomy, classes = _prepare(model, images, class_index)
    pipeline = _compiled(anatomy, ("input_gradients",),
                         lambda: input_gradient_pipeline(anatomy), modifier)
    size = call_size(source, batch_size, True)
    parts = _run_in_batches(pipeline, source, classes, size, "in the gradients", model)
    return np.concatenate([part[0] for part in parts])


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
             batch_size=None, modifier=None, *, count=None, strategy=None):
        return explain(model, images, name, class_index, layer, upsample, normalize,
                       batch_size, modifier, count=count, strategy=strategy).maps

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
