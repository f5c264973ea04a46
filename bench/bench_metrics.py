"""Time deletion and insertion (50 steps, 1,000 images) against the bare forward passes they need.

Deletion and insertion with ``steps`` steps push every image through the model
``steps + 1`` times. The floor is ``model.predict`` on those 1,000 x 51
images with the same number of images per forward pass; camlab's overhead
(ranking pixels, building the perturbed images inside the compiled function,
reading probabilities) is the ratio to that floor. Target: at most 1.3x.
Also prints Score-CAM's and, when camlab has it, Ablation-CAM's cost against
``predict`` on the same images. Ratios taken in one run are what to compare
(FIELD_NOTES: absolute times on shared machines vary by 2x).

    python bench/bench_metrics.py              # 1,000 images, best of 2
    python bench/bench_metrics.py --quick      # 200 images, best of 1
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import camlab  # noqa: E402
from camlab.pipeline import default_batch_size  # noqa: E402

TARGET = 1.3


def best_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images, one repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    count = 200 if args.quick else 1000
    repeats = args.repeats or (1 if args.quick else 2)
    steps = args.steps

    keras.utils.set_random_seed(0)
    data = camlab.localization_set("test", count=count, seed=0)
    images = data.images
    model = camlab.gap_cnn(input_shape=(64, 64, 1), num_classes=10, filters=(32, 64, 128))
    maps = camlab.cam(model, images)
    # Images per forward pass: all steps of as many images as fit camlab's batch.
    per_call = max(1, default_batch_size((64, 64, 1), gradients=False) // (steps + 1))
    forward_batch = per_call * (steps + 1)

    # The same 1,000 x 51 images in one predict call, without building a 51x copy.
    repeated = tf.data.Dataset.from_tensor_slices(images).repeat(steps + 1).batch(forward_batch)

    def predict_all_steps():
        model.predict(repeated, verbose=0)

    def run_deletion():
        camlab.deletion(model, images, maps, steps=steps)

    def run_insertion():
        camlab.insertion(model, images, maps, steps=steps, baseline="blur")

    model.predict(repeated.take(1), verbose=0)  # compile
    camlab.deletion(model, images[:per_call], maps[:per_call], steps=steps)
    camlab.insertion(model, images[:per_call], maps[:per_call], steps=steps, baseline="blur")

    print(f"camlab {camlab.__version__} | {count} images 64x64x1 (localization set) | model "
          f"gap_cnn (32-64-128) | {steps} steps | {forward_batch} images per forward pass | "
          f"best of {repeats} | keras {keras.__version__}")
    reference = best_time(predict_all_steps, repeats)
    print(f"{'model.predict (one call)':<28}{reference:8.2f} s   1.00x   "
          f"({count * (steps + 1):,} images)")
    for name, run in (("camlab.deletion", run_deletion), ("camlab.insertion (blur)", run_insertion)):
        seconds = best_time(run, repeats)
        verdict = "ok" if seconds / reference <= TARGET else "MISSED"
        print(f"{name:<28}{seconds:8.2f} s {seconds / reference:6.2f}x   target <= {TARGET}x: {verdict}")

    few = images[:100]
    batch = default_batch_size((64, 64, 1), gradients=False)
    model.predict(few, batch_size=batch, verbose=0)
    one_predict = best_time(lambda: model.predict(few, batch_size=batch, verbose=0), 3)
    print(f"{'model.predict, 100 images':<28}{one_predict:8.3f} s   1.00x")
    for name in ("scorecam", "ablationcam"):
        if name not in camlab.METHODS:
            print(f"{'camlab ' + name:<28}  (not in camlab.METHODS)")
            continue
        camlab.explain(model, few[:2], name)  # compile
        seconds = best_time(lambda name=name: camlab.explain(model, few, name), 1)
        print(f"{'camlab ' + name + ', 100':<28}{seconds:8.3f} s {seconds / one_predict:6.1f}x")


if __name__ == "__main__":
    main()
