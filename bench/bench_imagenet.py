"""EfficientNet-Lite0 with real ImageNet weights (notebook 03): what it costs, in one run.

Prints the time to read the weights file, to build the Keras classifier with them, and the
time of CAM and Grad-CAM on the 26 shipped pet photos plus scikit-image's cat, each as a
ratio to model.predict's time on the same photos with the same batch size (medians of a
few repeats, after one warm-up call). Ratios taken in one run are what to compare:
absolute times on shared machines vary by 2x from run to run.

    python bench/bench_imagenet.py
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import camlab  # noqa: E402
from camlab import efficientnet_lite  # noqa: E402
from camlab.photos import pets_offline, read_photo  # noqa: E402
from bench_methods import median_time  # noqa: E402 (bench/ is the script's folder)


def warm_median_time(function, repeats=3):
    function()  # warm-up: tracing, first allocations
    return median_time(function, repeats)


def main():
    start = time.perf_counter()
    state = efficientnet_lite.read_torch_state_dict(efficientnet_lite.weights_path())
    read = time.perf_counter() - start
    start = time.perf_counter()
    model = camlab.imagenet_classifier("efficientnet_lite0")
    build = time.perf_counter() - start
    files, _, _ = pets_offline()
    paths = [str(p) for split in ("train", "validation") for p in files[split]]
    photos = np.stack([read_photo(path).numpy() for path in paths])
    inputs = camlab.preprocess(photos, "efficientnet_lite0")
    batch = 32
    predict = warm_median_time(lambda: model.predict(inputs, batch_size=batch, verbose=0))
    print(f"weights file: {len(state)} tensors read (SHA-256 checked) in {read:.2f} s")
    print(f"imagenet_classifier('efficientnet_lite0'), built with its weights: {build:.2f} s")
    print(f"model.predict, {len(photos)} photos at 224x224: {predict:.2f} s")
    for method in ("cam", "gradcam"):
        seconds = warm_median_time(lambda: camlab.explain(model, inputs, method, batch_size=batch))
        print(f"{method:>8}: {seconds:.2f} s, {seconds / predict:.2f}x model.predict")


if __name__ == "__main__":
    main()
