"""Checks for the learners' exercises: run their function, say what is wrong.

Each ``check_*`` calls the learner's function on a few generated cases,
compares with camlab's reference, prints one message (right, or what is
wrong: the shape, the scale, the largest error) and returns True or False.
It never raises because of the learner's code, so a notebook with an
unfinished exercise still runs to the end.

Every check is registered with ``@exercise`` (its notebook, a title, the
name of the function the learner writes): ``progress("01")`` then shows which
exercises of a notebook pass, and ``passed_or_reference(function)`` lets the
cells after an exercise use camlab's answer while the learner's is not right
yet. This module is that framework; the checks themselves live in one module
per notebook (``camlab.exercises.notebook01`` to ``notebook05``). How to add a
check: docs/developers.md ("Add an exercise") and the instructor guide
(docs/instructors.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import traceback

import numpy as np

from camlab.errors import InputError


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``ok`` and the message shown to the learner."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok


def _describe_call(arguments) -> str:
    shapes = ", ".join(str(np.shape(a)) for a in arguments)
    return f"arguments of shapes {shapes}"


def compare(answer, expected, hints=None, tolerance=1e-4) -> Verdict:
    """Compare an answer with the expected array and explain the difference.

    ``hints`` maps a diagnosis to a sentence: keys "shape:<shape>" (a wrong
    shape), "factor:<value>" (an answer that is the expected one times a
    constant). The tolerance is relative to the largest expected value.
    """
    hints = hints or {}
    expected = np.asarray(expected, dtype="float64")
    if answer is None:
        return Verdict(False, "Your function returned None: compute the result and `return` it.")
    if isinstance(answer, (str, bytes)) or (isinstance(answer, np.ndarray) and answer.dtype.kind in "USO"):
        return Verdict(False, f"Your function returned text ({answer!r:.40}), not a number: "
                              "return the number itself, not a string.")
    try:
        got = np.asarray(answer, dtype="float64")
    except (TypeError, ValueError):
        return Verdict(False, f"Your function returned a {type(answer).__name__}, not an array of numbers.")
    if got.shape != expected.shape:
        message = f"Wrong shape: expected {expected.shape}, got {got.shape}."
        hint = hints.get(f"shape:{got.shape}")
        return Verdict(False, message + (f" {hint}" if hint else ""))
    if not np.isfinite(got).all():
        return Verdict(False, "Your result contains NaN or Inf: look for a division by zero.")
    scale = max(1.0, float(np.abs(expected).max()))
    error = np.abs(got - expected)
    worst = float(error.max())
    if worst <= tolerance * scale:
        return Verdict(True, f"Correct! (largest difference {worst:.2g})")
    energy = float((expected * expected).sum())
    if energy > 0:
        factor = float((got * expected).sum() / energy)
        if np.abs(got - factor * expected).max() <= tolerance * scale * max(1.0, abs(factor)):
            message = (f"Right pattern, wrong scale: your result is {factor:.4g} times "
                       "the expected one.")
            for key, hint in hints.items():
                if key.startswith("factor:") and np.isclose(factor, float(key[7:]), rtol=1e-3):
                    message += f" {hint}"
            return Verdict(False, message)
    where = np.unravel_index(int(error.argmax()), error.shape)
    return Verdict(
        False,
        f"Not yet: the largest error is {worst:.4g} at index {tuple(int(i) for i in where)} "
        f"(expected {expected[where]:.4g}, got {got[where]:.4g}).",
    )


def run_check(function, cases, reference, hints_for=None, mistakes_for=None,
              nan_hint=None) -> Verdict:
    """Call ``function(*case)`` for every case and compare with ``reference(*case)``.

    ``hints_for(*case)``: hints for ``compare``. ``mistakes_for(*case)``:
    {message: the array a known mistake gives}; a wrong answer equal to one of
    them gets that message instead of the raw difference. ``nan_hint``: a
    sentence added when the answer holds NaN or Inf (where the exercise has a
    division by zero to avoid, and how).
    """
    for case in cases:
        try:
            answer = function(*[np.array(a, copy=True) for a in case])
        except Exception as error:  # the learner's code: report, never raise
            where = traceback.extract_tb(error.__traceback__)[-1]
            return Verdict(
                False,
                f"Your function raised {type(error).__name__}: {error} "
                f"(line {where.lineno}) when called with {_describe_call(case)}.",
            )
        verdict = compare(answer, reference(*case), hints_for(*case) if hints_for else None)
        if not verdict.ok:
            known = mistakes_for(*case) if mistakes_for else {}
            message = next((m for m, wrong in known.items()
                            if np.shape(answer) == np.shape(wrong) and compare(answer, wrong).ok),
                           verdict.message)
            if nan_hint and "NaN" in message:
                message += f" {nan_hint}"
            return Verdict(False, message + f" [Called with {_describe_call(case)}.]")
    return verdict


def report(verdict: Verdict) -> bool:
    """Print the verdict for the learner (✅ or ❌ and its message); return ``ok``."""
    print(("✅ " if verdict.ok else "❌ ") + verdict.message)
    return verdict.ok


@dataclasses.dataclass(frozen=True)
class Exercise:
    """A registered check: where it is taught and what the learner writes."""

    notebook: str  # "01"
    title: str  # what the learner writes, in a few words
    function_name: str  # the name of the learner's function in the notebook
    reference: object = None  # camlab's answer, same signature, or None
    check: object = None  # the registered check itself


EXERCISES: dict[str, Exercise] = {}  # check name -> its exercise, in course order
_LATEST: dict[str, tuple[bool, object]] = {}  # check name -> (passed, the function checked)
QUESTIONS: dict = {}  # "01.3" -> its Question (camlab.exercises.questions), in course order
_ANSWERED: dict[str, bool] = {}  # "01.3" -> whether the latest answer was right


def exercise(notebook: str, title: str, function_name: str, reference=None):
    """Register a check (a decorator): its verdicts feed ``progress`` and
    ``passed_or_reference``, and it never raises, whatever the learner wrote.

    The check takes the learner's function and returns True or False; it
    should print its verdict with ``report``.
    """
    def register(check):
        @functools.wraps(check)
        def recorded(function) -> bool:
            if function is None:
                passed = report(Verdict(False, f"There is no function to check yet: write "
                                               f"{function_name} in the cell above and run it."))
            elif not callable(function):
                passed = report(Verdict(
                    False, f"Pass the function itself, not what it returns: "
                           f"camlab.{check.__name__}({function_name}), without parentheses "
                           f"after {function_name} (you passed a {type(function).__name__})."))
            else:
                passed = _run(check, function)
            _LATEST[check.__name__] = (passed, function)
            return passed

        EXERCISES[check.__name__] = Exercise(notebook, title, function_name, reference, recorded)
        return recorded

    return register


def _run(check, function) -> bool:
    """Run one check on the learner's function; a check never stops the notebook."""
    try:
        return bool(check(function))
    except Exception as error:  # noqa: BLE001
        return report(Verdict(False, "The check could not judge your answer "
                                     f"({type(error).__name__}: {error})."))


