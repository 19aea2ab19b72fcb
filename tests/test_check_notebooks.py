"""tools/check_notebooks.py on tiny notebooks made in tmp_path."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "check_notebooks.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_notebooks", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cn = _load()

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def code(source: str, **extra: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": source,
    }
    cell.update(extra)
    return cell


def markdown(source: str, **extra: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": "markdown", "metadata": {}, "source": source}
    cell.update(extra)
    return cell


def notebook(cells: list[dict[str, Any]], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    for number, cell in enumerate(cells):
        cell.setdefault("id", f"c{number}")
    if metadata is None:
        metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def write(path: Path, nb: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


EXECUTED_OUTPUT = {"output_type": "stream", "name": "stdout", "text": "hello\n"}


@pytest.fixture
def clean_nb() -> dict[str, Any]:
    return notebook(
        [markdown("# Title"), code("print('hello')", metadata={"tags": ["sanity-check"]})]
    )


def test_clean_notebook_passes(tmp_path: Path, clean_nb: dict[str, Any]) -> None:
    path = write(tmp_path / "clean.ipynb", clean_nb)
    result = run(path)
    assert result.returncode == 0, result.stdout
    assert "1 notebook(s) clean" in result.stdout
    nbformat.validate(json.loads(path.read_text(encoding="utf-8")))


def test_language_info_may_be_absent(tmp_path: Path) -> None:
    nb = notebook([code("1")], metadata={"kernelspec": dict(KERNELSPEC)})
    assert run(write(tmp_path / "a.ipynb", nb)).returncode == 0


def test_outputs_fail_with_one_line_per_problem(tmp_path: Path) -> None:
    nb = notebook([code("print('hello')", outputs=[EXECUTED_OUTPUT], execution_count=3)])
    path = write(tmp_path / "dirty.ipynb", nb)
    result = run(path, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "dirty.ipynb: cell 1 (code): has 1 output(s)",
        "dirty.ipynb: cell 1 (code): execution_count is 3, want null",
    ]


def test_fix_makes_it_clean(tmp_path: Path) -> None:
    nb = notebook(
        [
            code(
                "print('hello')",
                outputs=[EXECUTED_OUTPUT],
                execution_count=1,
                metadata={
                    "tags": ["solution", "solution"],
                    "collapsed": True,
                    "ExecuteTime": {"end_time": "2025-01-01"},
                },
            ),
            markdown("text", metadata={"jp-MarkdownHeadingCollapsed": True}),
        ],
        metadata={
            "kernelspec": {"name": "myenv", "display_name": "My env", "language": "python"},
            "language_info": {"name": "python", "version": "3.11.7"},
            "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
            "authors": [{"name": "someone"}],
        },
    )
    path = write(tmp_path / "dirty.ipynb", nb)
    assert len(run(path).stdout.splitlines()) >= 6

    fixed = run("--fix", path, cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stdout
    assert "dirty.ipynb: rewritten clean" in fixed.stdout
    assert run(path).returncode == 0

    after = json.loads(path.read_text(encoding="utf-8"))
    assert after["metadata"] == {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    assert after["cells"][0]["outputs"] == []
    assert after["cells"][0]["execution_count"] is None
    assert after["cells"][0]["metadata"] == {"tags": ["solution"]}
    assert after["cells"][1]["metadata"] == {}
    assert [c["source"] for c in after["cells"]] == ["print('hello')", "text"]
    nbformat.validate(json.loads(path.read_text(encoding="utf-8")))

    # A second --fix changes nothing.
    before = path.read_bytes()
    assert run("--fix", path).returncode == 0
    assert path.read_bytes() == before


def test_fix_leaves_unknown_tags_to_a_person(tmp_path: Path) -> None:
    nb = notebook([code("1", metadata={"tags": ["sanity_check"]})])
    path = write(tmp_path / "typo.ipynb", nb)
    for args in ((path,), ("--fix", path)):
        result = run(*args)
        assert result.returncode == 1
        assert "unknown tag 'sanity_check'" in result.stdout


@pytest.mark.parametrize(
    ("cell_metadata", "message"),
    [
        ({"tags": []}, "empty 'tags' list"),
        ({"tags": "solution"}, "not a list of strings"),
        ({"editable": False}, "metadata has extra keys: editable"),
        ({"scrolled": True}, "metadata has extra keys: scrolled"),
    ],
    ids=["empty-tags", "tags-not-list", "editable", "scrolled"],
)
def test_cell_metadata_rules(cell_metadata: dict[str, Any], message: str) -> None:
    problems = cn.problems_in(notebook([code("1", metadata=cell_metadata)]))
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({}, "kernelspec is None"),
        ({"kernelspec": {**KERNELSPEC, "display_name": "Python 3 (ipykernel)"}}, "kernelspec"),
        (
            {"kernelspec": KERNELSPEC, "language_info": {"name": "python", "version": "3.11"}},
            "language_info",
        ),
        ({"kernelspec": KERNELSPEC, "widgets": {}}, "extra keys: widgets"),
    ],
    ids=["no-kernelspec", "ipykernel-display-name", "language-version", "widget-state"],
)
def test_notebook_metadata_rules(metadata: dict[str, Any], message: str) -> None:
    problems = cn.problems_in(notebook([code("1")], metadata=metadata))
    assert any(message in p for p in problems), problems


def test_cell_ids_are_required_from_nbformat_4_5(tmp_path: Path) -> None:
    nb = notebook([code("1"), code("2", id="c0")])
    del nb["cells"][0]["id"]
    nb["cells"].append(code("3", id="c0"))
    path = write(tmp_path / "ids.ipynb", nb)
    result = run(path, cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "ids.ipynb: cell 1 (code): no cell id",
        "ids.ipynb: cell 3 (code): duplicate cell id 'c0'",
    ]
    assert run("--fix", path).returncode == 0
    ids = [c["id"] for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    assert len(set(ids)) == 3 and ids[1] == "c0"


def test_every_allowed_tag_is_accepted() -> None:
    nb = notebook([code("1", metadata={"tags": sorted(cn.ALLOWED_TAGS)})])
    assert cn.problems_in(nb) == []


def test_directories_are_searched_and_checkpoints_skipped(
    tmp_path: Path, clean_nb: dict[str, Any]
) -> None:
    write(tmp_path / "notebooks" / "01_a.ipynb", clean_nb)
    write(tmp_path / "exercises" / "solutions" / "e1.ipynb", clean_nb)
    dirty = notebook([code("1", execution_count=1)])
    write(tmp_path / "notebooks" / ".ipynb_checkpoints" / "01_a-checkpoint.ipynb", dirty)
    result = run(tmp_path / "notebooks", tmp_path / "exercises")
    assert result.returncode == 0, result.stdout
    assert "2 notebook(s) clean" in result.stdout


def test_broken_json_and_old_format(tmp_path: Path) -> None:
    (tmp_path / "broken.ipynb").write_text("{not json", encoding="utf-8")
    write(
        tmp_path / "old.ipynb",
        {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []},
    )
    result = run("--fix", tmp_path, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("broken.ipynb: not readable as JSON") for line in lines)
    assert "old.ipynb: nbformat is 3, want 4" in lines


def test_missing_path_fails(tmp_path: Path) -> None:
    result = run(tmp_path / "nope.ipynb")
    assert result.returncode == 1
    assert "no such file or directory" in result.stdout
