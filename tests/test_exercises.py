"""The exercise checks: right answers pass; each typical mistake gets its hint."""

import numpy as np

import camlab
from camlab import exercises


def test_check_cam_accepts_correct_answers(capsys):
    assert camlab.check_cam(lambda f, w: f @ w)
    assert camlab.check_cam(lambda f, w: np.einsum("hwk,k->hw", f, w))
    assert "✅ Correct" in capsys.readouterr().out


def test_check_cam_explains_typical_mistakes(capsys):
    cases = {
        "returned None": lambda f, w: None,
        "did not add the channels up": lambda f, w: f * w,
        "averaged over the channels": lambda f, w: (f * w).mean(-1),
        "sign is flipped": lambda f, w: -(f @ w),
        "raised ValueError": lambda f, w: f @ w[:2],
        "largest error": lambda f, w: f @ w + np.eye(*f.shape[:2]),
        "summed over the positions": lambda f, w: (f * w).sum((0, 1)),
    }
    for expected, answer in cases.items():
        assert not camlab.check_cam(answer)
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
