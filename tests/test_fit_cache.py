"""The test run's fit cache (tests/fit_cache.py): a repeated training run is replayed exactly,
anything else trains; and the notebooks' training cells are the same in both editions, which is
what makes replaying the instructor edition's run in the student edition sound."""

import importlib.util
import json
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from test_editions import code, source

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fit_cache_under_test", ROOT / "tests" / "fit_cache.py")
fit_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit_cache)


class Shell:
    """What `install` uses of IPython's shell: `events.register`."""

    def __init__(self):
        self.events, self.callbacks = self, []

    def register(self, event, callback):
        self.callbacks.append((event, callback))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.Model, "fit", keras.Model.fit)  # put back after the test
    monkeypatch.setenv(fit_cache.ENVIRONMENT, str(tmp_path))
    shell = Shell()
    fit_cache.install(shell)
    [(event, patch)] = shell.callbacks
    assert event == "pre_run_cell"
    patch(None)
    patched = keras.Model.fit
    assert patched.replays_test_runs
    patch(None)  # the next cell does not wrap it again
    assert keras.Model.fit is patched
    return tmp_path


def model_and_data(seed=0, units=8):
    """As a fresh kernel would build it: the layers' automatic names are part of the key."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    return model, rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)


def saved_runs(folder):
    return sorted(p.stem for p in folder.glob("*.json"))


def test_a_repeated_run_is_replayed_with_weights_optimizer_state_and_history(cache, capsys):
    first, x, y = model_and_data()
    trained = first.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert len(saved_runs(cache)) == 1
    second, _, _ = model_and_data()
    replayed = second.fit(x, y, epochs=2, batch_size=16, verbose=2)  # verbose is not in the key
    printed = capsys.readouterr().out
    assert "done by another kernel" in printed and "Epoch 2/2 (replayed)" in printed
    assert len(saved_runs(cache)) == 1
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first.optimizer.variables, second.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert set(replayed.history) == set(trained.history) and replayed.epoch == trained.epoch == [0, 1]
    for name, values in trained.history.items():
        np.testing.assert_allclose(replayed.history[name], values, rtol=0, atol=0)
    assert second.history is replayed and replayed.model is second
    np.testing.assert_array_equal(first.predict(x, verbose=0), second.predict(x, verbose=0))


@pytest.mark.parametrize("change", ["data", "labels", "epochs", "seed", "architecture", "learning rate"])
def test_any_difference_trains_again(cache, capsys, change):
    model, x, y = model_and_data()
    model.fit(x, y, epochs=1, verbose=0)
    seed, units, epochs = (1 if change == "seed" else 0), (9 if change == "architecture" else 8), 1
    model, x2, y2 = model_and_data(seed=0, units=units)
    if change == "seed":
        model, _, _ = model_and_data(seed=seed)  # other initial weights, the same data
    if change == "data":
        x2 = x2 + 1e-3
    if change == "labels":
        y2 = (y2 + 1) % 3
    if change == "epochs":
        epochs = 2
    if change == "learning rate":
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(x2, y2, epochs=epochs, verbose=0)
    assert "replayed" not in capsys.readouterr().out
    assert len(saved_runs(cache)) == 2


def test_what_it_cannot_compare_trains_and_is_not_saved(cache, capsys):
    model, x, y = model_and_data()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.History()])
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=1, verbose=0)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.History()])
    assert saved_runs(cache) == [] and "replayed" not in capsys.readouterr().out


def test_a_saved_run_is_complete_before_it_counts(cache):
    model, x, y = model_and_data()
    model.fit(x, y, epochs=1, verbose=0)
    [key] = saved_runs(cache)
    record = json.loads((cache / f"{key}.json").read_text())
    assert record["epoch"] == [0] and record["pid"] == os.getpid()
    assert (cache / f"{key}.npz").exists() and not list(cache.glob(f"*.{os.getpid()}.*"))


def test_this_run_installs_it_for_its_kernels():
    if os.environ.get("CAMLAB_TEST_NO_FIT_CACHE") == "1":
        pytest.skip("CAMLAB_TEST_NO_FIT_CACHE=1: every kernel trains")
    startup = pathlib.Path(os.environ["IPYTHONDIR"], "profile_default", "startup", "00-camlab-fit-cache.py")
    assert "fit_cache.py" in startup.read_text()
    assert pathlib.Path(os.environ[fit_cache.ENVIRONMENT]).is_dir()


def _cells_that_train(folder, name):
    return [source(cell) for cell in code(ROOT / folder, name) if ".fit(" in source(cell)]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_training_cells_are_the_same_in_both_editions(name):
    """The student edition replays the instructor edition's training: only sound if the cells
    (and so the models, data and settings they use) are the same."""
    assert _cells_that_train("student", name) == _cells_that_train("notebooks", name)
