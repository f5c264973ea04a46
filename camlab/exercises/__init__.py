"""The learners' exercises: the framework (``camlab.exercises.framework``),
the checked questions (``camlab.exercises.questions``), and the checks and
questions of each notebook, one module per notebook (``notebook01`` to
``notebook05``).

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
    check_cam,
    check_cam_image,
    reference_cam,
    reference_cam_image,
)
from camlab.exercises.notebook02 import (
    _least_sure_cases as _least_sure_cases,  # for a test of the cases
    check_least_sure,
    check_upsampled_cam,
    reference_least_sure,
    reference_upsampled_cam,
)
from camlab.exercises.notebook03 import (
    check_box_from_map,
    check_class_cam,
    reference_class_cam,
)
from camlab.exercises.notebook04 import (
    check_gradcam_plus_plus_weights,
    check_gradcam_weights,
    reference_gradcam_plus_plus_weights,
    reference_gradcam_weights,
)
from camlab.exercises.questions import QUESTIONS, Question, check_question, question
from camlab.exercises.notebook05 import (
    check_box_iou,
    check_curve_auc,
    check_pointing_game,
    reference_box_iou,
    reference_curve_auc,
    reference_pointing_hit,
)

__all__ = [
    # the framework
    "EXERCISES", "Exercise", "Progress", "Verdict", "compare", "exercise",
    "isolated_session", "passed_or_reference", "progress", "report", "run_check",
    # the questions at the end of every notebook
    "QUESTIONS", "Question", "check_question", "question",
    # 01: CAM on MNIST
    "check_cam", "check_cam_image", "reference_cam", "reference_cam_image",
    # 02: CAM on Fashion-MNIST, step by step
    "check_least_sure", "check_upsampled_cam", "reference_least_sure",
    "reference_upsampled_cam",
    # 03: CAM on cats vs. dogs, boxes
    "check_box_from_map", "check_class_cam", "reference_class_cam",
    # 04: Grad-CAM
    "check_gradcam_plus_plus_weights", "check_gradcam_weights",
    "reference_gradcam_plus_plus_weights", "reference_gradcam_weights",
    # 05: judging explanations
    "check_box_iou", "check_curve_auc", "check_pointing_game", "reference_box_iou",
    "reference_curve_auc", "reference_pointing_hit",
]
