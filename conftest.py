"""The whole test run (`make test`: tests/, notebooks/, student/, full_mode/), before anything starts.

One training run per test run: tests/fit_cache.py, in every kernel the run starts.
"""

import os
import pathlib
import shutil
import tempfile

FIT_CACHE_STARTUP = """# Written by conftest.py for one test run: see tests/fit_cache.py.
import importlib.util
_spec = importlib.util.spec_from_file_location("camlab_test_fit_cache", {path!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
_module.install(get_ipython())
del importlib, _spec, _module
"""


def pytest_configure(config):
    """Before xdist starts its workers: an IPython profile whose startup file installs the fit
    cache, and the cache's folder; the workers, and every kernel they start (nbval, papermill,
    JupyterLab's), inherit both through the environment. CAMLAB_TEST_NO_FIT_CACHE=1: train every time."""
    if hasattr(config, "workerinput") or os.environ.get("CAMLAB_TEST_NO_FIT_CACHE") == "1":
        return
    root = pathlib.Path(tempfile.mkdtemp(prefix="camlab-test-run-"))
    config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    module = pathlib.Path(__file__).parent / "tests" / "fit_cache.py"
    (startup / "00-camlab-fit-cache.py").write_text(FIT_CACHE_STARTUP.format(path=str(module)))
    (root / "fits").mkdir()
    os.environ["IPYTHONDIR"] = str(root / "ipython")
    os.environ["CAMLAB_TEST_FIT_CACHE"] = str(root / "fits")


# -- the order: longest first, so that at the end neither core waits for one long file.
# Measured on the 2-core machine (seconds of one file, December 2026): notebook 05 in full mode
# is the longest by far, then the browser test; the later notebooks are the longer ones. The
# student edition comes after the instructor edition: by then its training runs are saved.
FIRST = ("full_mode/05", "tests/test_browser.py", "full_mode/04", "full_mode/01", "full_mode/03",
         "full_mode/02", "full_mode/06", "notebooks/05", "notebooks/04", "notebooks/03", "notebooks/01",
         "notebooks/02", "notebooks/06", "student/05", "student/04", "student/03", "student/01",
         "student/02", "student/06")


def pytest_collection_modifyitems(items):
    """Files in the order of FIRST, then the rest as collected; the cells of a notebook keep
    their order (a stable sort by file). xdist's `--dist loadfile` hands files out in this order."""
    def rank(item):
        path = item.nodeid.split("::")[0]
        return next((i for i, prefix in enumerate(FIRST) if path.startswith(prefix)), len(FIRST))

    items.sort(key=rank)
