"""The learners' exercises: the framework (``camlab.exercises.framework``),
the checked questions (``camlab.exercises.questions``), and the checks and
questions of each notebook, one module per notebook (``notebook01`` to
``notebook06``).

Every name is re-exported here. The notebook modules are imported in course
order, so that ``EXERCISES`` (check name -> its exercise) lists the
exercises in that order, as ``progress`` shows them.
"""

from camlab.exercises.framework import (
    EXERCISES,
    _LATEST as _LATEST,  # the same dict: changed in place, never replaced
    Exercise,
    Progress,
    Verdict,
    compare,
    exercise,
    isolated_session,
    passed_or_reference,
    progress,
    report,
    run_check,
)
from camlab.exercises.notebook01 import (
    check_class_scores,
    check_cam_image,
    reference_class_scores,
    reference_cam_image,
)
from camlab.exercises.notebook02 import (
    _least_sure_cases as _least_sure_cases,  # for a test of the cases
    check_least_sure,
    check_mass_off_item,
    reference_least_sure,
    reference_mass_off_item,
)
from camlab.exercises.notebook03 import (
    check_box_from_map,
    check_decision_map,
    reference_decision_map,
)
from camlab.exercises.notebook04 import (
    check_gradcam_plus_plus_weights,
    check_hirescam,
    reference_gradcam_plus_plus_weights,
    reference_hirescam,
)
from camlab.exercises.questions import QUESTIONS, Question, check_question, question
from camlab.exercises.notebook05 import (
    check_box_iou,
    check_steps_to_half,
    check_average_drop,
    reference_box_iou,
    reference_steps_to_half,
    reference_average_drop,
)
from camlab.exercises.notebook06 import (
    check_fixed_gradcam,
    check_flatten_contributions,
    check_gap_input_layer,
    check_resnet50_inputs,
    check_signed_scale,
    check_steady_cam,
    reference_fixed_gradcam,
    reference_flatten_contributions,
    reference_gap_input_layer,
    reference_resnet50_inputs,
    reference_signed_scale,
    reference_steady_cam,
)

__all__ = [
    # the framework
    "EXERCISES", "Exercise", "Progress", "Verdict", "compare", "exercise",
    "isolated_session", "passed_or_reference", "progress", "report", "run_check",
    # the questions at the end of every notebook
    "QUESTIONS", "Question", "check_question", "question",
    # 01: CAM on MNIST
    "check_class_scores", "check_cam_image", "reference_class_scores", "reference_cam_image",
    # 02: CAM on Fashion-MNIST, step by step
    "check_least_sure", "check_mass_off_item", "reference_least_sure",
    "reference_mass_off_item",
    # 03: CAM on cats vs. dogs, boxes
    "check_box_from_map", "check_decision_map", "reference_decision_map",
    # 04: Grad-CAM
    "check_gradcam_plus_plus_weights", "check_hirescam",
    "reference_gradcam_plus_plus_weights", "reference_hirescam",
    # 05: judging explanations
    "check_box_iou", "check_steps_to_half", "check_average_drop", "reference_box_iou",
    "reference_steps_to_half", "reference_average_drop",
    # 06: when maps lie, a bug zoo
    "check_fixed_gradcam", "check_gap_input_layer", "check_steady_cam", "check_resnet50_inputs",
    "check_signed_scale", "check_flatten_contributions", "reference_fixed_gradcam",
    "reference_gap_input_layer", "reference_steady_cam", "reference_resnet50_inputs",
    "reference_signed_scale", "reference_flatten_contributions",
]
