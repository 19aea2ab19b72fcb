"""What KVM's own AT emulation computes: a model of the software path of
``arch/arm64/kvm/at.c`` and of the nested stage 2 walker of ``arch/arm64/kvm/nested.c``,
version by version.

The rest of atlab follows the Arm ARM.  This module follows *KVM*: it answers "what does L1 read
in PAR_EL1 after KVM emulated its AT?", and it is judged by KVM's own code built in userspace
(``python -m tools.difftest --kvm``).  Where KVM departs from the architecture the model
departs the same way, and names the departure: every such place records a
:class:`KvmDeviation` in the result (``fired``) when it changed something, so that a difference
between KVM and the architecture is never unexplained.  :data:`DEVIATIONS` is the table (it is
also printed in the README and in chapter 08).

The phases are at.c's: ``compute_translation_regime`` -> ``setup_s1_walk`` -> ``walk_s1`` ->
permissions (``handle_at_slow``) -> ``compute_par_s1``; for AT S12E*, ``__kvm_at_s12``:
stage 1 first, then ``kvm_walk_nested_s2`` of the IPA and ``compute_par_s12``.

Versions: ``"6.12"`` is Debian's linux-source-6.12 (6.12.118), the first kernel with at.c.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from atlab.attrs import (
    PAR_SH_IS_OSH,
    combine_shareability,
    s2_constrain_reserved_memattr,
    s12_par_attrs,
)
from atlab.bits import bit, bits, mask
from atlab.errors import AtlabError
from atlab.features import Feature, FeatureSet
from atlab.memory import PhysMem
from atlab.regime import Access, AtOp
from atlab.sysregs import SysRegs
from atlab.walk_s2 import s2_device

#: The kernel versions modelled.
KVM_VERSIONS = ("6.12",)


#: Features ``limit_nv_id_regs()`` (nested.c, 6.12) hides from a guest hypervisor, in atlab's
#: terms: ID_AA64MMFR1_EL1 keeps only HCX, PAN, LO, HPDS, VH and VMIDBits (so no HAFDBS, no
#: XNX), ID_AA64MMFR2_EL1 loses ST (TTST) and VARange (LVA), and PARange is capped at 48
#: bits (so no FEAT_LPA).
NV_HIDDEN_FEATURES = (Feature.HAFDBS, Feature.XNX, Feature.TTST, Feature.LVA, Feature.LPA)


def kvm_nv_features(host: FeatureSet) -> FeatureSet:
    """The features KVM 6.12 advertises to a guest hypervisor on a host with ``host``
    (``limit_nv_id_regs()``): what an L1 that reads its ID registers can use."""
    return FeatureSet(host.features - set(NV_HIDDEN_FEATURES), min(host.pa_max, 48))


def kvm_sanitise(vregs: SysRegs, features: FeatureSet) -> SysRegs:
    """L1's virtual registers as KVM 6.12 holds them: the registers backed by the VNCR page are
    read through ``kvm_vcpu_sanitise_vncr_reg()`` with the RES0/RES1 masks of
    ``kvm_init_nv_sysregs()`` (the userspace build has no such masking, so its input is
    sanitised here; only the bits that change translation are modelled):

    - VTCR_EL2: bits 63:32 and 30:20 RES0 (so DS, SL2, HA, HD ... always read 0), bit 31 RES1;
    - HCR_EL2: bit 48 and 63:59 RES0; FWB without FEAT_S2FWB, NV2 without FEAT_NV2, NV, NV1
      and AT without FEAT_NV; RW RES1;
    - SCTLR_EL1: bit 17 RES0, EPAN without FEAT_PAN3.
    """
    vtcr = (vregs["VTCR_EL2"] & ~(mask(63, 32) | mask(30, 20))) | (1 << 31)
    hcr_res0 = (1 << 48) | mask(63, 59)
    if not features.has(Feature.S2FWB):
        hcr_res0 |= 1 << 46
    if not features.has(Feature.NV2):
        hcr_res0 |= 1 << 45
    if not features.has(Feature.NV):
        hcr_res0 |= (1 << 42) | (1 << 43) | (1 << 44)
    hcr = (vregs["HCR_EL2"] & ~hcr_res0) | (1 << 31)
    sctlr_res0 = (1 << 17) | (0 if features.has(Feature.PAN3) else 1 << 57)
    changes = {"HCR_EL2": hcr, "SCTLR_EL1": vregs["SCTLR_EL1"] & ~sctlr_res0}
    if "VTCR_EL2" in vregs.values:
        changes["VTCR_EL2"] = vtcr
    return vregs.replace(**changes)


def kvm_ipa_limit(features: FeatureSet) -> int:
    """KVM's IPA limit (``get_kvm_ipa_limit()``, also ``kvm_get_pa_bits()`` in 6.12) on a host
    PE with ``features``, 4KB host pages: 52 bits only with FEAT_LPA2 and a 52-bit PA."""
    if features.pa_max >= 52:
        return 52 if features.has(Feature.LPA2) else 48
    return features.pa_max


# PAR_EL1 bits at.c builds (SYS_PAR_EL1_*).
_F, _PTW, _S, _RES1_NSE = 1, 1 << 8, 1 << 9, 1 << 11
# Fault status codes (ESR_ELx_FSC_*).
_FSC_ADDRSZ, _FSC_FAULT, _FSC_ACCESS, _FSC_PERM, _FSC_SEA_TTW = 0x00, 0x04, 0x08, 0x0C, 0x14
_FSC_FAULT_NL = 0x2C


class Verdict(enum.Enum):
    """How a departure from the Arm ARM is judged."""

    BUG = "differs from the Arm ARM"
    PERMITTED = "a choice the Arm ARM leaves open"


@dataclass(frozen=True, slots=True)
class KvmDeviation:
    """One named place where KVM's emulated AT differs from what the architecture gives.

    ``par_bits`` are the PAR_EL1 bits the deviation can change (``None``: the outcome itself,
    any bit).  ``rule`` names the Arm ARM rule or pseudocode; ``versions`` the kernels that have
    it; ``where`` the kernel function it comes from.
    """

    name: str
    summary: str
    rule: str
    verdict: Verdict
    versions: tuple[str, ...] = ("6.12",)
    par_bits: int | None = None
    #: where in the kernel tree (6.12) the behaviour comes from
    where: str = ""


def _dev(*items: KvmDeviation) -> Mapping[str, KvmDeviation]:
    return MappingProxyType({d.name: d for d in items})


#: Every deviation the model knows, by name.
DEVIATIONS: Mapping[str, KvmDeviation] = _dev(
    KvmDeviation("ptw-on-stage1-fault",
                 "a stage 1 translation, address size or external abort fault found by the "
                 "software walk reports PAR_EL1.PTW=1",
                 "PAR_EL1.PTW is 1 only for a stage 2 fault on a stage 1 table walk "
                 "(AArch64.AT(), CreateFaultyParFromFault)", Verdict.BUG,
                 where="at.c: walk_s1() (fail_s1_walk(..., true, false) on its exits)",
                 par_bits=_PTW),
    KvmDeviation("no-access-flag-fault",
                 "the stage 1 walk never checks the Access flag: AF=0 without TCR_ELx.HA "
                 "translates", "AArch64.S1Walk(): descriptor<10> == '0' with "
                 "walkparams.ha == '0' is an Access flag fault", Verdict.BUG,
                 where="at.c: walk_s1() / handle_at_slow() (no AF check)"),
    KvmDeviation("s2-fault-level-is-s1-level",
                 "a stage 2 fault on a stage 1 table access reports the stage 1 level",
                 "the fault record's level is the stage 2 walk's (AArch64.S2Walk, "
                 "PAR_EL1.FST)", Verdict.BUG,
                 where="at.c: walk_s1() ((s2_trans.esr & ~ESR_ELx_FSC_LEVEL) | level)",
                 par_bits=mask(6, 1)),
    KvmDeviation("no-ns-bit",
                 "a successful PAR has NS (bit 9) = 0",
                 "PAR_EL1.NS is UNKNOWN for a Non-secure translation regime",
                 Verdict.PERMITTED,
                 where="at.c: compute_par_s1(), compute_par_s12()",
                 par_bits=1 << 9),
    KvmDeviation("s12-no-bit11",
                 "a successful AT S12E* PAR has bit 11 = 0 (at.c sets NSE/RES1 only in the "
                 "stage 1 PAR)", "PAR_EL1 bit 11 is RES1 without FEAT_RME", Verdict.BUG,
                 where="at.c: compute_par_s12()",
                 par_bits=1 << 11),
    KvmDeviation("sctlr-c0-attr-nc",
                 "with SCTLR_ELx.C=0 PAR.ATTR reports Normal Non-cacheable (0x44) for Normal "
                 "memory and SH=0b10",
                 "PAR_EL1.ATTR may report the descriptor's attributes or the resulting ones "
                 "(D24.2 PAR_EL1; atlab reports MAIR's)", Verdict.PERMITTED,
                 where='at.c: compute_par_s1() ("Force NC for memory if SCTLR_ELx.C is clear")',
                 par_bits=mask(63, 56) | mask(8, 7)),
    KvmDeviation("oa-48-bits",
                 "output addresses stop at bit 47: TCR_ELx.{I}PS=0b110 reads as 48 bits and "
                 "descriptor/TTBR bits 51:48 are ignored",
                 "AArch64.S1OAOutOfRange / AArch64.PhysicalAddressSize with FEAT_LPA/LPA2 "
                 "(52-bit OA)", Verdict.BUG,
                 where="at.c: setup_s1_walk()/walk_s1() (GENMASK_ULL(47, ...)); "
                 "kvm_nested.h: ps_to_output_size()"),
    KvmDeviation("no-hardware-af-update",
                 "with TCR_ELx.HA=1 an AF=0 descriptor is neither updated nor checked: no "
                 "stage 2 write permission is needed for the update",
                 "AArch64.S1Translate with FEAT_HAFDBS: the AF update is a write, checked at "
                 "stage 2", Verdict.BUG,
                 where="at.c: walk_s1() (no TCR_ELx.HA handling in 6.12)"),
    KvmDeviation("no-dirty-state",
                 "a stage 1 DBM=1 descriptor with hardware dirty state (TCR_ELx.{HA,HD}) is "
                 "read-only (AP[2] taken as is)",
                 "AArch64.S1DirectBasePermissions: with hardware dirty state, DBM=1 makes the "
                 "descriptor writable-clean", Verdict.BUG,
                 where="at.c: handle_at_slow(); __kvm_at_s12() (no DBM handling)"),
    KvmDeviation("no-hcr-ptw",
                 "HCR_EL2.PTW is ignored: a stage 1 table in stage 2 Device memory is read",
                 "AArch64.S2Translate for a stage 1 walk with HCR_EL2.PTW=1: a stage 2 "
                 "Permission fault on Device memory", Verdict.BUG,
                 where="at.c: walk_s1() (only kvm_s2_trans_readable() is checked)"),
    KvmDeviation("no-52bit-blocks",
                 "a block at level 0 (4KB, DS=1) or level 1 (16KB DS=1, 64KB) is a "
                 "translation fault", "AArch64.BlockDescSupported", Verdict.BUG,
                 where="at.c: walk_s1() (valid_block)"),
    KvmDeviation("ds-never-allows-52bit-va",
                 "with TCR_ELx.DS=1 (4KB/16KB) a TxSZ below 16 is a Translation fault at level "
                 "0: setup_s1_walk's ``lva &= tcr & TCR_DS`` on a bool is always false",
                 "AArch64.S1MinTxSZ with FEAT_LPA2 and DS=1: TxSZ down to 12 (R_GTJBY)",
                 Verdict.BUG,
                 where="at.c: setup_s1_walk() (lva &= tcr & TCR_DS)"),
    KvmDeviation("ds-sh-from-descriptor",
                 "with TCR_ELx.DS=1 PAR.SH comes from descriptor bits 9:8 (OA[51:50] there) "
                 "instead of TCR_ELx.SH{0,1}", "AArch64.S1LeafBase/S1Shareability with DS=1",
                 Verdict.BUG,
                 where="at.c: compute_sh()",
                 par_bits=mask(8, 7)),
    KvmDeviation("no-nv1-descriptors",
                 "vHCR_EL2.{NV,NV1}={1,1} does not change the EL1&0 descriptor format "
                 "(AP[1], PXN/UXN) for the emulated AT",
                 "AArch64.S1DirectBasePermissions with HCR_EL2.{NV,NV1}={1,1}",
                 Verdict.BUG,
                 where="at.c: handle_at_slow() (AArch64.S1DirectBasePermissions() part)"),
    KvmDeviation("s12-e2h0-skips-stage2",
                 "AT S12E* with vHCR_EL2.E2H=0 (TGE 0 or 1) returns the stage 1 PAR: stage 2 "
                 "is never walked", "AArch64.AT(): S12E* uses stage 2 whenever it is enabled "
                 "(HCR_EL2.{VM,DC})", Verdict.BUG,
                 where='at.c: __kvm_at_s12() ("E2H=0 or TGE=1" early return)'),
    KvmDeviation("va-top-bits-addrsz",
                 "a VA whose top bits are not a sign extension of bit 55 (no TBI) gives an "
                 "Address size fault at level 0", "AArch64.S1Translate: a VA out of range is "
                 "a Translation fault at level 0 (R_YYVYV, I_THCZK)", Verdict.BUG,
                 where="at.c: setup_s1_walk() (goto addrsz)",
                 par_bits=mask(6, 1)),
    KvmDeviation("s2-input-range-unchecked",
                 "an IPA above VTCR_EL2.T0SZ's range is not a stage 2 fault: the index "
                 "wraps", "AArch64.S2Translate: IPA out of range -> Translation fault at the "
                 "start level", Verdict.BUG,
                 where="nested.c: walk_nested_s2_pgd()"),
    KvmDeviation("s2-bad-geometry",
                 "an invalid VTCR_EL2.{T0SZ,SL0} combination is -EFAULT (WARN at "
                 "check_base_s2_limits): PAR.FST carries only the stage 1 level (an "
                 "'Address size fault'), and AT S12E* keeps the stage 1 PAR",
                 "AArch64.S2InvalidSL / S2InconsistentSL: a stage 2 Translation fault at "
                 "level 0", Verdict.BUG,
                 where="nested.c: walk_nested_s2_pgd() / check_base_s2_limits()"),
    KvmDeviation("s1e1a-undefined",
                 "AT S1E1A from vEL2 is UNDEFINED: 6.12's trap table has no AT S1E1A entry "
                 "(AT S1E2A has one)", "AT S1E1A is implemented with FEAT_ATS1A (C5.4)",
                 Verdict.BUG,
                 where="sys_regs.c: sys_insn_descs[] (no AT_S1E1A entry)"),
    KvmDeviation("e2h-without-vhe",
                 "vHCR_EL2.E2H=1 selects the EL2&0 regime even without FEAT_VHE (not "
                 "reachable in practice: KVM's NV guests always have FEAT_VHE)",
                 "HCR_EL2.E2H is RES0 without FEAT_VHE", Verdict.BUG,
                 where="at.c: compute_translation_regime() (vcpu_el2_e2h_is_set())"),
    KvmDeviation("vtcr-upper-bits-res0",
                 "VTCR_EL2 bits 63:32 and 30:20 are RES0 for the guest hypervisor "
                 "(kvm_init_nv_sysregs): VTCR_EL2.{DS, SL2, HA, HD, ...} written by L1 read "
                 "as 0", "VTCR_EL2.DS/SL2 with FEAT_LPA2, HA/HD with FEAT_HAFDBS: KVM 6.12 "
                 "advertises neither at stage 2 to an NV guest (ID_AA64MMFR0_EL1.TGRAN4_2="
                 "0b0010, no HAFDBS), so this is consistent with its ID registers; atlab's one "
                 "FEAT_LPA2 covers both stages", Verdict.PERMITTED,
                 where="nested.c: kvm_init_nv_sysregs() (VTCR_EL2 res0)"),
    KvmDeviation("s2-block-levels",
                 "stage 2 blocks allowed only from level 1 (4KB) / 2 (16KB, 64KB): no level 0 "
                 "or 52-bit level 1 blocks", "AArch64.BlockDescSupported", Verdict.BUG,
                 where="nested.c: walk_nested_s2_pgd() (first_block_level)"),
    KvmDeviation("sh-reserved-as-nsh",
                 "a descriptor SH=0b01 (reserved) is reported as Non-shareable",
                 "SH=0b01 is CONSTRAINED UNPREDICTABLE: atlab, like QEMU, reports "
                 "the field", Verdict.PERMITTED,
                 where="at.c: compute_sh()",
                 par_bits=mask(8, 7)),
    KvmDeviation("s2-vttbr-addrsz-level",
                 "VTTBR_EL2 above the stage 2 output size is an Address size fault at the "
                 "stage 2 start level", "AArch64.S2Walk: an out-of-range VTTBR_EL2.BADDR "
                 "is an Address size fault at level 0", Verdict.BUG,
                 where="nested.c: walk_nested_s2_pgd() (base_addr check)",
                 par_bits=mask(6, 1)),
    KvmDeviation("par-sh-osh-rule",
                 "PAR.SH is forced to 0b10 only for Device and MAIR 0x44; other Non-cacheable "
                 "encodings (FEAT_XS 0x40, reserved 0bxxxx0000) report the descriptor's SH",
                 "PAR_EL1.SH reads 0b10 for Device and Normal Inner+Outer Non-cacheable "
                 "memory (D24.2 PAR_EL1)", Verdict.BUG,
                 where="at.c: compute_sh() (MEMATTR_IS_DEVICE || MEMATTR(NC, NC))",
                 par_bits=mask(8, 7)),
    KvmDeviation("fast-nv1-on-l2-walk",
                 "hardware fast path for AT S1E0*/S1E1* with vHCR_EL2.E2H=0: L2's EL1&0 walk "
                 "runs with the live HCR_EL2.{NV,NV1}={1,1} of L1's vEL2 (EL0 loses AP[1] "
                 "access, bit 54 is PXN), and a permission fault or success is kept",
                 "AArch64.S1DirectBasePermissions: the {NV,NV1}={1,1} format applies only "
                 "when L1 set them for its guest", Verdict.BUG,
                 where="at.c: __kvm_at_s1e01_fast() (HCR_EL2 = config.hcr & ~TGE | VM)"),
    KvmDeviation("fast-pan-not-copied",
                 "hardware fast path for AT S1E1RP/WP: at_s1e1p_fast() sets PSTATE.PAN from "
                 "``*vcpu_cpsr(vcpu) & PSTATE_PAN``, the MSR-immediate encoding (0x80) instead "
                 "of PSR_PAN_BIT: the AT runs with PAN=0 and a success is kept",
                 "AT S1E1RP/WP check PSTATE.PAN (AArch64.AT(), C5.4)", Verdict.BUG,
                 where="at.c: at_s1e1p_fast() (*vcpu_cpsr(vcpu) & PSTATE_PAN)"),
    KvmDeviation("fast-hcr-unsaved",
                 "hardware fast path for AT S1E0*/S1E1* with vHCR_EL2.{E2H,TGE}={1,1}: "
                 "HCR_EL2 is written from a struct mmu_config that was never saved (0 with "
                 "INIT_STACK_ALL_ZERO: HCR_EL2=VM only, RW=0, E2H=0) and is not restored "
                 "afterwards", "the AT must translate in the EL2&0 regime (AArch64.AT())",
                 Verdict.BUG,
                 where="at.c: __kvm_at_s1e01_fast() (skip_mmu_switch: config.hcr never saved)"),
    KvmDeviation("fast-el2-register-translation",
                 "hardware fast path for AT S1E2* with vHCR_EL2.E2H=0: the walk uses "
                 "translate_tcr_el2_to_tcr_el1(), which drops TCR_EL2.{HPD, HA, HD, DS, SH0}, "
                 "and translate_sctlr_el2_to_sctlr_el1()",
                 "AArch64.S1Translate for the EL2 regime reads TCR_EL2 as written",
                 Verdict.BUG,
                 where="at.c: __kvm_at_s1e2(); kvm_nested.h: translate_tcr_el2_to_tcr_el1()"),
    KvmDeviation("fast-folded-vhcr",
                 "hardware fast path: L1's vHCR_EL2 bits folded into the live HCR_EL2 "
                 "(DC, PTW, CD, FWB, NV, NV1) change the walk the hardware AT does",
                 "HCR_EL2.{DC,PTW,CD,FWB,NV1} of L1 apply to its guest's EL1&0 regime only, "
                 "not to L1's own EL2 regime", Verdict.BUG,
                 where="vhe/switch.c: __compute_hcr(); at.c: __kvm_at_s1e2()"),
    KvmDeviation("fast-vtge-ignored",
                 "hardware fast path for AT S1E0*/S1E1* with vHCR_EL2.{E2H,TGE}={0,1}: L2's "
                 "stage 1 runs although the EL1&0 stage 1 is disabled",
                 "AArch64.S1Enabled(): HCR_EL2.TGE=1 disables the EL1&0 stage 1",
                 Verdict.BUG,
                 where="at.c: __kvm_at_s1e01_fast()"),
    KvmDeviation("contiguous-aligned-oa",
                 "a descriptor with the Contiguous bit translates with its output address "
                 "aligned to the contiguous range",
                 "a misprogrammed Contiguous range is CONSTRAINED UNPREDICTABLE; "
                 "atlab translates with the descriptor's own address", Verdict.PERMITTED,
                 where="at.c / nested.c: contiguous_bit_shift()"),
    KvmDeviation("s2-attr-combination",
                 "stage 1 x stage 2 attributes combined with at.c's own table (reserved "
                 "MemAttr read as Non-cacheable, Device kept as min(), FWB cases)",
                 "S2CombineS1MemAttrs / S2ApplyFWBMemAttrs", Verdict.BUG,
                 where="at.c: compute_par_s12(), s2_memattr_to_attr(), combine_s1_s2_attr()",
                 par_bits=mask(63, 56) | mask(8, 7)),
    KvmDeviation("mmu-off-pa-48",
                 "with stage 1 off, the output address keeps bits 47:12 only (in PAR.PA, and "
                 "as the IPA AT S12E* gives to stage 2)",
                 "AArch64.S1DisabledOutput: PA = VA (up to the PA size)", Verdict.BUG,
                 where="at.c: compute_par_s1() (wr->pa & GENMASK_ULL(47, 12))"),
)


@dataclass(frozen=True, slots=True)
class KvmAtResult:
    """What KVM did for one trapped AT: the PAR_EL1 it wrote (``written``), or UNDEFINED
    injected; ``warn``: WARN_ON sites hit; ``fired``: the deviations that changed the result;
    ``steps``: what the software walk read, in at.c's terms."""

    op: AtOp
    va: int
    par: int | None
    written: bool
    undef: bool = False
    warn: tuple[str, ...] = ()
    fired: frozenset[str] = frozenset()
    steps: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.undef:
            return f"AT {self.op.name} {self.va:#x}: KVM injects UNDEFINED"
        note = "" if self.written else " (not written)"
        return f"AT {self.op.name} {self.va:#x}: PAR_EL1=0x{self.par or 0:016x}{note}"


