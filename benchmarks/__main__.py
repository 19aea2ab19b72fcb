"""Run every ``benchmarks/bench_*.py`` module's ``main()`` in name order.

``python -m benchmarks [NAME ...]`` runs only the named modules (``bench_walk`` or ``walk``);
options after the names (``python -m benchmarks hub_load --learners 1 5``) go to each named
module's ``main()`` as ``sys.argv[1:]``.
A ``main()`` that returns a non-zero int makes the run fail.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Names of the benchmark modules, sorted."""
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def run(argv: Sequence[str]) -> int:
    names = discover()
    first_opt = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    argv, options = list(argv[:first_opt]), list(argv[first_opt:])
    if argv:
        wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv]
        unknown = [w for w in wanted if w not in names]
        if unknown:
            print(
                f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(names) or '-'}",
                file=sys.stderr,
            )
            return 2
        names = wanted
    if not names:
        print("no benchmarks")
        return 0
    status = 0
    for name in names:
        module = importlib.import_module(f"{__package__ or 'benchmarks'}.{name}")
        main = getattr(module, "main", None)
        if not callable(main):
            print(f"{name}: no main() function", file=sys.stderr)
            status = 1
            continue
        print(f"==> {name}", flush=True)
        sys.argv = [f"benchmarks {name}", *options]
        result = main()
        if isinstance(result, int) and result != 0:
            print(f"{name}: main() returned {result}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
