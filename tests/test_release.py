"""tools/release_check.py (`make release-check`): a release is a commit that carries the tag its
notebooks install, and every notebook pins camlab.__version__."""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("release_check", ROOT / "tools" / "release_check.py")
release_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(release_check)


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=camlab", "-c", "user.email=camlab@example.org",
                    *args], check=True, capture_output=True)


def notebook(pin):
    setup = f'CAMLAB_REPOSITORY = "https://github.com/camlab-course/camlab"\nCAMLAB_VERSION = "{pin}"\n'
    return json.dumps({"cells": [{"cell_type": "markdown", "source": ["# a notebook"]},
                                 {"cell_type": "code", "source": [setup]}]})


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "camlab").mkdir()
    (tmp_path / "camlab" / "__init__.py").write_text('__version__ = "1.2.3"\n')
    for folder in ("notebooks", "student"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "01_x.ipynb").write_text(notebook("1.2.3"))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "release")
    return tmp_path


def test_a_tagged_commit_whose_notebooks_pin_its_version_passes(repo, capsys):
    git(repo, "tag", "v1.2.3")
    assert release_check.main(["--repo", str(repo)]) == 0
    assert "v1.2.3 is this commit" in capsys.readouterr().out


def test_an_untagged_commit_fails_and_says_how_to_tag(repo, capsys):
    assert release_check.main(["--repo", str(repo)]) == 1
    assert "git tag v1.2.3" in capsys.readouterr().out
    git(repo, "tag", "v1.2.3")
    (repo / "later.txt").write_text("a commit after the release")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "later")
    assert release_check.main(["--repo", str(repo)]) == 1  # the tag is on the commit before


def test_a_notebook_pinning_another_version_fails(repo, capsys):
    (repo / "student" / "01_x.ipynb").write_text(notebook("1.2.2"))
    git(repo, "commit", "-q", "-am", "stale student edition")
    git(repo, "tag", "v1.2.3")
    assert release_check.main(["--repo", str(repo)]) == 1
    assert "student/01_x.ipynb pins CAMLAB_VERSION '1.2.2'" in capsys.readouterr().out


def test_this_repository_pins_one_version_everywhere():
    pins = release_check.pinned_versions(ROOT)
    assert len(pins) >= 10 and set(pins.values()) == {release_check.version(ROOT)}
