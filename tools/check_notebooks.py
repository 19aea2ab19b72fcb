#!/usr/bin/env python3
"""Check that atlab's notebooks are stored clean; ``--fix`` rewrites them into the clean form.

Usage: ``python tools/check_notebooks.py [--fix] [PATH ...]``. PATHs are notebooks or
directories; the default is ``notebooks/`` and ``exercises/`` at the repository root.
``.ipynb_checkpoints`` directories are skipped.

A clean notebook is nbformat 4 JSON in which:

- code cells have no outputs and ``execution_count`` null;
- the notebook metadata holds only ``kernelspec`` (exactly ``KERNELSPEC``) and, optionally,
  ``language_info`` holding only ``{"name": "python"}`` (no widget state, no personal data);
- cell metadata holds only ``tags``, a non-empty list drawn from ``ALLOWED_TAGS``.

Prints one line per problem and exits 1 if there is any, 0 otherwise. ``--fix`` clears
outputs, execution counts and metadata, then reports what it could not fix (unknown tags,
broken JSON, schema errors) the same way.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIRS = ("notebooks", "exercises")
CHECKPOINTS = ".ipynb_checkpoints"

ALLOWED_TAGS = frozenset({"sanity-check", "solution", "hide-input", "exercise", "checker"})
ALLOWED_CELL_METADATA = frozenset({"tags"})
KERNELSPEC: dict[str, str] = {"name": "python3", "display_name": "Python 3", "language": "python"}
LANGUAGE_INFO: dict[str, str] = {"name": "python"}


def find_notebooks(paths: Iterable[Path]) -> list[Path]:
    """Every ``*.ipynb`` named or found under ``paths``, outside checkpoint directories."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(
                p for p in path.rglob("*.ipynb") if CHECKPOINTS not in p.relative_to(path).parts
            )
        elif path.suffix == ".ipynb" and CHECKPOINTS not in path.parts:
            found.add(path)
    return sorted(found)


def _schema_problems(nb: dict[str, Any]) -> list[str]:
    """Problems the nbformat JSON schema finds (none if nbformat is not installed)."""
    try:
        import nbformat
    except ImportError:  # pragma: no cover - nbformat comes with both extras
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(copy.deepcopy(nb))
    except nbformat.ValidationError as exc:
        return [f"does not match the nbformat schema: {str(exc.message).splitlines()[0]}"]
    return []


def _tag_problems(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return ["metadata 'tags' is not a list of strings"]
    if not tags:
        return ["empty 'tags' list"]
    problems = [
        f"unknown tag {t!r} (allowed: {', '.join(sorted(ALLOWED_TAGS))})"
        for t in dict.fromkeys(tags)
        if t not in ALLOWED_TAGS
    ]
    if len(set(tags)) != len(tags):
        problems.append("duplicate tags")
    return problems


def problems_in(nb: Any) -> list[str]:
    """The problems of a parsed notebook, each a short sentence."""
    if not isinstance(nb, dict):
        return ["not a JSON object"]
    if nb.get("nbformat") != 4:
        return [f"nbformat is {nb.get('nbformat')!r}, want 4"]
    problems = _schema_problems(nb)

    metadata = nb.get("metadata", {})
    if not isinstance(metadata, dict):
        metadata = {}
    extra = sorted(set(metadata) - {"kernelspec", "language_info"})
    if extra:
        problems.append(f"notebook metadata has extra keys: {', '.join(extra)}")
    if metadata.get("kernelspec") != KERNELSPEC:
        problems.append(f"kernelspec is {metadata.get('kernelspec')!r}, want {KERNELSPEC!r}")
    if "language_info" in metadata and metadata["language_info"] != LANGUAGE_INFO:
        problems.append(f"language_info must be absent or exactly {LANGUAGE_INFO!r}")

    cells = nb.get("cells", [])
    needs_ids = nb.get("nbformat_minor", 0) >= 5
    ids: set[Any] = set()
    for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict):
            problems.append(f"cell {number}: not a JSON object")
            continue
        where = f"cell {number} ({cell.get('cell_type', '?')})"
        if needs_ids:
            if "id" not in cell:
                problems.append(f"{where}: no cell id")
            elif cell["id"] in ids:
                problems.append(f"{where}: duplicate cell id {cell['id']!r}")
            ids.add(cell.get("id"))
        if cell.get("cell_type") == "code":
            outputs = cell.get("outputs", [])
            if outputs:
                count = len(outputs) if isinstance(outputs, list) else "some"
                problems.append(f"{where}: has {count} output(s)")
            if cell.get("execution_count") is not None:
                problems.append(
                    f"{where}: execution_count is {cell['execution_count']!r}, want null"
                )
        cell_metadata = cell.get("metadata", {})
        if not isinstance(cell_metadata, dict):
            problems.append(f"{where}: metadata is not an object")
            continue
        extra = sorted(set(cell_metadata) - ALLOWED_CELL_METADATA)
        if extra:
            problems.append(f"{where}: metadata has extra keys: {', '.join(extra)}")
        if "tags" in cell_metadata:
            problems.extend(f"{where}: {p}" for p in _tag_problems(cell_metadata["tags"]))
    return problems


def cleaned(nb: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``nb`` in the clean form. Unknown tags are kept, so that they get reported."""
    nb = copy.deepcopy(nb)
    metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    nb["metadata"] = metadata
    ids: set[str] = set()
    needs_ids = nb.get("nbformat_minor", 0) >= 5
    for number, cell in enumerate(nb.get("cells", []), start=1):
        if not isinstance(cell, dict):
            continue
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        old = cell.get("metadata")
        new: dict[str, Any] = {}
        if isinstance(old, dict) and isinstance(old.get("tags"), list):
            tags = list(dict.fromkeys(old["tags"]))
            if tags:
                new["tags"] = tags
        cell["metadata"] = new
        if needs_ids:
            cell_id = cell.get("id")
            if not isinstance(cell_id, str) or not cell_id or cell_id in ids:
                cell_id = f"cell-{number}"
                while cell_id in ids:
                    cell_id += "x"
                cell["id"] = cell_id
            ids.add(cell_id)
    return nb


def dumps(nb: dict[str, Any]) -> str:
    """The JSON text Jupyter itself writes (nbformat.writes: indent 1, sorted keys)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_file(path: Path, fix: bool = False) -> tuple[list[str], bool]:
    """``(problems, rewritten)`` for one notebook file; ``fix`` rewrites it cleaned first."""
    try:
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"not readable as JSON: {exc}"], False
    rewritten = False
    if fix and isinstance(nb, dict) and nb.get("nbformat") == 4:
        nb = cleaned(nb)
        new_text = dumps(nb)
        if new_text != text:
            path.write_text(new_text, encoding="utf-8")
            rewritten = True
    return problems_in(nb), rewritten


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fix", action="store_true", help="rewrite notebooks into the clean form")
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="notebooks or directories (default: notebooks/ and exercises/)",
    )
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths or [ROOT / d for d in DEFAULT_DIRS]
    missing = [p for p in args.paths if not p.exists()]
    for p in missing:
        print(f"{_display(p)}: no such file or directory")
    notebooks = find_notebooks(paths)
    failed = len(missing)
    for path in notebooks:
        problems, rewritten = check_file(path, fix=args.fix)
        if rewritten:
            print(f"{_display(path)}: rewritten clean")
        for problem in problems:
            print(f"{_display(path)}: {problem}")
        failed += bool(problems)
    if failed:
        return 1
    if not notebooks:
        print("check_notebooks: no notebooks found")
    else:
        print(f"check_notebooks: {len(notebooks)} notebook(s) clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
