"""Backpropagation modifiers: how gradients pass back through ReLUs (notebook 04).

The MNIST article notebook 01 comes from (docs/sources.md) calls keras-vis with ``backprop_modifier`` None, ``'guided'`` or
``'relu'``. Each rule changes only the *backward* pass through every ReLU,
never the forward values. With z the ReLU's input and g the gradient arriving
from above:

- None (plain gradient):  dz = g * [z > 0]
- "guided" (guided backpropagation, Springenberg et al. 2015):
                          dz = g * [z > 0] * [g > 0]
- "relu" (keras-vis's rectified rule, as in Zeiler & Fergus's deconvnet):
                          dz = g * [g > 0]

camlab applies a rule in a *copy of the computation*: while it walks the model
(``camlab.graph.walk``) it swaps each ReLU for one with the custom gradient.
Standalone ReLU layers (``keras.layers.ReLU``, ``Activation("relu")``) and
``keras.ops.relu`` calls in a functional graph are recomputed from their input; a layer with a built-in ReLU (``Conv2D(...,
activation="relu")``) is recomputed by a twin of that layer without the
activation, which holds a copy of the layer's weights, refreshed before every
use. The caller's model is never edited.
"""

from __future__ import annotations

import weakref

import keras
import tensorflow as tf

from camlab.activations import activation_kind
from camlab.checks import check_modifier


@tf.custom_gradient
def guided_relu(z):
    """ReLU whose gradient passes only where both the input and the gradient are positive."""
    def backward(g):
        return g * tf.cast(z > 0, g.dtype) * tf.cast(g > 0, g.dtype)

    return tf.nn.relu(z), backward


@tf.custom_gradient
def rectified_relu(z):
    """ReLU whose gradient passes wherever the gradient is positive (keras-vis 'relu')."""
    def backward(g):
        return g * tf.cast(g > 0, g.dtype)

    return tf.nn.relu(z), backward


RULES = {"guided": guided_relu, "relu": rectified_relu}


def _is_plain_relu(function) -> bool:
    """"relu", keras.activations.relu, tf.nn.relu, ...: recognised by what it computes."""
    return function is not None and activation_kind(function) == "relu"


def _standalone_relu(layer) -> bool:
    if _op_relu(layer):
        return True
    if isinstance(layer, keras.layers.ReLU):
        return (layer.max_value is None and float(layer.negative_slope) == 0.0
                and float(layer.threshold) == 0.0)
    return isinstance(layer, keras.layers.Activation) and _is_plain_relu(layer.activation)


def _op_relu(operation) -> bool:
    """``keras.ops.relu(x)`` written in a functional model: a graph node of Keras's Relu op."""
    kind = type(operation)
    return kind.__name__ == "Relu" and kind.__module__.startswith("keras.") and not isinstance(
        operation, keras.layers.Layer)


def _built_in_relu(layer) -> bool:
    return (not isinstance(layer, (keras.layers.Activation, keras.Model))
            and _is_plain_relu(getattr(layer, "activation", None)))


_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _twin(layer, input_shape):
    """The same layer without its activation, with its own copy of the weights."""
    twin = _TWINS.get(layer)
    if twin is None:
        config = dict(layer.get_config(), activation="linear", name=layer.name + "_linear_twin")
        twin = type(layer).from_config(config)
        twin.build(input_shape)
        _TWINS[layer] = twin
    return twin


class ReluRewriter:
    """Swaps every ReLU of a model for one with a modified gradient, during a walk.

    ``on_call`` is a ``camlab.graph.walk`` hook; ``sync()`` copies the current
    weights into the twins and must run before each compiled call.
    """

    def __init__(self, anatomy, modifier):
        self.rule = RULES[check_modifier(modifier)] if modifier else None
        self.twins = []
        if self.rule is None:
            return
        shapes = {}
        for call in anatomy.calls:
            if _built_in_relu(call.layer) and not call.is_model:
                source = anatomy.producer(call.inputs[0]) if call.inputs else None
                shape = (None,) + (source.output_shape if source else anatomy.input_shape)
                shapes[id(call.layer)] = (call.layer, shape)
        self.twins = [(layer, _twin(layer, shape)) for layer, shape in shapes.values()]
        self._twin_of = {id(layer): twin for layer, twin in self.twins}

    def sync(self):
        for layer, twin in self.twins:
            for copy, original in zip(twin.weights, layer.weights):
                copy.assign(original)

    def on_call(self, index, path, layer, args, outputs):
        if self.rule is None or isinstance(layer, keras.Model):
            return None
        if _standalone_relu(layer):
            return self.rule(_first_tensor(args))
        twin = self._twin_of.get(id(layer))
        if twin is not None:
            return self.rule(twin(_first_tensor(args)))
        return None


def _first_tensor(args):
    return [t for t in tf.nest.flatten(args) if tf.is_tensor(t)][0]
