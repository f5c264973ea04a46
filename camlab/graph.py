"""How camlab runs a Keras model: one layer call at a time, in inference mode.

Notebook 02 builds the CAM model by hand, as the Fashion-MNIST lab it comes from
does: ``keras.Model(model.inputs, [last_conv.output, model.outputs[0]])``. That
trick breaks on the course's own nested model (a ResNet50 used as one layer of
a Sequential, notebook 03): its inner layers are "not connected to inputs" of
the outer model (a Keras 3 trap). So camlab never builds sub-models. It *walks*
the model instead: it calls every layer itself, in the model's own order,
stepping into nested Sequential and functional models, and hands each call's
tensors to a callback (``walk``; ``walk_from`` runs again from one layer on).
Nothing in the caller's model is changed: no layer, activation, node or weight.

``camlab.anatomy`` records one walk and reads the model from it (its layers, its
head); ``camlab.pipeline`` walks it to compute maps and class scores.
"""

from __future__ import annotations

import collections
import inspect

import keras
import tensorflow as tf

from camlab.errors import KerasVersionError, ModelError

# The Keras releases camlab is tested with (the oldest, Colab's and the newest leg of
# `make matrix`; the README lists each leg). Keep in step with pyproject.toml's keras range.
TESTED_KERAS = ("3.1.0", "3.15.1")

def is_graph_model(layer) -> bool:
    """A Sequential or functional model: one whose layers camlab can walk."""
    if isinstance(layer, keras.Sequential):
        return True
    # Functional models (keras.Model(inputs, outputs), keras.applications) are
    # keras.Function graphs; subclassed models are not and stay opaque.
    return isinstance(layer, keras.Model) and isinstance(layer, keras.Function)


# camlab reads a functional model's graph through one private Keras method,
# keras.Function._run_through_graph(inputs, operation_fn=...): the only way to call
# each of its layers in turn without building sub-models (which breaks on nested
# models, see the module docstring). If a Keras release renames it, camlab must say
# so, not mistake every functional model for a subclassed one.
_GRAPH_RUNNER = "_run_through_graph"


def check_keras_seam() -> None:
    """Refuse, naming the tested Keras versions, a Keras whose inside camlab cannot read."""
    runner = getattr(keras.Function, _GRAPH_RUNNER, None)
    try:
        takes_operation_fn = runner is not None and "operation_fn" in inspect.signature(runner).parameters
    except (TypeError, ValueError):
        takes_operation_fn = False
    if not takes_operation_fn:
        raise KerasVersionError(
            f"This Keras ({keras.__version__}) has no keras.Function.{_GRAPH_RUNNER}"
            "(inputs, operation_fn=...), which camlab uses to run a functional model "
            f"layer by layer. camlab is tested with Keras {TESTED_KERAS[0]} to "
            f"{TESTED_KERAS[1]}: pip install 'keras>={TESTED_KERAS[0]},<={TESTED_KERAS[1]}', "
            "then restart the kernel."
        )


# The names camlab reads on a layer, private first (tests simulate a Keras that renamed them).
_TRAINING_FLAG = "_call_has_training_arg"
_SIGNATURE_PARAMETERS = "call_signature_parameters"  # public, newer than Keras 3.1


def takes_training(layer) -> bool:
    """Whether ``layer.call`` takes a ``training`` argument.

    Keras records this as ``layer._call_has_training_arg`` (private); where a
    release lacks it, camlab reads ``call``'s signature as Keras itself does, so
    that ``training=False`` is never silently dropped.
    """
    flag = getattr(layer, _TRAINING_FLAG, None)
    if isinstance(flag, bool):
        return flag
    parameters = getattr(layer, _SIGNATURE_PARAMETERS, None)
    if parameters is None:
        try:
            parameters = inspect.signature(layer.call).parameters
        except (TypeError, ValueError):
            return False
    return "training" in parameters


def tensors_in(structure) -> list:
    """The tensors in a nested structure of call arguments or outputs, in order."""
    return [t for t in tf.nest.flatten(structure) if tf.is_tensor(t)]


def _call(layer, *args, **kwargs):
    """Call one layer at inference time, as ``model.predict`` does.

    Keras passes ``training`` only to layers whose ``call`` takes it; those
    default to ``training=True`` in some layers (``RandomFlip``,
    ``RandomRotation``: augmentation inside the model, as in TensorFlow's
    transfer-learning tutorial), so it is always given explicitly.
    """
    if takes_training(layer):
        kwargs["training"] = False
    return layer(*args, **kwargs)


