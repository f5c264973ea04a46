"""Boxes from maps (notebook 03): exact boxes on maps drawn by hand, and their display."""

import numpy as np
import pytest
from scipy import ndimage

import camlab
from camlab.boxes import describe_box


def blank(height=12, width=16):
    return np.zeros((height, width), dtype="float32")


def test_one_blob_gives_its_box_in_inclusive_column_row_coordinates():
    heatmap = blank()
    heatmap[3:7, 5:13] = 1.0  # rows 3-6, columns 5-12
    assert camlab.box_from_map(heatmap) == (5, 3, 12, 6)
    x_min, y_min, x_max, y_max = camlab.box_from_map(heatmap)
    assert (x_max - x_min + 1, y_max - y_min + 1) == (8, 4)  # width = columns, height = rows


def test_two_blobs_give_the_larger_even_when_the_smaller_is_brighter():
    heatmap = blank()
    heatmap[1:9, 1:6] = 0.5  # 40 pixels
    heatmap[8:11, 10:14] = 1.0  # 12 pixels, the peak
    assert camlab.box_from_map(heatmap) == (1, 1, 5, 8)


def test_regions_are_8_connected():
    heatmap = blank()
    heatmap[1:4, 1:4] = 1.0  # two 3x3 squares touching at one corner: one region of 18
    heatmap[4:7, 4:7] = 1.0
    heatmap[6:10, 10:14] = 1.0  # a separate region of 16
    assert camlab.box_from_map(heatmap) == (1, 1, 6, 6)


def test_flat_maps_give_a_clear_result():
    assert camlab.box_from_map(blank()) is None  # nothing to box
    assert camlab.box_from_map(np.full((5, 7), 0.3)) == (0, 0, 6, 4)  # everything is at the maximum
    assert camlab.box_from_map(-np.ones((5, 7))) is None  # no positive evidence anywhere


def test_the_threshold_is_a_fraction_of_the_maximum_and_inclusive():
    heatmap = blank()
    heatmap[:, :] = 1.0  # a plateau at 20% of the peak...
    heatmap[4:8, 6:10] = 5.0  # ...and the peak
    assert camlab.box_from_map(heatmap, 0.2) == (0, 0, 15, 11)  # 1.0 >= 0.2 * 5.0: kept
    assert camlab.box_from_map(heatmap, 0.21) == (6, 4, 9, 7)
    assert camlab.box_from_map(heatmap * 100, 0.21) == (6, 4, 9, 7)  # scale does not matter
    assert camlab.box_from_map(heatmap, 1.0) == (6, 4, 9, 7)
    assert camlab.box_from_map(heatmap) == camlab.box_from_map(heatmap, 0.2)  # the paper's default


def test_ties_go_to_the_brighter_region_then_reading_order():
    heatmap = blank()
    heatmap[1:3, 1:3] = 0.6
    heatmap[8:10, 12:14] = 0.9  # same size, brighter
    assert camlab.box_from_map(heatmap) == (12, 8, 13, 9)
    heatmap[8:10, 12:14] = 0.6  # same size, same value: the first in reading order
    assert camlab.box_from_map(heatmap) == (1, 1, 2, 2)


def reference_boxes(maps, threshold):
    """Box of each map with 2-D labelling, one map at a time (an independent path)."""
    boxes = []
    for heatmap in maps:
        if heatmap.max() <= 0:
            boxes.append(None)
            continue
        labels, count = ndimage.label(heatmap >= threshold * heatmap.max(), np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        peaks = ndimage.maximum(heatmap, labels, np.arange(1, count + 1))
        best = sorted(range(count), key=lambda r: (-sizes[r], -peaks[r], r))[0] + 1
        rows, columns = np.nonzero(labels == best)
        boxes.append((columns.min(), rows.min(), columns.max(), rows.max()))
    return boxes


def test_a_batch_is_boxed_map_by_map_without_regions_crossing_maps():
    rng = np.random.default_rng(0)
    maps = ndimage.gaussian_filter(rng.random((12, 20, 24)), sigma=(0, 2, 2))
    maps -= maps.mean(axis=(1, 2), keepdims=True)
    maps[3] = 0.0
    maps[5] = -1.0
    for threshold in (0.2, 0.5, 0.8):
        assert camlab.boxes_from_maps(maps, threshold) == reference_boxes(maps, threshold)
    # A blob at the same place in two neighbouring maps stays two regions.
    pair = np.zeros((2, 10, 10))
    pair[0, 2:4, 2:4] = 1.0  # small in map 0
    pair[0, 6:9, 6:9] = 1.0  # larger elsewhere in map 0
    pair[1, 2:6, 2:6] = 1.0  # map 1 overlaps map 0's small blob
    assert camlab.boxes_from_maps(pair) == [(6, 6, 8, 8), (2, 2, 5, 5)]


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 3, 4)), "one map"),
    (np.array([[0.0, np.nan]]), "NaN"),
])
def test_bad_maps_are_clear_errors(bad, message):
    with pytest.raises(camlab.InputError, match=message):
        camlab.box_from_map(bad)


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_a_threshold_outside_0_1_is_an_error(threshold):
    with pytest.raises(camlab.InputError, match="fraction"):
        camlab.box_from_map(blank(), threshold)


