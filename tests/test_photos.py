"""Cats vs. dogs photos: the real download path offline, against a zip in the real layout."""

import hashlib
import io
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import camlab
from camlab import photos as photos_module
from camlab.errors import DownloadError, InputError

# Cats red, dogs blue, of several sizes (not square), so labels and resizing can be checked.
LAYOUT = {"train": {"cats": 4, "dogs": 3}, "validation": {"cats": 2, "dogs": 2}}
COLOURS = {"cats": (220, 40, 30), "dogs": (30, 40, 220)}


def jpeg(colour, size):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def build_archive(path, layout=LAYOUT):
    """A zip in the real cats_and_dogs_filtered.zip layout (with its top folder)."""
    first = {"train": 0, "validation": 2000}
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("cats_and_dogs_filtered/vectorize.py", "# not a photo\n")
        for split, folders in layout.items():
            for folder, count in folders.items():
                for number in range(first[split], first[split] + count):
                    name = f"cats_and_dogs_filtered/{split}/{folder}/{folder[:3]}.{number}.jpg"
                    shade = tuple(c - 9 * (number % 10) for c in COLOURS[folder])  # each photo its own
                    bundle.writestr(name, jpeg(shade, (40 + 7 * number % 30, 32)))
    return path


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def archive(file_server):
    return build_archive(file_server.root / "cats_and_dogs_filtered.zip")


def load(file_server, archive, cache, **overrides):
    options = dict(fast=False, url=file_server.url(archive.name), sha256=sha256(archive),
                   size=archive.stat().st_size, counts=LAYOUT, directory=cache,
                   image_size=32, batch_size=3)
    options.update(overrides)
    return camlab.load_cats_vs_dogs(**options)


def test_download_checksum_extraction_split_and_labels(file_server, archive, tmp_path):
    cache = tmp_path / "cache"
    photos = load(file_server, archive, cache)
    assert not photos.fallback and photos.source.startswith("cats_and_dogs_filtered.zip from http://127.0.0.1")
    assert sha256(archive) in photos.source and "checked" in photos.source
    assert photos.class_names == ("cat", "dog")
    for split, folders in LAYOUT.items():
        labels = photos.labels[split]
        assert np.bincount(labels).tolist() == [folders["cats"], folders["dogs"]]
        for path, label in zip(photos.files[split], labels):
            assert path.parent.name == ("cats", "dogs")[label] and path.parent.parent.name == split
    assert (cache / "cats_and_dogs_filtered.zip").read_bytes() == archive.read_bytes()
    assert file_server.requests == ["/cats_and_dogs_filtered.zip"]

    again = load(file_server, archive, cache)  # from the cache: no second request
    assert file_server.requests == ["/cats_and_dogs_filtered.zip"]
    assert again.files == photos.files


def test_photos_are_read_resized_and_labelled(file_server, archive, tmp_path):
    photos = load(file_server, archive, tmp_path)
    images, labels = photos.load("validation")
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 255.0
    red, blue = images[..., 0].mean(axis=(1, 2)), images[..., 2].mean(axis=(1, 2))
    np.testing.assert_array_equal(labels, (blue > red).astype(int))  # cats red, dogs blue
    first, first_labels = photos.load("train", 2)
    assert first.shape == (2, 32, 32, 3) and len(first_labels) == 2
    with pytest.raises(camlab.InputError, match="has 7 photos"):
        photos.load("train", 8)
    with pytest.raises(camlab.InputError, match="split"):
        photos.load("test")


@pytest.mark.parametrize("backbone", ["resnet50", "vgg16"])
def test_batches_are_preprocessed_for_the_backbone(file_server, archive, tmp_path, backbone):
    photos = load(file_server, archive, tmp_path)
    batches = list(photos.batches("train", backbone, shuffle=False))
    assert [len(labels) for _, labels in batches] == [3, 3, 1]
    images = np.concatenate([x.numpy() for x, _ in batches])
    labels = np.concatenate([y.numpy() for _, y in batches])
    raw, raw_labels = photos.load("train")
    np.testing.assert_array_equal(labels, raw_labels)
    expected = getattr(keras.applications, backbone).preprocess_input(raw.copy())
    # Pixels up to 255 less a mean, in float32: np.spacing(255) = 1.5e-5. tf.data's resize and
    # cast may round once more (1e-3); preprocess is the same arithmetic as Keras' (1e-4).
    np.testing.assert_allclose(images, expected, atol=1e-3)
    np.testing.assert_allclose(camlab.preprocess(raw, backbone), expected, atol=1e-4)


