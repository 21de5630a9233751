"""The exercises in the notebooks and the student build (scripts/student.py, `make student`).

No kernel is started: the exercise cells are pure functions of torch, so their sources are exec'd in a fresh
namespace, as the notebook would run them.
"""
import ast
import json
import re
from pathlib import Path

import pytest

from ganlib.exercises import EXERCISES
import repo_files

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = {n: next(NOTEBOOKS.glob(f"{n:02d}_*.ipynb")) for n in range(1, 11)}


def _load_script():
    return repo_files.load("scripts/student.py", "student_build")


student = _load_script()


def source(cell):
    return "".join(cell["source"])


def read(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def exercise_section(nb):
    """Index of the '## Exercises' cell and the list of cells from there to the end of the section."""
    start = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"
                 and source(c).startswith("## Exercises"))
    end = start + 1
    while end < len(nb["cells"]) and nb["cells"][end].get("id", "").startswith("ex-"):
        end += 1
    return start, nb["cells"][start:end]


def exercises_of(nb):
    """[(exercise id, task, solution cell, check cell)] in notebook order."""
    cells = nb["cells"]
    found = []
    for i, cell in enumerate(cells):
        if student.is_solution(cell):
            ex_id, task = student.task_of(source(cell))
            found.append((ex_id, task, cell, cells[i + 1]))
    return found


def setup_sources(nb):
    """The section's code cells that are neither a solution nor a check: the imports the exercises need."""
    _, section = exercise_section(nb)
    solutions = {id(s) for _, _, s, _ in exercises_of(nb)}
    checks = {id(c) for _, _, _, c in exercises_of(nb)}
    return [source(c) for c in section if c["cell_type"] == "code" and id(c) not in solutions | checks]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = student.build(NOTEBOOKS, out, quiet=True)
    return out, written


# --- the exercises in the instructor notebooks --------------------------------------------------------

