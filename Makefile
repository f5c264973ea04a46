# Two commands for a fresh machine (Python 3.10+ with venv, and make):
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up and run every test: unit tests, then every notebook (nbval)
# Everything lives in a project-local virtual environment, .venv/.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.camlab-installed

.PHONY: setup lab test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[tf,offline,lab,test]"
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab notebooks/

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/bench_methods.py
	$(BIN)/python bench/bench_widget.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
