"""What an activation function computes, recognised by its values (notebooks 01, 04).

camlab must know whether a model's head ends in a softmax, a sigmoid or nothing
(to differentiate the class score, not the probability: Selvaraju et al. 2017,
sec. 3), and which functions are ReLUs (for the guided backprop rules). Names
do not tell: ``"softmax"``, ``keras.activations.softmax``, ``tf.nn.softmax``
(``softmax_v2``), ``lambda x: tf.nn.softmax(x)``, a ``Lambda`` layer or a
``keras.ops.softmax`` node are all one softmax. ``activation_kind`` runs the
function on a fixed probe and compares the values.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

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