# --- the state one emulated AT works on -------------------------------------------------------


@dataclass(slots=True)
class _Ctx:
    vregs: SysRegs
    mem: PhysMem
    features: FeatureSet
    pan: int
    ipa_limit: int
    fired: set[str] = field(default_factory=set)
    warn: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def fire(self, name: str) -> None:
        assert name in DEVIATIONS, name
        self.fired.add(name)

    def read_desc(self, addr: int, big_endian: bool) -> int | None:
        """kvm_read_guest(): RAM is every IPA below the IPA limit (else -EFAULT)."""
        if addr >= 1 << self.ipa_limit:
            return None
        return self.mem.read64(addr, big_endian=big_endian, purpose="kvm_read_guest")


class _Regime(enum.Enum):
    EL10 = "EL1&0"
    EL20 = "EL2&0"
    EL2 = "EL2"


@dataclass(slots=True)
class _WalkInfo:  # s1_walk_info
    regime: _Regime
    baddr: int = 0
    max_oa_bits: int = 48
    pgshift: int = 12
    txsz: int = 0
    sl: int = 0
    hpd: bool = False
    be: bool = False
    s2: bool = False
    ds: bool = False


@dataclass(slots=True)
class _WalkResult:  # s1_walk_result: success fields, or a fault (fst, ptw, s2)
    failed: bool = False
    fst: int = 0
    ptw: bool = False
    s2: bool = False
    mmu_off: bool = False
    desc: int = 0
    pa: int = 0
    level: int = 0
    ap_table: int = 0
    uxn_table: int = 0
    pxn_table: int = 0

    def fail(self, fst: int, *, ptw: bool, s2: bool) -> None:
        self.failed, self.fst, self.ptw, self.s2 = True, fst & 0xFF, ptw, s2


