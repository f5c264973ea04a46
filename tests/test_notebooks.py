"""The notebooks' shape: numbered, stripped, one pinned Colab setup cell, a parameters cell.

The repository address in pyproject.toml ([project.urls] Repository) and
camlab.__version__ are the single source of truth for every notebook's setup cell
and every "Open in Colab" badge in README.md.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def repository():
    """The project's one repository constant: https://github.com/OWNER/NAME."""
    found = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    return found.group(1)


def version():
    """camlab.__version__, read from the source (the wheel's version comes from it too)."""
    return re.search(r'^__version__ = "([^"]+)"', (ROOT / "camlab" / "__init__.py").read_text(),
                     re.M).group(1)


def colab_url(path):
    """The "Open in Colab" address of a notebook of this release: the tag v<version>."""
    owner_name = repository().removeprefix("https://github.com/")
    return (f"https://colab.research.google.com/github/{owner_name}/blob/v{version()}/"
            f"{path.relative_to(ROOT).as_posix()}")


def code_cells(path):
    notebook = json.loads(path.read_text())
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


def parameters_cell(path):
    tagged = [c for c in code_cells(path) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, "exactly one code cell carries the papermill tag `parameters`"
    return tagged[0]


def test_the_course_has_numbered_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert names and all(re.match(r"\d\d_[a-z0-9_]+\.ipynb$", n) for n in names), names


def test_the_wheel_takes_its_version_from_camlab():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "camlab.__version__" }' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", version())


