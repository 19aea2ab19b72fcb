"""Decoding (and encoding) VMSAv8-64 translation table descriptors by field name.

>>> d = decode_descriptor(0x0000000045678703, level=3)
>>> d["kind"], hex(d["OA"]), d["AP"], d["AF"], d["SH"]
('page', '0x45678000', 0, 1, 3)
>>> decode_descriptor(0x40201003, level=0)["kind"]
'table'
>>> decode_descriptor(0x401, level=3)["kind"]
'reserved'
>>> hex(encode_page(0x45678000, attr_index=0, ap=0, sh=3))
'0x45678703'
"""

from __future__ import annotations

import enum

from atlab.bits import bit, bits, mask
from atlab.errors import AtlabError
from atlab.features import FeatureSet
from atlab.granule import FINAL_LEVEL, Granule, block_desc_supported, level_lsb, lpa_64k
from atlab.regime import Regime


class DescKind(enum.Enum):
    """What a 64-bit descriptor is at its level (``AArch64.DecodeDescriptorType()``)."""

    INVALID = "invalid"
    TABLE = "table"
    BLOCK = "block"
    PAGE = "page"
    RESERVED = "reserved"  # valid bit set but not a legal encoding at this level

    __hash__ = object.__hash__  # identity (members are singletons): a C-level hash


def decode_desc_kind(desc: int, level: int, granule: Granule, ds: bool,
                     features: FeatureSet) -> DescKind:
    """``AArch64.DecodeDescriptorType()`` for 64-bit descriptors."""
    if not desc & 1:
        return DescKind.INVALID
    if desc & 2:
        return DescKind.PAGE if level == FINAL_LEVEL else DescKind.TABLE
    if level != FINAL_LEVEL and block_desc_supported(granule, level, ds, features):
        return DescKind.BLOCK
    return DescKind.RESERVED


def desc_oa_high(desc: int, *, ds: bool, lpa_64k: bool) -> int:
    """OA[51:48] carried by a descriptor: bits [15:12] (64KB, FEAT_LPA) or [9:8,49:48] (DS)."""
    if lpa_64k:
        return bits(desc, 15, 12) << 48
    if ds:
        return (bits(desc, 9, 8) << 50) | (bits(desc, 49, 48) << 48)
    return 0


def next_table_base(desc: int, granule: Granule, ds: bool, lpa_64k: bool) -> int:
    """``AArch64.NextTableBase()``."""
    return (desc & mask(47, granule.pgshift)) | desc_oa_high(desc, ds=ds, lpa_64k=lpa_64k)


def leaf_base(desc: int, level: int, granule: Granule, ds: bool, lpa_64k: bool) -> int:
    """``AArch64.S1LeafBase()``: the block or page address."""
    leafsize = level_lsb(level, granule)
    return (desc & mask(47, leafsize)) | desc_oa_high(desc, ds=ds, lpa_64k=lpa_64k)


def pi_index(desc: int) -> int:
    """PIIndex of a 64-bit stage 1 leaf: descriptor bits 54, 53, 51, 6
    (``AArch64.S1ApplyOutputPerms()``)."""
    return (desc >> 54 & 1) << 3 | (desc >> 53 & 1) << 2 | (desc >> 51 & 1) << 1 | (desc >> 6 & 1)


def po_index(desc: int) -> int:
    """POIndex of a stage 1 leaf (FEAT_S1POE): descriptor bits [62:60]
    (``AArch64.S1ApplyOutputPerms()``: po_index = '0':descriptor<62:60>)."""
    return desc >> 60 & 7


def attr_index(desc: int, *, aie: bool) -> int:
    """AttrIndx of a stage 1 leaf: bits [4:2], with bit 59 as AttrIndx[3] under FEAT_AIE
    (``AArch64.S1NextWalkStateLeaf()``)."""
    return (desc >> 59 & 1) << 3 | (desc >> 2 & 7) if aie else desc >> 2 & 7


DESC_KIND_TEXT = {k: k.value for k in DescKind}  # WalkStep.kind

GRANULES = {"4K": Granule.K4, "4KB": Granule.K4, "16K": Granule.K16, "16KB": Granule.K16,
            "64K": Granule.K64, "64KB": Granule.K64}


