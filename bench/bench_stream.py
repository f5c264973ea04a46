"""Stream 20,000 synthetic 224x224x3 images through Grad-CAM and deletion: memory and speed.

The images never exist all at once: each is made inside the tf.data pipeline from its
index (``tf.random.stateless_uniform``), batched, and read one batch at a time, as a
data set on disk would be. For each image count (default 5,000 and 20,000) a fresh
Python process runs, so its peak resident memory (``ru_maxrss``) is that run's alone:

- ``model.predict`` on the dataset: the floor;
- ``camlab.explain_stream(..., "gradcam")``, consuming the maps batch by batch;
- Grad-CAM written by hand in one ``tf.function``, nothing checked: the least work any
  Grad-CAM does (dS/dA, the weighted sum, upsampling, scaling), beside the forward pass;
- ``camlab.deletion`` with ``--steps`` steps on the first tenth of the images (its maps a
  second stream), against ``model.predict`` on the same images repeated steps + 1 times
  (each image is made once and repeated inside the batch): deletion's own floor.

Streaming means the peak memory does not grow with the number of images: the last line
compares the two counts. Ratios taken in one run are what to compare (absolute times on
shared machines vary by 2x), so each process times the five in turn, ``--rounds`` times
(default 3), and reports the best time of each (the ratio is of the best times). The
datasets run with tf.data's autotuning off (see ``images`` below). With a
GPU visible, the images per second are on it. ``--filters`` sets the model's widths
(default 8 16 32; notebook 01's model, camlab.gap_cnn's default, is 32 64 128).

    python bench/bench_stream.py                 # 5,000 and 20,000 images
    python bench/bench_stream.py --quick         # 500 and 2,000 images
    python bench/bench_stream.py --counts 1000 4000 --steps 20 --rounds 5
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


def one_run(count, steps, rounds, filters):
    """Time predict, Grad-CAM and deletion on ``count`` streamed images, ``rounds``
    times in turn; return a dict of the lists of times."""
    import keras
    import tensorflow as tf

    import camlab
    from camlab.pipeline import default_batch_size

    keras.utils.set_random_seed(0)
    model = camlab.gap_cnn(input_shape=SIZE, num_classes=10, filters=tuple(filters))

    def image(index):
        return tf.random.stateless_uniform(SIZE, seed=tf.stack([index, tf.constant(0, tf.int64)]))

    def a_map(index):
        return tf.random.stateless_uniform(SIZE[:2], seed=tf.stack([index, tf.constant(1, tf.int64)]))

    # tf.data's autotuning off: its thread sleeps in growing steps (..., 1.28 s, 2.56 s),
    # and an iterator torn down while it sleeps waits for it (measured here: a pass of
    # 1.3 s took 2.56 s one time in three, model.predict's as well as camlab's)
    steady = tf.data.Options()
    steady.autotune.enabled = False

    def images(n, batch=BATCH):
        return tf.data.Dataset.range(n).map(image).batch(batch).prefetch(1).with_options(steady)

    few = max(1, count // 10)  # deletion's images
    per_call = max(1, default_batch_size(SIZE, gradients=False) // (steps + 1))
    repeated = (tf.data.Dataset.range(few).map(image).batch(per_call)
                .map(lambda x: tf.repeat(x, steps + 1, axis=0)).prefetch(1).with_options(steady))
    map_stream = tf.data.Dataset.range(few).map(a_map).batch(BATCH).with_options(steady)

    def predict():
        model.predict(images(count), verbose=0)

    def gradcam():
        for explanation in camlab.explain_stream(model, images(count), "gradcam"):
            explanation.maps.max()  # each batch's maps, then dropped

    # The least any Grad-CAM can do, written by hand in one tf.function: the forward pass,
    # dS/dA, its mean, the weighted sum, ReLU, bilinear upsampling and min-max scaling;
    # nothing checked, no probabilities. What camlab adds is the gap between the two lines.
    features_and_scores = keras.Model(model.inputs, [model.get_layer("last_conv").output,
                                                     model.get_layer("gap").output])
    kernel, bias = model.get_layer("classifier").weights

    @tf.function(input_signature=[tf.TensorSpec((None,) + SIZE, tf.float32)])
    def by_hand(batch):
        with tf.GradientTape() as tape:
            feature_maps, pooled = features_and_scores(batch, training=False)
            scores = pooled @ kernel + bias
            score = tf.reduce_max(scores, axis=-1)
        weights = tf.reduce_mean(tape.gradient(score, feature_maps), axis=(1, 2))
        maps = tf.nn.relu(tf.einsum("nhwk,nk->nhw", feature_maps, weights))
        maps = tf.image.resize(maps[..., tf.newaxis], SIZE[:2])[..., 0]
        low = tf.reduce_min(maps, axis=(1, 2), keepdims=True)
        high = tf.reduce_max(maps, axis=(1, 2), keepdims=True)
        return (maps - low) / tf.maximum(high - low, 1e-12)

    def gradcam_by_hand():
        for batch in images(count):
            by_hand(batch).numpy().max()

    def predict_steps():
        model.predict(repeated, verbose=0)

    def deletion():
        camlab.deletion(model, images(few), map_stream, steps=steps)

    model.predict(images(BATCH), verbose=0)  # compile everything once before timing
    list(camlab.explain_stream(model, images(BATCH), "gradcam"))
    by_hand(next(iter(images(BATCH))))
    model.predict(repeated.take(1), verbose=0)
    camlab.deletion(model, images(2, 2), map_stream.unbatch().take(2).batch(2), steps=steps)
    warm = peak_mb()
    found = {"count": count, "few": few, "steps": steps, "per_call": per_call, "warm_mb": warm,
             "gpu": [d.name for d in tf.config.list_physical_devices("GPU")],
             "filters": list(filters),
             "versions": f"camlab {camlab.__version__} | keras {keras.__version__} | "
                         f"tensorflow {tf.__version__}"}
    for _ in range(rounds):
        for name, run in (("predict", predict), ("gradcam", gradcam),
                          ("gradcam_by_hand", gradcam_by_hand),
                          ("predict_steps", predict_steps), ("deletion", deletion)):
            start = time.perf_counter()
            run()
            found.setdefault(name, []).append(time.perf_counter() - start)
    found["peak_mb"] = peak_mb()
    return found


def in_fresh_process(count, args):
    """``one_run`` in a new interpreter, so that its peak memory is its own."""
    done = subprocess.run([sys.executable, __file__, "--child", str(count), "--steps",
                           str(args.steps), "--rounds", str(args.rounds), "--filters",
                           *map(str, args.filters)],
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
    parser.add_argument("--rounds", type=int, default=3, help="timings of each, in turn (default 3)")
    parser.add_argument("--filters", type=int, nargs="+", default=[8, 16, 32],
                        help="the model's conv widths (default 8 16 32)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one_run(args.child, args.steps, args.rounds, args.filters)))
        return 0
    counts = args.counts or ((500, 2000) if args.quick else (5000, 20000))

    runs = [in_fresh_process(count, args) for count in counts]
    first = runs[0]
    device = ", ".join(first["gpu"]) or "CPU only"
    print(f"{first['versions']} | {SIZE[0]}x{SIZE[1]}x{SIZE[2]} synthetic images made in tf.data "
          f"| model gap_cnn ({'-'.join(map(str, first['filters']))}) | dataset batches of "
          f"{BATCH} | {device} | best of {len(first['predict'])} rounds; ratio: camlab's "
          "throughput / model.predict's")

    def line(label, times, floor, images, note=""):
        ratio = min(floor) / min(times)
        print(f"{label:<32}{min(times):8.2f} s {ratio:6.2f}x {images / min(times):8.0f} images/s{note}")

    for run in runs:
        count, few, steps = run["count"], run["few"], run["steps"]
        forwards = few * (steps + 1)
        print(f"-- {count:,} images (fresh process)")
        line("model.predict", run["predict"], run["predict"], count)
        line("camlab.explain_stream gradcam", run["gradcam"], run["predict"], count)
        line("Grad-CAM by hand (the least)", run["gradcam_by_hand"], run["predict"], count)
        line(f"model.predict, {few:,} x {steps + 1}", run["predict_steps"], run["predict_steps"],
             forwards, f" ({forwards:,} forward passes)")
        line(f"camlab.deletion, {few:,} images", run["deletion"], run["predict_steps"], few,
             f" ({steps} steps, {run['per_call'] * (steps + 1)} images per forward pass)")
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
