"""camlab on two logical CPU devices under a MirroredStrategy, in a fresh interpreter.

tests/test_stream.py runs ``python tests/stream_devices.py IN.npz OUT.npz``: TensorFlow
must be told of the two devices before it initialises any, so this cannot run inside the
pytest process. IN holds the images and maps; OUT receives what camlab computed on the two
replicas, and the parent compares it with one device.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import camlab  # noqa: E402
from camlab import replicas  # noqa: E402
from conftest import tiny_gap_models  # noqa: E402

BATCH = 3  # 7 images: batches of 3, 3 and 1, so one batch is smaller than the two replicas


def main(source, target):
    given = np.load(source)
    images, maps, classes = given["images"], given["maps"], given["classes"]
    models = tiny_gap_models()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    found = {"replicas": np.array(strategy.num_replicas_in_sync)}
    stream = tf.data.Dataset.from_tensor_slices(images).batch(BATCH)
    for method in sorted(camlab.METHODS):
        with strategy.scope():  # the user's scope, as in a training script
            result = camlab.explain(models["functional"], stream, method)
        for field in ("maps", "scores", "probabilities", "class_index"):
            found[f"{method}/{field}"] = getattr(result, field)
    # an explicit strategy=, arrays, and the other model forms
    for form in ("sequential", "nested"):
        found[f"{form}/gradcam"] = camlab.gradcam(models[form], images, class_index=classes,
                                                  batch_size=BATCH, strategy=strategy)
    labelled = tf.data.Dataset.from_tensor_slices((images, classes)).batch(BATCH)
    map_stream = tf.data.Dataset.from_tensor_slices(maps).batch(BATCH)
    with strategy.scope():
        found["deletion"] = camlab.deletion(models["functional"], labelled, map_stream,
                                            steps=4).curves
        found["insertion"] = camlab.insertion(models["functional"], stream, maps, steps=4,
                                              baseline="blur").curves
        confidence = camlab.metrics.masked_confidence(models["functional"], labelled, map_stream)
    found["masked/original"], found["masked/masked"] = confidence.original, confidence.masked
    found["average_drop"] = np.array(camlab.average_drop(models["functional"], stream, maps,
                                                         strategy=strategy))
    found["compiled_steps"] = np.array(sum(len(steps) for steps in replicas._STEPS.values()))
    np.savez(target, **found)


if __name__ == "__main__":
    main(*sys.argv[1:3])
