"""Several devices: one compiled call, split across the replicas of a ``tf.distribute`` strategy.

camlab rides TensorFlow's own engine: under a strategy (the user's
``strategy.scope()``, or ``strategy=`` given to ``explain`` or a metric), every
compiled call of the pipeline (``camlab.pipeline``) and of the metrics runs as
one ``strategy.run``: the batch of B images is cut into one equal part per
replica (ceil(B / R) images each; the last image is repeated to fill the last
part, and its copies are dropped), each replica runs the same compiled function
on its part, and ``strategy.gather`` puts the parts back in order. The numbers
are those of one device: the same float32 operations on each image.

``MirroredStrategy`` spreads the replicas over the GPUs of one machine;
``MultiWorkerMirroredStrategy`` over the GPUs of several machines (``TF_CONFIG``):
then every worker reads the whole batch (the same data in the same order on
every worker), runs its replicas' parts, and receives every result.
"""

from __future__ import annotations

import weakref

import tensorflow as tf

from camlab.errors import InputError

_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # function -> {strategy id: step}


def strategy_for(strategy=None):
    """The strategy to run on: ``strategy``, else the one whose scope is active, else None.

    None means one device, as without ``tf.distribute``. Inside a replica
    (``strategy.run``) there is nothing more to split: None too.
    """
    if strategy is not None:
        if not isinstance(strategy, tf.distribute.Strategy):
            raise InputError(f"strategy must be a tf.distribute.Strategy (e.g. "
                             f"tf.distribute.MirroredStrategy()) or None; got {strategy!r:.80}.")
        active = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
        if active is not None and active is not strategy:
            raise InputError("strategy= differs from the strategy whose scope is active; pass "
                             "the active one (tf.distribute.get_strategy()) or leave strategy=None.")
        return strategy
    if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
        return tf.distribute.get_strategy()
    return None


def _step(strategy, function):
    """Compiled: per-replica arguments -> ``function``'s outputs, gathered along the batch."""
    per_function = _STEPS.setdefault(function, {})
    step = per_function.get(id(strategy))
    if step is None or step[0]() is not strategy:
        # weak references: the cache must not keep the function or the strategy alive
        function_ref, strategy_ref = weakref.ref(function), weakref.ref(strategy)

        def run(parts, shared):
            on, called, dtypes = strategy_ref(), function_ref(), []

            def on_replica(*args):  # bools travel as int32: strategy.gather takes numbers
                outputs = tf.nest.flatten(called(*args, *shared))
                dtypes[:] = [output.dtype for output in outputs]
                return [tf.cast(o, tf.int32) if o.dtype == tf.bool else o for o in outputs]

            gathered = [on.gather(value, axis=0) for value in on.run(on_replica, args=parts)]
            return [tf.cast(g, dtype) for g, dtype in zip(gathered, dtypes)]

        step = per_function[id(strategy)] = (strategy_ref, tf.function(run, reduce_retracing=True))
    return step[1]


def run(function, batched, shared=(), strategy=None):
    """``function(*batched, *shared)`` as NumPy arrays, on ``strategy``'s replicas if given.

    batched: arrays or tensors of B rows each (a tensor goes in as it is, without
    a copy), cut along the rows between replicas; shared: tensors every replica
    receives whole. ``function`` (a ``tf.function``) returns tensors of B rows each.
    """
    if strategy is None:
        outputs = function(*(tf.convert_to_tensor(a) for a in batched), *shared)
        return tuple(output.numpy() for output in tf.nest.flatten(outputs))
    replicas = strategy.num_replicas_in_sync
    count = len(batched[0])
    part = -(-count // replicas)
    padded = [tf.concat([a, tf.repeat(a[-1:], part * replicas - count, axis=0)], axis=0)
              for a in (tf.convert_to_tensor(a) for a in batched)]

    def values(context):
        start = context.replica_id_in_sync_group * part
        return tuple(a[start:start + part] for a in padded)

    with strategy.scope():
        parts = strategy.experimental_distribute_values_from_function(values)
        outputs = _step(strategy, function)(tuple(parts), tuple(shared))
    return tuple(output.numpy()[:count] for output in tf.nest.flatten(outputs))
