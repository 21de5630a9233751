"""Build the course as a static HTML site with Jupyter Book 1, from notebooks executed at one scale.

    python scripts/site.py                      # GANLIB_SCALE=small, into build/site/ (what `make site` runs)
    python scripts/site.py --scale smoke        # seconds per chapter (CI)
    python scripts/site.py --out DIR --jobs 1   # elsewhere, one notebook at a time
    python scripts/site.py --executed build/executed   # render the copies `make test` kept (no second run)

Steps, each on a copy in ``<out>-src/`` (notebooks/ is never written):
1. copy every notebook; cells tagged ``solution`` also get ``hide-input``, so the page shows their output and a
   toggle that reveals the code;
2. execute each copy (``--jobs`` at a time, one torch thread each) at ``--scale`` with ``GANLIB_LIVE=0``, so every
   widget draws its static fallback figure; a cell that fails stops the build. With ``--executed DIR`` the
   copies come from DIR instead (``make test`` keeps nbval's, see tests/keep_executed.py: the same smoke run,
   static figures, since live drawing is off at smoke) and nothing is executed;
3. drop widget views from the executed copies (progress bars; a static page has no kernel to run them);
4. write ``index.md`` (the chapter table: README's "what you will see", the time each chapter took in this
   build) with ``_config.yml`` and ``_toc.yml``, and run ``jupyter-book build`` (no execution; offline);
5. copy the HTML to ``<out>/`` (``<out>/index.html`` is the start page).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CONFIG = """\
title: GAN Course
author: GAN Course contributors
only_build_toc_files: true
execute:
  execute_notebooks: "off"
html:
  use_issues_button: false
  use_repository_button: false
  home_page_in_navbar: true
sphinx:
  config:
    html_show_copyright: false
    nb_merge_streams: true
