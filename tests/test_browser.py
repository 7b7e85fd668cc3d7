"""Notebook 05's explorer in a real browser: JupyterLab (from this venv) runs the notebook, Chromium draws the
widget, the test moves the alpha slider and reads the numbers that the kernel sends back.

nbval runs every notebook's kernel but never draws a widget, so "Error displaying widget" (a missing or
mismatched widget frontend) would pass it. The second test starts JupyterLab with the widget manager's
frontend extension disabled and shows that the same check then reports "not rendered".

Needs Debian's ``chromium`` (``apt-get install chromium``; Playwright's own browser download is not used) and
skips without it. Every run copies the notebook into a temporary folder: the repository's notebooks are
never written.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mobilenet_edu.widgets import ALPHA_SLIDER_CLASS, READOUT_CLASS, multiplier_readout, readout_html

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_width_and_resolution.ipynb"
WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"  # the news toast: noise and a network call

# Bounded, generous waits (seconds): a slow shared 2-core machine; JupyterLab's first load can take 20-40 s.
SERVER_START_S = 120
PAGE_LOAD_S = 120
RUN_ALL_S = 300
RENDER_S = 30
UPDATE_S = 90

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str | None:
    """Debian's chromium binary (the real one first, then the launcher script on PATH), or None."""
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not found (apt-get install chromium): the browser test of the widgets needs it")


# ----------------------------------------------------------------------------------------------------
# JupyterLab, from this venv, on a free port, in a temporary folder


@dataclass
class Lab:
    url: str  # the notebook's page, token included
    base: str
    token: str
    log: Path

    def log_tail(self, n: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET", timeout: float = 5) -> int:
    req = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"},
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status


@contextlib.contextmanager
def jupyter_lab(workdir: Path, disabled_extensions: tuple[str, ...] = ()):
    """A headless JupyterLab serving a copy of notebook 05; its Jupyter config, data and runtime folders are
    temporary (nothing of the user's or of the venv's configuration is read or changed). ``disabled_extensions``
    go into this launch's own ``labconfig/page_config.json`` (via JUPYTER_CONFIG_PATH). Stopped on exit."""
    root = workdir / "root"
    root.mkdir(parents=True)
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)  # the notebook reads no other file
    config_path = workdir / "config_path"
    (config_path / "labconfig").mkdir(parents=True)
    disabled = {name: True for name in (ANNOUNCEMENTS, *disabled_extensions)}
    (config_path / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    env = dict(os.environ, MOBILENET_EDU_QUICK="1", PYTHONUNBUFFERED="1", JUPYTER_CONFIG_PATH=str(config_path),
               JUPYTER_CONFIG_DIR=str(workdir / "config"), JUPYTER_DATA_DIR=str(workdir / "data"),
               JUPYTER_RUNTIME_DIR=str(workdir / "runtime"), IPYTHONDIR=str(workdir / "ipython"))
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.open_browser=False", "--ServerApp.terminals_enabled=False", "--ServerApp.allow_root=True",
           "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands, not guessed key presses
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.workspaces_dir={workdir / 'workspaces'}", f"--LabApp.user_settings_dir={workdir / 'settings'}"]
    log = workdir / "jupyter_lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                cwd=root, start_new_session=True)
    lab = Lab(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", base, token, log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {proc.returncode}:\n{lab.log_tail()}")
            with contextlib.suppress(OSError):
                if _api(base, token, "/api/status") == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"JupyterLab did not answer within {SERVER_START_S} s:\n{lab.log_tail()}")
            time.sleep(0.5)
        yield lab
    finally:
        with contextlib.suppress(OSError, urllib.error.URLError):
            _api(base, token, "/api/shutdown", method="POST")  # shuts its kernels down, then itself
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind in its session


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Debian Chromium for the module (each test gets its own context: fresh cookies, storage)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Playwright launches it with a fresh temporary --user-data-dir and removes it on close.
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# ----------------------------------------------------------------------------------------------------
# The check: open, run all, find the explorer, move alpha, read the numbers


