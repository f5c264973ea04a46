"""camlab: Class Activation Maps for Keras 3, and the course that teaches them.

The public calls, by the notebook that introduces them:

- 01 (CAM on MNIST): ``load_mnist``, ``gap_cnn``, ``cam``, ``explain``,
  ``upsample``, ``normalize``, ``colorize``, ``overlay``, ``show_maps``,
  ``show_explanation``, ``check_class_scores``, ``check_cam_image``, ``fast_mode``,
  ``offline_mode``, ``expect``; ``explore`` (the explorer widget);
  ``map_peaks``, ``mask_boxes``, ``peak_in_box``, ``peak_on_mask`` (where a map points).
- 02 (CAM on Fashion-MNIST, step by step): ``load_fashion_mnist``,
  ``check_mass_off_item``, ``check_least_sure``.
- 03 (CAM on cats vs. dogs, boxes): ``load_cats_vs_dogs``, ``preprocess``,
  ``pretrained_gap_model``, ``box_from_map``, ``boxes_from_maps``, ``draw_box``,
  ``show_boxes``, ``box_slider``, ``check_decision_map``, ``check_box_from_map``;
  ``imagenet_classifier``, ``imagenet_class_names``, ``oxford_pets`` (real ImageNet maps,
  checked against the pets' masks).
- 04 (Grad-CAM): ``gradcam``, ``gradcam_plus_plus``, ``layercam``, ``scorecam``, ``scorecam_paper``,
  ``guided_backprop``, ``guided_gradcam``, ``gradient_image``, ``show_comparison``,
  ``flatten_cnn``, ``check_hirescam``, ``check_gradcam_plus_plus_weights``.
- 05 (judging explanations): ``localization_set``, ``pointing_game``, ``box_iou``,
  ``box_localization``, ``deletion``, ``insertion``, ``average_drop``,
  ``increase_in_confidence``, ``model_randomization``, ``check_average_drop``,
  ``check_box_iou``, ``check_steps_to_half``; baselines and the similarity measures
  live in ``camlab.metrics``; ``hirescam``, ``xgradcam``, ``eigencam``, ``ablationcam``.
- 06 (when maps lie, a bug zoo): ``check_fixed_gradcam``, ``check_gap_input_layer``,
  ``check_steady_cam``, ``check_resnet50_inputs``, ``check_signed_scale``,
  ``check_flatten_contributions``.
- A whole data set (docs/api.md, "Explaining a whole data set"): every method and metric
  also takes a ``tf.data.Dataset`` (``count=``, ``strategy=``); ``explain_stream`` yields
  one ``Explanation`` per batch (``camlab.stream``, ``camlab.replicas``).

Exercises (every notebook): ``progress`` (which of the notebook's exercises pass and
which questions are answered right), ``passed_or_reference`` (the learner's function once it
passes, camlab's until then), ``check_question`` (the questions at each notebook's end).

Every method is registered in ``METHODS`` (``camlab.methods``): each one is
``camlab.<name>(model, images, ...)``, a name in ``__all__``, a method of
``explain`` and of the explorer, whether it is registered there or later with
``camlab.methods.method``. Errors are ``CamlabError``s. Every notebook states
what a learner should see with ``expect`` (a miss fails under test, and informs
a learner without stopping the notebook). docs/api.md lists everything;
docs/developers.md shows the layout.
"""

# First, before anything imports TensorFlow: a clear message where it is missing
# (Colab's TPU runtimes), instead of a raw ImportError from deep inside Keras.
from camlab.course import require_tensorflow

require_tensorflow()

