"""How camlab reads a Keras model: a flat list of layer calls, and its head.

Notebook 01 builds the CAM model by hand, as seed 002 does:
``keras.Model(model.inputs, [last_conv.output, model.outputs[0]])``. That trick
breaks on the course's own nested model (a ResNet50 used as one layer of a
Sequential): its inner layers are "not connected to inputs" of the outer model
(FIELD_NOTES, Keras 3 traps). So camlab never builds sub-models. It *walks* the
model instead: it calls every layer itself, in the model's own order, stepping
into nested Sequential and functional models, and keeps the tensors it needs
(the feature maps, the input of the last Dense layer). Nothing in the caller's
model is changed: no layer, activation, node or weight.

``read_model`` walks the model once on one blank image and records every call;
``Anatomy`` answers the questions the methods ask: which layer is the last conv
layer, does a GlobalAveragePooling2D + Dense head sit on it (CAM needs one),
how many classes are there, and is the head softmax, sigmoid or linear.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import weakref

import keras
import numpy as np
import tensorflow as tf

from camlab.errors import KerasVersionError, ModelError

# The Keras releases camlab is tested with (the oldest, Colab's and the newest leg of
# `make matrix`; the README lists each leg). Keep in step with pyproject.toml's keras range.
TESTED_KERAS = ("3.1.0", "3.15.1")

CONV_LAYERS = (
    keras.layers.Conv2D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Conv2DTranspose,
)
# Layers that are the identity at inference time: allowed between GAP and Dense.
_PASS_THROUGH = (
    keras.layers.Dropout,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
)


def _is_graph_model(layer) -> bool:
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
        if _is_graph_model(layer):
            if len(layer.inputs) != 1 or len(layer.outputs) != 1:
                raise ModelError(
                    f"camlab explains models with one image input and one output; "
                    f"{layer.name!r} has {len(layer.inputs)} inputs and "
                    f"{len(layer.outputs)} outputs."
                )

            def operation_fn(op):
                def call(*args, **kwargs):
                    if _is_graph_model(op):
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
            if isinstance(y, (list, tuple)):
                y = y[0]
            return finish(path, layer, (x,), y)
        return call_layer(path, layer, (x,), {})

    return run(model, images, "")


@dataclasses.dataclass(frozen=True)
class LayerCall:
    """One call of one layer, as recorded by ``read_model``.

    ``path`` names it through the nesting, e.g. ``"sequential/resnet50/conv5_block3_out"``;
    ``inputs`` and ``outputs`` are ids of the tensors it read and wrote
    (only meaningful inside one recording); ``output_shape`` has the batch
    dimension dropped.
    """

    index: int
    path: str
    layer_ref: object  # weakref.ref to the layer: caches must not keep models alive
    inputs: tuple
    outputs: tuple
    output_shape: tuple
    is_model: bool

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def layer(self):
        return self.layer_ref()


@dataclasses.dataclass(frozen=True)
class Head:
    """The end of a classifier, read backwards from its output.

    ``dense``: the last Dense layer's call (class scores are computed from its
    input as ``x @ kernel + bias``, so its softmax or sigmoid is never in the
    way), or None when the model does not end in Dense; then ``scores`` is the
    call whose output camlab takes as the class scores. ``activation`` is what
    turns scores into probabilities: "softmax", "sigmoid" or "linear".
    ``gap_input``: the call whose 4-D output a GlobalAveragePooling2D averages
    straight into ``dense`` (the CAM architecture of Zhou et al. 2016), or None.
    ``num_outputs``: units of the last layer; a single sigmoid unit is
    explained as two classes (0 and 1).
    """

    dense: LayerCall | None
    scores: LayerCall
    activation: str
    gap_input: LayerCall | None
    num_outputs: int

    @property
    def binary_sigmoid(self) -> bool:
        return self.activation == "sigmoid" and self.num_outputs == 1

    @property
    def num_classes(self) -> int:
        return 2 if self.binary_sigmoid else self.num_outputs


# A probe that tells activations apart by what they compute: negative, zero,
# small and large values (above 6, so that relu6 is not taken for a ReLU).
_PROBE = np.array([[-7.0, -1.5, 0.0, 0.25, 2.0, 7.5], [3.0, -0.5, 1.0, -4.0, 0.5, 9.0]], "float32")
_KNOWN = {
    "softmax": lambda x: np.exp(x - x.max(-1, keepdims=True))
    / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
}
_KINDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def activation_kind(fn) -> str:
    """"softmax", "sigmoid", "linear", "relu" or "other": what ``fn`` computes.

    Recognised by its values on a fixed probe, not by its name, so that
    ``"softmax"``, ``keras.activations.softmax``, ``tf.nn.softmax`` (named
    ``softmax_v2``) and ``lambda x: tf.nn.softmax(x)`` are all a softmax.
    None is linear (Keras's default).
    """
    if fn is None:
        return "linear"
    try:
        return _KINDS[fn]
    except (KeyError, TypeError):
        pass
    try:
        values = np.asarray(keras.ops.convert_to_numpy(fn(tf.constant(_PROBE))), "float32")
    except Exception:  # an activation that cannot run on a plain 2-D tensor
        kind = "other"
    else:
        kind = next((name for name, reference in _KNOWN.items()
                     if values.shape == _PROBE.shape
                     and np.allclose(values, reference(_PROBE.astype("float64")), atol=1e-5)),
                    "other")
    try:
        _KINDS[fn] = kind
    except TypeError:
        pass
    return kind


class Anatomy:
    """What camlab knows about one model at one input shape.

    Built by ``read_model``; holds the recorded layer calls, the input shape
    (H, W, C), and the head. Its methods find layers by name or object and
    pick the default layer of each method.
    """

    def __init__(self, model, input_shape, calls):
        # A weak reference: camlab's caches hold anatomies, and must not keep
        # a model alive after its owner lets it go.
        self._model = weakref.ref(model)
        self.model_name = model.name
        self.input_shape = tuple(input_shape)
        self.calls = calls
        self._producer = {}
        for call in calls:
            for tensor_id in call.outputs:
                # Nested models re-emit their last layer's tensor: keep the leaf.
                self._producer.setdefault(tensor_id, call)
        self.head = self._read_head()

    @property
    def model(self):
        model = self._model()
        if model is None:
            raise ModelError(f"Model {self.model_name!r} no longer exists.")
        return model

    # -- layers ---------------------------------------------------------
    def producer(self, tensor_id) -> LayerCall | None:
        return self._producer.get(tensor_id)

    def conv_calls(self) -> list:
        return [
            c
            for c in self.calls
            if isinstance(c.layer, CONV_LAYERS) and len(c.output_shape) == 3
        ]

    def feature_map_calls(self) -> list:
        """Every call whose output is a 4-D feature map (N, h, w, K)."""
        return [c for c in self.calls if len(c.output_shape) == 3 and not c.is_model]

    def find(self, layer) -> LayerCall:
        """The call of ``layer``: a layer object, a name, or a nested path."""
        if isinstance(layer, str):
            hits = [
                c for c in self.calls if c.path == layer or c.path.endswith("/" + layer)
            ]
            if not hits:
                names = [c.name for c in self.feature_map_calls()][-8:]
                raise ModelError(
                    f"No layer named {layer!r} in model {self.model_name!r}. "
                    f"Layers with 4-D feature maps near the end: {names}. "
                    "Use one of these names, or pass the layer object."
                )
            layers = {id(c.layer) for c in hits}
            if len(layers) > 1:
                raise ModelError(
                    f"The name {layer!r} matches several layers: "
                    f"{[c.path for c in hits]}. Pass the full path or the layer object."
                )
            return hits[-1]
        if isinstance(layer, (bool, np.bool_)) or not (
                isinstance(layer, (int, np.integer)) or isinstance(layer, keras.layers.Layer)):
            raise ModelError(
                "layer must be None, a layer name (str), an index into model.layers "
                f"(int), or a layer object; got {type(layer).__name__}."
            )
        if isinstance(layer, (int, np.integer)):
            layers = self.model.layers
            if not -len(layers) <= int(layer) < len(layers):
                raise ModelError(
                    f"layer={int(layer)} is out of range: model {self.model_name!r} has "
                    f"{len(layers)} layers (model.layers[0 .. {len(layers) - 1}])."
                )
            layer = layers[int(layer)]  # as model.get_layer(index=...) does
        if isinstance(layer, keras.layers.InputLayer):
            raise ModelError(
                f"Layer {layer.name!r} is the model's input, not a conv layer: it has "
                "no feature maps to weigh. Pick a conv layer, e.g. "
                f"{self._last_conv_name()!r}, or leave layer=None."
            )
        hits = [c for c in self.calls if c.layer is layer]
        if not hits:
            raise ModelError(
                f"Layer {getattr(layer, 'name', layer)!r} is not part of model "
                f"{self.model_name!r}. Pass a layer of this model (model.layers, or "
                "a name such as " + repr(self._last_conv_name()) + ")."
            )
        return hits[-1]

    def _last_conv_name(self) -> str:
        convs = self.conv_calls()
        return convs[-1].name if convs else "conv2d"

    def feature_layer(self, layer=None, *, for_cam=False) -> LayerCall:
        """The call whose output gives the feature maps A^k.

        Default: the layer feeding a GAP + Dense head when there is one (so CAM
        and Grad-CAM explain the same maps), else the last conv layer.
        """
        if layer is None and not self.conv_calls():
            raise ModelError(
                f"Model {self.model_name!r} has no convolutional layer. Class "
                "activation maps weight the 4-D feature maps (N, H, W, C) of a "
                "conv layer; this model has none to explain."
            )
        if for_cam:
            gap_input = self.head.gap_input
            if gap_input is None:
                raise ModelError(
                    "CAM needs a conv layer that feeds GlobalAveragePooling2D and "
                    "then one Dense layer (Zhou et al. 2016); model "
                    f"{self.model_name!r} ends in {self._ending()}. "
                    "Use camlab.gradcam(model, images), which explains any conv "
                    "layer of any architecture."
                )
            if layer is not None and self.find(layer).outputs[:1] != gap_input.outputs[:1]:
                raise ModelError(
                    f"CAM is defined on the feature maps that feed the global "
                    f"average pool, here layer {gap_input.name!r}, not on "
                    f"{self.find(layer).name!r}. Leave layer=None for CAM, or use "
                    "camlab.gradcam(model, images, layer=...) for other layers."
                )
            return gap_input
        if layer is None:
            return self.head.gap_input or self.conv_calls()[-1]
        call = self.find(layer)
        if len(call.output_shape) != 3:
            raise ModelError(
                f"Layer {call.name!r} outputs shape (N, {', '.join(map(str, call.output_shape))}); "
                "class activation maps need 4-D feature maps (N, H, W, C). "
                f"Pick a conv layer, e.g. {self._last_conv_name()!r}."
            )
        return call

    def _ending(self) -> str:
        tail = [c.name + f" ({type(c.layer).__name__})" for c in self.calls if not c.is_model]
        return " -> ".join(tail[-3:])

    # -- head -----------------------------------------------------------
    def _read_head(self) -> Head:
        last = self.calls[-1]
        if len(last.output_shape) != 1:
            raise ModelError(
                f"Model {self.model_name!r} outputs shape (N, "
                f"{', '.join(map(str, last.output_shape))}). camlab explains image "
                "classifiers, whose output is one score per class, (N, num_classes); "
                "a segmentation-style or other multi-dimensional output has no class "
                "to explain. Explain a classifier, or a model that ends in a "
                "Dense(num_classes) layer."
            )
        output_id = last.outputs[0]
        call = self.producer(output_id)
        activation = None
        # Walk back over trailing activation layers to the scoring layer.
        while isinstance(call.layer, (keras.layers.Activation, keras.layers.Softmax)):
            if activation is None:
                if isinstance(call.layer, keras.layers.Softmax):
                    activation = "softmax"
                else:
                    activation = activation_kind(call.layer.activation)
            previous = self.producer(call.inputs[0]) if call.inputs else None
            if previous is None:
                break
            call = previous
        num_outputs = int(call.output_shape[-1]) if call.output_shape else 1
        if isinstance(call.layer, keras.layers.Dense):
            own = activation_kind(call.layer.activation)
            if own in ("softmax", "sigmoid"):
                activation = own
            elif own != "linear":
                # Dense with relu/tanh...: its output is what we can score.
                return Head(None, call, activation or "linear", None, num_outputs)
            activation = activation or "linear"
            return Head(call, call, activation, self._gap_input(call), num_outputs)
        if activation not in ("softmax", "sigmoid", "linear"):
            activation = "linear"
        return Head(None, call, activation, None, num_outputs)

    def _gap_input(self, dense: LayerCall) -> LayerCall | None:
        call = self.producer(dense.inputs[0]) if dense.inputs else None
        while call is not None and isinstance(call.layer, _PASS_THROUGH):
            call = self.producer(call.inputs[0])
        if call is None or not isinstance(call.layer, keras.layers.GlobalAveragePooling2D):
            return None
        if getattr(call.layer, "keepdims", False) or getattr(call.layer, "data_format", "channels_last") != "channels_last":
            return None
        source = self.producer(call.inputs[0])
        if source is None or len(source.output_shape) != 3:
            return None
        return source


_ANATOMIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
CACHE_LIMIT = 8  # entries kept per model: input sizes here, compiled pipelines in methods


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
        raise ModelError(f"Expected a Keras model, got {type(model).__name__}.")
    if keras.backend.backend() != "tensorflow":
        raise ModelError(
            "camlab needs Keras 3 on the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); this one runs on {keras.backend.backend()!r}."
        )
    check_keras_seam()
    if not _is_graph_model(model):
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
        if isinstance(layer, keras.Model) and _is_graph_model(layer):
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


def read_model(model, input_shape=None) -> Anatomy:
    """Walk ``model`` once on one blank image and return its ``Anatomy``.

    Args:
        model: a Keras 3 Sequential or functional model, possibly with nested
            models as layers (the course's ResNet50-in-a-Sequential).
        input_shape: (H, W, C) to trace at; default the model's input shape.

    Cached per model and input shape; the model is not modified.
    """
    if input_shape is None:
        input_shape = model_input_shape(model)
    else:
        check_model(model)
    if any(d is None for d in input_shape):
        raise ModelError(
            f"Model {model.name!r} accepts any image size {tuple(input_shape)}; "
            "pass input_shape=(H, W, C) to read it at one size."
        )
    input_shape = tuple(int(d) for d in input_shape)
    return cached_per_model(_ANATOMIES, model, input_shape,
                            lambda: _record(model, input_shape))


def _record(model, input_shape) -> Anatomy:
    """Walk ``model`` once on a blank image of ``input_shape`` and read what it does."""
    records, keep = [], []

    def on_call(index, path, layer, args, outputs):
        ins, outs = tensors_in(args), tensors_in(outputs)
        keep.extend(ins + outs)  # keep ids unique while recording
        shape = tuple(outs[0].shape[1:]) if outs else ()
        records.append(
            LayerCall(
                index=index,
                path=path,
                layer_ref=weakref.ref(layer),
                inputs=tuple(id(t) for t in ins),
                outputs=tuple(id(t) for t in outs),
                output_shape=tuple(int(d) for d in shape),
                is_model=_is_graph_model(layer),
            )
        )

    blank = tf.zeros((1,) + input_shape, dtype="float32")
    walk(model, blank, on_call)
    return Anatomy(model, input_shape, records)


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
