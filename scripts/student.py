"""Write the student version of the course: every ``solution`` cell replaced by a stub.

    python scripts/student.py            # notebooks/ -> build/student/   (what `make student` runs)
    python scripts/student.py --out DIR  # somewhere else

A ``solution`` cell (a code cell whose metadata tags include "solution") holds, in this order:

    # exercise 3.2: the WGAN-GP gradient penalty with one epsilon per sample   <- id and one-line task
    def gradient_penalty(critic, real, fake):                                 <- kept: the check cell calls it
        ...the instructor's solution...                                       <- replaced

The stub keeps the leading comment lines, any decorators, the ``def`` line(s) and a docstring if there is one, and
replaces the body by ``raise NotImplementedError("exercise 3.2: <the task>")``, so running the check cell below it
stops with that message until the learner writes the function. Every other cell is copied unchanged; outputs and
execution counts are stripped everywhere. Non-notebook files in notebooks/ are copied as they are.

Only the standard library is needed (no virtual environment, no kernel). A solution cell that does not have this
shape stops the build with a message naming the notebook and the cell.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
TASK = re.compile(r"^#\s*exercise\s+(\d+\.\d+)\s*:\s*(.+?)\s*$")
STUB_COMMENT = "# your code here, then run the check cell below"


class StudentBuildError(ValueError):
    """A solution cell the stub builder cannot turn into a stub."""


def is_solution(cell: Dict[str, Any]) -> bool:
    return cell.get("cell_type") == "code" and "solution" in cell.get("metadata", {}).get("tags", [])


def _source(cell: Dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _as_lines(text: str) -> List[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def task_of(source: str) -> Tuple[str, str]:
    """(exercise id, one-line task) from the cell's first line, ``# exercise 3.2: ...``."""
    first = source.lstrip("\n").split("\n", 1)[0]
    match = TASK.match(first)
    if not match:
        raise StudentBuildError(f"the first line must be '# exercise <chapter>.<n>: <one-line task>', got {first!r}")
    return match.group(1), match.group(2)


def stub_source(source: str) -> str:
    """The stub for one solution cell's source (see the module docstring)."""
    ex_id, task = task_of(source)
    lines = source.split("\n")
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise StudentBuildError(f"exercise {ex_id}: the solution does not parse ({e})") from None
    funcs = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(tree.body) != 1 or len(funcs) != 1:
        raise StudentBuildError(f"exercise {ex_id}: a solution cell holds exactly one function definition (after its "
                                f"comment lines) and nothing else, got {len(tree.body)} top-level statement(s)")
    func = funcs[0]
    start = min([func.lineno] + [d.lineno for d in func.decorator_list]) - 1
    head = lines[:start]
    if any(line.strip() and not line.lstrip().startswith("#") for line in head):
        raise StudentBuildError(f"exercise {ex_id}: only comment lines may come before the function")
    body = func.body
    first = body[0]
    if first.lineno == func.lineno:
        raise StudentBuildError(f"exercise {ex_id}: put the function's body on its own lines, not after the 'def ...:'")
    signature = lines[start:first.lineno - 1]
    while signature and (not signature[-1].strip() or signature[-1].lstrip().startswith("#")):
        signature.pop()  # comments between the signature and the body belong to the solution
    kept = head + signature
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        kept += lines[first.lineno - 1:first.end_lineno]  # the docstring describes the task: keep it
    indent_line = lines[first.lineno - 1]
    indent = indent_line[:len(indent_line) - len(indent_line.lstrip())]
    message = json.dumps(f"exercise {ex_id}: {task}", ensure_ascii=False)
    kept += [f"{indent}{STUB_COMMENT}", f"{indent}raise NotImplementedError({message})"]
    return "\n".join(kept)


def student_notebook(nb: Dict[str, Any], name: str = "notebook") -> Tuple[Dict[str, Any], int]:
    """A copy of ``nb`` with stubs for its solution cells and no outputs; returns it and the number of stubs."""
    out = json.loads(json.dumps(nb))
    stubs = 0
    for index, cell in enumerate(out["cells"]):
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        if is_solution(cell):
            try:
                cell["source"] = _as_lines(stub_source(_source(cell)))
            except StudentBuildError as e:
                raise StudentBuildError(f"{name}, cell {index} (id {cell.get('id', '?')}): {e}") from None
            stubs += 1
    return out, stubs


def build(src: Path = ROOT / "notebooks", out: Path = ROOT / "build" / "student",
          quiet: bool = False) -> Dict[str, int]:
    """Write the student copies of every notebook in ``src`` to ``out``; returns {notebook name: stubs}."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise StudentBuildError(f"{src} is not a folder of notebooks")
    out.mkdir(parents=True, exist_ok=True)
    written: Dict[str, int] = {}
    for path in sorted(src.iterdir()):
        if path.name.startswith(".") or path.name == "__pycache__":
            continue
        target = out / path.name
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        elif path.suffix == ".ipynb":
            raw = path.read_text(encoding="utf-8")
            nb, stubs = student_notebook(json.loads(raw), path.name)
            text = json.dumps(nb, indent=1, ensure_ascii=False) + ("\n" if raw.endswith("\n") else "")
            target.write_text(text, encoding="utf-8")
            written[path.name] = stubs
        else:
            shutil.copy2(path, target)
    for stale in out.glob("*.ipynb"):
        if not (src / stale.name).exists():
            stale.unlink()
    if not quiet:
        total = sum(written.values())
        print(f"wrote {len(written)} notebooks with {total} exercise stubs to {out}")
    return written


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT / "notebooks",
                        help="the instructor notebooks (default: notebooks/)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "student",
                        help="where to write the student copies (default: build/student/)")
    args = parser.parse_args(argv)
    try:
        build(args.src, args.out)
    except StudentBuildError as e:
        print(f"student build failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