def test_draw_box_paints_only_the_outline():
    image = np.full((10, 12, 3), 0.5, dtype="float32")
    image[0, 0] = 0.0  # so that display scaling keeps 0.5 as 0.5
    image[9, 11] = 1.0
    drawn = camlab.draw_box(image, (2, 3, 8, 7), color="red", width=1)
    assert drawn.shape == (10, 12, 3) and drawn.dtype == np.float32
    outline = np.zeros((10, 12), dtype=bool)
    outline[3:8, 2:9] = True
    outline[4:7, 3:8] = False
    np.testing.assert_array_equal(drawn[outline], np.tile([1.0, 0.0, 0.0], (outline.sum(), 1)))
    np.testing.assert_allclose(drawn[~outline], camlab.viz.display_image(image)[~outline])
    np.testing.assert_allclose(camlab.draw_box(image, None), camlab.viz.display_image(image))
    with pytest.raises(camlab.InputError, match="does not fit"):
        camlab.draw_box(image, (2, 3, 12, 7))


def test_show_boxes_returns_the_boxes_it_draws():
    import matplotlib.pyplot as plt

    maps = np.zeros((3, 16, 16), dtype="float32")
    maps[0, 2:6, 3:9] = 1.0
    maps[2, 10:14, 10:12] = 1.0
    images = np.random.default_rng(0).random((3, 16, 16, 3))
    assert camlab.show_boxes(images, maps) == [(3, 2, 8, 5), None, (10, 10, 11, 13)]
    plt.close("all")
    with pytest.raises(camlab.InputError, match="upsample"):
        camlab.show_boxes(images, maps[:, :8, :8])


def test_box_slider_follows_its_threshold():
    import matplotlib.pyplot as plt

    heatmap = blank()
    heatmap[:, :] = 1.0
    heatmap[4:8, 6:10] = 5.0
    widget = camlab.box_slider(np.zeros((12, 16, 3)), heatmap, threshold=0.2)
    slider, text = widget.children[0], widget.children[1]
    assert text.value.endswith(describe_box((0, 0, 15, 11), heatmap.shape))
    slider.value = 0.5
    assert text.value.startswith("threshold 0.50") and describe_box((6, 4, 9, 7), heatmap.shape) in text.value
    plt.close("all")


def test_describe_box():
    assert describe_box((0, 0, 9, 4), (10, 20)) == "x 0-9, y 0-4 (10x5 px, 25% of the image)"
    assert describe_box(None, (10, 20)).startswith("no box")


def test_check_box_from_map_accepts_the_reference_and_names_mistakes(capsys):
    assert camlab.check_box_from_map(camlab.box_from_map)

    def swapped(heatmap, threshold):
        box = camlab.box_from_map(heatmap, threshold)
        return None if box is None else (box[1], box[0], box[3], box[2])

    def exclusive(heatmap, threshold):
        box = camlab.box_from_map(heatmap, threshold)
        return None if box is None else (box[0], box[1], box[2] + 1, box[3] + 1)

    def four_connected(heatmap, threshold):
        mask = heatmap >= threshold * heatmap.max()
        if heatmap.max() <= 0:
            return None
        labels, _ = ndimage.label(mask)  # 4-connectivity: the default structure
        largest = np.bincount(labels.ravel())[1:].argmax() + 1
        rows, columns = np.nonzero(labels == largest)
        return columns.min(), rows.min(), columns.max(), rows.max()

    def absolute(heatmap, threshold):
        return camlab.box_from_map(np.where(heatmap >= threshold, 1.0, 0.0), 0.5)

    def crashes(heatmap, threshold):
        raise RuntimeError("oops")

    capsys.readouterr()
    for function, words in [(lambda h, t: None, "returned None"), (swapped, "column"),
                            (exclusive, "inclusive"), (four_connected, "8-connectivity"),
                            (absolute, "fraction of the map's maximum"), (crashes, "RuntimeError")]:
        assert not camlab.check_box_from_map(function)
        assert words in capsys.readouterr().out


