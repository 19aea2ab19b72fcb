"""Cost of one AT instruction, against a bare 4-level dictionary walk timed in the same run.

Issue targets: AT S1E1R (4KB granule, 4 levels, success) <= 10x the bare walk with the trace
off and <= 25x with it on; AT S12E1R (4-level stage 1 x 4-level stage 2, 24 descriptor reads)
<= 8x a stage-1-only AT S1E1R.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from atlab import AtOp, PhysMem, SysRegs, run_at

VA = 0x0000_1234_5678_9ABC
TABLES = 0x4020_0000
S2_TABLES = 0x4030_0000


def _s1_memory(ipa_of: Callable[[int], int]) -> dict[int, int]:
    """A 4-level 4KB stage 1 mapping VA -> 0x45678000; table addresses pass through
    ``ipa_of`` so the same layout serves under an identity-like stage 2."""
    words = {}
    base = TABLES
    for level in range(4):
        index = (VA >> (39 - 9 * level)) & 0x1FF
        if level < 3:
            nxt = TABLES + 0x1000 * (level + 1)
            words[base + 8 * index] = ipa_of(nxt) | 0b11
            base = nxt
        else:
            words[base + 8 * index] = 0x45678000 | 0x703
    return words


def _regs(stage2: bool) -> SysRegs:
    regs = {"HCR_EL2": 0x80000000 | (1 if stage2 else 0), "MAIR_EL1": 0xFF,
            "TCR_EL1": 0x5_0080_3510, "TTBR0_EL1": TABLES, "SCTLR_EL1": 0x30D00801}
    if stage2:
        # VTCR_EL2: T0SZ=16 (48-bit IPA), SL0=2 (start at level 0), 4KB, PS=48 bits.
        regs.update({"VTCR_EL2": 0x8005_3590, "VTTBR_EL2": S2_TABLES})
    return SysRegs.from_mapping(regs)


def _s2_identity(words: dict[int, int]) -> None:
    """A 4-level identity stage 2 for the 2 MB regions the walk touches (4KB pages)."""
    pages = {pa & ~0xFFF for pa in words} | {0x45678000}
    nxt = S2_TABLES + 0x1000
    tables: dict[tuple[int, int], int] = {}
    for page in sorted(pages):
        base = S2_TABLES
        for level in range(4):
            index = (page >> (39 - 9 * level)) & 0x1FF
            if level < 3:
                key = (level, page >> (39 - 9 * level))
                if key not in tables:
                    tables[key] = nxt
                    nxt += 0x1000
                words[base + 8 * index] = tables[key] | 0b11
                base = tables[key]
            else:
                words[base + 8 * index] = page | 0x7FF & ~0x3 | 0b11  # AF, S2AP=11, MemAttr=1111


def bare_walk(tables: dict[int, dict[int, int]], va: int) -> int:
    """The baseline: four dictionary lookups and shifts, no checks."""
    entry = 0
    table = 0
    for level in range(4):
        entry = tables[table][(va >> (39 - 9 * level)) & 0x1FF]
        table = entry & 0xFFFF_FFFF_F000
    return table | (va & 0xFFF)


def _time(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def main() -> None:
    tables = {0: {(VA >> 39) & 0x1FF: 0x1000}, 0x1000: {(VA >> 30) & 0x1FF: 0x2000},
              0x2000: {(VA >> 21) & 0x1FF: 0x3000}, 0x3000: {(VA >> 12) & 0x1FF: 0x45678000}}
    assert bare_walk(tables, VA) == 0x45678ABC
    s1_regs = _regs(False)
    s1_mem = PhysMem(_s1_memory(lambda a: a), logging=False)
    s12_words = _s1_memory(lambda a: a)
    _s2_identity(s12_words)
    s12_regs = _regs(True)
    s12_mem = PhysMem(s12_words, logging=False)
    res = run_at(AtOp.S1E1R, VA, regs=s1_regs, mem=s1_mem, trace=False)
    assert res.par is not None and res.par.pa == 0x45678000, res
    res2 = run_at(AtOp.S12E1R, VA, regs=s12_regs, mem=s12_mem, trace=True)
    assert res2.par is not None and res2.par.pa == 0x45678000 and not res2.par.f, res2
    accesses = res2.trace.total_accesses

    n = 20000
    t_bare = _time(lambda: bare_walk(tables, VA), n)
    t_off = _time(lambda: run_at(AtOp.S1E1R, VA, regs=s1_regs, mem=s1_mem, trace=False), n // 4)
    t_on = _time(lambda: run_at(AtOp.S1E1R, VA, regs=s1_regs, mem=s1_mem, trace=True), n // 4)
    t_s12 = _time(lambda: run_at(AtOp.S12E1R, VA, regs=s12_regs, mem=s12_mem, trace=False),
                  n // 10)
    rows = [
        ("bare 4-level dict walk", t_bare, 1.0, None),
        ("AT S1E1R, trace off", t_off, t_off / t_bare, 10.0),
        ("AT S1E1R, trace on", t_on, t_on / t_bare, 25.0),
        (f"AT S12E1R 4x4 levels ({accesses} reads), trace off", t_s12, t_s12 / t_off, 8.0),
    ]
    print("benchmark: AT cost (best of 5 runs)")
    print(f"{'case':<48} {'us/op':>8} {'ratio':>7} {'target':>7}")
    for name, t, ratio, target in rows:
        base = "(vs S1E1R)" if "S12" in name else ""
        tgt = f"<={target:.0f}x" if target else ""
        ok = "" if target is None else ("  ok" if ratio <= target else "  OVER")
        print(f"{name:<48} {t * 1e6:8.2f} {ratio:6.1f}x {tgt:>7}{ok} {base}")


if __name__ == "__main__":
    main()
