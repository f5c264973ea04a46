"""The exercise checks: right answers pass; each typical mistake gets its hint."""

import numpy as np
import pytest

import camlab
from camlab import exercises


def test_check_class_scores_accepts_correct_answers(capsys):
    assert camlab.check_class_scores(lambda f, k, b: (f @ k).mean((0, 1)) + b)
    assert camlab.check_class_scores(lambda f, k, b: f.mean((0, 1)) @ k + b)  # the GAP first: the same
    assert "✅ Correct" in capsys.readouterr().out


def test_check_class_scores_explains_typical_mistakes(capsys):
    cases = {
        "returned None": lambda f, k, b: None,
        "added the maps up over the positions": lambda f, k, b: (f @ k).sum((0, 1)) + b,
        "no bias": lambda f, k, b: (f @ k).mean((0, 1)),
        "probabilities": lambda f, k, b: np.exp((f @ k).mean((0, 1)) + b) / np.exp((f @ k).mean((0, 1)) + b).sum(),
        "maps of every class": lambda f, k, b: f @ k + b,
        "one class's map": lambda f, k, b: f @ k[:, 0],
        "raised ValueError": lambda f, k, b: f @ k[:2],
        "largest error": lambda f, k, b: (f @ k).mean((0, 1)) + b + np.arange(len(b)),
    }
    for expected, answer in cases.items():
        assert not camlab.check_class_scores(answer)
        out = capsys.readouterr().out
        assert out.startswith("❌") and expected in out, (expected, out)


def test_compare_names_shape_scale_and_error():
    expected = np.arange(6.0).reshape(2, 3)
    assert exercises.compare(expected + 1e-9, expected).ok
    assert "Wrong shape" in exercises.compare(expected.T, expected).message
    assert "2 times" in exercises.compare(expected * 2, expected).message
    verdict = exercises.compare(expected + np.array([[0, 0, 0], [0, 3, 0]]), expected)
    assert not verdict and "index (1, 1)" in verdict.message
    assert "NaN" in exercises.compare(expected * np.nan, expected).message


# ------------------------------------------------------------ notebook 01, exercise 2


def cam_image(raw_map, size):
    upsampled = camlab.upsample(raw_map, size)
    low, high = upsampled.min(), upsampled.max()
    return np.zeros_like(upsampled) if high == low else (upsampled - low) / (high - low)


def test_check_cam_image_accepts_a_correct_answer(capsys):
    assert camlab.check_cam_image(cam_image)
    assert camlab.check_cam_image(lambda m, size: camlab.normalize(camlab.upsample(m, size)))
    assert "✅ Correct" in capsys.readouterr().out


def test_check_cam_image_matches_camlab_cam():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(7, 7)).astype("float32")
    np.testing.assert_allclose(exercises.reference_cam_image(raw, (28, 28)),
                               camlab.normalize(camlab.upsample(raw, (28, 28))))
    assert exercises.reference_cam_image(np.full((3, 3), 2.0), (12, 12)).max() == 0.0


def test_check_cam_image_explains_typical_mistakes(capsys):
    up = camlab.upsample
    cases = {
        "returned None": lambda m, s: None,
        "scaled before upsampling": lambda m, s: up(camlab.normalize(m), s),
        "divided by the maximum only": lambda m, s: up(m, s) / up(m, s).max(),
        "Upsampled but not scaled": lambda m, s: up(m, s),
        "(a ReLU)": lambda m, s: camlab.normalize(np.maximum(up(m, s), 0)),
        "other interpolation (bicubic)": lambda m, s: camlab.normalize(up(m, s, "bicubic")),
        "other interpolation (nearest)": lambda m, s: camlab.normalize(up(m, s, "nearest")),
        "at feature-map size": lambda m, s: camlab.normalize(m),
        "rows first": lambda m, s: camlab.normalize(up(m, (s[1], s[0]))),
        "return zeros for it": lambda m, s: (up(m, s) - up(m, s).min()) / np.ptp(up(m, s)),
        "raised ZeroDivisionError": lambda m, s: 1 / 0,
    }
    for expected, answer in cases.items():
        with np.errstate(all="ignore"):
            assert not camlab.check_cam_image(answer)
        out = capsys.readouterr().out
        assert out.startswith("❌") and expected in out, (expected, out)


# ------------------------------------------------------------ registry, progress


@pytest.fixture
def session():
    """Exercises registered or checked in a test do not leak into the others."""
    with exercises.isolated_session():
        yield


def test_every_check_is_registered_and_exported():
    checks = {name for name in camlab.__all__ if name.startswith("check_")} - {"check_question"}
    assert checks <= set(exercises.EXERCISES)
    for name, item in exercises.EXERCISES.items():
        assert getattr(camlab, name) is item.check
        assert getattr(exercises, name) is item.check
        assert item.notebook in {"01", "02", "03", "04", "05", "06"} and item.function_name


