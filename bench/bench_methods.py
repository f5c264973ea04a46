"""Time every camlab method against model.predict on 10,000 28x28 images, in one run.

Prints, for each method, its median time over a few repeats and the ratio to
model.predict's time on the same images with the same batch size. Ratios
taken in one run are what to compare: absolute times on shared machines vary
by 2x from run to run (FIELD_NOTES).

    python bench/bench_methods.py            # everything (Score-CAM takes a minute or two)
    python bench/bench_methods.py --quick    # 2,000 images, no Score-CAM
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import scipy.ndimage  # noqa: E402
import keras  # noqa: E402

import camlab  # noqa: E402
from camlab.pipeline import default_batch_size  # noqa: E402

TARGETS = {"cam": 1.3, "gradcam": 1.5, "gradcam_plus_plus": 2.0,
           "hirescam": 1.5, "xgradcam": 1.5}  # one forward and one backward pass, as Grad-CAM
SLOW = ("scorecam", "scorecam_paper", "ablationcam")  # timed once: K passes of the model, or of its end


def median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def seed_loop(model, images):
    """The Fashion-MNIST lab's way (notebook 02): per image, predict, zoom the features, dot with the weights."""
    features_model = keras.Model(model.inputs[0], [model.get_layer("last_conv").output,
                                                    model.outputs[0]])
    weights = model.layers[-1].get_weights()[0]
    for image in images:
        features, results = features_model.predict(image[np.newaxis], verbose=0)
        zoomed = scipy.ndimage.zoom(features[0], (28 / 7, 28 / 7, 1), order=2)
        np.dot(zoomed, weights[:, results[0].argmax()])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 images, no Score-CAM")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    count = 2000 if args.quick else 10000

    keras.utils.set_random_seed(0)
    model = camlab.gap_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(32, 64, 128))
    images = np.random.default_rng(0).random((count, 28, 28, 1)).astype("float32")
    batch = default_batch_size((28, 28, 1), gradients=False)

    def predict():
        model.predict(images, batch_size=batch, verbose=0)

    methods = [m for m in camlab.METHODS if not (args.quick and m.startswith("scorecam"))]
    runs = {name: (lambda name=name: camlab.explain(model, images, name)) for name in methods}
    predict()  # compile everything once before timing
    for run in runs.values():
        run()

    print(f"camlab {camlab.__version__} | {count} images 28x28x1 | model gap_cnn (32-64-128) "
          f"| batch {batch} | median of {args.repeats} | keras {keras.__version__}")
    reference = median_time(predict, args.repeats)
    print(f"{'model.predict':<24}{reference:8.3f} s   1.00x")
    ratios = {}
    for name, run in runs.items():
        repeats = 1 if name in SLOW else args.repeats
        seconds = median_time(run, repeats)
        ratios[name] = seconds / reference
        target = TARGETS.get(name)
        verdict = f"   target <= {target}x: {'ok' if seconds / reference <= target else 'MISSED'}" if target else ""
        print(f"{'camlab ' + name:<24}{seconds:8.3f} s {seconds / reference:6.2f}x{verdict}")
    channels = model.get_layer("last_conv").output.shape[-1]
    print(f"gradient-free methods against predict, K = {channels} channels: "
          + ", ".join(f"{name} {ratios[name]:.1f}x" for name in SLOW if name in ratios)
          + " (Ablation-CAM runs only the layers after last_conv, on K + 1 copies; "
          "Score-CAM runs the whole model K times)")
    sample = 200
    seconds = median_time(lambda: seed_loop(model, images[:sample]), 1) * count / sample
    print(f"{'lab loop, per image':<24}{seconds:8.1f} s {seconds / reference:6.0f}x"
          f"   (timed on {sample} images, scaled to {count})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
