"""A JupyterLab server on a copy of the notebooks, driven by Playwright and Debian's Chromium.

Nothing here downloads anything: the browser is the system's ``/usr/bin/chromium`` (never
``playwright install``), the server listens on 127.0.0.1 only, and JupyterLab's news and update checks
are switched off in a private settings directory.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("GANLIB_CHROMIUM", "/usr/bin/chromium"))
# No network but loopback: no QUIC, no component or safe-browsing updates, no sync, no first-run UI.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "build" / "browser-artifacts"

# JupyterLab's own settings, so that no dialog covers the notebook and nothing calls home.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                       "checkForUpdates": False},
    # every cell stays in the DOM (no virtual scrolling), so every widget can be found and screenshotted
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                    "autoStartDefaultKernel": True},
}


def missing_requirements() -> Optional[str]:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package 'playwright' is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (as root on Debian: make browser-deps, i.e. apt-get install -y chromium)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """``jupyter lab`` on a temporary copy of ``notebooks/``, at smoke scale with live drawing on."""

    def __init__(self, workdir: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.workdir = Path(workdir)
        self.notebooks = self.workdir / "notebooks"
        shutil.copytree(ROOT / "notebooks", self.notebooks)
        self.runtime = self.workdir / "runtime"
        settings = self.workdir / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel draws inline, not Agg
        self.env.update({"GANLIB_SCALE": "smoke", "GANLIB_LIVE": "1", "OMP_NUM_THREADS": "1",
                         "JUPYTERLAB_SETTINGS_DIR": str(settings),
                         "JUPYTER_CONFIG_DIR": str(self.workdir / "config"),  # no user config (a password, ...)
                         "JUPYTERLAB_WORKSPACES_DIR": str(self.workdir / "workspaces"),
                         "JUPYTER_RUNTIME_DIR": str(self.runtime)})
        self.env.update(env or {})
        self.log = open(self.workdir / "jupyter.log", "w")
        self.proc: Optional[subprocess.Popen] = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> "Lab":
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1", "--port", str(self.port),
               f"--ServerApp.token={self.token}", "--allow-root", f"--ServerApp.root_dir={self.notebooks}",
               "--ServerApp.open_browser=False", "--ServerApp.terminals_enabled=False"]
        self.proc = subprocess.Popen(cmd, cwd=self.notebooks, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}; see {self.log.name}")
            try:
                self.api("status")
                return self
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f} s; see {self.log.name}")

    def api(self, path: str) -> Any:
        req = urllib.request.Request(f"{self.base}/api/{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{notebook}?token={self.token}&reset"

    def kernel_of(self, notebook: str):
        """A started ``BlockingKernelClient`` on the kernel the page opened for ``notebook``."""
        from jupyter_client import BlockingKernelClient

        sessions = [s for s in self.api("sessions") if s["path"].endswith(notebook)]
        if not sessions:
            raise LookupError(f"no kernel session for {notebook}")
        client = BlockingKernelClient()
        client.load_connection_file(str(self.runtime / f"kernel-{sessions[0]['kernel']['id']}.json"))
        client.start_channels()
        client.wait_for_ready(timeout=60)
        return client

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # our own server process, by its handle; it shuts its kernels down
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def evaluate(client, expression: str, timeout: float = 120.0) -> Any:
    """The JSON value of ``expression`` evaluated in the kernel (through stdout, never the page)."""
    code = f"import json as _j; print('@@' + _j.dumps({expression}))"
    msg_id = client.execute(code, silent=False, store_history=False)
    out, error = [], None
    deadline = time.monotonic() + timeout
    while True:
        msg = client.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            out.append(content["text"])
        elif kind == "error":
            error = "\n".join(content["traceback"])
        elif kind == "status" and content["execution_state"] == "idle":
            break
    if error:
        raise RuntimeError(f"kernel error evaluating {expression!r}:\n{error}")
    line = next(l for l in "".join(out).splitlines() if l.startswith("@@"))
    return json.loads(line[2:])


# -- the kernel's side of a widget --------------------------------------------------------------------

# Defined once in the kernel: a displayed root widget's controls in document order, each with the text (or
# checkbox state) the page must show for its kernel value, and the ids of the Output widgets inside it.
KERNEL_HELPERS = r'''
def _browser_test_describe(model_id):
    import ipywidgets as W
    controls, outputs = [], []
    def shown(w):
        if hasattr(w, "_options_labels"):
            return w.label
        if isinstance(w, W.Checkbox):
            return bool(w.value)
        if isinstance(w, (W.FloatSlider, W.FloatLogSlider)):
            return format(w.value, w.readout_format)
        return str(w.value)
    def walk(w):
        if isinstance(w, W.Box):
            for child in w.children:
                walk(child)
        elif isinstance(w, W.Output):
            outputs.append(w.model_id)
        elif isinstance(w, W.Button):
            controls.append(dict(id=w.model_id, kind="Button", description=w.description, disabled=w.disabled,
                                 shown=w.description))
        elif isinstance(w, W.ValueWidget) and not isinstance(w, (W.HTML, W.Label, W.HTMLMath)):
            controls.append(dict(id=w.model_id, kind=type(w).__name__, description=w.description,
                                 disabled=w.disabled, shown=shown(w),
                                 options=list(getattr(w, "_options_labels", ()))))
    walk(W.Widget.widgets[model_id])
    return dict(controls=controls, outputs=outputs)
'''


def define_helpers(client) -> None:
    evaluate(client, f"exec({KERNEL_HELPERS!r}) or True")


def describe(client, model_id: str) -> Dict[str, Any]:
    return evaluate(client, f"_browser_test_describe({model_id!r})")


# -- the page's side ------------------------------------------------------------------------------------

ROOTS = ".jp-OutputArea-output > .jupyter-widgets"  # one displayed widget (its root box) per match
CONTROLS = ".widget-inline-hbox:not(.widget-html):not(.widget-label), button.widget-button"

# What a control shows: a <select>'s chosen option, a checkbox's state, a slider's readout, an input's text.
READ_CONTROL = """el => {
  if (el.matches('button')) return {label: el.textContent.trim(), shown: el.textContent.trim()};
  const label = (el.querySelector('.widget-label-basic span') || el.querySelector('.widget-label') || {}).textContent;
  const sel = el.querySelector('select');
  const box = el.querySelector('input[type=checkbox]');
  const readout = el.querySelector('.widget-readout');
  const input = el.querySelector('input');
  let shown = null;
  if (sel) shown = sel.selectedIndex >= 0 ? sel.options[sel.selectedIndex].text : null;
  else if (box) shown = box.checked;
  else if (readout) shown = readout.textContent.trim();
  else if (input) shown = input.value;
  if (typeof shown === 'string') shown = shown.replace(/\\u00a0/g, ' ');
  return {label: (label || '').replace(/\\u00a0/g, ' ').trim(), shown};
}"""


def wait_for_notebook(page, lab: Lab, notebook: str, timeout: float = 120.0) -> None:
    """Until the notebook's cells are on the page and its kernel is idle and connected."""
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = [s for s in lab.api("sessions") if s["path"].endswith(notebook)]
        kernel = sessions[0]["kernel"] if sessions else {}
        if kernel.get("execution_state") == "idle" and kernel.get("connections", 0) > 0:
            return
        time.sleep(0.3)
    raise TimeoutError(f"{notebook}: no idle kernel after {timeout:.0f} s")


