"""House rules every notebook must follow (nbval runs them; this checks how they are stored)."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_stripped_and_reads_the_scale_through_ganlib(path):
    nb = json.loads(path.read_text())
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code_cells, "a notebook with no code teaches nothing runnable"
    for cell in code_cells:
        assert cell.get("outputs") == [], f"{path.name}: stored outputs; strip them (nbstripout)"
        assert cell.get("execution_count") is None, f"{path.name}: stored execution counts"
        source = "".join(cell["source"])
        assert "GANLIB_SCALE" not in source and "os.environ" not in source, \
            f"{path.name}: read the scale through ganlib.by_scale / ganlib.scale, never ad hoc"
    first = "".join(nb["cells"][0]["source"]).lower()
    last = "".join(nb["cells"][-1]["source"]).lower()
    assert nb["cells"][0]["cell_type"] == "markdown" and "time" in first, \
        f"{path.name}: the first cell says what you will learn and how long it takes"
    assert "takeaway" in last, f"{path.name}: the last cell is a short takeaway"
