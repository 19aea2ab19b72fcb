"""The AT front end: execute an AT instruction and produce PAR_EL1 (or the exception).

One phase per function, in the order of ``AArch64.AT()`` and KVM's at.c ``handle_at_slow()``:

- ``_plan`` (memoized per snapshot): the checks of ``AArch64.AT()`` and the regime
  (at.c ``compute_translation_regime()``); ``_not_executed``: the AT is UNDEFINED or trapped;
- ``_s1_disabled_output``: ``AArch64.S1DisabledOutput()`` (stage 1 off);
- ``setup_s1_walk``: ``AArch64.GetS1TTWParams()`` and the level 0 checks (``setup_s1_walk()``);
- ``walk_s1_leaf``: ``AArch64.S1Walk()`` (``walk_s1()``);
- ``_s1_check_permissions``: ``AArch64.S1CheckPermissions()`` (``compute_s1_permissions()``);
- ``_s1_set_access_flag``: ``AArch64.SetAccessFlag()`` (``__kvm_at_swap_desc()``);
- ``_s2_translate_final``: ``AArch64.S2Translate()`` of the final IPA (``__kvm_at_s12()``);
- ``_encode_par_s1``: ``AArch64.EncodePAR()`` (``compute_par_s1()``).

:func:`_s1_translate` (``AArch64.S1Translate()``) strings the stage 1 phases together.

>>> from atlab.scenario import load_scenarios
>>> sc = load_scenarios("tests/data/conformance/smoke.json")[0]
>>> print(sc.run_op(sc.ops[0]).par)
PAR_EL1=0xff00000045678b80 F=0 PA=0x45678000 ATTR=0xff SH=ISH NS=1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from atlab.attrs import (
    ATTR_NORMAL_WB_RWA,
    PAR_SH_IS_OSH,
    ATTR_DEVICE_nGnRnE,
    mair_attr,
    s12_par_attrs,
)
from atlab.bits import U64, bit, bits, mask
from atlab.faults import Fault, FaultKind
from atlab.features import Feature, FeatureSet
from atlab.memory import PhysMem
from atlab.par import Par
from atlab.perms import S1Perms, compute_s1_permissions, s1_access_allowed
from atlab.regime import (
    Access,
    AtDisposition,
    AtOp,
    Disposition,
    Regime,
    RegimeChoice,
    at_disposition,
    compute_translation_regime,
)
from atlab.syndrome import TakenException, s2_abort_on_s1_walk, trapped_sys, undefined
from atlab.sysregs import SysRegs
from atlab.trace import Trace, WalkStep
from atlab.walk_s1 import (
    LEAF_PERM_BITS,
    S1Start,
    S1WalkInfo,
    S1WalkResult,
    effective_tbi,
    s1_control_registers,
    s1_perm_bits,
    setup_s1_walk,
    walk_s1_leaf,
)
from atlab.walk_s2 import (
    AT_UPDATES_AF,
    S2Result,
    S2WalkInfo,
    setup_s2_walk,
    stage2_enabled,
    walk_s2,
    walk_s2_leaf,
)

#: The register the modelled AT instruction takes its address from (ESR ISS.Rt of a trap).
DEFAULT_RT = 1

#: IMPLEMENTATION DEFINED / permitted choice (PAR_EL1.ATTR and SH notes: "can be the resulting
#: attribute ... instead of the value that appears in the translation table descriptor"):
#: atlab reports the stage 1 attributes from the translation tables (MAIR), before the effect
#: of SCTLR_ELx.C=0, but applies HCR_EL2.CD=1 to stage 2 (``AArch64.S2TreatAsNormalNC()``:
#: stage 2 Normal memory reads Non-cacheable) — both as QEMU does.
PAR_REPORTS_TABLE_ATTRIBUTES = True


class Stage2Walker:
    """Stage 2 as seen by a stage 1 walk and the AT's final IPA (implements
    :class:`atlab.walk_s1.Stage2`).  :mod:`atlab.tlb` subclasses it to look stage 2 entries
    up in a TLB first."""

    def __init__(self, info: S2WalkInfo | Fault, mem: PhysMem, features: FeatureSet) -> None:
        self.info = info
        self.mem = mem
        self.features = features

    def translate(self, ipa: int, *, write: bool, s1ptw: bool, for_at: bool,
                  trace: list[WalkStep] | None) -> S2Result:
        if isinstance(self.info, Fault):
            f = Fault(self.info.kind, self.info.level, 2, s1ptw, ipa)
            return S2Result(f, ended=f"stage 2 configuration fault: {f}")
        return walk_s2(self.info, self.mem, ipa, self.features, write=write, s1ptw=s1ptw,
                       for_at=for_at, trace=trace)

    def translate_ptw(self, ipa: int, *, write: bool, s1_level: int,
                      trace: list[WalkStep] | None) -> int | Fault:
        info = self.info
        if isinstance(info, Fault):
            fault = self.translate(ipa, write=write, s1ptw=True, for_at=False, trace=trace).fault
            assert fault is not None
            return fault
        res = walk_s2_leaf(info, self.mem, ipa, self.features, write=write, s1ptw=True,
                           for_at=False, trace=trace)
        if isinstance(res, S2Result):
            assert res.fault is not None
            return res.fault
        return res[0]  # the PA


class WalkCache(Protocol):
    """What a TLB supplies to a walk (:mod:`atlab.tlb`): where a stage 1 walk may resume
    (a walk cache hit) and the stage 2 to translate through."""

    def s1_start(self, wi: S1WalkInfo, va: int) -> S1Start | None:
        """The level, table and accumulated table bits to resume at, or None."""
        ...

    def stage2(self, info: S2WalkInfo | Fault, mem: PhysMem, features: FeatureSet
               ) -> Stage2Walker:
        ...


@dataclass(frozen=True, slots=True)
class AtResult:
    """The outcome of one AT instruction: a PAR_EL1 value or the exception taken instead,
    with everything that explains it."""

    op: AtOp
    va: int
    cur_el: int
    disposition: AtDisposition
    par: Par | None = None
    exception: TakenException | None = None
    regime: RegimeChoice | None = None
    fault: Fault | None = None
    ipa: int | None = None  # stage 1 output address
    perms: S1Perms | None = None
    walk: str = ""  # the walk inputs, described
    trace: Trace = field(default_factory=Trace)

    def __str__(self) -> str:
        head = f"{self.op} VA={self.va:#x} at EL{self.cur_el}: "
        if self.par is not None:
            return head + str(self.par)
        if self.exception is not None:
            return head + str(self.exception)
        return head + self.disposition.reason

    def to_dict(self, *, full: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "op": self.op.name, "va": f"{self.va:#x}",
            "par": None if self.par is None else f"0x{self.par.value:016x}",
        }
        if not full:
            return out
        if self.par is not None:
            out["par_fields"] = {k: (f"{v:#x}" if k == "PA" else v)
                                 for k, v in self.par.fields().items()}
            out["par_text"] = str(self.par)
        if self.exception is not None:
            out["exception"] = self.exception.to_dict()
        out["disposition"] = self.disposition.reason
        if self.regime is not None:
            out["regime"] = self.regime.regime.value
            out["regime_el"] = self.regime.el
            out["regime_reason"] = self.regime.reason
        if self.walk:
            out["walk"] = self.walk
        if self.ipa is not None:
            out["stage1_output"] = f"{self.ipa:#x}"
        if self.perms is not None:
            out["permissions"] = str(self.perms)
        out["trace"] = self.trace.lines()
        out["accesses"] = {"stage1": self.trace.s1_accesses, "stage2": self.trace.s2_accesses,
                           "total": self.trace.total_accesses}
        return out


def run_at(
    op: AtOp,
    va: int,
    *,
    regs: SysRegs,
    mem: PhysMem,
    features: FeatureSet | None = None,
    cur_el: int = 2,
    pan: int | None = None,
    trace: bool = True,
    rt: int = DEFAULT_RT,
    cache: WalkCache | None = None,
) -> AtResult:
    """Execute ``AT <op>, Xt`` with ``Xt = va`` at ``cur_el`` (``AArch64.AT()``).

    ``pan`` overrides PSTATE.PAN (else ``PSTATE_PAN`` from ``regs``).  ``mem`` may be
    written: hardware Access-flag updates (see :data:`atlab.walk_s2.AT_UPDATES_AF`).
    ``cache`` supplies cached walk state (a TLB's walk cache and stage 2 entries, see
    :mod:`atlab.tlb`); without it every descriptor is read from ``mem``.

    The body is the sequence of phases, as at.c's ``handle_at_slow()``: does the AT execute
    and in which regime (:func:`_plan`), stage 1 (:func:`_s1_disabled_output` or
    :func:`_s1_translate`), stage 2 of the final IPA for AT S12E* (:func:`_s2_translate_final`),
    and the PAR (:func:`_encode_par_s1`).  Every phase that can fault returns the finished
    :class:`AtResult` of the fault (:func:`_fault_result`); the next phase does not run.
    """
    features = _ALL_FEATURES if features is None else features
    va &= U64
    plan = _plan(op, cur_el, regs, features)
    if plan.choice is None:
        return _not_executed(op, va, cur_el, plan.disp, rt)
    steps: list[WalkStep] | None = None
    notes: list[str] = []
    if trace:
        steps = []
        notes += plan.notes
    head: _Head = (op, va, cur_el, plan.disp, plan.choice, steps, notes)
    s2: Stage2Walker | None = None
    if plan.s2_info is not None:
        s2 = (Stage2Walker(plan.s2_info, mem, features) if cache is None
              else cache.stage2(plan.s2_info, mem, features))

    if plan.s1_enabled:
        s1 = _s1_translate(head, plan, regs, mem, features, pan, s2, cache, trace)
    else:
        s1 = _s1_disabled_output(head, plan.choice.regime, regs, features)
    if isinstance(s1, AtResult):  # the stage 1 fault
        return s1

    if plan.choice.stage2 and s2 is not None:
        return _s2_translate_final(head, plan, s1, s2, trace)
    return _encode_par_s1(head, plan, s1, s2 is not None, trace)


#: What every result of one AT starts with: (op, va, cur_el, disposition, regime choice, the
#: stage 1 trace steps or None, the trace notes).
_Head = tuple[AtOp, int, int, AtDisposition, RegimeChoice, list[WalkStep] | None, list[str]]

#: The output of stage 1: (output address, MAIR attribute, shareability, the permissions
#: (None with stage 1 disabled), the walk inputs described).
_S1Out = tuple[int, int, int, S1Perms | None, str]


def _not_executed(op: AtOp, va: int, cur_el: int, disp: AtDisposition, rt: int) -> AtResult:
    """``AArch64.AT()`` before any translation: the AT is UNDEFINED at ``cur_el`` or trapped
    to a higher EL (at.c leaves this to the trap handlers)."""
    if disp.kind is Disposition.UNDEFINED:
        exc = undefined(cur_el, disp.reason)
    else:
        info = op.info
        exc = trapped_sys(info.op1, 7, info.crm, info.op2, rt, disp.reason)
    return AtResult(op, va, cur_el, disp, exception=exc, trace=Trace(ended=disp.reason))


def _s1_disabled_output(head: _Head, regime: Regime, regs: SysRegs,
                        features: FeatureSet) -> _S1Out | AtResult:
    """``AArch64.S1DisabledOutput()``: flat mapping, default attributes; bits above PAMax
    (ignoring the top byte with TBI) give a level 0 Address size fault."""
    va, notes = head[1], head[6]
    tbi = effective_tbi(regime, regs[s1_control_registers(regime)[0]], bool(va >> 55 & 1))
    addrtop = 55 if tbi else 63
    if bits(va, addrtop, features.pa_max):
        return _fault_result(head, Fault(FaultKind.ADDRESS_SIZE, 0),
                             f"stage 1 disabled; VA bits [{addrtop}:{features.pa_max}] "
                             "are not zero: address size fault, level 0", None, None, "")
    ipa = va & mask(features.pa_max - 1, 0)
    if regime is Regime.EL10 and bit(regs["HCR_EL2"], 12):
        s1_attr, s1_sh = ATTR_NORMAL_WB_RWA, 0b00  # HCR_EL2.DC=1: Normal WB, NSH
        why = "HCR_EL2.DC=1"
    else:
        s1_attr, s1_sh = ATTR_DEVICE_nGnRnE, 0b10  # Device-nGnRnE, Outer Shareable
        why = _s1_off_reason(regime, regs)
    notes.append(f"stage 1 disabled ({why}): VA maps flat to {ipa:#x}")
    return ipa, s1_attr, s1_sh, None, f"stage 1 disabled ({why})"


def _s1_translate(head: _Head, plan: _Plan, regs: SysRegs, mem: PhysMem,
                  features: FeatureSet, pan: int | None, s2: Stage2Walker | None,
                  cache: WalkCache | None, trace: bool) -> _S1Out | AtResult:
    """``AArch64.S1Translate()`` with stage 1 enabled, as at.c's ``handle_at_slow()``: the
    walk inputs (:func:`~atlab.walk_s1.setup_s1_walk`, ``AArch64.GetS1TTWParams()`` and the
    level 0 checks), the walk (:func:`~atlab.walk_s1.walk_s1_leaf`, ``AArch64.S1Walk()``),
    the permissions (:func:`_s1_check_permissions`), the Access flag update
    (:func:`_s1_set_access_flag`) and then the permission fault, the attributes."""
    op, va, _, _, choice, steps, notes = head
    wi = setup_s1_walk(regs, features, choice.regime, choice.el, va)
    if isinstance(wi, Fault):
        return _fault_result(head, wi, f"{wi} before the walk (TxSZ, VA range, EPD/E0PD or "
                             "TTBR)", None, None, "")
    walk = wi.describe()  # computed once with the (memoized) walk inputs
    if trace:
        notes.append(walk)
    start = None if cache is None else cache.s1_start(wi, va)
    leaf = walk_s1_leaf(wi, mem, va, features, s2=s2, trace=steps, start=start)
    if isinstance(leaf, S1WalkResult):
        assert leaf.fault is not None
        return _fault_result(head, leaf.fault, leaf.ended, None, None, walk)
    level, desc, desc_addr, desc_pa, ipa, table_bits = leaf
    perms, allowed = _s1_check_permissions(plan, choice.el, regs, wi, desc, table_bits, pan)
    # AArch64.S1Translate(): the Access flag is set (HA=1) before the permission fault
    # is reported.
    if not desc >> 10 & 1 and wi.ha and AT_UPDATES_AF:
        upd = _s1_set_access_flag(wi, mem, s2, level, desc, desc_addr, desc_pa, steps)
        if upd is not None:  # stage 2 fault on the descriptor update
            assert upd.fault is not None
            return _fault_result(head, upd.fault, upd.ended, None, perms, walk)
    if not allowed:
        return _fault_result(head, Fault(FaultKind.PERMISSION, level),
                             f"permission fault, level {level}: {op} needs "
                             f"{plan.access.name.lower()} access, rights are {perms}",
                             None, perms, walk)
    # AArch64.S1Translate(): the memory attributes, AArch64.MAIRAttr() (AttrIndx[3]: AIE)
    return (ipa, mair_attr(wi.mair, wi.attr_index(desc)), wi.sh if wi.ds else desc >> 8 & 3,
            perms, walk)


def _s1_check_permissions(plan: _Plan, el: int, regs: SysRegs, wi: S1WalkInfo, desc: int,
                          table_bits: int, pan: int | None) -> tuple[S1Perms, bool]:
    """``AArch64.S1CheckPermissions()`` (at.c ``compute_s1_permissions()``): the rights of
    the leaf (:func:`~atlab.perms.compute_s1_permissions`) and whether the AT's access is
    allowed.  They depend only on the permission bits and the (immutable) configuration:
    computed once per register snapshot and combination."""
    pan_eff = False
    if plan.pan_op:  # only AT S1E1RP/WP look at PSTATE.PAN
        pan_eff = bool(regs.field("PSTATE_PAN", "PAN") if pan is None else pan)
    pkey = ("perms", desc & LEAF_PERM_BITS, table_bits, el, wi.unpriv, wi.nv1,
            pan_eff, wi.epan, wi.wxn, wi.hd, plan.access, wi.pie, wi.pir, wi.pire0,
            wi.poe, wi.e0poe, wi.por, wi.por_el0)
    cached = regs.memo.get(pkey)
    if cached is None:
        rights = compute_s1_permissions(
            s1_perm_bits(desc, table_bits, wi), has_unprivileged=wi.unpriv,
            nv1=wi.nv1, el=el, pan=pan_eff, epan=wi.epan, wxn=wi.wxn, hd=wi.hd)
        cached = (rights, s1_access_allowed(rights, plan.access))
        regs.memo[pkey] = cached
    assert isinstance(cached, tuple)
    return cached


def _s1_set_access_flag(wi: S1WalkInfo, mem: PhysMem, s2: Stage2Walker | None, level: int,
                        desc: int, desc_addr: int, desc_pa: int,
                        steps: list[WalkStep] | None) -> S2Result | None:
    """``AArch64.SetAccessFlag()`` and ``AArch64.MemSwapTableDesc()``: the hardware sets
    AF in the leaf (TCR_ELx.HA=1).  Under stage 2 the update is a write to the descriptor's
    IPA and needs stage 2 write permission: returns the stage 2 result that faulted, or None
    once the descriptor is written."""
    new = desc | (1 << 10)
    target = desc_pa
    if s2 is not None:
        upd = s2.translate(desc_addr, write=True, s1ptw=True, for_at=False, trace=steps)
        if upd.fault is not None:
            return upd
        target = upd.pa
    mem.write64(target, new, big_endian=wi.ee, purpose=f"S1 L{level} AF update")
    if steps is not None:
        steps.append(WalkStep(1, level, 0, 0, 0, desc_addr, target, new,
                              "update", "hardware sets AF", is_write=True))
    return None


def _s2_translate_final(head: _Head, plan: _Plan, s1: _S1Out, s2: Stage2Walker,
                        trace: bool) -> AtResult:
    """AT S12E*: ``AArch64.S2Translate()`` of the final IPA (at.c ``__kvm_at_s12()``) and
    the PAR of both stages (``AArch64.EncodePAR()``, at.c ``compute_par_s12()``)."""
    op, va, cur_el, disp, choice, steps, notes = head
    ipa, s1_attr, s1_sh, perms, walk = s1
    final: list[WalkStep] | None = [] if trace else None
    res = s2.translate(ipa, write=plan.access is Access.WRITE, s1ptw=False, for_at=True,
                       trace=final)
    if res.fault is not None:
        return _fault_result(head, res.fault, res.ended, ipa, perms, walk, final)
    assert isinstance(s2.info, S2WalkInfo)
    attr, sh = s12_par_attrs(s1_attr, s1_sh, res.memattr, res.sh, fwb=s2.info.fwb,
                             cd=s2.info.cd)
    par = Par.success(res.pa, attr, sh)
    ended = f"{plan.op_text}: IPA {ipa:#x} -> PA {res.pa:#x} ({res.ended})" if trace else ""
    return AtResult(op, va, cur_el, disp, par, None, choice, None, ipa, perms, walk,
                    _trace(steps, final, ended, notes))


def _encode_par_s1(head: _Head, plan: _Plan, s1: _S1Out, has_s2: bool,
                   trace: bool) -> AtResult:
    """The PAR of a stage 1 AT (``AArch64.EncodePAR()``, at.c ``compute_par_s1()``)."""
    op, va, cur_el, disp, choice, steps, notes = head
    ipa, s1_attr, s1_sh, perms, walk = s1
    # PAR_EL1.SH: 0b10 for Device and Normal Inner+Outer Non-cacheable memory.
    par = Par.success(ipa, s1_attr, 0b10 if s1_attr in PAR_SH_IS_OSH else s1_sh)
    ended = (f"{plan.op_text}: VA {va:#x} -> {'IPA' if has_s2 else 'PA'} {ipa:#x}"
             if trace else "")
    return AtResult(op, va, cur_el, disp, par, None, choice, None, ipa, perms, walk,
                    _trace(steps, None, ended, notes))


def _trace(steps: list[WalkStep] | None, final: list[WalkStep] | None, ended: str,
           notes: list[str]) -> Trace:
    if steps is None and not ended and not notes:
        return _NO_TRACE  # trace=False: nothing to record
    return Trace(tuple(steps or ()), tuple(final or ()), ended, tuple(notes))


def _fault_result(head: _Head, fault: Fault, ended: str, ipa: int | None,
                  perms: S1Perms | None, walk: str,
                  final: list[WalkStep] | None = None) -> AtResult:
    """The PAR of a fault, or the exception an AT at EL1 takes instead: a stage 2 fault on its
    stage 1 walk goes to EL2 (``AArch64.AT()``)."""
    op, va, cur_el, disp, choice, steps, notes = head
    tr = _trace(steps, final, ended, notes)
    if cur_el == 1 and fault.stage == 2 and fault.s1ptw:
        exc = s2_abort_on_s1_walk(fault, va, "stage 2 fault on the stage 1 walk of an AT "
                                  "executed at EL1 is taken to EL2 (AArch64.AT())")
        return AtResult(op, va, cur_el, disp, None, exc, choice, fault, ipa, perms, walk, tr)
    return AtResult(op, va, cur_el, disp, Par.from_fault(fault), None, choice, fault, ipa,
                    perms, walk, tr)


_NO_TRACE = Trace()
_ALL_FEATURES = FeatureSet.all()


@dataclass(frozen=True, slots=True)
class _Plan:
    """What an AT does before looking at the VA, per register snapshot (memoized)."""

    disp: AtDisposition
    choice: RegimeChoice | None  # None: the AT does not execute (UNDEFINED or trapped)
    access: Access
    pan_op: bool  # the op is S1E1RP/WP and FEAT_PAN is implemented
    s1_enabled: bool
    s2_info: S2WalkInfo | Fault | None  # stage 2 applies (for table walks and AT S12E*)
    notes: tuple[str, ...]  # the first lines of the trace
    op_text: str  # "AT S1E1R"


def _plan(op: AtOp, cur_el: int, regs: SysRegs, features: FeatureSet) -> _Plan:
    """The VA-independent first phase of ``AArch64.AT()``, memoized per register snapshot:
    whether the AT executes (:func:`~atlab.regime.at_disposition`), its translation regime
    (:func:`~atlab.regime.compute_translation_regime`, at.c ``compute_translation_regime()``),
    ``AArch64.S1Enabled()`` and, for the EL1&0 regime, the stage 2 walk inputs
    (:func:`~atlab.walk_s2.setup_s2_walk`, ``AArch64.GetS2TTWParams()``)."""
    key = ("at-plan", op, cur_el, features)
    plan = regs.memo.get(key)
    if plan is None:
        access = op.info.access
        disp = at_disposition(op, cur_el, regs, features)
        if disp.kind is not Disposition.EXECUTE:
            plan = _Plan(disp, None, access, False, False, None, (), str(op))
        else:
            choice = compute_translation_regime(op, regs, features)
            notes = [disp.reason, f"regime {choice.regime} (EL{choice.el} access): "
                     f"{choice.reason}"]
            s2_info: S2WalkInfo | Fault | None = None
            if choice.regime is Regime.EL10 and stage2_enabled(regs):
                s2_info = setup_s2_walk(regs, features)
                notes.append(f"stage 2 is enabled but misconfigured: {s2_info}"
                             if isinstance(s2_info, Fault) else s2_info.describe())
            plan = _Plan(disp, choice, access, op.info.pan and features.has(Feature.PAN),
                         s1_enabled(choice.regime, regs), s2_info, tuple(notes), str(op))
        regs.memo[key] = plan
    assert isinstance(plan, _Plan)
    return plan


def s1_enabled(regime: Regime, regs: SysRegs) -> bool:
    """``AArch64.S1Enabled()``: for EL1&0, HCR_EL2.{DC,TGE} must be {0,0} (EL2 is enabled)."""
    if regime is Regime.EL3:
        return bool(bit(regs["SCTLR_EL3"], 0))
    if regime in (Regime.EL2, Regime.EL20):
        return bool(bit(regs["SCTLR_EL2"], 0))
    hcr = regs["HCR_EL2"]
    return not bit(hcr, 12) and not bit(hcr, 27) and bool(bit(regs["SCTLR_EL1"], 0))


def _s1_off_reason(regime: Regime, regs: SysRegs) -> str:
    if regime is Regime.EL10 and bit(regs["HCR_EL2"], 27):
        return "HCR_EL2.TGE=1 disables the EL1&0 stage 1"
    return f"SCTLR_{regime.suffix}.M=0"
