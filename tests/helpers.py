"""Shared helpers for the walker and AT tests.

Everything here is an independent transcription of the Arm ARM (DDI 0487): register field
positions, descriptor formats, the start-level formula, PAR_EL1 and fault status encodings.
None of it calls the code under test, so expected values built with these helpers are
computed "by hand" from the architecture, not by atlab.
"""

from __future__ import annotations

from collections.abc import Callable

from atlab import PhysMem, SysRegs

# --- constants ------------------------------------------------------------------------------

#: log2 of the granule size (TGxGranuleBits()).
PGSHIFT = {"4K": 12, "16K": 14, "64K": 16}
#: TCR_ELx.TG0 / VTCR_EL2.TG0 encodings (D24.2 TCR_EL1.TG0).
TG0 = {"4K": 0b00, "64K": 0b01, "16K": 0b10}
#: TCR_ELx.TG1 encodings (D24.2 TCR_EL1.TG1): encoded differently from TG0.
TG1 = {"16K": 0b01, "4K": 0b10, "64K": 0b11}

AF = 1 << 10  # descriptor bit 10, the Access flag
SH_NSH, SH_OSH, SH_ISH = 0b00, 0b10, 0b11
DBM = 1 << 51
CONTIG = 1 << 52
PXN = 1 << 53
UXN = 1 << 54  # also XN for the EL2/EL3 regimes
HCR_RW = 1 << 31
#: MAIR used by most stage 1 tests: Attr0=0xff (Normal WB RWA), Attr1=0x04 (Device-nGnRE),
#: Attr2=0x44 (Normal NC), Attr3=0xbb (Normal WT RW-alloc), Attr4=0x00 (Device-nGnRnE),
#: Attr5=0x4f (outer NC, inner WB).
MAIR = 0x4F_00_BB_44_04_FF


def ap(ap21: int) -> int:
    """AP[2:1] in descriptor bits [7:6]."""
    return ap21 << 6


def sh(value: int) -> int:
    """SH[1:0] in descriptor bits [9:8]."""
    return value << 8


def attridx(index: int) -> int:
    """AttrIndx[2:0] in descriptor bits [4:2]."""
    return index << 2


def s2ap(value: int) -> int:
    """Stage 2 S2AP[1:0] in descriptor bits [7:6] (bit 6 read, bit 7 write)."""
    return value << 6


def memattr(value: int) -> int:
    """Stage 2 MemAttr[3:0] in descriptor bits [5:2]."""
    return value << 2


def byteswap64(value: int) -> int:
    return int.from_bytes(value.to_bytes(8, "little"), "big")


# --- registers (field positions from the Arm ARM, D24.2) ------------------------------------

_TCR_EL1_FIELDS = {
    "T0SZ": (0, 6), "EPD0": (7, 1), "IRGN0": (8, 2), "ORGN0": (10, 2), "SH0": (12, 2),
    "TG0": (14, 2), "T1SZ": (16, 6), "A1": (22, 1), "EPD1": (23, 1), "SH1": (28, 2),
    "TG1": (30, 2), "IPS": (32, 3), "TBI0": (37, 1), "TBI1": (38, 1), "HA": (39, 1),
    "HD": (40, 1), "HPD0": (41, 1), "HPD1": (42, 1), "E0PD0": (55, 1), "E0PD1": (56, 1),
    "DS": (59, 1),
}
_TCR_EL2_FIELDS = {  # TCR_EL2 with HCR_EL2.E2H=0, and TCR_EL3
    "T0SZ": (0, 6), "IRGN0": (8, 2), "ORGN0": (10, 2), "SH0": (12, 2), "TG0": (14, 2),
    "PS": (16, 3), "TBI": (20, 1), "HA": (21, 1), "HD": (22, 1), "HPD": (24, 1), "DS": (32, 1),
}
_VTCR_FIELDS = {
    "T0SZ": (0, 6), "SL0": (6, 2), "IRGN0": (8, 2), "ORGN0": (10, 2), "SH0": (12, 2),
    "TG0": (14, 2), "PS": (16, 3), "HA": (21, 1), "HD": (22, 1), "DS": (32, 1), "SL2": (33, 1),
}
_HCR_FIELDS = {
    "VM": (0, 1), "PTW": (2, 1), "DC": (12, 1), "TGE": (27, 1), "RW": (31, 1), "CD": (32, 1),
    "E2H": (34, 1), "NV": (42, 1), "NV1": (43, 1), "AT": (44, 1), "FWB": (46, 1),
}
_SCTLR_FIELDS = {"M": (0, 1), "WXN": (19, 1), "EE": (25, 1), "EPAN": (57, 1)}


def _pack(table: dict[str, tuple[int, int]], what: str, fields: dict[str, int]) -> int:
    value = 0
    for name, v in fields.items():
        lo, width = table[name]
        assert 0 <= v < (1 << width), f"{what}.{name}={v} does not fit in {width} bits"
        value |= v << lo
    return value


