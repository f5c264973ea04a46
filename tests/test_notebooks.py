"""The notebooks' shape: numbered, stripped, the same Colab cell, a parameters cell."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def code_cells(path):
    notebook = json.loads(path.read_text())
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


def test_the_course_has_numbered_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert names and all(re.match(r"\d\d_[a-z0-9_]+\.ipynb$", n) for n in names), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for cell in code_cells(path):
        assert cell.get("outputs") == [] and cell.get("execution_count") is None, source(cell)[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_installs_camlab_on_colab_only(path):
    urls = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    repository = urls.group(1)
    first = source(code_cells(path)[0])
    assert f'CAMLAB_REPOSITORY = "{repository}"' in first
    assert 'if "google.colab" in sys.modules:' in first
    # Nothing but the constant and the import run outside Colab.
    outside = [line for line in first.splitlines()
               if line and not line.startswith((" ", "#", "CAMLAB_REPOSITORY", "import sys", "if "))]
    assert outside == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_uses_fast_mode(path):
    assert any("FAST = camlab.fast_mode()" in source(c) for c in code_cells(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widget_cells_are_not_compared_by_nbval(path):
    for cell in code_cells(path):
        text = source(cell)
        if "camlab.explore(" in text or "interact(" in text:
            assert "# NBVAL_IGNORE_OUTPUT" in text, text[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_are_checked_and_have_hidden_solutions(path):
    cells = code_cells(path)
    checks = [c for c in cells if re.search(r"camlab\.check_\w+\(", source(c))]
    assert checks, "every notebook has at least one exercise checked by camlab"
    solutions = [c for c in checks if c["metadata"].get("jupyter", {}).get("source_hidden")]
    assert solutions and all("assert camlab.check_" in source(c) for c in solutions)
