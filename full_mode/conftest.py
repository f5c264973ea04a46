"""The notebooks again, in full mode, offline, in the same pytest run as everything else.

full_mode/NN_topic.ipynb is a link to notebooks/NN_topic.ipynb (tests/test_notebooks.py
checks that every notebook has one). While nbval starts the kernel of one of these files,
in the setup of its first cell, the environment says full mode (the learner's settings),
offline (the shipped stand-in data, no downloads) and under test (a missed camlab.expect
fails); the kernel keeps that environment, and every other file runs as the command line
says (fast mode). One pytest run on both cores, instead of a fast stage and then a full
stage: no core waits for the other stage's slowest notebook.
"""

import os

import pytest

FULL_MODE = {"CI": "true", "CAMLAB_FAST": "0", "CAMLAB_OFFLINE": "1"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    saved = {name: os.environ.get(name) for name in FULL_MODE}
    os.environ.update(FULL_MODE)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