def test_check_decision_map_names_each_usual_mistake(capsys):
    from camlab.exercises import reference_decision_map

    assert camlab.check_decision_map(reference_decision_map)
    right = lambda f, k, b, a, o: f @ (k[:, a] - k[:, o]) + b[a] - b[o]  # noqa: E731
    assert camlab.check_decision_map(right)
    capsys.readouterr()
    for wrong, words in [
        (lambda f, k, b, a, o: f @ k[:, a], "chosen class's own CAM"),
        (lambda f, k, b, a, o: f @ (k[:, o] - k[:, a]) + b[o] - b[a], "sign is flipped"),
        (lambda f, k, b, a, o: f @ (k[:, a] - k[:, o]), "no biases"),
        (lambda f, k, b, a, o: f @ (k[:, a] - k[:, o]) + (b[a] - b[o]) / f[..., 0].size, "divided the bias"),
        (lambda f, k, b, a, o: f * (k[:, a] - k[:, o]), "Sum over the channels"),
        (lambda f, k, b, a, o: (f @ (k[:, a] - k[:, o])).mean() + b[a] - b[o], "score difference itself"),
    ]:
        assert not camlab.check_decision_map(wrong)
        assert words in capsys.readouterr().out


@pytest.mark.parametrize("chosen", [0, 1])
def test_a_decision_maps_mean_is_the_log_odds_of_a_two_class_softmax(chosen):
    rng = np.random.default_rng(3)
    feature_maps, kernel, bias = rng.random((7, 7, 5)), rng.normal(size=(5, 2)), rng.normal(size=2)
    from camlab.exercises import reference_decision_map

    scores = feature_maps.mean(axis=(0, 1)) @ kernel + bias  # the GAP + Dense head
    probabilities = np.exp(scores) / np.exp(scores).sum()
    mean = reference_decision_map(feature_maps, kernel, bias, chosen, 1 - chosen).mean()
    np.testing.assert_allclose(1 / (1 + np.exp(-mean)), probabilities[chosen], rtol=1e-12)


# ---------------------------------------------------------------- where maps point


def test_map_peaks_and_mask_boxes():
    maps = np.zeros((3, 6, 8), "float32")
    maps[0, 2, 5] = 1.0
    maps[1, 5, 0] = 2.0
    peaks = camlab.map_peaks(maps)
    assert peaks.tolist() == [[2, 5], [5, 0], [0, 0]]  # an all-zero map: the first pixel
    masks = np.zeros((3, 6, 8), bool)
    masks[0, 1:4, 2:7] = True
    masks[1, 5, 0] = True
    assert camlab.mask_boxes(masks).tolist() == [[2, 1, 6, 3], [0, 5, 0, 5], [-1, -1, -1, -1]]


def test_peak_in_box_with_margins_and_missing_boxes():
    maps = np.zeros((3, 10, 10), "float32")
    maps[0, 4, 4] = maps[1, 4, 9] = maps[2, 0, 0] = 1.0
    boxes = [(2, 2, 6, 6), (2, 2, 6, 6), None]
    assert camlab.peak_in_box(maps, boxes).tolist() == [True, False, False]
    assert camlab.peak_in_box(maps, boxes, margin=3).tolist() == [True, True, False]
    assert camlab.peak_in_box(maps, np.array([[0, 0, 9, 9]] * 3)).all()
    with pytest.raises(camlab.InputError):
        camlab.peak_in_box(maps, boxes[:2])


def test_peak_on_mask():
    maps = np.zeros((2, 4, 4), "float32")
    maps[0, 1, 1] = maps[1, 3, 3] = 1.0
    masks = np.zeros((2, 4, 4), bool)
    masks[:, 1, 1] = True
    assert camlab.peak_on_mask(maps, masks).tolist() == [True, False]
    with pytest.raises(camlab.InputError):
        camlab.peak_on_mask(maps, masks[:, :3])
