"""Course settings every notebook shares: fast mode and loud notices.

Fast mode shrinks data and epochs so that the whole notebook suite runs in CI
in minutes. It is on when the environment variable ``CAMLAB_FAST`` is set to
1/true/yes, or when ``CI=true`` (as CI services set it). ``CAMLAB_FAST=0``
turns it off even under CI. Learners run the full mode.

``expect`` is how every notebook states what a learner should see (an accuracy
floor, a map that peaks on the object). Under test it fails like an assert; in a
learner's full run a miss prints a notice and the lesson goes on, so that one
unlucky seed does not stop a class pressing "Run all". Exact math
stays a plain ``assert`` in the notebooks.
"""

from __future__ import annotations

import os
import sys
import textwrap

import numpy as np

from camlab.errors import CamlabError, InputError

_TRUE = ("1", "true", "yes", "on")


def fast_mode() -> bool:
    """True when notebooks should run their quick version (see module docstring)."""
    flag = os.environ.get("CAMLAB_FAST", "").strip().lower()
    if flag:
        return flag in _TRUE
    return os.environ.get("CI", "").strip().lower() in _TRUE


def offline_mode() -> bool:
    """True when ``CAMLAB_OFFLINE`` is 1/true/yes: download nothing, use the offline stand-ins.

    The notebooks pass it to the loaders (``offline=OFFLINE``), so that CI's
    full-mode run takes the same few minutes with or without a network.
    """
    return os.environ.get("CAMLAB_OFFLINE", "").strip().lower() in _TRUE


def notice(title: str, body: str) -> None:
    """Print a boxed notice that cannot be missed in a notebook's output."""
    width = 78
    rule = "!" * width
    lines = [rule, f"!! {title}"]
    for paragraph in body.strip().split("\n"):
        lines += ["!! " + line for line in textwrap.wrap(paragraph, width - 3)] or ["!!"]
    lines.append(rule)
    print("\n".join(lines), file=sys.stdout, flush=True)


class ExpectationMissed(CamlabError, AssertionError):
    """A notebook's expectation was missed under test (fast mode, or ``CI=true``)."""


def under_test() -> bool:
    """True when a missed expectation must fail: fast mode, or ``CI=true``.

    ``CI=true CAMLAB_FAST=0`` (CI's full-mode run) is under test too.
    """
    return fast_mode() or os.environ.get("CI", "").strip().lower() in _TRUE


def expect(condition, expected: str, measured: str, meaning: str, advice: str) -> bool:
    """Check a result a learner should see; fail under test, inform a learner.

    ``condition``: the check, True or False (a bool, or a NumPy bool; anything
    else, such as the string "False" or NaN, is an ``InputError``). The four texts are
    written for a learner: ``expected`` what should have come out ("test
    accuracy >= 90%"), ``measured`` what did ("84.1%"), ``meaning`` what a miss
    means ("the model is weaker than it should be; its maps may mislead"), and
    ``advice`` what to try ("train longer: raise EPOCHS in the Parameters cell").

    Returns ``bool(condition)``. When it is False: under test (``under_test()``)
    raises ``ExpectationMissed``, an ``AssertionError``, with all four texts;
    otherwise prints a notice that cannot be missed and returns False, and the
    notebook goes on.
    """
    if isinstance(condition, np.ndarray) and condition.dtype == bool and condition.size == 1:
        condition = condition.item()
    if not isinstance(condition, (bool, np.bool_)):
        raise InputError(
            f"expect's condition must be True or False, e.g. accuracy >= ACCURACY_FLOOR; got "
            f"{type(condition).__name__} {condition!r:.60}. Compare the measured value with "
            "its floor (for an array, use .all() or .any())."
        )
    if bool(condition):
        return True
    if under_test():
        raise ExpectationMissed(
            f"Expected {expected}; measured {measured}. {meaning} What to try: {advice}")
    notice(f"EXPECTATION MISSED: {expected}",
           f"Expected: {expected}\nMeasured: {measured}\nWhat it means: {meaning}\n"
           f"What to try: {advice}\nThe notebook goes on; read what follows with this in mind.")
    return False


class TensorFlowMissingError(CamlabError, ImportError):
    """TensorFlow is not installed (as on Colab's TPU runtimes)."""


def require_tensorflow() -> None:
    """Import TensorFlow quietly, or say what to do where it is missing.

    ``import camlab`` calls it first. Without TensorFlow (Colab's TPU
    runtimes) it raises ``TensorFlowMissingError``, with the fix. Otherwise it
    imports TensorFlow with the C++ side's start-up lines (the oneDNN notice,
    CPU-instruction and CUDA notices) sent to /dev/null: they are printed while
    the library loads, before ``TF_CPP_MIN_LOG_LEVEL`` is read (measured with
    TensorFlow 2.21), and a notebook shows them as a pink box. oneDNN stays on.
    Python errors are not hidden: an import that fails raises as usual. A
    TensorFlow imported earlier (``import keras`` before ``import camlab``) is
    left as it is.
    """
    import importlib.util

    if "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None:
        return
    if importlib.util.find_spec("tensorflow") is None:
        raise TensorFlowMissingError(
            "camlab needs TensorFlow, and this Python has none. On Google Colab, TPU runtimes "
            "come without TensorFlow: choose Runtime > Change runtime type > CPU (or a GPU such "
            "as T4), then run the notebook again from the top. Elsewhere: "
            "pip install \"camlab-course[tf]\".")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no file descriptor 2 to silence
        import tensorflow  # noqa: F401
        return
    quiet = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(quiet, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(quiet)
