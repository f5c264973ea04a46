"""Build the student edition of the course: notebooks/ -> student/ (``make student``).

notebooks/ is the source and the instructor edition. Its exercises carry
nbgrader's markers and cell metadata, and this script clears them by the rules
of nbgrader's ``ClearSolutions`` and ``ClearHiddenTests`` preprocessors:

- in a solution cell (``metadata.nbgrader.solution``), every region from a
  line holding ``BEGIN SOLUTION`` to a line holding ``END SOLUTION`` becomes
  the stub, indented as the ``BEGIN`` line; a solution cell without a region
  becomes the stub whole;
- in a grade cell (``metadata.nbgrader.grade``), every region from
  ``BEGIN HIDDEN TESTS`` to ``END HIDDEN TESTS`` is removed;
- a region in a cell without that metadata is an error, as is a region left
  open or nested.

The stub returns nothing and never raises, so "Run all" reaches the end of a
learner's notebook and every ``camlab.check_*`` call below a stub says "not
yet" and why. Beyond nbgrader: cells left empty are dropped, the nbgrader
metadata is removed (a learner's notebook is not an assignment to collect),
and every code cell of the result must parse. nbgrader itself is not used: it
installs a Jupyter server stack, SQLAlchemy and Alembic (docs/instructors.md).

    python tools/build_student.py           # write student/
    python tools/build_student.py --check   # exit 1 if student/ is out of date
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks"
TARGET = ROOT / "student"

BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_TESTS, END_TESTS = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
# nbgrader's default stub raises NotImplementedError; ours returns nothing, so that a cell left unanswered does not stop "Run all".
CODE_STUB = "# YOUR CODE HERE\nreturn None"
TEXT_STUB = "YOUR ANSWER HERE"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_TESTS, END_TESTS)

README = """# The course, student edition

These notebooks are built from `notebooks/` by `make student` (`tools/build_student.py`):
the same lessons, with every exercise left for you to write. Do not edit them here; an
instructor edits `notebooks/` and runs `make student`.

Each exercise cell holds a function that returns nothing yet, and a `camlab.check_*` call
under it that says what is wrong with your answer, or that it is right. The last cells
show which exercises of the notebook pass (`camlab.progress`).

Stuck? The solutions are in the instructor edition, the notebook of the same name in
[`notebooks/`](../notebooks/).

| notebook | |
|---|---|
{rows}
"""


class MarkerError(ValueError):
    """A solution or hidden-test region that nbgrader would refuse too."""


def _nbgrader(cell, key):
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get(key, False))


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _lines(text: str) -> list[str]:
    if not text:
        return []
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def replace_regions(text: str, begin: str, end: str, stub: str | None) -> tuple[str, bool]:
    """Replace each begin...end region of ``text`` (marker lines included) with
    ``stub`` indented as its begin line, or drop it when ``stub`` is None.
    Returns the new text and whether a region was found."""
    out, inside, found = [], False, False
    for line in text.split("\n"):
        if begin in line:
            if inside:
                raise MarkerError(f"nested {begin!r} in:\n{text}")
            inside = found = True
            if stub is not None:
                indent = re.match(r"\s*", line).group(0)
                out += [indent + stub_line for stub_line in stub.split("\n")]
        elif end in line:
            if not inside:
                raise MarkerError(f"{end!r} without {begin!r} in:\n{text}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{begin!r} without {end!r} in:\n{text}")
    return "\n".join(out), found


def student_cell(cell):
    """The student version of one cell, or None when nothing of it is left."""
    cell = copy.deepcopy(cell)
    text = _source(cell)
    stub = CODE_STUB if cell["cell_type"] == "code" else TEXT_STUB
    text, solved = replace_regions(text, BEGIN_SOLUTION, END_SOLUTION, stub)
    if solved and not _nbgrader(cell, "solution"):
        raise MarkerError(f"a solution region in a cell not marked as a solution cell:\n{text}")
    if _nbgrader(cell, "solution") and not solved:
        text = stub
    text, tested = replace_regions(text, BEGIN_TESTS, END_TESTS, None)
    if tested and not _nbgrader(cell, "grade"):
        raise MarkerError(f"a hidden-test region in a cell not marked as a grade cell:\n{text}")
    if not text.strip():
        return None
    cell["source"] = _lines(text.strip("\n"))
    cell["metadata"].pop("nbgrader", None)
    if tested:  # what is left of a hidden-test cell is for learners: show it
        cell["metadata"].pop("jupyter", None)
    if cell["cell_type"] == "code":
        cell["outputs"], cell["execution_count"] = [], None
        try:
            ast.parse(text)
        except SyntaxError as error:
            raise MarkerError(f"the student cell does not parse ({error}):\n{text}") from None
    return cell


def student_notebook(notebook: dict) -> dict:
    """The student edition of a notebook (a dict as json.load gives it)."""
    edition = copy.deepcopy(notebook)
    edition["cells"] = [c for c in map(student_cell, notebook["cells"]) if c is not None]
    for cell in edition["cells"]:
        leftover = [m for m in MARKERS if m in _source(cell)]
        if leftover:
            raise MarkerError(f"markers left in a student cell: {leftover}")
    return edition


def dumps(notebook: dict) -> str:
    """A notebook as text, formatted as Jupyter writes it."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _title(notebook: dict) -> str:
    first = _source(notebook["cells"][0]).split("\n")[0]
    return first.lstrip("# ").strip()


def edition(source: Path = SOURCE) -> dict[str, str]:
    """Every file of the student edition: name -> text."""
    files, rows = {}, []
    for path in sorted(source.glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        files[path.name] = dumps(student_notebook(notebook))
        rows.append(f"| [`{path.name}`]({path.name}) | {_title(notebook)} |")
    files["README.md"] = README.format(rows="\n".join(rows))
    return files


def stale(target: Path = TARGET, source: Path = SOURCE) -> list[str]:
    """The files of ``target`` that differ from what the build would write
    (missing, changed or no longer built); empty when it is up to date."""
    wanted = edition(source)
    present = {p.name for p in target.glob("*")} if target.is_dir() else set()
    differ = [name for name, text in wanted.items()
              if not (target / name).is_file()
              or (target / name).read_text(encoding="utf-8") != text]
    return sorted(differ + sorted(present - set(wanted)))


def build(target: Path = TARGET, source: Path = SOURCE) -> list[str]:
    """Write the student edition into ``target``; returns the names written."""
    target.mkdir(exist_ok=True)
    files = edition(source)
    for path in target.glob("*"):
        if path.name not in files and path.suffix in (".ipynb", ".md"):
            path.unlink()
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    return sorted(files)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if student/ is out of date")
    args = parser.parse_args(argv)
    if args.check:
        differ = stale()
        if differ:
            print("student/ is out of date with notebooks/: " + ", ".join(differ)
                  + ". Run `make student` and commit student/.")
            return 1
        print("student/ is up to date with notebooks/.")
        return 0
    for name in build():
        print(f"student/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
