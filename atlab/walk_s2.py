"""The stage 2 walker (VTCR_EL2/VTTBR_EL2): IPA -> PA for the EL1&0 regime.

Follows ``AArch64.S2Translate()`` and ``AArch64.S2Walk()``: TxSZ and start-level checks
(``AArch64.S2InvalidSL()``, ``AArch64.S2InconsistentSL()``), concatenated start-level tables
(up to 16), stage 2 permissions S2AP/XN (``AArch64.S2DirectBasePermissions()``), Access flag
and address size faults at every level, and the stage 2 memory attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from atlab.attrs import (
    s2_constrain_reserved_memattr,
    s2_memattr_to_attr,
)
from atlab.bits import bit, bits, mask
from atlab.descriptors import (
    DESC_KIND_TEXT,
    DescKind,
    decode_desc_kind,
    desc_oa_high,
    leaf_base,
    next_table_base,
)
from atlab.errors import AtlabError
from atlab.faults import Fault, FaultKind
from atlab.features import Feature, FeatureSet
from atlab.granule import (
    FINAL_LEVEL,
    Granule,
    decode_tg0,
    index_slices,
    lpa_64k,
    physical_address_size,
)
from atlab.memory import PhysMem
from atlab.sysregs import SysRegs, refuse_not_modelled
from atlab.trace import WalkStep
from atlab.walk_s1 import IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS

#: IMPLEMENTATION DEFINED ("AT updates AF"): an AT instruction sets the Access flag of the
#: descriptors it uses when hardware AF management is on (TCR_ELx.HA / VTCR_EL2.HA), as
#: QEMU does.  It never sets dirty state (``AArch64.SetDirtyState()``: not for AT).
AT_UPDATES_AF = True


def stage2_enabled(regs: SysRegs) -> bool:
    """``walkparams.vm``: HCR_EL2.VM OR HCR_EL2.DC for the EL1&0 regime.

    HCR_EL2.VM: "When the Effective value of HCR_EL2.{E2H, TGE} is {1, 1}, the Effective
    value of this field is 0" (D24.2 HCR_EL2); with {E2H,TGE}={0,1} stage 2 still applies."""
    hcr = regs["HCR_EL2"]
    return bool((bit(hcr, 0) or bit(hcr, 12)) and not (bit(hcr, 27) and bit(hcr, 34)))


# The walk loop uses these names: an Enum member lookup costs ~70 ns in Python 3.11.
_TABLE, _PAGE, _INVALID, _RESERVED = (DescKind.TABLE, DescKind.PAGE, DescKind.INVALID,
                                      DescKind.RESERVED)


@dataclass(frozen=True, slots=True)
class S2WalkInfo:
    """Stage 2 walk inputs (``S2TTWParams``)."""

    granule: Granule
    txsz: int
    ia_bits: int
    sl: int
    oa_bits: int
    ds: bool
    ha: bool
    hd: bool
    ee: bool
    fwb: bool
    ptw: bool
    cd: bool
    sh: int
    lpa_64k: bool
    baddr: int
    concat: int  # number of concatenated start-level tables
    #: FEAT_S2PIE: VTCR_EL2.S2PIE=1, the permissions come from ``s2pir`` (S2PIR_EL2) by the
    #: leaf's PIIndex (``AArch64.S2ApplyOutputPerms()``).
    s2pie: bool = False
    s2pir: int = 0
    #: FEAT_S2POE: VTCR_EL2.S2POE=1 (with S2PIE), the overlay ``s2por`` (S2POR_EL1) by the
    #: leaf's POIndex, descriptor bits [62:59] (``AArch64.S2OverlayPermissions()``).
    s2poe: bool = False
    s2por: int = 0
    #: (lsb, index mask) of the IPA slice of each level from the start level to level 3
    #: (derived once: the walk inputs are memoized per register snapshot).
    shifts: tuple[tuple[int, int], ...] = field(default=(), init=False, repr=False,
                                                compare=False)
    pgshift: int = field(default=0, init=False, repr=False, compare=False)  # granule.pgshift

    def __post_init__(self) -> None:
        object.__setattr__(self, "shifts", index_slices(self.ia_bits, self.sl, self.granule))
        object.__setattr__(self, "pgshift", self.granule.pgshift)

    def describe_desc(self, desc: int, kind: str, level: int) -> str:
        """The meaning of a descriptor of this walk (:class:`atlab.trace.DescDecoder`)."""
        return describe_s2_desc(desc, DescKind(kind), level, self)

    def describe(self) -> str:
        cat = f", {self.concat} concatenated start tables" if self.concat > 1 else ""
        pie = f", S2PIE=1 (S2PIR_EL2={self.s2pir:#x})" if self.s2pie else ""
        if self.s2poe:
            pie += f", S2POE=1 (S2POR_EL1={self.s2por:#x})"
        return (f"stage 2 {self.granule} granule, VTCR_EL2.T0SZ={self.txsz} ({self.ia_bits}-bit"
                f" IPA), start level {self.sl}{cat}, OA size {self.oa_bits} bits{pie}")


