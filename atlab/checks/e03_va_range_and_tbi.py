"""Exercise 03: VA range and TBI."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from atlab.bits import bit, bits, mask
from atlab.checks._helpers import _FEATS, _tcr_el1
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, _identity, check
from atlab.faults import Fault
from atlab.regime import Regime
from atlab.sysregs import SysRegs
from atlab.walk_s1 import setup_s1_walk


def reference_va_range(tcr_el1: int, va: int) -> str | None:
    """``"TTBR0"``, ``"TTBR1"``, or None when the VA is outside both ranges (a level 0
    Translation fault), from :func:`atlab.walk_s1.setup_s1_walk` for an EL1 access."""
    regs = SysRegs({"TCR_EL1": tcr_el1})
    wi = setup_s1_walk(regs, _FEATS, Regime.EL10, 1, va)
    if isinstance(wi, Fault):
        return None
    return "TTBR1" if wi.upper else "TTBR0"


def _va_range_cases() -> list[Case]:
    out = []
    for t0sz, t1sz in ((16, 16), (25, 25), (39, 16), (20, 33)):
        for tbi0, tbi1 in ((0, 0), (1, 0), (0, 1), (1, 1)):
            tcr = _tcr_el1(t0sz=t0sz, t1sz=t1sz, tbi0=tbi0, tbi1=tbi1)
            ia0, ia1 = 64 - t0sz, 64 - t1sz
            vas = {
                "low": 0x1000,
                "top of TTBR0 range": mask(ia0 - 1, 12),
                "just above TTBR0 range": 1 << ia0,
                "tagged TTBR0 pointer": 0x5A << 56 | 0x1000,
                "TTBR1 range": mask(63, 12),
                "bottom of TTBR1 range": mask(63, ia1),
                "just below TTBR1 range": mask(63, ia1) - 0x1000,
                "tagged TTBR1 pointer": 0x5A << 56 | mask(55, 12),
                "bit 55 set, bit 63 clear": mask(62, 12) & ~(0xFF << 56) | 1 << 55,
                "bit 63 set, bit 55 clear": 1 << 63 | 0x1000,
            }
            for what, va in vas.items():
                group = f"T0SZ={t0sz} T1SZ={t1sz} TBI0={tbi0} TBI1={tbi1}"
                out.append(_case(f"TCR_EL1 {group}, VA={va:#x} ({what})", group, tcr, va))
    return out


def _wrong_tbi_ignored(tcr_el1: int, va: int) -> str | None:
    return reference_va_range(tcr_el1 & ~(3 << 37), va)


def _wrong_bit63(tcr_el1: int, va: int) -> str | None:
    # The range chosen by bit 63, the check against that range's size, TBI honoured.
    upper = bit(va, 63)
    ia = 64 - (bits(tcr_el1, 21, 16) if upper else bits(tcr_el1, 5, 0))
    tbi = bit(tcr_el1, 38 if upper else 37)
    top = bits(va, 55 if tbi else 63, ia)
    want = mask(55 if tbi else 63, ia) >> ia if upper else 0
    if top != want:
        return None
    return "TTBR1" if upper else "TTBR0"


def _wrong_tbi0_for_both(tcr_el1: int, va: int) -> str | None:
    tbi0 = bit(tcr_el1, 37)
    return reference_va_range((tcr_el1 & ~(3 << 37)) | tbi0 << 37 | tbi0 << 38, va)


VA_RANGE = Exercise(
    "va_range", "VA ranges and TBI", _va_range_cases, reference_va_range, repr, _identity,
    (Mistake("TBI ignored", _wrong_tbi_ignored,
             "with TCR_EL1.TBIn=1 the top byte (bits [63:56]) is ignored: only bits "
             "[55:iasize] must equal bit 55"),
     Mistake("range selected by bit 63", _wrong_bit63,
             "AArch64.GetVARange(): bit 55 selects TTBR0 or TTBR1, so that a tag in the top "
             "byte does not change the range"),
     Mistake("TBI0 used for both ranges", _wrong_tbi0_for_both,
             "each range has its own control: TBI0 for TTBR0, TBI1 for TTBR1")),
    "bit 55 selects the range; bits [addrtop:iasize] must all equal bit 55, with addrtop 55 "
    "when TBI applies and 63 otherwise",
    reference_va_range,
    # most instructive first: the plain 48-bit ranges first, then TBI one range at a time, then
    # unequal range sizes
    group_order=(
        "T0SZ=16 T1SZ=16 TBI0=0 TBI1=0",
        "T0SZ=16 T1SZ=16 TBI0=1 TBI1=0",
        "T0SZ=16 T1SZ=16 TBI0=0 TBI1=1",
        "T0SZ=20 T1SZ=33 TBI0=0 TBI1=0",
        "T0SZ=39 T1SZ=16 TBI0=0 TBI1=0",
    ),
)


def check_va_range(fn: Callable[[int, int], str | None], *, quiet: bool = False,
                   file: TextIO | None = None) -> CheckResult:
    """Check ``va_range(tcr_el1, va) -> "TTBR0" | "TTBR1" | None``."""
    return check(VA_RANGE, fn, quiet=quiet, file=file)