def _fsc(base: int, level: int) -> int:
    """ESR_ELx_FSC_*_L(level) as the C macros compute it (level -1 included)."""
    if base == _FSC_FAULT and level < 0:
        return _FSC_FAULT_NL + level
    return (base + level) & 0xFF


def _ps_to_output_size(ps: int) -> int:
    return {0: 32, 1: 36, 2: 40, 3: 42, 4: 44}.get(ps, 48)


def _pgshift_tg0(tg: int) -> int:
    return {0b00: 12, 0b10: 14}.get(tg, 16)  # IMPDEF in at.c: any other value is 64KB


def _pgshift_tg1(tg: int) -> int:
    return {0b10: 12, 0b01: 14}.get(tg, 16)


def _sign_extend55(va: int) -> int:
    return va | mask(63, 56) if bit(va, 55) else va & mask(55, 0)


# --- compute_translation_regime / setup_s1_walk -----------------------------------------------


def _regime_for(op: AtOp, vregs: SysRegs) -> _Regime:
    e2h, tge = vregs.field("HCR_EL2", "E2H"), vregs.field("HCR_EL2", "TGE")
    if op.info.el == 2 and op.info.stages == 1:
        return _Regime.EL20 if e2h else _Regime.EL2
    return _Regime.EL20 if e2h and tge else _Regime.EL10


