"""The packaging files agree with each other, and CI runs the README's test command."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}
# Lock files whose tools record where each package was downloaded from.
LOCK_FILE_PATTERNS = (
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "pylock.toml",
    "pylock.*.toml",
    "conda-lock.yml",
    "*.conda-lock.yml",
    "package-lock.json",
    "requirements*.lock",
    "requirements*.txt",
)


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def requirement_map(requirements: list[str]) -> dict[str, str]:
    """``{normalised name: specifier}``; fails on a name listed twice."""
    result: dict[str, str] = {}
    for text in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name not in result, f"{req.name} listed twice"
        result[name] = str(req.specifier)
    return result


def pyproject_requirements() -> list[str]:
    project = pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs.extend(extra)
    return reqs


def environment_pip_list() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert env["name"] == "atlab"
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml needs exactly one pip: section"
    assert "python=3.11" in env["dependencies"]
    assert "pip" in env["dependencies"]
    return [str(item) for item in pip_lists[0]]


def test_environment_yml_names_the_same_dependencies_as_pyproject() -> None:
    pip_list = environment_pip_list()
    assert "-e ." in pip_list, "environment.yml must install atlab itself with '-e .'"
    conda = requirement_map([r for r in pip_list if not r.startswith("-")])
    pip = requirement_map(pyproject_requirements())
    assert set(conda) == set(pip)
    assert conda == pip, "version specifiers differ"


def test_pyproject_metadata() -> None:
    data = pyproject()
    project = data["project"]
    assert project["name"] == "atlab"
    assert project["requires-python"] == ">=3.11"
    assert requirement_map(project["dependencies"]) == {"pyyaml": ">=6"}
    assert set(project["optional-dependencies"]) == {"notebooks", "dev", "hub"}
    assert project["scripts"] == {"atlab": "atlab.cli:main"}
    assert data["tool"]["setuptools"]["packages"]["find"]["include"] == ["atlab*"]
    assert "py.typed" in data["tool"]["setuptools"]["package-data"]["atlab"]
    assert (ROOT / "atlab" / "py.typed").is_file()


def repo_files() -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        files.extend(Path(dirpath, name) for name in filenames)
    return files


def test_no_lock_file_records_registry_addresses() -> None:
    offenders = []
    for path in repo_files():
        if any(path.match(pattern) for pattern in LOCK_FILE_PATTERNS):
            text = path.read_text(encoding="utf-8", errors="replace")
            if re.search(r"[a-z][a-z0-9+.-]*://", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"lock files recording download addresses: {offenders}"


def readme_commands() -> list[str]:
    """The commands in the README's fenced shell blocks, comments stripped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^```(?:sh|bash|console)?\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command:
                commands.append(command)
    return commands


def ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_the_readme_test_command_last() -> None:
    test_commands = [c for c in readme_commands() if c.split()[:2] == ["make", "test"]]
    assert test_commands == ["make test"], test_commands
    commands = ci_commands()
    assert commands[-1].removeprefix("exec ") == test_commands[0]


def test_readme_lab_command_is_a_make_target() -> None:
    assert "make lab" in readme_commands()
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("lab", "test", "bench", "difftest", "clean"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no {target} target"


def test_ci_script_is_strict_posix_sh() -> None:
    path = ROOT / ".ci" / "run"
    assert os.access(path, os.X_OK), ".ci/run must be executable"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/bin/sh"
    assert "set -eu" in ci_commands()
    assert "tools/install-system-deps.sh" in "\n".join(ci_commands())


@pytest.mark.parametrize("name", ["Makefile", ".ci/run", "tools/install-system-deps.sh"])
def test_no_step_hides_its_failure(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    assert "|| true" not in text and "|| :" not in text
