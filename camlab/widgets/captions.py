"""The explorer's words: the map's title, the caption, and the notes under the pictures.

Each function returns a short piece of HTML (names escaped) for an
``ipywidgets.HTML``; none computes a map. Probabilities are in [0, 1], maps
in [0, 1], class indices in 0 .. num_classes - 1.
"""

from __future__ import annotations

import html

import numpy as np

from camlab.methods import METHODS

SAME_MAP_TOLERANCE = 1e-3  # maps in [0, 1] closer than this everywhere are "the same map"
# Why two methods can give one map (Selvaraju et al. 2017, sec. 3.1: on a GAP + Dense head
# Grad-CAM's channel weights are the Dense weights divided by H*W).
SAME_MAP_REASONS = {
    frozenset(("cam", "gradcam")): (
        "On a GAP + Dense head, Grad-CAM's channel weights are the Dense weights divided by "
        "the number of positions, so Grad-CAM is ReLU(CAM) divided by a constant: scaled to "
        "[0, 1], the two maps are equal wherever the CAM has no negative values."),
    frozenset(("gradcam", "hirescam")): (
        "On a GAP head the gradient is the same at every position, so HiResCAM's "
        "position-wise product equals Grad-CAM's averaged weights."),
}


def title_of(method) -> str:
    """The registered title of ``method`` ("Grad-CAM"), or its name once unregistered."""
    entry = METHODS.get(method)
    return method if entry is None else entry.title


def map_title(method, class_name) -> str:
    """'<b>CAM</b> of <i>dog</i>': what the map panel shows (and, for a method whose
    map does not depend on the class, that it is the same for every class)."""
    entry = METHODS.get(method)
    anyway = "" if entry is None or entry.class_specific else " <small>(the same for every class)</small>"
    return f"<b>{html.escape(title_of(method))}</b> of <i>{html.escape(class_name)}</i>{anyway}"


def caption(probabilities, class_names, label=None) -> str:
    """The prediction with its probability, the true label (right or wrong) and the top 3.

    probabilities: float (num_classes,) in [0, 1]; label: the true class or None.
    """
    predicted = int(np.argmax(probabilities))
    verdict = ""
    if label is not None:
        right = label == predicted
        verdict = (f" &nbsp; true: <b>{html.escape(class_names[label])}</b> "
                   f"<span style='color:{'green' if right else 'red'}'>"
                   f"{'&#10003; right' if right else '&#10007; wrong'}</span>")
    top = np.argsort(probabilities)[::-1][:3]
    ranking = ", ".join(f"{html.escape(class_names[c])} {probabilities[c]:.2f}" for c in top)
    return (f"predicted: <b>{html.escape(class_names[predicted])}</b> "
            f"(p = {probabilities[predicted]:.3f}){verdict}"
            f"<br><small>top classes: {ranking}</small>")


def flat_map_note(method, class_name) -> str:
    """The note under a map with no positive value (max <= 0)."""
    return (f"<small>Note: This map is zero everywhere: "
            f"{html.escape(title_of(method))} finds no positive evidence for "
            f"<i>{html.escape(class_name)}</i> in this image.</small>")


def same_map_note(method, other, heat, before) -> str:
    """The note when ``other`` (the method shown before) gave ``before``, the same map
    (H, W) as ``heat`` within ``SAME_MAP_TOLERANCE``, and why; else ""."""
    if before is None or np.abs(before - heat).max() > SAME_MAP_TOLERANCE:
        return ""
    why = SAME_MAP_REASONS.get(frozenset((method, other)),
                               "The two methods weigh the feature maps alike on this model "
                               "and image; they differ on others.")
    return (f"<small>Note: <b>{html.escape(title_of(method))}</b> gives the same map "
            f"as <b>{html.escape(title_of(other))}</b> here. {html.escape(why)}</small>")


def unavailable_note(unavailable) -> str:
    """The list of registered methods that do not apply ({name: why not}), or ""."""
    items = "".join(f"<li><b>{html.escape(METHODS[n].title)}</b>: {html.escape(why)}</li>"
                    for n, why in unavailable.items() if n in METHODS)
    return f"<small>Not available for this model:<ul>{items}</ul></small>" if items else ""
