"""The stage 1 walker: walk inputs, the walk itself, and its result.

Structured as in KVM's ``at.c``: :func:`setup_s1_walk` turns registers into walk inputs
(:class:`S1WalkInfo`, or a level 0 fault), :func:`walk_s1` walks the tables and returns a
:class:`S1WalkResult`.  Permissions and the PAR are computed by the caller (:mod:`atlab.at`).
The pseudocode functions each part follows are named in comments (Arm ARM J1.1.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from atlab.bits import align_down, bit, bits, mask
from atlab.descriptors import (
    DESC_KIND_TEXT,
    DescKind,
    attr_index,
    decode_desc_kind,
    desc_oa_high,
    leaf_base,
    next_table_base,
    pi_index,
    po_index,
)
from atlab.errors import AtlabError
from atlab.faults import Fault, FaultKind
from atlab.features import Feature, FeatureSet
from atlab.granule import (
    FINAL_LEVEL,
    Granule,
    contiguous_bit,
    decode_tg0,
    decode_tg1,
    index_slices,
    lpa_64k,
    physical_address_size,
    start_level,
)
from atlab.memory import PhysMem
from atlab.perms import S1PermBits
from atlab.regime import Regime
from atlab.sysregs import LAYOUTS, SysRegs, refuse_not_modelled
from atlab.trace import WalkStep

#: IMPLEMENTATION DEFINED: a TxSZ below the minimum without FEAT_LVA, or above the maximum
#: without FEAT_TTST, gives a level 0 Translation fault (``AArch64.S1TxSZFaults()``) rather
#: than being clamped.
IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS = True
#: IMPLEMENTATION DEFINED: no Translation fault for a contiguous range larger than the input
#: address range (``AArch64.ContiguousBitFaults()``).
IMPDEF_CONTIGUOUS_MISPROGRAM_FAULTS = False


@dataclass(frozen=True, slots=True)
class S1WalkInfo:
    """Stage 1 walk inputs (``S1TTWParams`` plus the regime, like at.c's ``s1_walk_info``)."""

    regime: Regime
    el: int  # the EL whose permissions the access checks
    upper: bool  # VA in the upper (TTBR1) range
    ttbr_name: str
    tcr_name: str
    baddr: int  # base of the start-level table, aligned
    granule: Granule
    txsz: int
    ia_bits: int
    sl: int  # start level
    oa_bits: int  # output address size (PhysicalAddressSize())
    ds: bool
    tbi: bool
    hpd: bool
    ha: bool
    hd: bool
    wxn: bool
    ee: bool
    epan: bool
    nv1: bool
    mair: int
    sh: int  # TCR_ELx.SHn: the shareability of leaves when DS=1
    lpa_64k: bool  # 64KB granule descriptors carry OA[51:48] in bits [15:12]
    #: FEAT_S1PIE: TCR2_ELx.PIE in force; the base permissions come from ``pir`` (PIR_ELx)
    #: and ``pire0`` (PIRE0_ELx, 0 with HCR_EL2.NV1 or without EL0) by PIIndex.
    pie: bool = False
    pir: int = 0
    pire0: int = 0
    #: FEAT_AIE: TCR2_ELx.AIE in force; AttrIndx[3] is descriptor bit 59 and ``mair`` holds
    #: MAIR2_ELx:MAIR_ELx (128 bits, ``AArch64.MAIRAttr()``).
    aie: bool = False
    #: FEAT_S1POE: overlays for privileged accesses (TCR2_ELx.POE, ``AArch64.S1POEnabled()``)
    #: from ``por`` (POR_EL1 or POR_EL2), and for EL0 (TCR2_ELx.E0POE,
    #: ``AArch64.S1E0POEnabled()``) from ``por_el0`` (POR_EL0), by POIndex (bits [62:60]).
    poe: bool = False
    e0poe: bool = False
    por: int = 0
    por_el0: int = 0
    # Derived once (walk inputs are memoized per register snapshot) for the walk loop:
    pgshift: int = field(default=0, init=False, repr=False, compare=False)  # granule.pgshift
    unpriv: bool = field(default=False, init=False, repr=False,
                         compare=False)  # regime.has_unprivileged
    #: (lsb, index mask) of the VA slice of each level from the start level to level 3.
    shifts: tuple[tuple[int, int], ...] = field(default=(), init=False, repr=False,
                                                compare=False)
    _text: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pgshift", self.granule.pgshift)
        object.__setattr__(self, "unpriv", self.regime.has_unprivileged)
        object.__setattr__(self, "shifts", index_slices(self.ia_bits, self.sl, self.granule))
        rng = "TTBR1" if self.upper else "TTBR0"
        text = (f"{self.regime} {rng} ({self.ttbr_name}), {self.granule} granule, "
                f"{self.tcr_name}.T{'1' if self.upper else '0'}SZ={self.txsz} "
                f"({self.ia_bits}-bit range), start level {self.sl}, OA size {self.oa_bits} bits"
                + (", DS=1" if self.ds else "") + (", HPD=1" if self.hpd else "")
                + (", HA=1" if self.ha else "")
                + (f", PIE=1 ({pir_name(self.regime)}={self.pir:#x}"
                   + (f", {pire0_name(self.regime)}={self.pire0:#x}" if self.unpriv else "")
                   + ")" if self.pie else "")
                + (", AIE=1" if self.aie else "")
                + (f", POE=1 ({por_name(self.regime)}={self.por:#x})" if self.poe else "")
                + (f", E0POE=1 (POR_EL0={self.por_el0:#x})" if self.e0poe else ""))
        object.__setattr__(self, "_text", text)  # computed once: walk inputs are memoized

    def describe(self) -> str:
        return self._text

    def attr_index(self, desc: int) -> int:
        """AttrIndx of a leaf: descriptor bits [4:2], and bit 59 as AttrIndx[3] with AIE
        (``AArch64.S1NextWalkStateLeaf()``)."""
        return attr_index(desc, aie=self.aie)

    def describe_desc(self, desc: int, kind: str, level: int) -> str:
        """The meaning of a descriptor of this walk (:class:`atlab.trace.DescDecoder`)."""
        return describe_desc(desc, DescKind(kind), level, self)


@dataclass(frozen=True, slots=True)
class _RangeParams:
    """The VA-independent part of a stage 1 set-up for one regime and VA range."""

    txsz_fault: bool
    ia_bits: int
    tbi: bool
    two_ranges: bool
    upper: bool
    e0pd: bool
    epd: bool
    base_fault: Fault | None  # Address size fault of the start table (after range checks)
    info: S1WalkInfo | None


def setup_s1_walk(
    regs: SysRegs, features: FeatureSet, regime: Regime, el: int, va: int
) -> S1WalkInfo | Fault:
    """Registers to walk inputs (``AArch64.GetS1TTWParams()`` and the early checks of
    ``AArch64.S1Translate()``/``AArch64.S1Walk()``).

    Returns a level 0 fault for: a faulting TxSZ, a VA outside the range (the bits above the
    range must all equal the range select, ignoring the top byte with TBI:
    ``AArch64.VAIsOutOfRange()``), E0PD for an EL0 access, EPDn=1, and a start-level table
    address beyond the output address size (Address size fault).  The checks come in the
    pseudocode's order; the VA-independent part is computed once per register snapshot.
    """
    upper = bool(va >> 55 & 1) and regime.has_unprivileged
    key = (features, regime, el, upper)
    rp = regs.memo.get(key)
    if rp is None:
        rp = _range_params(regs, features, regime, el, upper)
        regs.memo[key] = rp
    assert isinstance(rp, _RangeParams)
    if rp.epd:
        # AArch64.S1Walk(): EPDn=1 gives a level 0 Translation fault.  Every check before it
        # (TxSZ, VA range, E0PD) gives the same fault.
        return _T0
    if rp.txsz_fault:
        return _T0
    # AArch64.VAIsOutOfRange()
    addrtop = 55 if rp.tbi else 63
    ia_bits = rp.ia_bits
    if addrtop >= ia_bits:
        top = (va >> ia_bits) & ((1 << (addrtop - ia_bits + 1)) - 1)
        if rp.upper:
            if top != (1 << (addrtop - ia_bits + 1)) - 1:
                return _T0
        elif top != 0:
            return _T0
    if rp.e0pd:
        return _T0  # FEAT_E0PD: an EL0 access to this range faults at level 0
    if rp.base_fault is not None:
        return rp.base_fault
    assert rp.info is not None
    return rp.info


_T0 = Fault(FaultKind.TRANSLATION, 0)


def s1_control_registers(regime: Regime) -> tuple[str, str, str]:
    """The TCR, SCTLR and MAIR that control ``regime``'s stage 1."""
    suffix = regime.suffix
    return f"TCR_{suffix}", f"SCTLR_{suffix}", f"MAIR_{suffix}"


def pir_name(regime: Regime) -> str:
    """The PIR_ELx of ``regime`` (privileged base permissions, FEAT_S1PIE)."""
    return f"PIR_{regime.suffix}"


def por_name(regime: Regime) -> str:
    """The POR_ELx of ``regime``'s privileged overlays (``AArch64.S1POR()``)."""
    return "POR_EL1" if regime is Regime.EL10 else f"POR_{regime.suffix}"


def pire0_name(regime: Regime) -> str:
    """The PIRE0_ELx of ``regime`` (unprivileged base permissions, FEAT_S1PIE)."""
    return f"PIRE0_{regime.suffix}"


def tcr2_in_force(regs: SysRegs, features: FeatureSet, regime: Regime) -> int:
    """The value of TCR2_ELx the ``regime``'s walk uses: 0 when it is not in force.

    ``IsTCR2EL1Enabled()``: FEAT_TCR2, SCR_EL3.TCR2En (1 in atlab) and, EL2 being enabled,
    HCRX_EL2.TCR2En (``IsHCRXEL2Enabled()``: SCR_EL3.HXEn is 1).  ``IsTCR2EL2Enabled()``:
    FEAT_TCR2 and SCR_EL3.TCR2En.  The EL3 regime has no TCR2 register.
    """
    if not features.has(Feature.TCR2) or regime is Regime.EL3:
        return 0
    if regime is Regime.EL10:
        return regs["TCR2_EL1"] if regs["HCRX_EL2"] >> 14 & 1 else 0
    return regs["TCR2_EL2"]


#: TCR_EL3 bits [38:34]: PnCH, PIE, POE, AIE, D128 (D24.2.196); the EL3 regime has no TCR2.
_TCR_EL3_PIE, _TCR_EL3_POE, _TCR_EL3_AIE = 35, 36, 37

def s1_tcr2_controls(regs: SysRegs, features: FeatureSet, regime: Regime) -> int:
    """The PIE (bit 1), E0POE (bit 2), POE (bit 3) and AIE (bit 4) controls of ``regime``'s
    stage 1, as TCR2_ELx holds them; the features still gate them.

    EL1&0, EL2, EL2&0: TCR2_ELx when in force (:func:`tcr2_in_force`).  EL3
    (``AArch64.S1TTWParamsEL3()``, ``AArch64.S1POEnabled()``): TCR_EL3.PIE (bit 35), POE
    (bit 36) and AIE (bit 37), with FEAT_S1PIE/FEAT_S1POE/FEAT_AIE only (no FEAT_TCR2 needed).
    """
    if regime is Regime.EL3:
        tcr = regs["TCR_EL3"]
        refuse_not_modelled("TCR_EL3", tcr)
        return ((tcr >> _TCR_EL3_PIE & 1) << 1 | (tcr >> _TCR_EL3_POE & 1) << 3
                | (tcr >> _TCR_EL3_AIE & 1) << 4)
    tcr2 = tcr2_in_force(regs, features, regime)
    if tcr2:
        refuse_not_modelled("TCR2_EL1" if regime is Regime.EL10 else "TCR2_EL2", tcr2)
    return tcr2


def effective_tbi(regime: Regime, tcr: int, upper: bool) -> bool:
    """``EffectiveTBI()``: TCR_ELx.TBI1/TBI0 (``upper``: VA[55]=1) in the two-range regimes,
    TBI in the EL2 and EL3 regimes."""
    if regime.has_unprivileged:
        return bool(tcr >> (38 if upper else 37) & 1)
    return bool(tcr >> 20 & 1)


def _range_params(
    regs: SysRegs, features: FeatureSet, regime: Regime, el: int, upper: bool
) -> _RangeParams:
    has = features.has
    tcr_name, sctlr, mair_name = s1_control_registers(regime)
    tcr = regs[tcr_name]
    tbi = effective_tbi(regime, tcr, upper)
    two_ranges = regime.has_unprivileged  # TCR_EL1 layout, TTBR0/TTBR1
    if two_ranges:
        n = 1 if upper else 0
        if upper:
            epd = bit(tcr, 23)
            ttbr_name = f"TTBR1_{regime.suffix}"
            tgx_field = bits(tcr, 31, 30)
            txsz = bits(tcr, 21, 16)
        else:
            epd = bit(tcr, 7)
            ttbr_name = f"TTBR0_{regime.suffix}"
            tgx_field = bits(tcr, 15, 14)
            txsz = bits(tcr, 5, 0)
        sh = bits(tcr, 29, 28) if upper else bits(tcr, 13, 12)
        hpd = bit(tcr, 41 + n) if has(Feature.HPDS) else 0
        e0pd = bit(tcr, 55 + n) if has(Feature.E0PD) else 0
        ps = bits(tcr, 34, 32)
        ha = bit(tcr, 39)
        hd = bit(tcr, 40)
        ds_bit = bit(tcr, 59)
        if epd:
            # The granule (even a reserved TGn encoding) cannot matter: the walk faults.
            return _RangeParams(False, 64, bool(tbi), True, upper, False, True, None, None)
    else:
        epd = 0
        e0pd = 0
        ttbr_name = f"TTBR0_{regime.suffix}"
        tgx_field = bits(tcr, 15, 14)
        txsz = bits(tcr, 5, 0)
        sh = bits(tcr, 13, 12)
        hpd = bit(tcr, 24) if has(Feature.HPDS) else 0
        ps = bits(tcr, 18, 16)
        ha = bit(tcr, 21)
        hd = bit(tcr, 22)
        ds_bit = bit(tcr, 32)

    if upper and two_ranges:
        granule = decode_tg1(tgx_field, tcr_name)
    else:
        granule = decode_tg0(tgx_field, tcr_name)
    if not has(granule.feature):
        raise AtlabError(f"{tcr_name} selects the {granule} granule, which this PE does not "
                         f"implement ({granule.feature.value} is off)")
    if not has(Feature.HAFDBS):
        ha = hd = 0
    hd &= ha
    ds = bool(ds_bit) and granule in (Granule.K4, Granule.K16) and has(Feature.LPA2)
    e0pd_applies = bool(e0pd) and el == 0

    # AArch64.S1TxSZFaults(), AArch64.S1MinTxSZ(), AArch64.MaxTxSZ()
    if has(Feature.LVA) and (granule is Granule.K64 or ds):
        min_txsz = 12
    else:
        min_txsz = 16
    max_txsz = (47 if granule is Granule.K64 else 48) if has(Feature.TTST) else 39
    if txsz < min_txsz:
        if has(Feature.LVA) or IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS:
            return _RangeParams(True, 64, bool(tbi), two_ranges, upper, False, False, None, None)
        txsz = min_txsz
    elif txsz > max_txsz:
        if IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS:
            return _RangeParams(True, 64, bool(tbi), two_ranges, upper, False, False, None, None)
        txsz = max_txsz
    ia_bits = 64 - txsz

    sl = start_level(ia_bits, granule)
    oa_bits = physical_address_size(ps, granule, ds, features)

    # AArch64.S1TTBaseAddress(): the start table is aligned to its own size.
    ttbr = regs[ttbr_name]
    levels = FINAL_LEVEL - sl
    tsize = (ia_bits - (levels * granule.stride + granule.pgshift)) + 3
    if ds or (granule is Granule.K64 and ps == 0b110 and has(Feature.LPA)):
        tsize = max(tsize, 6)
        baddr = (bits(ttbr, 5, 2) << 48) | (ttbr & mask(47, 6))
    else:
        baddr = ttbr & mask(47, 1)
    baddr = align_down(baddr, tsize)

    # AArch64.S1Walk(): Address size fault (level 0) for a start table beyond the OA size.
    base_fault = Fault(FaultKind.ADDRESS_SIZE, 0) if baddr >> oa_bits else None

    sctlr_val = regs[sctlr]
    nv1 = False
    if regime is Regime.EL10 and has(Feature.NV):
        # EffectiveHCR_EL2_NVx(): NV1 counts only with NV=1 (NV=0, NV1=1 is CONSTRAINED
        # UNPREDICTABLE; atlab takes the '000' option).
        nv1 = bool(regs.field("HCR_EL2", "NV") and regs.field("HCR_EL2", "NV1"))
    # AArch64.S1TTWParamsEL10()/EL20()/EL2()/EL3(): the PIE, POE, E0POE and AIE controls
    # (TCR2_ELx, or TCR_EL3 for the EL3 regime), in TCR2_ELx's bit positions; any of them
    # makes the hierarchical permissions disabled (hpd=1).
    tcr2 = s1_tcr2_controls(regs, features, regime)
    pie = bool(tcr2 >> 1 & 1) and has(Feature.S1PIE)
    aie = bool(tcr2 >> 4 & 1) and has(Feature.AIE)
    pir = pire0 = 0
    if pie:
        pir = regs[pir_name(regime)]
        if regime.has_unprivileged and not nv1:
            pire0 = regs[pire0_name(regime)]
    mair = regs[mair_name]
    if aie:
        mair |= regs[f"MAIR2_{regime.suffix}"] << 64
    # AArch64.S1POEnabled(), AArch64.S1E0POEnabled() (EL1&0: not with HCR_EL2.NV1; the EL2
    # regime has no E0POE bit).
    poe = bool(tcr2 >> 3 & 1) and has(Feature.S1POE)
    e0poe = (bool(tcr2 >> 2 & 1) and has(Feature.S1POE) and regime.has_unprivileged
             and not nv1)
    por = regs[por_name(regime)] if poe else 0
    por_el0 = regs["POR_EL0"] if e0poe else 0
    if pie or aie or poe or e0poe:
        hpd = 1
    info = S1WalkInfo(
        regime=regime, el=el, upper=upper and two_ranges, ttbr_name=ttbr_name,
        tcr_name=tcr_name, baddr=baddr, granule=granule, txsz=txsz, ia_bits=ia_bits, sl=sl,
        oa_bits=oa_bits, ds=ds, tbi=bool(tbi), hpd=bool(hpd), ha=bool(ha), hd=bool(hd),
        wxn=bool(bit(sctlr_val, 19)), ee=bool(bit(sctlr_val, 25)),
        epan=bool(bit(sctlr_val, 57)) and has(Feature.PAN3) and regime.has_unprivileged,
        nv1=nv1, mair=mair, sh=sh, lpa_64k=lpa_64k(granule, features),
        pie=pie, pir=pir, pire0=pire0, aie=aie, poe=poe, e0poe=e0poe, por=por,
        por_el0=por_el0,
    )
    return _RangeParams(False, ia_bits, bool(tbi), two_ranges, upper and two_ranges,
                        e0pd_applies, False, base_fault, info)


# The walk loops use these names: an Enum member lookup (DescKind.TABLE) costs ~70 ns in
# Python 3.11, a module global a few.
_TABLE, _PAGE, _INVALID, _RESERVED = (DescKind.TABLE, DescKind.PAGE, DescKind.INVALID,
                                      DescKind.RESERVED)
class Stage2(Protocol):
    """What a stage 1 walk needs from stage 2: translate a table address (an IPA)."""

    def translate_ptw(self, ipa: int, *, write: bool, s1_level: int,
                      trace: list[WalkStep] | None) -> int | Fault:
        """The PA of a stage 1 table access, or the stage 2 fault (``s1ptw=True``)."""
        ...


def table_perms(table_bits: int, wi: S1WalkInfo) -> tuple[int, int, int]:
    """``AArch64.S1ApplyTablePerms()`` on ``table_bits``, the OR of the table descriptors'
    bits [62:59] (shifted down to [3:0]):
    (APTable, UXNTable or XNTable, PXNTable) as the regime reads them.  The EL2/EL3 regimes
    and EL1&0 with NV1 have no APTable[0] (and EL2/EL3 no PXNTable: bit 59 is RES0)."""
    apt = table_bits >> 2 & 3
    xnt = table_bits >> 1 & 1
    if wi.nv1:
        return apt & 2, 0, xnt  # bit 60 is PXNTable for EL2-style descriptors
    if wi.unpriv:
        return apt, xnt, table_bits & 1
    return apt & 2, xnt, 0


def s1_perm_bits(desc: int, table_bits: int, wi: S1WalkInfo) -> S1PermBits:
    """``AArch64.S1ApplyOutputPerms()``: the leaf's AP/XN bits as the regime reads them, with
    the hierarchical controls ``table_bits`` (see :func:`table_perms`)."""
    base = _s1_base_perm_bits(desc, table_bits, wi)
    if not (wi.poe or wi.e0poe):
        return base
    # AArch64.S1ApplyOutputPerms(): po_index = '0':descriptor<62:60>; AArch64.S1POR()
    lo = 4 * po_index(desc)
    return replace(base, poe=wi.poe, e0poe=wi.e0poe, ppo=wi.por >> lo & 0xF,
                   upo=wi.por_el0 >> lo & 0xF)


def _s1_base_perm_bits(desc: int, table_bits: int, wi: S1WalkInfo) -> S1PermBits:
    if wi.pie:  # PIIndex selects the base permissions; no hierarchical controls (hpd=1)
        lo = 4 * pi_index(desc)
        return S1PermBits(pie=True, ppi=wi.pir >> lo & 0xF, upi=wi.pire0 >> lo & 0xF,
                          ndirty=desc >> 7 & 1)
    ap_table, xn_table, pxn_table = table_perms(table_bits, wi)
    if wi.nv1:  # AP[1] is RES0, bit 54 is PXN, no UXN
        return S1PermBits(ap=(desc >> 7 & 1) << 1, ap_table=ap_table, pxn=desc >> 54 & 1,
                          pxn_table=pxn_table, dbm=desc >> 51 & 1)
    if wi.unpriv:
        return S1PermBits(ap=desc >> 6 & 3, ap_table=ap_table, uxn=desc >> 54 & 1,
                          pxn=desc >> 53 & 1, uxn_table=xn_table, pxn_table=pxn_table,
                          dbm=desc >> 51 & 1)
    # EL2, EL3: AP[1] is RES1, one XN bit
    return S1PermBits(ap=(desc >> 6 & 2) | 1, ap_table=ap_table, xn=desc >> 54 & 1,
                      xn_table=xn_table, dbm=desc >> 51 & 1)


#: The leaf descriptor bits :func:`s1_perm_bits` reads: AP[2:1], DBM, PXN, UXN/XN (the PIIndex
#: bits too), POIndex.
LEAF_PERM_BITS = (0b11 << 6) | (1 << 51) | (0b11 << 53) | (0b111 << 60)


@dataclass(frozen=True, slots=True)
class S1WalkResult:
    """What a stage 1 walk found: a leaf (``fault`` is None) or the fault that ended it.

    ``table_bits`` is the OR of bits [62:59] of the table descriptors the walk went through,
    as bits [3:0] (0 with TCR_ELx.HPD=1); :func:`s1_perm_bits` turns it and the leaf into
    permissions."""

    fault: Fault | None
    level: int
    desc: int = 0
    desc_addr: int = 0  # where the leaf descriptor is (IPA under stage 2)
    desc_pa: int = 0
    oa: int = 0
    table_bits: int = 0
    contiguous: bool = False
    kind: DescKind = DescKind.INVALID
    ended: str = ""


def describe_desc(desc: int, kind: DescKind, level: int, wi: S1WalkInfo) -> str:
    """One-line decoded meaning of a stage 1 descriptor."""
    if kind is DescKind.INVALID:
        return "bit[0]=0"
    if kind is DescKind.RESERVED:
        return f"block encoding not allowed at level {level} ({wi.granule})"
    if kind is DescKind.TABLE:
        nxt = next_table_base(desc, wi.granule, wi.ds, wi.lpa_64k)
        extra = ""
        if not wi.hpd:
            apt, xnt = bits(desc, 62, 61), bits(desc, 60, 59)
            if apt or xnt:
                extra = f" APTable={apt:02b} UXN/PXNTable={xnt:02b}"
        return f"next table {nxt:#x}{extra}"
    base = leaf_base(desc, level, wi.granule, wi.ds, wi.lpa_64k)
    ap = bits(desc, 7, 6)
    if wi.pie:
        text = f"OA {base:#x} AttrIndx={wi.attr_index(desc)}"
    else:
        text = f"OA {base:#x} AttrIndx={wi.attr_index(desc)} AP={ap:02b}"
    if not wi.ds:
        text += f" SH={bits(desc, 9, 8):02b}"
    text += f" AF={bit(desc, 10)}"
    if wi.pie:
        text += " " + describe_pi_index(desc, wi)
    elif wi.regime.has_unprivileged and not wi.nv1:
        text += f" PXN={bit(desc, 53)} UXN={bit(desc, 54)}"
    else:
        text += f" XN={bit(desc, 54)}"
    if bit(desc, 52):
        text += " Contiguous"
    if bit(desc, 51):
        text += " DBM"
    if wi.regime.has_unprivileged and bit(desc, 11):
        text += " nG"
    return text


def describe_pi_index(desc: int, wi: S1WalkInfo) -> str:
    """``PIIndex=0b0101 -> PIR_EL1[23:20]=0b0101 (RW) ... nDirty=1``: a leaf under S1PIE."""
    idx = pi_index(desc)
    lo = 4 * idx
    values = LAYOUTS["PIR_EL1"][idx].values
    ppi = wi.pir >> lo & 0xF
    text = (f"PIIndex={idx:#06b} -> {pir_name(wi.regime)}[{lo + 3}:{lo}]={ppi:#06b} "
            f"({values[ppi]})")
    if wi.regime.has_unprivileged:
        upi = wi.pire0 >> lo & 0xF
        name = "0 (NV1)" if wi.nv1 else f"{pire0_name(wi.regime)}[{lo + 3}:{lo}]"
        text += f", {name}={upi:#06b} ({values[upi]})"
    return text + f" nDirty={bit(desc, 7)}"


def walk_s1(
    wi: S1WalkInfo,
    mem: PhysMem,
    va: int,
    features: FeatureSet,
    *,
    s2: Stage2 | None = None,
    trace: list[WalkStep] | None = None,
) -> S1WalkResult:
    """Walk the stage 1 tables for ``va`` (``AArch64.S1Walk()``).

    Each table access goes through ``s2`` when stage 2 applies (it returns the PA or the
    stage 2 fault).  ``trace``, when given, receives one :class:`WalkStep` per descriptor.
    """
    res = walk_s1_leaf(wi, mem, va, features, s2=s2, trace=trace)
    if isinstance(res, S1WalkResult):
        return res
    level, desc, desc_addr, desc_pa, oa, table_bits = res
    kind = DescKind.PAGE if level == FINAL_LEVEL else DescKind.BLOCK
    ended = f"{kind.value} at level {level}: output address {oa:#x}" if trace is not None else ""
    return S1WalkResult(None, level, desc, desc_addr, desc_pa, oa, table_bits,
                        contiguous_bit(desc, level, wi.granule), kind, ended)


#: A successful stage 1 walk, as :func:`walk_s1_leaf` returns it: (level, desc, desc_addr,
#: desc_pa, oa, table_bits) with the fields of :class:`S1WalkResult`.
S1Leaf = tuple[int, int, int, int, int, int]

#: Where a stage 1 walk resumes after a walk cache hit: (level, table address, the OR of the
#: table descriptors read above it, unshifted as :func:`walk_s1_leaf` accumulates it).
S1Start = tuple[int, int, int]


def walk_s1_leaf(
    wi: S1WalkInfo,
    mem: PhysMem,
    va: int,
    features: FeatureSet,
    *,
    s2: Stage2 | None = None,
    trace: list[WalkStep] | None = None,
    start: S1Start | None = None,
) -> S1WalkResult | S1Leaf:
    """:func:`walk_s1`, returning a successful walk as a plain :data:`S1Leaf` tuple (the
    AT front end's fast path: no result object per walk) and a fault as an
    :class:`S1WalkResult`.  ``start`` resumes the walk below a cached table descriptor (a
    walk cache hit, see :mod:`atlab.tlb`) instead of at the start level."""
    level = wi.sl
    table = wi.baddr
    shifts = wi.shifts
    table_bits = 0  # AArch64.S1ApplyTablePerms(): the OR of the table descriptors' bits
    if start is not None:
        level, table, table_bits = start
        shifts = shifts[level - wi.sl:]
    pgshift, ee, oa_bits = wi.pgshift, wi.ee, wi.oa_bits
    oa_mask = (1 << 48) - (1 << pgshift)  # descriptor bits [47:pgshift]
    high = wi.ds or wi.lpa_64k  # descriptors carry OA[51:48] elsewhere
    tperms = not wi.hpd
    logging = mem.logging
    # Plain memory, no log, little-endian: read the words directly (same result, no call).
    direct = mem.words_get if (type(mem) is PhysMem and not logging and not ee) else None
    read64 = mem.read64
    desc = desc_addr = desc_pa = lsb = 0
    kind = _INVALID
    final = FINAL_LEVEL
    s2_steps: list[WalkStep] | None = None
    for lsb, imask in shifts:  # from the start level to level 3
        index = va >> lsb & imask
        desc_addr = table | index << 3
        if s2 is None:
            desc_pa = desc_addr
        else:
            s2_steps = [] if trace is not None else None
            res = s2.translate_ptw(desc_addr, write=False, s1_level=level, trace=s2_steps)
            if isinstance(res, Fault):
                if trace is not None:
                    trace.append(WalkStep(1, level, index, lsb + imask.bit_length() - 1,
                                          lsb, desc_addr, desc_addr, 0, "not read",
                                          f"stage 2 {res} on the table address",
                                          s2=tuple(s2_steps or ())))
                return S1WalkResult(res, level, ended=f"stage 2 fault on the level {level} "
                                    f"table access: {res}")
            desc_pa = res
        if direct is not None:
            desc = direct(desc_pa, 0)
        else:
            desc = read64(desc_pa, big_endian=ee,
                          purpose=f"S1 L{level} descriptor" if logging else "")
        # AArch64.DecodeDescriptorType(): tables and pages inline.
        if desc & 3 == 3:
            if level != final:
                kind = _TABLE
                if tperms:
                    table_bits |= desc
            else:
                kind = _PAGE
        else:
            kind = decode_desc_kind(desc, level, wi.granule, wi.ds, features)
        if trace is not None:
            perms = ""
            if table_bits and kind is _TABLE:
                perms = _table_perms_text(table_bits >> 59 & 0xF, wi)
            trace.append(WalkStep(1, level, index, lsb + imask.bit_length() - 1, lsb,
                                  desc_addr, desc_pa, desc, DESC_KIND_TEXT[kind], "", perms,
                                  () if s2_steps is None else tuple(s2_steps), False, wi))
        if kind is _TABLE:
            # AArch64.NextTableBase()
            nxt = desc & oa_mask
            if high:
                nxt |= desc_oa_high(desc, ds=wi.ds, lpa_64k=wi.lpa_64k)
            if nxt >> oa_bits:
                return S1WalkResult(Fault(FaultKind.ADDRESS_SIZE, level), level, desc,
                                    desc_addr, desc_pa, kind=kind,
                                    ended=f"address size fault, level {level}: next table "
                                    f"{nxt:#x} is beyond {oa_bits} bits")
            table = nxt
            level += 1
            continue
        if kind is _INVALID or kind is _RESERVED:
            why = "invalid descriptor" if kind is _INVALID else "reserved encoding"
            return S1WalkResult(Fault(FaultKind.TRANSLATION, level), level, desc, desc_addr,
                                desc_pa, kind=kind,
                                ended=f"translation fault, level {level}: {why}")
        break
    table_bits = table_bits >> 59 & 0xF

    # Leaf: AArch64.S1NextWalkStateLeaf() and the checks at the end of AArch64.S1Walk();
    # lsb is still the leaf level's (level_lsb()).
    base = desc & ((1 << 48) - (1 << lsb))  # AArch64.S1LeafBase()
    if high:
        base |= desc_oa_high(desc, ds=wi.ds, lpa_64k=wi.lpa_64k)
    oa = base | (va & ((1 << lsb) - 1))
    if IMPDEF_CONTIGUOUS_MISPROGRAM_FAULTS and contiguous_bit(desc, level, wi.granule):
        span = lsb + {Granule.K4: 4, Granule.K16: 7 if level == 3 else 5,
                      Granule.K64: 5}[wi.granule]
        if span > wi.ia_bits:
            return S1WalkResult(Fault(FaultKind.TRANSLATION, level), level, desc, desc_addr,
                                desc_pa, table_bits=table_bits, contiguous=True, kind=kind,
                                ended="translation fault: contiguous range beyond the input "
                                "range")
    if base >> oa_bits:
        return S1WalkResult(Fault(FaultKind.ADDRESS_SIZE, level), level, desc, desc_addr, desc_pa,
                            table_bits=table_bits,
                            contiguous=contiguous_bit(desc, level, wi.granule), kind=kind,
                            ended=f"address size fault, level {level}: output address {base:#x} is "
                            f"beyond {oa_bits} bits")
    if not desc >> 10 & 1 and not wi.ha:
        return S1WalkResult(Fault(FaultKind.ACCESS_FLAG, level), level, desc, desc_addr, desc_pa,
                            table_bits=table_bits,
                            contiguous=contiguous_bit(desc, level, wi.granule), kind=kind,
                            ended=f"access flag fault, level {level}: AF=0 and {wi.tcr_name}.HA=0")
    return level, desc, desc_addr, desc_pa, oa, table_bits


def _table_perms_text(table_bits: int, wi: S1WalkInfo) -> str:
    """The hierarchical permissions accumulated so far, for a trace step ("" if none)."""
    apt, uxnt, pxnt = table_perms(table_bits, wi)
    if apt or uxnt or pxnt:
        return f"APTable={apt:02b} UXNTable={uxnt} PXNTable={pxnt}"
    return ""