def _setup_s1_walk(c: _Ctx, op: AtOp, va: int, wi: _WalkInfo, wr: _WalkResult) -> int | None:
    """Fill the walk inputs; return the (sign-extended) VA, or None when ``wr`` holds a
    fault or the MMU-off result."""
    vregs, f = c.vregs, c.features
    hcr = vregs["HCR_EL2"]
    el2 = wi.regime is _Regime.EL2
    as_el0 = op in (AtOp.S1E0R, AtOp.S1E0W, AtOp.S12E0R, AtOp.S12E0W)
    va55 = bit(va, 55)
    if el2 and va55:
        c.fire("va-top-bits-addrsz")
        wr.fail(_fsc(_FSC_ADDRSZ, 0), ptw=False, s2=False)
        return None
    wi.s2 = wi.regime is _Regime.EL10 and bool(hcr & (1 | 1 << 12))  # VM | DC
    sfx = "EL1" if wi.regime is _Regime.EL10 else "EL2"
    sctlr, tcr = vregs[f"SCTLR_{sfx}"], vregs[f"TCR_{sfx}"]
    ttbr = vregs[f"TTBR{1 if va55 else 0}_{sfx}"]
    tbi = bit(tcr, 20) if el2 else bit(tcr, 38 if va55 else 37)
    if not tbi and _sign_extend55(va) != va:
        # Architecture: a Translation fault at level 0 for a VA outside both ranges.
        c.fire("va-top-bits-addrsz")
        wr.fail(_fsc(_FSC_ADDRSZ, 0), ptw=False, s2=False)
        return None
    va = _sign_extend55(va)
    off = (wi.regime is _Regime.EL10 and bool(hcr & (1 << 12 | 1 << 27))) or not bit(sctlr, 0)
    if off:
        wr.mmu_off = True
        if va >= 1 << c.ipa_limit:
            if va < 1 << c.features.pa_max:
                c.fire("oa-48-bits")
            wr.fail(_fsc(_FSC_ADDRSZ, 0), ptw=False, s2=False)
            return None
        wr.pa = va
        return None
    wi.be = bool(bit(sctlr, 25))
    wi.hpd = f.has(Feature.HPDS) and bool(bit(tcr, 24) if el2 else bit(tcr, 42 if va55 else 41))
    if va55:
        wi.txsz, wi.pgshift = bits(tcr, 21, 16), _pgshift_tg1(bits(tcr, 31, 30))
    else:
        wi.txsz, wi.pgshift = bits(tcr, 5, 0), _pgshift_tg0(bits(tcr, 15, 14))
    # R_PLCGL, R_YXNYW
    max_txsz = 39 if not f.has(Feature.TTST) else 47 if wi.pgshift == 16 else 48
    if wi.txsz > max_txsz:
        _fault_l0(wr)
        return None
    # R_GTJBY, R_SXWGM
    ds = bool(bit(tcr, 32) if el2 else bit(tcr, 59))
    wi.ds = ds and wi.pgshift != 16 and f.has(Feature.LPA2)
    if wi.pgshift == 16:
        lva = f.has(Feature.LVA)
    else:
        # at.c 6.12: ``lva &= tcr & TCR_DS`` on a bool: the DS bit (59, or 32 for TCR_EL2) is
        # far above bit 0, so the AND is always 0 and DS=1 never allows TxSZ < 16.
        lva = False
        if wi.ds and wi.txsz < 16:
            c.fire("ds-never-allows-52bit-va")
    if (lva and wi.txsz < 12) or (not lva and wi.txsz < 16):
        _fault_l0(wr)
        return None
    ia_bits = 64 - wi.txsz
    if (not va55 and va > mask(ia_bits - 1, 0)) or (va55 and va < mask(63, ia_bits)):
        _fault_l0(wr)
        return None  # R_YYVYV, I_THCZK
    if not el2 and bit(tcr, 23 if va55 else 7):  # I_ZFSYQ: EPDn
        _fault_l0(wr)
        return None
    if f.has(Feature.E0PD) and as_el0 and bit(tcr, 56 if va55 else 55):  # R_BNDVG
        _fault_l0(wr)
        return None
    stride = wi.pgshift - 3
    wi.sl = 3 - ((ia_bits - 1 - wi.pgshift) // stride)  # AArch64.S1StartLevel()
    ps = bits(tcr, 18, 16) if el2 else bits(tcr, 34, 32)
    if ps == 0b110 and c.features.pa_max >= 52:
        c.fire("oa-48-bits")
    wi.max_oa_bits = min(c.ipa_limit, _ps_to_output_size(ps))
    x = 3 + ia_bits - ((3 - wi.sl) * stride + wi.pgshift)
    baddr = ttbr & mask(47, 1)
    if bits(ttbr, 5, 2) and wi.ds:
        c.fire("oa-48-bits")  # TTBR[5:2] hold OA[51:48] with DS=1
    if _oa_out_of_range(baddr, wi):  # R_VPBBF
        wr.fail(_fsc(_FSC_ADDRSZ, 0), ptw=False, s2=False)
        return None
    wi.baddr = baddr & mask(wi.max_oa_bits - 1, x)
    return va


def _fault_l0(wr: _WalkResult) -> None:
    """setup_s1_walk's ``transfault_l0`` exit."""
    wr.fail(_fsc(_FSC_FAULT, 0), ptw=False, s2=False)


def _oa_out_of_range(addr: int, wi: _WalkInfo) -> bool:
    return wi.max_oa_bits < 48 and bool(addr & mask(47, wi.max_oa_bits))


def _contiguous_differs(desc: int, addr: int, bottom: int, shift: int) -> bool:
    """Whether aligning to the contiguous range changes the output address: the descriptor's
    own OA bits inside the range differ from the input address's."""
    return bits(desc, bottom + shift - 1, bottom) != bits(addr, bottom + shift - 1, bottom)


def _contiguous_shift(desc: int, pgshift: int, level: int) -> int:
    if not bit(desc, 52):
        return 0
    return {12: 4, 16: 5}.get(pgshift, 5 if level == 2 else 7)


# --- walk_s1 ----------------------------------------------------------------------------------


def _walk_s1(c: _Ctx, wi: _WalkInfo, wr: _WalkResult, va: int) -> None:
    level, stride, baddr = wi.sl, wi.pgshift - 3, wi.baddr
    va_top = 64 - wi.txsz - 1
    while True:
        va_bottom = (3 - level) * stride + wi.pgshift
        index = (va & mask(va_top, va_bottom)) >> (va_bottom - 3)
        ipa = baddr | index
        if wi.s2:
            tr = _walk_nested_s2(c, ipa)
            if tr.ret:
                fst = ((tr.esr & ~0x3) | level) & 0xFF
                if tr.ret > 0 and tr.arch_level != level:
                    c.fire("s2-fault-level-is-s1-level")
                if tr.ret < 0:
                    c.fire("s2-bad-geometry")
                c.steps.append(f"L{level}: stage 2 of table IPA {ipa:#x} fails "
                               f"(esr FSC {tr.esr & 0x3F:#04x})")
                wr.fail(fst, ptw=True, s2=True)
                return
            if not tr.readable:
                if tr.level != level:
                    c.fire("s2-fault-level-is-s1-level")
                c.steps.append(f"L{level}: stage 2 of table IPA {ipa:#x} is not readable")
                wr.fail(_fsc(_FSC_PERM, level), ptw=True, s2=True)
                return
            hcr = c.vregs["HCR_EL2"]
            if bit(hcr, 2) and s2_device(bits(tr.desc, 5, 2), bool(bit(hcr, 46))):
                c.fire("no-hcr-ptw")  # the architecture: a stage 2 Permission fault
            ipa = tr.output
        desc = c.read_desc(ipa, wi.be)
        if desc is None:
            c.steps.append(f"L{level}: kvm_read_guest({ipa:#x}) fails")
            c.fire("ptw-on-stage1-fault")
            wr.fail(_fsc(_FSC_SEA_TTW, level), ptw=True, s2=False)
            return
        c.steps.append(f"L{level}: read {ipa:#x} = {desc:#018x}")
        if not bit(desc, 0):
            return _s1_fault(c, wr, _FSC_FAULT, level)
        if not bit(desc, 1) or level == 3:
            break  # a block (checked below) or a page
        if not wi.hpd:
            wr.ap_table |= bits(desc, 62, 61)
            wr.uxn_table |= bit(desc, 60)
            wr.pxn_table |= bit(desc, 59)
        baddr = desc & mask(47, wi.pgshift)
        _note_high_oa(c, wi.pgshift, wi.ds, desc)
        if _oa_out_of_range(baddr, wi):
            return _s1_fault(c, wr, _FSC_ADDRSZ, level)
        va_top = va_bottom - 1
        level += 1
    if not bit(desc, 1):
        valid = level in (1, 2) if wi.pgshift == 12 else level == 2
        if not valid:
            if (wi.pgshift == 12 and level == 0 and wi.ds) or (level == 1 and (
                    (wi.pgshift == 14 and wi.ds) or (wi.pgshift == 16
                                                     and c.features.has(Feature.LPA)))):
                c.fire("no-52bit-blocks")
            return _s1_fault(c, wr, _FSC_FAULT, level)
    _note_high_oa(c, wi.pgshift, wi.ds, desc)
    if _oa_out_of_range(desc & mask(47, va_bottom), wi):
        return _s1_fault(c, wr, _FSC_ADDRSZ, level)
    shift = _contiguous_shift(desc, wi.pgshift, level)
    if shift and _contiguous_differs(desc, va, va_bottom, shift):
        c.fire("contiguous-aligned-oa")
    va_bottom += shift
    if not bit(desc, 10):
        ha = bit(c.vregs[f"TCR_{'EL1' if wi.regime is _Regime.EL10 else 'EL2'}"],
                 39 if wi.regime is not _Regime.EL2 else 21)
        if ha and c.features.has(Feature.HAFDBS):
            c.fire("no-hardware-af-update")
        else:
            c.fire("no-access-flag-fault")
    wr.failed, wr.level, wr.desc = False, level, desc
    wr.pa = (desc & mask(47, va_bottom)) | (va & mask(va_bottom - 1, 0))



def _note_high_oa(c: _Ctx, pgshift: int, ds: bool, desc: int) -> None:
    """Record when bits KVM ignores (it keeps descriptor bits 47:pgshift only) would have been
    part of a 52-bit output address: bits 15:12 of a 64KB descriptor with FEAT_LPA, bits 9:8
    and 49:48 of a DS=1 descriptor."""
    lpa_64k = pgshift == 16 and c.features.has(Feature.LPA) and bits(desc, 15, 12)
    if lpa_64k or (ds and (bits(desc, 9, 8) or bits(desc, 49, 48))):
        c.fire("oa-48-bits")


def _s1_fault(c: _Ctx, wr: _WalkResult, base: int, level: int) -> None:
    """walk_s1's exits: a stage 1 fault, reported by at.c with PTW=1."""
    c.fire("ptw-on-stage1-fault")
    wr.fail(_fsc(base, level), ptw=True, s2=False)


# --- handle_at_slow: permissions ---------------------------------------------------------------


def _permission_fault(c: _Ctx, op: AtOp, wi: _WalkInfo, wr: _WalkResult) -> bool:
    desc = wr.desc
    tcr = c.vregs["TCR_EL1" if wi.regime is _Regime.EL10 else "TCR_EL2"]
    el2 = wi.regime is _Regime.EL2
    hd = bit(tcr, 22 if el2 else 40) and bit(tcr, 21 if el2 else 39)
    if bit(desc, 51) and bit(desc, 7) and hd and c.features.has(Feature.HAFDBS):
        c.fire("no-dirty-state")  # DBM=1 with TCR_ELx.HD: the architecture says writable
    if wi.regime is not _Regime.EL2:
        ap = bits(desc, 7, 6)  # AArch64.S1DirectBasePermissions(): AP[2:1]
        pr, pw, ur, uw = {0b00: (1, 1, 0, 0), 0b01: (1, 1, 1, 1), 0b10: (1, 0, 0, 0),
                          0b11: (1, 0, 1, 0)}[ap]
        if wr.ap_table & 0b01:
            ur = uw = 0
        if wr.ap_table & 0b10:
            pw = uw = 0
        ux = not (bit(desc, 54) or wr.uxn_table)
        hcr = c.vregs["HCR_EL2"]
        sctlr = c.vregs["SCTLR_EL1" if wi.regime is _Regime.EL10 else "SCTLR_EL2"]
        pan3 = c.features.has(Feature.PAN3) and bool(bit(sctlr, 57))
        privileged_pan = op in (AtOp.S1E1RP, AtOp.S1E1WP) and c.pan and pan3
        if (wi.regime is _Regime.EL10 and bit(hcr, 42) and bit(hcr, 43)
                and c.features.has(Feature.NV)
                and (bit(desc, 6) or wr.ap_table & 1 or privileged_pan)):
            # With {NV,NV1}={1,1} the architecture gives EL0 no access and no execution
            # (AP[1] and UXN read as 0/1), so neither the EL0 rights nor PAN apply.
            c.fire("no-nv1-descriptors")
        if op in (AtOp.S1E1RP, AtOp.S1E1WP):
            if c.pan and (ur or uw or (pan3 and ux)):
                pr = pw = 0
    else:
        ur = uw = 0
        pr, pw = 1, 0 if bit(desc, 7) else 1
        if wr.ap_table & 0b10:
            pw = 0
    access = op.info.access
    if access is Access.ANY:
        return False
    user = op in (AtOp.S1E0R, AtOp.S1E0W, AtOp.S12E0R, AtOp.S12E0W)
    if access is Access.READ:
        return not (ur if user else pr)
    return not (uw if user else pw)


# --- compute_par_s1 ----------------------------------------------------------------------------


def _compute_par_s1(c: _Ctx, wi: _WalkInfo, wr: _WalkResult) -> int:
    if wr.failed:
        return (_RES1_NSE | _F | ((wr.fst << 1) & mask(6, 1)) | (_PTW if wr.ptw else 0)
                | (_S if wr.s2 else 0))
    c.fire("no-ns-bit")
    if wr.mmu_off:
        if bits(wr.pa, 51, 48):
            c.fire("mmu-off-pa-48")
        par = _RES1_NSE | (wr.pa & mask(47, 12))
        if wi.regime is _Regime.EL10 and bit(c.vregs["HCR_EL2"], 12):
            return par | (0xFF << 56)  # DC: Normal WB RAWA, Non-shareable
        return par | (0b10 << 7)  # Device-nGnRnE, Outer Shareable
    sfx = "EL1" if wi.regime is _Regime.EL10 else "EL2"
    attr = (c.vregs[f"MAIR_{sfx}"] >> (8 * bits(wr.desc, 4, 2))) & 0xFF
    if not bit(c.vregs[f"SCTLR_{sfx}"], 2) and attr & 0xF0:
        if attr != 0x44:
            c.fire("sctlr-c0-attr-nc")
        attr = 0x44
    if wi.ds and attr & 0xF0 and attr != 0x44:
        c.fire("ds-sh-from-descriptor")
    return _RES1_NSE | (attr << 56) | (wr.pa & mask(47, 12)) | (_compute_sh(c, attr, wr.desc) << 7)


def _compute_sh(c: _Ctx, attr: int, desc: int) -> int:
    forced = not attr & 0xF0 or attr == 0x44  # any Device, and Normal NC: SH=0b10
    if forced != (attr in PAR_SH_IS_OSH):
        c.fire("par-sh-osh-rule")
    if forced:
        return 0b10
    sh = bits(desc, 9, 8)
    if sh == 0b01:
        c.fire("sh-reserved-as-nsh")
        return 0b00
    return sh


def _handle_at_slow(c: _Ctx, op: AtOp, va: int) -> int:
    regime = _regime_for(op, c.vregs)
    wi, wr = _WalkInfo(regime), _WalkResult()
    c.steps.append(f"handle_at_slow: {regime.value} regime")
    walk_va = _setup_s1_walk(c, op, va, wi, wr)
    if walk_va is not None:
        _walk_s1(c, wi, wr, walk_va)
        if not wr.failed and _permission_fault(c, op, wi, wr):
            wr.fail(_fsc(_FSC_PERM, wr.level), ptw=False, s2=False)
    return _compute_par_s1(c, wi, wr)


# --- kvm_walk_nested_s2 ------------------------------------------------------------------------


@dataclass(slots=True)
class _S2Trans:  # struct kvm_s2_trans, plus the walker's return value
    ret: int = 0  # 0 ok, 1 fault in esr, <0 -EFAULT
    esr: int = 0
    arch_level: int = 0  # the level the architecture reports for the same fault
    output: int = 0
    level: int = 0
    desc: int = 0
    readable: bool = False
    writable: bool = False


def _walk_nested_s2(c: _Ctx, ipa: int) -> _S2Trans:
    """kvm_walk_nested_s2(): on failure the fault's ESR carries the trapped AT's ESR_EL2 above
    the FSC (EC 0x18), so ``esr`` is never 0 then, even for an Address size fault at level 0
    (FSC 0b000000)."""
    tr = _walk_nested_s2_pgd(c, ipa)
    if tr.ret:
        tr.esr |= _TRAPPED_AT_ESR_EC
    return tr


#: ESR_EL2.EC of a trapped AT (0x18) in place, as kvm_vcpu_get_esr() gives it.
_TRAPPED_AT_ESR_EC = 0x18 << 26


def _walk_nested_s2_pgd(c: _Ctx, ipa: int) -> _S2Trans:
    vtcr = c.vregs["VTCR_EL2"]
    t0sz, sl = bits(vtcr, 5, 0), bits(vtcr, 7, 6)
    pgshift = {0b00: 12, 0b10: 14}.get(bits(vtcr, 15, 14), 16)
    ps = bits(vtcr, 18, 16)
    if ps == 0b110 and c.features.pa_max >= 52:
        c.fire("oa-48-bits")
    max_oa = min(c.ipa_limit, _ps_to_output_size(ps))
    be = bool(bit(c.vregs["SCTLR_EL2"], 25))
    tr = _S2Trans()
    if pgshift == 12:
        level, first_block = 2 - sl, 1
    else:
        level, first_block = 3 - sl, 2
    stride = pgshift - 3
    ia = 64 - t0sz
    if ia > 48 or ia < 25:
        tr.ret = -14
        return tr
    if not _s2_limits_ok(pgshift, level, ia, stride):
        c.warn.append("nested.c:check_base_s2_limits")
        tr.ret = -14
        return tr
    if ipa >> ia:
        c.fire("s2-input-range-unchecked")
    lower = 3 + ia - ((3 - level) * stride + pgshift)
    base = c.vregs["VTTBR_EL2"] & mask(47, lower)

    def fault(fsc: int, lvl: int, desc: int = 0) -> _S2Trans:
        tr.ret, tr.esr, tr.level, tr.desc = 1, fsc | (lvl & 3), lvl, desc
        tr.arch_level = lvl
        return tr

    def too_big(addr: int) -> bool:
        return max_oa != 48 and bool(addr & mask(47, max_oa))

    if too_big(base):
        fault(_FSC_ADDRSZ, level)
        tr.arch_level = 0
        return tr
    top = ia - 1
    while True:
        bottom = (3 - level) * stride + pgshift
        addr = base | ((ipa & mask(top, bottom)) >> (bottom - 3))
        desc = c.read_desc(addr, be)
        if desc is None:
            tr.ret = -14
            return tr
        if not bit(desc, 0) or (bits(desc, 1, 0) == 1 and level == 3):
            return fault(_FSC_FAULT, level, desc)
        if bits(desc, 1, 0) == 1 or level == 3:
            break
        _note_high_oa(c, pgshift, False, desc)  # VTCR_EL2.DS reads as 0 (kvm_sanitise)
        if too_big(desc):
            return fault(_FSC_ADDRSZ, level, desc)
        base = desc & mask(47, pgshift)
        level += 1
        top = bottom - 1
    _note_high_oa(c, pgshift, False, desc)
    if level < first_block:
        c.fire("s2-block-levels")
        return fault(_FSC_FAULT, level, desc)
    if too_big(desc):
        return fault(_FSC_ADDRSZ, level, desc)
    if not bit(desc, 10):  # VTCR_EL2.HA reads as 0 (kvm_sanitise): an Access flag fault
        return fault(_FSC_ACCESS, level, desc)
    shift = _contiguous_shift(desc, pgshift, level)
    if shift and _contiguous_differs(desc, ipa, bottom, shift):
        c.fire("contiguous-aligned-oa")
    bottom += shift
    tr.output = (desc & mask(47, bottom)) | (ipa & mask(bottom - 1, 0))
    tr.readable, tr.writable = bool(bit(desc, 6)), bool(bit(desc, 7))
    tr.level, tr.desc = level, desc
    return tr


def _s2_limits_ok(pgshift: int, level: int, ia: int, stride: int) -> bool:
    """check_base_s2_limits(): the start level and T0SZ must agree (else WARN, -EFAULT)."""
    if pgshift == 16 and (level == 0 or (level == 1 and ia <= 42)):
        return False
    if pgshift == 14 and (level == 0 or (level == 1 and ia <= 40)):
        return False
    if pgshift == 12 and (level < 0 or (level == 0 and ia <= 42)):
        return False
    start = ia - ((3 - level) * stride + pgshift)
    return 1 <= start <= stride + 4


# --- compute_par_s12 ---------------------------------------------------------------------------


def _s2_memattr_to_attr(memattr: int) -> int:
    memattr &= 0xF
    if memattr < 0b0100:
        return memattr << 2  # Device
    nc, wt, wb = 0b0100, 0b1000, 0b1100
    table = {0b0100: (wb, wb), 0b0101: (nc, nc), 0b0110: (wt, nc), 0b0111: (wb, nc),
             0b1000: (nc, nc), 0b1001: (nc, wt), 0b1010: (wt, wt), 0b1011: (wb, wt),
             0b1100: (nc, nc), 0b1101: (nc, wb), 0b1110: (wt, wb), 0b1111: (wb, wb)}
    inner, outer = table[memattr]
    return outer << 4 | inner


def _combine_half(s1: int, s2: int) -> int:
    nc, wt, wb = 0b0100, 0b1000, 0b1100
    transient = False
    if 0b0001 <= s1 <= 0b0011:
        transient, s1 = True, wt | (s1 & 3)
    elif 0b0101 <= s1 <= 0b0111:
        transient, s1 = True, wb | (s1 & 3)
    if (s1 & 0b1100) == nc or (s2 & 0b1100) == nc:
        final = nc
    elif (s1 & 0b1100) == wt or (s2 & 0b1100) == wt:
        final = wt
    else:
        final = wb
    if final != nc:
        if transient:
            final = {wt: 0, wb: nc}.get(s1 & 0b1100, final)
        final |= s1 & 3
    return final


def _compute_par_s12(c: _Ctx, s1_par: int, tr: _S2Trans) -> int:
    if tr.esr:
        return _RES1_NSE | _F | _S | ((tr.esr << 1) & mask(6, 1))
    s1_attr = s1_par >> 56
    memattr = bits(tr.desc, 5, 2)
    hcr = c.vregs["HCR_EL2"]
    if bit(hcr, 46):  # FWB
        memattr &= ~0b1000  # no FEAT_MTE_PERM
        if memattr == 0b0101:
            final = s1_attr if not s1_attr & 0xF0 else 0x44
        elif memattr in (0b0110, 0b1110):
            final = 0xFF
        elif memattr in (0b0111, 0b1111, 0b0100, 0b1100, 0b1101):
            final = s1_attr
        else:
            # at.c's expression: ``s2_memattr & GENMASK(1,0) << 2`` (the shift binds first).
            final = memattr & (0b11 << 2)
    else:
        s2_attr = _s2_memattr_to_attr(memattr)
        if not s1_attr & 0xF0 or not s2_attr & 0xF0:
            final = min(s1_attr, s2_attr)
        else:
            final = _combine_half(s1_attr & 0xF, s2_attr & 0xF)
            final |= _combine_half(s1_attr >> 4, s2_attr >> 4) << 4
    if bit(hcr, 32) and final & 0xF0:  # CD
        final = 0x44
    s1_sh = bits(s1_par, 8, 7)
    s2_sh = _compute_sh(c, final, tr.desc)
    sh = combine_shareability(s1_sh, s2_sh)
    if (final, sh) != _arch_s12_attrs(hcr, s1_attr, s1_sh, tr.desc):
        c.fire("s2-attr-combination")
    c.fire("s12-no-bit11")
    c.fire("no-ns-bit")
    return (final << 56) | (tr.output & mask(47, 12)) | (sh << 7)


def _arch_s12_attrs(hcr: int, s1_attr: int, s1_sh: int, s2_desc: int) -> tuple[int, int]:
    """What the architecture (atlab's combination) gives for the same stage 1 attributes and
    stage 2 descriptor."""
    fwb = bool(bit(hcr, 46))
    memattr = bits(s2_desc, 5, 2)
    return s12_par_attrs(s1_attr, s1_sh, memattr if fwb else s2_constrain_reserved_memattr(
        memattr), bits(s2_desc, 9, 8), fwb=fwb, cd=bool(bit(hcr, 32)))


# --- the hardware fast path: which registers KVM puts on the CPU ----------------------------

#: The EL1 registers a hardware AT uses, as KVM programs them.
FAST_PATH_REGS = ("HCR_EL2", "SCTLR_EL1", "TCR_EL1", "TTBR0_EL1", "TTBR1_EL1", "MAIR_EL1",
                  "VTTBR_EL2", "VTCR_EL2")


def live_vel2_regs(vregs: SysRegs, hcr: int) -> dict[str, int]:
    """The EL1 registers on the CPU while L1 runs at vEL2 (KVM 6.12's
    ``get_el2_to_el1_mapping()``): with vHCR_EL2.E2H=1 L1's EL2 registers as they are; with
    E2H=0 translated by ``translate_tcr_el2_to_tcr_el1()`` (EPD1, TBI0, IPS, TG0, ORGN0, IRGN0,
    T0SZ: no SH0, HPD, HA/HD or DS), ``translate_sctlr_el2_to_sctlr_el1()`` (M, A, C, SA, I,
    IESB, WXN, EE; SCTLR_EL1_RES1 is 0 in 6.12's generated definitions) and
    ``translate_ttbr0_el2_to_ttbr0_el1()`` (ASID cleared).  ``hcr``
    is what ``__compute_hcr()`` loads (:func:`atlab.nv.routing.loaded_hcr_el2`)."""
    if vregs.field("HCR_EL2", "E2H"):
        sctlr, tcr = vregs["SCTLR_EL2"], vregs["TCR_EL2"]
        ttbr0, ttbr1 = vregs["TTBR0_EL2"], vregs["TTBR1_EL2"]
    else:
        t = vregs["TCR_EL2"]
        tcr = (1 << 23) | (bit(t, 20) << 37) | (bits(t, 18, 16) << 32) | (t & 0xFFFF)
        tcr &= ~(0b11 << 12)  # SH0 is not carried over
        sctlr = vregs["SCTLR_EL2"] & _SCTLR_EL2_KEPT
        ttbr0, ttbr1 = vregs["TTBR0_EL2"] & mask(47, 0), vregs["TTBR1_EL2"]
    return {"HCR_EL2": hcr, "SCTLR_EL1": sctlr, "TCR_EL1": tcr, "TTBR0_EL1": ttbr0,
            "TTBR1_EL1": ttbr1, "MAIR_EL1": vregs["MAIR_EL2"]}


# SCTLR_ELx.{M, A, C, SA, I, IESB, WXN, EE}
_SCTLR_EL2_KEPT = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 21) | (1 << 19) \
    | (1 << 25)