def test_training_batches_are_shuffled_reproducibly(file_server, archive, tmp_path):
    photos = load(file_server, archive, tmp_path, batch_size=7)

    def first_batch(split, **options):
        images, labels = next(iter(photos.batches(split, **options)))
        return images.numpy()[..., 0].mean(axis=(1, 2)).round(3).tolist(), labels.numpy().tolist()

    in_order = first_batch("train", shuffle=False)
    seeded = [first_batch("train", seed=seed) for seed in (0, 0, 1)]
    assert seeded[0] == seeded[1] != seeded[2]  # reproducible, and the seed matters
    assert seeded[0][0] != in_order[0] and sorted(seeded[0][0]) == sorted(in_order[0])
    pairs = dict(zip(*in_order))
    assert all(pairs[value] == label for value, label in zip(*seeded[0]))  # labels travel along
    assert first_batch("validation")[1] == photos.labels["validation"].tolist()  # not shuffled


def test_an_unpinned_archive_is_checked_by_size_and_shows_its_hash(file_server, archive, tmp_path):
    photos = load(file_server, archive, tmp_path, sha256=None)
    assert f"sha256 {sha256(archive)}, not pinned" in photos.source
    with pytest.raises(camlab.DownloadError, match="bytes"):
        load(file_server, archive, tmp_path / "other", sha256=None, size=archive.stat().st_size + 1)
    assert not (tmp_path / "other" / "cats_and_dogs_filtered.zip").exists()


def test_a_truncated_download_is_an_error_and_is_not_kept(file_server, archive, tmp_path):
    good_hash, good_size = sha256(archive), archive.stat().st_size
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(camlab.DownloadError, match="corrupted"):
        load(file_server, archive, tmp_path, sha256=good_hash, size=good_size)
    assert not (tmp_path / "cats_and_dogs_filtered.zip").exists()


def test_a_corrupted_archive_is_an_error_deleted_and_downloaded_again(file_server, archive, tmp_path):
    data = bytearray(archive.read_bytes())
    start = data.find(b"\xff\xd8\xff")  # inside the first photo: the CRC no longer matches
    data[start + 200:start + 210] = bytes(10)
    good = archive.read_bytes()
    archive.write_bytes(bytes(data))  # same size, no hash pinned: only the CRC can tell
    with pytest.raises(camlab.DownloadError, match="corrupted"):
        load(file_server, archive, tmp_path, sha256=None)
    assert not (tmp_path / "cats_and_dogs_filtered.zip").exists()
    assert not (tmp_path / "cats_and_dogs_filtered_extracted").exists()
    archive.write_bytes(good)  # the server is fixed: the next call downloads again
    photos = load(file_server, archive, tmp_path, sha256=None)
    assert len(photos.files["train"]) == 7 and len(file_server.requests) == 2


def test_an_archive_with_other_contents_is_refused(file_server, tmp_path):
    short = {"train": {"cats": 4, "dogs": 3}, "validation": {"cats": 2}}  # no validation/dogs
    archive = build_archive(file_server.root / "cats_and_dogs_filtered.zip", short)
    with pytest.raises(camlab.DownloadError, match="validation/dogs holds 0 photos"):
        load(file_server, archive, tmp_path)
    archive = build_archive(file_server.root / "cats_and_dogs_filtered.zip")
    with pytest.raises(camlab.DownloadError, match="train/cats holds 4 photos, expected 1000"):
        load(file_server, archive, tmp_path / "again", counts=photos_module.CATS_AND_DOGS_COUNTS)


