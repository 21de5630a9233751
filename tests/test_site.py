"""The rendered course (scripts/site.py, ``make site``), built at smoke: every chapter has its page, every figure
its notebook drew (the widgets' static fallbacks included) is on that page, solutions sit behind a toggle."""
import base64
import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

import repo_files

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# cells that show an explorer: x.show() (not plt.show()), the playground's static run, the static twins
WIDGET_CELL = re.compile(r"(?<!plt)\.show\(\)|show_static\(|static_figure\(|draw_fade_strip\(")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("jupyter_book") is None,
                                 reason="the site needs jupyter-book<2 (pip install -e '.[dev]')")]


def _load_script():
    return repo_files.load("scripts/site.py", "site_build")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    # `make test` keeps the notebooks nbval just ran (tests/keep_executed.py): render those, do not run them again
    kept = os.environ.get("GANLIB_KEEP_EXECUTED", "").strip()
    info = _load_script().build(out, "smoke", jobs=1, timeout=600, only=[], executed=Path(kept) if kept else None)
    print(f"site at smoke: executing {info['execute_s']} s, total {info['total_s']} s")
    return out, out.parent / "site-src", info


def png_digests(nb):
    """sha256 of every PNG the notebook's outputs hold: the names myst-nb gives the page's image files."""
    digests = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("image/png")
            if data:
                digests.append(hashlib.sha256(base64.b64decode("".join(data))).hexdigest())
    return digests


def test_every_chapter_has_a_page_with_every_figure_its_notebook_drew(site):
    out, src, _info = site
    for chapter in CHAPTERS:
        page = out / f"{chapter.stem}.html"
        assert page.exists(), f"no page for {chapter.name}"
        html = page.read_text(encoding="utf-8")
        executed = json.loads((src / chapter.name).read_text(encoding="utf-8"))
        digests = png_digests(executed)
        assert digests, f"{chapter.name}: the executed notebook drew no figure"
        for digest in digests:
            assert f"_images/{digest}.png" in html, f"{chapter.name}: a figure is missing from its page"
            assert (out / "_images" / f"{digest}.png").exists()
        assert "Traceback" not in html and "VBox(" not in html and "Error displaying widget" not in html


def test_widget_cells_draw_their_static_figure(site):
    _out, src, _info = site
    cells = 0
    for chapter in CHAPTERS:
        executed = json.loads((src / chapter.name).read_text(encoding="utf-8"))
        for cell in executed["cells"]:
            if cell["cell_type"] == "code" and WIDGET_CELL.search("".join(cell["source"])) \
                    and "pg.show()" not in "".join(cell["source"]):  # the playground's figure is the next cell's
                cells += 1
                assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), \
                    f"{chapter.name}: a widget cell shows no static figure:\n{''.join(cell['source'])[:300]}"
    assert cells >= 8  # 05b, 06, 07, 08 (2), 09, 10 (3)


def test_solutions_are_behind_a_toggle_and_the_index_links_every_chapter(site):
    out, _src, _info = site
    index = (out / "index.html").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        assert f'href="{chapter.stem}.html"' in index, f"the index does not link {chapter.name}"
        nb = json.loads(chapter.read_text(encoding="utf-8"))
        solutions = sum("solution" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])
        html = (out / f"{chapter.stem}.html").read_text(encoding="utf-8")
        hidden = len(re.findall(r'class="cell tag_solution tag_hide-input', html))
        assert hidden == solutions, f"{chapter.name}: {solutions} solutions, {hidden} hidden behind a toggle"
        assert html.count("Show code cell source") >= solutions


def test_a_kept_copy_is_used_only_if_it_is_the_current_notebook_at_the_same_scale(tmp_path):
    site_build = _load_script()
    chapter = CHAPTERS[0]
    nb = json.loads(chapter.read_text(encoding="utf-8"))
    with pytest.raises(SystemExit, match="missing"):
        site_build.executed_copy(tmp_path, chapter, "smoke")
    nb.setdefault("metadata", {})["ganlib"] = {"scale": "small", "executed_s": 12.5}
    site_build.write(tmp_path / chapter.name, nb)
    with pytest.raises(SystemExit, match="GANLIB_SCALE='small', not 'smoke'"):
        site_build.executed_copy(tmp_path, chapter, "smoke")
    kept, seconds = site_build.executed_copy(tmp_path, chapter, "small")
    assert seconds == 12.5 and kept["metadata"]["ganlib"]["scale"] == "small"
    nb["cells"][-1]["source"] = "".join(nb["cells"][-1]["source"]) + "\n# edited after the run"
    site_build.write(tmp_path / chapter.name, nb)
    with pytest.raises(SystemExit, match="a cell changed since it ran"):
        site_build.executed_copy(tmp_path, chapter, "small")
