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
