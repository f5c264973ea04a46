"""Streams and devices: a tf.data.Dataset gives what the same images give as an array, batch by
batch with one batch in memory, and two replicas of a MirroredStrategy give what one device gives.

Tolerances (tests/tolerances.py): a stream runs the same compiled float32 operations as an array,
on batches of another size, so maps and probabilities agree to UNIT (a few float32 gaps at 1)
and class scores, the logits of the tiny models, to LOGITS; class indices are equal exactly.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import camlab
from camlab import replicas
from camlab.errors import ClassIndexError, InputError
from conftest import tiny_gap_models
from tolerances import LOGITS, UNIT

HERE = Path(__file__).resolve().parent
CLASSES = np.array([0, 1, 2, 2, 1, 0, 1], dtype="int64")


@pytest.fixture(scope="module")
def model():
    return tiny_gap_models()["functional"]


@pytest.fixture(scope="module")
def seven():
    """7 images: batches of 3 give 3, 3 and a last batch of 1."""
    return np.random.default_rng(5).random((7, 8, 8, 3)).astype("float32")


@pytest.fixture(scope="module")
def maps(model, seven):
    return camlab.gradcam(model, seven)


def batches(*arrays, size=3):
    return tf.data.Dataset.from_tensor_slices(arrays if len(arrays) > 1 else arrays[0]).batch(size)


def counting(images, size=3):
    """A dataset of ``images`` batched by ``size`` and a list that grows by one each time its
    map function makes an image: how many images were pulled from it. tf.data's own
    read-ahead is off (its default optimizations fuse map and batch into a step that reads
    ahead, 6 to 21 images where 6 were asked for on a loaded machine), so what is counted
    is what camlab asked for."""
    pulled = []

    def make(index):
        pulled.append(int(index))
        return images[int(index)]

    steady = tf.data.Options()
    steady.autotune.enabled = False
    steady.experimental_optimization.apply_default_optimizations = False
    dataset = tf.data.Dataset.range(len(images)).map(
        lambda i: tf.ensure_shape(tf.py_function(make, [i], tf.float32), images.shape[1:]))
    return dataset.batch(size).with_options(steady), pulled


READ_AHEAD = 0  # batches read before camlab needs them: none


def assert_same_explanation(got, want):
    np.testing.assert_allclose(got.maps, want.maps, atol=UNIT)
    np.testing.assert_allclose(got.probabilities, want.probabilities, atol=UNIT)
    np.testing.assert_allclose(got.scores, want.scores, atol=LOGITS)
    np.testing.assert_array_equal(got.class_index, want.class_index)
    np.testing.assert_array_equal(got.predicted, want.predicted)
    assert (got.method, got.layer) == (want.method, want.layer)


# ---------------------------------------------------------------------------------------------
# Every method: a stream gives the array's maps, scores and probabilities
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", sorted(camlab.METHODS))
def test_every_method_explains_a_stream_as_it_explains_the_array(method, model, seven):
    specific = camlab.METHODS[method].class_specific
    want = camlab.explain(model, seven, method, class_index=CLASSES if specific else None)
    if specific:  # the labels of (images, labels) choose the classes, as class_index does
        got = camlab.explain(model, batches(seven, CLASSES), method)
    else:
        got = camlab.explain(model, batches(seven), method)
    assert_same_explanation(got, want)
    maps = getattr(camlab, method)(model, batches(seven), batch_size=2)  # the public function
    np.testing.assert_allclose(maps, camlab.explain(model, seven, method).maps, atol=UNIT)


@pytest.mark.parametrize("form", ["sequential", "nested"])
def test_every_model_form_streams(form, seven):
    model = tiny_gap_models()[form]
    want = camlab.explain(model, seven, "gradcam", class_index=CLASSES)
    assert_same_explanation(camlab.explain(model, batches(seven, CLASSES, size=4), "gradcam"), want)


def test_single_images_are_batched_by_batch_size(model, seven):
    single = tf.data.Dataset.from_tensor_slices(seven)  # elements (H, W, C)
    parts = list(camlab.explain_stream(model, single, "cam", batch_size=2))
    assert [len(p.maps) for p in parts] == [2, 2, 2, 1]
    assert_same_explanation(camlab.explain(model, single, "cam", batch_size=2),
                            camlab.explain(model, seven, "cam"))
    labelled = tf.data.Dataset.from_tensor_slices((seven, CLASSES))  # labels ()
    np.testing.assert_array_equal(camlab.explain(model, labelled, "cam").class_index, CLASSES)


def test_feature_resolution_maps_are_collected_small(model, seven):
    got = camlab.explain(model, batches(seven), "gradcam", upsample=False, normalize=False)
    want = camlab.explain(model, seven, "gradcam", upsample=False, normalize=False)
    assert got.maps.shape == want.maps.shape == (7, 8, 8)
    np.testing.assert_allclose(got.maps, want.maps, atol=UNIT * np.abs(want.maps).max())


def test_explain_stream_reads_one_batch_at_a_time(model):
    thirty = np.random.default_rng(6).random((30, 8, 8, 3)).astype("float32")
    dataset, pulled = counting(thirty)
    stream = camlab.explain_stream(model, dataset, "gradcam")
    assert pulled == []  # checked, nothing read yet
    first = next(stream)
    assert len(first.maps) == 3 and 3 <= len(pulled) <= 3 * (1 + READ_AHEAD)
    second = next(stream)
    assert 6 <= len(pulled) <= 3 * (2 + READ_AHEAD)
    rest = list(stream)
    assert [len(e.maps) for e in rest] == [3] * 8 and sorted(pulled) == list(range(30))
    whole = camlab.explain(model, thirty, "gradcam")
    np.testing.assert_allclose(np.concatenate([first.maps, second.maps] + [e.maps for e in rest]),
                               whole.maps, atol=UNIT)
    arrays = list(camlab.explain_stream(model, thirty[:7], "cam", batch_size=4))  # arrays too
    assert [len(e.maps) for e in arrays] == [4, 3]


def test_count_bounds_an_endless_or_long_dataset(model, seven):
    endless = batches(seven).repeat()
    got = camlab.explain(model, endless, "cam", count=5)  # stops inside the second batch
    np.testing.assert_allclose(got.maps, camlab.explain(model, seven[:5], "cam").maps, atol=UNIT)
    filtered = tf.data.Dataset.from_tensor_slices(seven).filter(lambda x: True).batch(3)
    assert int(filtered.cardinality()) == tf.data.UNKNOWN_CARDINALITY  # unknown: allowed
    assert len(camlab.explain(model, filtered, "cam").maps) == 7
    assert len(camlab.explain(model, filtered, "cam", count=4).maps) == 4


def test_class_probabilities_and_guided_backprop_take_streams(model, seven):
    np.testing.assert_allclose(camlab.metrics.class_probabilities(model, batches(seven, CLASSES)),
                               camlab.metrics.class_probabilities(model, seven), atol=UNIT)
    np.testing.assert_allclose(camlab.guided_backprop(model, batches(seven)),
                               camlab.guided_backprop(model, seven), atol=UNIT)


# ---------------------------------------------------------------------------------------------
# Every metric that runs the model
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["deletion", "insertion"])
@pytest.mark.parametrize("baseline", [0.0, "blur", "per image"])
def test_curves_of_a_stream_are_the_curves_of_the_array(metric, baseline, model, seven, maps):
    if baseline == "per image":
        baseline = np.random.default_rng(2).random(seven.shape).astype("float32")
    run = getattr(camlab, metric)
    want = run(model, seven, maps, class_index=CLASSES, steps=5, baseline=baseline)
    for got in (run(model, batches(seven, CLASSES), maps, steps=5, baseline=baseline),
                run(model, batches(seven), batches(maps), CLASSES, steps=5, baseline=baseline)):
        np.testing.assert_allclose(got.curves, want.curves, atol=UNIT)
        np.testing.assert_allclose(got.auc, want.auc, atol=UNIT)
        np.testing.assert_array_equal(got.class_index, want.class_index)
        np.testing.assert_array_equal(got.fractions, want.fractions)


def test_confidence_metrics_of_a_stream_are_those_of_the_array(model, seven, maps):
    want = camlab.metrics.masked_confidence(model, seven, maps, CLASSES)
    got = camlab.metrics.masked_confidence(model, batches(seven, CLASSES), batches(maps))
    np.testing.assert_allclose(got.original, want.original, atol=UNIT)
    np.testing.assert_allclose(got.masked, want.masked, atol=UNIT)
    np.testing.assert_array_equal(got.class_index, want.class_index)
    for name in ("average_drop", "increase_in_confidence"):  # percentages: 100x the probabilities
        np.testing.assert_allclose(getattr(camlab, name)(model, batches(seven), maps),
                                   getattr(camlab, name)(model, seven, maps), atol=100 * UNIT)


def test_a_metric_reads_one_batch_at_a_time(model, maps):
    thirty = np.random.default_rng(6).random((30, 8, 8, 3)).astype("float32")
    dataset, pulled = counting(thirty)
    curves = camlab.deletion(model, dataset, np.concatenate([maps] * 5)[:30], steps=3, count=4)
    assert len(curves.auc) == 4 and 6 <= len(pulled) <= 3 * (2 + READ_AHEAD)  # not all 30


# ---------------------------------------------------------------------------------------------
# Errors, before any work
# ---------------------------------------------------------------------------------------------

BAD_STREAMS = {
    "a dict": (lambda x: tf.data.Dataset.from_tensor_slices({"image": x}).batch(3), "Each element"),
    "three parts": (lambda x: batches(x, CLASSES, CLASSES), "Each element"),
    "uint8 images": (lambda x: batches((x * 255).astype("uint8")), "uint8"),
    "the wrong size": (lambda x: batches(x[:, :4]), r"\(B, 8, 8, 3\)"),
    "flat images": (lambda x: batches(x.reshape(7, -1)), "Resize or reshape"),
    "float labels": (lambda x: batches(x, CLASSES.astype("float32")), "labels"),
    "one-hot labels": (lambda x: batches(x, np.eye(3, dtype="int64")[CLASSES]), "argmax"),
    "an endless dataset": (lambda x: batches(x).repeat(), "never ends"),
}


@pytest.mark.parametrize("case", BAD_STREAMS)
def test_a_wrong_dataset_is_refused_by_its_element_spec(case, model, seven, maps):
    make, message = BAD_STREAMS[case]
    for run in (lambda d: camlab.explain(model, d, "gradcam"),
                lambda d: camlab.gradcam(model, d),
                lambda d: camlab.deletion(model, d, maps),
                lambda d: camlab.average_drop(model, d, maps)):
        with pytest.raises(InputError, match=message) as raised:
            run(make(seven))
        assert "dataset" in str(raised.value)


def test_nothing_is_read_before_the_checks_pass(model, seven, maps):
    dataset, pulled = counting(seven)
    for run in (lambda: camlab.explain(model, dataset.repeat(), "cam"),
                lambda: camlab.explain(model, dataset, "eigencam", class_index=1),
                lambda: camlab.explain_stream(model, dataset.map(lambda x: (x, 0)), "cam",
                                              class_index=1),
                lambda: camlab.deletion(model, dataset, batches(maps[:, :4])),
                lambda: camlab.deletion(model, dataset, maps, baseline="noise"),
                lambda: camlab.explain(model, dataset, "cam", count=0)):
        with pytest.raises(InputError):
            run()
    assert pulled == []


def test_labels_and_class_index_together_are_refused(model, seven, maps):
    labelled = batches(seven, CLASSES)
    with pytest.raises(InputError, match="leave class_index=None"):
        camlab.explain(model, labelled, "gradcam", class_index=1)
    with pytest.raises(InputError, match="leave class_index=None"):
        camlab.deletion(model, labelled, maps, class_index=CLASSES)
    with pytest.raises(InputError, match="labels would be ignored"):  # Eigen-CAM takes no class
        camlab.explain(model, labelled, "eigencam")


def test_what_a_batch_holds_is_checked_as_an_array_is(model, seven, maps):
    spoiled = seven.copy()
    spoiled[4, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="batch from image 3 on.*NaN"):
        camlab.explain(model, batches(spoiled), "cam")
    with pytest.raises(ClassIndexError, match="labels must lie in 0 .. 2"):
        camlab.explain(model, batches(seven, CLASSES + 1), "cam")
    with pytest.raises(InputError, match="gave no images"):
        camlab.explain(model, batches(seven).take(0), "cam")
    with pytest.raises(InputError, match="class_index has 9 entries for 7 images"):
        camlab.explain(model, batches(seven), "cam", class_index=np.zeros(9, "int64"))
    with pytest.raises(InputError, match=r"maps for images 3 \.\. 5 are \(2, 8, 8\)"):
        camlab.deletion(model, batches(seven), maps[:5])
    with pytest.raises(InputError, match="9 maps for 7 images"):
        camlab.deletion(model, batches(seven), np.concatenate([maps, maps[:2]]))
    with pytest.raises(InputError, match="maps is a dataset but images an array"):
        camlab.deletion(model, seven, batches(maps))
    with pytest.raises(InputError, match=r"images\[:count\]"):
        camlab.explain(model, seven, "cam", count=3)
    with pytest.raises(InputError, match="tf.distribute.Strategy"):
        camlab.explain(model, seven, "cam", strategy="two GPUs")


def test_a_batch_is_checked_in_the_compiled_pass_as_an_array_is(model, seven):
    """A float32 batch goes to the compiled pipeline as it is and is checked there; others
    (float64, sizes the spec left open) are checked as they arrive. Either way the error is
    the array's, naming the batch."""
    infinite = seven.copy()
    infinite[6, 1, 2, 0] = np.inf
    with pytest.raises(InputError, match=r"batch from image 6 on.*1 Inf.*in images \[0\]"):
        camlab.explain(model, batches(infinite), "gradcam")
    huge = seven.astype("float64")
    huge[2, 0, 0, 0] = 1e39  # finite in float64, Inf in float32
    with pytest.raises(InputError, match="batch from image 0 on.*overflow float32"):
        camlab.explain(model, batches(huge), "cam")
    np.testing.assert_allclose(camlab.gradcam(model, batches(seven.astype("float64"))),
                               camlab.gradcam(model, seven), atol=UNIT)
    open_size = tf.data.Dataset.from_generator(
        lambda: iter([seven[:3], seven[:2, :4]]),
        output_signature=tf.TensorSpec((None, None, None, 3), tf.float32))
    with pytest.raises(InputError, match=r"batch from image 3 on.*\(2, 4, 8, 3\)"):
        camlab.explain(model, open_size, "cam")


