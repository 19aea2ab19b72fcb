"""Notebook kernels (nbval, ``--nbval-current-env``) are separate processes that import
``atlab`` from wherever the interpreter finds it first: with an editable install of another
checkout (a git worktree, say) that is the other checkout's code.  Put this checkout first on
their PYTHONPATH, as ``pythonpath = ["."]`` does for the pytest process itself."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)