#: ``struct mmu_config config`` in ``__kvm_at_s1e01_fast`` is never saved on the
#: vHCR_EL2.{E2H,TGE}={1,1} path; with the kernel's CONFIG_INIT_STACK_ALL_ZERO it reads 0, so
#: the hardware AT runs with HCR_EL2 = (0 & ~TGE) | VM.
UNSAVED_CONFIG_HCR = 0


def fast_path_regs(op: AtOp, vregs: SysRegs, live: Mapping[str, int], *,
                   pan: int) -> dict[str, int]:
    """The registers the hardware AT of KVM 6.12's fast path runs with (``PSTATE_PAN``: the
    PAN it runs with).  ``live`` is what is on the CPU when L1 traps: the registers of
    :func:`live_vel2_regs`, VTTBR_EL2 and VTCR_EL2 (L0's stage 2 for L1), and
    ``SHADOW_VTTBR_EL2``, what ``__load_stage2()`` would load for L1's stage 2.

    - ``__kvm_at_s1e2``: the live EL1 registers (L1's vEL2 context), the live HCR_EL2 with
      TGE cleared, VM set, and NV|NV1 when vHCR_EL2.E2H=0; the live VTTBR_EL2 (L0's stage 2
      for L1).
    - ``__kvm_at_s1e01_fast`` with vHCR_EL2.{E2H,TGE}={1,1}: no MMU switch, the live context,
      but HCR_EL2 = ``(config.hcr & ~TGE) | VM`` from a ``config`` it never saved
      (:data:`UNSAVED_CONFIG_HCR`).
    - otherwise: L2's EL1 registers (TTBR0/1, TCR, MAIR, SCTLR as L1 wrote them) and the
      shadow stage 2 (``__load_stage2``), under the live HCR_EL2 with TGE cleared and VM set:
      NV, NV1 (vHCR_EL2.E2H=0), AT and the folded vHCR_EL2 bits stay set.
    - AT S1E1RP/WP (``at_s1e1p_fast``): PSTATE.PAN := ``*vcpu_cpsr(vcpu) & PSTATE_PAN``, where
      PSTATE_PAN is the MSR-immediate encoding (0x80), not PSR_PAN_BIT (bit 22): the guest's
      PAN never gets through and the hardware AT runs with PAN=0.  (``pan`` is the guest's.)
    """
    hcr = (live["HCR_EL2"] & ~(1 << 27)) | 1
    out = {name: live[name] for name in FAST_PATH_REGS}
    vttbr = live["VTTBR_EL2"]
    e2h, tge = vregs.field("HCR_EL2", "E2H"), vregs.field("HCR_EL2", "TGE")
    if op.info.el == 2 and op.info.stages == 1:
        if not e2h:
            hcr |= (1 << 42) | (1 << 43)
    elif e2h and tge:
        hcr = (UNSAVED_CONFIG_HCR & ~(1 << 27)) | 1
    else:
        for name in ("TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", "MAIR_EL1", "SCTLR_EL1"):
            out[name] = vregs[name]
        vttbr = live["SHADOW_VTTBR_EL2"]
    cpsr = (pan & 1) << 22
    hw_pan = 1 if cpsr & 0x80 else 0  # always 0: the PSTATE_PAN mask misses bit 22
    out.update(HCR_EL2=hcr, VTTBR_EL2=vttbr, PSTATE_PAN=hw_pan)
    return out