def walk(model, images, on_call):
    """Run ``model`` on ``images`` one layer call at a time, in inference mode.

    Args:
        model: a Sequential or functional Keras model (nested ones included).
        images: a float tensor (N, H, W, C).
        on_call: ``on_call(index, path, layer, args, outputs)``, called after
            every layer call (and after each nested model, with its outputs),
            in execution order; ``index`` counts those calls from 0. It returns
            ``None`` or a replacement for ``outputs``.

    Returns:
        The model's output tensor, computed exactly as ``model.predict(images)``
        would: every layer in inference mode (no dropout, no augmentation,
        BatchNorm with its moving statistics).
    """
    counter = [0]

    def finish(path, layer, args, outputs):
        index = counter[0]
        counter[0] += 1
        replaced = on_call(index, path, layer, args, outputs)
        return outputs if replaced is None else replaced

    def call_layer(path, layer, args, kwargs):
        return finish(path, layer, (args, kwargs), _call(layer, *args, **kwargs))

    return _traverse(model, images, call_layer, finish)


def _traverse(model, images, call_layer, finish):
    """The order of layer calls that ``walk`` and ``walk_from`` share.

    Steps into nested Sequential and functional models; every other layer
    (or graph operation) goes to ``call_layer(path, layer, args, kwargs)``,
    and each nested model's output to ``finish(path, model, (x,), y)``.
    """
    def run(layer, x, path):
        path = f"{path}/{layer.name}" if path else layer.name
        if isinstance(layer, keras.Sequential):
            y = x
            for inner in layer.layers:
                y = run(inner, y, path)
            return finish(path, layer, (x,), y)
        if is_graph_model(layer):
            # The model explained has one input and one output; a model nested in it may have
            # several outputs (a backbone's stages, as keras-hub's), of which it uses some.
            nested = layer is not model
            if len(layer.inputs) != 1 or (len(layer.outputs) != 1 and not nested):
                raise ModelError(
                    f"camlab explains models with one image input and one output; "
                    f"{layer.name!r} has {len(layer.inputs)} inputs and "
                    f"{len(layer.outputs)} outputs."
                )

            def operation_fn(op):
                def call(*args, **kwargs):
                    if is_graph_model(op):
                        extra = {k: v for k, v in kwargs.items() if v is not None}
                        if len(args) != 1 or extra:
                            raise ModelError(
                                f"camlab cannot step into nested model {op.name!r} "
                                f"called with extra arguments {sorted(extra)}."
                            )
                        return run(op, args[0], path)
                    return call_layer(f"{path}/{op.name}", op, args, kwargs)

                return call

            y = layer._run_through_graph([x], operation_fn=operation_fn)
            if len(layer.outputs) == 1 and isinstance(y, (list, tuple)):
                y = y[0]
            return finish(path, layer, (x,), y)
        return call_layer(path, layer, (x,), {})

    return run(model, images, "")


CACHE_LIMIT = 8  # entries kept per model: anatomies per input size, compiled pipelines


def cached_per_model(store, model, key, build, limit=CACHE_LIMIT):
    """``store[model][key]``, built by ``build()`` when missing; least recently used first out.

    ``store`` is a ``weakref.WeakKeyDictionary``: an entry lives only as long
    as its model, so its values must not refer to the model strongly (an
    ``Anatomy`` holds a weak reference). At most ``limit`` entries are kept
    per model: a model with a free input size is not given one entry per
    image size for ever.
    """
    per_model = store.get(model)
    if per_model is None:
        per_model = store[model] = collections.OrderedDict()
    if key in per_model:
        per_model.move_to_end(key)
        return per_model[key]
    value = build()
    per_model[key] = value
    while len(per_model) > limit:
        per_model.popitem(last=False)
    return value


def check_model(model) -> None:
    """Refuse, with a clear message, what camlab cannot walk."""
    if not isinstance(model, keras.Model):
        module = type(model).__module__
        if module.startswith(("tf_keras", "tensorflow.python.keras", "keras.engine")):
            raise ModelError(
                f"{type(model).__name__} {getattr(model, 'name', '')!r} is a Keras 2 model "
                f"(from {module.split('.')[0]}); camlab explains Keras 3 models. Build the same "
                "architecture with `import keras` (Keras 3) and load the weights into it "
                "(model.get_weights() / set_weights), or save it in the .keras format and "
                "load it with keras.saving.load_model."
            )
        raise ModelError(f"Expected a Keras model, got {type(model).__name__}.")
    if keras.backend.backend() != "tensorflow":
        raise ModelError(
            "camlab needs Keras 3 on the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); this one runs on {keras.backend.backend()!r}."
        )
    check_keras_seam()
    if not is_graph_model(model):
        raise ModelError(
            f"camlab cannot look inside subclassed model {model.name!r}: build it "
            "with keras.Sequential or the functional API (keras.Model(inputs, outputs))."
        )
    _refuse_channels_first(model)


