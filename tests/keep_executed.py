"""pytest plugin of ``make test``: keep every notebook as nbval executed it, outputs and all, in one folder.

The site test (tests/test_site.py) then renders those copies (``scripts/site.py --executed``) instead of running
every chapter a second time; on CI's two cores that second run was the longest job of the suite.

    GANLIB_KEEP_EXECUTED=build/executed PYTHONPATH=tests python -m pytest -p keep_executed --nbval-lax notebooks

Each copy records the scale it ran at and its seconds (the cells' call time) under ``metadata.ganlib``; a chapter
with a failing cell is written too, error output included, so what the page would show is what failed.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict

import nbformat
import pytest

_ran: Dict[str, Dict[str, Any]] = {}  # notebook path -> {"file": nbval's file node, "seconds": float}


def _folder() -> Path | None:
    value = os.environ.get("GANLIB_KEEP_EXECUTED", "").strip()
    return Path(value) if value else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    start = time.perf_counter()
    yield
    outputs = getattr(item, "test_outputs", None)
    if _folder() is None or outputs is None or not hasattr(item, "cell"):
        return  # not an nbval cell, or a skipped one
    notebook = _ran.setdefault(str(item.parent.path), {"file": item.parent, "seconds": 0.0, "count": 0})
    notebook["seconds"] += time.perf_counter() - start
    notebook["count"] += 1
    item.cell.outputs = outputs  # the cell node nbval read: writing the file node's notebook writes these
    item.cell.execution_count = notebook["count"]
    for output in outputs:
        if output.get("output_type") == "execute_result":
            output["execution_count"] = notebook["count"]


def pytest_sessionfinish(session: pytest.Session) -> None:
    folder = _folder()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for path, notebook in _ran.items():
        nb = notebook["file"].nb
        nb.metadata["ganlib"] = {"scale": os.environ.get("GANLIB_SCALE", ""),
                                 "executed_s": round(notebook["seconds"], 1)}
        target = folder / Path(path).name
        temporary = target.with_suffix(".ipynb.tmp")
        nbformat.write(nb, str(temporary))
        temporary.replace(target)