def fast_path_deviations(op: AtOp, vregs: SysRegs, kvm_regs: Mapping[str, int],
                         right: Mapping[str, int], own: bool) -> frozenset[str]:
    """Why KVM's hardware fast path answered differently from a hardware AT on the context
    the architecture calls for (``right``): the named differences in what KVM loaded."""
    out = set()
    if kvm_regs.get("PSTATE_PAN", 0) != right.get("PSTATE_PAN", 0):
        out.add("fast-pan-not-copied")
    nv_nv1 = (1 << 42) | (1 << 43)
    walk_bits = nv_nv1 | (1 << 12) | (1 << 2) | (1 << 32) | (1 << 46) | 1  # DC PTW CD FWB VM
    diff = (kvm_regs["HCR_EL2"] ^ right["HCR_EL2"]) & walk_bits
    if own:
        if diff:
            out.add("fast-folded-vhcr")
        if any(kvm_regs[r] != right[r] for r in ("TCR_EL1", "SCTLR_EL1")):
            out.add("fast-el2-register-translation")
    else:
        if diff & nv_nv1:
            out.add("fast-nv1-on-l2-walk")
        if diff & ~nv_nv1:
            out.add("fast-folded-vhcr")
        if kvm_regs["SCTLR_EL1"] != right["SCTLR_EL1"]:
            out.add("fast-vtge-ignored")
    return frozenset(out)


