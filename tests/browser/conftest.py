"""Browser tests: JupyterLab in Debian's Chromium, driven by Playwright. Skipped, with the reason printed at the
top of the run, when playwright or /usr/bin/chromium is missing (``make browser-deps`` installs Chromium)."""
import shutil
import tempfile
from pathlib import Path

import pytest

from jlab import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Lab, missing_requirements

MISSING = missing_requirements()


def pytest_report_header(config):
    return f"browser tests: {'skipped: ' + MISSING if MISSING else 'on, with ' + str(CHROMIUM)}"


def pytest_collection_modifyitems(config, items):
    if not MISSING:
        return
    skip = pytest.mark.skip(reason=f"browser tests need playwright and Chromium: {MISSING}")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """build/browser-artifacts/: screenshots of failures, the server log, timings."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# module scope: the server and the browser end with tests/browser/'s test file, so nothing of them outlives it
# in a pytest process that goes on to run other tests
@pytest.fixture(scope="module")
def lab(artifacts):
    workdir = Path(tempfile.mkdtemp(prefix="ganlib-lab-"))
    server = Lab(workdir).start()
    yield server
    server.stop()
    shutil.copy(workdir / "jupyter.log", artifacts / "jupyter.log")
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
