"""Downloads and shipped files: checksummed, cached, and honest when they fail.

``fetch`` downloads a file once into the cache Keras uses (``cache_dir``),
checks its hash, and raises a ``DownloadError`` that says what to do when the
address cannot be reached or the file is corrupted; ``extract_zip`` unpacks an
archive once; ``asset_path`` finds the files camlab ships (the repository's
data/ folder, camlab/assets in a wheel). The loaders in ``camlab.data`` and
``camlab.photos`` (notebooks 01-03) build on these.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from camlab.errors import DataUnavailableError, DownloadError, InputError


def cache_dir() -> Path:
    """Where downloads are kept: $CAMLAB_CACHE, else Keras's own dataset cache
    ($KERAS_HOME/datasets or ~/.keras/datasets), so files Keras already
    downloaded are reused."""
    if os.environ.get("CAMLAB_CACHE"):
        return Path(os.environ["CAMLAB_CACHE"]).expanduser()
    keras_home = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    return Path(keras_home).expanduser() / "datasets"


_PACKAGE = Path(__file__).resolve().parent
# Where the files of the repository's data/ folder live: inside an installed
# wheel they are the package camlab/assets; an editable install (a clone,
# `pip install -e .`) reads data/ next to camlab/ directly.
ASSET_FOLDERS = (_PACKAGE / "assets", _PACKAGE.parent / "data")


def asset_path(*parts) -> Path:
    """The path of a file camlab ships, e.g. ``asset_path("fashion_mnist", "LICENSE")``.

    ``parts`` are relative to the repository's ``data/`` folder (notebook 02).
    Looks in the installed package (``camlab/assets``) first, then in ``data/``
    of a source checkout. Raises ``DataUnavailableError`` when neither holds it.
    """
    relative = Path(*parts)
    if relative.is_absolute() or ".." in relative.parts:
        raise DataUnavailableError(f"asset_path takes a path inside data/, got {relative}.")
    for folder in ASSET_FOLDERS:
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    raise DataUnavailableError(
        f"camlab's shipped file data/{relative.as_posix()} is missing (looked in "
        f"{' and '.join(str(f) for f in ASSET_FOLDERS)}). Reinstall camlab "
        "(pip install --force-reinstall camlab-course), or from a clone run "
        "`git checkout -- data/`."
    )


def file_hash(path, algorithm="sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _algorithm(expected_hash: str) -> str:
    return "md5" if len(expected_hash) == 32 else "sha256"


def fetch(url: str, expected_hash, filename: str, subdir: str = "",
          directory=None, timeout: float = 30.0, expected_size=None) -> Path:
    """Download ``url`` once, check its hash, and return the cached file's path.

    ``expected_hash`` is a SHA-256 (64 hex digits) or MD5 (32) of the file. A
    cached file with the right hash is used without touching the network; one
    with the wrong hash is downloaded again. Raises ``DataUnavailableError``
    when the address cannot be reached and ``DownloadError`` when what arrives
    does not match the hash (the bad file is deleted, never kept).
    ``expected_size`` (bytes) is checked too when given; a file whose checksum
    was never published may pass ``expected_hash=None`` with a size, and the
    caller then checks the contents (notebook 03: ``camlab.photos``).
    """
    if expected_hash is None and expected_size is None:
        raise InputError("fetch needs expected_hash, expected_size, or both.")
    scheme = urllib.parse.urlsplit(str(url)).scheme.lower()
    if not isinstance(url, str) or scheme not in ("http", "https", "file"):
        raise InputError(
            f"url must be an http://, https:// or file:// address; got {url!r}. Leave "
            "it out to use the course's own address."
        )
    folder = Path(directory) if directory is not None else cache_dir()
    folder = folder / subdir if subdir else folder
    target = folder / filename
    algorithm = _algorithm(expected_hash) if expected_hash is not None else "sha256"

    def mismatch(path):
        """What is wrong with the file at ``path``, or None."""
        size = os.path.getsize(path)
        if expected_size is not None and size != expected_size:
            return f"it has {size:,} bytes, expected {expected_size:,}"
        if expected_hash is not None:
            got = file_hash(path, algorithm)
            if got != expected_hash:
                return f"its {algorithm} is {got}, expected {expected_hash}"
        return None

    if target.exists() and mismatch(target) is None:
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
        except http.client.HTTPException as error:  # e.g. IncompleteRead: a cut-off transfer
            raise DataUnavailableError(
                f"The download of {url} was cut off ({type(error).__name__}: {error}); "
                "the partial file was deleted. Run the cell again."
            ) from error
        wrong = mismatch(partial)
        if wrong is not None:
            raise DownloadError(
                f"The download of {url} is corrupted: {wrong}. The bad file was "
                "deleted; run the cell again. If it fails again, the server's copy "
                "differs from the one the course was written for: please report it."
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