PROMPTS = "[...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent.trim())"


def run_all(page, notebook: str, timeout: float = 600.0) -> float:
    """Run > Run All Cells, then wait until every code cell has an execution count. Returns the seconds taken."""
    start = time.monotonic()
    for _attempt in range(3):  # a click before the kernel is fully wired up can be dropped: check it took
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li[data-command='runmenu:run-all']")
        try:
            page.wait_for_function(f"() => {PROMPTS}.some(t => t !== '[ ]:')", timeout=15000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; try the menu again
            continue
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        prompts = page.evaluate(f"() => {PROMPTS}")
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").filter(
            has_text="Traceback (most recent call last)")
        if errors.count():
            raise AssertionError(f"{notebook}: a cell failed during Run All:\n{errors.first.inner_text()[-3000:]}")
        if prompts and all(p.startswith("[") and p[1:-2].isdigit() for p in prompts):
            return time.monotonic() - start
        time.sleep(0.5)
    raise TimeoutError(f"{notebook}: Run All did not finish within {timeout:.0f} s")


def save(page, lab: Lab, notebook: str, timeout: float = 60.0) -> Dict[str, Any]:
    """Save the notebook from the page (File > Save) and return the saved JSON: it names each widget view."""
    before = lab.api(f"contents/{notebook}?content=0")["last_modified"]
    page.click(".lm-MenuBar-itemLabel:text-is('File')")
    page.click("li[data-command='docmanager:save']")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if lab.api(f"contents/{notebook}?content=0")["last_modified"] == before:
            continue
        try:
            return lab.api(f"contents/{notebook}?content=1")["content"]
        except urllib.error.HTTPError:  # 400 "Unreadable Notebook": read while the file was still being written
            continue
    raise TimeoutError(f"{notebook}: not saved within {timeout:.0f} s")


def widget_views(saved: Dict[str, Any]) -> list:
    """The model id of every widget view in the saved notebook, in the order the page shows them."""
    ids = []
    for cell in saved["cells"]:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view:
                ids.append(view["model_id"])
    return ids


def snapshot(element) -> bytes:
    """A PNG of ``element`` as the page draws it now."""
    return element.screenshot(animations="disabled", timeout=30000)


def wait_for_new_image(element, before: bytes, timeout: float, settle: float = 1.0) -> bytes:
    """Until ``element`` looks different from ``before`` and has stayed the same for ``settle`` seconds.

    The kernel's status reads idle while a widget callback still runs, so the view itself is what is waited on.
    """
    deadline = time.monotonic() + timeout
    current, since = before, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        shot = snapshot(element)
        if shot != current:
            current, since = shot, time.monotonic()
        elif current != before and time.monotonic() - since >= settle:
            return current
    raise TimeoutError(f"the image did not change (and settle) within {timeout:.0f} s")


def wait_until_stable(element, timeout: float = 60.0, settle: float = 1.0) -> bytes:
    """Until ``element`` has looked the same for ``settle`` seconds (callbacks still drawing after Run All)."""
    deadline = time.monotonic() + timeout
    current, since = snapshot(element), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        shot = snapshot(element)
        if shot != current:
            current, since = shot, time.monotonic()
        elif time.monotonic() - since >= settle:
            return current
    raise TimeoutError(f"the view kept changing for {timeout:.0f} s")
