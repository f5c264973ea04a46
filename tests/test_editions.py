"""The two editions of the course (docs/instructors.md).

notebooks/ is the instructor edition: every solution between nbgrader's
markers, every check that only proves a solution in a hidden-test region.
student/ is built from it by tools/build_student.py (``make student``) and
committed. Here: the builder's rules, that student/ is up to date, that no
solution reaches it, that its exercises answer "not yet" with a hint, that the
instructor's answers pass, that the guide's example exercise works, and that
papermill runs a notebook with changed parameters.
"""

import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

import camlab
from camlab import exercises

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks"
STUDENT = ROOT / "student"
NAMES = sorted(p.name for p in SOURCE.glob("*.ipynb"))
COURSE = NAMES  # every notebook: at least two checked exercises and a progress cell
EXERCISE_CHECK = r"^camlab\.check_(?!question\()\w+\("  # an exercise's check; questions have their own tests


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_student", ROOT / "tools" / "build_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def notebook(folder, name):
    return json.loads((folder / name).read_text(encoding="utf-8"))


def code(folder, name):
    return [c for c in notebook(folder, name)["cells"] if c["cell_type"] == "code"]


def nbgrader(cell, key):
    return cell["metadata"].get("nbgrader", {}).get(key, False)


def region(text, begin, end):
    """The lines strictly between the begin and end markers."""
    inside, found = False, []
    for line in text.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            found.append(line)
    return found


def outside_regions(text):
    """The text of a cell without its solution and hidden-test regions (markers included)."""
    kept, inside = [], False
    for line in text.split("\n"):
        if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def run_cell(text, namespace):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(text, "<cell>", "exec"), namespace)
    return output.getvalue()


def fresh_namespace():
    return {"np": np, "camlab": camlab, "scipy": scipy, "keras": keras, "tf": tf}


@pytest.fixture
def registry():
    """Exercises registered or checked in a test do not leak into the others."""
    with exercises.isolated_session():  # camlab.exercises.framework's dicts, changed in place
        yield exercises


# ------------------------------------------------------------------ the builder's rules


def cell(text, cell_type="code", **flags):
    metadata = {"nbgrader": {"schema_version": 3, "grade": False, "locked": False,
                             "solution": False, **flags}} if flags else {}
    extra = {"outputs": [], "execution_count": None} if cell_type == "code" else {}
    return {"cell_type": cell_type, "id": "x", "metadata": metadata, "source": text, **extra}


def test_a_solution_region_becomes_the_stub_at_its_indentation():
    text = ("def f(x):\n    # a hint stays\n    ### BEGIN SOLUTION\n    y = x + 1\n"
            "    return y\n    ### END SOLUTION\n\n\ncamlab.check_cam(f)")
    out = source(builder.student_cell(cell(text, solution=True)))
    assert out == ("def f(x):\n    # a hint stays\n    # YOUR CODE HERE\n    return None\n\n\n"
                   "camlab.check_cam(f)")
    namespace = {}
    exec(out.replace("camlab.check_cam(f)", ""), namespace)
    assert namespace["f"](3) is None  # the stub returns nothing and never raises


def test_hidden_tests_are_removed_and_an_empty_cell_is_dropped():
    hidden = cell("### BEGIN HIDDEN TESTS\nassert camlab.check_cam(f)\n### END HIDDEN TESTS",
                  grade=True, points=1)
    assert builder.student_cell(hidden) is None
    mixed = cell("print('seen')\n### BEGIN HIDDEN TESTS\nassert secret\n### END HIDDEN TESTS",
                 grade=True, points=1)
    kept = builder.student_cell(mixed)
    assert source(kept) == "print('seen')" and "nbgrader" not in kept["metadata"]


def test_a_solution_cell_without_markers_is_replaced_whole():
    assert source(builder.student_cell(cell("x = 42", solution=True))) == builder.CODE_STUB
    written = builder.student_cell(cell("The answer is 42.", "markdown", solution=True))
    assert source(written) == builder.TEXT_STUB