def s2_start_level(granule: Granule, sl0: int, sl2: int) -> int:
    """``AArch64.S2StartLevel()``."""
    if granule is Granule.K4:
        return {0b000: 2, 0b001: 1, 0b010: 0, 0b011: 3, 0b100: -1}.get((sl2 << 2) | sl0, 99)
    return {0b00: 3, 0b01: 2, 0b10: 1, 0b11: 0}[sl0]


def _invalid_sl(granule: Granule, sl0: int, sl2: int, ds: bool, features: FeatureSet) -> bool:
    """``AArch64.S2InvalidSL()``."""
    pa_max = features.pa_max
    if granule is Granule.K4:
        v = (sl2 << 2) | sl0
        if v in (0b101, 0b111, 0b110):
            return True
        if v == 0b100:
            return pa_max < 52
        if v == 0b010:
            return pa_max < 44
        if v == 0b011:
            return not features.has(Feature.TTST)
        return False
    if granule is Granule.K16:
        if sl0 == 0b11:
            return not ds or pa_max < 52
        if sl0 == 0b10:
            return pa_max < 42
        return False
    if sl0 == 0b11:
        return True
    if sl0 == 0b10:
        return pa_max < 44
    return False


def setup_s2_walk(regs: SysRegs, features: FeatureSet) -> S2WalkInfo | Fault:
    """VTCR_EL2/VTTBR_EL2 to walk inputs, or the level 0 Translation fault an inconsistent
    configuration gives (``AArch64.S2Translate()``)."""
    has = features.has
    vtcr = regs["VTCR_EL2"]
    refuse_not_modelled("VTCR_EL2", vtcr)  # FEAT_THE, FEAT_D128, FEAT_HAFT fields
    granule = decode_tg0(bits(vtcr, 15, 14), "VTCR_EL2")
    if not has(granule.feature):
        raise AtlabError(f"VTCR_EL2 selects the {granule} granule, which this PE does not "
                         f"implement ({granule.feature.value} is off)")
    txsz = bits(vtcr, 5, 0)
    ds = bool(bit(vtcr, 32)) and granule in (Granule.K4, Granule.K16) and has(Feature.LPA2)
    sl0 = bits(vtcr, 7, 6)
    sl2 = bit(vtcr, 33) & int(ds) if granule is Granule.K4 and has(Feature.LPA2) else 0
    ps = bits(vtcr, 18, 16)
    ha = bool(bit(vtcr, 21)) and has(Feature.HAFDBS)
    hd = bool(bit(vtcr, 22)) and ha
    # AArch64.S2MinTxSZ(), AArch64.S2TxSZFaults()
    if features.pa_max == 52:
        ips = 52 if (granule is Granule.K64 or ds) else 48
    else:
        ips = features.pa_max
    min_txsz = 64 - ips
    max_txsz = (47 if granule is Granule.K64 else 48) if has(Feature.TTST) else 39
    if txsz < min_txsz:
        if has(Feature.LPA) or IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS:
            return Fault(FaultKind.TRANSLATION, 0, stage=2)
        txsz = min_txsz
    elif txsz > max_txsz:
        if IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS:
            return Fault(FaultKind.TRANSLATION, 0, stage=2)
        txsz = max_txsz
    ia_bits = 64 - txsz
    if _invalid_sl(granule, sl0, sl2, ds, features):
        return Fault(FaultKind.TRANSLATION, 0, stage=2)
    sl = s2_start_level(granule, sl0, sl2)
    # AArch64.S2InconsistentSL(): the IPA size must fit the start level, with at most 16
    # concatenated tables.
    levels = FINAL_LEVEL - sl
    sl_min = levels * granule.stride + granule.pgshift + 1
    sl_max = sl_min + (granule.stride - 1) + 4
    if not sl_min <= ia_bits <= sl_max:
        return Fault(FaultKind.TRANSLATION, 0, stage=2)
    oa_bits = physical_address_size(ps, granule, ds, features)
    tsize = (ia_bits - (levels * granule.stride + granule.pgshift)) + 3
    vttbr = regs["VTTBR_EL2"]
    if ds or (granule is Granule.K64 and ps == 0b110 and has(Feature.LPA)):
        tsize = max(tsize, 6)
        baddr = (bits(vttbr, 5, 2) << 48) | (vttbr & mask(47, 6))
    else:
        baddr = vttbr & mask(47, 1)
    baddr &= ~((1 << tsize) - 1)
    concat = max(1, 1 << max(0, ia_bits - (levels * granule.stride + granule.pgshift)
                             - granule.stride))
    hcr = regs["HCR_EL2"]
    # AArch64.S2ComputePermissions(): the overlay exists only with S2PIE.
    s2pie = bool(vtcr >> 36 & 1) and has(Feature.S2PIE)
    s2poe = s2pie and bool(vtcr >> 37 & 1) and has(Feature.S2POE)
    return S2WalkInfo(
        granule=granule, txsz=txsz, ia_bits=ia_bits, sl=sl, oa_bits=oa_bits, ds=ds, ha=ha,
        hd=hd, ee=bool(regs.field("SCTLR_EL2", "EE")),
        fwb=bool(bit(hcr, 46)) and has(Feature.S2FWB),
        ptw=bool(bit(hcr, 2)) and not bit(hcr, 27), cd=bool(bit(hcr, 32)),
        sh=bits(vtcr, 13, 12), lpa_64k=lpa_64k(granule, features), baddr=baddr, concat=concat,
        s2pie=s2pie, s2pir=regs["S2PIR_EL2"] if s2pie else 0,
        s2poe=s2poe, s2por=regs["S2POR_EL1"] if s2poe else 0,
    )