@dataclass
class ExplorerCheck:
    rendered: bool  # the explorer's sliders and readout are on the page, visible
    reason: str  # what was seen: "rendered", or why not
    run_ok: bool | None = None  # JupyterLab's "run all" reported every cell succeeded
    before: dict[str, str] = field(default_factory=dict)  # the readout's cells after running
    after: dict[str, str] = field(default_factory=dict)  # ... after moving the alpha slider (empty: it never changed)
    screenshot: Path | None = None
    console_errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        errors = "\n  ".join(self.console_errors[-8:]) or "none"
        return (f"{self.reason}; run_ok={self.run_ok}; before={self.before}; after={self.after}; "
                f"screenshot: {self.screenshot}\nbrowser console errors:\n  {errors}")


READOUT_FIELDS = ("width", "resolution", "params", "macs", "latency")

_FIND_PANEL = """(name) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  const panel = [...app.shell.widgets('main')].find(w => w.context && w.context.path.endsWith(name));
  return panel ? panel.id : null;
}"""

# Resolves with JupyterLab's own answer (true: every cell ran without error) or "timeout"; never hangs.
_RUN_ALL = """async ([id, ms]) => {
  const app = window.jupyterapp;
  const panel = [...app.shell.widgets('main')].find(w => w.id === id);
  const run = (async () => {
    await panel.context.ready;
    await panel.sessionContext.ready;
    app.shell.activateById(id);
    return await app.commands.execute('notebook:run-all-cells');
  })();
  return await Promise.race([run, new Promise(r => setTimeout(() => r('timeout'), ms))]);
}"""

# What became of the explorer's output: the widget, a widget error, or the plain-text fallback ("VBox(...)").
_RENDER_STATE = """([readout]) => {
  if (document.querySelector('.' + readout + ' .mnedu-params')) return 'rendered';
  for (const out of document.querySelectorAll('.jp-OutputArea-output')) {
    const text = out.textContent || '';
    if (text.includes('Error displaying widget')) return 'widget error: ' + text.trim().slice(0, 200);
    if (text.includes('VBox(children=')) return 'plain-text fallback: ' + text.trim().slice(0, 120);
  }
  return null;
}"""


def read_readout(page) -> dict[str, str]:
    cells = {}
    for name in READOUT_FIELDS:
        loc = page.locator(f".{READOUT_CLASS} .mnedu-{name}")
        cells[name] = (loc.first.text_content(timeout=5_000) or "").strip() if loc.count() else ""
    return cells


