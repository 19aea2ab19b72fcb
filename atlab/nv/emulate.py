"""Emulating AT for a guest hypervisor, the way KVM must (arch/arm64/kvm/at.c).

``emulate_at`` follows an AT from the running context to its result:

1. :func:`~atlab.nv.routing.route_at` — hardware, trap to L0, forward to L1, or UNDEFINED;
2. on a trap to L0, the **fast path**: L0 loads the right stage 1 registers into the hardware
   EL1 registers (L1's EL2 registers for its own regimes — with HCR_EL2.{NV,NV1} when
   vHCR_EL2.E2H=0 so that EL2 descriptor rules apply — or L2's EL1 registers), puts the
   stage 2 it has (L0's own stage 2 for L1, or the shadow stage 2) in VTTBR_EL2, and runs the
   hardware AT (atlab's own walker on the physical context).  Without ``kvm`` it accepts
   success or a stage 1 permission or Access flag fault (the result is then L1's either way);
   with ``kvm=KvmBehaviour(...)`` it applies that KVM version's rule (6.12: success or a
   stage 1 permission fault, :func:`atlab.nv.kvm.fast_par_accepted`);
3. otherwise the **software walker**: the same walk, reading L1's tables (and L2's, through
   L1's stage 2) in L1's IPA space through the host's own mapping of L1's memory
   (``kvm_read_guest()``): a hole in L0's stage 2 stays a hole, filled only when L1 itself
   touches the page (:meth:`~atlab.nv.model.NvSystem.l1_access`);
4. the PAR in L1's terms.

:func:`reference_at` is what L1 must see: a plain AT with L1's registers loaded at a real EL2
and L1's IPA space as physical memory.  "The lie must be perfect": the property tests check
``emulate_at(...) == reference_at(...)``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace

from atlab.at import AtResult, run_at
from atlab.bits import bit, bits, set_bits
from atlab.errors import AtlabError
from atlab.faults import Fault, FaultKind
from atlab.features import Feature
from atlab.nv.kvm import (
    DEVIATIONS,
    KvmAtResult,
    fast_par_accepted,
    fast_path_deviations,
    fast_path_regs,
    kvm_at,
    kvm_sanitise,
    live_vel2_regs,
)
from atlab.nv.model import L0_VTCR, NvSystem, page_of
from atlab.nv.routing import Context, Route, RouteKind, loaded_hcr_el2, route_at
from atlab.par import Par
from atlab.regime import AtOp, Regime, compute_translation_regime
from atlab.syndrome import EC_DABT_LOWER, TakenException, undefined
from atlab.sysregs import SysRegs
from atlab.walk_s2 import S2WalkInfo, setup_s2_walk, stage2_enabled, walk_s2


@dataclass(frozen=True, slots=True)
class KvmBehaviour:
    """Emulate the AT as KVM ``version`` does (:mod:`atlab.nv.kvm`, judged by KVM's own at.c)
    instead of as the architecture requires.

    ``fast_path``: L0 first tries the hardware AT on a loaded context (at.c's
    ``__kvm_at_s1e01_fast``/``__kvm_at_s1e2``); ``False`` is a fast path that always fails,
    as in the userspace build of at.c in ``fails`` mode, so the software walker always runs.
    """

    version: str = "6.12"
    fast_path: bool = True

    @staticmethod
    def kvm(version: str = "6.12", *, fast_path: bool = True) -> KvmBehaviour:
        return KvmBehaviour(version, fast_path)


@dataclass(frozen=True, slots=True)
class NvAtResult:
    """An emulated AT: where it went, what L1 (or L2) sees, and the story of how."""

    op: AtOp
    va: int
    context: Context
    route: Route
    par: Par | None
    exception: TakenException | None
    fast_path: AtResult | None = None
    fast_path_accepted: bool | None = None
    software: AtResult | None = None
    narration: tuple[str, ...] = ()
    kvm: KvmAtResult | None = None

    @property
    def path(self) -> str:
        """How L0 answered: ``"fast path"``, ``"software walker"``, or for AT S12E* whose
        stage 1 the fast path gave, ``"fast path (stage 1) + software walk of L1's stage 2"``
        (``"fast path (stage 1 only)"`` when KVM does not walk stage 2 at all, e.g. 6.12 with
        vHCR_EL2.E2H=0); a stage 1 fault from the fast path is returned at once
        (``"fast path"``)."""
        if self.route.kind is not RouteKind.TRAP_L0:
            return str(self.route.kind.value)
        if not self.fast_path_accepted:
            return "software walker"
        fast_par = None if self.fast_path is None else self.fast_path.par
        if not self.op.is_s12 or fast_par is None or fast_par.f:
            return "fast path"
        if self.kvm is not None and not any("kvm_walk_nested_s2" in line
                                            for line in self.kvm.steps):
            return "fast path (stage 1 only)"
        return "fast path (stage 1) + software walk of L1's stage 2"

    def outcome(self) -> str:
        if self.par is not None:
            return str(self.par)
        if self.exception is not None:
            return str(self.exception)
        return "no result"

    def __str__(self) -> str:
        return "\n".join(self.narration)

    def _repr_html_(self) -> str:
        rows = "".join(f"<li>{html.escape(line)}</li>" for line in self.narration)
        return f"<ol>{rows}</ol>"

    def to_dict(self, *, full: bool = False) -> dict[str, object]:
        out: dict[str, object] = {
            "op": self.op.name, "va": f"{self.va:#x}",
            "par": None if self.par is None else f"0x{self.par.value:016x}",
            "route": self.route.kind.name, "path": self.path,
        }
        if self.exception is not None:
            out["exception"] = self.exception.to_dict()
        if self.kvm is not None:
            out["kvm_deviations"] = sorted(self.kvm.fired)
        if full:
            out["narration"] = list(self.narration)
        return out


def _hw_regs_for_l1_el2(vregs: SysRegs, features_nv: bool) -> SysRegs:
    """L1's EL2 stage 1 registers multiplexed onto the hardware EL1 registers."""
    e2h = vregs.field("HCR_EL2", "E2H")
    tcr2 = vregs["TCR_EL2"]
    if e2h:
        tcr1 = tcr2
        ttbr1 = vregs["TTBR1_EL2"]
    else:
        # TCR_EL2 (E2H=0 layout) -> TCR_EL1 layout; no TTBR1 range: EPD1=1.
        tcr1 = (tcr2 & 0xFFFF) | (bits(tcr2, 18, 16) << 32) | (bit(tcr2, 20) << 37)
        tcr1 |= (bit(tcr2, 21) << 39) | (bit(tcr2, 22) << 40) | (bit(tcr2, 24) << 41)
        tcr1 |= (bit(tcr2, 32) << 59) | (1 << 23)
        ttbr1 = 0
    hcr = (1 << 31) | 1 | (1 << 34)  # RW, VM (L0's stage 2 for L1), E2H (L0 is VHE)
    if not e2h and features_nv:
        hcr |= (1 << 42) | (1 << 43)  # NV, NV1: EL1&0 walks use the EL2 descriptor format
    return SysRegs({
        "HCR_EL2": hcr, "SCTLR_EL1": vregs["SCTLR_EL2"], "TCR_EL1": tcr1,
        "TTBR0_EL1": vregs["TTBR0_EL2"], "TTBR1_EL1": ttbr1, "MAIR_EL1": vregs["MAIR_EL2"],
        "VTCR_EL2": L0_VTCR,
    })


def _hw_regs_for_l2(vregs: SysRegs) -> SysRegs:
    """L2's EL1 registers loaded as they are; L1's vHCR_EL2 controls that change the EL1&0
    walk (DC, NV, NV1) folded into the real HCR_EL2; vTGE=1 disables the EL1&0 stage 1."""
    vhcr = vregs["HCR_EL2"]
    hcr = (1 << 31) | 1 | (1 << 34)
    for b in (2, 12, 32, 42, 43, 46):  # PTW, DC, CD, NV, NV1, FWB
        hcr |= vhcr & (1 << b)
    sctlr = vregs["SCTLR_EL1"]
    if bit(vhcr, 27):
        sctlr = set_bits(sctlr, 0, 0, 0)
    return SysRegs({
        "HCR_EL2": hcr, "SCTLR_EL1": sctlr, "TCR_EL1": vregs["TCR_EL1"],
        "TTBR0_EL1": vregs["TTBR0_EL1"], "TTBR1_EL1": vregs["TTBR1_EL1"],
        "MAIR_EL1": vregs["MAIR_EL1"], "VTCR_EL2": L0_VTCR,
    })


_HW_OP = {AtOp.S1E2R: AtOp.S1E1R, AtOp.S1E2W: AtOp.S1E1W, AtOp.S1E2A: AtOp.S1E1A,
          AtOp.S12E1R: AtOp.S1E1R, AtOp.S12E1W: AtOp.S1E1W, AtOp.S12E0R: AtOp.S1E0R,
          AtOp.S12E0W: AtOp.S1E0W}


def _accept_fast(res: AtResult) -> tuple[bool, str]:
    """KVM's rule: keep the hardware PAR on success or a stage 1 permission/AF fault."""
    par = res.par
    if par is None:
        return False, "the hardware AT took an exception"
    if not par.f:
        return True, "success"
    fault = Fault.from_fst(par.fault_status, stage=1 + par.s, s1ptw=bool(par.ptw))
    if par.s == 0 and fault.kind in (FaultKind.PERMISSION, FaultKind.ACCESS_FLAG):
        return True, f"stage 1 {fault.kind.value} fault: the stage 1 walk itself completed"
    return False, f"{fault}: the hardware could not walk L1's view of the tables"


def emulate_at(system: NvSystem, op: AtOp, va: int, *, kvm: KvmBehaviour | None = None,
               trace: bool = True, pan: int | None = None) -> NvAtResult:
    """Execute ``AT <op>`` from ``system.context`` and return what the guest sees: as the
    architecture requires (``kvm=None``) or as KVM does (``kvm=KvmBehaviour(...)``).
    ``pan`` overrides the guest's PSTATE.PAN for this AT."""
    if pan is not None and pan != system.pan:
        saved, system.pan = system.pan, pan & 1
        try:
            return emulate_at(system, op, va, kvm=kvm, trace=trace)
        finally:
            system.pan = saved
    vregs, feats = system.vregs, system.features
    ctx = system.context
    route = route_at(ctx, op, vregs, feats)
    story = [f"{ctx.value} executes {op}, VA {va:#x}",
             f"loaded by L0: {loaded_hcr_el2(ctx, vregs, feats)}", f"route: {route}"]

    if route.kind is RouteKind.UNDEFINED:
        target = 2 if ctx is Context.L1_VEL2 else 1
        exc = undefined(target, route.reason)
        story.append(f"=> {exc} (in the guest's terms)")
        return NvAtResult(op, va, ctx, route, None, exc, narration=tuple(story))
    if route.kind is RouteKind.FORWARD_L1:
        ref = run_at(op, va, regs=vregs, mem=system.flat_l1_memory(), features=feats,
                     cur_el=1, pan=system.pan, trace=False)
        story.append(f"L0 injects the trap into L1's vEL2: {ref.exception}")
        return NvAtResult(op, va, ctx, route, ref.par, ref.exception, narration=tuple(story))
    if route.kind is RouteKind.HARDWARE:
        return _run_l2_in_hardware(system, op, va, route, story, trace)

    # --- trapped to L0: fast path, then the software walker -----------------------------------
    choice = compute_translation_regime(op, vregs, feats)
    story.append(f"L0 computes L1's regime from vHCR_EL2.{{E2H,TGE}}: {choice.regime} "
                 f"({choice.reason})")
    own = choice.regime in (Regime.EL2, Regime.EL20)
    if own:
        hw_regs = _hw_regs_for_l1_el2(vregs, feats.has(Feature.NV))
        vttbr = system.materialize_s2(system.l0_stage2_pages(), slot=0)
        story.append("fast path: L0 loads L1's EL2 stage 1 registers into the hardware EL1 "
                     "registers and its own stage 2 for L1 into VTTBR_EL2"
                     + (" (HCR_EL2.{NV,NV1}=1: EL2 descriptor rules)"
                        if not vregs.field("HCR_EL2", "E2H") else ""))
    else:
        hw_regs = _hw_regs_for_l2(vregs)
        if stage2_enabled(vregs):
            vttbr = system.materialize_s2(system.shadow, slot=1)
            story.append(f"fast path: L0 loads L2's EL1 registers and the shadow stage 2 "
                         f"({len(system.shadow)} entries) into VTTBR_EL2")
        else:
            vttbr = system.materialize_s2(system.l0_stage2_pages(), slot=0)
            story.append("fast path: L0 loads L2's EL1 registers; L1's stage 2 is off, so the "
                         "hardware stage 2 is L0's own stage 2 for L1")
    hw_regs = _reuse(system, hw_regs.replace(VTTBR_EL2=vttbr))
    hw_op = _HW_OP.get(op, op)
    if kvm is not None:
        return _emulate_as_kvm(system, op, va, route, story, kvm, hw_regs, hw_op, own, trace)
    fast = run_at(hw_op, va, regs=hw_regs, mem=system.mem, features=feats, cur_el=2,
                  pan=system.pan, trace=trace)
    accepted, why = _accept_fast(fast)
    story.append(f"hardware {hw_op} -> {fast.par or fast.exception}")
    if accepted and (not op.is_s12 or (fast.par is not None and fast.par.f)):
        # A stage 1 fault is final for AT S12E* too: it is returned at once.
        assert fast.par is not None
        story.append(f"fast path accepted ({why})")
        story.append(f"=> L1 reads {fast.par}")
        return NvAtResult(op, va, ctx, route, fast.par, None, fast, True,
                          narration=tuple(story))
    if accepted:
        story.append(f"fast path gave the stage 1 result ({why}); AT {op.name} still needs "
                     "L1's stage 2, which is never resident: software walk")
    else:
        story.append(f"fast path rejected ({why}); falling back to the software walker")
    # SIMPLIFIED: for AT S12E* the software walker redoes stage 1 as well as L1's stage 2.
    soft = run_at(op, va, regs=vregs, mem=system.l1_view(), features=feats, cur_el=2,
                  pan=system.pan, trace=trace)
    # L2's tables (the EL1&0 regime under L1's stage 2) live in L2 IPA space.
    l2_tables = choice.regime is Regime.EL10 and stage2_enabled(vregs)
    for step in soft.trace.steps:
        where = system.backed_pa(step.desc_pa)
        if l2_tables and step.stage == 1 and step.kind == "not read":
            story.append(f"software walk: {step}  [L2 IPA {step.desc_addr:#x}: L1's stage 2 "
                         "does not translate it, nothing read]")
            continue
        if l2_tables and step.stage == 1:
            hop = _hops(("L2 IPA", step.desc_addr), ("L1 IPA", step.desc_pa), ("PA", where))
        else:  # a stage 1 table of L1's own regime, or a table of L1's stage 2: an L1 IPA
            hop = _hops(("L1 IPA", step.desc_pa), ("PA", where))
        story.append(f"software walk: {step}  [{hop}, read with kvm_read_guest()]")
    for s2 in soft.trace.final_s2:
        story.append(f"software walk of L1's stage 2: {s2}")
    story.append("L0's stage 2 for L1 is unchanged: the software walker reads L1's memory "
                 "through the host's mapping, so its holes stay holes")
    story.append(f"=> L1 reads {soft.par if soft.par is not None else soft.exception}")
    return NvAtResult(op, va, ctx, route, soft.par, soft.exception, fast, accepted, soft,
                      tuple(story))


def _emulate_as_kvm(system: NvSystem, op: AtOp, va: int, route: Route, story: list[str],
                    kvm: KvmBehaviour, hw_regs: SysRegs, hw_op: AtOp, own: bool,
                    trace: bool) -> NvAtResult:
    """The trapped AT as KVM ``kvm.version`` handles it: the hardware fast path where at.c
    tries one, then :func:`atlab.nv.kvm.kvm_at` (at.c's acceptance rule and software path)."""
    vregs, feats = system.vregs, system.features
    fast: AtResult | None = None
    fast_par: int | None = None
    kvm_regs: dict[str, int] = {}
    hw_pan = 0
    e2h, tge = vregs.field("HCR_EL2", "E2H"), vregs.field("HCR_EL2", "TGE")
    if not kvm.fast_path:
        story.append("fast path: fails (no hardware AT in this configuration)")
    elif not own and not (e2h and tge) and not system.shadow_mmu:
        story.append("fast path: lookup_s2_mmu() finds no shadow stage 2 MMU for L1's "
                     "VTTBR_EL2: straight to the software walker")
    elif op is AtOp.S1E2A and not feats.has(Feature.ATS1A):
        pass  # handle_at_s1e2 injects UNDEFINED before any AT runs
    else:
        if op.info.el < 2 and e2h and tge:  # __kvm_at_s1e01_fast: skip_mmu_switch
            story.append("vHCR_EL2.{E2H,TGE}={1,1}: no MMU switch, the live vEL2 context is "
                         "the right one")
        held, live = kvm_live_context(system)
        kvm_regs = fast_path_regs(op, held, live, pan=system.pan)
        hw_pan = kvm_regs.pop("PSTATE_PAN")
        story.append("KVM loads " + ", ".join(f"{k}={v:#x}" for k, v in kvm_regs.items())
                     + f", PSTATE.PAN={hw_pan}")
        if not kvm_regs["HCR_EL2"] >> 31 & 1:
            raise AtlabError(f"KVM {kvm.version}'s fast path runs AT {hw_op.name} with "
                             f"HCR_EL2={kvm_regs['HCR_EL2']:#x} (RW=0: an AArch32 EL1&0 walk, "
                             "fast-hcr-unsaved), which atlab does not model")
        hw = _reuse(system, SysRegs(kvm_regs))
        fast = run_at(hw_op, va, regs=hw, mem=system.mem, features=feats, cur_el=2,
                      pan=hw_pan, trace=trace)
        # __kvm_at() fails only if the AT instruction itself takes an exception.
        fast_par = None if fast.par is None else fast.par.value
        story.append(f"hardware {hw_op} -> {fast.par or fast.exception}")
    res = kvm_at(op, va, vregs=vregs, mem=system.l1_view(), features=feats, pan=system.pan,
                 version=kvm.version, fast_par=fast_par)
    accepted = fast_par is not None and fast_par_accepted(fast_par)
    if accepted and fast is not None:
        # What the hardware would answer on the context the architecture calls for (the
        # arch-mode fast path, checked equal to the reference AT by the property tests).
        right = run_at(hw_op, va, regs=hw_regs, mem=system.mem, features=feats, cur_el=2,
                       pan=system.pan, trace=False)
        if right.par != fast.par:
            right_regs = {**hw_regs.values, "PSTATE_PAN": system.pan if op.info.pan else 0}
            why = fast_path_deviations(op, vregs, {**kvm_regs, "PSTATE_PAN": hw_pan},
                                       right_regs, own)
            res = replace(res, fired=res.fired | why)
            story.append(f"on the right context the hardware would answer "
                         f"{right.par or right.exception}")
    if fast_par is not None:
        story.append("fast path accepted (success or a stage 1 permission fault)" if accepted
                     else "fast path rejected: at.c replays the AT in software")
    for line in res.steps:
        story.append(f"KVM {kvm.version}: {line}")
    for name in sorted(res.fired):
        story.append(f"KVM {kvm.version} departs from the Arm ARM here: {name} "
                     f"({DEVIATIONS[name].summary})")
    if res.undef:
        exc = undefined(2, f"KVM injects UNDEFINED for AT {op.name}")
        story.append(f"=> {exc}")
        return NvAtResult(op, va, system.context, route, None, exc, fast, accepted,
                          narration=tuple(story), kvm=res)
    par = Par(res.par if res.par is not None else 0)
    story.append(f"=> L1 reads {par}")
    return NvAtResult(op, va, system.context, route, par, None, fast, accepted,
                      narration=tuple(story), kvm=res)


def kvm_live_context(system: NvSystem) -> tuple[SysRegs, dict[str, int]]:
    """L1's virtual registers as KVM 6.12 holds them (:func:`atlab.nv.kvm.kvm_sanitise`), and
    what is on the CPU when L1's AT traps at vEL2: the live EL1 registers and HCR_EL2
    (:func:`atlab.nv.kvm.live_vel2_regs`, ``__compute_hcr()``), L0's stage 2 for L1 in
    VTTBR_EL2/VTCR_EL2, and ``SHADOW_VTTBR_EL2``, what ``__load_stage2()`` loads for L2 (the
    shadow stage 2, or L0's own when L1's stage 2 is off)."""
    held = kvm_sanitise(system.vregs, system.features)
    live = live_vel2_regs(held, loaded_hcr_el2(Context.L1_VEL2, held, system.features).value)
    l0 = system.materialize_s2(system.l0_stage2_pages(), slot=0)
    shadow = system.materialize_s2(system.shadow, slot=1) if stage2_enabled(held) else l0
    return held, {**live, "VTTBR_EL2": l0, "VTCR_EL2": L0_VTCR, "SHADOW_VTTBR_EL2": shadow}


def _hops(*chain: tuple[str, int | None]) -> str:
    """``L2 IPA 0x1000 -> L1 IPA 0x5000 -> PA 0x9000`` for the narration; an address a stage
    leaves unchanged is not shown as a translation (``L2 IPA = L1 IPA 0x1000``), and ``None``
    is a page the host never allocated."""
    out = ""
    prev: int | None = None
    for i, (name, addr) in enumerate(chain):
        text = "unbacked" if addr is None else f"{addr:#x}"
        if i == 0:
            out = f"{name} {text}"
        elif addr is not None and addr == prev:
            head, _, tail = out.rpartition(" ")
            out = f"{head} = {name} {tail}"
        else:
            out += f" -> {name} {text}"
        prev = addr
    return out


def _reuse(system: NvSystem, regs: SysRegs) -> SysRegs:
    """The snapshot L0 loaded last time if it holds the same values (so that what was derived
    from it, e.g. the decoded walk parameters, is reused)."""
    for known in system.loaded:
        if known == regs:
            return known
    system.loaded.append(regs)
    del system.loaded[:-4]
    return regs


def _run_l2_in_hardware(system: NvSystem, op: AtOp, va: int, route: Route,
                        story: list[str], trace: bool) -> NvAtResult:
    """L2 at EL1 runs the AT itself on the shadow stage 2; a stage 2 abort goes to L0, which
    fixes the shadow from L1's stage 2 and retries, or injects the abort into L1."""
    vregs, feats = system.vregs, system.features
    use_shadow = stage2_enabled(vregs)
    s2info = setup_s2_walk(vregs, feats) if use_shadow else None
    for attempt in range(64):
        pages = system.shadow if use_shadow else system.l0_stage2_pages()
        vttbr = system.materialize_s2(pages, slot=1 if use_shadow else 0)
        hw = _hw_regs_for_l2(vregs).replace(VTTBR_EL2=vttbr)
        res = run_at(op, va, regs=hw, mem=system.mem, features=feats, cur_el=1,
                     pan=system.pan, trace=trace)
        exc = res.exception
        if exc is None or exc.ec != EC_DABT_LOWER:
            story.append(f"hardware {op} at EL1 -> {res.par or exc}")
            return NvAtResult(op, va, Context.L2_EL1, route, res.par, exc,
                              narration=tuple(story))
        l2_ipa = (exc.hpfar >> 4) << 12
        story.append(f"attempt {attempt + 1}: stage 2 abort on the walk at L2 IPA "
                     f"{l2_ipa:#x}: taken to L0")
        if not use_shadow:
            system.l1_ipa_to_pa(l2_ipa, allocate=True)
            story.append("L0 (invisible to L1): maps the page in its own stage 2; retry")
            continue
        if isinstance(s2info, Fault) or s2info is None:
            fault = s2info if isinstance(s2info, Fault) else Fault(FaultKind.TRANSLATION, 0, 2)
            return _inject(system, op, va, route, story, fault, l2_ipa)
        assert isinstance(s2info, S2WalkInfo)
        l1 = walk_s2(s2info, system.l1_view(), l2_ipa, feats, write=False, s1ptw=True,
                     for_at=False)
        if l1.fault is not None:
            return _inject(system, op, va, route, story, l1.fault, l2_ipa)
        if page_of(l2_ipa) in system.shadow:
            # The shadow already maps the page with L1's permissions: the abort is L1's own
            # (e.g. no stage 2 write permission for the stage 1 Access flag update).
            l1w = walk_s2(s2info, system.l1_view(), l2_ipa, feats, write=True, s1ptw=True,
                          for_at=False)
            if l1w.fault is None:  # pragma: no cover - would be a modelling error
                raise AssertionError(f"stage 2 abort at L2 IPA {l2_ipa:#x} that L1's stage 2 "
                                     "does not explain")
            return _inject(system, op, va, route, story, l1w.fault, l2_ipa)
        pa = system.add_shadow(l2_ipa, l1.pa, l1.desc, l1.level)
        hop = _hops(("L2 IPA", l2_ipa), ("L1 IPA", l1.pa), ("PA", pa | (l1.pa & 0xFFF)))
        story.append(f"L0 walks L1's stage 2: {hop}; adds it to the shadow stage 2 and "
                     "retries")
    # Each round adds a shadow entry for a page that had none, and a walk needs at most
    # 5 stage 1 tables + the final IPA; 64 rounds is a modelling error.
    raise AtlabError(f"the shadow stage 2 did not settle for {op} {va:#x} after 64 stage 2 "
                     "aborts (a modelling limit)")  # pragma: no cover


def _inject(system: NvSystem, op: AtOp, va: int, route: Route, story: list[str],
            fault: Fault, l2_ipa: int) -> NvAtResult:
    iss = fault.fst | (1 << 6) | (1 << 7) | (1 << 8)
    exc = TakenException(2, EC_DABT_LOWER, iss, far=va, hpfar=(l2_ipa >> 12) << 4,
                         reason="L1's own stage 2 does not map the table: L0 injects the "
                         "stage 2 abort into L1")
    story.append(f"L1's stage 2 faults ({fault}): L0 injects the Data Abort into L1 (taken to "
                 f"its vEL2): {exc}")
    return NvAtResult(op, va, Context.L2_EL1, route, None, exc, narration=tuple(story))


def reference_at(system: NvSystem, op: AtOp, va: int, *,
                 pan: int | None = None) -> AtResult | TakenException:
    """What the guest must see: the plain AT with L1's registers at a real EL2 (or L2 at a
    real EL1) and L1's IPA space as physical memory (``pan`` overrides PSTATE.PAN)."""
    if system.context is Context.L2_EL0:
        return undefined(1, "AT at EL0")
    el = 2 if system.context is Context.L1_VEL2 else 1
    return run_at(op, va, regs=system.vregs, mem=system.flat_l1_memory(),
                  features=system.features, cur_el=el,
                  pan=system.pan if pan is None else pan & 1, trace=False)
