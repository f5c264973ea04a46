"""Fashion-MNIST: the real download path offline, against IDX files in the real format,
and the shipped subset that fast mode and the offline fallback use."""

import gzip
import hashlib
import struct

import numpy as np
import pytest

import camlab
from camlab import data, download
from tolerances import GREY_LEVEL

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array):
    """An array in the IDX format of the official files: 0, 0, type 0x08, rank, sizes, values."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def fashion_files(file_server):
    """The four official files, generated small: 60 train and 20 test images."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(60) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(20)[::-1] % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        (file_server.root / name).write_bytes(gzip.compress(idx_bytes(array)))
    hashes = {name: md5(file_server.root / name) for name in FILES}
    return arrays, hashes


def load(file_server, hashes, cache, **kwargs):
    return camlab.load_fashion_mnist(fast=False, url=file_server.url(""), md5=hashes,
                                     directory=cache, **kwargs)


def test_downloaded_verified_cached_and_parsed(file_server, fashion_files, tmp_path):
    arrays, hashes = fashion_files
    cache = tmp_path / "cache"
    dataset = load(file_server, hashes, cache)
    assert not dataset.fallback and dataset.source.startswith("Fashion-MNIST from http://127.0.0.1")
    assert dataset.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert dataset.x_train.shape == (60, 28, 28, 1) and dataset.x_test.shape == (20, 28, 28, 1)
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int64
    for pixels, name in ((dataset.x_train, "train-images-idx3-ubyte.gz"),
                         (dataset.x_test, "t10k-images-idx3-ubyte.gz")):
        np.testing.assert_allclose(pixels[..., 0] * 255, arrays[name], atol=GREY_LEVEL)
    np.testing.assert_array_equal(dataset.y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    # cached where keras.datasets.fashion_mnist keeps them, byte for byte
    for name in FILES:
        assert (cache / "fashion-mnist" / name).read_bytes() == (file_server.root / name).read_bytes()
    assert sorted(file_server.requests) == sorted("/" + name for name in FILES)
    load(file_server, hashes, cache)  # second time: from the cache, no request
    assert len(file_server.requests) == 4


def test_the_official_md5s_are_zalandos():
    # Zalando's README, "Get the Data"; the label files are checked against the real ones below.
    assert data.FASHION_MNIST_MD5 == {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    real = download.asset_path("fashion_mnist", "t10k-labels-idx1-ubyte.gz")
    assert md5(real) == data.FASHION_MNIST_MD5["t10k-labels-idx1-ubyte.gz"]


def test_a_corrupted_download_is_an_error_and_is_not_kept(file_server, fashion_files, tmp_path):
    _, hashes = fashion_files
    served = file_server.root / "t10k-images-idx3-ubyte.gz"
    served.write_bytes(served.read_bytes()[:-50])  # truncated on the server
    with pytest.raises(camlab.DownloadError, match="corrupted"):
        load(file_server, hashes, tmp_path / "cache")
    kept = sorted(p.name for p in (tmp_path / "cache" / "fashion-mnist").iterdir())
    assert "t10k-images-idx3-ubyte.gz" not in kept and not any(k.endswith(".part") for k in kept)


def test_a_corrupted_cached_file_is_downloaded_again(file_server, fashion_files, tmp_path):
    _, hashes = fashion_files
    folder = tmp_path / "cache" / "fashion-mnist"
    folder.mkdir(parents=True)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    dataset = load(file_server, hashes, tmp_path / "cache")
    assert len(dataset.y_train) == 60 and len(file_server.requests) == 4


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-7], "values for a shape"),                      # truncated values
    (lambda raw: raw + b"\0", "values for a shape"),                    # extra bytes
    (lambda raw: b"\1" + raw[1:], "no IDX header"),                     # wrong magic
    (lambda raw: raw[:2] + b"\x0d" + raw[3:], "value type 0x0d"),       # float values
])
def test_files_with_the_right_hash_but_wrong_content_are_refused(file_server, fashion_files,
                                                                   tmp_path, damage, message):
    _, hashes = fashion_files
    served = file_server.root / "train-images-idx3-ubyte.gz"
    served.write_bytes(gzip.compress(damage(gzip.decompress(served.read_bytes()))))
    hashes = dict(hashes, **{served.name: md5(served)})
    with pytest.raises(camlab.DownloadError, match=message):
        load(file_server, hashes, tmp_path / "cache")


