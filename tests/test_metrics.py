"""Metrics of notebook 05, checked against hand computations on tiny models."""

import warnings

import keras
import numpy as np
import tensorflow as tf
import pytest
from scipy import stats

import camlab
from camlab import metrics
from conftest import _randomize
from tolerances import BY_HAND, UNIT

# np.trapezoid is NumPy 2's name; NumPy 1.26 (TensorFlow 2.16 and 2.17 need NumPy < 2) calls it trapz.
trapezoid = getattr(np, "trapezoid", None) or np.trapz


def gap_model(activation="softmax", classes=3, seed=0):
    """A 16x16 GAP CNN: conv(4) -> pool -> conv(6) -> GAP -> Dense."""
    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(classes, activation=activation, name="head"),
    ], name=f"gap16_{activation}_{classes}")
    return _randomize(model, seed)


@pytest.fixture(scope="module")
def model():
    return gap_model()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).random((4, 16, 16, 1)).astype("float32")


@pytest.fixture(scope="module")
def maps(model, images):
    return camlab.gradcam(model, images)


def probabilities(model, batch):
    out = np.asarray(model.predict(np.asarray(batch, "float32"), verbose=0), "float64")
    return out


# -- pointing game -------------------------------------------------------------

def test_pointing_game_by_hand():
    maps = np.zeros((4, 10, 10))
    maps[0, 2, 3] = 1.0   # peak at row 2, column 3
    maps[1, 8, 8] = 1.0   # far from the object
    maps[2, 5, 7] = 1.0   # 2 px right of the box: a hit only with tolerance 2
    # maps[3] is flat: always a miss
    boxes = np.array([[3, 2, 5, 4], [0, 0, 2, 2], [2, 3, 5, 6], [0, 0, 9, 9]])
    assert metrics.pointing_game(maps, boxes).tolist() == [True, False, False, False]
    assert metrics.pointing_game(maps, boxes, tolerance=2).tolist() == [True, False, True, False]
    # (8, 8) to the corner (2, 2) of box 1 is sqrt(72) = 8.49 px away.
    assert metrics.pointing_game(maps, boxes, tolerance=8.4)[1] == False  # noqa: E712
    assert metrics.pointing_game(maps, boxes, tolerance=8.5)[1] == True  # noqa: E712


def test_pointing_game_with_masks_measures_distance_to_the_nearest_pixel():
    maps = np.zeros((2, 8, 8))
    maps[:, 4, 4] = 1.0
    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[0, 4, 4] = True
    masks[1, 1, 7] = True  # 3 rows up, 3 columns right: 4.24 px
    assert metrics.pointing_game(maps, masks).tolist() == [True, False]
    assert metrics.pointing_game(maps, masks, tolerance=4.2).tolist() == [True, False]
    assert metrics.pointing_game(maps, masks, tolerance=4.25).tolist() == [True, True]
    # A mask and its box agree when the mask fills its box.
    filled = np.zeros((1, 8, 8), dtype=bool)
    filled[0, 1:3, 5:8] = True
    box = camlab.mask_boxes(filled)
    for tolerance in (0, 1, 2, 2.9, 3.5):
        assert (metrics.pointing_game(maps[:1], filled, tolerance)
                == metrics.pointing_game(maps[:1], box, tolerance)).all()


def test_pointing_game_no_box_is_a_miss_and_bad_input_is_refused():
    maps = np.random.default_rng(0).random((2, 5, 5))
    assert metrics.pointing_game(maps, [None, (0, 0, 4, 4)]).tolist() == [False, True]
    with pytest.raises(camlab.CamlabError, match="one box per map"):
        metrics.pointing_game(maps, np.zeros((3, 4)))
    with pytest.raises(camlab.CamlabError, match="tolerance"):
        metrics.pointing_game(maps, np.zeros((2, 4)), tolerance=-1)
    with pytest.raises(camlab.CamlabError, match="match"):
        metrics.pointing_game(maps, np.zeros((2, 4, 4), dtype=bool))
    with pytest.raises(camlab.CamlabError, match="NaN"):
        metrics.pointing_game(np.full((1, 3, 3), np.nan), np.zeros((1, 4)))