@dataclass(frozen=True, slots=True)
class S2Result:
    """A stage 2 translation: the PA and the stage 2 attributes, or the fault."""

    fault: Fault | None
    pa: int = 0
    level: int = 0
    desc: int = 0
    memattr: int = 0  # MemAttr[3:0] from the descriptor (after the CONSTRAINED choice)
    attr: int = 0  # MemAttr as a MAIR-style byte (FWB=0 decoding)
    sh: int = 0
    s2ap: int = 0
    xn: int = 0
    ended: str = ""


def s2_pi_index(desc: int) -> int:
    """PIIndex of a 64-bit stage 2 leaf: descriptor bits 54, 53, 51, 6."""
    return (desc >> 54 & 1) << 3 | (desc >> 53 & 1) << 2 | (desc >> 51 & 1) << 1 | (desc >> 6 & 1)


#: ``AArch64.S2IndirectBasePermissions()``: S2PIR_EL2.Perm<m> -> (r, w, w_mmu) for a data
#: access (r, w) and a stage 1 walk (r_mmu = r, w_mmu: the hardware update of a stage 1
#: descriptor); MRO (0b0010, 0b0011, 0b0110, 0b0111) is read-only except for the walk.
S2PI_RW: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (0, 0, 0), (1, 0, 1), (1, 0, 1), (0, 1, 0), (0, 0, 0), (1, 0, 1), (1, 0, 1),
    (1, 0, 0), (1, 0, 0), (1, 0, 0), (1, 0, 0), (1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1),
)
S2PI_TEXT = ("no access", "reserved", "MRO", "MRO-TL1", "write only", "reserved", "MRO-TL0",
             "MRO-TL01", "R", "R, EL0 X", "R, EL1 X", "R, X", "RW", "RW, EL0 X", "RW, EL1 X",
             "RW, X")