def test_images_and_labels_that_do_not_match_are_refused(file_server, fashion_files, tmp_path):
    _, hashes = fashion_files
    served = file_server.root / "train-labels-idx1-ubyte.gz"
    served.write_bytes(gzip.compress(idx_bytes(np.zeros(59, np.uint8))))
    with pytest.raises(camlab.DownloadError, match="expected \\(N, 28, 28\\)"):
        load(file_server, dict(hashes, **{served.name: md5(served)}), tmp_path / "cache")


def test_read_idx_parses_the_official_label_file():
    labels = data.read_idx(download.asset_path("fashion_mnist", "t10k-labels-idx1-ubyte.gz"))
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10


def test_read_idx_reads_plain_files_too(tmp_path):
    path = tmp_path / "images.idx"
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path.write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(data.read_idx(path), array)


def test_no_network_falls_back_loudly_to_the_shipped_real_images(closed_url, tmp_path, capsys):
    nowhere = closed_url.rsplit("/", 1)[0] + "/"
    dataset = camlab.load_fashion_mnist(fast=False, url=nowhere, directory=tmp_path)
    out = capsys.readouterr().out
    assert "Fashion-MNIST could not be downloaded" in out and "2,000 real" in out
    assert dataset.fallback and dataset.source.startswith("OFFLINE FALLBACK")
    assert len(dataset.x_train) + len(dataset.x_test) == 2000
    assert abs(len(dataset.x_test) - 500) <= 5  # a quarter held out, class by class
    assert dataset.class_names[8] == "Bag"
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-downloaded kept


def test_the_shipped_subset_is_the_official_first_2000_test_images():
    dataset = data.fashion_mnist_subset()
    official = data.read_idx(download.asset_path("fashion_mnist", "t10k-labels-idx1-ubyte.gz"))[:2000]
    labels = np.empty(2000, dtype=np.int64)
    # put the split back together: every image appears once, with its official label
    with np.load(download.asset_path("fashion_mnist", "fmnist_test_first2000_x.npz")) as stored:
        pixels = stored["arr_0"]
    train, test = data.stratified_split(official, data.FASHION_SUBSET_HELD_OUT, 0)
    labels[train], labels[test] = dataset.y_train, dataset.y_test
    np.testing.assert_array_equal(labels, official)
    np.testing.assert_allclose(dataset.x_test[..., 0] * 255, pixels[test], atol=GREY_LEVEL)
    assert abs(float(pixels.mean()) - 73.19) < 0.01  # the provenance note's pixel mean
    # stratified: every class keeps its share in both parts
    share = np.bincount(dataset.y_test, minlength=10) / np.bincount(official, minlength=10)
    assert np.all(np.abs(share - 0.25) < 0.01)
    # shuffled, so that fit(validation_split=...) holds out every class
    assert len(np.unique(dataset.y_train[-150:])) == 10


def test_the_subset_split_is_reproducible_and_seeded():
    first, again = data.fashion_mnist_subset(), data.fashion_mnist_subset()
    np.testing.assert_array_equal(first.y_train, again.y_train)
    other = data.fashion_mnist_subset(seed=1)
    assert not np.array_equal(first.y_train, other.y_train)


def test_fast_mode_uses_the_shipped_subset_even_online(file_server, fashion_files, tmp_path,
                                                       capsys, monkeypatch):
    _, hashes = fashion_files
    monkeypatch.setenv("CAMLAB_FAST", "1")
    dataset = camlab.load_fashion_mnist(url=file_server.url(""), md5=hashes, directory=tmp_path)
    assert file_server.requests == []  # no download at all
    assert dataset.fallback and dataset.source.startswith("FAST MODE")
    assert "Fast mode" in capsys.readouterr().out
    np.testing.assert_array_equal(dataset.y_test, data.fashion_mnist_subset().y_test)


def test_asset_path_finds_shipped_files_and_says_when_one_is_missing():
    path = download.asset_path("fashion_mnist", "LICENSE")
    assert "Zalando SE" in path.read_text()
    with pytest.raises(camlab.DataUnavailableError, match="fashion_mnist/missing.npz is missing"):
        download.asset_path("fashion_mnist", "missing.npz")
    with pytest.raises(camlab.DataUnavailableError):
        download.asset_path("..", "pyproject.toml")


def test_asset_path_reads_an_installed_wheel_layout(tmp_path, monkeypatch):
    assets = tmp_path / "camlab" / "assets" / "fashion_mnist"
    assets.mkdir(parents=True)
    (assets / "LICENSE").write_text("wheel copy")
    monkeypatch.setattr(download, "ASSET_FOLDERS", (tmp_path / "camlab" / "assets", tmp_path / "data"))
    assert download.asset_path("fashion_mnist", "LICENSE").read_text() == "wheel copy"
