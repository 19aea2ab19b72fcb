"""Widget responsiveness: the browser-measured median latency of each interaction against the
150 ms target.

The numbers come from tests/test_browser.py (Chromium + JupyterLab, click -> the widget's
output changes), which writes artifacts/browser/latency.json.  ``main()`` prints the latest
artefact; with ``--measure`` (or when there is none yet) it runs the browser test first.
For comparison it also times the same interactions in-process (kernel-side work only).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTEFACT = ROOT / "artifacts" / "browser" / "latency.json"
TARGET_MS = 150.0


def measure_in_browser() -> int:
    """Run the browser test (it writes the artefact); return pytest's exit status."""
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(ROOT / "tests" / "test_browser.py")], cwd=ROOT)


def _median_ms(fn: Callable[[int], object], n: int = 9) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def in_process() -> dict[str, float]:
    """The kernel-side cost of each interaction (no browser, no messaging)."""
    from atlab import load_scenarios
    from atlab.nv import Context, load_nv_scenarios
    from atlab.widgets import Decoder, NvExplorer, RegimeExplorer, WalkStepper

    smoke = {s.name: s for s in load_scenarios(ROOT / "tests/data/conformance/smoke.json")}
    nv = load_nv_scenarios(str(ROOT / "examples/nv_l1_guest_hypervisor.json"))[0]
    rx = RegimeExplorer(smoke["e_vhe_e2h1_tge0"])
    c = smoke["c_stage2"]
    st = WalkStepper(c.run_op(c.ops[0]))
    dec = Decoder()
    nx = NvExplorer(nv)
    ctx = list(Context)

    def step(i: int) -> None:
        st.position.value = (i + 1) % len(st.accesses)

    return {
        "regime: toggle TGE": _median_ms(lambda i: setattr(rx.tge, "value", (i + 1) % 2)),
        "stepper: Step (uncached frame)": _median_ms(step),
        "decoder: type PAR": _median_ms(lambda i: setattr(dec.value, "value", hex(0xB0D + i))),
        "nv: switch context": _median_ms(lambda i: setattr(nx.context, "value", ctx[i % 3])),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--measure" in argv or not ARTEFACT.exists():
        print("running tests/test_browser.py to measure in Chromium ...")
        measure_in_browser()
    ok = True
    if ARTEFACT.exists():
        report = json.loads(ARTEFACT.read_text())
        print(f"browser-measured medians ({report.get('measured', '?')}, Chromium "
              f"{report.get('browser', '?')}), target {TARGET_MS:.0f} ms:")
        for name, r in report["interactions"].items():
            verdict = "ok" if r["median_ms"] <= TARGET_MS else "SLOW"
            ok &= verdict == "ok"
            print(f"  {name:28s} median {r['median_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms"
                  f"  ({r['samples']} samples)  {verdict}")
    else:
        print("no browser measurement (Chromium or JupyterLab missing?)")
    print("in-process (kernel side only):")
    for name, ms in in_process().items():
        print(f"  {name:28s} median {ms:7.1f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
