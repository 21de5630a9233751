"""The layering ganlib claims, checked: models know nothing of training loops, experiments, plots or widgets.

``ganlib.models`` (and ``ganlib.progressive``, which they share) may import torch, ``ganlib.layers``,
``ganlib.losses`` and the like; what trains, runs or draws them (``ganlib.train``, ``ganlib.experiments``,
``ganlib.viz``, ``ganlib.widgets``) imports them, never the other way round. Imports inside functions count.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ganlib"
MODEL_FILES = sorted((ROOT / "models").glob("*.py")) + [ROOT / "progressive.py"]
FORBIDDEN = ("ganlib.train", "ganlib.experiments", "ganlib.viz", "ganlib.widgets")


def imported_modules(path: Path):
    """(line, dotted name) of everything a file imports, at any depth, ``from ganlib import train`` included."""
    package = "ganlib.models" if path.parent.name == "models" else "ganlib"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.name)
def test_model_files_import_no_training_experiment_or_display_code(path):
    bad = [f"{path.name}:{line} imports {name}" for line, name in imported_modules(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, "models must not depend on what uses them: " + "; ".join(bad)


def test_the_check_sees_every_kind_of_import(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    sample = models / "sample.py"
    sample.write_text("import ganlib.viz\nfrom ganlib import train\ndef f():\n    from ..experiments import toy\n"
                      "from ganlib.layers import PixelNorm\n")
    names = [name for _, name in imported_modules(sample)]
    assert {"ganlib.viz", "ganlib.train", "ganlib.experiments.toy", "ganlib.layers.PixelNorm"} <= set(names)
