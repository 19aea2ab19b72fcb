"""The exercise notebooks and their generator (tools/make_exercises.py).

The notebooks themselves also run under nbval (``pytest exercises``); these tests check the
generator (deterministic, ``--check`` catches stale copies) and run each notebook's code
in-process to assert what its checker cell reports: "not attempted" for the student copy,
a pass for the solution."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from atlab.checks import EXERCISES, Status
from tools import make_exercises as mk

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "exercises" / "solutions"
STUDENT = ROOT / "exercises"
NAMES = sorted(p.stem for p in SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))


def _nb(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _run_cells(nb: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Execute the notebook's code cells in one namespace; (namespace, stdout)."""
    ns: dict[str, Any] = {"__name__": "__exercise__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                exec(compile(mk._source(cell), "<cell>", "exec"), ns)
    return ns, out.getvalue()


def test_every_exercise_in_the_catalogue_has_a_notebook() -> None:
    assert len(NAMES) >= 12
    assert sorted(EXERCISES) == NAMES


def test_committed_student_copies_are_current() -> None:
    assert mk.main(["--check"]) == 0


def test_generator_is_deterministic() -> None:
    first = mk.generate(SOLUTIONS, STUDENT)
    second = mk.generate(SOLUTIONS, STUDENT)
    assert first == second and len(first) == len(NAMES)
    for path, text in first.items():
        assert path.read_text(encoding="utf-8") == text


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    solutions, out = tmp_path / "solutions", tmp_path / "out"
    shutil.copytree(SOLUTIONS, solutions)
    assert mk.main(["--solutions", str(solutions), "--out", str(out)]) == 0
    return solutions, out


def test_check_fails_on_a_stale_copy(tree: tuple[Path, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    solutions, out = tree
    args = ["--check", "--solutions", str(solutions), "--out", str(out)]
    assert mk.main(args) == 0
    path = solutions / f"{NAMES[0]}.ipynb"
    nb = _nb(path)
    nb["cells"][0]["source"] += "\n\nA sentence added to the solution."
    path.write_text(json.dumps(nb), encoding="utf-8")
    capsys.readouterr()
    assert mk.main(args) == 1
    assert f"{NAMES[0]}.ipynb: stale" in capsys.readouterr().out
    assert mk.main(["--solutions", str(solutions), "--out", str(out)]) == 0
    assert mk.main(args) == 0


def test_check_fails_on_missing_and_orphan_copies(tree: tuple[Path, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    solutions, out = tree
    args = ["--check", "--solutions", str(solutions), "--out", str(out)]
    (out / f"{NAMES[1]}.ipynb").unlink()
    shutil.copy(out / f"{NAMES[0]}.ipynb", out / "99_orphan.ipynb")
    capsys.readouterr()
    assert mk.main(args) == 1
    text = capsys.readouterr().out
    assert f"{NAMES[1]}.ipynb: missing" in text and "99_orphan.ipynb: no solution" in text


def test_stub_source_keeps_signature_and_docstring() -> None:
    src = ('import math\n\n\ndef f(x: int) -> int:\n    """Doc."""\n    # --- solution ---\n'
           '    return math.isqrt(x)\n')
    assert mk.stub_source(src) == ('import math\n\n\ndef f(x: int) -> int:\n    """Doc."""\n'
                                   f"    {mk.STUB}")
    assert mk.stub_source("assert result.ok") is None
    with pytest.raises(mk.ExerciseError, match="want one"):
        mk.stub_source("def f():\n    # --- solution ---\n    # --- solution ---\n")
    with pytest.raises(mk.ExerciseError, match="inside the function body"):
        mk.stub_source("# --- solution ---\nx = 1\n")


def test_notebook_without_a_marked_solution_is_an_error(tmp_path: Path) -> None:
    nb = _nb(SOLUTIONS / f"{NAMES[0]}.ipynb")
    nb["cells"] = [c for c in nb["cells"] if "solution" not in _tags(c)]
    (tmp_path / "01_x.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    assert mk.main(["--check", "--solutions", str(tmp_path), "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("name", NAMES)
def test_notebook_structure(name: str) -> None:
    ex = EXERCISES[name]
    solution, student = _nb(SOLUTIONS / f"{name}.ipynb"), _nb(STUDENT / f"{name}.ipynb")
    first = solution["cells"][0]
    assert first["cell_type"] == "markdown" and first["source"].startswith("# Exercise ")
    for heading in ("**Objectives.**", "**Prerequisites.**", "**Arm ARM sections.**"):
        assert heading in first["source"]
    marked = [c for c in solution["cells"] if mk.MARKER in mk._source(c)]
    assert len(marked) == 1 and _tags(marked[0]) == ["solution"]
    assert f"def {ex.name}(" in mk._source(marked[0])
    checkers = [c for c in solution["cells"] if "checker" in _tags(c)]
    assert [mk._source(c) for c in checkers] == [f"result = check_{ex.name}({ex.name})"]
    text = json.dumps(student)
    assert mk.MARKER not in text and '"solution"' not in text
    body = mk._source(marked[0]).split(mk.MARKER, 1)[1].strip().splitlines()
    assert body[0] not in text  # the answer does not leak into the student copy
    exercise_cells = [c for c in student["cells"] if "exercise" in _tags(c)]
    assert len(exercise_cells) == 1 and mk._source(exercise_cells[0]).endswith(mk.STUB)


@pytest.mark.parametrize("name", NAMES)
def test_student_copy_reports_not_attempted(name: str) -> None:
    ns, printed = _run_cells(_nb(STUDENT / f"{name}.ipynb"))
    assert ns["result"].status is Status.NOT_ATTEMPTED
    assert f"{EXERCISES[name].name}: not attempted" in printed


@pytest.mark.parametrize("name", NAMES)
def test_solution_passes_its_checker(name: str) -> None:
    ns, printed = _run_cells(_nb(SOLUTIONS / f"{name}.ipynb"))
    assert ns["result"].status is Status.PASSED, printed
    assert f"✓ {EXERCISES[name].name}: all cases pass" in printed
