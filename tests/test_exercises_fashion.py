"""Notebook 02's exercise checks: right answers pass; each typical mistake gets its hint."""

import numpy as np
import scipy.ndimage

import camlab
from camlab import exercises


def zoom_factors(cam, size):
    return size[0] / cam.shape[0], size[1] / cam.shape[1]


def test_check_upsampled_cam_accepts_both_orders(capsys):
    def weigh_then_zoom(f, w, size):
        cam = f @ w
        return scipy.ndimage.zoom(cam, zoom_factors(cam, size), order=2)

    def zoom_then_weigh(f, w, size):  # the lab's order: the same map, 128 times the work
        return scipy.ndimage.zoom(f, zoom_factors(f, size) + (1,), order=2) @ w

    assert camlab.check_upsampled_cam(weigh_then_zoom)
    assert camlab.check_upsampled_cam(zoom_then_weigh)
    assert "✅ Correct" in capsys.readouterr().out


def test_check_upsampled_cam_explains_typical_mistakes(capsys):
    def zoom(order):
        return lambda f, w, size: scipy.ndimage.zoom(f @ w, zoom_factors(f, size), order=order)

    cases = {
        "returned None": lambda f, w, size: None,
        "at feature-map size": lambda f, w, size: f @ w,
        "did not weight and add them up":
            lambda f, w, size: scipy.ndimage.zoom(f, zoom_factors(f, size) + (1,), order=2),
        "linear (order=1)": zoom(1),
        "cubic (order=3)": zoom(3),
        "camlab.upsample": lambda f, w, size: camlab.upsample(f @ w, tuple(size)),
        "sign is flipped": lambda f, w, size: -zoom(2)(f, w, size),
        "averaged over the channels": lambda f, w, size: zoom(2)(f, w, size) / f.shape[-1],
        "raised ValueError": lambda f, w, size: f @ w[size[0]:],  # w[28:] is empty
    }
    for expected, answer in cases.items():
        assert not camlab.check_upsampled_cam(answer)
        out = capsys.readouterr().out
        assert out.startswith("❌") and expected in out, (expected, out)


def least_sure(probabilities, class_index, count):
    members = np.flatnonzero(probabilities.argmax(axis=1) == class_index)
    return members[np.argsort(probabilities[members, class_index])][:count]


def test_check_least_sure_accepts_a_correct_answer(capsys):
    assert camlab.check_least_sure(least_sure)
    assert "✅ Correct" in capsys.readouterr().out


def test_check_least_sure_explains_typical_mistakes(capsys):
    def positions(p, c, n):
        members = np.flatnonzero(p.argmax(axis=1) == c)
        return np.argsort(p[members, c])[:n]

    cases = {
        "returned None": lambda p, c, n: None,
        "MOST sure": lambda p, c, n: least_sure(p, c, len(p))[::-1][:n],
        "positions inside the images of the class": positions,
        "over ALL images": lambda p, c, n: np.argsort(p[:, c])[:n],
        "in index order": lambda p, c, n: np.sort(least_sure(p, c, n)),
        "not one number": lambda p, c, n: least_sure(p, c, n)[0],
    }
    for expected, answer in cases.items():
        assert not camlab.check_least_sure(answer)
        out = capsys.readouterr().out
        assert out.startswith("❌") and expected in out, (expected, out)


def test_the_cases_cover_a_class_with_fewer_images_than_asked():
    sizes = [(len(exercises.reference_least_sure(*case)), int(case[2]))
             for case in exercises._least_sure_cases()]
    assert any(found < asked for found, asked in sizes)
    assert any(found == asked for found, asked in sizes)