def tcr_el1(**fields: int) -> int:
    """TCR_EL1 (also TCR_EL2 with E2H=1).  Defaults: T0SZ=T1SZ=16, 4K both ranges, IPS=48 bits,
    SH0=SH1=ISH."""
    base = {"T0SZ": 16, "TG0": TG0["4K"], "T1SZ": 16, "TG1": TG1["4K"], "IPS": 0b101,
            "SH0": SH_ISH, "SH1": SH_ISH}
    base.update(fields)
    return _pack(_TCR_EL1_FIELDS, "TCR_EL1", base)


def tcr_el2(**fields: int) -> int:
    """TCR_EL2 (E2H=0) or TCR_EL3; RES1 bits 31 and 23 set.  Defaults: T0SZ=16, 4K, PS=48."""
    base = {"T0SZ": 16, "TG0": TG0["4K"], "PS": 0b101, "SH0": SH_ISH}
    base.update(fields)
    return _pack(_TCR_EL2_FIELDS, "TCR_EL2", base) | (1 << 31) | (1 << 23)


def vtcr(**fields: int) -> int:
    """VTCR_EL2 (RES1 bit 31).  Defaults: 4K, T0SZ=24 (40-bit IPA), SL0=1 (level 1), PS=40."""
    base = {"T0SZ": 24, "SL0": 1, "TG0": TG0["4K"], "PS": 0b010, "SH0": SH_ISH}
    base.update(fields)
    return _pack(_VTCR_FIELDS, "VTCR_EL2", base) | (1 << 31)


def hcr(**fields: int) -> int:
    """HCR_EL2; RW=1 unless given."""
    base = {"RW": 1}
    base.update(fields)
    return _pack(_HCR_FIELDS, "HCR_EL2", base)


def sctlr(**fields: int) -> int:
    """SCTLR_ELx; M=1 unless given."""
    base = {"M": 1}
    base.update(fields)
    return _pack(_SCTLR_FIELDS, "SCTLR", base)


def el1_regs(*, ttbr0: int = 0, ttbr1: int = 0, tcr: int | None = None,
             hcr_el2: int | None = None, sctlr_el1: int | None = None, mair: int = MAIR,
             **extra: int) -> SysRegs:
    """Registers for an EL1&0 stage 1 walk (HCR_EL2.RW=1, SCTLR_EL1.M=1)."""
    values = {
        "HCR_EL2": hcr() if hcr_el2 is None else hcr_el2,
        "SCTLR_EL1": sctlr() if sctlr_el1 is None else sctlr_el1,
        "TCR_EL1": tcr_el1() if tcr is None else tcr,
        "MAIR_EL1": mair, "TTBR0_EL1": ttbr0, "TTBR1_EL1": ttbr1,
    }
    values.update(extra)
    return SysRegs(values)


# --- PAR_EL1 and fault status codes (D24.2 PAR_EL1; EncodeLDFSC()) --------------------------

_FST = {"addrsize": 0b000000, "translation": 0b000100, "access": 0b001000,
        "permission": 0b001100}
_FST_M1 = {"addrsize": 0b101001, "translation": 0b101011}


def fst(kind: str, level: int) -> int:
    """Long-descriptor fault status code: kind is addrsize/translation/access/permission."""
    if level == -1:
        return _FST_M1[kind]
    return _FST[kind] | level


def par_ok(pa: int, attr: int, sh_: int) -> int:
    """A successful PAR_EL1: ATTR[63:56], PA[55:12], RES1 bit 11, NS=1 (atlab reports 1 for a
    Non-secure regime), SH[8:7], F=0."""
    return (attr << 56) | (pa & ((1 << 56) - (1 << 12))) | (1 << 11) | (1 << 9) | (sh_ << 7)


def par_fault(kind: str, level: int, *, s: int = 0, ptw: int = 0) -> int:
    """A faulting PAR_EL1: F=1, FST[6:1], PTW bit 8, S bit 9, RES1 bit 11."""
    return 1 | (fst(kind, level) << 1) | (ptw << 8) | (s << 9) | (1 << 11)


# --- translation tables ---------------------------------------------------------------------


def s1_start_level(ia_bits: int, pgshift: int) -> int:
    """AArch64.S1StartLevel(): 3 - ((iasize - 1 - granulebits) DIV stride)."""
    return 3 - (ia_bits - 1 - pgshift) // (pgshift - 3)


def level_shift(level: int, pgshift: int) -> int:
    """The lowest input address bit a level resolves."""
    return (3 - level) * (pgshift - 3) + pgshift


class TableAlloc:
    """Hands out naturally aligned, zeroed table addresses from ``base`` upwards."""

    def __init__(self, base: int = 0x4000_0000) -> None:
        self.next = base

    def table(self, size_log2: int) -> int:
        addr = (self.next + (1 << size_log2) - 1) & ~((1 << size_log2) - 1)
        self.next = addr + (1 << size_log2)
        return addr


def oa_plain(addr: int) -> int:
    """Address bits in descriptor bits [47:n] (no 52-bit OA)."""
    assert addr < 1 << 48
    return addr


