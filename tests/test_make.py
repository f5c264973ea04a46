"""The README's two commands: `make lab` serves the course (as root too), `make test` is CI's.

`make lab` adds --allow-root exactly when the user id is 0 (Docker images, cloud notebook
VMs and these machines run as root, where JupyterLab otherwise exits at once), and a real
`make lab` answers on a free port.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent  # the environment running the tests


def make_dry_run(*args):
    return subprocess.run(["make", "-n", "--no-print-directory", *args, f"VENV={VENV}"],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout


def lab_command(user_id):
    lines = [line for line in make_dry_run("lab", f"LAB_USER_ID={user_id}").splitlines()
             if "jupyter lab" in line]
    assert len(lines) == 1, lines
    return lines[0].split()


def test_make_lab_allows_root_only_for_root():
    assert "--allow-root" in lab_command(0)
    assert "--allow-root" not in lab_command(1000)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (VENV / ".camlab-installed").exists() or not (VENV / "bin" / "jupyter-lab").exists(),
                    reason="not the environment `make setup` installs (with JupyterLab)")
def test_make_lab_serves_the_course_as_whoever_runs_it(tmp_path):
    port, token = free_port(), "camlab-test-token"
    args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
            f"--ServerApp.port_retries=0 --IdentityProvider.token={token}")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path)}
    server = subprocess.Popen(["make", "--no-print-directory", "lab", f"VENV={VENV}", f"LAB_ARGS={args}"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}",
                                            timeout=2) as reply:
                    status = json.load(reply)
                    break
            except OSError:
                time.sleep(0.5)
        if status is None:
            os.killpg(server.pid, signal.SIGTERM)
            output = server.communicate(timeout=30)[0].decode(errors="replace")
            pytest.fail(f"make lab did not answer on port {port} (user id {os.getuid()}):\n{output[-3000:]}")
        assert "started" in status  # Jupyter Server's own status reply
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/01_cam_mnist.ipynb"
                                    f"?content=0&token={token}", timeout=10) as reply:
            assert json.load(reply)["name"] == "01_cam_mnist.ipynb"  # it serves notebooks/
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
