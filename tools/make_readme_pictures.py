#!/usr/bin/env python3
"""Draw the README's pictures from the library into docs/img/ (PNG, light theme).

Usage: ``python tools/make_readme_pictures.py [OUTDIR]``.  Deterministic: the same library
gives the same pictures (matplotlib metadata that carries a date is switched off).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

from atlab import load_scenarios, viz
from atlab.nv import emulate_at, load_nv_scenarios

ROOT = Path(__file__).resolve().parent.parent


def pictures() -> dict[str, object]:
    smoke = {s.name: s for s in load_scenarios(ROOT / "tests/data/conformance/smoke.json")}
    flat = smoke["a_el1_4k_48bit"]
    walk = flat.run_op(flat.ops[0])
    s2 = smoke["c_stage2"]
    nested = s2.run_op(s2.ops[0])
    fault = s2.run_op(s2.ops[4])
    nv = load_nv_scenarios(str(ROOT / "examples/nv_l1_guest_hypervisor.json"))[0]
    first = emulate_at(nv.system(), nv.ops[0].op, nv.ops[0].va)
    return {
        "va_fields.png": viz.va_fields(walk.va),
        "walk_s1.png": viz.walk_chain(walk.trace),
        "nested_grid.png": viz.nested_grid(nested.trace, current=5),
        "par_fields.png": viz.par_fields(fault.par),
        "nv_route.png": viz.nv_route(first),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in pictures().items():
        path = out / name
        fig.savefig(path, format="png", dpi=100, facecolor=fig.get_facecolor(),
                    metadata={"Software": None})
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
