"""Stream 20,000 synthetic 224x224x3 images through Grad-CAM and deletion: memory and speed.

The images never exist all at once: each is made inside the tf.data pipeline from its
index (``tf.random.stateless_uniform``), batched, and read one batch at a time, as a
data set on disk would be. For each image count (default 5,000 and 20,000) a fresh
Python process runs, so its peak resident memory (``ru_maxrss``) is that run's alone:

- ``model.predict`` on the dataset: the floor;
- ``camlab.explain_stream(..., "gradcam")``, consuming the maps batch by batch;
- ``camlab.deletion`` with ``--steps`` steps on the first tenth of the images (its maps a
  second stream), against ``model.predict`` on the same images repeated steps + 1 times
  (each image is made once and repeated inside the batch): deletion's own floor.

Streaming means the peak memory does not grow with the number of images: the last line
compares the two counts. Ratios taken in one run are what to compare (absolute times on
shared machines vary by 2x). With a GPU visible, the images per second are on it.

    python bench/bench_stream.py                 # 5,000 and 20,000 images
    python bench/bench_stream.py --quick         # 500 and 2,000 images
    python bench/bench_stream.py --counts 1000 4000 --steps 20
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = (224, 224, 3)
BATCH = 32  # images per dataset batch
GROWTH = 1.10  # peak memory at the larger count within 10% of the smaller: flat


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def one_run(count, steps):
    """Time predict, Grad-CAM and deletion on ``count`` streamed images; return a dict."""
    import keras
    import tensorflow as tf

    import camlab
    from camlab.pipeline import default_batch_size

    keras.utils.set_random_seed(0)
    model = camlab.gap_cnn(input_shape=SIZE, num_classes=10, filters=(8, 16, 32))

    def image(index):
        return tf.random.stateless_uniform(SIZE, seed=tf.stack([index, tf.constant(0, tf.int64)]))

    def a_map(index):
        return tf.random.stateless_uniform(SIZE[:2], seed=tf.stack([index, tf.constant(1, tf.int64)]))

    def images(n, batch=BATCH):
        return tf.data.Dataset.range(n).map(image).batch(batch).prefetch(1)

    few = max(1, count // 10)  # deletion's images
    per_call = max(1, default_batch_size(SIZE, gradients=False) // (steps + 1))
    repeated = (tf.data.Dataset.range(few).map(image).batch(per_call)
                .map(lambda x: tf.repeat(x, steps + 1, axis=0)).prefetch(1))
    map_stream = tf.data.Dataset.range(few).map(a_map).batch(BATCH)

    def predict():
        model.predict(images(count), verbose=0)

    def gradcam():
        for explanation in camlab.explain_stream(model, images(count), "gradcam"):
            explanation.maps.max()  # each batch's maps, then dropped

    def predict_steps():
        model.predict(repeated, verbose=0)

    def deletion():
        camlab.deletion(model, images(few), map_stream, steps=steps)

    model.predict(images(BATCH), verbose=0)  # compile everything once before timing
    list(camlab.explain_stream(model, images(BATCH), "gradcam"))
    model.predict(repeated.take(1), verbose=0)
    camlab.deletion(model, images(2, 2), map_stream.unbatch().take(2).batch(2), steps=steps)
    warm = peak_mb()
    found = {"count": count, "few": few, "steps": steps, "per_call": per_call, "warm_mb": warm,
             "gpu": [d.name for d in tf.config.list_physical_devices("GPU")],
             "versions": f"camlab {camlab.__version__} | keras {keras.__version__} | "
                         f"tensorflow {tf.__version__}"}
    for name, run in (("predict", predict), ("gradcam", gradcam), ("predict_steps", predict_steps),
                      ("deletion", deletion)):
        start = time.perf_counter()
        run()
        found[name] = time.perf_counter() - start
    found["peak_mb"] = peak_mb()
    return found


def in_fresh_process(count, steps):
    """``one_run`` in a new interpreter, so that its peak memory is its own."""
    done = subprocess.run([sys.executable, __file__, "--child", str(count), "--steps", str(steps)],
                          capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        raise SystemExit(f"the run on {count} images failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 and 2,000 images")
    parser.add_argument("--counts", type=int, nargs=2, default=None, metavar=("SMALL", "LARGE"),
                        help="the two image counts (default 5,000 and 20,000)")
    parser.add_argument("--steps", type=int, default=10, help="deletion steps (default 10)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one_run(args.child, args.steps)))
        return 0
    counts = args.counts or ((500, 2000) if args.quick else (5000, 20000))

    runs = [in_fresh_process(count, args.steps) for count in counts]
    first = runs[0]
    device = ", ".join(first["gpu"]) or "CPU only"
    print(f"{first['versions']} | {SIZE[0]}x{SIZE[1]}x{SIZE[2]} synthetic images made in tf.data "
          f"| model gap_cnn (8-16-32) | dataset batches of {BATCH} | {device}")
    for run in runs:
        count, few, steps = run["count"], run["few"], run["steps"]
        print(f"-- {count:,} images (fresh process)")
        print(f"{'model.predict':<32}{run['predict']:8.2f} s   1.00x {count / run['predict']:8.0f} images/s")
        print(f"{'camlab.explain_stream gradcam':<32}{run['gradcam']:8.2f} s "
              f"{run['gradcam'] / run['predict']:6.2f}x {count / run['gradcam']:8.0f} images/s")
        forwards = few * (steps + 1)
        print(f"{'model.predict, ' + f'{few:,} x {steps + 1}':<32}{run['predict_steps']:8.2f} s   1.00x "
              f"{forwards / run['predict_steps']:8.0f} images/s ({forwards:,} forward passes)")
        print(f"{'camlab.deletion, ' + f'{few:,} images':<32}{run['deletion']:8.2f} s "
              f"{run['deletion'] / run['predict_steps']:6.2f}x {few / run['deletion']:8.0f} images/s "
              f"({steps} steps, {run['per_call'] * (steps + 1)} images per forward pass)")
        print(f"{'peak resident memory':<32}{run['peak_mb']:8.0f} MB (after compiling: "
              f"{run['warm_mb']:.0f} MB)")
    small, large = runs[0], runs[-1]
    growth = large["peak_mb"] / small["peak_mb"]
    verdict = "flat" if growth <= GROWTH else "GROWS"
    print(f"peak memory, {large['count']:,} against {small['count']:,} images: "
          f"{large['peak_mb'] - small['peak_mb']:+.0f} MB ({growth:.2f}x; "
          f"{large['count'] / small['count']:.0f}x the images): {verdict} "
          f"(flat: within {GROWTH:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
