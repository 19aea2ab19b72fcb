"""Exercise 09: predict a PAR."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from atlab.attrs import decode_mair_attr, par_shareability
from atlab.checks._helpers import _par_text
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.errors import AtlabError
from atlab.faults import Fault, FaultKind
from atlab.par import Par


@dataclass(frozen=True, slots=True)
class WalkOutcome:
    """How an AT ended: a fault, or a translation to ``pa`` with the MAIR attribute byte
    ``attr`` and the descriptor's shareability ``sh`` (SH[1:0])."""

    fault: Fault | None = None
    pa: int = 0
    attr: int = 0
    sh: int = 0

    def __str__(self) -> str:
        if self.fault is not None:
            return f"fault: {self.fault}"
        return f"PA={self.pa:#x} attr={self.attr:#04x} SH={self.sh:02b}"


def reference_encode_par(outcome: WalkOutcome) -> int:
    """PAR_EL1 for ``outcome``: :meth:`atlab.par.Par.from_fault` or :meth:`Par.success` with
    :func:`atlab.attrs.par_shareability`."""
    if outcome.fault is not None:
        return Par.from_fault(outcome.fault).value
    sh = par_shareability(decode_mair_attr(outcome.attr), outcome.sh)
    return Par.success(outcome.pa, outcome.attr, sh).value


def _ref_par_cmp(outcome: WalkOutcome) -> int:
    return Par(reference_encode_par(outcome)).masked()


def _norm_par(args: tuple[Any, ...], got: Any) -> int:
    if not isinstance(got, int) or not 0 <= got < 1 << 64:
        raise TypeError(f"return a 64-bit int, not {got!r}")
    return Par(got).masked()


def _par_cases() -> list[Case]:
    out = []
    for kind in FaultKind:
        for level in (-1, 0, 1, 2, 3):
            for stage, ptw in ((1, False), (2, False), (2, True)):
                f = Fault(kind, level, stage, ptw)
                try:
                    _ = f.fst
                except AtlabError:
                    continue
                group = f"faults at level {level}" if level == -1 else f"{kind.value} faults"
                out.append(_case(f"{f}", group, WalkOutcome(f),
                                 hint="PAR_EL1.F=1: FST in bits [6:1], PTW bit 8, S bit 9, "
                                 "bit 11 RES1"))
    for attr in (0xFF, 0x44, 0x04, 0x00, 0x0C, 0xBB, 0x4F, 0xF4, 0xAA):
        for sh in (0b00, 0b10, 0b11):
            for pa in (0x4567_8ABC, 0x000F_FFFF_FFFF_F123):
                o = WalkOutcome(None, pa, attr, sh)
                out.append(_case(str(o), f"success, attr {attr:#04x}", o))
    return out


def _wrong_par_level_m1(o: WalkOutcome) -> int:
    f = o.fault
    if f is not None and f.level == -1:
        base = {FaultKind.ADDRESS_SIZE: 0, FaultKind.TRANSLATION: 4,
                FaultKind.SYNC_EXTERNAL_WALK: 0x14}[f.kind]
        v = 1 | ((base - 1) & 0x3F) << 1 | 1 << 11
        return v | (1 << 9 if f.stage == 2 else 0) | (1 << 8 if f.s1ptw else 0)
    return reference_encode_par(o)


def _wrong_par_sh_copied(o: WalkOutcome) -> int:
    if o.fault is None:
        return Par.success(o.pa, o.attr, o.sh).value
    return reference_encode_par(o)


def _wrong_par_no_s(o: WalkOutcome) -> int:
    return reference_encode_par(o) & ~(3 << 8) if o.fault is not None else \
        reference_encode_par(o)


def _wrong_par_pa_offset(o: WalkOutcome) -> int:
    v = reference_encode_par(o)
    return v | (o.pa & 0xFFF) if o.fault is None else v


PREDICT_PAR = Exercise(
    "encode_par", "Predict a PAR_EL1", _par_cases, _ref_par_cmp, _par_text, _norm_par,
    (Mistake("level -1 FST as base + level", _wrong_par_level_m1,
             "level -1 (FEAT_LPA2) has its own codes: translation 0b101011, address size "
             "0b101001, external abort 0b010011"),
     Mistake("SH copied for Device/Non-cacheable", _wrong_par_sh_copied,
             "PAR_EL1.SH is 0b10 (Outer Shareable) for any Device memory and for Normal "
             "Inner+Outer Non-cacheable memory"),
     Mistake("S and PTW not set", _wrong_par_no_s,
             "a stage 2 fault sets PAR.S (bit 9); during the stage 1 walk also PAR.PTW "
             "(bit 8)"),
     Mistake("PA offset bits kept", _wrong_par_pa_offset,
             "PAR_EL1.PA is PA[55:12]: the page offset is not reported")),
    "bits that may differ between implementations (NS, bit 10, bit 11 of a success, [63:48] "
    "of a fault) are ignored by this checker",
    reference_encode_par,
    # most instructive first: the common faults first (FST = kind + level), then successes whose
    # SH the memory type overrides (Non-cacheable, Device), then the rarer faults
    group_order=(
        "translation faults",
        "permission faults",
        "access flag faults",
        "address size faults",
        "success, attr 0x44",
        "success, attr 0x00",
        "success, attr 0xff",
        "faults at level -1",
        "synchronous external abort on walk faults",
    ),
)


def check_encode_par(fn: Callable[[WalkOutcome], int], *, quiet: bool = False,
                     file: TextIO | None = None) -> CheckResult:
    """Check ``encode_par(outcome) -> PAR_EL1``."""
    return check(PREDICT_PAR, fn, quiet=quiet, file=file)
