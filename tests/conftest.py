"""Shared fixtures: tiny models whose maps can be checked by hand."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def _randomize(model, seed):
    """Give every weight a distinct, non-trivial value (biases too)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


def tiny_backbone(input_shape=(8, 8, 3), name="backbone"):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_b")(x)
    return keras.Model(inputs, x, name=name)


def tiny_gap_models(num_classes=3, activation="softmax", input_shape=(8, 8, 3), seed=0):
    """The same weights as a functional, a Sequential and a nested model.

    conv_a (4) -> conv_b (5) -> GAP -> Dense(num_classes); the nested one wraps
    the two convs in a functional backbone used as one layer of a Sequential,
    as the cats-vs-dogs tutorial of notebook 03 does with ResNet50.
    """
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation=activation, name="head")(x)
    functional = _randomize(keras.Model(inputs, outputs, name="functional"), seed)

    sequential = keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
        keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv_b"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(num_classes, activation=activation, name="head"),
    ], name="sequential")
    sequential.set_weights(functional.get_weights())

    nested = keras.Sequential([
        keras.Input(input_shape),
        tiny_backbone(input_shape),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(num_classes, activation=activation, name="head"),
    ], name="nested")
    nested.set_weights(functional.get_weights())
    return {"functional": functional, "sequential": sequential, "nested": nested}


@pytest.fixture(scope="session")
def gap_models():
    return tiny_gap_models()


@pytest.fixture(scope="session")
def images():
    return np.random.default_rng(1).random((6, 8, 8, 3)).astype("float32")


@pytest.fixture(scope="session")
def flatten_model():
    """A conv model with no global average pool (Flatten -> Dense), like the Grad-CAM article's of notebook 04."""
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax", name="head"),
    ], name="flatten_model")
    return _randomize(model, 2)


class FileServer:
    """Files of a temporary folder served over HTTP on loopback, counting requests.

    The loaders' real download code runs against it, exactly as against the
    real servers, only offline.
    """

    def __init__(self, root):
        import functools
        import http.server
        import threading

        self.root = root
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    server = FileServer(root)
    yield server
    server.close()


@pytest.fixture
def closed_url():
    """An address on loopback where nothing listens: a download that cannot be had."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/missing.file"



# -- where the time goes: `make test` prints the slowest test files of each stage, to see where CI's minutes go.

_seconds_per_file = {}


def pytest_runtest_logreport(report):
    """Add each phase's duration to its file (a notebook's cells add up to the notebook)."""
    path = report.nodeid.split("::")[0]
    _seconds_per_file[path] = _seconds_per_file.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _seconds_per_file:
        return
    slowest = sorted(_seconds_per_file.items(), key=lambda item: -item[1])[:10]
    terminalreporter.write_sep("-", f"slowest test files, seconds (of {sum(_seconds_per_file.values()):.0f} in all)")
    for path, seconds in slowest:
        terminalreporter.write_line(f"{seconds:8.1f}  {path}")
