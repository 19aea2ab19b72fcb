"""Each learner's own copy of the course, made (or topped up) on every spawn.

The learner's home gets ``notebooks/`` and ``exercises/`` (the student copies; the worked
answers in ``exercises/solutions/`` only when asked) and the data files the chapters read
through ``ROOT = Path("..")`` (``examples/``, ``tests/data/``).  A file the learner already has
is never written: their edits, and files they deleted and re-created, survive a restart of
their server or of the hub; a chapter added to the course later appears on the next spawn.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

#: (directory in the repository, copied into the learner's home under the same name)
COURSE_DIRS = ("notebooks", "exercises", "examples", "tests/data")
_SKIP_NAMES = {"__pycache__", ".ipynb_checkpoints"}

#: JupyterLab settings for every learner: no news/update pop-up in the room (nothing to fetch
#: on a workshop network) and every cell rendered, so widgets below the fold are live.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def course_files(root: Path, *, solutions: bool = False) -> list[Path]:
    """The course's files, relative to ``root``, sorted."""
    out: list[Path] = []
    for top in COURSE_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            rel = path.relative_to(root)
            if any(part in _SKIP_NAMES for part in rel.parts) or not path.is_file():
                continue
            if not solutions and rel.parts[:2] == ("exercises", "solutions"):
                continue
            out.append(rel)
    return sorted(out)


def copy_course(root: Path, home: Path, *, solutions: bool = False) -> list[Path]:
    """Copy every course file the learner does not have yet into ``home``; return those
    copied (relative paths).  Never overwrites, never deletes."""
    copied: list[Path] = []
    for rel in course_files(root, solutions=solutions):
        dest = home / rel
        if dest.exists() or dest.is_symlink():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, dest)
        copied.append(rel)
    settings = home / ".jupyter" / "lab" / "user-settings"
    for rel_name, content in LAB_SETTINGS.items():
        path = settings / rel_name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content), encoding="utf-8")
    return copied


def main(argv: list[str]) -> int:
    """``python -m tools.hub.course DEST [--solutions]``: the course as a learner's home gets
    it (the z2jh image bakes it into /srv/course; docs/z2jh/Dockerfile)."""
    args = [a for a in argv if a != "--solutions"]
    if len(args) != 1:
        print("usage: python -m tools.hub.course DEST [--solutions]", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[2]
    copied = copy_course(root, Path(args[0]), solutions="--solutions" in argv)
    print(f"{len(copied)} file(s) copied to {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
