"""Photos of cats and dogs, and the input each ImageNet backbone expects (notebook 03).

Online, ``load_cats_vs_dogs`` downloads ``cats_and_dogs_filtered.zip``, the
classroom subset of Kaggle's Dogs vs. Cats that TensorFlow's transfer-learning
tutorial uses: 2,000 training and 1,000 validation JPEGs in the folders
``cats_and_dogs_filtered/{train,validation}/{cats,dogs}``. It is cached and
checked: its size, every member's CRC, and the number of photos per folder
(no checksum of the archive is published; see ``CATS_AND_DOGS_SHA256``).
Offline it says so loudly and uses 27 real photos instead: 26 from the
Oxford-IIIT Pet Dataset that camlab ships (``data/oxford_pets``, CC BY-SA 4.0)
and scikit-image's cat photo ``chelsea``. ``Photos.source`` and
``Photos.fallback`` always say which photos you have.

``Photos.batches(split, backbone)`` is a batched ``tf.data`` pipeline of photos
resized to (224, 224) and preprocessed as the backbone's ImageNet weights
expect (``preprocess``); ``Photos.load(split)`` gives the same photos unprocessed,
RGB in [0, 255], for showing them. ``oxford_pets()`` gives the 26 shipped pet
photos with their masks: where the truth is known, maps can be scored.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from camlab.checks import as_finite_float32, check_count
from camlab.course import fast_mode, notice
from camlab.data import stratified_split
from camlab.download import asset_path, extract_zip, fetch, file_hash
from camlab.efficientnet_lite import preprocess_lite0
from camlab.errors import DataUnavailableError, DownloadError, InputError

CATS_AND_DOGS_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
# No SHA-256 or MD5 of this archive is published, by TensorFlow or anyone we
# could find, so none is invented here: the download is checked by its size,
# the CRC-32 of every member, and the photo count of every folder. Its size,
# 68,606,236 bytes, is the Content-Length that independent downloads logged in
# 2021 and 2025. To pin the archive, set this to the SHA-256 that
# ``Photos.source`` shows after a download.
CATS_AND_DOGS_SHA256 = None
CATS_AND_DOGS_SIZE = 68_606_236
CATS_AND_DOGS_COUNTS = {"train": {"cats": 1000, "dogs": 1000},
                        "validation": {"cats": 500, "dogs": 500}}
CLASS_NAMES = ("cat", "dog")
FOLDERS = ("cats", "dogs")  # class 0, class 1
SPLITS = ("train", "validation")
IMAGE_SIZE = 224
MAX_IMAGE_SIZE = 1024  # oxford_pets: the photos are at most 700 pixels wide
FAST_PHOTOS = 8  # per split in fast mode: two batches of four
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")

# What each backbone's ImageNet weights expect. ResNet50's and VGG16's are Keras's "caffe"
# mode: RGB in [0, 255] -> BGR, minus the ImageNet mean of each channel; EfficientNet-Lite0's
# is (x - 127) / 128.
PREPROCESSING = {
    "resnet50": keras.applications.resnet50.preprocess_input,
    "vgg16": keras.applications.vgg16.preprocess_input,
    "efficientnet_lite0": preprocess_lite0,
}


def preprocess(images, backbone="resnet50"):
    """Prepare RGB photos in [0, 255] for ``backbone``'s ImageNet weights.

    images: (N, H, W, 3) or (H, W, 3), a NumPy array or a tensor. Returns
    float32 of the same shape (a NumPy array for NumPy input). "resnet50" and
    "vgg16": channels reordered to BGR and the ImageNet channel means
    subtracted, as ``keras.applications.<backbone>.preprocess_input`` does;
    "efficientnet_lite0": ``(x - 127) / 128``, about [-1, 1]. The caller's
    array is never modified.
    """
    _check_backbone(backbone)
    if tf.is_tensor(images) or keras.backend.is_keras_tensor(images):
        _check_rgb(tuple(images.shape))
        return PREPROCESSING[backbone](keras.ops.cast(images, "float32"))
    array = as_finite_float32(images, "Photos", "(N, H, W, 3) or (H, W, 3)")
    _check_rgb(array.shape)
    array = array.copy()  # Keras edits float arrays in place; the caller's stays as it was
    return PREPROCESSING[backbone](array)


def _check_backbone(backbone):
    if not isinstance(backbone, str) or backbone not in PREPROCESSING:
        raise InputError(f"Unknown backbone {backbone!r}; camlab has {sorted(PREPROCESSING)}.")


def _check_rgb(shape):
    if len(shape) not in (3, 4) or shape[-1] != 3:
        raise InputError(
            f"Photos must be RGB, (N, H, W, 3) or (H, W, 3); got shape {shape}. A grayscale "
            "photo (..., 1) can be repeated to three channels first, e.g. "
            "np.repeat(images, 3, axis=-1)."
        )


def read_photo(path, image_size=IMAGE_SIZE):
    """One JPEG or PNG file as float32 RGB (image_size, image_size, 3) in [0, 255].

    Resized (bilinear) without keeping the aspect ratio, as
    ``keras.utils.load_img(path, target_size=(224, 224))`` in the cats-vs-dogs tutorial and
    ``keras.utils.image_dataset_from_directory`` do. Works inside ``tf.data``.
    """
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.resize(image, (image_size, image_size))
    image.set_shape((image_size, image_size, 3))
    return image


@dataclasses.dataclass(frozen=True)
class Photos:
    """Cat and dog photos by split, and where they came from.

    files: split name ("train", "validation") -> tuple of paths.
    labels: split name -> int64 (N,), 0 = cat, 1 = dog (``class_names``).
    image_size: photos are resized to (image_size, image_size).
    batch_size: photos per batch of ``batches``.
    source: one line saying where the photos came from.
    fallback: True when these are offline stand-ins, not cats_and_dogs_filtered.
    """

    files: dict
    labels: dict
    class_names: tuple
    image_size: int
    batch_size: int
    source: str
    fallback: bool

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{split}: {np.bincount(self.labels[split], minlength=2)[0]} cats + "
            f"{np.bincount(self.labels[split], minlength=2)[1]} dogs" for split in SPLITS)
        return f"Photos({counts}; {self.image_size}x{self.image_size}; source: {self.source})"

    def _split(self, split):
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}; got {split!r}.")
        return [str(path) for path in self.files[split]], self.labels[split]

    def batches(self, split="train", backbone="resnet50", shuffle=None, seed=0) -> tf.data.Dataset:
        """A ``tf.data`` pipeline of (photos, labels) batches for ``model.fit``.

        photos: float32 (batch, image_size, image_size, 3), preprocessed for
        ``backbone`` (see ``preprocess``); labels: int64 (batch,). The training
        split is shuffled (reproducibly, by ``seed``) unless ``shuffle=False``.
        """
        paths, labels = self._split(split)
        _check_backbone(backbone)
        size = self.image_size
        pipeline = tf.data.Dataset.from_tensor_slices((paths, labels))
        if (split == "train") if shuffle is None else shuffle:
            pipeline = pipeline.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        pipeline = pipeline.map(lambda path, label: (read_photo(path, size), label),
                                num_parallel_calls=tf.data.AUTOTUNE)
        pipeline = pipeline.batch(self.batch_size)
        pipeline = pipeline.map(lambda images, label: (preprocess(images, backbone), label),
                                num_parallel_calls=tf.data.AUTOTUNE)
        return pipeline.prefetch(tf.data.AUTOTUNE)

    def load(self, split="validation", count=None):
        """The first ``count`` photos of ``split`` (all by default), unprocessed.

        Returns (images, labels): float32 (N, image_size, image_size, 3) RGB in
        [0, 255], for showing, or for a model after ``preprocess``; int64 (N,).
        """
        paths, labels = self._split(split)
        count = len(paths) if count is None else int(count)
        if not 1 <= count <= len(paths):
            raise InputError(f"The {split} split has {len(paths)} photos; asked for {count}.")
        size = self.image_size
        pipeline = tf.data.Dataset.from_tensor_slices(paths[:count]).map(
            lambda path: read_photo(path, size), num_parallel_calls=tf.data.AUTOTUNE)
        try:
            images = next(iter(pipeline.batch(count))).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
            raise DownloadError(
                f"A photo of the {split} split cannot be read as an image "
                f"({error.message.splitlines()[0]}). The photo folder "
                f"{Path(paths[0]).parent.parent} is damaged: delete it (and the archive "
                "next to it) and run the cell again."
            ) from None
        return images, labels[:count].copy()


def _photos_in(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


# What the first bytes of a JPEG, PNG, GIF or BMP file are.
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


def _check_photo_files(paths, root):
    """Every file starts like an image file; else a ``DownloadError`` names one that does not."""
    for path in paths:
        with open(path, "rb") as handle:
            head = handle.read(4)
        if not head.startswith(IMAGE_SIGNATURES):
            raise DownloadError(
                f"{path} is not an image file (it starts with {head!r}): the archive "
                "is not the one the course was written for, or was damaged. Delete "
                f"{root.parent} and run the cell again."
            )


def read_layout(root: Path, counts=None) -> tuple:
    """Files and labels of ``root/{train,validation}/{cats,dogs}``, checked.

    ``counts`` (split -> folder -> number of photos) is what the archive must
    hold; a missing folder or another count raises ``DownloadError``.
    """
    files, labels = {}, {}
    for split in SPLITS:
        paths, classes = [], []
        for label, folder in enumerate(FOLDERS):
            where = root / split / folder
            found = _photos_in(where) if where.is_dir() else []
            expected = None if counts is None else counts[split][folder]
            if not found or (expected is not None and len(found) != expected):
                raise DownloadError(
                    f"{where} holds {len(found)} photos, expected "
                    f"{expected if expected is not None else 'some'}: the archive is not "
                    "the cats_and_dogs_filtered.zip the course was written for, or its "
                    f"extraction was cut short. Delete {root.parent} and run the cell again."
                )
            _check_photo_files(found, root)
            paths += found
            classes += [label] * len(found)
        files[split] = tuple(paths)
        labels[split] = np.asarray(classes, dtype="int64")
    return files, labels


def _pet_label(path) -> int:
    """0 (cat) or 1 (dog): a capitalised breed name is a cat, a lower-case one a dog (the
    Oxford-IIIT Pet Dataset's convention); scikit-image's chelsea is a cat."""
    return 0 if path.name[0].isupper() or path.name == "chelsea.png" else 1


def pets_offline(seed=0, held_out=0.3) -> tuple:
    """The offline photos: files and labels by split, and a description.

    26 Oxford-IIIT Pet photos that camlab ships (a capitalised breed name is a
    cat, a lower-case one a dog: the data set's own convention) and, when
    scikit-image is installed, its cat photo chelsea. Split stratified and
    reproducibly (``seed``); ``held_out`` is the validation fraction.
    """
    pets = _photos_in(asset_path("oxford_pets", "README.md").parent)
    paths = list(pets)
    try:
        import skimage.data

        chelsea = Path(skimage.data.__file__).parent / "chelsea.png"
        if chelsea.is_file():
            paths.append(chelsea)
    except ImportError:
        pass
    labels = np.array([_pet_label(p) for p in paths], dtype="int64")
    train, validation = stratified_split(labels, held_out, seed)
    files = {"train": tuple(paths[i] for i in train),
             "validation": tuple(paths[i] for i in validation)}
    split_labels = {"train": labels[train], "validation": labels[validation]}
    cats, dogs = np.bincount(labels, minlength=2)
    extra = " and scikit-image's cat photo chelsea" if len(paths) > len(pets) else ""
    description = (f"{len(paths)} real photos ({cats} cats, {dogs} dogs): {len(pets)} from the "
                   f"Oxford-IIIT Pet Dataset (CC BY-SA 4.0) shipped with camlab{extra}")
    return files, split_labels, description


def oxford_pets(image_size=IMAGE_SIZE, off_centre=False) -> tuple:
    """The 26 shipped Oxford-IIIT Pet photos with their pet masks (notebook 03).

    Returns (images, labels, masks): float32 RGB (26, S, S, 3) in [0, 255]
    (S = ``image_size``), int64 (26,) with 0 = cat, 1 = dog, and bool
    (26, S, S), True on the pet and its outline (``data/oxford_pets/masks``).
    Each photo is resized whole (bilinear; masks nearest), as ``read_photo``
    does: the pets sit near the middle, where a map that always points at the
    centre scores well too. ``off_centre=True`` crops each photo first to a
    square of 70% of its shorter side, placed (on a 9x9 grid of places) where
    the pet's nearest pixel is farthest from the crop's centre (up to 15% of its
    side) while the crop keeps at least 30% of the pet: the pet is still there,
    no longer in the middle.
    """
    image_size = check_count(image_size, "image_size")
    if not 32 <= image_size <= MAX_IMAGE_SIZE:
        raise InputError(f"image_size must be between 32 and {MAX_IMAGE_SIZE} pixels; got {image_size}.")
    folder = asset_path("oxford_pets", "README.md").parent
    images, labels, masks = [], [], []
    size = (image_size, image_size)
    for photo in _photos_in(folder):
        mask_file = asset_path("oxford_pets", "masks", photo.with_suffix(".png").name)
        image = np.asarray(Image.open(photo).convert("RGB"))
        pet = np.asarray(Image.open(mask_file)) > 0  # 1 cat, 2 dog, 255 its outline
        box = _off_centre_crop(pet) if off_centre else (0, 0, pet.shape[1], pet.shape[0])
        images.append(np.asarray(Image.fromarray(image).crop(box).resize(size, Image.BILINEAR),
                                 dtype="float32"))
        masks.append(np.asarray(Image.fromarray(pet).crop(box).resize(size, Image.NEAREST)))
        labels.append(_pet_label(photo))
    return np.stack(images), np.asarray(labels, dtype="int64"), np.stack(masks).astype(bool)


def _off_centre_crop(pet, side_fraction=0.7, keep=0.3, far=0.15, places=9):
    """(left, top, right, bottom) of the square crop ``oxford_pets(off_centre=True)`` takes."""
    height, width = pet.shape
    side = int(min(height, width) * side_fraction)
    best, best_score = None, None
    for top in np.linspace(0, height - side, places).astype(int):
        for left in np.linspace(0, width - side, places).astype(int):
            inside = pet[top:top + side, left:left + side]
            rows, columns = np.nonzero(inside)
            gap = (np.hypot(rows - side / 2, columns - side / 2).min() / side) if rows.size else 0.0
            kept = rows.size / max(pet.sum(), 1)
            score = (kept >= keep, min(gap, far), kept)
            if best_score is None or score > best_score:
                best, best_score = (int(left), int(top), int(left) + side, int(top) + side), score
    return best


def _fast_subset(files, labels, count, seed):
    """A stratified ``count`` photos of each split (fast mode)."""
    kept_files, kept_labels = {}, {}
    for split in SPLITS:
        chosen = np.arange(len(labels[split]))
        if count < len(chosen):
            _, chosen = stratified_split(labels[split], count / len(chosen), seed)
            chosen = np.sort(chosen)
        kept_files[split] = tuple(files[split][i] for i in chosen)
        kept_labels[split] = labels[split][chosen]
    return kept_files, kept_labels


def load_cats_vs_dogs(fast=None, *, offline=False, image_size=IMAGE_SIZE, batch_size=32,
                      url=CATS_AND_DOGS_URL, sha256=CATS_AND_DOGS_SHA256,
                      size=CATS_AND_DOGS_SIZE, counts=CATS_AND_DOGS_COUNTS,
                      directory=None, seed=0) -> Photos:
    """Cats vs. dogs photos for a frozen ImageNet backbone (notebook 03).

    Downloads ``cats_and_dogs_filtered.zip`` (68.6 MB) into Keras's dataset
    cache, checks it (``sha256`` when pinned, its ``size``, every member's
    CRC, and ``counts``: photos per split and folder), unpacks it once and
    returns its 2,000 training and 1,000 validation photos, cats = 0, dogs = 1.
    A corrupted archive raises ``DownloadError`` and is deleted, so the next
    call downloads it again. Without a network it falls back, loudly, to
    ``pets_offline()``. ``fast`` (default ``camlab.fast_mode()``) keeps a
    stratified ``FAST_PHOTOS`` of each split. ``offline=True`` skips the
    download. ``Photos.source`` and ``Photos.fallback`` say which photos these are.
    """
    fast = fast_mode() if fast is None else fast
    archive = None
    if not offline:
        try:
            archive = fetch(url, sha256, "cats_and_dogs_filtered.zip", directory=directory,
                            expected_size=size)
        except DataUnavailableError as error:
            notice(
                "Cats vs. Dogs could not be downloaded: using offline stand-in photos",
                f"{error}\nUsing 27 real photos instead: 26 from the Oxford-IIIT Pet "
                "Dataset shipped with camlab, and scikit-image's cat photo. They are "
                "real cats and dogs, but far fewer than the 3,000 photos of "
                "cats_and_dogs_filtered: the model learns little from them. Run online "
                "to get the real thing.",
            )
    if archive is None:
        files, labels, description = pets_offline(seed)
        source, fallback = f"OFFLINE FALLBACK: {description}", True
    else:
        destination = archive.parent / "cats_and_dogs_filtered_extracted"
        try:
            extract_zip(archive, destination)
            files, labels = read_layout(destination / "cats_and_dogs_filtered", counts)
        except DownloadError:
            archive.unlink(missing_ok=True)  # never keep a bad archive: the next call downloads again
            shutil.rmtree(destination, ignore_errors=True)
            raise
        pinned = "checked" if sha256 else "not pinned"
        source = f"cats_and_dogs_filtered.zip from {url} (sha256 {file_hash(archive)}, {pinned})"
        fallback = False
    if fast:
        files, labels = _fast_subset(files, labels, FAST_PHOTOS, seed)
        source += f" (fast mode: {len(files['train'])} train, {len(files['validation'])} validation)"
    return Photos(files=files, labels=labels, class_names=CLASS_NAMES, image_size=int(image_size),
                  batch_size=int(batch_size), source=source, fallback=fallback)