def test_no_network_falls_back_loudly_to_real_offline_photos(closed_url, tmp_path, capsys):
    photos = camlab.load_cats_vs_dogs(fast=False, url=closed_url, directory=tmp_path)
    out = capsys.readouterr().out
    assert "Cats vs. Dogs could not be downloaded" in out and "Oxford-IIIT Pet" in out
    assert photos.fallback and photos.source.startswith("OFFLINE FALLBACK")
    everything = photos.files["train"] + photos.files["validation"]
    names = sorted(p.name for p in everything)
    assert len(names) == len(set(names)) == 27 and "chelsea.png" in names
    labels = np.concatenate([photos.labels["train"], photos.labels["validation"]])
    assert np.bincount(labels).tolist() == [19, 8]
    for path, label in zip(everything, labels):  # the Oxford-IIIT convention: Capitalised = cat
        assert label == (0 if path.name[0].isupper() or path.name == "chelsea.png" else 1)
        assert path.is_file()
    assert np.bincount(photos.labels["validation"]).tolist() == [6, 2]  # stratified
    again = camlab.load_cats_vs_dogs(fast=False, offline=True)
    assert again.files == photos.files  # reproducible split
    images, _ = again.load("validation")
    assert images.shape == (8, 224, 224, 3) and images.max() > 100


def test_shipped_pet_photos_are_byte_identical_to_their_listed_hashes():
    sums = camlab.download.asset_path("SHA256SUMS").read_text().splitlines()
    listed = dict(reversed(line.split()) for line in sums if "oxford_pets/" in line)
    assert len(listed) == 52  # 26 photos and their 26 masks
    assert sorted(n.replace("masks/", "").rsplit(".", 1)[0] for n in listed if "masks/" in n) == \
        sorted(n.rsplit(".", 1)[0] for n in listed if "masks/" not in n)
    for name, digest in listed.items():
        assert camlab.download.file_hash(camlab.download.asset_path(*name.split("/"))) == digest


def test_fast_mode_keeps_a_few_photos_of_each_class(file_server, archive, tmp_path):
    photos = load(file_server, archive, tmp_path, fast=True)
    assert [len(photos.files[s]) for s in ("train", "validation")] == [7, 4]  # fewer than 8: all
    offline = camlab.load_cats_vs_dogs(fast=True, offline=True)
    assert [len(offline.files[s]) for s in ("train", "validation")] == [8, 8]
    assert set(offline.labels["train"]) == {0, 1} and "fast mode" in offline.source


def test_preprocess_leaves_the_photos_alone_and_refuses_what_it_cannot_do():
    photos = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    kept = photos.copy()
    out = camlab.preprocess(photos, "vgg16")
    np.testing.assert_array_equal(photos, kept)
    np.testing.assert_allclose(out[..., 0], kept[..., 2] - 103.939, atol=1e-4)  # BGR, mean removed; float32 near 255
    with pytest.raises(camlab.InputError, match="Unknown backbone"):
        camlab.preprocess(photos, "mobilenet")
    with pytest.raises(camlab.InputError, match="RGB"):
        camlab.preprocess(photos[..., :1])


def test_photo_files_that_are_not_images(tmp_path):
    root = tmp_path / "cats_and_dogs_filtered"
    for split in ("train", "validation"):
        for folder in ("cats", "dogs"):
            (root / split / folder).mkdir(parents=True)
            (root / split / folder / f"{folder[:3]}.0.jpg").write_bytes(b"<html>captive</html>")
    with pytest.raises(DownloadError, match="not an image file"):
        photos_module.read_layout(root)
    # A file that starts like a JPEG but is not one: caught when the photos are read.
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    photos = photos_module.Photos(files={"train": (bad,), "validation": (bad,)},
                                  labels={"train": np.zeros(1, "int64"),
                                          "validation": np.zeros(1, "int64")},
                                  class_names=("cat", "dog"), image_size=32, batch_size=1,
                                  source="test", fallback=False)
    with pytest.raises(DownloadError, match="cannot be read as an image"):
        photos.load("validation")


def test_preprocess_refuses_a_one_channel_tensor():
    with pytest.raises(InputError, match="RGB"):
        camlab.preprocess(tf.zeros((2, 8, 8, 1)))
    with pytest.raises(InputError, match="RGB"):
        camlab.preprocess(np.zeros((2, 8, 8, 1)))
    assert camlab.preprocess(tf.zeros((2, 8, 8, 3))).shape == (2, 8, 8, 3)
