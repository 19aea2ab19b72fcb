"""Exercise 04: translate a VA by hand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from atlab.at import run_at
from atlab.bits import bit, bits, mask
from atlab.checks._helpers import _RW, _TG0_ENC, _TG1_ENC, _hex, _Tables, _tcr_el1
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _identity, check
from atlab.granule import Granule, decode_tg0, decode_tg1, level_lsb
from atlab.memory import PhysMem
from atlab.regime import AtOp
from atlab.sysregs import SysRegs

_WALK_BASE_REGS = {"HCR_EL2": _RW, "SCTLR_EL1": 1, "MAIR_EL1": 0xFF}


def _page(oa: int, *, af: int = 1, ap: int = 0) -> int:
    return oa | 0b11 | 3 << 8 | af << 10 | ap << 6


def _block(oa: int, *, af: int = 1, ap: int = 0) -> int:
    return oa | 0b01 | 3 << 8 | af << 10 | ap << 6


@dataclass(frozen=True, slots=True)
class _WalkConfig:
    name: str
    regs: SysRegs
    words: dict[int, int]
    queries: tuple[tuple[str, int], ...]


def _walk_configs() -> list[_WalkConfig]:
    out = []
    specs = [  # granule, T0SZ, T1SZ, TBI0, TBI1
        (Granule.K4, 16, 25, 1, 0),
        (Granule.K4, 25, 16, 0, 1),
        (Granule.K16, 17, 17, 0, 1),
        (Granule.K64, 22, 22, 1, 1),
        (Granule.K64, 16, 34, 0, 0),
    ]
    for n, (g, t0sz, t1sz, tbi0, tbi1) in enumerate(specs):
        ia0, ia1 = 64 - t0sz, 64 - t1sz
        root0, root1 = 0x4000_0000 + n * 0x100_0000, 0x4080_0000 + n * 0x100_0000
        words: dict[int, int] = {}
        t0 = _Tables(g, ia0, root0, root0 + 0x10_0000, words)
        t1 = _Tables(g, ia1, root1, root1 + 0x10_0000, words)
        page = 1 << g.pgshift
        block = 1 << level_lsb(2, g)
        va_page = 0x0000_1234_5678_0000 & mask(ia0 - 1, g.pgshift)
        va_block = 0x0000_0ABC_0000_0000 & mask(ia0 - 1, level_lsb(2, g)) | block
        va_noaf = va_page + 2 * page
        va_hole = va_page + 5 * page
        t0.map(va_page, 3, _page(0x8_7654_0000 & mask(47, g.pgshift)))
        t0.map(va_page + page, 3, _page(0x9_0000_0000 + 7 * page))
        t0.map(va_block, 2, _block(0x2_0000_0000 & mask(47, level_lsb(2, g))))
        t0.map(va_noaf, 3, _page(0x5_5555_0000 & mask(47, g.pgshift), af=0))
        entry = t0.entry(va_hole, 3)
        assert entry is not None
        va_up = mask(63, ia1) | (0x0000_0000_3456_0000 & mask(ia1 - 2, g.pgshift))
        t1.map(va_up, 3, _page(0x6_0000_0000 + 3 * page))
        queries: list[tuple[str, int]] = [
            ("page", va_page | 0x123),
            ("next page", va_page + page + 0x8),
            ("block", va_block | (block // 2 + 0x1238)),
            ("page with AF=0", va_noaf + 0x10),
            ("invalid level 3 entry", va_hole),
            ("unmapped upper table", va_page ^ (1 << (ia0 - 1))),
            ("TTBR1 page", va_up | 0x77),
            ("tagged TTBR0 pointer", 0x3C << 56 | va_page | 0x40),
            ("tagged TTBR1 pointer", (0x3C << 56) | (va_up & mask(55, 0)) | 0x40),
            ("just above TTBR0 range", (1 << ia0) | 0x1000),
        ]
        tcr = _tcr_el1(t0sz=t0sz, t1sz=t1sz, tg0=_TG0_ENC[g], tg1=_TG1_ENC[g], tbi0=tbi0,
                       tbi1=tbi1)
        regs = SysRegs({**_WALK_BASE_REGS, "TCR_EL1": tcr, "TTBR0_EL1": root0,
                        "TTBR1_EL1": root1})
        name = f"{g} T0SZ={t0sz} T1SZ={t1sz} TBI0={tbi0} TBI1={tbi1}"
        out.append(_WalkConfig(name, regs, words, tuple(queries)))
    return out


def reference_translate(regs: SysRegs, mem: PhysMem, va: int) -> int | None:
    """The PA an EL1 access to ``va`` reaches in the EL1&0 regime, or None on any fault:
    ``AT S1E1A`` (no permission check) run by :func:`atlab.at.run_at` at EL2."""
    res = run_at(AtOp.S1E1A, va, regs=regs, mem=mem, cur_el=2, trace=False)
    if res.par is None or res.par.f:
        return None
    return res.par.pa | (va & 0xFFF)


def _translate_cases() -> list[Case]:
    out = []
    for cfg in _walk_configs():
        for what, va in cfg.queries:
            def make(cfg: _WalkConfig = cfg, va: int = va) -> tuple[Any, ...]:
                return cfg.regs, PhysMem(cfg.words), va
            out.append(Case(f"{cfg.name}, VA={va:#x} ({what})", cfg.name, make))
    return out


def _hand_translate(regs: SysRegs, mem: PhysMem, va: int, *, tbi: bool = True,
                    stride9: bool = False, ttbr1: bool = True,
                    block_offset_page: bool = False) -> int | None:
    """A hand walker with switchable mistakes (for the checker's hints and the tests)."""
    tcr = regs["TCR_EL1"]
    upper = bool(bit(va, 55)) and ttbr1
    if upper:
        txsz, g = bits(tcr, 21, 16), decode_tg1(bits(tcr, 31, 30), "TCR_EL1")
        use_tbi, ttbr = bit(tcr, 38) and tbi, regs["TTBR1_EL1"]
    else:
        txsz, g = bits(tcr, 5, 0), decode_tg0(bits(tcr, 15, 14), "TCR_EL1")
        use_tbi, ttbr = bit(tcr, 37) and tbi, regs["TTBR0_EL1"]
    ia = 64 - txsz
    top = 55 if use_tbi else 63
    if bits(va, top, ia) != (mask(top, ia) >> ia if upper else 0):
        return None
    stride = 9 if stride9 else g.stride
    pg = g.pgshift
    level = 3 - (ia - 1 - pg) // stride
    table = ttbr & mask(47, 1)
    first = True
    while True:
        lsb = (3 - level) * stride + pg
        hi = ia - 1 if first else lsb + stride - 1
        first = False
        desc = mem.read64(table + 8 * bits(va, hi, lsb))
        if not desc & 1:
            return None
        if level < 3 and desc & 2:
            table = desc & mask(47, pg)
            level += 1
            continue
        if level == 3 and not desc & 2:
            return None
        if not bit(desc, 10):
            return None
        size = pg if block_offset_page else lsb
        return (desc & mask(47, size)) | (va & mask(size - 1, 0))


TRANSLATE = Exercise(
    "translate", "Translate a VA by hand", _translate_cases, reference_translate, _hex,
    _identity,
    (Mistake("TBI ignored", lambda r, m, v: _hand_translate(r, m, v, tbi=False),
             "TCR_EL1.TBI0/TBI1=1: the top byte is a tag, ignored by the range check"),
     Mistake("wrong stride", lambda r, m, v: _hand_translate(r, m, v, stride9=True),
             "a level resolves granule bits - 3 VA bits: 11 for 16KB, 13 for 64KB"),
     Mistake("TTBR1 ignored", lambda r, m, v: _hand_translate(r, m, v, ttbr1=False),
             "VA bit 55 = 1 selects TTBR1_EL1, with T1SZ and TG1 (TG1 has its own encoding)"),
     Mistake("block offset at the page size",
             lambda r, m, v: _hand_translate(r, m, v, block_offset_page=True),
             "a block at level L keeps VA bits [level_lsb(L)-1:0] as the offset")),
    "walk from TTBRn_EL1: check the VA range, index each level, follow tables, stop at a "
    "block or page (AF must be 1)",
    reference_translate,
    # most instructive first: the 4KB walks first (chapter 02's base case), then the 64KB and 16KB
    # ones
    group_order=(
        "4KB T0SZ=16 T1SZ=25 TBI0=1 TBI1=0",
        "4KB T0SZ=25 T1SZ=16 TBI0=0 TBI1=1",
        "64KB T0SZ=16 T1SZ=34 TBI0=0 TBI1=0",
    ),
)


def check_translate(fn: Callable[[SysRegs, PhysMem, int], int | None], *, quiet: bool = False,
                    file: TextIO | None = None) -> CheckResult:
    """Check ``translate(regs, mem, va) -> PA | None``."""
    return check(TRANSLATE, fn, quiet=quiet, file=file)