@pytest.mark.parametrize("text, flags, complaint", [
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", {}, "not marked as a solution cell"),
    ("### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS", {"locked": True},
     "not marked as a grade cell"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1", {"solution": True}, "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", {"solution": True}, "nested"),
    ("### END SOLUTION", {"solution": True}, "without"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\nif x:", {"solution": True}, "does not parse"),
])
def test_regions_nbgrader_would_refuse_are_errors(text, flags, complaint):
    with pytest.raises(builder.MarkerError, match=complaint):
        builder.student_cell(cell(text, **flags))


def test_stale_names_every_file_out_of_date(tmp_path):
    source_folder, target = tmp_path / "notebooks", tmp_path / "student"
    source_folder.mkdir()
    (source_folder / "01_a.ipynb").write_text((SOURCE / COURSE[0]).read_text())
    assert builder.stale(target, source_folder) == ["01_a.ipynb", "README.md"]
    builder.build(target, source_folder)
    assert builder.stale(target, source_folder) == []
    (target / "01_a.ipynb").write_text("{}")
    (target / "02_gone.ipynb").write_text("{}")
    assert builder.stale(target, source_folder) == ["01_a.ipynb", "02_gone.ipynb"]


# ------------------------------------------------------------------ the committed editions


def test_student_edition_is_up_to_date_with_notebooks():
    differ = builder.stale()
    assert not differ, f"student/ is out of date ({', '.join(differ)}): run `make student`"


def test_both_editions_hold_the_same_notebooks():
    assert sorted(p.name for p in STUDENT.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_no_solution_line_reaches_the_student_edition(name):
    student = "\n".join(source(c) for c in notebook(STUDENT, name)["cells"])
    for marker in builder.MARKERS:
        assert marker not in student
    stub = {line.strip() for line in builder.CODE_STUB.split("\n")}
    solutions, hidden_tests, public = [], [], []
    for instructor_cell in notebook(SOURCE, name)["cells"]:
        text = source(instructor_cell)
        solutions += region(text, "BEGIN SOLUTION", "END SOLUTION")
        hidden_tests.append("\n".join(region(text, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")))
        public.append(outside_regions(text))
    public = "\n".join(public)
    # every line of every solution (its text, whatever the markers say), unless the lesson
    # itself shows that line outside the solutions (such as "return False" in a statement) ...
    solutions = [line.strip() for line in solutions
                 if line.strip() and line.strip() not in stub and line.strip() not in public]
    assert solutions or name not in COURSE
    leaked = [line for line in solutions if line in student]
    assert not leaked, leaked
    # ... and every hidden test, as a block (a single line of one may repeat a visible cell)
    assert not [block for block in hidden_tests if block.strip() and block in student]


@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_is_marked_and_tested(name):
    cells = code(SOURCE, name)
    checks = [c for c in cells if re.search(EXERCISE_CHECK, source(c), re.M)]
    for index, exercise_cell in enumerate(cells):
        if exercise_cell not in checks:
            continue
        assert nbgrader(exercise_cell, "solution"), source(exercise_cell)[:80]
        assert region(source(exercise_cell), "BEGIN SOLUTION", "END SOLUTION")
        check = re.search(r"^(camlab\.check_\w+\(\w+\))", source(exercise_cell), re.M).group(1)
        tests = cells[index + 1]
        assert nbgrader(tests, "grade") and tests["metadata"]["nbgrader"]["points"] > 0
        assert f"assert {check}" in "\n".join(region(source(tests), "BEGIN HIDDEN TESTS",
                                                     "END HIDDEN TESTS"))
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c["metadata"]]
    assert len(ids) == len(set(ids)), "nbgrader needs a unique grade_id per cell"


@pytest.mark.parametrize("name", COURSE)
def test_every_notebook_has_two_checked_exercises_and_a_progress_cell(name):
    number = name[:2]
    registered = {n for n, item in exercises.EXERCISES.items() if item.notebook == number}
    assert len(registered) >= 2
    for folder in (SOURCE, STUDENT):
        text = "\n".join(source(c) for c in code(folder, name))
        assert set(re.findall(r"^camlab\.(check_(?!question\()\w+)\(", text, re.M)) == registered
        assert f'camlab.progress("{number}")' in text


def exercise_cells(folder, name):
    return [source(c) for c in code(folder, name) if re.search(EXERCISE_CHECK, source(c), re.M)]


@pytest.mark.parametrize("name", COURSE)
def test_student_exercises_answer_not_yet_with_a_hint(name, registry):
    namespace = fresh_namespace()
    for text in exercise_cells(STUDENT, name):
        said = run_cell(text, namespace)
        assert said.startswith("❌") and "returned None" in said, said
    result = camlab.progress(name[:2])
    assert result.results and not any(result.results.values())
    assert all(ok is False for ok in result.results.values())  # run, and not passing
    assert f"0 of {len(result.results)} pass" in repr(result)


@pytest.mark.parametrize("name", COURSE)
def test_instructor_answers_pass_every_check(name, registry):
    namespace = fresh_namespace()
    for text in exercise_cells(SOURCE, name):
        said = run_cell(text, namespace)
        assert said.startswith("✅"), said
    result = camlab.progress(name[:2])
    assert all(result.results.values()) and "❌" not in repr(result)


@pytest.mark.parametrize("name", COURSE)
def test_nbgrader_default_stub_does_not_stop_the_notebook(name, registry):
    # An instructor who clears the notebooks with nbgrader's own stub
    # (raise NotImplementedError()) still gets notebooks that run to the end.
    namespace = fresh_namespace()
    for text in exercise_cells(SOURCE, name):
        stubbed, _ = builder.replace_regions(text, "BEGIN SOLUTION", "END SOLUTION",
                                             "# YOUR CODE HERE\nraise NotImplementedError()")
        said = run_cell(stubbed, namespace)
        assert said.startswith("❌") and "raised NotImplementedError" in said, said


def test_follow_up_cells_use_camlab_while_an_answer_is_wrong(registry, capsys):
    def least_sure(probabilities, class_index, count):
        return None

    camlab.check_least_sure(least_sure)
    assert camlab.passed_or_reference(least_sure) is exercises.reference_least_sure
    assert "does not pass camlab.check_least_sure yet" in capsys.readouterr().out

    def least_sure(probabilities, class_index, count):  # noqa: F811 (the learner's fix)
        return exercises.reference_least_sure(probabilities, class_index, count)

    assert camlab.passed_or_reference(least_sure) is exercises.reference_least_sure  # not checked
    camlab.check_least_sure(least_sure)
    assert camlab.passed_or_reference(least_sure) is least_sure


# ------------------------------------------------------------------ the instructor guide

GUIDE = ROOT / "docs" / "instructors.md"


def guide_block(tag):
    """The fenced code block that follows ``<!-- tag -->`` in the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {tag} -->\s*```(?:python)?\n(.*?)```", text, re.S)
    assert found, f"no block tagged {tag} in {GUIDE}"
    return found.group(1)


def test_the_guide_is_linked_from_the_readme():
    assert "docs/instructors.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_guides_example_check_works(registry, capsys):
    namespace = {}
    exec(guide_block("example-check"), namespace)
    check = namespace["check_score_from_map"]
    assert len([line for line in guide_block("example-check").splitlines() if line.strip()]) <= 20

    assert check(lambda raw_map, bias: raw_map.mean() + bias)
    assert capsys.readouterr().out.startswith("✅")
    for wrong, hint in ((lambda m, b: m.sum() + b, "average"), (lambda m, b: m.mean(), "bias"),
                        (lambda m, b: None, "returned None"), (lambda m, b: 1 / 0, "raised")):
        assert not check(wrong)
        said = capsys.readouterr().out
        assert said.startswith("❌") and hint in said, said
    assert "score_from_map" in repr(camlab.progress("01"))


def test_the_guides_example_cells_build_a_student_edition(registry):
    namespace = {}
    exec(guide_block("example-check"), namespace)
    solution = builder.student_cell(cell(guide_block("example-solution-cell"), solution=True))
    tests = builder.student_cell(cell(guide_block("example-tests-cell"), grade=True, points=1))
    assert tests is None
    shared = {"np": np, "camlab": camlab, **namespace}
    assert run_cell(source(solution), shared).startswith("❌ Your function returned None")
    run_cell(guide_block("example-solution-cell"), shared)  # the instructor edition passes
    run_cell(guide_block("example-tests-cell"), shared)


# ------------------------------------------------------------------ papermill

PAPERMILL_NOTEBOOK = "04_gradcam_fashion_mnist.ipynb"


def test_the_parameters_cell_is_tagged_for_papermill():
    for name in COURSE:
        tagged = [c for c in code(SOURCE, name) if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, name
        assert "FAST = camlab.fast_mode()" in source(tagged[0])


def test_papermill_runs_a_notebook_with_changed_parameters(tmp_path):
    """Papermill injects new values after the Parameters cell, and the training cell uses them.

    The notebook is cut after its first training cell: that is where EPOCHS_SMALL is read, and
    nbval runs the whole notebook elsewhere in the same test run (a second full run here took
    a further two minutes of CPU on 2 cores and checked nothing more).
    """
    pytest.importorskip("papermill")
    whole = notebook(SOURCE, PAPERMILL_NOTEBOOK)
    training = next(i for i, cell in enumerate(whole["cells"]) if ".fit(" in source(cell))
    assert "EPOCHS_SMALL" in "".join(source(c) for c in whole["cells"][:training + 1])
    cut = tmp_path / PAPERMILL_NOTEBOOK
    cut.write_text(json.dumps(dict(whole, cells=whole["cells"][:training + 1])), encoding="utf-8")
    out = tmp_path / "out.ipynb"
    env = dict(os.environ, CAMLAB_FAST="1", CAMLAB_OFFLINE="1", MPLBACKEND="Agg")
    command = [sys.executable, "-m", "papermill", str(cut), str(out),
               "-p", "EPOCHS_SMALL", "2", "-p", "SHOWN", "4", "--cwd", str(SOURCE),
               "-k", "python3", "--no-progress-bar"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    cells = json.loads(out.read_text())["cells"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "EPOCHS_SMALL = 2" in source(injected[0])
    printed = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                      for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "Epoch 2/2" in printed and "Epoch 3/" not in printed  # the new value was used


# ------------------------------------------------------------------ where learners go


def test_readme_sends_learners_to_the_student_edition():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("**Start here:**")
    assert "student/01_cam_mnist.ipynb" in readme[start:start + 200]
    assert "Stuck?" in readme and "[`notebooks/`](notebooks/)" in readme
    table = readme[readme.index("## The course"):readme.index("## For instructors")]
    for name in COURSE:
        assert re.search(rf"\(https://colab\.research\.google\.com/github/[^)]+/student/{name}\)",
                         table), name
        assert f"notebooks/{name}" not in table


def test_make_test_runs_the_student_edition_in_fast_mode():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    notebooks = re.search(r"^NOTEBOOKS := (.*)$", makefile, re.MULTILINE).group(1)
    recipe = recipe.replace("$(NOTEBOOKS)", notebooks)
    fast = [line for line in recipe.splitlines() if "CAMLAB_FAST=1" in line and "pytest" in line]
    assert fast and all(re.search(r"\bstudent\b", line) for line in fast)


def test_class_progress_reads_saved_notebooks(tmp_path, registry):
    tool = importlib.util.spec_from_file_location("class_progress", ROOT / "tools" / "class_progress.py")
    class_progress = importlib.util.module_from_spec(tool)
    tool.loader.exec_module(class_progress)
    camlab.check_class_scores(lambda f, k, b: (f @ k).mean((0, 1)) + b)
    shown = repr(camlab.progress("01"))
    saved = notebook(STUDENT, COURSE[0])
    progress_cell = next(c for c in saved["cells"] if source(c).startswith("camlab.progress("))

    def save_progress(shown):
        progress_cell["outputs"] = [{"output_type": "execute_result", "execution_count": 9,
                                     "metadata": {}, "data": {"text/plain": shown.splitlines(True)}}]
        ran.write_text(json.dumps(saved))

    ran, never = tmp_path / "ran.ipynb", tmp_path / "never.ipynb"
    save_progress(shown)
    never.write_text((STUDENT / COURSE[0]).read_text())
    assert class_progress.notebook_progress(ran) == ("1 of 2 pass   ✅ ⬜   questions: 0 of 6 right   "
                                                     + " ".join(["⬜"] * 6))
    camlab.check_question("01.1", "b")
    camlab.check_question("01.2", 7)
    save_progress(repr(camlab.progress("01")))
    assert class_progress.notebook_progress(ran).endswith("questions: 1 of 6 right   ✅ ❌ ⬜ ⬜ ⬜ ⬜")
    assert class_progress.notebook_progress(never) == "progress cell not run"
    assert "not a readable notebook" in class_progress.notebook_progress(ROOT / "README.md")


def test_the_guides_parameters_exist_in_each_parameters_cell():
    text = GUIDE.read_text(encoding="utf-8")
    table = text[text.index("<!-- parameters-table -->"):].split("\n\n")[0]
    rows = re.findall(r"^\| (\d\d) \| (.*) \|$", table, re.M)
    assert {number for number, _ in rows} >= {"01", "02", "03", "04"}
    for number, names in rows:
        path = next(SOURCE.glob(f"{number}_*.ipynb"))
        cell = next(c for c in code(SOURCE, path.name) if "parameters" in c["metadata"].get("tags", []))
        defined = set(re.findall(r"^([A-Z_]+) = ", source(cell), re.M))
        named = set(re.findall(r"`([A-Z_]+)`", names))
        assert named and named <= defined, (number, named - defined)


# ------------------------------------------------------------------ the questions


@pytest.mark.parametrize("stub, said", [(None, "no answer yet"),
                                         ("# YOUR CODE HERE\nraise NotImplementedError()", "raised NotImplementedError")])
def test_a_cleared_question_says_so_with_either_stub(stub, said, registry):
    # ours returns None; nbgrader's default raises: either way the cell runs and says why
    namespace = fresh_namespace()
    for text in question_cells(SOURCE, COURSE[0]):
        if stub:
            text, _ = builder.replace_regions(text, "BEGIN SOLUTION", "END SOLUTION", stub)
        else:
            text = source(builder.student_cell(cell(text, solution=True)))
        assert said in run_cell(text, namespace)
    assert not any(camlab.progress("01").questions.values())


def question_cells(folder, name):
    return [source(c) for c in code(folder, name) if "camlab.check_question(" in source(c)]


@pytest.mark.parametrize("name", COURSE)
def test_every_notebook_ends_with_five_to_eight_registered_questions(name):
    number = name[:2]
    registered = [key for key, item in exercises.QUESTIONS.items() if item.notebook == number]
    assert 5 <= len(registered) <= 8
    for folder in (SOURCE, STUDENT):
        asked = [re.search(r'^camlab\.check_question\("(\d\d\.\d)", answer_(\d)\)$', text, re.M)
                 for text in question_cells(folder, name)]
        assert all(asked) and [m.group(1) for m in asked] == registered
        assert all(m.group(1).endswith(m.group(2)) for m in asked)  # answer_3 for question 3
        markdown = "\n".join(source(c) for c in notebook(folder, name)["cells"] if c["cell_type"] == "markdown")
        for key in registered:  # the question's text is in the notebook, its options too
            assert f"**Question {int(key[3:])}." in markdown
    cells = code(SOURCE, name)
    for cell_ in cells:
        if "camlab.check_question(" in source(cell_):
            assert nbgrader(cell_, "solution") and region(source(cell_), "BEGIN SOLUTION", "END SOLUTION")
    tests = [c for c in cells if f'assert all(camlab.progress("{number}").questions.values())' in source(c)]
    assert len(tests) == 1 and nbgrader(tests[0], "grade")


@pytest.mark.parametrize("name", COURSE)
def test_instructor_answers_are_right_and_student_cells_say_no_answer_yet(name, registry):
    number = name[:2]
    namespace = fresh_namespace()
    for text in question_cells(SOURCE, name):
        said = run_cell(text, namespace)
        assert said.startswith("✅") and "right." in said, said
    assert camlab.progress(number).questions and all(camlab.progress(number).questions.values())
    assert camlab.progress(number).answered == len(camlab.progress(number).questions)
    with exercises.isolated_session():
        namespace = fresh_namespace()
        for text in question_cells(STUDENT, name):
            said = run_cell(text, namespace)
            assert said.startswith("❌") and "no answer yet" in said, said
        result = camlab.progress(number)
        assert all(ok is None for ok in result.questions.values())
        assert f"Questions: 0 of {len(result.questions)} right" in repr(result)
        assert "not answered yet" in repr(result) and not result.complete


@pytest.mark.parametrize("key", sorted(exercises.QUESTIONS))
def test_every_wrong_choice_gets_its_own_reason_and_never_the_answer(key, registry, capsys):
    item = exercises.QUESTIONS[key]
    assert item.why and item.wrong, "a reason for the right answer, and for the common wrong ones"
    for wrong, reason in item.wrong.items():
        assert not camlab.check_question(key, wrong)
        said = capsys.readouterr().out
        assert said.startswith("❌") and reason in said
        if item.choices:  # the feedback on a wrong letter never names the right one
            assert f'"{item.answer}"' not in said and f"({item.answer})" not in said
        else:
            assert f"{float(item.answer):g}" not in said.split(".", 1)[1]
    assert camlab.check_question(key, item.answer)
    assert item.why in capsys.readouterr().out
