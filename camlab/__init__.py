"""camlab: Class Activation Maps for Keras 3, and the course that teaches them.

The public calls, by the notebook that introduces them:

- 01 (CAM on MNIST): ``load_mnist``, ``gap_cnn``, ``cam``, ``explain``,
  ``upsample``, ``normalize``, ``colorize``, ``overlay``, ``show_maps``,
  ``show_explanation``, ``check_cam``, ``fast_mode``.
- 04 (Grad-CAM): ``gradcam``, ``gradcam_plus_plus``, ``layercam``, ``scorecam``.

Every method is registered in ``METHODS``. Errors are ``CamlabError``s.
"""

from camlab.course import fast_mode
from camlab.data import Dataset, load_mnist
from camlab.errors import (
    CamlabError,
    ClassIndexError,
    DataUnavailableError,
    DownloadError,
    InputError,
    ModelError,
)
from camlab.exercises import check_cam
from camlab.maps import normalize, upsample
from camlab.methods import (
    METHODS,
    Explanation,
    cam,
    explain,
    gradcam,
    gradcam_plus_plus,
    layercam,
    scorecam,
)
from camlab.models import gap_cnn
from camlab.viz import colorize, overlay, show_explanation, show_maps

__version__ = "0.1.0"

__all__ = [
    "METHODS", "CamlabError", "ClassIndexError", "DataUnavailableError", "Dataset",
    "DownloadError", "Explanation", "InputError", "ModelError", "cam", "check_cam",
    "colorize", "explain", "fast_mode", "gap_cnn", "gradcam", "gradcam_plus_plus",
    "layercam", "load_mnist", "normalize", "overlay", "scorecam", "show_explanation",
    "show_maps", "upsample",
]