def s2_clean_write_faults(desc: int, hd: bool) -> bool:
    """``AArch64.S2CheckPermissions()`` with S2PIE: a write to a page whose Dirty bit
    (descriptor bit 7) is 0 faults without hardware dirty state (fault.dirtybit)."""
    return not hd and not desc >> 7 & 1


def describe_s2_desc(desc: int, kind: DescKind, level: int, wi: S2WalkInfo) -> str:
    if kind is DescKind.INVALID:
        return "bit[0]=0"
    if kind is DescKind.RESERVED:
        return f"block encoding not allowed at level {level} ({wi.granule})"
    if kind is DescKind.TABLE:
        return f"next table {next_table_base(desc, wi.granule, wi.ds, wi.lpa_64k):#x}"
    base = leaf_base(desc, level, wi.granule, wi.ds, wi.lpa_64k)
    if wi.s2pie:
        idx = s2_pi_index(desc)
        s2pi = wi.s2pir >> 4 * idx & 0xF
        text = (f"OA {base:#x} MemAttr={bits(desc, 5, 2):04b} AF={bit(desc, 10)} "
                f"PIIndex={idx:#06b} -> S2PIR_EL2[{4 * idx + 3}:{4 * idx}]={s2pi:#06b} "
                f"({S2PI_TEXT[s2pi]}) Dirty={bit(desc, 7)}")
        return text + ("" if wi.ds else f" SH={bits(desc, 9, 8):02b}")
    text = (f"OA {base:#x} MemAttr={bits(desc, 5, 2):04b} S2AP={bits(desc, 7, 6):02b} "
            f"XN={bits(desc, 54, 53):02b} AF={bit(desc, 10)}")
    if not wi.ds:
        text += f" SH={bits(desc, 9, 8):02b}"
    return text


def walk_s2(
    wi: S2WalkInfo,
    mem: PhysMem,
    ipa: int,
    features: FeatureSet,
    *,
    write: bool,
    s1ptw: bool,
    for_at: bool,
    trace: list[WalkStep] | None = None,
    start: tuple[int, int] | None = None,
) -> S2Result:
    """Translate ``ipa`` through stage 2 and check the access (read, or ``write``).

    ``s1ptw``: the access is a stage 1 table walk (a fault is then reported with PTW=1 /
    S1PTW=1, and a Device stage 2 mapping faults when HCR_EL2.PTW=1).  ``for_at``: the
    access is the AT's own final access (the Access flag is set only if
    :data:`AT_UPDATES_AF`).
    """
    res = walk_s2_leaf(wi, mem, ipa, features, write=write, s1ptw=s1ptw, for_at=for_at,
                       trace=trace, start=start)
    if isinstance(res, S2Result):
        return res
    pa, level, desc, memattr = res
    xn = bits(desc, 54, 53) if features.has(Feature.XNX) else bit(desc, 54) << 1
    kind = "page" if level == FINAL_LEVEL else "block"
    return S2Result(None, pa, level, desc, memattr, s2_memattr_to_attr(memattr),
                    wi.sh if wi.ds else bits(desc, 9, 8), bits(desc, 7, 6), xn,
                    ended=f"stage 2 {kind} at level {level}: PA {pa:#x}")


#: A successful stage 2 translation as :func:`walk_s2_leaf` returns it: (pa, level, desc,
#: memattr) with the fields of :class:`S2Result`.
S2Leaf = tuple[int, int, int, int]