def test_every_notebook_runs_in_full_mode_too():
    """make test runs full_mode/NN_topic.ipynb, a link to each notebook, in full mode offline."""
    links = {p.name: p for p in (ROOT / "full_mode").glob("*.ipynb")}
    assert sorted(links) == [p.name for p in NOTEBOOKS], "add a link: ln -s ../notebooks/NAME full_mode/"
    for path in NOTEBOOKS:
        assert links[path.name].is_symlink() and links[path.name].resolve() == path.resolve()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for cell in code_cells(path):
        assert cell.get("outputs") == [] and cell.get("execution_count") is None, source(cell)[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_installs_the_pinned_release_on_colab_only(path):
    first = source(code_cells(path)[0])
    assert f'CAMLAB_REPOSITORY = "{repository()}"' in first
    assert f'CAMLAB_VERSION = "{version()}"' in first
    assert 'f"camlab-course @ git+{CAMLAB_REPOSITORY}@v{CAMLAB_VERSION}"' in first
    assert 'if "google.colab" in sys.modules:' in first
    # A failed install shows pip's own messages, not only CalledProcessError.
    assert "capture_output=True" in first and "print(install.stdout, install.stderr" in first
    # Colab has ipywidgets 7.7.1: its own widget manager, not the ipywidgets-8 one.
    assert "enable_custom_widget_manager" not in first
    # Nothing but the constants and the import run outside Colab.
    outside = [line for line in first.splitlines()
               if line and not line.startswith((" ", "#", "CAMLAB_REPOSITORY", "CAMLAB_VERSION",
                                                "import sys", "if "))]
    assert outside == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_tagged_parameters_cell_holds_every_mode_difference(path):
    tagged = parameters_cell(path)
    parameters = source(tagged)
    assert parameters.startswith("import camlab  #"), "camlab first: it loads TensorFlow quietly"
    assert "FAST = camlab.fast_mode()" in parameters and "SEED = " in parameters
    assert "OFFLINE = camlab.offline_mode()" in parameters
    assert "set_random_seed" not in parameters, "seed in the next cell, so that papermill's SEED counts"
    texts = [source(c) for c in code_cells(path)]
    after = texts[texts.index(parameters) + 1]
    assert after.startswith("keras.utils.set_random_seed(SEED)")
    for text in texts:
        if text in (parameters, after):
            continue
        assert "fast_mode(" not in text and "offline_mode(" not in text, text[:80]
        # Elsewhere the mode reaches only the loaders, as arguments.
        rest = text.replace("fast=FAST", "").replace("offline=OFFLINE", "")
        assert not re.search(r"\b(FAST|OFFLINE)\b", rest), text[:120]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_floors_are_parameters_checked_with_expect(path):
    parameters = source(parameters_cell(path))
    floors = re.findall(r"^(\w*FLOOR\w*) = [^#\n]+#", parameters, re.M)
    defined = re.findall(r"^(\w*FLOOR\w*) = ", parameters, re.M)
    assert floors and floors == defined, "every floor is a parameter with a comment"
    rest = "\n".join(source(c) for c in code_cells(path) if source(c) != parameters)
    for floor in floors:
        assert floor in rest, f"{floor} is never used"
    for line in rest.splitlines():
        if line.lstrip().startswith("assert"):
            assert "FLOOR" not in line and "floor" not in line, f"a learner-facing floor: {line}"
    assert "camlab.expect(" in rest


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_readme_has_an_open_in_colab_badge_for_the_notebook(path):
    readme = (ROOT / "README.md").read_text()
    badge = "https://colab.research.google.com/assets/colab-badge.svg"
    assert f"[![Open in Colab]({badge})]({colab_url(path)})" in readme, colab_url(path)


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


# -- a measured value is stated with camlab.expect, never with a bare assert

EXACT_BOUNDS = {0, 1, 255}  # a range a value must lie in by construction: [0, 1] maps, 8-bit pixels


def _exact_operand(node):
    """An operand an exact fact may be compared with: a bound of a value's range, a count
    (len), a difference (np.diff), a parameter or a coordinate of the same box."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value in EXACT_BOUNDS
    if isinstance(node, ast.BinOp) and isinstance(node.right, ast.Constant):  # 1.0 + 1e-06: rounding
        return _exact_operand(node.left) and abs(node.right.value) <= 1e-3
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func)
        return name in ("len", "np.diff")
    text = ast.unparse(node)
    return text.isupper() and "FLOOR" not in text or text in ("x_min", "x_max", "y_min", "y_max") \
        or text.startswith(("THRESHOLD *", "np.diff("))


def measured_asserts(text):
    """Bare asserts that order a value against a floor, a fraction or another measured value."""
    import ast

    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Assert):
            continue
        for compare in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            operands = [compare.left, *compare.comparators]
            for op, left, right in zip(compare.ops, operands, operands[1:]):
                if isinstance(op, (ast.Lt, ast.Gt, ast.LtE, ast.GtE)) \
                        and not (_exact_operand(left) or _exact_operand(right)):
                    found.append(ast.unparse(node))
    return found


def test_the_rule_tells_measured_values_from_exact_facts():
    for measured in ("assert agreement > 0.9", "assert gradcam_drop > guided_drop",
                     'assert better["cam"][3] > better["cam"][2]', "assert accuracy >= ACCURACY_FLOOR",
                     "assert 0.5 < rate"):
        assert measured_asserts(measured), measured
    for exact in ("assert 0.0 <= maps.min() and maps.max() <= 1.0", "assert len(bags) > 0",
                  "assert (np.diff(confidence) >= 0).all()", "assert np.all(np.abs(a) <= 1.0 + 1e-06)",
                  "assert 0 <= x_min <= x_max < IMAGE_SIZE", "assert inside.max() >= THRESHOLD * heatmap.max()",
                  "assert maps.shape == (3, 28, 28)"):
        assert not measured_asserts(exact), exact


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_bare_assert_on_a_measured_value(path):
    # A measured value (an accuracy, a score, one method against another) can miss on another
    # seed or data set: camlab.expect says so and lets a learner's "Run all" go on, while a bare
    # assert stops it. Exact facts (shapes, ranges, hand == camlab) stay asserts.
    offenders = [found for cell in code_cells(path) if "BEGIN HIDDEN TESTS" not in source(cell)
                 for found in measured_asserts(source(cell).replace("%", "#"))]
    assert not offenders, f"use camlab.expect for these measured values: {offenders}"