from camlab.boxes import (  # noqa: E402
    box_from_map,
    boxes_from_maps,
    draw_box,
    map_peaks,
    mask_boxes,
    peak_in_box,
    peak_on_mask,
    show_boxes,
)
from camlab.course import ExpectationMissed, TensorFlowMissingError, expect, fast_mode, offline_mode  # noqa: E402
from camlab.data import Dataset, load_fashion_mnist, load_mnist  # noqa: E402
from camlab.errors import (  # noqa: E402
    CamlabError,
    ClassIndexError,
    DataUnavailableError,
    DownloadError,
    InputError,
    KerasVersionError,
    ModelError,
)
from camlab.exercises import (  # noqa: E402
    check_box_from_map,
    check_box_iou,
    check_class_scores,
    check_cam_image,
    check_decision_map,
    check_steps_to_half,
    check_fixed_gradcam,
    check_flatten_contributions,
    check_gap_input_layer,
    check_gradcam_plus_plus_weights,
    check_hirescam,
    check_least_sure,
    check_average_drop,
    check_question,
    check_resnet50_inputs,
    check_signed_scale,
    check_steady_cam,
    check_mass_off_item,
    passed_or_reference,
    progress,
)
from camlab.localization import LocalizationSet, localization_set  # noqa: E402
from camlab.maps import normalize, upsample  # noqa: E402
from camlab.methods import METHODS  # noqa: E402
from camlab.metrics import (  # noqa: E402
    average_drop,
    box_iou,
    box_localization,
    deletion,
    increase_in_confidence,
    insertion,
    model_randomization,
    pointing_game,
)
from camlab.models import flatten_cnn, gap_cnn, imagenet_class_names, imagenet_classifier, pretrained_gap_model  # noqa: E402
from camlab.photos import Photos, load_cats_vs_dogs, oxford_pets, preprocess  # noqa: E402
from camlab.pipeline import (  # noqa: E402
    Explanation,
    explain,
    explain_stream,
    guided_backprop,
    guided_gradcam,
    method_function,
)
from camlab.viz import (  # noqa: E402
    colorize,
    gradient_image,
    overlay,
    show_comparison,
    show_explanation,
    show_maps,
)
from camlab.widgets import box_slider, explore  # noqa: E402

__version__ = "0.2.0"

# Everything public except the methods, which come from METHODS (see __getattr__).
_PUBLIC_NAMES = (
    "METHODS", "CamlabError", "ClassIndexError", "DataUnavailableError", "Dataset",
    "DownloadError", "ExpectationMissed", "Explanation", "InputError", "KerasVersionError",
    "LocalizationSet", "ModelError", "Photos", "TensorFlowMissingError",
    # 01
    "load_mnist", "gap_cnn", "explain", "explain_stream", "upsample", "normalize", "colorize", "overlay",
    "show_maps", "show_explanation", "check_class_scores", "check_cam_image", "fast_mode",
    "offline_mode", "expect", "explore", "map_peaks", "mask_boxes", "peak_in_box",
    "peak_on_mask",
    # 02
    "load_fashion_mnist", "check_mass_off_item", "check_least_sure",
    # 03
    "load_cats_vs_dogs", "preprocess", "pretrained_gap_model", "box_from_map",
    "boxes_from_maps", "draw_box", "show_boxes", "box_slider", "check_decision_map",
    "check_box_from_map", "imagenet_classifier", "imagenet_class_names", "oxford_pets",
    # 04
    "guided_backprop", "guided_gradcam", "gradient_image", "show_comparison", "flatten_cnn",
    "check_hirescam", "check_gradcam_plus_plus_weights",
    # 05
    "localization_set", "pointing_game", "box_iou", "box_localization", "deletion",
    "insertion", "average_drop", "increase_in_confidence", "model_randomization",
    "check_average_drop", "check_box_iou", "check_steps_to_half",
    # 06
    "check_fixed_gradcam", "check_gap_input_layer", "check_steady_cam", "check_resnet50_inputs",
    "check_signed_scale", "check_flatten_contributions",
    # exercises, every notebook
    "passed_or_reference", "progress", "check_question",
)

# The methods registered when camlab loads, as plain attributes (camlab.cam, camlab.gradcam, ...).
globals().update({name: method_function(name) for name in METHODS})


def __getattr__(name):
    """``camlab.__all__`` and ``camlab.<method>`` for a method registered after import."""
    if name == "__all__":
        return list(_PUBLIC_NAMES) + [n for n in METHODS if n not in _PUBLIC_NAMES]
    if name in METHODS:
        return method_function(name)
    raise AttributeError(f"module 'camlab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(METHODS))