def s2_device(memattr: int, fwb: bool) -> bool:
    """Stage 2 Device memory, for the HCR_EL2.PTW check."""
    if fwb:
        # CONSTRAINED UNPREDICTABLE for the reserved FWB encodings (see
        # atlab.attrs.FWB_RESERVED_MEMATTR_ATTR): MemAttr[2] only, as QEMU does.
        return not memattr & 0b0100
    return memattr >> 2 == 0


def _fault(kind: FaultKind, level: int, ipa: int, s1ptw: bool, why: str, *,
           overlay: bool = False, dirtybit: bool = False) -> S2Result:
    return S2Result(Fault(kind, level, stage=2, s1ptw=s1ptw, ipa=ipa, overlay=overlay,
                          dirtybit=dirtybit), level=level,
                    ended=f"stage 2 {kind.value} fault, level {level}: {why}")


def walk_s2_leaf(
    wi: S2WalkInfo,
    mem: PhysMem,
    ipa: int,
    features: FeatureSet,
    *,
    write: bool,
    s1ptw: bool,
    for_at: bool,
    trace: list[WalkStep] | None = None,
    start: tuple[int, int] | None = None,
) -> S2Result | S2Leaf:
    """:func:`walk_s2`, returning a successful translation as a plain :data:`S2Leaf` tuple
    (what a stage 1 table walk needs, without a result object per table access) and a fault
    as an :class:`S2Result`.  ``start`` = (level, table address) resumes the walk below a
    cached table descriptor (a walk cache hit, see :mod:`atlab.tlb`)."""
    # AArch64.IPAIsOutOfRange()
    if ipa >> wi.ia_bits:
        return _fault(FaultKind.TRANSLATION, 0, ipa, s1ptw,
                      f"IPA {ipa:#x} beyond {wi.ia_bits} bits")
    level = wi.sl
    table = wi.baddr
    oa_bits = wi.oa_bits
    if table >> oa_bits:
        return _fault(FaultKind.ADDRESS_SIZE, 0, ipa, s1ptw,
                      f"VTTBR_EL2 base {table:#x} too large")
    ee = wi.ee
    oa_mask = (1 << 48) - (1 << wi.pgshift)  # descriptor bits [47:pgshift]
    high = wi.ds or wi.lpa_64k  # descriptors carry OA[51:48] elsewhere
    logging = mem.logging
    # Plain memory, no log, little-endian: read the words directly (same result, no call).
    direct = mem.words_get if (type(mem) is PhysMem and not logging and not ee) else None
    read64 = mem.read64
    final = FINAL_LEVEL
    desc = desc_pa = lsb = 0
    kind = _INVALID
    shifts = wi.shifts
    if start is not None:
        level, table = start
        shifts = shifts[level - wi.sl:]
    for lsb, imask in shifts:  # from the start level to level 3
        index = ipa >> lsb & imask
        desc_pa = table | index << 3
        if direct is not None:
            desc = direct(desc_pa, 0)
        else:
            desc = read64(desc_pa, big_endian=ee,
                          purpose=f"S2 L{level} descriptor" if logging else "")
        if desc & 3 == 3:
            kind = _TABLE if level != final else _PAGE
        else:
            kind = decode_desc_kind(desc, level, wi.granule, wi.ds, features)
        if trace is not None:
            trace.append(WalkStep(2, level, index, lsb + imask.bit_length() - 1, lsb, desc_pa,
                                  desc_pa, desc, DESC_KIND_TEXT[kind], decoder=wi))
        if kind is _TABLE:
            nxt = desc & oa_mask  # AArch64.NextTableBase()
            if high:
                nxt |= desc_oa_high(desc, ds=wi.ds, lpa_64k=wi.lpa_64k)
            if nxt >> oa_bits:
                return _fault(FaultKind.ADDRESS_SIZE, level, ipa, s1ptw,
                              f"next table {nxt:#x} too large")
            table = nxt
            level += 1
            continue
        if kind is _INVALID or kind is _RESERVED:
            why = "invalid descriptor" if kind is _INVALID else "reserved encoding"
            return _fault(FaultKind.TRANSLATION, level, ipa, s1ptw, why)
        break
    base = desc & ((1 << 48) - (1 << lsb))  # AArch64.S2LeafBase()
    if high:
        base |= desc_oa_high(desc, ds=wi.ds, lpa_64k=wi.lpa_64k)
    if base >> oa_bits:
        return _fault(FaultKind.ADDRESS_SIZE, level, ipa, s1ptw,
                      f"output address {base:#x} too large")
    af = desc >> 10 & 1
    if not af and not wi.ha:
        return _fault(FaultKind.ACCESS_FLAG, level, ipa, s1ptw, "AF=0 and VTCR_EL2.HA=0")
    memattr = desc >> 2 & 0xF
    if not wi.fwb:
        memattr = s2_constrain_reserved_memattr(memattr)
    perm_fault = ""
    overlay = dirtybit = False
    if wi.s2pie:
        # AArch64.S2IndirectBasePermissions(); AArch64.S2CheckPermissions() takes r_mmu and
        # w_mmu for a walk (AccessType_TTW), r and w otherwise, then faults a write to a
        # clean page (Dirty, bit 7, is 0) without hardware dirty state (VTCR_EL2.HD=0).
        r, w_data, w_mmu = S2PI_RW[wi.s2pir >> 4 * s2_pi_index(desc) & 0xF]
        w = w_mmu if s1ptw else w_data
        if write and w and s2_clean_write_faults(desc, wi.hd):
            perm_fault = "S2PIE: the page is clean (Dirty=0) and VTCR_EL2.HD=0"
            dirtybit = True
        if wi.s2poe:
            # AArch64.S2OverlayPermissions() (the S2PIR encodings), checked first.
            o_r, o_w, o_w_mmu = S2PI_RW[wi.s2por >> 4 * (desc >> 59 & 0xF) & 0xF]
            o_w = o_w_mmu if s1ptw else o_w
            if not o_r or (write and not o_w):
                r = w = 0  # no other check is reached
                perm_fault = (f"S2POE: S2POR_EL1.Perm{desc >> 59 & 0xF} gives no "
                              f"{'read' if not o_r else 'write'} access")
                overlay, dirtybit = True, False
    else:
        # AArch64.S2DirectBasePermissions(), AArch64.S2CheckPermissions(): S2AP is [7:6].
        r = desc >> 6 & 1
        w = desc >> 7 & 1 or (desc >> 51 & 1 and wi.hd)
    if s1ptw:  # AccessType_TTW: read permission always needed, write for AF/dirty updates
        if wi.ptw and s2_device(memattr, wi.fwb):
            perm_fault = "HCR_EL2.PTW=1 and the stage 1 table is in Device memory"
        elif not r:
            perm_fault = "S2AP gives no read access to a stage 1 table"
        elif write and not w:
            perm_fault = "S2AP gives no write access for the stage 1 descriptor update"
    elif write and not w:
        perm_fault = "S2AP gives no write access"
    elif not write and not r:
        perm_fault = "S2AP gives no read access"
    # Hardware Access flag update (AArch64.SetAccessFlag()): even when the permission check
    # then fails, the descriptor's AF is set first.
    if not af and wi.ha and (AT_UPDATES_AF or not for_at):
        new = desc | (1 << 10)
        mem.write64(desc_pa, new, big_endian=ee, purpose=f"S2 L{level} AF update")
        if trace is not None:
            trace.append(WalkStep(2, level, 0, 0, 0, desc_pa, desc_pa, new, "update",
                                  "hardware sets AF", is_write=True))
    if perm_fault:
        if overlay:  # the overlay check comes before the base permissions
            return _fault(FaultKind.PERMISSION, level, ipa, s1ptw, perm_fault, overlay=True)
        dirtybit = dirtybit and perm_fault.startswith("S2PIE")
        return _fault(FaultKind.PERMISSION, level, ipa, s1ptw, perm_fault, dirtybit=dirtybit)
    return base | (ipa & ((1 << lsb) - 1)), level, desc, memattr
