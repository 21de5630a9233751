"""The README quotes the reference models' scores in two tables; both must say what the manifest says.

The manifest's scores are re-measured from the shipped weights by tests/test_reference.py, so this pins the
README to the weights too. Numbers of live runs are not quoted there (they change with the machine and the
scale); the notebooks print them."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MODELS = json.loads((ROOT / "data" / "reference" / "manifest.json").read_text(encoding="utf-8"))["models"]
# what a label in the README stands for: (manifest metric, decimals it is quoted with)
LABELS = {"mnist": {"FD": ("fd", 1), "floor": ("floor", 2)},
          "shapes": {"shape confidence": ("shape_confidence", 2), "factor FD": ("factor_fd", 1),
                     "floor": ("factor_floor", 2)}}


def _rows(table_header: str):
    start = README.index(table_header)
    block = README[start:README.index("\n\n", start)]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in block.splitlines()[2:]]


def _chapter_row(chapter: str) -> str:
    rows = {cells[0]: cells[2] for cells in _rows("| # | notebook | what you will see |")}
    return rows[chapter]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_chapter_table_quotes_the_manifest(name):
    entry = MODELS[name]
    row = _chapter_row(entry["chapter"])
    quoted = re.search(r"reference [A-Za-z]+ \(([^)]*)\)", row)
    assert quoted, f"README's row for chapter {entry['chapter']} does not give the reference {name}'s scores"
    labels = LABELS["shapes" if "factor_fd" in entry["metrics"] else "mnist"]
    found = 0
    for label, value in re.findall(r"(shape confidence|factor FD|FD|floor) ([0-9]+(?:\.[0-9]+)?)", quoted.group(1)):
        key, decimals = labels[label]
        assert value == f"{entry['metrics'][key]:.{decimals}f}", f"{name}: README says {label} {value}, " \
            f"the manifest {entry['metrics'][key]:.4g}"
        found += 1
    for percent in re.findall(r"([0-9]+) % of digits as asked", quoted.group(1)):
        assert int(percent) == round(100 * entry["metrics"]["accuracy"])
        found += 1
    assert found, f"README's row for chapter {entry['chapter']} names the reference {name} without a score"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_reference_table_quotes_the_manifest(name):
    rows = {cells[0].strip("`"): cells for cells in _rows("| name | chapter | recipe |")}
    entry, cells = MODELS[name], rows[name]
    metrics = entry["metrics"]
    assert cells[1] == entry["chapter"]
    if "factor_fd" in metrics:
        assert f"factor-feature FD {metrics['factor_fd']:.1f}, real vs real {metrics['factor_floor']:.2f}" in cells[4]
        assert f"shape confidence {metrics['shape_confidence']:.3f}" in cells[5]
    else:
        assert cells[4] == f"{metrics['fd']:.2f} ({metrics['floor']:.2f})"
    assert f"{entry['steps']:,} " in cells[3], f"{name}: README's steps are not the manifest's {entry['steps']:,}"