# -- boxes -------------------------------------------------------------------------

def test_box_iou_by_hand():
    # 4x4 and 4x4 boxes overlapping in 2x2: 4 / (16 + 16 - 4).
    assert metrics.box_iou((0, 0, 3, 3), (2, 2, 5, 5)) == pytest.approx(4 / 28)
    assert metrics.box_iou((1, 1, 1, 1), (1, 1, 1, 1)) == 1.0  # one pixel, inclusive
    assert metrics.box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0  # touching corners only
    assert metrics.box_iou(None, (0, 0, 3, 3)) == 0.0
    many = metrics.box_iou(np.array([[0, 0, 3, 3], [0, 0, 9, 0]]), [(0, 0, 1, 3), None])
    np.testing.assert_allclose(many, [8 / 16, 0.0])
    with pytest.raises(camlab.CamlabError):
        metrics.box_iou((3, 0, 1, 1), (0, 0, 1, 1))
    with pytest.raises(camlab.CamlabError):
        metrics.box_iou((0, 0, 1, 1), np.zeros((2, 4)))


def test_box_localization_reads_the_cam_paper_box():
    maps = np.zeros((3, 12, 12))
    maps[0, 2:6, 3:9] = 1.0                       # box (3, 2, 8, 5)
    maps[1, 2:6, 3:9] = 1.0
    maps[1, 9, 0] = 0.15                          # below 20% of the maximum: ignored
    maps[2, 0:3, 0:3] = 1.0                       # wrong place
    truth = np.array([[3, 2, 8, 5], [3, 2, 7, 5], [6, 6, 11, 11]])
    scores = metrics.box_localization(maps, truth)
    assert scores.boxes == [(3, 2, 8, 5), (3, 2, 8, 5), (0, 0, 2, 2)]
    np.testing.assert_allclose(scores.iou, [1.0, 20 / 24, 0.0])
    assert scores.correct.tolist() == [True, True, False]
    assert scores.rate == pytest.approx(2 / 3)
    assert metrics.box_localization(maps, truth, min_iou=0.9).correct.tolist() == [True, False, False]


# -- deletion and insertion -----------------------------------------------------------

def curves_by_hand(model, images, maps, steps, baseline, kind, classes):
    """One image and one step at a time, straight from RISE's definition."""
    count, height, width = maps.shape
    pixels = height * width
    out = np.zeros((count, steps + 1))
    for n in range(count):
        order = np.argsort(-maps[n].ravel(), kind="stable")
        for i in range(steps + 1):
            k = int(round(i * pixels / steps))
            chosen = np.zeros(pixels, dtype=bool)
            chosen[order[:k]] = True
            chosen = chosen.reshape(height, width)[..., None]
            if kind == "deletion":
                picture = np.where(chosen, baseline[n], images[n])
            else:
                picture = np.where(chosen, images[n], baseline[n])
            out[n, i] = probabilities(model, picture[None])[0, classes[n]]
    return out


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_curves_match_the_definition(model, images, maps, kind):
    run = getattr(camlab, kind)
    found = run(model, images, maps, steps=7)
    predicted = probabilities(model, images).argmax(axis=1)
    np.testing.assert_array_equal(found.class_index, predicted)
    hand = curves_by_hand(model, images, maps, 7, np.zeros_like(images), kind, predicted)
    np.testing.assert_allclose(found.curves, hand, atol=BY_HAND)
    assert found.curves.shape == (4, 8) and found.auc.shape == (4,)
    np.testing.assert_allclose(found.auc, trapezoid(hand, dx=1 / 7, axis=1), atol=BY_HAND)
    np.testing.assert_allclose(found.fractions, np.round(np.arange(8) * 256 / 7) / 256)


def test_ties_are_broken_in_pixel_order(model, images):
    flat = np.zeros((4, 16, 16), dtype="float32")  # every pixel ties
    found = camlab.deletion(model, images, flat, class_index=1, steps=4)
    hand = curves_by_hand(model, images, flat, 4, np.zeros_like(images), "deletion", [1] * 4)
    np.testing.assert_allclose(found.curves, hand, atol=BY_HAND)
    ranks = metrics.pixel_ranks(flat[:1])
    np.testing.assert_array_equal(ranks[0].ravel(), np.arange(256))


