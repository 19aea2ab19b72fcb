"""Workshop mode: Voila serves the course and renders a notebook with its outputs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("voila", reason="Voila is in the notebooks extra")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_voila_renders_the_primer_with_its_results(tmp_path: Path) -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "voila", "--no-browser", f"--port={port}",
           "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=False",
           "--strip_sources=True", str(ROOT / "notebooks")]
    env_dirs = {"JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **env_dirs})
    try:
        url = f"http://127.0.0.1:{port}/voila/render/00a_primer.ipynb"
        deadline = time.monotonic() + 90
        html = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    html = resp.read().decode("utf-8", "replace")
                break
            except OSError:
                time.sleep(0.5)
        assert "PAR_EL1=0xff00000045678b80" in html, "the first AT's PAR is not on the page"
        assert "Traceback" not in html
        assert "run_at(AtOp.S1E1R" not in html  # sources stripped for learners
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()


def test_make_workshop_target_serves_the_notebooks() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "workshop:" in makefile and "voila" in makefile and "notebooks/" in makefile
    assert shutil.which("make") is not None
