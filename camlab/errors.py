"""The one family of errors camlab raises.

Every message says what went wrong and what to do about it. Catch
`CamlabError` to catch them all; each subclass is also the matching built-in
error (`ValueError`, `IndexError`, `OSError`), so generic handlers keep working.
"""


class CamlabError(Exception):
    """Base class of every error camlab raises on purpose."""


class ModelError(CamlabError, ValueError):
    """The model cannot be explained this way (no conv layer, no GAP head, ...)."""


class InputError(CamlabError, ValueError):
    """The images do not fit the model: shape, dtype, NaN or Inf."""


class ClassIndexError(CamlabError, IndexError):
    """A class index is outside 0 .. num_classes - 1."""


class DownloadError(CamlabError, OSError):
    """A download is corrupted (wrong checksum) or cannot be read."""


class DataUnavailableError(DownloadError):
    """A download cannot be reached (no network); loaders fall back on this."""


class KerasVersionError(ModelError):
    """This Keras lacks a piece of its inside that camlab reads (a newer, untested release)."""