def parse_granule(text: str) -> Granule:
    try:
        return GRANULES[text.upper()]
    except KeyError:
        raise AtlabError(f"unknown granule {text!r}; use 4K, 16K or 64K") from None


def check_level(level: int, granule: Granule, *, stage: int = 1, ds: bool = False) -> None:
    """Raise :class:`AtlabError` unless ``granule`` has lookup level ``level`` (-1..3) at
    ``stage`` with the Effective value ``ds`` of TCR_ELx.DS/VTCR_EL2.DS: level -1 is the 4KB
    granule's with DS=1 only (R_KSBQV, Table D8-16), a 64KB walk has levels 1 to 3
    (R_MLLGN, Table D8-35), a 16KB stage 2 walk has level 0 with DS=1 only (R_VGVLD,
    Table D8-26)."""
    if not -1 <= level <= 3:
        raise AtlabError(f"level must be -1..3, not {level}")
    if level == -1 and (granule is not Granule.K4 or not ds):
        where = "" if granule is Granule.K4 else f"; a {granule} walk has no level -1"
        raise AtlabError("level -1 exists only with the 4KB granule and DS=1 (FEAT_LPA2, "
                         f"52-bit addresses){where}")
    if level == 0 and granule is Granule.K64:
        raise AtlabError("a 64KB walk has no level 0: its lookups are levels 1 to 3")
    if level == 0 and granule is Granule.K16 and stage == 2 and not ds:
        raise AtlabError("a 16KB stage 2 walk has level 0 only with VTCR_EL2.DS=1 (FEAT_LPA2)")


def decode_descriptor(
    desc: int,
    *,
    level: int,
    granule: Granule = Granule.K4,
    stage: int = 1,
    regime: Regime = Regime.EL10,
    ds: bool = False,
    features: FeatureSet | None = None,
) -> dict[str, object]:
    """The fields of a descriptor at ``level``, with its kind (invalid/table/block/page/
    reserved), in the Arm ARM's names."""
    check_level(level, granule, stage=stage, ds=ds)
    if desc >> 64 or desc < 0:
        raise AtlabError(f"descriptor {desc:#x} does not fit in 64 bits")
    features = features or FeatureSet.all()
    high_64k = lpa_64k(granule, features)
    kind = decode_desc_kind(desc, level, granule, ds, features).value
    out: dict[str, object] = {"kind": kind, "value": f"0x{desc:016x}"}
    if kind in ("invalid", "reserved"):
        return out
    if kind == "table":
        out["next_table"] = next_table_base(desc, granule, ds, high_64k)
        if stage == 1:
            out.update(NSTable=bit(desc, 63), APTable=bits(desc, 62, 61),
                       UXNTable=bit(desc, 60), PXNTable=bit(desc, 59))
        return out
    out["OA"] = leaf_base(desc, level, granule, ds, high_64k)
    out["AF"] = bit(desc, 10)
    if not ds:
        out["SH"] = bits(desc, 9, 8)
    out["Contiguous"] = bit(desc, 52)
    out["DBM"] = bit(desc, 51)
    if stage == 2:
        out.update(MemAttr=bits(desc, 5, 2), S2AP=bits(desc, 7, 6), XN=bits(desc, 54, 53))
        return out
    out.update(AttrIndx=bits(desc, 4, 2), NS=bit(desc, 5), AP=bits(desc, 7, 6))
    if regime.has_unprivileged:
        out.update(nG=bit(desc, 11), PXN=bit(desc, 53), UXN=bit(desc, 54))
    else:
        out["XN"] = bit(desc, 54)
    return out


def encode_page(pa: int, *, attr_index: int = 0, ap: int = 0, sh: int = 3, af: int = 1,
                uxn: int = 0, pxn: int = 0, ng: int = 0, contiguous: int = 0,
                block: bool = False) -> int:
    """A stage 1 page (or, with ``block``, block) descriptor with the usual fields."""
    return (pa | (0b01 if block else 0b11) | (attr_index << 2) | (ap << 6) | (sh << 8)
            | (af << 10) | (ng << 11) | (contiguous << 52) | (pxn << 53) | (uxn << 54))


def encode_table(next_table: int, *, ap_table: int = 0, uxn_table: int = 0,
                 pxn_table: int = 0) -> int:
    """A stage 1 table descriptor."""
    return next_table | 0b11 | (pxn_table << 59) | (uxn_table << 60) | (ap_table << 61)
