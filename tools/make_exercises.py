#!/usr/bin/env python3
"""Generate the student copies of the exercises from the solution notebooks.

Usage: ``python tools/make_exercises.py [--check] [--solutions DIR] [--out DIR]``.

The solution notebooks ``exercises/solutions/NN_name.ipynb`` are the source; each is written
to ``exercises/NN_name.ipynb`` with its ``solution``-tagged cells replaced:

- a ``solution`` code cell that holds the stub marker line ``# --- solution ---`` keeps every
  line above the marker (imports, constants, the ``def`` line with its signature and
  docstring) and gets, at the marker's indentation, ``raise NotImplementedError`` in place of
  everything from the marker down; its tag becomes ``exercise``.  When the set-up cells
  import names that only the solution used, the stub also gets a first line
  ``# ruff: noqa: F401`` (those imports are there for the learner's solution);
- a ``solution`` cell without the marker (e.g. ``assert result.ok``, which checks that the
  reference solution passes its checker) is left out of the student copy.

Every other cell is copied unchanged, so a cell outside the solution must not call the
learner's function (a checker cell calls it, and reports an untouched stub as "not
attempted").  The output is stored clean (``tools/check_notebooks.py``), and the same
solutions always give the same bytes.

``--check`` writes nothing: it exits 1 when a student copy is missing, stale (differs from
what would be generated), or has no solution notebook; 0 otherwise.  A malformed solution
cell (no marker in a code cell that defines the task, two markers) exits 2.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from tools.check_notebooks import cleaned, dumps  # noqa: E402

MARKER = "# --- solution ---"
STUB = "raise NotImplementedError  # write your solution here, then run the checker cell"
#: First line of a stub cell: ruff must not report the imports only the solution used.
LINT_LINE = "# ruff: noqa: F401"
SOLUTIONS = ROOT / "exercises" / "solutions"
OUT = ROOT / "exercises"


class ExerciseError(Exception):
    """A solution notebook that cannot be turned into a student copy."""


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def stub_source(source: str, *, where: str = "cell") -> str | None:
    """The student version of a solution cell's source; None if the cell is dropped."""
    lines = source.split("\n")
    marks = [i for i, line in enumerate(lines) if line.strip() == MARKER]
    if not marks:
        return None
    if len(marks) > 1:
        raise ExerciseError(f"{where}: {len(marks)} '{MARKER}' lines, want one")
    i = marks[0]
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    if not indent:
        raise ExerciseError(f"{where}: '{MARKER}' must be inside the function body")
    return "\n".join([*lines[:i], indent + STUB])


def _has_unused_imports(sources: list[str]) -> bool:
    """Whether the code cells import a name that none of them uses (what ruff's F401 sees)."""
    imported: set[str] = set()
    used: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    imported.add((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, ast.Name):
                used.add(node.id)
    return bool(imported - used)


def student_notebook(nb: dict[str, Any], *, name: str = "notebook") -> dict[str, Any]:
    """The student copy of a solution notebook (a new object; ``nb`` is not changed)."""
    out = copy.deepcopy(nb)
    cells = []
    for number, cell in enumerate(out.get("cells", []), start=1):
        tags = list(cell.get("metadata", {}).get("tags", []))
        if "solution" not in tags:
            cells.append(cell)
            continue
        where = f"{name}: cell {number}"
        if cell.get("cell_type") != "code":
            continue  # solution prose: left out
        stub = stub_source(_source(cell), where=where)
        if stub is None:
            continue
        cell["source"] = stub
        new_tags = ["exercise" if t == "solution" else t for t in tags]
        cell["metadata"]["tags"] = list(dict.fromkeys(new_tags))
        cells.append(cell)
    stubs = [c for c in cells if "exercise" in c.get("metadata", {}).get("tags", [])
             and MARKER not in _source(c) and _source(c).rstrip().endswith(STUB)]
    if not stubs:
        raise ExerciseError(f"{name}: no solution cell with a '{MARKER}' line")
    code = [_source(c) for c in cells if c.get("cell_type") == "code"]
    if _has_unused_imports(code):
        stubs[0]["source"] = LINT_LINE + "\n" + _source(stubs[0])
    out["cells"] = cells
    return cleaned(out)


def generate(solutions: Path, out: Path) -> dict[Path, str]:
    """``{student copy path: text}`` for every solution notebook."""
    result: dict[Path, str] = {}
    for path in sorted(solutions.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        result[out / path.name] = dumps(student_notebook(nb, name=path.name))
    return result


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a committed student copy is missing or stale")
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    try:
        wanted = generate(args.solutions, args.out)
    except (ExerciseError, json.JSONDecodeError, OSError) as exc:
        print(f"make_exercises: {exc}", file=sys.stderr)
        return 2
    if not wanted:
        print(f"make_exercises: no solution notebooks in {_rel(args.solutions)}",
              file=sys.stderr)
        return 2
    orphans = sorted(set(args.out.glob("[0-9][0-9]_*.ipynb")) - set(wanted))
    if args.check:
        problems = []
        for path, text in wanted.items():
            if not path.exists():
                problems.append(f"{_rel(path)}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{_rel(path)}: stale (differs from its solution notebook)")
        problems += [f"{_rel(p)}: no solution notebook" for p in orphans]
        for problem in problems:
            print(problem)
        if problems:
            print("make_exercises: run `python tools/make_exercises.py` to regenerate")
            return 1
        print(f"make_exercises: {len(wanted)} student copies up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for path, text in wanted.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {_rel(path)}")
    for path in orphans:
        print(f"{_rel(path)}: no solution notebook (not removed)")
    print(f"make_exercises: {len(wanted)} student copies generated")
    return 1 if orphans else 0


if __name__ == "__main__":
    sys.exit(main())
