"""How fast the explorer widget redraws when a slider moves, in one run.

Builds the explorer (camlab.explore) on the 2,000 Fashion-MNIST images camlab
ships, with notebook 02's model briefly trained, then moves its sliders 100
times from code (70 image moves, 20 class moves, 10 opacity moves, in a fixed
random order; image moves jump anywhere, the worst case for the cache) and
times each redraw: from setting the slider's value to the new PNGs being in
the widget (without a browser: what the kernel does). Then it drags the image
slider over 100 consecutive images, and switches method once per method. The
target is a median under 50 ms; it is printed next to the time of one
single-image ``camlab.cam`` call measured in the same run (FIELD_NOTES: compare
within one run, absolute times vary by 2x on shared machines). It also times
a map lookup in the explorer's ``MapCache`` alone (``camlab.widgets.cache``,
no widget, no PNG): the part of a redraw that is not drawing.

This is the kernel's side. What a learner waits for in JupyterLab, key press
to new picture in the page, is timed in a real browser by
``tests/test_browser.py`` (``pytest -s`` prints it beside the kernel's redraw
time of the same moves; goal <= 30 ms median on 2 cores).

    python bench/bench_widget.py            # 2,000 images, 100 moves
    python bench/bench_widget.py --quick    # 400 images, 1 epoch, 30 moves: a smoke run
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import keras  # noqa: E402

import camlab  # noqa: E402
from camlab.data import fashion_mnist_subset  # noqa: E402
from camlab.widgets import MapCache  # noqa: E402

TARGET_MS = 50.0
MOVES = 100


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 400 images, 1 epoch of training, 30 slider moves, "
                             "3 methods (times are then rougher)")
    return parser.parse_args(argv)


def main(argv=None):
    options = arguments(argv)
    moves = 30 if options.quick else MOVES
    keras.utils.set_random_seed(0)
    data = fashion_mnist_subset(why="fast")
    images = np.concatenate([data.x_train, data.x_test])
    labels = np.concatenate([data.y_train, data.y_test])
    if options.quick:
        images, labels = images[:400], labels[:400]
    model = camlab.gap_cnn(filters=(16, 32, 64, 128))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=1 if options.quick else 2, batch_size=64,
              verbose=0)

    build = timed(lambda: camlab.explore(model, images, labels, data.class_names))
    explorer = camlab.explore(model, images, labels, data.class_names)
    camlab.cam(model, images[0])  # compiled once before timing
    single = statistics.median(timed(lambda: camlab.cam(model, images[0])) for _ in range(30))

    rng = np.random.default_rng(0)
    kinds = rng.permutation(["image"] * (moves * 7 // 10) + ["class"] * (moves * 2 // 10)
                            + ["opacity"] * (moves - moves * 7 // 10 - moves * 2 // 10))
    times = {"image": [], "class": [], "opacity": []}
    computing = 0  # moves that had to compute a new block of maps
    for kind in kinds:
        control = explorer.controls[kind]
        if kind == "image":  # a jump to any image: the worst case for the cache
            value = int(rng.integers(len(images)))
        elif kind == "class":
            value = int(rng.integers(len(data.class_names)))
        else:
            value = float(rng.choice(np.arange(0.0, 1.01, 0.05)))
        before = explorer.blocks_computed
        times[kind].append(timed(lambda: setattr(control, "value", value)))
        computing += explorer.blocks_computed > before
    every = sum(times.values(), [])
    explorer.controls["follow"].value = True
    first = min(500, len(images) - 100)
    drag = [timed(lambda: setattr(explorer.controls["image"], "value", i))
            for i in range(first, first + 100)]

    # The cache alone, as tests and this script can use it: every block of predicted-class
    # maps computed once, then lookups.
    cache = MapCache(model, images)
    cache.prefetch("cam")
    for index in range(0, len(images), cache.block):
        cache.heatmap(index, cache.predicted(index), "cam")
    lookups = rng.integers(len(images), size=200)
    lookup = statistics.median(
        timed(lambda: cache.heatmap(int(i), cache.predicted(int(i)), "cam")) for i in lookups)

    median = statistics.median(every) * 1e3
    print(f"camlab {camlab.__version__} | explorer on {len(images)} Fashion-MNIST images 28x28x1 "
          f"| model gap_cnn (16-32-64-128) | keras {keras.__version__}")
    print(f"{'build (prefetch maps)':<34}{build * 1e3:9.1f} ms")
    print(f"{'one camlab.cam call, 1 image':<34}{single * 1e3:9.1f} ms   1.00x")
    for kind, values in times.items():
        print(f"{'redraw, ' + kind + ' slider (median)':<34}{statistics.median(values) * 1e3:9.1f} ms "
              f"{statistics.median(values) / single:6.2f}x   ({len(values)} moves)")
    print(f"{f'redraw, all {moves} moves: median':<34}{median:9.1f} ms {median / 1e3 / single:6.2f}x"
          f"   target < {TARGET_MS:.0f} ms: {'ok' if median < TARGET_MS else 'MISSED'}")
    print(f"{'                  90th percentile':<34}{np.percentile(every, 90) * 1e3:9.1f} ms")
    print(f"{'                  slowest':<34}{max(every) * 1e3:9.1f} ms   "
          f"({computing} of {moves} moves computed a new block of {explorer.block} maps)")
    print(f"{'image slider dragged 100 steps':<34}{statistics.median(drag) * 1e3:9.1f} ms "
          f"{statistics.median(drag) / single:6.2f}x   (median; consecutive images)")
    print(f"{'MapCache.heatmap, cached (median)':<34}{lookup * 1e3:9.3f} ms   "
          f"(no widget, no PNG; {cache.blocks_computed} blocks computed)")
    # Switching method computes the current block of images once; moves inside it are cached.
    explorer.controls["follow"].value = True
    listed = [name for _, name in explorer.controls["method"].options]
    for name in (list(camlab.METHODS)[:3] if options.quick else camlab.METHODS):
        if name not in listed:
            print(f"{name:<34}not available: {explorer.unavailable.get(name, '?')[:60]}")
            continue
        if name == explorer.controls["method"].value:
            continue
        switch = timed(lambda: setattr(explorer.controls["method"], "value", name))
        start = explorer.controls["image"].value // explorer.block * explorer.block
        inside = rng.integers(start, min(start + explorer.block, len(images)), size=20)
        after = statistics.median(
            timed(lambda: setattr(explorer.controls["image"], "value", int(i))) for i in inside)
        print(f"{'switch to ' + name:<34}{switch * 1e3:9.1f} ms   then image moves in that "
              f"block: {after * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