def test_pixel_ranks_are_numpys_stable_descending_sort():
    """The curves rank pixels with TensorFlow's sort; the order is NumPy's stable one,
    ties (many, and -0.0 beside 0.0) in pixel order, float64 maps not rounded to float32."""
    rng = np.random.default_rng(7)
    maps = rng.integers(0, 5, size=(6, 12, 10)).astype("float64") / 4  # many ties
    maps[0, 0, :3] = [0.0, -0.0, 0.0]
    maps[1] = rng.random((12, 10))
    maps[2, 0, :2] = [1.0, 1.0 + 1e-12]  # equal in float32, not in float64
    flat = -maps.reshape(len(maps), -1)
    order = np.argsort(flat, axis=1, kind="stable")
    expected = np.empty_like(order)
    np.put_along_axis(expected, order, np.arange(flat.shape[1])[None], axis=1)
    np.testing.assert_array_equal(metrics.pixel_ranks(maps), expected.reshape(maps.shape))
    assert metrics.pixel_ranks(maps[:0]).shape == (0, 12, 10)  # an empty batch, as NumPy's gave


def numpy_ranks(maps):
    order = np.argsort(-maps.reshape(len(maps), -1), axis=1, kind="stable")
    expected = np.empty_like(order)
    np.put_along_axis(expected, order, np.arange(order.shape[1])[None], axis=1)
    return expected.reshape(maps.shape)


def test_float32_maps_are_ranked_by_their_bits_as_numpy_ranks_them():
    """Maps of float32 numbers take the fast keys (value bits above the pixel index): the
    same order as NumPy's stable sort across signs, zeros of both signs, ties, subnormals,
    float32's extremes, and as float32 or float64 arrays."""
    from camlab.metrics.perturbation import _rank_keys

    rng = np.random.default_rng(3)
    maps = rng.normal(size=(5, 9, 11)).astype("float32")
    maps[0] = rng.integers(-2, 3, size=(9, 11))  # many ties, negative ones too
    maps[1, 0, :6] = [0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38]
    maps[2] = 0.0  # flat: pixel order
    maps[3] *= 1e-30
    keys = _rank_keys(maps.astype("float64"))
    assert keys.max() >= maps[0].size  # the value bits are in: the fast keys, not ranks
    np.testing.assert_array_equal(metrics.pixel_ranks(maps), numpy_ranks(maps.astype("float64")))
    np.testing.assert_array_equal(metrics.pixel_ranks(maps.astype("float64")),
                                  numpy_ranks(maps.astype("float64")))


def test_deletion_steps_change_the_same_pixels_with_either_keys():
    """The fast keys (float32 maps) and the ranks (other float64 maps) pick, at every
    step, the same pixels: the counts[s] first in the stable order."""
    from camlab.metrics.perturbation import _ranks, _rank_keys, _step_thresholds

    rng = np.random.default_rng(4)
    maps = rng.integers(0, 6, size=(4, 16, 16)).astype("float64")
    maps[1] = rng.random((16, 16)).astype("float32")
    counts = np.round(np.arange(8) * 256 / 7).astype("int64")
    fast = _rank_keys(maps)
    ranks = _ranks(tf.constant(maps)).numpy().reshape(4, -1).astype("int64")
    assert fast.max() >= 256 and ranks.max() == 255
    for keys in (fast, ranks):
        thresholds = _step_thresholds(keys, counts)
        changed = keys[:, None] < thresholds[:, :, None]  # (N, steps + 1, pixels)
        np.testing.assert_array_equal(changed.sum(axis=-1), np.broadcast_to(counts, (4, 8)))
        expected = numpy_ranks(maps).reshape(4, 1, -1) < counts[None, :, None]
        np.testing.assert_array_equal(changed, expected)


