"""The explorer in JupyterLab, in a real browser: what a learner sees.

Starts JupyterLab from this environment on 127.0.0.1 (with a token), opens a
copy of notebook 02 in fast mode, runs every cell through the Run menu, waits
for the explorer, then moves each control: the image slider (arrow key), the
number box (type an index, Enter), the class slider, the method menu and the
opacity slider. After each move it checks that the pictures in the page
changed as they should and are byte for byte the PNGs the kernel holds (read
from the kernel with a second client), takes a screenshot of the explorer
before and after, and fails on any error in the browser console. It times
key press -> new picture loaded in the page (median of 20 image moves; goal
<= 30 ms on 2 cores) and prints it beside the kernel-side redraw time. Last,
it saves the notebook, shuts the kernel down and reopens the notebook: the
explorer's still picture and its "re-run this cell" note must show.

Needs Chromium and Playwright (Playwright's own browser download needs the
internet, so Debian's Chromium is used):

    sudo apt-get install -y --no-install-recommends chromium fonts-dejavu-core
    .venv/bin/pip install playwright        # the `test` extra has it
    .venv/bin/pytest -s tests/test_browser.py

``CAMLAB_CHROMIUM`` names another Chromium binary. Screenshots go to
``CAMLAB_ARTEFACTS`` (default ``tests/artefacts/``, ignored by git). Without
Chromium or Playwright the test is skipped and says why.
"""

