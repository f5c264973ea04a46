"""Upsampling, normalising, colouring, overlays and figures."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import camlab
from tolerances import BY_HAND


@pytest.mark.parametrize("method", ["bilinear", "bicubic", "nearest", "area", "lanczos3"])
def test_upsample_equals_one_resize_per_map_bit_for_bit(method):
    """camlab resizes a batch of maps as the channels of one image: the same numbers."""
    import tensorflow as tf

    maps = np.random.default_rng(2).normal(size=(5, 7, 9)).astype("float32")
    each = tf.image.resize(maps[..., np.newaxis], (30, 17), method=method).numpy()[..., 0]
    np.testing.assert_array_equal(camlab.upsample(maps, (30, 17), method), each)
    assert camlab.upsample(maps[:0], (30, 17), method).shape == (0, 30, 17)  # no maps: none


def test_upsample_batch_and_single():
    maps = np.arange(2 * 3 * 3, dtype="float32").reshape(2, 3, 3)
    out = camlab.upsample(maps, (28, 28))
    assert out.shape == (2, 28, 28) and out.dtype == np.float32
    assert camlab.upsample(maps[0], (6, 6)).shape == (6, 6)
    np.testing.assert_allclose(camlab.upsample(maps, (3, 3)), maps)  # identity size
    constant = camlab.upsample(np.full((3, 3), 2.5), (10, 10), method="bicubic")
    np.testing.assert_allclose(constant, 2.5, atol=BY_HAND)
    with pytest.raises(camlab.InputError):
        camlab.upsample(maps, (5, 5), method="sideways")


def test_normalize_range_and_flat_maps():
    maps = np.stack([np.linspace(-3, 5, 16).reshape(4, 4), np.full((4, 4), 7.0),
                     np.zeros((4, 4))]).astype("float32")
    out = camlab.normalize(maps)
    assert out[0].min() == 0 and out[0].max() == 1
    assert (out[1] == 0).all() and (out[2] == 0).all()
    np.testing.assert_allclose(camlab.normalize(maps[0]), out[0])
    with pytest.raises(camlab.InputError, match="NaN"):
        camlab.normalize(np.full((2, 2), np.nan))


def test_colorize_and_overlay():
    heat = np.outer(np.arange(7), np.ones(7)).astype("float32")
    rgb = camlab.colorize(heat)
    assert rgb.shape == (7, 7, 3) and 0 <= rgb.min() and rgb.max() <= 1
    gray = np.random.default_rng(0).random((28, 28, 1)) * 255
    picture = camlab.overlay(gray, heat, alpha=0.3)  # map upsampled to the image
    assert picture.shape == (28, 28, 3) and 0 <= picture.min() and picture.max() <= 1
    np.testing.assert_allclose(camlab.overlay(gray, heat, alpha=0.0)[..., 0],
                               (gray[..., 0] - gray.min()) / (gray.max() - gray.min()), atol=BY_HAND)
    with pytest.raises(camlab.InputError):
        camlab.overlay(gray, heat, alpha=2)


def test_show_maps_draws_a_captioned_grid():
    images = np.random.default_rng(0).random((7, 28, 28, 1))
    maps = np.random.default_rng(1).random((7, 7, 7))
    probabilities = np.eye(10)[np.arange(7)] * 0.9
    camlab.show_maps(images, maps, predicted=np.arange(7), probabilities=probabilities,
                     labels=np.arange(7), class_names=[f"c{i}" for i in range(10)], columns=4)
    figure = plt.gcf()
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert titles[0] == "pred c0 (0.90)\ntrue c0" and len(titles) == 7
    assert len(figure.axes) == 8  # 2 rows x 4 columns, the last one empty
    plt.close("all")
    with pytest.raises(camlab.InputError):
        camlab.show_maps(images, maps[:3])


def test_show_explanation_three_panels():
    camlab.show_explanation(np.random.default_rng(0).random((32, 32, 3)), np.eye(4), title="x")
    assert [a.get_title() for a in plt.gcf().axes[:3]] == ["image", "map", "overlay"]
    plt.close("all")
