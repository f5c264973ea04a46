# Two commands for a fresh machine (Python 3.10+ with venv, and make):
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up and run every test: unit tests, then every notebook (nbval)
#               in fast mode, then every notebook in full mode offline
# Everything lives in a project-local virtual environment, .venv/.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.camlab-installed

.PHONY: setup lab test colab-check bench clean student

# The test environment is installed from requirements/test.lock (exact versions, made from
# pyproject.toml's extras by `make lock`), so that a fresh machine gets what was tested.
# uv installs it (pip would take minutes longer); `pip install camlab-course` users get the ranges.
LOCK   := requirements/test.lock
UV_VERSION ?= 0.13.9
UV     := $(BIN)/uv

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) pip install --quiet --python $(BIN)/python -r $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab notebooks/

# The notebooks CI runs, in fast mode and then in full mode: add a folder or a file here.
NOTEBOOKS := notebooks

# Fast mode: unit tests and every notebook. Then every notebook in full mode, offline (the
# shipped stand-in data, no downloads), where a missed camlab.expect fails as under CI.
test: setup
	CAMLAB_FAST=1 $(BIN)/python -m pytest tests $(NOTEBOOKS) student  # student/: fast mode only
	CI=true CAMLAB_FAST=0 CAMLAB_OFFLINE=1 $(BIN)/python -m pytest $(NOTEBOOKS)

# The student edition: notebooks/ with every solution cleared, into student/ (commit it).
student: setup
	$(BIN)/python tools/build_student.py

# Release check: camlab installed (not editable) against Colab's published versions
# (colab-constraints.txt) with Python 3.13 as on Colab, then the unit tests and every notebook
# in fast mode. About 7 minutes on 2 cores plus the downloads: not part of CI's budget.
COLAB_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) python3.13)
COLAB_VENV   ?= .venv-colab

colab-check:
	rm -rf $(COLAB_VENV)
	$(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-c colab-constraints.txt ".[tf,offline,test]"
	$(COLAB_VENV)/bin/python -m pip freeze | grep -iE "^(tensorflow[-_]cpu|keras|numpy|ipywidgets)=="
	CAMLAB_FAST=1 $(COLAB_VENV)/bin/pytest -p no:cacheprovider tests $(NOTEBOOKS) \
		--ignore=tests/test_browser.py  # it drives JupyterLab, which Colab does not use

bench: setup
	$(BIN)/python bench/bench_methods.py
	$(BIN)/python bench/bench_widget.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
