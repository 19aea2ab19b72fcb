"""Exercise 01: decode a stage 1 descriptor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from atlab.bits import bit, bits, mask
from atlab.checks._helpers import _FEATS_48, _GRANULES
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.descriptors import decode_descriptor
from atlab.granule import Granule, level_lsb


@dataclass(frozen=True, slots=True)
class DescFields:
    """A decoded stage 1 descriptor.  ``kind`` is ``"invalid"``, ``"table"``, ``"block"``,
    ``"page"`` or ``"reserved"``; ``oa`` is the next-level table address (table) or the output
    address (block, page).  The leaf fields are 0 for the other kinds."""

    kind: str
    oa: int = 0
    attr_index: int = 0
    ap: int = 0
    sh: int = 0
    af: int = 0
    pxn: int = 0
    uxn: int = 0

    def __str__(self) -> str:
        if self.kind in ("block", "page"):
            return (f"{self.kind} OA={self.oa:#x} AttrIndx={self.attr_index} AP={self.ap:02b} "
                    f"SH={self.sh:02b} AF={self.af} PXN={self.pxn} UXN={self.uxn}")
        if self.kind == "table":
            return f"table next={self.oa:#x}"
        return self.kind


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def reference_decode_descriptor(desc: int, level: int, granule: Granule) -> DescFields:
    """atlab's answer (:func:`atlab.descriptors.decode_descriptor`), EL1&0, 48-bit PA."""
    d = decode_descriptor(desc, level=level, granule=granule, features=_FEATS_48)
    kind = str(d["kind"])
    if kind == "table":
        return DescFields("table", _int(d["next_table"]))
    if kind in ("block", "page"):
        return DescFields(kind, _int(d["OA"]), _int(d["AttrIndx"]), _int(d["AP"]),
                          _int(d["SH"]), _int(d["AF"]), _int(d["PXN"]), _int(d["UXN"]))
    return DescFields(kind)


def _norm_desc(args: tuple[Any, ...], got: Any) -> DescFields:
    if not isinstance(got, DescFields):
        raise TypeError(f"return a DescFields, not {type(got).__name__}")
    if got.kind in ("block", "page"):
        return got
    if got.kind == "table":
        return DescFields("table", got.oa)
    return DescFields(got.kind)


def _decode_cases() -> list[Case]:
    out: list[Case] = []
    leaf_attrs = [
        # AttrIndx, AP, SH, AF, nG, PXN, UXN
        (0, 0b00, 0b11, 1, 0, 0, 0), (1, 0b01, 0b10, 1, 1, 1, 0), (2, 0b10, 0b00, 0, 0, 0, 1),
        (7, 0b11, 0b11, 1, 1, 1, 1), (4, 0b01, 0b11, 0, 0, 1, 1),
    ]
    for g in _GRANULES:
        gname = str(g)
        levels = (1, 2, 3) if g is Granule.K64 else (0, 1, 2, 3)
        block_levels = {Granule.K4: (1, 2), Granule.K16: (2,), Granule.K64: (2,)}[g]
        for level in levels:
            out.append(_case(f"desc=0x0 at level {level}, {gname}", f"{gname} invalid", 0x0,
                             level, g))
            out.append(_case(f"desc=0x40000002 at level {level}, {gname}", f"{gname} invalid",
                             0x4000_0002, level, g, hint="bit[0] is the valid bit"))
            if level < 3:
                base = 0x8_1234_0000 & mask(47, g.pgshift)
                for extra in (0, 1 << 61 | 1 << 59, 0xFFC | (0x3000 if g is not Granule.K4
                                                               else 0)):
                    desc = base | 3 | extra
                    out.append(_case(f"desc={desc:#x} at level {level}, {gname}",
                                     f"{gname} table", desc, level, g,
                                     hint="a table descriptor's next-level address is bits "
                                     f"[47:{g.pgshift}]"))
        for level in block_levels:
            size = level_lsb(level, g)
            for i, (idx, ap, sh, af, ng, pxn, uxn) in enumerate(leaf_attrs[:3]):
                oa = (0x12_3456_789A_B000 >> 8 << size) & mask(47, size)
                junk = (0x1F000 if i == 1 else 0) & mask(size - 1, 12)
                desc = (oa | junk | 0b01 | idx << 2 | ap << 6 | sh << 8 | af << 10 | ng << 11
                        | pxn << 53 | uxn << 54)
                out.append(_case(f"desc={desc:#x} at level {level}, {gname}", f"{gname} block",
                                 desc, level, g,
                                 hint=f"a level {level} block maps 2^{size} bytes: its OA is "
                                 f"bits [47:{size}]"))
        for idx, ap, sh, af, ng, pxn, uxn in leaf_attrs:
            oa = 0x0000_8765_4321_0000 & mask(47, g.pgshift)
            junk = 0x3000 if g is not Granule.K4 and ng else 0
            desc = (oa | junk | 0b11 | idx << 2 | ap << 6 | sh << 8 | af << 10 | ng << 11
                    | pxn << 53 | uxn << 54)
            out.append(_case(f"desc={desc:#x} at level 3, {gname}", f"{gname} page", desc, 3, g,
                             hint=f"a {gname} page's OA is bits [47:{g.pgshift}]"))
        out.append(_case(f"desc=0x40000401 at level 3, {gname}", f"{gname} reserved",
                         0x4000_0401, 3, g, hint="at level 3, 0b01 is reserved, not a block"))
        no_block = {Granule.K4: 0, Granule.K16: 1, Granule.K64: 1}[g]
        out.append(_case(f"desc=0x40000401 at level {no_block}, {gname}", f"{gname} reserved",
                         0x4000_0401, no_block, g,
                         hint=f"{gname} has no level {no_block} blocks without 52-bit "
                         "addresses: the encoding is reserved"))
    return out


