"""Short checked questions: each notebook ends with a few (predict-then-run, "why",
multiple choice or a number), answered in the notebook and counted by ``progress``.

A question is registered with ``question`` in its notebook's module
(``camlab.exercises.notebook01`` ...); the notebook holds the learner's answer
in a function (``def answer_3(): return "b"``, so that a cleared solution
returns None, as the exercises' do) and calls
``check_question("01.3", answer_3)``, which prints whether it is right and why. A wrong choice gets the sentence written for that
choice: what the mistake behind it misses, never the right letter. The
question's text lives in the notebook (the learner reads it there); here are
only the answer and what to say.
"""

from __future__ import annotations

import dataclasses
import math

from camlab.errors import InputError
from camlab.exercises.framework import _ANSWERED, QUESTIONS, Verdict, report


@dataclasses.dataclass(frozen=True)
class Question:
    """One checked question.

    ``answer``: the right choice (a letter, "b") or number. ``why``: shown when
    the answer is right, the reason in one or two sentences. ``wrong``: for a
    choice question, each wrong letter -> what that choice gets wrong; for a
    number question, a wrong number a common mistake gives -> what that
    mistake is. ``tolerance``: for a number, the largest relative difference
    still counted as right (a rounded answer).
    """

    notebook: str  # "01"
    number: int  # 1, 2, ... within the notebook
    title: str  # the question in a few words, for ``progress``
    answer: object
    why: str
    wrong: dict = dataclasses.field(default_factory=dict)
    tolerance: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.notebook}.{self.number}"

    @property
    def choices(self) -> bool:
        return isinstance(self.answer, str)


def question(notebook, number, title, answer, why, wrong=None, tolerance=0.0) -> Question:
    """Register a question of ``notebook`` (its number as a string, "01")."""
    item = Question(notebook, int(number), title, answer, why, dict(wrong or {}), float(tolerance))
    QUESTIONS[item.key] = item
    return item


def _close(value, target, tolerance) -> bool:
    return math.isclose(value, target, rel_tol=tolerance, abs_tol=1e-12)


def _judge(item: Question, answer) -> Verdict:
    if answer is None:
        return Verdict(False, f"Question {item.key}: no answer yet. Write it after `return` "
                              "in this cell, and run the cell again.")
    if item.choices:
        if not isinstance(answer, str) or answer.strip().lower() not in item.wrong.keys() | {item.answer}:
            letters = ", ".join(f'"{c}"' for c in sorted(item.wrong.keys() | {item.answer}))
            return Verdict(False, f"Question {item.key}: answer with one of the letters {letters} "
                                  f"(as text, in quotes); got {answer!r}.")
        letter = answer.strip().lower()
        if letter == item.answer:
            return Verdict(True, f"Question {item.key}: right. {item.why}")
        return Verdict(False, f'Question {item.key}: not "{letter}". {item.wrong[letter]} Think again.')
    if isinstance(answer, (bool, str, bytes)):
        return Verdict(False, f"Question {item.key}: answer with a number (no quotes), not {answer!r}.")
    try:
        answer = float(answer)  # a NumPy number too
    except (TypeError, ValueError):
        return Verdict(False, f"Question {item.key}: answer with one number; got {answer!r:.60}.")
    if not math.isfinite(answer):
        return Verdict(False, f"Question {item.key}: answer with a finite number; got {answer}.")
    if _close(answer, float(item.answer), item.tolerance):
        return Verdict(True, f"Question {item.key}: right. {item.why}")
    for value, mistake in item.wrong.items():
        if _close(answer, float(value), item.tolerance):
            return Verdict(False, f"Question {item.key}: not {answer:g}. {mistake}")
    return Verdict(False, f"Question {item.key}: not {answer:g}. Work it out again, step by step.")


def check_question(key, answer) -> bool:
    """Check the answer to question ``key`` ("01.3": notebook 01, question 3).

    ``answer``: a letter as text ("b") or a number, or a function without
    arguments that returns it (the notebooks' cells); None means no answer yet.

    Prints whether it is right and why (a wrong choice: what that choice gets
    wrong), records it for ``progress``, and returns True or False. It never
    raises because of the answer; an unknown ``key`` is an ``InputError``.
    """
    if not isinstance(key, str) or key not in QUESTIONS:
        raise InputError(f"There is no question {key!r:.40}; the questions are "
                         f"{', '.join(QUESTIONS)} (notebook.number, as text).")
    if callable(answer):  # the notebooks' form: def answer_3(): return "b"
        try:
            answer = answer()
        except Exception as error:  # the learner's code (or nbgrader's stub): report, never raise
            _ANSWERED[key] = False
            return report(Verdict(False, f"Question {key}: your answer raised {type(error).__name__}: "
                                         f"{error}. Write it after `return`, as a letter in quotes "
                                         "or a number."))
    verdict = _judge(QUESTIONS[key], answer)
    _ANSWERED[key] = None if answer is None else verdict.ok
    return report(verdict)