def oa_lpa2(addr: int) -> int:
    """FEAT_LPA2 (DS=1): OA[49:48] in place, OA[51:50] in descriptor bits [9:8]."""
    return (addr & ((1 << 50) - 1)) | (((addr >> 50) & 3) << 8)


def oa_64k_lpa(addr: int) -> int:
    """FEAT_LPA, 64KB granule: OA[51:48] in descriptor bits [15:12]."""
    return (addr & ((1 << 48) - 1)) | (((addr >> 48) & 0xF) << 12)


def build_tables(
    mem: PhysMem,
    *,
    pgshift: int,
    ia_bits: int,
    start_level: int,
    ia: int,
    oa: int,
    leaf_level: int,
    leaf_bits: int,
    root: int | None = None,
    alloc: TableAlloc | None = None,
    table_bits: int = 0,
    encode_oa: Callable[[int], int] = oa_plain,
    decode_next: Callable[[int], int] | None = None,
    big_endian: bool = False,
) -> int:
    """Write the descriptors that map ``ia`` to ``oa`` with a leaf at ``leaf_level``.

    Table descriptors are ``next | 0b11 | table_bits``; the leaf is ``oa`` aligned to the
    leaf size, encoded by ``encode_oa``, ``| leaf_bits | 0b11`` at level 3 (page) or ``0b01``
    (block).  Existing table descriptors on the path are reused, so several mappings can
    share tables.  The start table is aligned to its own size (it may be a concatenation of
    stage 2 tables).  Returns the start table address.
    """
    alloc = alloc or TableAlloc()
    stride = pgshift - 3
    start_bits = ia_bits - level_shift(start_level, pgshift)
    if root is None:
        root = alloc.table(max(start_bits + 3, 6, pgshift if start_bits >= stride else 0))
    table = root
    for level in range(start_level, leaf_level + 1):
        lsb = level_shift(level, pgshift)
        width = start_bits if level == start_level else stride
        index = (ia >> lsb) & ((1 << width) - 1)
        addr = table + 8 * index
        if level == leaf_level:
            out = oa & ~((1 << lsb) - 1)
            desc = encode_oa(out) | leaf_bits | (0b11 if level == 3 else 0b01)
            mem.poke(addr, byteswap64(desc) if big_endian else desc)
            break
        old = mem.peek(addr)
        if big_endian:
            old = byteswap64(old)
        if old & 0b11 == 0b11:
            table = (decode_next or (lambda d: d & ((1 << 48) - (1 << pgshift))))(old)
            continue
        nxt = alloc.table(pgshift)
        desc = encode_oa(nxt) | 0b11 | table_bits
        mem.poke(addr, byteswap64(desc) if big_endian else desc)
        table = nxt
    return root


def build_s1(
    mem: PhysMem,
    granule: str,
    txsz: int,
    va: int,
    pa: int,
    leaf_level: int,
    desc_bits: int = AF | sh(SH_ISH),
    **kw: object,
) -> int:
    """Stage 1 tables mapping ``va`` to ``pa`` (start level from AArch64.S1StartLevel());
    returns the value to put in TTBRn_ELx.BADDR."""
    pgshift = PGSHIFT[granule]
    ia_bits = 64 - txsz
    sl = kw.pop("start_level", None)
    if sl is None:
        sl = s1_start_level(ia_bits, pgshift)
    return build_tables(mem, pgshift=pgshift, ia_bits=ia_bits, start_level=int(sl),  # type: ignore[arg-type]
                        ia=va, oa=pa, leaf_level=leaf_level, leaf_bits=desc_bits, **kw)


#: Leaf bits of a plain stage 2 mapping: AF=1, S2AP=11 (RW), MemAttr=0b1111 (Normal WB).
S2_RW_WB = AF | s2ap(0b11) | memattr(0b1111)


def build_s2(
    mem: PhysMem,
    granule: str,
    t0sz: int,
    start_level: int,
    ipa: int,
    pa: int,
    leaf_level: int,
    desc_bits: int = S2_RW_WB,
    **kw: object,
) -> int:
    """Stage 2 tables mapping ``ipa`` to ``pa`` from ``start_level`` (possibly concatenated
    start tables); returns the VTTBR_EL2.BADDR value."""
    return build_tables(mem, pgshift=PGSHIFT[granule], ia_bits=64 - t0sz,  # type: ignore[arg-type]
                        start_level=start_level, ia=ipa, oa=pa, leaf_level=leaf_level,
                        leaf_bits=desc_bits, **kw)


def identity_s2_1g(mem: PhysMem, base: int, *, ipa_bits: int = 40, bits: int = S2_RW_WB) -> int:
    """An identity stage 2 for a ``ipa_bits`` IPA space with 1GB level 1 blocks (4KB granule,
    level 1 start: 2^(ipa_bits-30) entries, i.e. concatenated tables above 39 bits)."""
    for i in range(1 << (ipa_bits - 30)):
        mem.poke(base + 8 * i, (i << 30) | bits | 0b01)
    return base
