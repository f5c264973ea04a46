"""camlab: Class Activation Maps for Keras 3, and the course that teaches them.

The public calls, by the notebook that introduces them:

- 01 (CAM on MNIST): ``load_mnist``, ``gap_cnn``, ``cam``, ``explain``,
  ``upsample``, ``normalize``, ``colorize``, ``overlay``, ``show_maps``,
  ``show_explanation``, ``check_cam``, ``fast_mode``, ``offline_mode``,
  ``expect``; ``explore`` (the explorer
  widget); ``map_peaks``, ``mask_boxes``, ``peak_in_box``, ``peak_on_mask``
  (where a map points).
- 02 (CAM on Fashion-MNIST, step by step): ``load_fashion_mnist``,
  ``check_upsampled_cam``, ``check_least_sure``.
- 03 (CAM on cats vs. dogs, boxes): ``load_cats_vs_dogs``, ``preprocess``,
  ``pretrained_gap_model``, ``box_from_map``, ``boxes_from_maps``, ``draw_box``,
  ``show_boxes``, ``box_slider``, ``check_class_cam``, ``check_box_from_map``.
- 04 (Grad-CAM): ``gradcam``, ``gradcam_plus_plus``, ``layercam``, ``scorecam``,
  ``guided_backprop``, ``guided_gradcam``, ``gradient_image``, ``show_comparison``,
  ``flatten_cnn``, ``check_gradcam_weights``, ``check_gradcam_plus_plus_weights``.

- 05 (judging explanations): ``localization_set``, ``pointing_game``, ``box_iou``,
  ``box_localization``, ``deletion``, ``insertion``, ``average_drop``,
  ``increase_in_confidence``, ``model_randomization``, ``check_pointing_game``,
  ``check_box_iou``, ``check_curve_auc``; baselines and the similarity measures
  live in ``camlab.metrics``. The methods the peers have:
  ``hirescam``, ``xgradcam``, ``eigencam``, ``ablationcam``.

Exercises (every notebook): ``progress`` (which of the notebook's exercises pass),
``passed_or_reference`` (the learner's function once it passes, camlab's until then);
01 adds ``check_cam_image``.

Every method is registered in ``METHODS``. Errors are ``CamlabError``s.
Every notebook states what a learner should see with ``expect`` (a miss fails
under test, and informs a learner without stopping the notebook).
"""

# First, before anything imports TensorFlow: a clear message where it is missing
# (Colab's TPU runtimes), instead of a raw ImportError from deep inside Keras.
from camlab.course import require_tensorflow

require_tensorflow()

from camlab.boxes import (  # noqa: E402
    box_from_map,
    box_slider,
    boxes_from_maps,
    draw_box,
    map_peaks,
    mask_boxes,
    peak_in_box,
    peak_on_mask,
    show_boxes,
)
from camlab.course import (
    ExpectationMissed,
    TensorFlowMissingError,
    expect,
    fast_mode,
    offline_mode,
)
from camlab.data import Dataset, load_fashion_mnist, load_mnist
from camlab.errors import (
    CamlabError,
    ClassIndexError,
    DataUnavailableError,
    DownloadError,
    InputError,
    KerasVersionError,
    ModelError,
)
from camlab.localization import LocalizationSet, localization_set
from camlab.metrics import (
    average_drop,
    box_iou,
    box_localization,
    check_box_iou,
    check_curve_auc,
    check_pointing_game,
    deletion,
    increase_in_confidence,
    insertion,
    model_randomization,
    pointing_game,
)
from camlab.exercises import (
    check_box_from_map,
    check_cam,
    check_cam_image,
    check_class_cam,
    check_gradcam_plus_plus_weights,
    check_gradcam_weights,
    check_least_sure,
    check_upsampled_cam,
    passed_or_reference,
    progress,
)
from camlab.maps import normalize, upsample
from camlab.methods import (
    METHODS,
    Explanation,
    ablationcam,
    cam,
    eigencam,
    explain,
    gradcam,
    gradcam_plus_plus,
    guided_backprop,
    guided_gradcam,
    hirescam,
    layercam,
    scorecam,
    xgradcam,
)
from camlab.models import flatten_cnn, gap_cnn, pretrained_gap_model
from camlab.photos import Photos, load_cats_vs_dogs, preprocess
from camlab.viz import (
    colorize,
    gradient_image,
    overlay,
    show_comparison,
    show_explanation,
    show_maps,
)
from camlab.widgets import explore

__version__ = "0.1.0"

__all__ = [
    "METHODS", "CamlabError", "ClassIndexError", "DataUnavailableError", "Dataset",
    "DownloadError", "ExpectationMissed", "Explanation", "InputError", "KerasVersionError", "ModelError", "Photos", "box_from_map",
    "box_slider", "boxes_from_maps", "cam", "check_box_from_map", "check_cam",
    "check_class_cam", "check_gradcam_plus_plus_weights", "check_gradcam_weights",
    "check_least_sure", "check_upsampled_cam", "colorize", "draw_box", "expect", "explain", "explore",
    "fast_mode", "flatten_cnn", "gap_cnn", "gradcam", "gradcam_plus_plus", "gradient_image",
    "guided_backprop", "guided_gradcam", "layercam", "load_cats_vs_dogs", "load_fashion_mnist",
    "load_mnist", "map_peaks", "mask_boxes", "normalize", "offline_mode", "overlay", "peak_in_box", "peak_on_mask", "preprocess", "pretrained_gap_model", "scorecam",
    "show_boxes", "show_comparison", "show_explanation", "show_maps", "TensorFlowMissingError",
    "upsample",
    # exercises: every notebook
    "check_cam_image", "passed_or_reference", "progress",
    # 05: judging explanations
    "LocalizationSet", "localization_set", "average_drop", "box_iou", "box_localization",
    "deletion", "increase_in_confidence", "insertion", "model_randomization", "pointing_game",
    "hirescam", "xgradcam", "eigencam", "ablationcam",
    "check_box_iou", "check_curve_auc", "check_pointing_game",
]