def test_baselines_number_array_blur_and_mean(model, images, maps):
    for baseline, image in [
        (0.5, np.full_like(images, 0.5)),
        (images[::-1].copy(), images[::-1]),
        ("mean", np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape)),
    ]:
        found = camlab.insertion(model, images, maps, class_index=0, steps=3, baseline=baseline)
        hand = curves_by_hand(model, images, maps, 3, np.asarray(image), "insertion", [0] * 4)
        np.testing.assert_allclose(found.curves, hand, atol=BY_HAND)
    blurred = camlab.deletion(model, images, maps, class_index=0, steps=2, baseline="blur")
    # The last step replaces every pixel: the probability of the blurred image.
    from scipy import ndimage
    sigma = 5 * 16 / 224
    blur = ndimage.gaussian_filter(images, (0, sigma, sigma, 0), mode="nearest")
    np.testing.assert_allclose(blurred.curves[:, -1], probabilities(model, blur)[:, 0], atol=BY_HAND)


def test_one_baseline_for_all_is_the_same_as_one_per_image(model, images, maps):
    """A number, one image (H, W, C) or (1, H, W, C) goes to the graph once, for every image:
    the curves of its copy per image."""
    one = np.random.default_rng(8).random((16, 16, 1)).astype("float32")
    per_image = camlab.deletion(model, images, maps, steps=4, baseline=np.stack([one] * 4))
    for shared in (one, one[np.newaxis]):
        found = camlab.deletion(model, images, maps, steps=4, baseline=shared)
        np.testing.assert_allclose(found.curves, per_image.curves, atol=BY_HAND)


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_any_forward_pass_size_gives_the_same_curves(model, images, maps, kind):
    """The images of one call go through the model batch_size // (steps + 1) at a time, in
    a loop inside the graph (the last part smaller): each part picks its own classes."""
    five = np.concatenate([images, images[:1]]), np.concatenate([maps, maps[:1]])
    for class_index in (None, [0, 2, 1, 0, 2]):
        # 5 images in one call, 4 steps each: 1, 1, 2 (2, 2, 1), 3 (3, 2) and all 5 a forward pass
        curves = [getattr(camlab, kind)(model, *five, class_index, steps=3, batch_size=size,
                                        baseline=0.25) for size in (1, 4, 8, 12, None)]
        for found in curves[:-1]:
            np.testing.assert_array_equal(found.class_index, curves[-1].class_index)
            np.testing.assert_allclose(found.curves, curves[-1].curves, atol=BY_HAND)
        if class_index is not None:
            assert curves[-1].class_index.tolist() == class_index
        else:  # each part predicted its own images' classes: the first image's, twice
            assert curves[-1].class_index[0] == curves[-1].class_index[4]


def test_linear_and_sigmoid_heads_give_camlab_probabilities(images):
    linear = gap_model("linear", 3, seed=4)
    maps = camlab.gradcam(linear, images)
    found = camlab.deletion(linear, images, maps, steps=2)
    logits = probabilities(linear, images)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(found.curves[:, 0], softmax.max(axis=1), atol=BY_HAND)
    explained = camlab.explain(linear, images, "gradcam")
    np.testing.assert_allclose(found.curves[:, 0], explained.confidence, atol=BY_HAND)

    binary = gap_model("sigmoid", 1, seed=5)
    p = probabilities(binary, images)[:, 0]
    found = camlab.insertion(binary, images, camlab.gradcam(binary, images, 0), class_index=0,
                             steps=2)
    np.testing.assert_allclose(found.curves[:, -1], 1 - p, atol=BY_HAND)


