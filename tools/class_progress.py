"""A class's progress from the notebooks learners saved (docs/instructors.md).

Each notebook of the course ends with a ``camlab.progress("NN")`` cell; a
saved notebook keeps what it printed. This reads it back, one line per file:

    python tools/class_progress.py submissions/*.ipynb

    alice/02_cam_fashion_mnist.ipynb   1 of 2 pass   ✅ ❌   questions: 5 of 6 right   ✅ ✅ ✅ ❌ ✅ ✅
    bob/02_cam_fashion_mnist.ipynb     progress cell not run

It runs nothing and needs no camlab: only the saved outputs are read.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

PROGRESS_CALL = re.compile(r'^camlab\.progress\("(\d\d)"\)', re.M)
SUMMARY = re.compile(r"Exercises of notebook (\d\d): (\d+) of (\d+) pass")
QUESTIONS = re.compile(r"^Questions: (\d+) of (\d+) right", re.M)


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def notebook_progress(path) -> str:
    """One line about a saved notebook: its progress, or why there is none."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"not a readable notebook ({error.__class__.__name__})"
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code" or not PROGRESS_CALL.search(_text(cell.get("source", ""))):
            continue
        shown = "\n".join(_text(output.get("data", {}).get("text/plain", output.get("text", "")))
                          for output in cell.get("outputs", []))
        found = SUMMARY.search(shown)
        if not found:
            return "progress cell not run"
        exercises, _, questions = shown.partition("\nQuestions:")
        marks = " ".join(re.findall(r"^\s*(✅|❌|⬜)", exercises, re.M))
        line = f"{found.group(2)} of {found.group(3)} pass   {marks}"
        answered = QUESTIONS.search(shown)
        if answered:
            marks = " ".join(re.findall(r"^\s*(✅|❌|⬜)", questions, re.M))
            line += f"   questions: {answered.group(1)} of {answered.group(2)} right   {marks}"
        return line
    return "no progress cell (not a camlab course notebook?)"


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__)
        return 2
    width = max(len(str(p)) for p in paths)
    for path in paths:
        print(f"{str(path):<{width}}   {notebook_progress(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