def test_exercises_are_listed_in_course_order():
    notebooks = [item.notebook for item in exercises.EXERCISES.values()]
    assert notebooks == sorted(notebooks)
    for name, item in exercises.EXERCISES.items():  # each check in its notebook's module
        assert item.check.__module__ == f"camlab.exercises.notebook{item.notebook}", name


def test_an_isolated_session_restores_the_registry_in_place(session, capsys):
    registered, latest = exercises.EXERCISES, exercises._LATEST
    before = dict(registered)
    camlab.check_class_scores(lambda f, k, b: (f @ k).mean((0, 1)) + b)
    with exercises.isolated_session():
        assert camlab.progress("01").results["check_class_scores"] is None

        @exercises.exercise("01", "a passing check", "answer")
        def check_extra(function):
            return True

        check_extra(lambda: None)
        assert "check_extra" in registered and camlab.progress("01").passed == 1
    assert exercises.EXERCISES is registered and exercises._LATEST is latest
    assert list(registered) == list(before) and "check_extra" not in latest
    assert camlab.progress("01").results["check_class_scores"] is True


def test_progress_shows_each_exercise_of_a_notebook(session, capsys):
    assert repr(camlab.progress("01")).split("Questions:")[0].count("⬜") == 2
    camlab.check_class_scores(lambda f, k, b: (f @ k).mean((0, 1)) + b)
    camlab.check_cam_image(lambda m, s: None)
    shown = camlab.progress("01")
    assert shown.results == {"check_class_scores": True, "check_cam_image": False}
    assert shown.passed == 1
    text = repr(shown)
    assert text.startswith("Exercises of notebook 01: 1 of 2 pass")
    assert "✅ the class scores from the maps (class_scores" in text and "❌ from raw map to picture" in text
    camlab.check_cam_image(cam_image)  # the latest run counts
    assert camlab.progress("01").passed == 2


def test_a_check_never_raises_whatever_the_answer(session, capsys):
    @exercises.exercise("01", "a fragile check", "answer")
    def check_fragile(function):
        return function() + 1  # a check that trips over a strange answer

    assert check_fragile(lambda: "text") is False
    assert "could not judge your answer (TypeError" in capsys.readouterr().out
    assert camlab.progress("01").results["check_fragile"] is False

    class Weird:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("no")

    for check in (camlab.check_class_scores, camlab.check_least_sure, camlab.check_box_from_map,
                  camlab.check_hirescam, camlab.check_decision_map, camlab.check_signed_scale):
        assert check(lambda *args: Weird()) is False
        assert capsys.readouterr().out.startswith("❌")


@pytest.mark.parametrize("check, answer, message", [
    (camlab.check_box_iou, lambda a, b: "1.0", "text"),
    (camlab.check_box_iou, lambda a, b: float("nan"), "NaN"),
    (camlab.check_average_drop, lambda original, masked: float("nan"), "NaN"),
    (camlab.check_average_drop, lambda original, masked: "12%", "text"),
    (camlab.check_steps_to_half, lambda curve: "3", "text"),
])
def test_checks_do_not_pass_text_or_nan_answers(session, capsys, check, answer, message):
    assert check(answer) is False
    assert message in capsys.readouterr().out


def test_checks_say_when_there_is_no_function_or_only_its_result(session, capsys):
    assert camlab.check_class_scores(None) is False
    assert "no function to check yet: write class_scores" in capsys.readouterr().out
    assert camlab.check_class_scores(np.zeros((3, 3))) is False
    out = capsys.readouterr().out
    assert "Pass the function itself" in out and "camlab.check_class_scores(class_scores)" in out
    assert camlab.check_average_drop(lambda original, masked: 0.0) is False  # a real attempt


def _gradcam_plus_plus_by_mistake(mistake):
    """A learner's Grad-CAM++ weights with one of the usual mistakes."""
    def weights(feature_maps, gradients):
        g = gradients.astype("float64")
        total = (feature_maps.sum(axis=-1, keepdims=True) if mistake == "channels"
                 else feature_maps.sum(axis=(0, 1)))
        two = 1.0 if mistake == "no 2" else 2.0
        denominator = two * g ** 2 + total * g ** 3
        alpha = np.where(denominator != 0, g ** 2 / np.where(denominator != 0, denominator, 1), 0)
        kept = g if mistake == "no relu" else np.maximum(g, 0)
        if mistake == "grad-cam":
            return g.mean(axis=(0, 1))
        if mistake == "mean":
            return (alpha * kept).mean(axis=(0, 1))
        return (alpha * kept).sum(axis=(0, 1))
    return weights


