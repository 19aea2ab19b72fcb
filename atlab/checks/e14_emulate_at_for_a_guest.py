"""Exercise 14: emulate one AT for a guest hypervisor: route and path."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from atlab.bits import bit, bits
from atlab.checks._helpers import _E2H, _FEATS, _RW, _TGE
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.faults import Fault, FaultKind
from atlab.nv.kvm import fast_par_accepted
from atlab.nv.routing import Context, RouteKind, route_at
from atlab.par import Par
from atlab.regime import AtOp
from atlab.sysregs import SysRegs

#: KVM's path for AT S12E* when the stage 1 fast path succeeded (as :attr:`NvAtResult.path`).
NV_S12_SPLIT = "fast path (stage 1) + software walk of L1's stage 2"
#: The answers of the NV exercise.
NV_PATHS = ("undefined", "hardware", "injected into L1", "forwarded to L1", "fast path",
            NV_S12_SPLIT, "software walker")
_VM, _DC, _NV, _AT = 1 << 0, 1 << 12, 1 << 42, 1 << 44


def reference_nv_at_path(context: Context, op: AtOp, vhcr_el2: int, hw_par: int,
                         ats_before: int) -> str:
    """Where an AT executed by ``context`` ends up (:func:`atlab.nv.route_at`) and, as KVM
    6.12 handles it (:func:`atlab.nv.emulate_at` with ``kvm=KvmBehaviour.kvm()``), which path
    answers.

    ``hw_par`` is what the hardware AT meets: for a trap to L0, the PAR of the fast path's
    hardware AT (for AT S12E*, of its stage 1); for L2's own AT in hardware, the result of its
    walk through L1's stage 2 (a stage 2 fault on the stage 1 walk, S=1 PTW=1, means L1's own
    stage 2 does not map a table: at EL1 that is a Data Abort, which L0 injects into L1).
    ``ats_before``: how many times L1 already executed the same AT on this machine, nothing
    else happening in between; it changes nothing, since the emulated AT changes nothing (its
    software walker reads L1's memory through the host's mapping and fills no hole)."""
    route = route_at(context, op, SysRegs({"HCR_EL2": vhcr_el2}), _FEATS)
    if route.kind is RouteKind.UNDEFINED:
        return "undefined"
    if route.kind is RouteKind.FORWARD_L1:
        return "forwarded to L1"
    par = Par(hw_par)
    if route.kind is RouteKind.HARDWARE:
        return "injected into L1" if par.f and par.s and par.ptw else "hardware"
    if not fast_par_accepted(hw_par):  # at.c's par_check_s1_perm_fault()
        return "software walker"
    # __kvm_at_s12(): a stage 1 fault is returned at once; L1's stage 2 is walked in software
    # only with vHCR_EL2.{E2H,TGE}={1,0} and {VM,DC}!={0,0} (6.12 also skips it when E2H=0).
    e2h, tge = vhcr_el2 & _E2H, vhcr_el2 & _TGE
    if op.is_s12 and not par.f and e2h and not tge and vhcr_el2 & (_VM | _DC):
        return NV_S12_SPLIT
    return "fast path"


def _nv_fault(kind: FaultKind, level: int, stage: int = 1, s1ptw: bool = False) -> int:
    return Par.from_fault(Fault(kind, level, stage, s1ptw)).value


# Translation before Access flag: the first failing case of "every fault kept" is then not an
# Access flag one (which the Access flag mistakes explain as well).
_NV_PARS = {
    "success": Par.success(0x4567_8000, 0xFF, 3).value,
    "S1 permission L3": _nv_fault(FaultKind.PERMISSION, 3),
    "S1 translation L2": _nv_fault(FaultKind.TRANSLATION, 2),
    "S1 access flag L2": _nv_fault(FaultKind.ACCESS_FLAG, 2),
    "S2 translation L1 on the S1 walk": _nv_fault(FaultKind.TRANSLATION, 1, 2, True),
    "S2 permission L3 on the S1 walk": _nv_fault(FaultKind.PERMISSION, 3, 2, True),
}
_NV_OPS = (AtOp.S1E1R, AtOp.S1E0W, AtOp.S1E1RP, AtOp.S1E2R, AtOp.S1E2W, AtOp.S12E1R,
           AtOp.S12E0W, AtOp.S1E3R)
# L1's vHCR_EL2: nVHE with stage 2 off, VHE running a guest (stage 2 on), the same with the
# AT or NV trap for its guest, a VHE host ({E2H,TGE}={1,1}).  (No nVHE L1 with stage 2 on:
# KVM 6.12 would not walk its stage 2 for AT S12E*, the deviation s12-e2h0-skips-stage2.)
_NV_HCRS = {"vHCR_EL2=RW": _RW, "vHCR_EL2.{E2H,VM}={1,1}": _RW | _E2H | _VM,
            "vHCR_EL2.{E2H,VM,AT}={1,1,1}": _RW | _E2H | _VM | _AT,
            "vHCR_EL2.{E2H,VM,NV}={1,1,1}": _RW | _E2H | _VM | _NV,
            "vHCR_EL2.{E2H,TGE}={1,1}": _RW | _E2H | _TGE}


def _nv_cases() -> list[Case]:
    out = []
    for ctx in Context:
        for op in _NV_OPS:
            for hname, hcr in _NV_HCRS.items():
                for pname, par in _NV_PARS.items():
                    for before in (0, 1):
                        again = f", after {before} identical AT" if before else ""
                        out.append(_case(f"{ctx.value} executes {op}, {hname}, the hardware "
                                         f"AT meets {pname}{again}", ctx.value, ctx, op, hcr,
                                         par, before))
    return out


def _nv_model(context: Context, op: AtOp, vhcr: int, par: int, ats_before: int, *,
              l2_ignores_vat: bool = False, s12_no_stage2: bool = False,
              any_fault_ok: bool = False, af_ok: bool = False, s1e2_af_ok: bool = False,
              fills_hole: bool = False, l2_par: bool = False) -> str:
    """A hand model of the exercise, independent of the library; each keyword is a typical
    mistake switched on."""
    if context is Context.L2_EL0 or op.info.el == 3:
        return "undefined"
    el2_op = op.info.el == 2 or op.is_s12
    f, s, ptw, kind = bit(par, 0), bit(par, 9), bit(par, 8), bits(par, 6, 1) & 0x3C
    if context is Context.L2_EL1:
        if el2_op:
            return "forwarded to L1" if vhcr & _NV else "undefined"
        if vhcr & _AT and not l2_ignores_vat:
            return "forwarded to L1"
        return "injected into L1" if f and s and ptw and not l2_par else "hardware"
    if fills_hole and f and s and ats_before:
        f = 0  # believed: the first AT faulted the page in, so the hardware walk now succeeds
    keep = not f or (not s and kind == 0x0C)  # success or a stage 1 permission fault
    keep |= bool(f and not s and kind == 0x08 and (af_ok or (s1e2_af_ok and op.info.el == 2)))
    keep |= bool(f and any_fault_ok)
    if not keep:
        return "software walker"
    s2_on = vhcr & _E2H and not vhcr & _TGE and vhcr & (_VM | _DC)
    if op.is_s12 and not f and s2_on and not s12_no_stage2:
        return NV_S12_SPLIT
    return "fast path"


NV_PATH = Exercise(
    "nv_at_path", "Emulate one AT for a guest hypervisor", _nv_cases, reference_nv_at_path,
    repr, lambda args, got: str(got),
    (Mistake("L1's vHCR_EL2.AT ignored for L2", lambda c, o, h, p, n: _nv_model(
        c, o, h, p, n, l2_ignores_vat=True),
        "L0 folds L1's vHCR_EL2.AT into the real HCR_EL2 while L2 runs: with vAT=1, L2's "
        "AT S1E0*/S1E1* trap and L0 forwards them to L1"),
     Mistake("L1's stage 2 forgotten for AT S12E*", lambda c, o, h, p, n: _nv_model(
         c, o, h, p, n, s12_no_stage2=True),
        "the hardware never holds L1's stage 2 (only the shadow): after the stage 1 fast "
        "path, __kvm_at_s12() walks L1's stage 2 in software (kvm_walk_nested_s2) whenever "
        "it is on (vHCR_EL2.{E2H,TGE}={1,0}, VM or DC)"),
     Mistake("S1E2 keeps AF faults", lambda c, o, h, p, n: _nv_model(
         c, o, h, p, n, s1e2_af_ok=True),
        "AT S1E2* keeps only success and a stage 1 permission fault "
        "(par_check_s1_perm_fault): an Access flag fault is replayed by the software walker, "
        "in KVM 6.12 as in newer kernels"),
     Mistake("stage 1 permission/AF faults kept", lambda c, o, h, p, n: _nv_model(
         c, o, h, p, n, af_ok=True),
        "stage 1 permission/AF faults: KVM 6.12 keeps only permission faults; an Access flag "
        "fault on the fast path goes to the software walker (newer kernels keep it for "
        "S1E0*/S1E1*, never for S1E2*)"),
     Mistake("the software walker faults the hole in", lambda c, o, h, p, n: _nv_model(
         c, o, h, p, n, fills_hole=True),
        "the software walker reads L1's tables with kvm_read_guest(), through the host's "
        "mapping of L1's memory: it never faults a page into L0's stage 2 (nor fills the "
        "shadow). A hole stays a hole until L1 itself touches the page, so the same AT again "
        "takes the software walker"),
     Mistake("every fast-path fault accepted", lambda c, o, h, p, n: _nv_model(
         c, o, h, p, n, any_fault_ok=True),
        "a translation fault or a stage 2 fault on the fast path may come from L0's view "
        "(holes, shadow), not L1's tables: KVM 6.12 keeps only success and a stage 1 "
        "permission fault"),
     Mistake("L2 reads the stage 2 fault in its PAR", lambda c, o, h, p, n: _nv_model(
         c, o, h, p, n, l2_par=True),
        "an AT executed at EL1 whose stage 1 walk meets a stage 2 fault takes a Data Abort to "
        "EL2, not a PAR: L0 finds that L1's own stage 2 does not map the table and injects the "
        "abort into L1 (EC 0x24, at its vEL2): \"injected into L1\"")),
    "L1 at vEL2 runs at EL1 with HCR_EL2.NV=1 and AT=1: every AT it executes traps to L0",
    reference_nv_at_path,
    # most instructive first: L1's own AT first (what chapter 08 starts with), then its guest's at
    # EL1 and EL0
    group_order=(
        "L1 at vEL2",
        "L2 at EL1",
        "L2 at EL0",
    ),
)


def check_nv_at_path(fn: Callable[[Context, AtOp, int, int, int], str], *,
                     quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``nv_at_path(context, op, vhcr_el2, hw_par, ats_before) -> one of NV_PATHS``."""
    return check(NV_PATH, fn, quiet=quiet, file=file)
