"""What a translation through the TLB model costs, against a plain AT.

No target in the issue: these figures tell a notebook author how many lookups a cell can
afford.  A leaf hit replays the cached walk (same code as ``run_at``, on the cached words); a
miss walks with the trace on (the TLB fills from it) and allocates; a walk cache hit reads
only the last level.
"""

from __future__ import annotations

from atlab import AtOp, PhysMem, run_at
from atlab.tlb import Tlb, TlbiOp, TlbPolicy
from benchmarks.bench_at import VA, _regs, _s1_memory
from benchmarks.bench_at import _time as _best


def main() -> None:
    regs = _regs(False)
    mem = PhysMem(_s1_memory(lambda a: a), logging=False)
    full = Tlb().translate(AtOp.S1E1R, VA, regs=regs, mem=mem).tlb
    walks_only = full.tlbi(TlbiOp.VALE1, regs=regs, va=VA, asid=0).tlb
    assert full.translate(AtOp.S1E1R, VA, regs=regs, mem=mem).hit
    look = walks_only.translate(AtOp.S1E1R, VA, regs=regs, mem=mem)
    assert not look.hit and [u.level for u in look.used] == [2], look

    cases = [
        ("run_at AT S1E1R, trace on (the reference)",
         lambda: run_at(AtOp.S1E1R, VA, regs=regs, mem=mem), 2000),
        ("TLB leaf hit (the cached walk replayed)",
         lambda: full.translate(AtOp.S1E1R, VA, regs=regs, mem=mem), 1000),
        ("TLB miss, walk cache hit at level 2 (one read), fill",
         lambda: walks_only.translate(AtOp.S1E1R, VA, regs=regs, mem=mem), 1000),
        ("TLB miss, empty TLB (4 reads), fill leaf + 3 walk entries",
         lambda: Tlb().translate(AtOp.S1E1R, VA, regs=regs, mem=mem), 1000),
        ("TLB miss, leaves only (no walk cache), fill",
         lambda: Tlb(policy=TlbPolicy(walk_cache=False)).translate(
             AtOp.S1E1R, VA, regs=regs, mem=mem), 1000),
        ("TLBI VAE1 on a 4-entry TLB",
         lambda: full.tlbi(TlbiOp.VAE1, regs=regs, va=VA), 2000),
    ]
    print("benchmark: the TLB model (4KB granule, 4 levels), best of 5 runs")
    base = 0.0
    for name, fn, n in cases:
        t = _best(fn, n)
        base = base or t
        print(f"{name:<58} {t * 1e6:8.1f} us  {t / base:5.1f}x")


if __name__ == "__main__":
    main()