# --- the trap handlers: __kvm_at_s1e01, __kvm_at_s1e2, __kvm_at_s12 ---------------------------


def kvm_at(op: AtOp, va: int, *, vregs: SysRegs, mem: PhysMem, features: FeatureSet,
           pan: int = 0, ipa_limit: int | None = None, version: str = "6.12",
           fast_par: int | None = None) -> KvmAtResult:
    """KVM's emulation of ``AT <op>`` trapped from L1's vEL2 (``handle_at_s1e01``,
    ``handle_at_s1e2``, ``handle_at_s12`` in sys_regs.c, then at.c).

    ``vregs`` are L1's virtual registers, ``mem`` L1's IPA space as KVM reads it with
    ``kvm_read_guest()``.  ``fast_par`` is what the hardware fast path returned (``None``: it
    failed, as when no shadow stage 2 MMU is found); KVM keeps it only on success or a stage 1
    permission fault (6.12).
    """
    if version not in KVM_VERSIONS:
        raise AtlabError(f"KVM version {version!r} is not modelled; known: "
                         f"{', '.join(KVM_VERSIONS)}")
    if op.info.el == 3:
        raise AtlabError(f"AT {op.name} does not trap to KVM (it is UNDEFINED at EL2)")
    limit = kvm_ipa_limit(features) if ipa_limit is None else ipa_limit
    held = kvm_sanitise(vregs, features)
    c = _Ctx(held, mem, features, pan & 1, limit)
    if held["VTCR_EL2"] != vregs["VTCR_EL2"] and vregs["VTCR_EL2"] & (mask(63, 32) | mask(30, 20)):
        c.fire("vtcr-upper-bits-res0")
    if op is AtOp.S1E2A and not features.has(Feature.ATS1A):
        return KvmAtResult(op, va, None, False, undef=True)  # handle_at_s1e2's check
    if op is AtOp.S1E1A:
        # 6.12's sys_reg table has no AT S1E1A entry: the trap ends in "unsupported guest
        # sys_reg access" and an UNDEFINED exception (FEAT_ATS1A or not).
        fired = frozenset({"s1e1a-undefined"}) if features.has(Feature.ATS1A) else frozenset()
        return KvmAtResult(op, va, None, False, undef=True, fired=fired)
    if held.field("HCR_EL2", "E2H") and not features.has(Feature.VHE):
        c.fire("e2h-without-vhe")
    if op.is_s12:
        par = _at_s12(c, op, va, fast_par)
    else:
        par = _keep_fast_or_slow(c, op, va, fast_par)
    return KvmAtResult(op, va, par, True, False, tuple(c.warn), frozenset(c.fired),
                       tuple(c.steps))