def _wrong_decode_l3_block(desc: int, level: int, granule: Granule) -> DescFields:
    if level == 3 and desc & 3 == 1:
        size = level_lsb(level, granule)
        return DescFields("block", desc & mask(47, size), bits(desc, 4, 2), bits(desc, 7, 6),
                          bits(desc, 9, 8), bit(desc, 10), bit(desc, 53), bit(desc, 54))
    return reference_decode_descriptor(desc, level, granule)


def _wrong_decode_page_mask(desc: int, level: int, granule: Granule) -> DescFields:
    ref = reference_decode_descriptor(desc, level, granule)
    if ref.kind == "block":
        return DescFields("block", desc & mask(47, granule.pgshift), ref.attr_index, ref.ap,
                          ref.sh, ref.af, ref.pxn, ref.uxn)
    return ref


def _wrong_decode_4k_mask(desc: int, level: int, granule: Granule) -> DescFields:
    ref = reference_decode_descriptor(desc, level, granule)
    if ref.kind in ("table", "page"):
        return DescFields(ref.kind, desc & mask(47, 12), ref.attr_index, ref.ap, ref.sh, ref.af,
                          ref.pxn, ref.uxn)
    return ref


DECODE = Exercise(
    "decode_s1_descriptor", "Decode a stage 1 descriptor", _decode_cases,
    reference_decode_descriptor, str, _norm_desc,
    (Mistake("level 3 0b01 read as a block", _wrong_decode_l3_block,
             "at level 3, bits[1:0]=0b01 is reserved (a Translation fault), not a block"),
     Mistake("block OA masked at the page size", _wrong_decode_page_mask,
             "a block's OA keeps only the bits above the block size: mask bits "
             "[47:level_lsb(level)], not [47:pgshift]"),
     Mistake("4KB masks for every granule", _wrong_decode_4k_mask,
             "with 16KB and 64KB granules, table and page addresses start at bit 14 or 16, "
             "not 12")),
    "compare with atlab.descriptors.decode_descriptor(desc, level=..., granule=...)",
    reference_decode_descriptor,
    # most instructive first: leaves of the granule the course starts with, then the other
    # granules' leaves (their OA masks differ), then the reserved level 3 encoding, tables and
    # invalid entries
    group_order=(
        "4KB page",
        "4KB block",
        "16KB page",
        "16KB block",
        "64KB page",
        "64KB block",
        "4KB reserved",
        "16KB reserved",
        "64KB reserved",
        "4KB table",
        "16KB table",
        "64KB table",
    ),
)


def check_decode_s1_descriptor(fn: Callable[[int, int, Granule], DescFields], *,
                            quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``decode_s1_descriptor(desc, level, granule) -> DescFields``."""
    return check(DECODE, fn, quiet=quiet, file=file)