@dataclasses.dataclass(frozen=True)
class Progress:
    """Which exercises of a notebook pass, and which questions are answered
    right, as last checked in this session.

    ``results``: check name -> True (passes), False (checked, not yet) or
    None (not run yet). ``questions``: "01.3" -> True (right), False (answered,
    not right yet) or None (not answered yet). Shown as one line each.
    """

    notebook: str
    results: dict
    questions: dict = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(1 for ok in self.results.values() if ok)

    @property
    def answered(self) -> int:
        """How many questions are answered right."""
        return sum(1 for ok in self.questions.values() if ok)

    @property
    def complete(self) -> bool:
        """Every exercise passes and every question is answered right."""
        return all(self.results.values()) and all(self.questions.values())

    def __repr__(self) -> str:
        lines = [f"Exercises of notebook {self.notebook}: {self.passed} of "
                 f"{len(self.results)} pass"]
        for name, ok in self.results.items():
            item = EXERCISES[name]
            mark = {True: "✅", False: "❌", None: "⬜"}[ok]
            state = {True: "passes", False: "not yet", None: "not run yet"}[ok]
            lines.append(f"  {mark} {item.title} ({item.function_name}, "
                         f"camlab.{name}): {state}")
        if self.questions:
            lines.append(f"Questions: {self.answered} of {len(self.questions)} right")
        for key, ok in self.questions.items():
            mark = {True: "✅", False: "❌", None: "⬜"}[ok]
            state = {True: "right", False: "not yet", None: "not answered yet"}[ok]
            lines.append(f"  {mark} {key} {QUESTIONS[key].title}: {state}")
        return "\n".join(lines)


def progress(notebook: str) -> Progress:
    """The exercises of ``notebook`` ("01") and whether each passes, and its
    questions and whether each is answered right, from the latest run of each
    check in this Python session (this notebook's kernel).
    ``notebook`` is a notebook's two-digit number as a string; one with no
    exercises is an ``InputError`` that lists those that have some."""
    known = sorted({item.notebook for item in EXERCISES.values()})
    if not isinstance(notebook, str) or notebook not in known:
        raise InputError(f"progress takes a notebook's number as a string, one of {known}; "
                         f"got {notebook!r}.")
    names = [name for name, item in EXERCISES.items() if item.notebook == notebook]
    keys = [key for key, item in QUESTIONS.items() if item.notebook == notebook]
    return Progress(notebook, {name: _LATEST.get(name, (None, None))[0] for name in names},
                    {key: _ANSWERED.get(key) for key in keys})


def passed_or_reference(function):
    """The learner's ``function`` if its check passed on it, else camlab's answer.

    Cells after an exercise call what the learner wrote through this, so that
    the notebook still runs (and shows the right pictures) while the answer is
    not right yet; it says so when it stands in.
    """
    for name, item in EXERCISES.items():
        if item.function_name != getattr(function, "__name__", None) or item.reference is None:
            continue
        passed, checked = _LATEST.get(name, (False, None))
        if passed and checked is function:
            return function
        print(f"ℹ️ Your {item.function_name} does not pass camlab.{name} yet: the cells "
              "below use camlab's answer instead.")
        return item.reference
    return function


@contextlib.contextmanager
def isolated_session():
    """A clean slate for a test (or an instructor trying checks) inside a ``with``.

    Inside, no check has run and no question is answered yet; on leaving, the
    registered exercises and questions and the latest verdicts are back as
    they were, and those registered inside are gone. The registries are
    changed in place, so every module that imported them sees the same state.
    """
    saved = [(registry, dict(registry)) for registry in (EXERCISES, _LATEST, QUESTIONS, _ANSWERED)]
    _LATEST.clear()
    _ANSWERED.clear()
    try:
        yield
    finally:
        for registry, before in saved:
            registry.clear()
            registry.update(before)