def test_curves_refuse_bad_input(model, images, maps):
    with pytest.raises(camlab.CamlabError, match="upsample"):
        camlab.deletion(model, images, maps[:, :8, :8])
    with pytest.raises(camlab.CamlabError, match="steps"):
        camlab.deletion(model, images, maps, steps=0)
    with pytest.raises(camlab.CamlabError, match="baseline"):
        camlab.insertion(model, images, maps, baseline="noise")
    with pytest.raises(camlab.CamlabError, match="baseline"):
        camlab.insertion(model, images, maps, baseline=np.zeros((3, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # told, not warned: no RuntimeWarning from the cast
        with pytest.raises(camlab.CamlabError, match="float32's range"):
            camlab.deletion(model, images, maps, baseline=1e39)
    with pytest.raises(camlab.CamlabError, match="class_index"):
        camlab.deletion(model, images, maps, class_index=7)
    with pytest.raises(camlab.CamlabError, match="NaN"):
        camlab.deletion(model, images, np.full_like(maps, np.nan))


# -- Average Drop and Increase in Confidence ---------------------------------------------

def test_average_drop_and_increase_in_confidence_by_hand(model, images, maps):
    whole = probabilities(model, images)
    classes = whole.argmax(axis=1)
    masked = probabilities(model, images * maps[..., None])
    y, o = whole[np.arange(4), classes], masked[np.arange(4), classes]
    expected_drop = 100 * np.mean(np.maximum(y - o, 0) / y)
    assert camlab.average_drop(model, images, maps) == pytest.approx(expected_drop, abs=1e-3)  # percent: 1e-5 of 100
    assert camlab.increase_in_confidence(model, images, maps) == pytest.approx(100 * np.mean(o > y))
    # A map of ones keeps the image: no drop, no increase.
    ones = np.ones_like(maps)
    assert camlab.average_drop(model, images, ones) == pytest.approx(0.0, abs=1e-4)  # percent, float32
    assert camlab.increase_in_confidence(model, images, ones) == 0.0
    with pytest.raises(camlab.CamlabError, match=r"\[0, 1\]"):
        camlab.average_drop(model, images, maps * 2)


# -- similarity and the randomisation check -----------------------------------------------

def test_spearman_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.random((3, 6, 6))
    b = a + rng.normal(0, 0.3, a.shape)
    b[2] = np.round(b[2], 1)  # ties
    expected = [stats.spearmanr(x.ravel(), y.ravel())[0] for x, y in zip(a, b)]
    np.testing.assert_allclose(metrics.spearman(a, b), expected, atol=1e-12)  # float64 on both sides
    np.testing.assert_allclose(metrics.spearman(a, a), 1.0)
    np.testing.assert_allclose(metrics.spearman(a, -a), -1.0)
    assert metrics.spearman(a[:1], np.zeros((1, 6, 6)))[0] == 0.0


def test_ssim_matches_skimage():
    metrics_module = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    a = rng.random((2, 20, 24))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    expected = [metrics_module.structural_similarity(x, y, data_range=1.0, gaussian_weights=True,
                                                     sigma=1.5, use_sample_covariance=False)
                for x, y in zip(a, b)]
    np.testing.assert_allclose(metrics.ssim(a, b), expected, atol=1e-10)  # float64; another filter order
    np.testing.assert_allclose(metrics.ssim(a, a), 1.0)
    with pytest.raises(camlab.CamlabError, match="11x11"):
        metrics.ssim(a[:, :8, :8], b[:, :8, :8])


def test_model_randomization_copies_the_model_and_cascades_from_the_top(model, images):
    before = [w.copy() for w in model.get_weights()]
    check = camlab.model_randomization(model, images, "gradcam", seed=1)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)  # the user's model is untouched
    assert [path.rsplit("/", 1)[-1] for path in check.layers] == ["head", "conv_b", "conv_a"]
    assert check.maps.shape == (4, 4, 16, 16)
    np.testing.assert_allclose(check.maps[0], camlab.gradcam(model, images), atol=UNIT)
    np.testing.assert_allclose(check.spearman[0], 1.0)
    np.testing.assert_allclose(check.ssim[0], 1.0)
    # The same seed gives the same check; the fully random model's maps differ.
    again = camlab.model_randomization(model, images, "gradcam", seed=1)
    np.testing.assert_array_equal(check.maps, again.maps)
    assert np.abs(check.maps[-1] - check.maps[0]).max() > 0.1


def test_model_randomization_takes_a_map_function(model, images):
    def gradient_magnitude(m, x, classes):
        return np.abs(camlab.guided_backprop(m, x, classes, modifier=None)).max(axis=-1)

    check = camlab.model_randomization(model, images, gradient_magnitude, class_index=0)
    assert check.spearman.shape == (4, 4)
    np.testing.assert_allclose(check.maps[0], gradient_magnitude(model, images, [0] * 4), atol=UNIT)


# -- baselines --------------------------------------------------------------------------

def test_baseline_maps():
    noise = metrics.random_maps(5, (6, 7), seed=2)
    assert noise.shape == (5, 6, 7) and noise.dtype == np.float32
    assert 0 <= noise.min() and noise.max() < 1
    np.testing.assert_array_equal(noise, metrics.random_maps(5, (6, 7), seed=2))
    centre = metrics.centre_maps(2, (9, 9))
    assert centre.max() == 1.0 and centre[0, 4, 4] == 1.0
    np.testing.assert_allclose(centre[0], centre[0].T)
    assert camlab.map_peaks(metrics.centre_maps(1, (64, 64)))[0].tolist() == [31, 31]
    images = np.zeros((1, 8, 8, 1))
    images[0, :, 4:] = 1.0  # a vertical edge between columns 3 and 4
    edges = metrics.edge_maps(images)
    assert edges.max() == 1.0
    assert set(np.flatnonzero(edges[0].max(axis=0))) == {3, 4}


# -- the exercises' checks ----------------------------------------------------------------

def test_exercise_checks_pass_the_reference_and_name_known_mistakes(capsys):
    def my_average_drop(original, masked):
        return 100 * np.mean(np.maximum(0, original - masked) / original)

    assert camlab.check_average_drop(my_average_drop)
    assert not camlab.check_average_drop(lambda original, masked: 100 * np.mean((original - masked) / original))
    assert "max(0, Y - O)" in capsys.readouterr().out
    assert not camlab.check_average_drop(lambda original, masked: None)
    assert "None" in capsys.readouterr().out
    rng = np.random.default_rng(0)  # the reference is camlab.average_drop's arithmetic
    original, masked = rng.uniform(0.2, 1, 20), rng.uniform(0, 1, 20)
    from camlab.exercises import reference_average_drop
    assert reference_average_drop(original, masked) == pytest.approx(my_average_drop(original, masked))

    def my_box_iou(a, b):
        wide = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
        tall = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
        area = lambda box: (box[2] - box[0] + 1) * (box[3] - box[1] + 1)  # noqa: E731
        return wide * tall / (area(a) + area(b) - wide * tall)

    def exclusive(a, b):
        wide = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        tall = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - wide * tall
        return wide * tall / union if union else 0.0

    assert camlab.check_box_iou(my_box_iou)
    assert not camlab.check_box_iou(exclusive)
    assert "inclusive" in capsys.readouterr().out

    def steps_to_half(curve):
        below = np.flatnonzero(curve <= curve[0] / 2)
        return int(below[0]) if len(below) else len(curve)

    assert camlab.check_steps_to_half(steps_to_half)
    capsys.readouterr()
    for wrong, words in [(lambda c: int(np.argmax(np.append(c <= 0.5, True))), "compared with 0.5"),
                         (lambda c: int(np.argmax(np.append(c < c[0] / 2, True))), "Half counts"),
                         (lambda c: steps_to_half(c) / (len(c) - 1), "a fraction of the steps")]:
        assert not camlab.check_steps_to_half(wrong)
        assert words in capsys.readouterr().out


def test_models_scored_by_the_metrics_are_freed():
    import gc
    import weakref

    import keras

    alive = []
    images = np.random.default_rng(0).random((3, 16, 16, 1)).astype("float32")
    for seed in range(3):
        model = keras.Sequential([keras.Input((16, 16, 1)),
                                  keras.layers.Conv2D(4, 3, activation="relu"),
                                  keras.layers.GlobalAveragePooling2D(),
                                  keras.layers.Dense(3, activation="softmax")])
        maps = camlab.gradcam(model, images)
        camlab.deletion(model, images, maps, steps=4)
        camlab.insertion(model, images, maps, steps=4)
        camlab.average_drop(model, images, maps)
        alive.append(weakref.ref(model))
        del model
    gc.collect()
    assert [ref() for ref in alive] == [None] * 3
