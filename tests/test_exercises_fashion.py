"""Notebook 02's exercise checks: right answers pass; each typical mistake gets its hint."""

import numpy as np

import camlab
from camlab import exercises


def mass_off_item(maps, images, ink):
    off = images[..., 0] <= ink
    total = maps.sum(axis=(1, 2))
    share = (maps * off).sum(axis=(1, 2)) / np.where(total > 0, total, 1)
    return np.where(total > 0, share, 0.0)


def test_check_mass_off_item_accepts_a_right_answer(capsys):
    assert camlab.check_mass_off_item(mass_off_item)
    assert camlab.check_mass_off_item(exercises.reference_mass_off_item)
    assert "✅ Correct" in capsys.readouterr().out


def test_check_mass_off_item_explains_typical_mistakes(capsys):
    cases = {
        "returned None": lambda m, x, ink: None,
        "share ON the garment": lambda m, x, ink: np.where(m.sum((1, 2)) > 0, 1 - mass_off_item(m, x, ink), 0),
        "counted pixels, not mass": lambda m, x, ink: (x[..., 0] <= ink).mean(axis=(1, 2)),
        "not its share": lambda m, x, ink: (m * (x[..., 0] <= ink)).sum(axis=(1, 2)),
        "One share per map": lambda m, x, ink: (m * (x[..., 0] <= ink)).sum() / m.sum(),
        "no mass to share": lambda m, x, ink: (m * (x[..., 0] <= ink)).sum(axis=(1, 2)) / m.sum(axis=(1, 2)),
    }
    for expected, answer in cases.items():
        assert not camlab.check_mass_off_item(answer)
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