def test_a_datasets_batches_go_whole_unless_batch_size_cuts_them(model, seven, monkeypatch):
    """As model.predict: one compiled call per batch of the dataset; batch_size= cuts it."""
    sizes = []
    call = camlab.pipeline._Compiled.__call__

    def counted(self, images, classes, strategy=None):
        sizes.append(len(images))
        return call(self, images, classes, strategy)

    monkeypatch.setattr(camlab.pipeline._Compiled, "__call__", counted)
    many = np.concatenate([seven] * 3)  # 21 images, in batches of 10, 10 and 1
    whole = camlab.explain(model, batches(many, size=10), "gradcam")
    assert sizes == [10, 10, 1]
    sizes.clear()
    cut = camlab.explain(model, batches(many, size=10), "gradcam", batch_size=4)
    assert sizes == [4, 4, 2, 4, 4, 2, 1]
    np.testing.assert_allclose(cut.maps, whole.maps, atol=UNIT)


# ---------------------------------------------------------------------------------------------
# Two devices: a MirroredStrategy over two logical CPUs, in a fresh interpreter
# ---------------------------------------------------------------------------------------------

def test_two_replicas_give_what_one_device_gives(tmp_path, model, seven, maps):
    assert replicas.strategy_for() is None  # no strategy here: one device
    np.savez(tmp_path / "in.npz", images=seven, maps=maps, classes=CLASSES)
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, str(HERE / "stream_devices.py"), str(tmp_path / "in.npz"),
                           str(tmp_path / "out.npz")], env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    found = np.load(tmp_path / "out.npz")
    assert int(found["replicas"]) == 2 and int(found["compiled_steps"]) > 0
    for method in sorted(camlab.METHODS):
        want = camlab.explain(model, seven, method)
        np.testing.assert_allclose(found[f"{method}/maps"], want.maps, atol=UNIT, err_msg=method)
        np.testing.assert_allclose(found[f"{method}/probabilities"], want.probabilities, atol=UNIT)
        np.testing.assert_allclose(found[f"{method}/scores"], want.scores, atol=LOGITS)
        np.testing.assert_array_equal(found[f"{method}/class_index"], want.class_index)
    models = tiny_gap_models()
    for form in ("sequential", "nested"):
        np.testing.assert_allclose(found[f"{form}/gradcam"],
                                   camlab.gradcam(models[form], seven, class_index=CLASSES),
                                   atol=UNIT)
    np.testing.assert_allclose(found["deletion"], camlab.deletion(
        model, seven, maps, CLASSES, steps=4).curves, atol=UNIT)
    np.testing.assert_allclose(found["insertion"], camlab.insertion(
        model, seven, maps, steps=4, baseline="blur").curves, atol=UNIT)
    confidence = camlab.metrics.masked_confidence(model, seven, maps, CLASSES)
    np.testing.assert_allclose(found["masked/original"], confidence.original, atol=UNIT)
    np.testing.assert_allclose(found["masked/masked"], confidence.masked, atol=UNIT)
    np.testing.assert_allclose(found["average_drop"], camlab.average_drop(model, seven, maps),
                               atol=100 * UNIT)  # a percentage: 100x the probabilities


def test_a_streams_probabilities_are_model_predicts(model, seven):
    # Every probability camlab reports equals model.predict's: for a dataset too, batch by batch.
    dataset = tf.data.Dataset.from_tensor_slices(seven).batch(3)
    parts = list(camlab.explain_stream(model, dataset, "gradcam"))
    assert [len(part.maps) for part in parts] == [3, 3, 1]
    got = np.concatenate([part.probabilities for part in parts])
    np.testing.assert_allclose(got, model.predict(seven, verbose=0), rtol=1e-5, atol=UNIT)
    np.testing.assert_allclose(camlab.metrics.class_probabilities(model, dataset),
                               model.predict(seven, verbose=0), rtol=1e-5, atol=UNIT)