"""


def chapters(src: Path = ROOT / "notebooks") -> List[Path]:
    return sorted(src.glob("*.ipynb"))


def read(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def write(path: Path, nb: Dict[str, Any]) -> None:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def tag_solutions(nb: Dict[str, Any]) -> int:
    """Add ``hide-input`` to every ``solution`` cell (the page shows a toggle instead of the code). Returns how many."""
    count = 0
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if cell["cell_type"] == "code" and "solution" in tags and "hide-input" not in tags:
            tags.append("hide-input")
            count += 1
    return count


def drop_widget_views(nb: Dict[str, Any]) -> int:
    """Remove outputs that are widget views (and the saved widget state). Returns how many were dropped."""
    dropped = 0
    for cell in nb["cells"]:
        keep = [o for o in cell.get("outputs", []) if WIDGET_VIEW not in o.get("data", {})]
        dropped += len(cell.get("outputs", [])) - len(keep)
        if "outputs" in cell:
            cell["outputs"] = keep
    nb.get("metadata", {}).pop("widgets", None)
    return dropped


def execute(path: Path, scale: str, timeout: int) -> float:
    """Run ``path`` in place in a fresh kernel at ``scale``, live drawing off. Returns the wall seconds."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's inline backend keeps figures
    env.update(GANLIB_SCALE=scale, GANLIB_LIVE="0", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                           f"--ExecutePreprocessor.timeout={timeout}", "--ExecutePreprocessor.kernel_name=python3",
                           str(path)], cwd=path.parent, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{path.name} failed at GANLIB_SCALE={scale}:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def readme_rows(readme: Path = ROOT / "README.md") -> Dict[str, str]:
    """notebook stem -> README's "what you will see" for it (the table under "## The notebooks")."""
    rows = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*[0-9]+b?\s*\|\s*`([^`]+)`\s*\|([^|]*)\|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def title_of(nb: Dict[str, Any]) -> str:
    first = "".join(nb["cells"][0]["source"]).strip().splitlines()[0]
    return first.lstrip("# ").strip()


def index_page(entries: List[Tuple[Path, str, float]], scale: str) -> str:
    rows = readme_rows()
    lines = ["# GAN Course", "",
             "Generative adversarial networks from the first minimax game to StyleGAN: eleven chapters, each asking a "
             "question and answering it with an experiment, on the small tested PyTorch library `ganlib`.", "",
             f"Every page below was executed at `GANLIB_SCALE={scale}` when this site was built; the widgets appear as "
             "their static figures (run the notebooks in JupyterLab, `make lab`, to move their controls). Exercise "
             "solutions are hidden: press the toggle above a solution to see it.", "",
             "| # | chapter | what you will see | run time here |", "|---|---|---|---|"]
    for path, title, seconds in entries:
        number = path.stem.split("_")[0]
        lines.append(f"| {number} | [{title}]({path.name}) | {rows.get(path.stem, '')} | {seconds:.0f} s |")
    return "\n".join(lines) + "\n"


def toc(entries: List[Tuple[Path, str, float]]) -> str:
    return "format: jb-book\nroot: index\nchapters:\n" + "".join(f"- file: {p.stem}\n" for p, _, _ in entries)


def _sources(nb: Dict[str, Any]) -> List[str]:
    return ["".join(cell["source"]) for cell in nb["cells"]]


def executed_copy(folder: Path, path: Path, scale: str) -> Tuple[Dict[str, Any], float]:
    """The copy of ``path`` that a test run executed at ``scale`` and kept in ``folder``, and its seconds."""
    kept = folder / path.name
    if not kept.exists():
        raise SystemExit(f"{kept} is missing: --executed wants every chapter as `make test` keeps them "
                         f"(GANLIB_KEEP_EXECUTED={folder}); run that, or build without --executed")
    nb = read(kept)
    ran = nb.get("metadata", {}).get("ganlib", {})
    if ran.get("scale") != scale:
        raise SystemExit(f"{kept} was executed at GANLIB_SCALE={ran.get('scale')!r}, not {scale!r}; "
                         f"pass --scale {ran.get('scale') or 'smoke'} or build without --executed")
    if _sources(nb) != _sources(read(path)):
        raise SystemExit(f"{kept} is not the current {path.name} (a cell changed since it ran); run `make test` "
                         "again or build without --executed")
    return nb, float(ran.get("executed_s", 0.0))


def build(out: Path, scale: str, jobs: int, timeout: int, only: List[str],
          executed: Optional[Path] = None) -> Dict[str, Any]:
    """Steps 1-5 of the module docstring; returns what was built (pages, seconds)."""
    start = time.perf_counter()
    src = out.parent / f"{out.name}-src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    paths = [p for p in chapters() if not only or any(p.stem.startswith(o) for o in only)]
    if not paths:
        raise SystemExit(f"no notebook matches {only}")
    seconds = []
    for path in paths:
        nb, took = executed_copy(executed, path, scale) if executed else (read(path), 0.0)
        tag_solutions(nb)
        write(src / path.name, nb)
        seconds.append(took)
    if not executed:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # each a kernel process of its own
            seconds = list(pool.map(lambda p: execute(src / p.name, scale, timeout), paths))
    entries = []
    for path, took in zip(paths, seconds):
        nb = read(src / path.name)
        drop_widget_views(nb)
        write(src / path.name, nb)
        entries.append((path, title_of(nb), took))
        print(f"{'kept' if executed else 'executed'} {path.name}: {took:.0f} s", flush=True)
    (src / "index.md").write_text(index_page(entries, scale), encoding="utf-8")
    (src / "_config.yml").write_text(CONFIG, encoding="utf-8")
    (src / "_toc.yml").write_text(toc(entries), encoding="utf-8")
    prepared = time.perf_counter() - start
    jupyter_book = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]  # the venv's own
    proc = subprocess.run(jupyter_book + ["build", str(src), "--path-output", str(src)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"jupyter-book build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(src / "_build" / "html", out)
    total = time.perf_counter() - start
    summary = {"scale": scale, "pages": [p.stem for p in paths], "execute_s": round(prepared, 1),
               "reused": bool(executed),
               "total_s": round(total, 1), "chapter_s": {p.stem: round(s, 1) for p, s in zip(paths, seconds)}}
    (out / "build-info.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"site: {out}/index.html ({len(paths)} chapters at {scale}; {'copying' if executed else 'executing'} "
          f"{prepared:.0f} s, "
          f"total {total:.0f} s)")
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default=os.environ.get("GANLIB_SCALE") or "small",
                        choices=("smoke", "small", "full"), help="GANLIB_SCALE to execute at (default small)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="where the HTML goes")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds a cell may run")
    parser.add_argument("--executed", type=Path, help="render the notebooks `make test` kept here instead of "
                        "executing them (see tests/keep_executed.py)")
    parser.add_argument("--only", nargs="*", default=[], help="notebook name prefixes, e.g. 05b 10 (default all)")
    args = parser.parse_args(argv)
    build(args.out.resolve(), args.scale, args.jobs, args.timeout, args.only, args.executed)


if __name__ == "__main__":
    main()
