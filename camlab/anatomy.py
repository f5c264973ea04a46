"""What camlab knows about a model: its layer calls, its feature layers and its head.

``read_model`` walks the model once (``camlab.graph.walk``) on one blank image
and records every call; ``Anatomy`` answers the questions the methods ask:
which layer is the last conv layer, does a GlobalAveragePooling2D + Dense head
sit on it (CAM needs one, Zhou et al. 2016), how many classes are there, and
is the head softmax, sigmoid or linear (read from what the activation
computes, not from its name).
"""

from __future__ import annotations

import dataclasses
import weakref

import keras
import numpy as np
import tensorflow as tf

from camlab.activations import activation_kind
from camlab.errors import ModelError
from camlab.graph import (
    is_graph_model,
    cached_per_model,
    check_model,
    model_input_shape,
    tensors_in,
    walk,
)

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

    def opaque_conv_calls(self) -> list:
        """Calls camlab cannot look inside that hold convolutions and output feature maps: a
        subclassed model used as a layer, a custom layer of conv blocks (4-D kernels inside)."""
        return [
            c
            for c in self.calls
            if len(c.output_shape) == 3 and not isinstance(c.layer, CONV_LAYERS)
            and not is_graph_model(c.layer)
            and any(len(w.shape) == 4 for w in getattr(c.layer, "weights", ()))  # ops have none
        ]

    def conv_like_calls(self) -> list:
        """Conv layers and the calls camlab cannot look inside that hold convolutions, in order."""
        return sorted(self.conv_calls() + self.opaque_conv_calls(), key=lambda c: c.index)

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
        convs = self.conv_like_calls()
        return convs[-1].name if convs else "conv2d"

    def feature_layer(self, layer=None, *, for_cam=False) -> LayerCall:
        """The call whose output gives the feature maps A^k.

        Default: the layer feeding a GAP + Dense head when there is one (so CAM
        and Grad-CAM explain the same maps), else the last conv layer whose
        output has more than one position (not a 1x1 classifier conv after a
        global pool, as MobileNet ends). A subclassed model or a custom layer
        that holds convolutions counts as a conv layer: camlab explains its
        output feature maps, as it cannot look inside.
        """
        convs = self.conv_like_calls()
        if layer is None and not convs:
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
            # The last conv, or block camlab cannot look inside, whose feature maps have more
            # than one position (not a 1x1 classifier conv after a global pool, as MobileNet ends).
            spatial = [c for c in convs if c.output_shape[0] * c.output_shape[1] > 1]
            return self.head.gap_input or (spatial or convs)[-1]
        call = self.find(layer)
        if len(call.outputs) > 1:
            raise ModelError(
                f"Layer {call.name!r} is a nested model with {len(call.outputs)} outputs; name "
                f"the layer inside it whose feature maps you want (e.g. {self._last_conv_name()!r})."
            )
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
        # Walk back over trailing activations (layers, Lambdas, keras.ops nodes) to the scoring layer.
        while (kind := self._activation_of(call)) is not None:
            activation = activation or kind
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

    def _activation_of(self, call: LayerCall) -> str | None:
        """What a call at the end of the model applies, if it is an activation: "softmax",
        "sigmoid", "linear", "relu"..., else None (a layer that computes scores).

        Activation and Softmax layers say so; a weightless call with one input of its own
        shape (a ``Lambda(tf.nn.softmax)``, a ``keras.ops.softmax(x)`` node of a functional
        model) is recognised by what it computes (``activation_kind``): a softmax written
        any way is a softmax, so camlab never differentiates the probability instead of
        the score, nor applies a softmax twice.
        """
        layer = call.layer
        if isinstance(layer, keras.layers.Softmax):
            return "softmax"
        if isinstance(layer, keras.layers.Activation):
            return activation_kind(layer.activation)
        if call.is_model or getattr(layer, "weights", None) or len(call.inputs) != 1:
            return None
        source = self.producer(call.inputs[0])
        if source is None or source.output_shape != call.output_shape or len(call.output_shape) != 1:
            return None
        kind = activation_kind(layer)
        return kind if kind in ("softmax", "sigmoid", "linear") else None

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
                is_model=is_graph_model(layer),
            )
        )

    blank = tf.zeros((1,) + input_shape, dtype="float32")
    walk(model, blank, on_call)
    return Anatomy(model, input_shape, records)
