"""Cost of building tables by intent, of ptdump, and of walking what was built.

Issue targets: <= 5 us per 4KB page mapped (4 GiB mapped page by page: 1M descriptors) and
ptdump <= 2 us per leaf entry.  Also: 1 TiB mapped with blocks, its dump, and 100,000 AT S1E1R
walks of random mapped addresses (trace off).
"""

from __future__ import annotations

import random
import resource
import time

from atlab import AtOp, run_at
from atlab.builder import S1Builder
from atlab.ptdump import ptdump

PAGE_TARGET_US = 5.0
DUMP_TARGET_US = 2.0
GiB, TiB = 1 << 30, 1 << 40


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ok = True
    # 4 GiB in 4KB pages (blocks=False forces level 3 descriptors).
    b = S1Builder(tables=(0x1_0000_0000, 0x1_1000_0000))
    t = time.perf_counter()
    b.map(0x10_0000_0000, 0x8000_0000, 4 * GiB, blocks=False)
    dt = time.perf_counter() - t
    pages = 4 * GiB >> 12
    per_page = dt / pages * 1e6
    ok &= per_page <= PAGE_TARGET_US
    print(f"map 4 GiB as 4KB pages: {dt:.2f} s, {pages} pages, {b.table_count} tables, "
          f"{per_page:.3f} us/page (target <= {PAGE_TARGET_US}) "
          f"{'OK' if per_page <= PAGE_TARGET_US else 'MISSED'}; max RSS {_rss_mib():.0f} MiB")
    regs = b.regs()
    t = time.perf_counter()
    d = ptdump(regs, b)
    dt = time.perf_counter() - t
    per_entry = dt / d.entries * 1e6
    ok &= per_entry <= DUMP_TARGET_US and len(d.ranges) == 1
    print(f"ptdump of it: {dt:.2f} s, {d.entries} entries -> {len(d.ranges)} range(s), "
          f"{per_entry:.3f} us/entry (target <= {DUMP_TARGET_US}) "
          f"{'OK' if per_entry <= DUMP_TARGET_US else 'MISSED'}")
    t = time.perf_counter()
    mem = b.memory()
    print(f"as PhysMem: {time.perf_counter() - t:.2f} s ({len(mem)} words); "
          f"max RSS {_rss_mib():.0f} MiB")
    t = time.perf_counter()
    d2 = ptdump(regs, mem)
    dt = time.perf_counter() - t
    print(f"ptdump from PhysMem: {dt:.2f} s, {dt / d2.entries * 1e6:.3f} us/entry")
    rng = random.Random(6)
    vas = [0x10_0000_0000 + rng.randrange(4 * GiB) for _ in range(100_000)]
    mem.logging = False
    t = time.perf_counter()
    for va in vas:
        par = run_at(AtOp.S1E1R, va, regs=regs, mem=mem, trace=False).par
        assert par is not None and par.pa == 0x8000_0000 + ((va - 0x10_0000_0000) & ~0xFFF)
    dt = time.perf_counter() - t
    print(f"100,000 AT S1E1R of random mapped VAs (4 levels, trace off): {dt:.2f} s, "
          f"{dt / len(vas) * 1e6:.1f} us/walk")
    del mem, d2

    # 1 TiB with blocks (1GB level 1 blocks, plus 2MB ones at a misaligned start).
    b2 = S1Builder(tables=(0x4020_0000, 0x4400_0000))
    t = time.perf_counter()
    b2.map(0x100_0000_0000, 0x100_0000_0000, TiB)
    b2.map(0x300_0020_0000, 0x80_0020_0000, TiB - GiB)
    dt = time.perf_counter() - t
    d3 = ptdump(b2.regs(), b2)
    t2 = time.perf_counter() - t - dt
    print(f"map 2 x 1 TiB with blocks: {dt * 1e3:.1f} ms, {b2.table_count} tables; ptdump "
          f"{t2 * 1e3:.1f} ms, {d3.entries} entries -> {len(d3.ranges)} ranges, "
          f"{t2 / d3.entries * 1e6:.3f} us/entry")
    mem2 = b2.memory()
    mem2.logging = False
    regs2 = b2.regs()
    t = time.perf_counter()
    for _ in range(100_000):
        va = 0x100_0000_0000 + rng.randrange(TiB)
        par = run_at(AtOp.S1E1R, va, regs=regs2, mem=mem2, trace=False).par
        assert par is not None and par.pa == va & ~0xFFF
    dt = time.perf_counter() - t
    print(f"100,000 AT S1E1R in the 1 TiB block map: {dt:.2f} s, {dt / 1e5 * 1e6:.1f} us/walk")
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
