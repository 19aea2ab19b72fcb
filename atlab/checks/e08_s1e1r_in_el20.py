"""Exercise 08: make AT S1E1R use EL2&0."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.checks._helpers import _E2H, _FEATS, _RW, _TGE
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.regime import AtOp, compute_translation_regime
from atlab.sysregs import SysRegs, encode


def _el20_view(hcr_before: int, hcr_after: int) -> tuple[str, str]:
    regime = compute_translation_regime(AtOp.S1E1R, SysRegs({"HCR_EL2": hcr_after}), _FEATS)
    changed = (hcr_before ^ hcr_after) & ~(_E2H | _TGE)
    kept = "other bits kept" if not changed else f"other bits changed: {changed:#x}"
    return str(regime.regime), kept


def reference_s1e1r_in_el20(hcr_el2: int) -> int:
    """HCR_EL2 with E2H and TGE set (:func:`atlab.sysregs.encode`), everything else kept."""
    return hcr_el2 | encode("HCR_EL2", E2H=1, TGE=1)


def _ref_el20_cmp(hcr_el2: int) -> tuple[str, str]:
    return _el20_view(hcr_el2, reference_s1e1r_in_el20(hcr_el2))


def _norm_el20(args: tuple[Any, ...], got: Any) -> tuple[str, str]:
    if not isinstance(got, int) or not 0 <= got < 1 << 64:
        raise TypeError(f"return a 64-bit int, not {got!r}")
    return _el20_view(args[0], got)


def _el20_cases() -> list[Case]:
    values = [_RW, _RW | 1, _RW | _E2H, _RW | _TGE, _RW | 1 << 42 | 1 << 43 | 1 << 44,
              _RW | 1 | 1 << 2 | 1 << 12, 0x8000_0000 | 1 << 46, _RW | 0x7F << 3,
              (1 << 64) - 1 - _E2H - _TGE, _RW | _E2H | _TGE, _RW | 1 << 26 | 1 << 30]
    return [_case(f"HCR_EL2={v:#x}", "HCR_EL2 values", v) for v in values]


def _show_el20(v: Any) -> str:
    regime, kept = v
    return f"AT S1E1R uses {regime}, {kept}"


S1E1R_EL20 = Exercise(
    "s1e1r_in_el20", "Make AT S1E1R use EL2&0", _el20_cases, _ref_el20_cmp, _show_el20,
    _norm_el20,
    (Mistake("E2H only", lambda h: h | _E2H,
             "E2H=1 alone puts EL2 in EL2&0, but AT S1E1R still translates for the guest "
             "(EL1&0): TGE=1 is needed too"),
     Mistake("TGE only", lambda h: h | _TGE,
             "TGE=1 alone disables the EL1&0 stage 1; EL2&0 needs E2H=1 as well"),
     Mistake("other bits clobbered", lambda h: _E2H | _TGE,
             "set the two bits with |, keep the rest of HCR_EL2 (RW, VM ...)")),
    "AT S1E1R uses EL2&0 when HCR_EL2.{E2H,TGE} = {1,1}",
    reference_s1e1r_in_el20,
)


def check_s1e1r_in_el20(fn: Callable[[int], int], *, quiet: bool = False,
                        file: TextIO | None = None) -> CheckResult:
    """Check ``s1e1r_in_el20(hcr_el2) -> hcr_el2'``."""
    return check(S1E1R_EL20, fn, quiet=quiet, file=file)
