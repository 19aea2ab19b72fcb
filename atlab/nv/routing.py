"""Trap routing of AT instructions under nested virtualization.

One function, :func:`route_at`, says what happens when the running context executes an AT.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from atlab.features import Feature, FeatureSet
from atlab.regime import AtOp
from atlab.sysregs import SysRegs


class Context(enum.Enum):
    """Which guest context is running on the PE."""

    L1_VEL2 = "L1 at vEL2"  # the guest hypervisor, at physical EL1 with HCR_EL2.NV=1
    L2_EL1 = "L2 at EL1"  # L1's guest kernel
    L2_EL0 = "L2 at EL0"  # L1's guest user space


class RouteKind(enum.Enum):
    HARDWARE = "executes in hardware"
    TRAP_L0 = "traps to L0, which emulates it"
    FORWARD_L1 = "traps to L0, which forwards it to L1"
    UNDEFINED = "UNDEFINED"


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    reason: str
    rule: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.reason} [{self.rule}]"


@dataclass(frozen=True, slots=True)
class LoadedHcr:
    """The real HCR_EL2 L0 programs while ``context`` runs, and why each bit is set."""

    value: int
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"HCR_EL2=0x{self.value:016x} (" + "; ".join(self.reasons) + ")"


#: vHCR_EL2 bits KVM does not fold into the real HCR_EL2 (vhe/switch.c,
#: ``NV_HCR_GUEST_EXCLUDE`` in 6.12): TGE, API, APK.
NV_HCR_GUEST_EXCLUDE = (1 << 27) | (1 << 41) | (1 << 40)


def loaded_hcr_el2(context: Context, vregs: SysRegs, features: FeatureSet) -> LoadedHcr:
    """What L0 (a VHE host, KVM 6.12's ``__compute_hcr()``) loads into the real HCR_EL2 for
    the running guest context.

    - Always: RW=1 (EL1 is AArch64), VM=1 (a stage 2 is always on for a guest), E2H=1 (L0 is
      a VHE host), TGE=0 (the guest runs at EL1/EL0, not in L0's host regime).  (KVM also
      sets trap bits that do not change translation: TSC, TWI, TWE, TID3 ...)
    - L1 at vEL2 (``is_hyp_ctxt()``): NV=1 (EL2 instructions and registers at EL1 trap or
      are redirected), NV2 with FEAT_NV2 (register accesses go to memory), AT=1 (the
      hardware EL1 registers hold L1's EL2 context, so an EL1 AT would translate the wrong
      regime: trap it), TTLB=1 (an EL1 TLBI would hit the wrong context), NV1=1 when
      vHCR_EL2.E2H=0 (L1's nVHE EL2 tables use the EL2 descriptor format).
    - Both contexts: every bit of L1's vHCR_EL2 is ORed in except TGE, API and APK
      (:data:`NV_HCR_GUEST_EXCLUDE`): this is how vHCR_EL2.AT reaches the hardware while L2
      runs (L2's AT then traps to L0, which forwards it to L1), and also how vHCR_EL2.DC or
      PTW reach the hardware while L1 itself runs at vEL2.
    - VTTBR_EL2: L0's own stage 2 for L1 (vEL2), or the shadow stage 2 (L2).
    """
    rw, vm, nv, nv1, nv2, at, e2h = 1 << 31, 1, 1 << 42, 1 << 43, 1 << 45, 1 << 44, 1 << 34
    ttlb = 1 << 25
    value = rw | vm | e2h
    reasons = ["RW, VM, E2H=1 (L0 is a VHE host), TGE=0"]
    vhcr = vregs["HCR_EL2"]
    if context is Context.L1_VEL2:
        if features.has(Feature.NV):
            value |= nv | at | ttlb
            reasons.append("NV=1: L1's EL2 runs at EL1")
            if features.has(Feature.NV2):
                value |= nv2
                reasons.append("NV2=1: L1's EL2 register accesses go to memory")
            reasons.append("AT=1: EL1 AT would use L1's EL2 context loaded in the EL1 registers")
            reasons.append("TTLB=1: an EL1 TLBI would hit L1's EL2 context")
            if not vregs.field("HCR_EL2", "E2H"):
                value |= nv1
                reasons.append("NV1=1: vHCR_EL2.E2H=0, L1's EL2 tables use the EL2 format")
    folded = vhcr & ~NV_HCR_GUEST_EXCLUDE & ~value
    if not features.has(Feature.NV):
        folded &= ~(nv | nv1 | at | nv2)
    if folded:
        value |= folded
        named = (("AT", at), ("NV", nv), ("NV1", nv1), ("DC", 1 << 12), ("PTW", 1 << 2),
                 ("CD", 1 << 32), ("FWB", 1 << 46), ("TTLB", ttlb))
        other = folded
        names = []
        for name, b in named:
            if folded & b:
                names.append(name)
                other &= ~b
        what = ", ".join(names + ([f"{other:#x}"] if other else []))
        reasons.append(f"{what} folded from L1's vHCR_EL2 (all but TGE, API, APK)")
    if context is Context.L1_VEL2:
        reasons.append("VTTBR_EL2 = L0's stage 2 for L1")
    else:
        reasons.append("VTTBR_EL2 = the shadow stage 2" if vhcr & vm or vhcr & (1 << 12)
                       else "VTTBR_EL2 = L0's stage 2 for L1 (L1's stage 2 is off)")
    return LoadedHcr(value, tuple(reasons))


def route_at(context: Context, op: AtOp, vregs: SysRegs, features: FeatureSet) -> Route:
    """Where an AT executed by ``context`` goes.  ``vregs`` holds L1's *virtual* EL2
    registers (vHCR_EL2 as ``HCR_EL2`` ...).  L0 runs L1's vEL2 at physical EL1 with
    HCR_EL2.NV=1 and HCR_EL2.AT=1, and folds L1's vHCR_EL2.{AT,NV} into the real HCR_EL2
    while L2 runs.

    ================  =====================================  ==================================
    context           op                                     outcome
    ================  =====================================  ==================================
    L1 at vEL2        S1E2*, S12E*                           trap to L0: HCR_EL2.NV=1 (C5.4
                                                             "Executing AT S1E2R": EL1 with
                                                             HCR_EL2.NV=1 -> EC 0x18 to EL2)
    L1 at vEL2        S1E0*, S1E1* (incl. RP/WP/A)           trap to L0: HCR_EL2.AT=1 set by L0,
                                                             because the hardware EL1 registers
                                                             hold L1's EL2 context, not L2's
    L1 at vEL2        S1E3*                                  UNDEFINED (below EL3)
    L2 at EL1         S1E0*, S1E1*, vHCR_EL2.AT=1            forwarded to L1: L0 sees the trap
                                                             (it folded AT into HCR_EL2) and
                                                             injects it into L1's vEL2
    L2 at EL1         S1E0*, S1E1*, vHCR_EL2.AT=0            hardware: L2's EL1 registers and the
                                                             shadow stage 2 are loaded; a stage 2
                                                             abort on the shadow goes to L0
    L2 at EL1         S1E2*, S12E*, vHCR_EL2.NV=1            forwarded to L1 (L2 is itself a
                                                             guest hypervisor)
    L2 at EL1         S1E2*, S12E*, vHCR_EL2.NV=0; S1E3*     UNDEFINED (at EL1)
    L2 at EL0         any                                    UNDEFINED (AT is UNDEFINED at EL0)
    any               op whose feature L1 does not see        UNDEFINED (e.g. S1E1A without
                      (FEAT_PAN2, FEAT_ATS1A)                FEAT_ATS1A)
    ================  =====================================  ==================================
    """
    info = op.info
    if info.feature is not None and not features.has(info.feature):
        return Route(RouteKind.UNDEFINED, f"{op} needs {info.feature.value}",
                     "C5.4: feature not implemented")
    if context is Context.L2_EL0:
        return Route(RouteKind.UNDEFINED, "AT instructions are UNDEFINED at EL0",
                     "C5.4: PSTATE.EL == EL0 -> UNDEFINED")
    if info.el == 3:
        return Route(RouteKind.UNDEFINED, f"{op} is UNDEFINED below EL3",
                     "C5.4: PSTATE.EL < EL3 -> UNDEFINED")
    el2_op = info.el == 2 or info.stages == 12
    if context is Context.L1_VEL2:
        if el2_op:
            return Route(RouteKind.TRAP_L0, "L1's vEL2 runs at EL1 with HCR_EL2.NV=1",
                         "C5.4: EL1 && HCR_EL2.NV == 1 -> trap to EL2 (EC 0x18)")
        return Route(RouteKind.TRAP_L0, "L0 sets HCR_EL2.AT=1 while L1 runs at vEL2",
                     "C5.4: EL1 && HCR_EL2.AT == 1 -> trap to EL2 (EC 0x18)")
    nv = features.has(Feature.NV)
    if el2_op:
        if nv and vregs.field("HCR_EL2", "NV"):
            return Route(RouteKind.FORWARD_L1, "L1's vHCR_EL2.NV=1: L2 is a guest hypervisor",
                         "C5.4: EL1 && HCR_EL2.NV == 1 -> trap to (v)EL2")
        return Route(RouteKind.UNDEFINED, f"{op} is UNDEFINED at EL1",
                     "C5.4: EL1 && HCR_EL2.NV == 0 -> UNDEFINED")
    if nv and vregs.field("HCR_EL2", "AT"):
        return Route(RouteKind.FORWARD_L1, "L1's vHCR_EL2.AT=1 traps L2's AT to L1",
                     "C5.4: EL1 && HCR_EL2.AT == 1 -> trap to (v)EL2")
    return Route(RouteKind.HARDWARE, "L2's EL1 context and the shadow stage 2 are loaded",
                 "no trap applies")
