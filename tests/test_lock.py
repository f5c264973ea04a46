"""requirements/test.lock, the exact versions `make test` installs, agrees with pyproject.toml.

`make lock` makes it from pyproject.toml's extras; this test fails when a range in
pyproject.toml was changed without refreshing the lock (run `make lock`).
"""

import re
import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: a plain reader is enough for the lists this test needs
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
LOCKED_EXTRAS = ("tf", "offline", "lab", "test")  # the extras the Makefile's lock command names


def declared_requirements():
    text = (ROOT / "pyproject.toml").read_text()
    if tomllib is not None:
        project = tomllib.loads(text)["project"]
        lists = [project["dependencies"]] + [project["optional-dependencies"][e] for e in LOCKED_EXTRAS]
        return [Requirement(r) for group in lists for r in group]
    names = "dependencies|" + "|".join(LOCKED_EXTRAS)
    blocks = re.findall(rf'^(?:{names}) = \[(.*?)\]\s*(?:#[^\n]*)?$', text, re.M | re.S)
    return [Requirement(r) for block in blocks for r in re.findall(r'"([^"]+)"', block)]


def locked_pins():
    """{name: [(version, marker or None)]} from the lock's `name==version ; marker` lines."""
    pins = {}
    for line in (ROOT / "requirements" / "test.lock").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)\s*(?:;\s*(.+))?$", line)
        if found:
            name, version, marker = found.groups()
            pins.setdefault(canonicalize_name(name), []).append(
                (Version(version), Marker(marker) if marker else None))
    return pins


def test_the_lock_pins_every_line_exactly():
    lines = [line for line in (ROOT / "requirements" / "test.lock").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines and all("==" in line for line in lines), [l for l in lines if "==" not in l][:5]


def test_every_declared_requirement_is_locked_within_its_range():
    pins = locked_pins()
    assert len(pins) > 50  # TensorFlow, JupyterLab and the test tools, with what they need
    for requirement in declared_requirements():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # e.g. `tensorflow` where `tensorflow-cpu` is the one for this platform
        here = [version for version, marker in pins.get(canonicalize_name(requirement.name), [])
                if marker is None or marker.evaluate()]
        assert here, f"{requirement.name} is not in requirements/test.lock for this platform: run `make lock`"
        for version in here:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements/test.lock pins {requirement.name}=={version}, outside "
                f"pyproject.toml's {requirement}: run `make lock`")