import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = "02_cam_fashion_mnist.ipynb"  # the cheapest notebook with the explorer
BOX_NOTEBOOK = "03_cam_cats_vs_dogs.ipynb"  # the box-threshold slider (camlab.box_slider)
STUDENT_NOTEBOOK = "student_" + NOTEBOOK  # the student edition of the same notebook (student/)
CHROMIUM = os.environ.get("CAMLAB_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = pathlib.Path(os.environ.get("CAMLAB_ARTEFACTS", ROOT / "tests" / "artefacts"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RUN_ALL_SECONDS = 240  # notebook 02 in fast mode takes about 40 s on 2 cores
REDRAW_GOAL_MS = 30.0  # key press -> new picture, median, on 2 cores
REDRAW_LIMIT_MS = 150.0  # fails beyond this: a redraw that slow is a regression, not noise
PRESSES = 20
PANELS = ("image", "map", "overlay")

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: .venv/bin/pip install playwright")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y --no-install-recommends chromium "
                "fonts-dejavu-core (or set CAMLAB_CHROMIUM)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_settings(folder: pathlib.Path):
    """JupyterLab user settings: no news or update checks (no internet, no pop-up)."""
    notification = folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


class Lab:
    """A JupyterLab server in its own folder and process group."""

    def __init__(self, folder: pathlib.Path):
        self.folder, self.token, self.port = folder, secrets.token_hex(16), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for name in (NOTEBOOK, BOX_NOTEBOOK):  # copies: the saved outputs stay out of the repository
            shutil.copy(ROOT / "notebooks" / name, folder / name)
        if (ROOT / "student" / NOTEBOOK).exists():
            shutil.copy(ROOT / "student" / NOTEBOOK, folder / STUDENT_NOTEBOOK)
        write_settings(folder / "settings")
        env = dict(os.environ, CAMLAB_FAST="1", JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
                   JUPYTERLAB_SETTINGS_DIR=str(folder / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"),
                   TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        env.pop("MPLBACKEND", None)  # the notebook's figures use the inline backend
        self.log = open(folder / "jupyterlab.log", "w")
        self.process = subprocess.Popen(
            [str(pathlib.Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={folder}",
             "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
             "--ServerApp.allow_root=True"],
            cwd=folder, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.api("status")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"JupyterLab did not start; see {folder / 'jupyterlab.log'}")
                time.sleep(0.5)

    def api(self, path, method="GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernel_client(self):
        """A second client of the notebook's kernel (the page is the first)."""
        from jupyter_client import BlockingKernelClient

        (session,) = self.api("sessions")
        client = BlockingKernelClient(
            connection_file=str(self.folder / "runtime" / f"kernel-{session['kernel']['id']}.json"))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=30)
        return client

    def shut_down_kernels(self):
        for kernel in self.api("kernels"):
            self.api(f"kernels/{kernel['id']}", method="DELETE")

    def stop(self):
        """Kernels first, then the server; whatever is left of its process group last."""
        try:
            self.shut_down_kernels()
        except OSError:
            pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # a kernel that outlived its server
        except ProcessLookupError:
            pass
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def kernel_json(client, code) -> dict:
    """Run ``code`` (which prints one JSON line) in the kernel; return that JSON."""
    printed = []

    def keep(message):
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            printed.append("\n".join(message["content"]["traceback"]))

    reply = client.execute_interactive(code, output_hook=keep, timeout=60)
    assert reply["content"]["status"] == "ok", "".join(printed)
    return json.loads("".join(printed))


KERNEL_VIEW = """
import hashlib as _h, json as _j
print(_j.dumps(dict({k: _h.sha256(p.value).hexdigest() for k, p in explorer.panels.items()},
                    index=explorer.shown["index"], class_index=explorer.shown["class_index"],
                    method=explorer.shown["method"], opacity=explorer.shown["opacity"])))
"""

PAGE_VIEW = """async (panels) => {
    const out = {};
    for (const name of panels) {
        const img = document.querySelector(`.camlab-explorer img.camlab-panel-${name}`);
        const bytes = await (await fetch(img.src)).arrayBuffer();
        const digest = await crypto.subtle.digest("SHA-256", bytes);
        out[name] = Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, "0")).join("");
    }
    return out;
}"""

# Page-side timing of each key press (performance.now(), ms): the key, the first websocket frame
# sent after it (the new value leaves), the first frame back, the overlay's src set, its load.
WEBSOCKET_CLOCK = """(() => {
    const Native = window.WebSocket;
    window.camlabPress = null;
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener("message", () => {
                const press = window.camlabPress;
                if (press && press.sent && !press.reply) press.reply = performance.now();
            });
        }
        send(data) {
            const press = window.camlabPress;
            if (press && !press.sent) press.sent = performance.now();
            return super.send(data);
        }
    };
})();"""

WATCH = """() => {
    const img = document.querySelector(".camlab-explorer img.camlab-panel-overlay");
    window.camlabPresses = [];
    document.addEventListener("keydown", () => {
        window.camlabPress = {key: performance.now()};
    }, true);
    new MutationObserver(() => {
        const press = window.camlabPress;
        if (press && !press.src) press.src = performance.now();
    }).observe(img, {attributes: true, attributeFilter: ["src"]});
    img.addEventListener("load", () => {
        const press = window.camlabPress;
        if (press && press.src && !press.load) {
            press.load = performance.now();
            window.camlabPresses.push(press);
        }
    });
}"""


class Page:
    """The notebook page, with its console errors and screenshots."""

    def __init__(self, page, lab, notebook):
        self.page, self.lab, self.errors, self.shots = page, lab, [], []
        self.notebook = notebook
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def open(self):
        self.page.goto(f"{self.lab.url}/lab/tree/{self.notebook}?reset&token={self.lab.token}")
        self.page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
            timeout=60_000)

    def menu(self, top, item):
        """Click a menu bar entry, then one of its items, as a learner does."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
        self.page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True).first.click()

    def run_all(self):
        self.menu("Run", "Run All Cells")
        self.page.wait_for_timeout(1000)
        self.page.wait_for_function(
            """() => {
                const panel = window.jupyterapp.shell.currentWidget;
                const kernel = panel.sessionContext.session.kernel;
                const cells = panel.content.widgets.filter(c => c.model.type === "code");
                const errors = cells.some(
                    c => Array.from(c.model.outputs.toJSON()).some(o => o.output_type === "error"));
                const done = cells.every(c => c.model.executionCount !== null);
                return errors || (kernel.status === "idle" && done);
            }""", timeout=RUN_ALL_SECONDS * 1000, polling=500)
        failed = self.page.evaluate(
            """() => window.jupyterapp.shell.currentWidget.content.widgets
                 .flatMap(c => c.model.type === "code" ? c.model.outputs.toJSON() : [])
                 .filter(o => o.output_type === "error").map(o => o.ename + ": " + o.evalue)""")
        assert not failed, f"a cell failed in the browser: {failed}"

    def explorer(self):
        explorer = self.page.locator(".camlab-explorer")
        explorer.wait_for(timeout=30_000)
        explorer.scroll_into_view_if_needed()
        return explorer

    def pictures(self) -> dict:
        return self.page.evaluate(PAGE_VIEW, list(PANELS))

    def shot(self, name, element=None):
        path = ARTEFACTS / f"{self.notebook.split('_cam')[0]}_{len(self.shots):02d}_{name}.png"
        (element or self.explorer()).screenshot(path=str(path))
        self.shots.append(path)


def wait_for_change(page, before, panel, timeout=10.0) -> dict:
    """The pictures once ``panel`` differs from ``before`` (and the page has settled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = page.pictures()
        if now[panel] != before[panel]:
            page.page.wait_for_timeout(300)  # the other panels of the same redraw
            return page.pictures()
        page.page.wait_for_timeout(20)
    raise AssertionError(f"the {panel} picture did not change within {timeout} s")


def handle(explorer, control):
    """The keyboard handle of a slider (noUiSlider in ipywidgets 8, jQuery UI in 7)."""
    return explorer.locator(f".camlab-{control} .noUi-handle, .camlab-{control} .ui-slider-handle").first


def test_the_explorer_in_jupyterlab(lab, browser):
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WEBSOCKET_CLOCK)
    page = Page(context.new_page(), lab, NOTEBOOK)
    started = time.monotonic()
    page.open()
    page.run_all()
    ran = time.monotonic() - started
    client = lab.kernel_client()
    try:
        explorer = page.explorer()
        page.page.wait_for_timeout(500)
        # While the widget lives, its still picture is hidden.
        assert page.page.locator(".camlab-still").count() == 1
        assert not page.page.locator(".camlab-still").is_visible()
        for name in ("image", "class"):
            box = explorer.locator(f".camlab-{name}").bounding_box()
            assert box["width"] >= 400, f"the {name} slider is {box['width']} px wide"

        def check_move(name, move, changes, same=()):
            before = page.pictures()
            assert before == {k: v for k, v in kernel_json(client, KERNEL_VIEW).items() if k in PANELS}
            page.shot(f"{name}_before")
            move()
            after = wait_for_change(page, before, changes[0])
            kernel = kernel_json(client, KERNEL_VIEW)
            assert after == {k: kernel[k] for k in PANELS}, f"{name}: the page and the kernel differ"
            for panel in changes:
                assert after[panel] != before[panel], f"{name}: the {panel} picture did not change"
            for panel in same:
                assert after[panel] == before[panel], f"{name}: the {panel} picture changed"
            page.shot(f"{name}_after")
            return kernel

        start = kernel_json(client, KERNEL_VIEW)
        moved = check_move("image_slider", lambda: handle(explorer, "image").press("ArrowRight"),
                           ["image", "overlay"])
        assert moved["index"] == start["index"] + 1
        number = explorer.locator(".camlab-number input")
        moved = check_move("number_box", lambda: (number.fill("123"), number.press("Enter")),
                           ["image", "overlay"])
        assert moved["index"] == 123
        assert "123" in explorer.locator(".camlab-image").inner_text()  # the slider followed
        moved = check_move("class_slider", lambda: handle(explorer, "class").press("ArrowRight"),
                           ["map", "overlay"], same=["image"])
        assert moved["class_index"] != start["class_index"] or moved["index"] != start["index"]
        moved = check_move("method_menu",
                           lambda: explorer.locator(".camlab-method select").select_option(label="Grad-CAM"),
                           ["map"], same=["image"])
        assert moved["method"] == "gradcam"
        moved = check_move("opacity_slider", lambda: handle(explorer, "opacity").press("ArrowRight"),
                           ["overlay"], same=["image", "map"])
        assert moved["opacity"] == pytest.approx(0.55)

        # Key press -> new picture in the page, then the same moves timed in the kernel.
        page.page.evaluate(WATCH)
        slider = handle(explorer, "image")
        for _ in range(PRESSES):
            before = page.pictures()["overlay"]
            slider.press("ArrowRight")
            page.page.wait_for_function(f"() => window.camlabPresses.length >= {_ + 1}", timeout=10_000)
            assert page.pictures()["overlay"] != before
        presses = page.page.evaluate("() => window.camlabPresses")
        browser_ms, sent_ms, reply_ms, set_ms = (
            statistics.median(p[end] - p[start] for p in presses)
            for start, end in (("key", "load"), ("key", "sent"), ("sent", "reply"), ("key", "src")))
        kernel_ms = kernel_json(client, """
import json as _j, statistics as _s, time as _t
_times = []
for _i in range(explorer.shown["index"] + 1, explorer.shown["index"] + 21):
    _start = _t.perf_counter(); explorer.controls["image"].value = _i
    _times.append(_t.perf_counter() - _start)
print(_j.dumps(_s.median(_times) * 1e3))
""")
        print(f"\nexplorer in JupyterLab (Chromium, ipywidgets 8): key press -> new picture "
              f"loaded, median of {PRESSES}: {browser_ms:.1f} ms (goal <= {REDRAW_GOAL_MS:.0f} ms: "
              f"{'ok' if browser_ms <= REDRAW_GOAL_MS else 'MISSED'}; the value leaves the page "
              f"after {sent_ms:.1f} ms, the first frame comes back {reply_ms:.1f} ms later, the "
              f"overlay's src is set at {set_ms:.1f} ms); the kernel's redraw of the same moves: "
              f"{kernel_ms:.1f} ms "
              f"(median of 20); run all cells: {ran:.0f} s; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        assert browser_ms <= REDRAW_LIMIT_MS
        assert not page.errors, f"errors in the browser console: {page.errors}"
    finally:
        client.stop_channels()

    # Reopened after its kernel stopped: JupyterLab cannot find the widget's model.
    page.menu("File", "Save Notebook")
    page.page.wait_for_timeout(1000)
    saved = json.loads((lab.folder / NOTEBOOK).read_text())
    outputs = [o for cell in saved["cells"] if "camlab.explore(" in "".join(cell["source"])
               for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no still picture saved"
    lab.shut_down_kernels()
    page.page.reload()
    page.open()
    page.page.get_by_text("model not found").first.wait_for(timeout=30_000)
    still = page.page.locator(".camlab-still")
    still.wait_for(state="visible", timeout=30_000)
    still.scroll_into_view_if_needed()
    assert still.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert "re-run this cell" in still.text_content()
    page.shot("reopened_after_the_kernel_stopped",
              still.locator("xpath=ancestor::div[contains(@class, 'jp-Cell')][1]"))
    unexpected = [e for e in page.errors if "model not found" not in e]
    assert not unexpected, f"errors in the browser console after reopening: {unexpected}"
    context.close()
    lab.shut_down_kernels()
    print(f"screenshots: {', '.join(p.name for p in page.shots)} in {ARTEFACTS}; "
          f"whole check {time.monotonic() - started:.0f} s")


def test_the_box_threshold_slider_in_jupyterlab(lab, browser):
    """Notebook 03's ``camlab.box_slider``: the threshold moves the box and its figure."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = Page(context.new_page(), lab, BOX_NOTEBOOK)
    page.open()
    page.run_all()
    slider = page.page.locator(".widget-slider", has=page.page.get_by_text("threshold", exact=True))
    slider.wait_for(timeout=30_000)
    widget = slider.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
    widget.scroll_into_view_if_needed()
    figure = widget.locator(".widget-output img")
    figure.wait_for(timeout=30_000)
    text = widget.locator(".widget-label", has_text="of the maximum")
    assert "threshold 0.20 of the maximum" in text.text_content()
    before = figure.get_attribute("src")
    page.shot("box_slider_before", widget)
    for _ in range(4):  # 0.20 -> 0.40, one step (0.05) a key press
        slider.locator(".noUi-handle, .ui-slider-handle").first.press("ArrowRight")
    page.page.wait_for_function(
        "node => node.textContent.includes('threshold 0.40 of the maximum')",
        arg=text.element_handle(), timeout=30_000)
    page.page.wait_for_timeout(1500)  # the last figure of the moves
    assert "threshold 0.40 of the maximum" in text.text_content()
    assert figure.get_attribute("src") != before
    page.shot("box_slider_after", widget)
    assert not page.errors, f"errors in the browser console: {page.errors}"
    context.close()
    lab.shut_down_kernels()


def test_the_student_edition_runs_and_its_explorer_responds(lab, browser):
    """The student edition of notebook 02 (exercises unsolved) runs through "Run All Cells",
    and its explorer answers a key press with the kernel's pictures."""
    if not (lab.folder / STUDENT_NOTEBOOK).exists():
        pytest.skip(f"no student/{NOTEBOOK}: build the student edition first")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = Page(context.new_page(), lab, STUDENT_NOTEBOOK)
    page.open()
    page.run_all()
    client = lab.kernel_client()
    try:
        explorer = page.explorer()
        page.page.wait_for_timeout(500)
        before = page.pictures()
        kernel = kernel_json(client, KERNEL_VIEW)
        assert before == {k: kernel[k] for k in PANELS}
        page.shot("image_slider_before")
        handle(explorer, "image").press("ArrowRight")
        after = wait_for_change(page, before, "overlay")
        moved = kernel_json(client, KERNEL_VIEW)
        assert after == {k: moved[k] for k in PANELS} and moved["index"] == kernel["index"] + 1
        page.shot("image_slider_after")
    finally:
        client.stop_channels()
    assert not page.errors, f"errors in the browser console: {page.errors}"
    context.close()
    lab.shut_down_kernels()
