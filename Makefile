# Two commands for a fresh machine (Python 3.10+ with venv, and make):
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up and run every test: unit tests, then every notebook (nbval)
#               in fast mode, then every notebook in full mode offline
# Everything lives in a project-local virtual environment, .venv/.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.camlab-installed

.PHONY: setup install-env lock lab test matrix oldest-check colab-check newest-check bench clean student release-check

# The test environment is installed from requirements/test.lock (exact versions, made from
# pyproject.toml's extras by `make lock`), so that a fresh machine gets what was tested.
# uv installs it (pip would take minutes longer); `pip install camlab-course` users get the ranges.
LOCK   := requirements/test.lock
UV_VERSION ?= 0.13.9
UV     := $(BIN)/uv

$(STAMP): pyproject.toml $(LOCK)
	@tools/timed setup $(MAKE) --no-print-directory install-env

# --compile-bytecode: uv leaves the .pyc files to the first import, and where Python may not
# write them (PYTHONDONTWRITEBYTECODE, as on these machines) every process then compiles
# TensorFlow from source again: measured on 2 cores, `import tensorflow, keras` took 27 s of
# CPU in every notebook kernel and test process, 11 s once compiled at install.
install-env:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Refresh the lock after changing a dependency in pyproject.toml, and before a release (to test
# on the newest versions): one universal lock for Python 3.10 and newer on every platform.
lock: setup
	$(UV) pip compile pyproject.toml --extra tf --extra offline --extra lab --extra test \
		--universal --python-version 3.10 --no-header --quiet -o $(LOCK)
	$(MAKE) --no-print-directory install-env

# JupyterLab refuses to start as root unless told --allow-root: add it for root (Docker images,
# cloud notebook VMs), and nothing otherwise. LAB_ARGS passes more (e.g. --no-browser --port=8890).
LAB_USER_ID ?= $(shell id -u)
LAB_ARGS    ?=
lab: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(LAB_USER_ID)),--allow-root) $(LAB_ARGS) notebooks/

# The notebooks CI runs in fast mode (notebooks/, student/) and in full mode (full_mode/: links
# to notebooks/, run with the learner's settings, offline; see full_mode/conftest.py).
NOTEBOOKS := full_mode notebooks student
# Test files run on both cores: each file (a notebook's cells, in order, in one kernel) on one
# worker, in the order conftest.py gives (longest first; xdist would otherwise reorder the files
# by their number of tests). One TensorFlow thread per worker: two workers with
# TensorFlow's default pools (one thread per core each) spin against each other; measured on
# the 2-core machine, the ten fast-mode notebook runs took 941 s of CPU time instead of 1,286 s.
PARALLEL ?= -n 2 --dist loadfile --no-loadscope-reorder
THREADS  := TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1

# Lint, then one pytest run on both cores: the unit tests, every notebook in fast mode (the
# instructor and the student edition) and every notebook in full mode, offline (the shipped
# stand-in data, no downloads), where a missed camlab.expect fails as under CI. Each stage
# prints its duration; pytest prints the slowest files.
test: setup
	@tools/timed lint $(BIN)/ruff check .
	@tools/timed "tests, notebooks in fast and full mode" env CAMLAB_FAST=1 $(THREADS) $(BIN)/python -m pytest $(PARALLEL) $(NOTEBOOKS) tests

# Before publishing a release: the tag v<camlab.__version__> is on this commit and every notebook
# pins that version (tools/release_check.py; tests/test_release.py tests it).
release-check:
	$(PYTHON) tools/release_check.py

# The student edition: notebooks/ with every solution cleared, into student/ (commit it).
student: setup
	$(BIN)/python tools/build_student.py

# The version matrix, run before each release (not in CI: about 20 minutes): the unit tests and
# every notebook in fast mode, camlab installed as a wheel (not editable) in three fresh
# environments. The browser test is left out: it drives JupyterLab, which Colab does not use.
# CAMLAB_ALL_APPLICATIONS=1: tests/test_recipe.py tries 12 keras.applications classifiers, not 2.
#   oldest-check  the oldest versions pyproject.toml claims: Python 3.10 and the floor of every
#                 runtime dependency (keras, numpy, tensorflow-cpu, ...), with uv's lowest-direct
#   colab-check   Colab's published versions (colab-constraints.txt) with Python 3.13
#   newest-check  the newest versions a resolver picks today, without the lock
# README.md ("Versions tested") records each leg's versions and result.
MATRIX_VERSIONS := ^(tensorflow([-_]cpu)?|keras|numpy|scipy|matplotlib|ipywidgets|pillow|mlxtend|scikit-image)==
OLDEST_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python) python3.10)
COLAB_PYTHON  ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) python3.13)
NEWEST_PYTHON ?= $(PYTHON)

# $(call matrix_leg,VENV,PYTHON,UV-INSTALL-OPTIONS)
define matrix_leg
	rm -rf $(1)
	$(2) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(1)/bin/uv pip install --quiet --compile-bytecode --python $(1)/bin/python $(3) ".[tf,offline,test]"
	@echo "== $(1): $$($(1)/bin/python --version)" $$($(1)/bin/uv pip freeze --python $(1)/bin/python | grep -iE "$(MATRIX_VERSIONS)")
	CAMLAB_FAST=1 CAMLAB_ALL_APPLICATIONS=1 $(1)/bin/pytest -p no:cacheprovider $(PARALLEL) tests notebooks --ignore=tests/test_browser.py
endef

matrix: oldest-check colab-check newest-check

oldest-check: setup
	mkdir -p build
	$(UV) pip compile pyproject.toml --extra tf --extra offline --resolution lowest-direct \
		--python-version 3.10 --python-platform x86_64-manylinux_2_28 --no-header --quiet -o build/floors.txt
	$(call matrix_leg,.venv-oldest,$(OLDEST_PYTHON),-c build/floors.txt)

colab-check:
	$(call matrix_leg,.venv-colab,$(COLAB_PYTHON),-c colab-constraints.txt)

newest-check:
	$(call matrix_leg,.venv-newest,$(NEWEST_PYTHON),--refresh)

bench: setup
	$(BIN)/python bench/bench_methods.py
	$(BIN)/python bench/bench_widget.py
	$(BIN)/python bench/bench_imagenet.py

clean:
	rm -rf $(VENV) .venv-oldest .venv-colab .venv-newest .pytest_cache build *.egg-info
