"""Time every course notebook and exercise (student and solution copies) as CI runs them.

Issue target: all notebooks together under 3 minutes on the 2-core reference machine.  Each
notebook is executed from a fresh kernel with nbclient (as nbval does), in its own directory.
"""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 180.0


def notebooks() -> list[Path]:
    found = sorted((ROOT / "notebooks").glob("*.ipynb"))
    found += sorted((ROOT / "exercises").glob("*.ipynb"))
    found += sorted((ROOT / "exercises" / "solutions").glob("*.ipynb"))
    return [p for p in found if ".ipynb_checkpoints" not in p.parts]


def run_one(path: Path) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - t0


def main() -> int:
    rows = []
    for path in notebooks():
        rows.append((str(path.relative_to(ROOT)), run_one(path)))
    total = sum(t for _, t in rows)
    print("benchmark: notebook execution time (fresh kernel each, kernel start included)")
    for name, t in rows:
        print(f"  {name:<58} {t:6.2f} s")
    verdict = "ok" if total <= TARGET_S else "OVER"
    print(f"  {'total (' + str(len(rows)) + ' notebooks)':<58} {total:6.1f} s   "
          f"target <= {TARGET_S:.0f} s  {verdict}")
    return 0


if __name__ == "__main__":
    main()
