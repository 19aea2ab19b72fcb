"""Exercise 07: which regime and which TTBR does an AT use?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.at import run_at
from atlab.bits import bit
from atlab.checks._helpers import _RW
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.memory import PhysMem
from atlab.regime import AtOp, Regime
from atlab.sysregs import SysRegs, encode

_TTBRS = {"TTBR0_EL1": 0x1000_0000, "TTBR1_EL1": 0x1100_0000, "TTBR0_EL2": 0x1200_0000,
          "TTBR1_EL2": 0x1300_0000}
_BY_BASE = {v: k for k, v in _TTBRS.items()}
# Valid in both TCR_EL2 layouts: T0SZ=16, 4KB; with E2H=1 also T1SZ=16, TG1=4KB.
_TCR_BOTH = encode("TCR_EL1", T0SZ=16, T1SZ=16, TG1=0b10)
_TARGET_OPS = (AtOp.S1E0R, AtOp.S1E1R, AtOp.S1E1WP, AtOp.S1E1A, AtOp.S1E2R, AtOp.S1E2W,
               AtOp.S12E1R, AtOp.S12E0W)


def reference_at_target(op: AtOp, hcr_el2: int, va: int) -> tuple[Regime, str]:
    """The regime ``op`` (executed at EL2) translates in, and the TTBR whose table its walk
    reads first (``"none"``: stage 1 disabled, or VA outside every range): run by
    :func:`atlab.at.run_at` on registers where each TTBR points at a different table."""
    regs = SysRegs({"HCR_EL2": hcr_el2, "SCTLR_EL1": 1, "SCTLR_EL2": 1, "TCR_EL1": _TCR_BOTH,
                    "TCR_EL2": _TCR_BOTH, **_TTBRS})
    res = run_at(op, va, regs=regs, mem=PhysMem(), cur_el=2)
    assert res.regime is not None
    steps = res.trace.steps
    return res.regime.regime, _BY_BASE[steps[0].table_base] if steps else "none"


def _norm_target(args: tuple[Any, ...], got: Any) -> tuple[Regime, str]:
    regime, ttbr = got
    if not isinstance(regime, Regime):
        raise TypeError(f"the first element must be a Regime, not {regime!r}")
    return regime, str(ttbr).upper() if str(ttbr).lower() != "none" else "none"


def _show_target(v: Any) -> str:
    regime, ttbr = v
    return f"{regime}, {ttbr}"


def _target_cases() -> list[Case]:
    out = []
    for e2h in (0, 1):
        for tge in (0, 1):
            hcr = _RW | e2h << 34 | tge << 27
            group = f"HCR_EL2.{{E2H,TGE}}={{{e2h},{tge}}}"
            for op in _TARGET_OPS:
                for va in (0x4000, 0xFFFF_0000_1234_5000):
                    out.append(_case(f"{op} VA={va:#x} at EL2 with {group}", group, op, hcr, va))
    return out


def _target_model(op: AtOp, hcr_el2: int, va: int, *, e2h_alone: bool = False,
                  tge_alone: bool = False, tge_keeps_s1: bool = False,
                  el2_ttbr1: bool = False) -> tuple[Regime, str]:
    e2h, tge = bit(hcr_el2, 34), bit(hcr_el2, 27)
    host = (e2h and tge) or (e2h and e2h_alone) or (tge and tge_alone)
    info = op.info
    if info.stages == 12:
        regime = Regime.EL20 if host else Regime.EL10
    elif info.el == 2:
        regime = Regime.EL20 if e2h else Regime.EL2
    else:
        regime = Regime.EL20 if host else Regime.EL10
    if regime is Regime.EL10 and tge and not tge_keeps_s1:
        return regime, "none"
    upper = bit(va, 55)
    if regime.has_unprivileged or (upper and el2_ttbr1):
        return regime, f"TTBR{upper}_{regime.suffix}"
    return regime, "none" if upper else "TTBR0_EL2"


AT_TARGET = Exercise(
    "at_target", "Which regime and TTBR does an AT use?", _target_cases, reference_at_target,
    _show_target, _norm_target,
    (Mistake("E2H=1 alone taken for the host", lambda o, h, v: _target_model(o, h, v,
                                                                             e2h_alone=True),
             "AT S1E0*/S1E1* use EL2&0 only when HCR_EL2.{E2H,TGE} = {1,1} (ELIsInHost(EL0)); "
             "E2H=1 with TGE=0 is a VHE host running a guest: EL1&0"),
     Mistake("TGE=1 alone taken for the host", lambda o, h, v: _target_model(o, h, v,
                                                                             tge_alone=True),
             "TGE=1 with E2H=0 does not create EL2&0: it disables the EL1&0 stage 1 (flat map)"),
     Mistake("TGE=1 does not disable the EL1&0 stage 1",
             lambda o, h, v: _target_model(o, h, v, tge_keeps_s1=True),
             "AArch64.S1Enabled(): the EL1&0 stage 1 is off when HCR_EL2.TGE=1, so the walk "
             "reads no table"),
     Mistake("the EL2 regime has a TTBR1", lambda o, h, v: _target_model(o, h, v,
                                                                         el2_ttbr1=True),
             "with E2H=0 the EL2 regime has one range (TTBR0_EL2); an upper VA is out of "
             "range")),
    "the regime comes from the op and HCR_EL2.{E2H,TGE}; bit 55 of the VA picks TTBR0/TTBR1 "
    "in the regimes with two ranges (EL1&0, EL2&0)",
    reference_at_target,
    # The VHE misreadings first: E2H alone (a VHE host running a guest), TGE alone, the host.
    group_order=("HCR_EL2.{E2H,TGE}={1,0}", "HCR_EL2.{E2H,TGE}={0,1}",
                 "HCR_EL2.{E2H,TGE}={1,1}"),
)


def check_at_target(fn: Callable[[AtOp, int, int], tuple[Regime, str]], *, quiet: bool = False,
                    file: TextIO | None = None) -> CheckResult:
    """Check ``at_target(op, hcr_el2, va) -> (Regime, ttbr_name | "none")``."""
    return check(AT_TARGET, fn, quiet=quiet, file=file)
