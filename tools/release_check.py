"""Is this commit a release Colab can install? (`make release-check`, before publishing)

Checks, in the repository given (default: this one):
1. every notebook of both editions pins `CAMLAB_VERSION = "<camlab.__version__>"`;
2. the tag `v<version>` points at the checked-out commit, so that the notebooks' setup cells
   (`pip install "camlab-course @ git+<repository>@v<version>"`) and the Colab badges install and
   open exactly this code.
Prints what it found; exits 1, saying what to do, when a check fails.

    python tools/release_check.py [--repo DIR]
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path


def version(repo: Path) -> str:
    found = re.search(r'^__version__ = "([^"]+)"', (repo / "camlab" / "__init__.py").read_text(), re.M)
    return found.group(1)


def pinned_versions(repo: Path) -> dict:
    """notebook path -> the CAMLAB_VERSION its first code cell pins (None: none)."""
    pins = {}
    for folder in ("notebooks", "student"):
        for path in sorted((repo / folder).glob("*.ipynb")):
            cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
            first = "".join(cells[0]["source"]) if cells else ""
            found = re.search(r'^CAMLAB_VERSION = "([^"]+)"', first, re.M)
            pins[f"{folder}/{path.name}"] = found.group(1) if found else None
    return pins


def tags_at_head(repo: Path) -> list:
    done = subprocess.run(["git", "-C", str(repo), "tag", "--points-at", "HEAD"],
                          capture_output=True, text=True, check=True)
    return done.stdout.split()


def problems(repo: Path) -> list:
    release = version(repo)
    found = [f"{path} pins CAMLAB_VERSION {pin!r}, camlab.__version__ is {release!r}: set it in "
             "notebooks/ and run `make student`"
             for path, pin in pinned_versions(repo).items() if pin != release]
    if f"v{release}" not in tags_at_head(repo):
        found.append(f"the tag v{release} is not on this commit: the notebooks would install "
                     f"other code. Commit the release, then `git tag v{release}` and "
                     f"`git push origin v{release}`")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    release = version(args.repo)
    found = problems(args.repo)
    for problem in found:
        print(f"release check: {problem}")
    if found:
        return 1
    print(f"release check: v{release} is this commit, and every notebook pins it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
