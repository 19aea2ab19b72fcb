"""The README's Python examples run, and its commands are the ones the project provides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_python_blocks_run(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(source, "README.md", "exec"), {})
    out = capsys.readouterr().out
    for comment in re.findall(r"print\(.*?\)\s*#\s*(PAR_EL1=\S+)", source):
        assert comment in out


def test_readme_names_real_make_targets() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"make (lab|test|bench|difftest)\b", README):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
