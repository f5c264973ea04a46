"""Is a map right? Localization, faithfulness and sanity checks (notebook 05).

Each metric is a short function named as in its paper, in one module per kind:

- ``camlab.metrics.localization``: ``pointing_game`` (Zhang et al. 2016/2018),
  ``box_iou`` and ``box_localization`` (Zhou et al. 2016, sec. 3).
- ``camlab.metrics.perturbation``: ``deletion`` and ``insertion`` (Petsiuk et
  al. 2018, RISE, sec. 4.1), ``pixel_ranks``.
- ``camlab.metrics.confidence``: ``average_drop`` and ``increase_in_confidence``
  (Chattopadhay et al. 2018, Grad-CAM++, sec. 6.1.1), ``masked_confidence``.
- ``camlab.metrics.sanity``: ``model_randomization`` (Adebayo et al. 2018,
  sec. 3.1) with ``spearman`` and ``ssim`` (Wang et al. 2004).
- ``camlab.metrics.baselines``: ``random_maps``, ``centre_maps`` and
  ``edge_maps``, the floor every number must beat.

Every probability is the pipeline's (``camlab.pipeline.class_probabilities``,
``camlab.forward``): the class scores read from the model's head, then its
softmax or sigmoid, equal to ``model.predict``; one sigmoid unit is two
classes (1 - p, p). The user's model is never modified. Notebook 05's
exercises on these metrics live in ``camlab.exercises.notebook05``.
"""

from camlab.metrics.baselines import centre_maps, edge_maps, random_maps
from camlab.metrics.confidence import (
    Confidence,
    average_drop,
    increase_in_confidence,
    masked_confidence,
)
from camlab.metrics.localization import BoxScores, box_iou, box_localization, pointing_game
from camlab.metrics.perturbation import Curves, deletion, insertion, pixel_ranks
from camlab.metrics.sanity import RandomizationCheck, model_randomization, spearman, ssim
from camlab.pipeline import class_probabilities

__all__ = [
    "BoxScores", "Confidence", "Curves", "RandomizationCheck", "average_drop", "box_iou",
    "box_localization", "centre_maps", "class_probabilities", "deletion", "edge_maps",
    "increase_in_confidence", "insertion", "masked_confidence", "model_randomization",
    "pixel_ranks", "pointing_game", "random_maps", "spearman", "ssim",
]