def check_explorer(page, lab: Lab, shots: Path, alpha: str = "0.5") -> ExplorerCheck:
    """Open notebook 05 in JupyterLab, run all cells, wait for the explorer; when it is drawn, type ``alpha`` into
    the alpha slider's readout and wait for the kernel's new numbers. Reports; asserts nothing."""
    from playwright.sync_api import Error as PlaywrightError

    result = ExplorerCheck(rendered=False, reason="not started")
    page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: result.console_errors.append(f"page error: {e}"))
    try:
        result.reason = "JupyterLab did not open the notebook"
        page.goto(lab.url, wait_until="domcontentloaded", timeout=PAGE_LOAD_S * 1000)
        panel_id = page.wait_for_function(_FIND_PANEL, arg=NOTEBOOK.name, timeout=PAGE_LOAD_S * 1000).json_value()

        result.reason = "running all cells"
        outcome = page.evaluate(_RUN_ALL, [panel_id, RUN_ALL_S * 1000])
        if outcome == "timeout":
            result.reason = f"running all cells took over {RUN_ALL_S} s"
            return result
        result.run_ok = bool(outcome)

        result.reason = f"no widget, no widget error and no fallback text within {RENDER_S} s of the run"
        state = page.wait_for_function(_RENDER_STATE, arg=[READOUT_CLASS], timeout=RENDER_S * 1000).json_value()
        readout = page.locator(f".{READOUT_CLASS}")
        slider_readout = page.locator(f".{ALPHA_SLIDER_CLASS} .widget-readout")
        if state != "rendered":
            result.reason = f"not rendered: {state}"
            shown = page.locator(".jp-OutputArea-output", has_text="VBox(children=").or_(
                page.locator(".jp-OutputArea-output", has_text="Error displaying widget"))
            with contextlib.suppress(PlaywrightError):
                shown.first.scroll_into_view_if_needed(timeout=5_000)  # for the screenshot
            return result
        readout.first.scroll_into_view_if_needed(timeout=10_000)
        if not (readout.first.is_visible() and slider_readout.count() == 1 and slider_readout.is_visible()):
            result.reason = "not rendered: the explorer's elements are in the page but not visible"
            return result
        result.rendered, result.reason = True, "rendered"
        result.before = read_readout(page)

        # The slider's readout is editable: type the value, Enter sends it to the kernel (one update).
        slider_readout.click()
        slider_readout.fill(alpha)
        slider_readout.press("Enter")
        try:
            page.wait_for_function(
                "([sel, old]) => { const e = document.querySelector(sel); return e && e.textContent.trim() !== old; }",
                arg=[f".{READOUT_CLASS} .mnedu-params", result.before["params"]], timeout=UPDATE_S * 1000)
        except PlaywrightError:
            result.reason = f"rendered, but the readout did not change within {UPDATE_S} s of setting alpha={alpha}"
            return result
        result.after = read_readout(page)
        result.reason = "rendered and updated"
        return result
    except PlaywrightError as e:
        result.reason += f" ({type(e).__name__}: {str(e).splitlines()[0]})"
        return result
    finally:
        shot = shots / "jupyterlab.png"
        with contextlib.suppress(PlaywrightError):
            page.screenshot(path=str(shot), timeout=15_000)
            result.screenshot = shot


def expected_cells(width: float, resolution: int) -> dict[str, str]:
    """The readout's cells as the package formats them (``readout_html``), without the measured latency."""
    r = multiplier_readout(width, resolution, timed=False)
    html = readout_html(r)
    cells = {"width": f"{r['width']:.2f}", "resolution": str(r["resolution"]), "params": f"{r['params']:,}",
             "macs": f"{r['macs'] / 1e6:.1f} M"}
    assert all(v in html for v in cells.values())  # the same formatting as the widget's HTML
    return cells


# ----------------------------------------------------------------------------------------------------


def test_explorer_renders_and_follows_the_alpha_slider(browser, tmp_path):
    with jupyter_lab(tmp_path / "lab") as lab:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            check = check_explorer(context.new_page(), lab, tmp_path)
        finally:
            context.close()
        why = f"{check.describe()}\nJupyterLab log:\n{lab.log_tail()}"
    assert check.rendered, why
    assert check.run_ok, why
    assert check.after, why
    assert {k: check.before[k] for k in expected_cells(1.0, 224)} == expected_cells(1.0, 224), why
    assert {k: check.after[k] for k in expected_cells(0.5, 224)} == expected_cells(0.5, 224), why
    assert check.after["params"] == "1,331,592" and check.after["macs"] == "149.5 M", why  # the paper's 1.3 M, 149 M
    assert check.before["latency"].endswith(" ms") and check.after["latency"].endswith(" ms"), why


def test_the_check_fails_when_the_widget_frontend_is_missing(browser, tmp_path):
    """The same check, with the widget manager's JupyterLab extension disabled for this launch only: the kernel
    still makes the widget, the page cannot draw it. Shows that the check above can fail."""
    with jupyter_lab(tmp_path / "lab", disabled_extensions=(WIDGET_MANAGER,)) as lab:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            check = check_explorer(page, lab, tmp_path)
            disabled = page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent)"
                                     ".disabledExtensions")
        finally:
            context.close()
    why = check.describe()
    assert WIDGET_MANAGER in disabled, disabled  # the launch really ran without the widget frontend
    assert check.run_ok, why  # the kernel side is fine: nbval would pass this notebook
    assert not check.rendered and check.reason.startswith("not rendered"), why
    assert "plain-text fallback" in check.reason, why  # JupyterLab shows the widget's repr instead