def _layers_inside(model, path=""):
    """(path, layer) for every layer of ``model``, nested models' layers included."""
    for layer in model.layers:
        here = f"{path}/{layer.name}" if path else f"{model.name}/{layer.name}"
        yield here, layer
        if isinstance(layer, keras.Model) and is_graph_model(layer):
            yield from _layers_inside(layer, here)


def _data_format(layer):
    """A layer's ``data_format`` as configured, without running it."""
    value = getattr(layer, "data_format", None)
    if value is None:
        try:
            value = layer.get_config().get("data_format")
        except Exception:  # a custom layer whose get_config needs more than itself
            value = None
    return value


def _refuse_channels_first(model) -> None:
    """Refuse a channels_first model from its layers' configuration, before any layer runs.

    TensorFlow's CPU kernels do not run channels_first convolutions at all
    (``UnimplementedError``), so the check must not need to run one.
    """
    for path, layer in _layers_inside(model):
        if _data_format(layer) == "channels_first":
            raise ModelError(
                f"Layer {path!r} uses data_format='channels_first' (images "
                "(N, C, H, W)). camlab explains channels_last models, the Keras "
                "default, with images (N, H, W, C). Rebuild the model without "
                "data_format='channels_first' (or with 'channels_last') and load "
                "its weights: the weights are the same."
            )


def model_input_shape(model) -> tuple:
    """The (H, W, C) the model expects; unknown sizes are None."""
    check_model(model)
    try:
        shape = model.inputs[0].shape
    except (AttributeError, IndexError, TypeError, ValueError):
        shape = None
    if shape is None:
        raise ModelError(
            f"Model {getattr(model, 'name', model)!r} has no known input shape yet. "
            "Give it an Input (keras.Input(shape=(28, 28, 1))) or call it once on a batch."
        )
    if len(shape) != 4:
        raise ModelError(
            f"camlab explains image models with inputs (N, H, W, C); this model's "
            f"input shape is {tuple(shape)}."
        )
    return tuple(None if d is None else int(d) for d in shape[1:])


def walk_from(model, images, start, feature_maps, earlier, on_call):
    """Run ``model`` again from layer call ``start`` on, with new feature maps there.

    Ablation-CAM (notebook 05) needs the class scores of many edited copies
    of one layer's feature maps. Running the whole model for every copy would
    redo everything before that layer, which the edit cannot change; this
    walk reuses it. It visits the calls in ``walk``'s order (so ``start`` and
    the indices given to ``on_call`` are ``walk``'s and ``LayerCall.index``),
    but:

    - a call before ``start`` is not run: it gives ``earlier[index]``, its
      outputs from a ``walk`` of the same model on ``images``;
    - call ``start`` gives ``feature_maps``, copies * N rows, copy-major
      (row ``c * N + n`` belongs to image n);
    - every call after ``start`` runs on all copies, in inference mode. An
      argument that comes from before ``start`` (a skip connection around
      the layer, or the model's input) has N rows; it is tiled to
      copies * N rows where it is first used, once.

    Args:
        model: the model that ``earlier`` was recorded from.
        images: float tensor (N, H, W, C), the input of that walk.
        start: the index of the call whose outputs are replaced.
        feature_maps: (copies * N, ...) with that call's output shape.
        earlier: {index: outputs} for every call before ``start``, as
            ``walk`` passed on (after any replacement by its ``on_call``).
        on_call: as in ``walk``; called for ``start`` and every later call.

    Returns:
        The model's output for every copy, (copies * N, ...).
    """
    copies = tf.shape(feature_maps)[0] // tf.shape(images)[0]
    reused = {id(t): t for t in tensors_in(list(earlier.values())) + [images]}
    tiled = {}
    counter = [0]

    def tile(value):
        if not tf.is_tensor(value) or id(value) not in reused:
            return value
        if id(value) not in tiled:
            tiled[id(value)] = tf.tile(value, [copies] + [1] * (value.shape.rank - 1))
        return tiled[id(value)]

    def finish(path, layer, args, outputs):
        index = counter[0]
        counter[0] += 1
        if index < start:
            return earlier[index]
        if index == start:
            outputs = feature_maps
        replaced = on_call(index, path, layer, args, outputs)
        return outputs if replaced is None else replaced

    def call_layer(path, layer, args, kwargs):
        if counter[0] <= start:  # from the cache, or replaced: not run
            return finish(path, layer, (args, kwargs), None)
        args, kwargs = tf.nest.map_structure(tile, (args, kwargs))
        return finish(path, layer, (args, kwargs), _call(layer, *args, **kwargs))

    return _traverse(model, images, call_layer, finish)