@pytest.mark.parametrize("mistake, named", [
    (None, "✅"),
    ("no relu", "keeps only the positive gradients"),
    ("grad-cam", "Grad-CAM's weights (the mean gradient)"),
    ("channels", "runs over the positions (a, b) of the same map k"),
    ("no 2", "no factor 2"),
    ("mean", "Grad-CAM++ sums them"),
])
def test_the_grad_cam_plus_plus_checker_names_each_usual_mistake(session, capsys, mistake, named):
    assert camlab.check_gradcam_plus_plus_weights(_gradcam_plus_plus_by_mistake(mistake)) is (mistake is None)
    assert named in capsys.readouterr().out


# -- the questions at each notebook's end (camlab.check_question)


def test_a_question_names_the_mistake_behind_a_wrong_choice_or_number(session, capsys):
    assert not camlab.check_question("01.1", "c")
    said = capsys.readouterr().out
    assert said.startswith("❌") and "throws the positions away" in said and '"b"' not in said
    assert not camlab.check_question("01.2", 1290)
    assert "counts the 10 biases too" in capsys.readouterr().out
    assert not camlab.check_question("01.2", 1000)  # no known mistake: a general hint
    assert "step by step" in capsys.readouterr().out
    assert camlab.check_question("01.1", " B ")  # a letter, whatever its case and spaces
    assert camlab.check_question("01.1", lambda: "b")  # or a function that returns it (the notebooks')
    assert camlab.check_question("02.2", 9.33) and camlab.check_question("02.2", np.float32(28 / 3))
    assert camlab.check_question("05.4", 0.143)  # rounded: within the question's tolerance
    shown = camlab.progress("01")
    assert shown.questions["01.1"] and not shown.questions["01.2"] and shown.questions["01.3"] is None
    assert "Questions: 1 of 6 right" in repr(shown) and not shown.complete


@pytest.mark.parametrize("answer, said", [
    (None, "no answer yet"), ("z", "one of the letters"), (3, "one of the letters"),
    (["b"], "one of the letters"),
])
def test_a_choice_question_explains_an_answer_it_cannot_read(answer, said, session, capsys):
    assert camlab.check_question("01.1", answer) is False
    assert said in capsys.readouterr().out


@pytest.mark.parametrize("answer, said", [
    ("1280", "a number (no quotes)"), (True, "a number (no quotes)"), (float("nan"), "finite"),
    (np.ones(3), "one number"), (object(), "one number"), (float("inf"), "finite"),
])
def test_a_number_question_explains_an_answer_it_cannot_read(answer, said, session, capsys):
    assert camlab.check_question("01.2", answer) is False
    assert said in capsys.readouterr().out


def test_an_unknown_question_is_an_input_error_that_lists_them(session):
    with pytest.raises(camlab.InputError, match="01.1, 01.2"):
        camlab.check_question("01.9", "a")
    with pytest.raises(camlab.InputError):
        camlab.check_question(1.1, "a")


def test_questions_are_registered_in_course_order_each_with_its_key():
    keys = list(exercises.QUESTIONS)
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for key, item in exercises.QUESTIONS.items():
        assert key == f"{item.notebook}.{item.number}"
        assert item.choices or item.tolerance < 0.05  # a number is checked, not guessed
        if item.choices:
            assert item.answer not in item.wrong and all(len(c) == 1 for c in item.wrong)


def test_the_hirescam_checker_names_grad_cam_layer_cam_and_a_missing_relu(session, capsys):
    from camlab.exercises import reference_hirescam

    assert camlab.check_hirescam(reference_hirescam)
    assert camlab.check_hirescam(lambda a, g: np.maximum(np.einsum("hwk,hwk->hw", a, g), 0))
    capsys.readouterr()
    for wrong, words in [
        (lambda a, g: np.maximum(a @ g.mean(axis=(0, 1)), 0), "That is Grad-CAM"),
        (lambda a, g: (np.maximum(g, 0) * a).sum(-1), "That is Layer-CAM"),
        (lambda a, g: (g * a).sum(-1), "No ReLU"),
        (lambda a, g: g * a, "Sum the products over the channels"),
    ]:
        assert not camlab.check_hirescam(wrong)
        assert words in capsys.readouterr().out


def _raises(*args):
    raise RuntimeError("a learner's bug")


ODD_ANSWERS = [None, float("nan"), "text", np.zeros((0,)), -1, object(), np.full((2, 2), np.inf)]


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_every_check_says_not_yet_to_odd_answers_and_never_raises(name, session, capsys):
    check = exercises.EXERCISES[name].check
    for answer in ODD_ANSWERS:
        assert check(lambda *args, answer=answer: answer) is False, (name, answer)
        assert capsys.readouterr().out.startswith("❌"), (name, answer)
    assert check(_raises) is False and "RuntimeError" in capsys.readouterr().out
    for not_a_function in (None, 3, "my_function"):
        assert check(not_a_function) is False and capsys.readouterr().out.startswith("❌")
