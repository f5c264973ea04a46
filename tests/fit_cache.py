"""Test kernels only: a training run done once per test run, replayed where it repeats.

`make test` runs every notebook twice in fast mode: the instructor edition (notebooks/) and the
student edition (student/), and the browser test runs notebooks 02 and 03 (and 02's student
edition) once more in JupyterLab. The training cells are the same in both editions
(tests/test_fit_cache.py checks it), so the same model is trained from the same weights on the
same data with the same settings up to four times. Here, the first kernel of the run to train
it saves the result; a later kernel whose `fit` call matches (architecture, initial weights,
compile settings, data, every argument of `fit` but `verbose`) loads it instead of training
again: the final weights, the optimizer's state and the history. It prints what it did.

What a replay does not check: that training the model works in that kernel. The kernel that
trained it did check that, with the same code, earlier in the same run.

conftest.py (at the root) installs it: it makes an IPython profile whose startup file loads this file
(``IPYTHONDIR``) and a folder for the saved runs (``CAMLAB_TEST_FIT_CACHE``), both under the
test run's temporary folder, and every kernel started by the run inherits the environment.
Learners' kernels never see it.
"""

import hashlib
import inspect
import json
import os
import pathlib
import sys

import numpy as np

ENVIRONMENT = "CAMLAB_TEST_FIT_CACHE"


class Uncacheable(Exception):
    """An argument this cache cannot compare (a dataset, a generator, a callback)."""


def digest(value, hasher):
    """Feed `value` to `hasher`; arrays by dtype, shape and bytes; refuses what it cannot compare."""
    if isinstance(value, np.ndarray):
        hasher.update(f"array {value.dtype.str} {value.shape}".encode())
        hasher.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        hasher.update(f"{type(value).__name__} {len(value)}".encode())
        for item in value:
            digest(item, hasher)
    elif isinstance(value, dict):
        hasher.update(f"dict {len(value)}".encode())
        for name in sorted(value, key=str):
            digest(str(name), hasher)
            digest(value[name], hasher)
    elif value is None or isinstance(value, (bool, int, float, str, np.generic)):
        hasher.update(f"{type(value).__name__} {value!r}".encode())
    else:
        raise Uncacheable(type(value).__name__)


def key_of(model, arguments):
    """One hex key for a `fit` call: the model as built and compiled, and the call's arguments."""
    hasher = hashlib.blake2b(digest_size=20)
    digest(model.to_json(), hasher)
    digest(json.dumps(model.get_compile_config(), sort_keys=True, default=repr), hasher)
    digest(json.dumps(model.optimizer.get_config(), sort_keys=True, default=repr), hasher)
    digest(model.get_weights(), hasher)
    digest({name: value for name, value in arguments.items() if name != "verbose"}, hasher)
    return hasher.hexdigest()


def save(folder, key, model, history):
    """Weights, optimizer state and history; the .json is written last, so its presence means done."""
    arrays = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"optimizer_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
    partial = folder / f"{key}.{os.getpid()}.npz"
    np.savez(partial, **arrays)
    os.replace(partial, folder / f"{key}.npz")
    record = {"history": {name: [float(v) for v in values] for name, values in history.history.items()},
              "params": {name: value for name, value in (history.params or {}).items()
                         if isinstance(value, (int, float, str, type(None)))},
              "epoch": list(history.epoch), "pid": os.getpid()}
    partial = folder / f"{key}.{os.getpid()}.json"
    partial.write_text(json.dumps(record))
    os.replace(partial, folder / f"{key}.json")


def replay(folder, key, model, keras):
    """Load a saved run into `model` and return its History, as `fit` would."""
    record = json.loads((folder / f"{key}.json").read_text())
    with np.load(folder / f"{key}.npz") as arrays:
        weights = [arrays[f"weight_{i}"] for i in range(len(model.get_weights()))]
        model.optimizer.build(model.trainable_variables)
        optimizer = [arrays[f"optimizer_{i}"] for i in range(len(model.optimizer.variables))]
    model.set_weights(weights)
    for variable, value in zip(model.optimizer.variables, optimizer):
        variable.assign(value)
    history = keras.callbacks.History()
    history.set_model(model)
    history.history, history.epoch, history.params = record["history"], record["epoch"], record["params"]
    model.history = history
    print(f"[test run] this training run was done by another kernel of this test run (process "
          f"{record['pid']}): its final weights, optimizer state and history are loaded instead.")
    for epoch in history.epoch:
        values = " - ".join(f"{name}: {values[epoch]:.4f}" for name, values in history.history.items())
        print(f"Epoch {epoch + 1}/{len(history.epoch)} (replayed) - {values}")
    return history


def install(shell):
    """Patch `keras.Model.fit` before each cell once Keras is imported (not before: camlab
    imports TensorFlow first, quietly)."""
    folder = pathlib.Path(os.environ[ENVIRONMENT])

    def patch(*_):
        keras = sys.modules.get("keras")
        if keras is None or getattr(keras.Model.fit, "replays_test_runs", False):
            return
        original = keras.Model.fit
        signature = inspect.signature(original)

        def fit(self, *args, **kwargs):
            arguments = signature.bind(self, *args, **kwargs).arguments
            arguments.pop("self")
            arguments.update(arguments.pop("kwargs", {}))
            try:
                key = key_of(self, arguments)
            except Exception:  # Uncacheable, or a Keras without one of the calls above: train
                return original(self, *args, **kwargs)
            if (folder / f"{key}.json").exists():
                return replay(folder, key, self, keras)
            history = original(self, *args, **kwargs)
            save(folder, key, self, history)
            return history

        fit.replays_test_runs = True
        keras.Model.fit = fit

    shell.events.register("pre_run_cell", patch)