@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_each_chapter_ends_with_its_exercises_each_followed_by_its_check(chapter):
    nb = read(CHAPTERS[chapter])
    start, section = exercise_section(nb)
    rest = nb["cells"][start + len(section):]
    assert rest and "takeaway" in source(rest[-1]).lower()
    assert all(c["cell_type"] == "code" and "time.time()" in source(c) for c in rest[:-1]), \
        "after the exercises come only the timing cell (if any) and the takeaway"
    found = exercises_of(nb)
    expected = sorted((e for e in EXERCISES.values() if e.chapter == chapter), key=lambda e: e.id)
    assert [ex_id for ex_id, *_ in found] == [e.id for e in expected]
    assert 2 <= len(found) <= 3
    in_section = {id(c) for c in section}
    for (ex_id, task, solution, check), exercise in zip(found, expected):
        assert id(solution) in in_section and id(check) in in_section
        assert task and len(task) < 120
        assert solution["metadata"] == {"tags": ["solution"]}
        assert source(check) == f"from ganlib.exercises import {exercise.check_name}\n" \
                                f"{exercise.check_name}({exercise.function})"
        tree = ast.parse(source(solution))
        assert [n.name for n in tree.body] == [exercise.function]
    for cell in section:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cell["id"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert "make student" in source(section[0]) and "build/student" in source(section[0])


def test_cell_ids_are_unique_in_every_notebook():
    for path in CHAPTERS.values():
        ids = [c["id"] for c in read(path)["cells"]]
        assert len(ids) == len(set(ids)), path.name


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_solutions_do_not_rebind_a_name_the_notebook_already_uses(chapter):
    nb = read(CHAPTERS[chapter])
    start, _ = exercise_section(nb)
    bound = set()
    for cell in nb["cells"][:start]:
        if cell["cell_type"] != "code":
            continue
        text = "\n".join(line for line in source(cell).split("\n") if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                bound.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    names = {e.function for e in EXERCISES.values() if e.chapter == chapter}
    assert not names & bound


@pytest.mark.parametrize("ex_id", sorted(EXERCISES, key=lambda k: tuple(map(int, k.split(".")))))
def test_the_shipped_solution_passes_its_check(ex_id, capsys):
    exercise = EXERCISES[ex_id]
    nb = read(CHAPTERS[exercise.chapter])
    _, _, solution, check = next(e for e in exercises_of(nb) if e[0] == ex_id)
    namespace = {}
    for setup in setup_sources(nb):
        exec(compile(setup, "<setup>", "exec"), namespace)
    exec(compile(source(solution), f"<solution {ex_id}>", "exec"), namespace)
    exec(compile(source(check), f"<check {ex_id}>", "exec"), namespace)
    assert capsys.readouterr().out.startswith(f"✓ exercise {ex_id} (")


# --- the student build --------------------------------------------------------------------------------

def test_the_build_writes_every_notebook_with_one_stub_per_exercise(built):
    out, written = built
    assert sorted(written) == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert sum(written.values()) == len(EXERCISES)
    for chapter, path in CHAPTERS.items():
        assert written[path.name] == sum(e.chapter == chapter for e in EXERCISES.values())


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_every_other_cell_is_identical_and_outputs_are_stripped(built, name):
    out, _ = built
    teacher, pupil = read(NOTEBOOKS / name), read(out / name)
    assert {k: v for k, v in pupil.items() if k != "cells"} == {k: v for k, v in teacher.items() if k != "cells"}
    assert len(pupil["cells"]) == len(teacher["cells"])
    for t, s in zip(teacher["cells"], pupil["cells"]):
        if s["cell_type"] == "code":
            assert s["outputs"] == [] and s["execution_count"] is None
        if student.is_solution(t):
            assert {k: v for k, v in s.items() if k != "source"} == {k: v for k, v in t.items() if k != "source"}
            assert source(s) != source(t)
        else:
            assert s == t


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_no_solution_code_survives(built, chapter):
    out, _ = built
    teacher, pupil = read(CHAPTERS[chapter]), read(out / CHAPTERS[chapter].name)
    others = "\n".join(source(c) for c in teacher["cells"] if not student.is_solution(c))
    pupil_text = "\n".join(source(c) for c in pupil["cells"])
    checked = 0
    for ex_id, _, solution, _ in exercises_of(teacher):
        text = source(solution)
        func = ast.parse(text).body[0]
        body_lines = text.split("\n")[func.body[0].lineno - 1:]
        distinctive = [ln.strip() for ln in body_lines if len(ln.strip()) >= 8 and ln.strip() not in others]
        assert distinctive, f"exercise {ex_id}: no distinctive solution line to look for"
        for line in distinctive:
            assert line not in pupil_text, f"exercise {ex_id}: solution line {line!r} survived the student build"
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize("ex_id", sorted(EXERCISES, key=lambda k: tuple(map(int, k.split(".")))))
def test_a_stub_then_its_check_stops_with_the_stub_s_message(built, ex_id):
    out, _ = built
    exercise = EXERCISES[ex_id]
    pupil = read(out / CHAPTERS[exercise.chapter].name)
    _, task, stub, check = next(e for e in exercises_of(pupil) if e[0] == ex_id)
    assert f"def {exercise.function}(" in source(stub)
    namespace = {}
    for setup in setup_sources(pupil):
        exec(compile(setup, "<setup>", "exec"), namespace)
    exec(compile(source(stub), f"<stub {ex_id}>", "exec"), namespace)
    with pytest.raises(NotImplementedError) as info:
        exec(compile(source(check), f"<check {ex_id}>", "exec"), namespace)
    assert type(info.value) is NotImplementedError
    assert str(info.value) == f"exercise {ex_id}: {task}"


def test_stub_keeps_comments_decorators_signature_and_docstring():
    solution = ('# exercise 9.9: add two numbers\n# (a second comment)\n@staticmethod\ndef add(a,\n        b=1):\n'
                '    """Return a + b."""\n    # a hint that is part of the solution\n'
                '    total = a + b\n    return total')
    stub = student.stub_source(solution)
    assert stub == ('# exercise 9.9: add two numbers\n# (a second comment)\n@staticmethod\ndef add(a,\n        b=1):\n'
                    '    """Return a + b."""\n    ' + student.STUB_COMMENT + '\n'
                    '    raise NotImplementedError("exercise 9.9: add two numbers")')
    assert "total" not in stub


@pytest.mark.parametrize("bad, says", [
    ("def f(x):\n    return x", "first line must be"),
    ("# exercise 1.1: two\ndef f(x):\n    return x\ndef g(x):\n    return x", "exactly one function"),
    ("# exercise 1.1: code before\nimport math\ndef f(x):\n    return x", "exactly one function"),
    ("# exercise 1.1: one line\ndef f(x): return x", "own lines"),
    ("# exercise 1.1: broken\ndef f(x:\n    return x", "does not parse"),
])
def test_a_solution_cell_the_builder_cannot_stub_is_refused_with_a_reason(bad, says):
    with pytest.raises(student.StudentBuildError, match=says):
        student.stub_source(bad)


def test_the_command_line_and_make_target(tmp_path, capsys):
    assert student.main(["--out", str(tmp_path / "s")]) == 0
    assert "exercise stubs" in capsys.readouterr().out
    (tmp_path / "s" / "stale.ipynb").write_text("{}")
    assert student.main(["--out", str(tmp_path / "s")]) == 0
    assert not (tmp_path / "s" / "stale.ipynb").exists()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^student:\n\t\$\(PYTHON\) scripts/student.py$", makefile, re.M)
    assert re.search(r"^\.PHONY:.*\bstudent\b", makefile, re.M)
