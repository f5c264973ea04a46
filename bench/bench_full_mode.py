"""How long a learner waits: each notebook's full-mode work at the real data sizes, on this CPU.

Notebooks 01, 02 and 04 train on 60,000 images and explain 10,000; notebook 03
trains heads on 2,000 photos at 224x224 and validates on 1,000. The
offline subsets stand in for the real data, tiled to those sizes with small
random shifts (the images differ, the arithmetic is the same). Settings come
from each notebook's Parameters cell, read with CAMLAB_FAST=0, so the bench
follows the notebooks.

Training time per epoch is steady, so by default one epoch of each fit is
timed (after a short warm-up that traces the step) and multiplied by the
notebook's epochs; ``--all-epochs`` runs them all. Notebook 03's backbones are
timed on ``--photos`` photos per split and scaled to 2,000 + 1,000 (its cost is
linear in the photos). Not counted: kernel start and imports (about 5 s), the
downloads, drawing figures, the explorer (bench/bench_widget.py times it).

    python bench/bench_full_mode.py               # about 10 minutes on 2 cores
    python bench/bench_full_mode.py --all-epochs  # every epoch, as a learner runs it
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ["CAMLAB_FAST"] = "0"
os.environ["CAMLAB_OFFLINE"] = "1"

import camlab  # noqa: E402  (first: loads TensorFlow quietly)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOAL_MINUTES = 5.0


def parameters(notebook):
    """The names the notebook's Parameters cell (papermill tag `parameters`) defines, in full mode."""
    cells = json.loads((ROOT / "notebooks" / notebook).read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
    names = {}
    exec("".join(cell["source"]), names)  # noqa: S102 (our own notebook)
    assert names["FAST"] is False
    return names


def tiled(images, labels, count, seed=0, shift=2):
    """``count`` images made from ``images`` by copies shifted by up to ``shift`` pixels."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(images), count)
    out = images[picks].copy()
    moves = rng.integers(-shift, shift + 1, (count, 2))
    for dy in range(-shift, shift + 1):  # one np.roll per shift, not per image
        for dx in range(-shift, shift + 1):
            chosen = (moves[:, 0] == dy) & (moves[:, 1] == dx)
            out[chosen] = np.roll(out[chosen], (dy, dx), axis=(1, 2))
    return out, labels[picks]


class Clock:
    """Named timings of one notebook, in seconds."""

    def __init__(self, title):
        self.title, self.rows = title, []
        print(title, flush=True)

    def add(self, name, seconds, note=""):
        self.rows.append(seconds)
        print(f"  {name:<40} {seconds:8.1f} s   {note}", flush=True)

    def time(self, name, function, note=""):
        start = time.perf_counter()
        result = function()
        self.add(name, time.perf_counter() - start, note)
        return result

    def total(self):
        minutes = sum(self.rows) / 60
        verdict = "ok" if minutes <= GOAL_MINUTES else "OVER"
        print(f"  {'total':<40} {minutes:8.1f} min goal <= {GOAL_MINUTES:.0f} min: {verdict}\n", flush=True)
        return minutes


def fit_time(clock, name, build, x, y, epochs, batch_size, validation_split, all_epochs):
    """Train as the notebook does; time one epoch (times ``epochs``) unless ``all_epochs``."""
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()  # trace the train and test steps on a few batches
    model.fit(x[: 4 * batch_size], y[: 4 * batch_size], epochs=1, batch_size=batch_size,
              validation_split=0.25, verbose=0)
    warm_up = time.perf_counter() - start
    timed = epochs if all_epochs else 1
    start = time.perf_counter()
    model.fit(x, y, epochs=timed, batch_size=batch_size, validation_split=validation_split, verbose=0)
    seconds = (time.perf_counter() - start) * epochs / timed
    note = f"{epochs} epochs at batch {batch_size}" + ("" if all_epochs else ", 1 timed")
    clock.add(name, warm_up + seconds, note)
    return model


def mnist_like(dataset, train=60_000, test=10_000):
    x_train, y_train = tiled(dataset.x_train, dataset.y_train, train, seed=1)
    x_test, y_test = tiled(dataset.x_test, dataset.y_test, test, seed=2)
    return x_train, y_train, x_test, y_test


def notebook_01(all_epochs):
    p = parameters("01_cam_mnist.ipynb")
    clock = Clock("notebook 01 (MNIST): 60,000 training and 10,000 test images")
    x_train, y_train, x_test, y_test = mnist_like(camlab.load_mnist(fast=False, offline=True))

    def tutorial():
        inputs = keras.Input(shape=(28, 28, 1))
        x = keras.layers.Conv2D(64, (3, 3), activation="relu")(inputs)
        x = keras.layers.Conv2D(64, (3, 3), activation="relu", name="last_conv")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))

    few = p["TUTORIAL_IMAGES"]
    weak = fit_time(clock, f"tutorial's model, {few:,} images", tutorial, x_train[:few], y_train[:few],
                    p["TUTORIAL_EPOCHS"], 256, 0.3, all_epochs)
    model = fit_time(clock, "gap_cnn 32-64-128", lambda: camlab.gap_cnn(filters=(32, 64, 128)),
                     x_train, y_train, p["EPOCHS"], p["BATCH_SIZE"], 0.1, all_epochs)
    clock.time("evaluate both models", lambda: (weak.evaluate(x_test, y_test, verbose=0),
                                                model.evaluate(x_test, y_test, verbose=0)))
    clock.time("camlab.explain, 10,000 test images", lambda: camlab.explain(model, x_test, "cam"))
    return clock.total()


def notebook_02(all_epochs):
    p = parameters("02_cam_fashion_mnist.ipynb")
    clock = Clock("notebook 02 (Fashion-MNIST): 60,000 training and 10,000 test images")
    x_train, y_train, x_test, y_test = mnist_like(camlab.load_fashion_mnist(fast=False, offline=True))
    model = fit_time(clock, "the lab's model 16-32-64-128",
                     lambda: camlab.gap_cnn(filters=(16, 32, 64, 128)), x_train, y_train,
                     p["EPOCHS"], p["BATCH_SIZE"], 0.1, all_epochs)
    clock.time("evaluate", lambda: model.evaluate(x_test, y_test, verbose=0))
    cam_model = keras.Model(model.inputs, (model.layers[-3].output, model.layers[-1].output))
    clock.time("cam_model.predict, 10,000 images", lambda: cam_model.predict(x_test, verbose=0))
    clock.time("camlab.explain, 10,000 test images", lambda: camlab.explain(model, x_test, "cam"))
    clock.time("the lab's loop vs camlab (300 images)", lambda: timing_section(model, cam_model,
                                                                               x_test[: p["TIMING_IMAGES"]]))
    return clock.total()


def timing_section(model, cam_model, images):
    import scipy.ndimage

    features, results = cam_model.predict(images, verbose=0)
    weights = model.layers[-1].get_weights()[0]
    np.stack([scipy.ndimage.zoom(f, (28 / 3, 28 / 3, 1), order=2) @ weights[:, r.argmax()]
              for f, r in zip(features, results)])
    camlab.cam(model, images)


def notebook_03(photos_per_split):
    p = parameters("03_cam_cats_vs_dogs.ipynb")
    clock = Clock(f"notebook 03 (cats vs dogs): 2,000 training and 1,000 validation photos at "
                  f"{p['IMAGE_SIZE']}x{p['IMAGE_SIZE']}, {p['EPOCHS']} epoch")
    photos = camlab.load_cats_vs_dogs(fast=False, offline=True, image_size=p["IMAGE_SIZE"])
    images, labels = photos.load("train")
    rgb, y = tiled(images, labels, photos_per_split, seed=3, shift=8)
    rgb = np.where(np.random.default_rng(4).random(len(rgb))[:, None, None, None] < 0.5,
                   rgb, rgb[:, :, ::-1])  # and mirrored
    scale = {"validation": 1000 / photos_per_split}
    batch = p["BATCH_SIZE"]
    for backbone in ("resnet50", "vgg16"):
        x = camlab.preprocess(rgb, backbone)
        model = camlab.pretrained_gap_model(backbone, input_shape=rgb.shape[1:], weights=None)
        model.compile(optimizer=keras.optimizers.Adam(p["LEARNING_RATE"]),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x[:batch], y[:batch], epochs=1, batch_size=batch, verbose=0)  # trace
        model.evaluate(x[:batch], y[:batch], batch_size=batch, verbose=0)
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
        trained = 2000 if backbone == "resnet50" else p["VGG_PHOTOS"]  # as the notebook
        train = (time.perf_counter() - start) * trained / photos_per_split * p["EPOCHS"]
        clock.add(f"{backbone}: train the head", train,
                  f"{p['EPOCHS']} epoch of {trained:,} photos (timed on {photos_per_split})")
        if backbone == "resnet50":  # the notebook validates ResNet50's head only
            start = time.perf_counter()
            model.evaluate(x, y, batch_size=batch, verbose=0)
            validate = (time.perf_counter() - start) * scale["validation"] * p["EPOCHS"]
            clock.add(f"{backbone}: validate", validate, "1,000 photos")
        base = model.layers[0]
        base.predict(x[:batch], batch_size=batch, verbose=0)  # trace
        start = time.perf_counter()
        base.predict(x, batch_size=batch, verbose=0)
        forward = (time.perf_counter() - start) / photos_per_split
        print(f"  {'':<40} {'':>8}     (cached features instead: the backbone runs once per photo, "
              f"{forward * 3000:.0f} s for 3,000; each further epoch of the head ~0 s)", flush=True)
        clock.time(f"{backbone}: maps of {p['SHOWN']} photos (cam, gradcam)",
                   lambda: (camlab.cam(model, x[: p["SHOWN"]]), camlab.gradcam(model, x[: p["SHOWN"]])))
    return clock.total()


def notebook_04(all_epochs):
    p = parameters("04_gradcam_fashion_mnist.ipynb")
    clock = Clock("notebook 04 (Grad-CAM, Fashion-MNIST): 60,000 training and 10,000 test images")
    x_train, y_train, x_test, y_test = mnist_like(camlab.load_fashion_mnist(fast=False, offline=True))
    model = fit_time(clock, "flatten_cnn (8 conv + batch norm)",
                     lambda: camlab.flatten_cnn(batchnorm_momentum=p["BATCHNORM_MOMENTUM"]),
                     x_train, y_train, p["EPOCHS"], p["BATCH_SIZE"], 0.1, all_epochs)
    clock.time("evaluate", lambda: model.evaluate(x_test, y_test, verbose=0))
    clock.time("gradcam + gradcam_plus_plus, 10,000 images",
               lambda: (camlab.explain(model, x_test, "gradcam"), camlab.gradcam_plus_plus(model, x_test)))
    sample = x_test[: p["PEAK_SAMPLE"]]
    clock.time(f"scorecam + layercam x2, {p['PEAK_SAMPLE']} images",
               lambda: (camlab.scorecam(model, sample), camlab.layercam(model, sample),
                        camlab.layercam(model, sample, layer="conv5")))
    examples = x_test[: p["SHOWN"]]
    clock.time(f"modifiers, guided backprop, {p['SHOWN']} images",
               lambda: [camlab.gradcam(model, examples, layer=layer, modifier=modifier)
                        for layer in ("final", "conv7") for modifier in (None, "guided", "relu")]
               + [camlab.guided_backprop(model, examples, modifier=m) for m in (None, "relu", "guided")])
    return clock.total()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all-epochs", action="store_true", help="run every epoch, not one")
    parser.add_argument("--photos", type=int, default=128, help="photos per split timed for notebook 03")
    parser.add_argument("--only", nargs="*", default=["01", "02", "03", "04"], help="notebook numbers")
    args = parser.parse_args()
    print(f"camlab {camlab.__version__} | full mode at the real data sizes | {os.cpu_count()} CPU cores | "
          f"keras {keras.__version__}, tensorflow {tf.__version__}, python {sys.version.split()[0]}\n",
          flush=True)
    runs = {"01": lambda: notebook_01(args.all_epochs), "02": lambda: notebook_02(args.all_epochs),
            "03": lambda: notebook_03(args.photos), "04": lambda: notebook_04(args.all_epochs)}
    minutes = {number: runs[number]() for number in args.only}
    print("minutes per notebook: " + ", ".join(f"{n}: {m:.1f}" for n, m in minutes.items()))


if __name__ == "__main__":
    main()
