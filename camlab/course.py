"""Course settings every notebook shares: fast mode and loud notices.

Fast mode shrinks data and epochs so that the whole notebook suite runs in CI
in minutes. It is on when the environment variable ``CAMLAB_FAST`` is set to
1/true/yes, or when ``CI=true`` (as CI services set it). ``CAMLAB_FAST=0``
turns it off even under CI. Learners run the full mode.
"""

from __future__ import annotations

import os
import sys
import textwrap

_TRUE = ("1", "true", "yes", "on")


def fast_mode() -> bool:
    """True when notebooks should run their quick version (see module docstring)."""
    flag = os.environ.get("CAMLAB_FAST", "").strip().lower()
    if flag:
        return flag in _TRUE
    return os.environ.get("CI", "").strip().lower() in _TRUE


def notice(title: str, body: str) -> None:
    """Print a boxed notice that cannot be missed in a notebook's output."""
    width = 78
    rule = "!" * width
    lines = [rule, f"!! {title}"]
    for paragraph in body.strip().split("\n"):
        lines += ["!! " + line for line in textwrap.wrap(paragraph, width - 3)] or ["!!"]
    lines.append(rule)
    print("\n".join(lines), file=sys.stdout, flush=True)