def fast_par_accepted(par: int) -> bool:
    """at.c (6.12): the hardware PAR is kept on success or a stage 1 permission fault
    (``par_check_s1_perm_fault``); anything else replays the AT in software."""
    if not par & _F:
        return True
    return bits(par, 6, 1) & 0x3C == _FSC_PERM and not par & _S


def _keep_fast_or_slow(c: _Ctx, op: AtOp, va: int, fast_par: int | None) -> int:
    if fast_par is not None and fast_par_accepted(fast_par):
        c.steps.append("the hardware PAR is kept")
        return fast_par
    return _handle_at_slow(c, op, va)


_S12_TO_S1 = {AtOp.S12E1R: AtOp.S1E1R, AtOp.S12E1W: AtOp.S1E1W, AtOp.S12E0R: AtOp.S1E0R,
              AtOp.S12E0W: AtOp.S1E0W}


def _at_s12(c: _Ctx, op: AtOp, va: int, fast_par: int | None) -> int:
    s1_op = _S12_TO_S1[op]
    par = _keep_fast_or_slow(c, s1_op, va, fast_par)
    if par & _F:
        return par
    hcr = c.vregs["HCR_EL2"]
    e2h, tge, vm_dc = bit(hcr, 34), bit(hcr, 27), hcr & (1 | 1 << 12)
    if not e2h or tge or not vm_dc:
        if not e2h and vm_dc:  # the architecture walks stage 2 here ({E2H,TGE}={0,x})
            c.fire("s12-e2h0-skips-stage2")
        return par
    if par & mask(51, 48):
        c.fire("oa-48-bits")  # the IPA is taken from PAR_EL1[47:12] only
    ipa = (par & mask(47, 12)) | (va & 0xFFF)
    tr = _walk_nested_s2(c, ipa)
    if tr.ret < 0:
        c.fire("s2-bad-geometry")
        return par  # no new PAR: the stage 1 PAR stays
    if tr.esr:
        found = f"fault FSC {tr.esr & 0x3F:#04x}"
    elif tr.output == ipa:
        found = f"the same address (L1's stage 2 maps it to itself), level {tr.level}"
    else:
        found = f"-> {tr.output:#x} level {tr.level}"
    c.steps.append(f"kvm_walk_nested_s2({ipa:#x}): {found}")
    if tr.ret > 0 and tr.arch_level != tr.level:
        c.fire("s2-vttbr-addrsz-level")
    write = op.info.access is Access.WRITE
    if not tr.esr and ((not write and not tr.readable) or (write and not tr.writable)):
        tr.esr = _FSC_PERM | (tr.level & 3)
    return _compute_par_s12(c, par, tr)
