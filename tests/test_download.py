"""camlab.download and the loaders on broken downloads: cut-off transfers, addresses that
are not URLs, corrupted IDX headers and pinned files that are empty or truncated."""

import hashlib
import socket
import threading

import numpy as np
import pytest

import camlab
from camlab import data, download
from camlab.errors import CamlabError, DownloadError, InputError


def test_a_cut_off_chunked_transfer_is_a_camlab_error(tmp_path):
    """The server promises chunks and hangs up mid-way: http.client.IncompleteRead."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve_once():
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"400\r\n" + b"x" * 100)
        connection.close()

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/mnist.npz"
    try:
        with pytest.raises(CamlabError, match="cut off"):
            download.fetch(url, "0" * 64, "mnist.npz", directory=tmp_path)
    finally:
        thread.join(5)
        listener.close()
    assert list(tmp_path.iterdir()) == []  # no partial file left


@pytest.mark.parametrize("url", ["not a url", "ftp://example.org/mnist.npz", 12])
def test_a_url_that_is_not_one(url, tmp_path):
    with pytest.raises(InputError, match="http://"):
        camlab.load_mnist(url=url, directory=tmp_path)


def test_an_idx_header_whose_size_wraps_around_int64(tmp_path):
    path = tmp_path / "wrap.idx"
    # 4 dims of 2**16 each: 2**64 values, which is 0 in int64 arithmetic.
    path.write_bytes(b"\x00\x00\x08\x04" + (2 ** 16).to_bytes(4, "big") * 4)
    with pytest.raises(DownloadError, match="not a readable IDX"):
        data.read_idx(path)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04" + b"\x00" * 20, None])
def test_a_pinned_npz_that_is_empty_or_truncated(content, file_server, tmp_path):
    path = file_server.root / "mnist.npz"
    if content is None:  # a real npz cut short
        buffer = tmp_path / "real.npz"
        np.savez(buffer, x_train=np.zeros((5, 28, 28), "uint8"), y_train=np.zeros(5, "uint8"),
                 x_test=np.zeros((2, 28, 28), "uint8"), y_test=np.zeros(2, "uint8"))
        content = buffer.read_bytes()[:-40]
    path.write_bytes(content)
    pinned = hashlib.sha256(content).hexdigest()
    with pytest.raises(DownloadError, match="not a readable MNIST file"):
        camlab.load_mnist(url=file_server.url("mnist.npz"), sha256=pinned,
                          directory=tmp_path / "cache")
