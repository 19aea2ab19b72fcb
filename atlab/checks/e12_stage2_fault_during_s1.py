"""Exercise 12: stage 2 fault during the stage 1 walk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from atlab.at import run_at
from atlab.bits import bits
from atlab.checks._helpers import _RW, _Tables
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, check
from atlab.granule import Granule, level_lsb
from atlab.memory import PhysMem
from atlab.regime import AtOp
from atlab.sysregs import SysRegs, encode

_S2_PAGE = 0b11 | 0b1111 << 2 | 0b11 << 6 | 0b11 << 8 | 1 << 10  # Normal WB, RW, ISH, AF
_S2_OFFSET = 0x1_0000_0000  # PA = IPA + offset
_S1_TABLES = {1: 0x4000_0000, 2: 0x8020_0000, 3: 0xC040_0000}  # IPA of the S1 table per level
_S1_DATA = 0x0060_0000


@dataclass(frozen=True, slots=True)
class _S2Config:
    name: str
    vtcr: int
    ia_bits: int
    sl: int


_S2_CONFIGS = (
    _S2Config("VTCR 4KB T0SZ=25 SL0=1 (start level 1)", encode(
        "VTCR_EL2", T0SZ=25, SL0=1, TG0=0, PS=5, SH0=3, RES1_31=1), 39, 1),
    _S2Config("VTCR 4KB T0SZ=16 SL0=2 (start level 0)", encode(
        "VTCR_EL2", T0SZ=16, SL0=2, TG0=0, PS=5, SH0=3, RES1_31=1), 48, 0),
    _S2Config("VTCR 4KB T0SZ=32 SL0=0 (start level 2, 4 tables)", encode(
        "VTCR_EL2", T0SZ=32, SL0=0, TG0=0, PS=5, SH0=3, RES1_31=1), 32, 2),
)


def _s2_fault_scenario(cfg: _S2Config, va: int, hole: tuple[str, int, int] | None
                       ) -> tuple[SysRegs, dict[int, int]]:
    """Stage 1 (4KB, 39-bit, start level 1) tables in IPA space, a stage 2 mapping every page
    the walk needs, and one defect ``(what, ipa, s2_level)``: "invalid", "af", "noread"."""
    words: dict[int, int] = {}
    s2 = _Tables(Granule.K4, cfg.ia_bits, 0x2000_0000, 0x2010_0000, words, sl=cfg.sl)
    root = s2.root
    s1_words: dict[int, int] = {}
    s1 = _Tables(Granule.K4, 39, _S1_TABLES[1], 0, s1_words)
    s1.words[s1.entry(va, 1, create=False) or 0] = _S1_TABLES[2] | 3
    lsb2 = level_lsb(2, Granule.K4)
    s1.words[_S1_TABLES[2] + 8 * bits(va, lsb2 + 8, lsb2)] = _S1_TABLES[3] | 3
    lsb3 = level_lsb(3, Granule.K4)
    s1.words[_S1_TABLES[3] + 8 * bits(va, lsb3 + 8, lsb3)] = _S1_DATA | 0x703
    pages = {*_S1_TABLES.values(), _S1_DATA}
    for ipa in sorted(pages):
        s2.map(ipa, 3, (ipa + _S2_OFFSET) | _S2_PAGE)
    for ipa, value in s1_words.items():
        words[ipa + _S2_OFFSET] = value
    if hole is not None:
        what, ipa, level = hole
        addr = s2.entry(ipa, level, create=False)
        assert addr is not None
        if what == "invalid":
            words[addr] = 0
        elif what == "af":
            words[addr] &= ~(1 << 10)
        else:  # S2AP=0b10: write-only, no read access
            words[addr] = (words[addr] & ~(3 << 6)) | 0b10 << 6
    regs = SysRegs({
        "HCR_EL2": _RW | 1, "SCTLR_EL1": 1, "MAIR_EL1": 0xFF, "TTBR0_EL1": _S1_TABLES[1],
        "TCR_EL1": encode("TCR_EL1", T0SZ=25, TG0=0, SH0=3, EPD1=1, IPS=5),
        "VTCR_EL2": cfg.vtcr, "VTTBR_EL2": root,
    })
    return regs, words


def reference_s2_fault_during_s1(regs: SysRegs, mem: PhysMem, va: int) -> tuple[int, int] | None:
    """(stage 1 level, stage 2 level) of a stage 2 fault on a stage 1 table access, from
    ``AT S12E1R`` at EL2 (:func:`atlab.at.run_at`: the PAR has S=1, PTW=1; the trace names
    the stage 1 level); None when the AT does not fault that way."""
    res = run_at(AtOp.S12E1R, va, regs=regs, mem=mem, cur_el=2)
    f = res.fault
    if f is None or f.stage != 2 or not f.s1ptw:
        return None
    s1_level = [s.level for s in res.trace.steps if s.stage == 1][-1]
    return s1_level, f.level


def _norm_pair(args: tuple[Any, ...], got: Any) -> tuple[int, int] | None:
    if got is None:
        return None
    a, b = got
    return int(a), int(b)


def _show_s2_fault(v: Any) -> str:
    if v is None:
        return "None (no stage 2 fault on the stage 1 walk)"
    s1, s2 = v
    return f"stage 1 level {s1} table access, stage 2 fault at level {s2}"


def _s2_fault_cases() -> list[Case]:
    out = []
    va = 0x12_3456_7000
    for cfg in _S2_CONFIGS:
        defects: list[tuple[str, tuple[str, int, int] | None]] = [("no defect", None)]
        for s1_level, ipa in _S1_TABLES.items():
            for s2_level in range(max(1, cfg.sl), 4):
                defects.append((f"S1 L{s1_level} table IPA {ipa:#x}: S2 L{s2_level} entry "
                                "invalid", ("invalid", ipa, s2_level)))
            defects.append((f"S1 L{s1_level} table IPA {ipa:#x}: S2 L3 AF=0",
                            ("af", ipa, 3)))
            defects.append((f"S1 L{s1_level} table IPA {ipa:#x}: S2 L3 S2AP=10 (no read)",
                            ("noread", ipa, 3)))
        defects.append(("final IPA unmapped at S2 L3", ("invalid", _S1_DATA, 3)))
        for what, hole in defects:
            def make(cfg: _S2Config = cfg, hole: tuple[str, int, int] | None = hole
                     ) -> tuple[Any, ...]:
                regs, words = _s2_fault_scenario(cfg, va, hole)
                return regs, PhysMem(words), va
            out.append(Case(f"{cfg.name}; {what}; AT S12E1R VA={va:#x}", cfg.name, make))
    return out


def _wrong_s2_level_from_s1(regs: SysRegs, mem: PhysMem, va: int) -> tuple[int, int] | None:
    ref = reference_s2_fault_during_s1(regs, mem, va)
    return None if ref is None else (ref[0], ref[0])


def _wrong_final_ipa_counted(regs: SysRegs, mem: PhysMem, va: int) -> tuple[int, int] | None:
    res = run_at(AtOp.S12E1R, va, regs=regs, mem=mem, cur_el=2)
    f = res.fault
    if f is None or f.stage != 2:
        return None
    return [s.level for s in res.trace.steps if s.stage == 1][-1], f.level


S2_FAULT = Exercise(
    "s2_fault_during_s1", "Stage 2 fault during the stage 1 walk", _s2_fault_cases,
    reference_s2_fault_during_s1, _show_s2_fault, _norm_pair,
    (Mistake("stage 1 level reported as the stage 2 level", _wrong_s2_level_from_s1,
             "the PAR/ESR level of a stage 2 fault is the level of the *stage 2* walk that "
             "failed, not the stage 1 level whose table was being read (QEMU 7.2 and KVM once "
             "got this wrong)"),
     Mistake("fault on the final IPA counted as a walk fault", _wrong_final_ipa_counted,
             "a stage 2 fault on the final IPA is not a fault on the stage 1 walk (PTW=0)")),
    "for each stage 1 level, translate the table's IPA through stage 2 "
    "(atlab.walk_s2.walk_s2 with s1ptw=True) before reading the descriptor",
    reference_s2_fault_during_s1,
    # most instructive first: chapter 07's configuration first (start level 1), then concatenated
    # start tables, then a level 0 start
    group_order=(
        "VTCR 4KB T0SZ=25 SL0=1 (start level 1)",
        "VTCR 4KB T0SZ=32 SL0=0 (start level 2, 4 tables)",
        "VTCR 4KB T0SZ=16 SL0=2 (start level 0)",
    ),
)


def check_s2_fault_during_s1(fn: Callable[[SysRegs, PhysMem, int], tuple[int, int] | None], *,
                             quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``s2_fault_during_s1(regs, mem, va) -> (s1_level, s2_level) | None``."""
    return check(S2_FAULT, fn, quiet=quiet, file=file)
