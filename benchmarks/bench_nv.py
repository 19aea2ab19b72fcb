"""Cost of an emulated AT for a guest hypervisor against a native AT.

Issue target: an emulated AT S1E1R from L1's vEL2 that falls back to the software walker
(L2's 4-level stage 1 read through L1's 4-level stage 2) costs <= 15x a native AT S1E1R.
"""

from __future__ import annotations

from atlab import AtOp, PhysMem, run_at
from atlab.nv import Context, NvSystem, emulate_at
from benchmarks.bench_at import VA, _regs, _s1_memory, _s2_identity
from benchmarks.bench_at import _time as _best


def main() -> None:
    native_regs = _regs(False)
    native_mem = PhysMem(_s1_memory(lambda a: a), logging=False)
    words = _s1_memory(lambda a: a)
    _s2_identity(words)
    system = NvSystem(vregs=_regs(True), l1_memory=words, context=Context.L1_VEL2)
    res = emulate_at(system, AtOp.S1E1R, VA, trace=True)
    assert res.path == "software walker" and res.par is not None and not res.par.f, res
    assert res.software is not None and res.software.trace.total_accesses == 4 + 4 * 4

    t_native = _best(lambda: run_at(AtOp.S1E1R, VA, regs=native_regs, mem=native_mem,
                                    trace=False), 2000)
    t_emul = _best(lambda: emulate_at(system, AtOp.S1E1R, VA, trace=False), 200)
    ratio = t_emul / t_native
    print("benchmark: emulated AT (nested virtualization), best of 5 runs")
    print(f"{'native AT S1E1R':<58} {t_native * 1e6:9.1f} us")
    print(f"{'emulated AT S1E1R from vEL2, software walker (4+4 levels)':<58} "
          f"{t_emul * 1e6:9.1f} us  {ratio:5.1f}x  target <=15x "
          f"{'ok' if ratio <= 15 else 'OVER'}")


if __name__ == "__main__":
    main()
