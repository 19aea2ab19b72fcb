"""Memory attributes: MAIR decode, shareability, and what PAR_EL1 reports.

>>> decode_mair_attr(0xff)
MemAttrs(attr=255, device=False, inner=15, outer=15)
>>> str(decode_mair_attr(0x04)), str(decode_mair_attr(0x44)), str(decode_mair_attr(0xff))
('Device-nGnRE', 'Normal iNC oNC', 'Normal iWB oWB')
>>> par_shareability(decode_mair_attr(0x44), 0b11)
2
"""

from __future__ import annotations

from dataclasses import dataclass

from atlab.bits import bits

DEVICE_TYPES = {0: "nGnRnE", 1: "nGnRE", 2: "nGRE", 3: "GRE"}
SH_NAMES = {0: "NSH", 1: "reserved", 2: "OSH", 3: "ISH"}

#: PAR_EL1.ATTR when stage 1 is disabled for a data access: Device-nGnRnE.
ATTR_DEVICE_nGnRnE = 0x00
#: PAR_EL1.ATTR with HCR_EL2.DC=1: Normal Inner/Outer Write-Back Read/Write-Allocate.
ATTR_NORMAL_WB_RWA = 0xFF
#: ``NormalNCMemAttr()``: Normal Inner/Outer Non-cacheable (stage 2 Normal memory with
#: HCR_EL2.CD=1, ``AArch64.S2TreatAsNormalNC()``).
ATTR_NORMAL_NC = 0x44


@dataclass(frozen=True, slots=True)
class MemAttrs:
    """A MAIR attribute byte, decoded.  For Normal memory ``inner``/``outer`` hold the
    4-bit cacheability encodings (0b0100 is Non-cacheable)."""

    attr: int
    device: bool
    inner: int
    outer: int

    @property
    def non_cacheable(self) -> bool:
        """Normal Inner and Outer Non-cacheable."""
        return not self.device and self.inner == 0b0100 and self.outer == 0b0100

    @property
    def reserved(self) -> bool:
        """A reserved MAIR encoding (CONSTRAINED UNPREDICTABLE in the Arm ARM)."""
        if self.device:
            return bits(self.attr, 1, 0) != 0 and self.attr not in (0x01, 0x05, 0x09, 0x0D)
        return self.inner == 0 and self.attr not in (0x40, 0xA0, 0xF0)

    def __str__(self) -> str:
        if self.device:
            return f"Device-{DEVICE_TYPES[bits(self.attr, 3, 2)]}"
        return f"Normal i{_cache_name(self.inner)} o{_cache_name(self.outer)}"


def _cache_name(enc: int) -> str:
    if enc == 0b0100:
        return "NC"
    if enc == 0:
        return "?"
    top = bits(enc, 3, 2)
    if top in (0b00, 0b10):
        return "WT" + ("t" if top == 0 else "")
    return "WB" + ("t" if top == 0b01 else "")


#: ``S1DecodeMemAttrs()``: the Normal encodings whose low nibble is 0b0000 and that are not
#: reserved - 0x40 Inner/Outer Non-cacheable XS=0 and 0xA0 Inner/Outer Write-Through RA
#: (FEAT_XS), 0xF0 Tagged Inner/Outer Write-Back RWA (FEAT_MTE2) - as the 4-bit
#: cacheability halves they stand for.
_MAIR_XS_HALVES = {0x40: 0b0100, 0xA0: 0b1010, 0xF0: 0b1111}


def decode_mair_attr(attr: int) -> MemAttrs:
    """Decode one MAIR_ELx.Attr<n> byte (D24.2 MAIR_EL1; ``S1DecodeMemAttrs()``)."""
    outer = bits(attr, 7, 4)
    if outer == 0:
        return MemAttrs(attr, True, 0, 0)
    if attr in _MAIR_XS_HALVES:
        half = _MAIR_XS_HALVES[attr]
        return MemAttrs(attr, False, half, half)
    return MemAttrs(attr, False, bits(attr, 3, 0), outer)


def mair_attr(mair: int, index: int) -> int:
    """``AArch64.MAIRAttr()``: the attribute byte for AttrIndx ``index``."""
    return mair >> 8 * index & 0xFF


def par_shareability(attrs: MemAttrs, sh: int) -> int:
    """PAR_EL1.SH: 0b10 for any Device memory and for Normal Inner and Outer Non-cacheable
    memory (PAR_EL1.SH note), otherwise the translation's shareability."""
    if attrs.device or attrs.non_cacheable:
        return 0b10
    return sh


# --- Normal-memory halves and stage 2 combination (S2CombineS1MemAttrs() and friends) -------

NC, WT, WB = "NC", "WT", "WB"


def _half(enc: int) -> tuple[str, int, bool]:
    """A 4-bit MAIR cacheability half -> (kind, RW allocation hints, transient)."""
    if enc == 0b0100:
        return NC, 0, False
    top, rw = enc >> 2, enc & 3
    if top == 0b00:
        return WT, rw, True
    if top == 0b01:
        return WB, rw, True
    return (WT if top == 0b10 else WB), rw, False


def _enc_half(kind: str, rw: int, transient: bool) -> int:
    if kind == NC:
        return 0b0100
    if kind == WT:
        return (0b00 if transient else 0b10) << 2 | rw
    return (0b01 if transient else 0b11) << 2 | rw


def s2_memattr_to_attr(memattr: int) -> int:
    """Stage 2 MemAttr[3:0] (FWB=0) as a MAIR-style byte for combining.  Stage 2 assigns no
    allocation hints; the result carries none (``S2DecodeMemAttrs()``)."""
    if memattr >> 2 == 0:
        return (memattr & 3) << 2  # Device, type in bits [3:2] as in MAIR
    kinds = {1: NC, 2: WT, 3: WB}
    outer = kinds.get(memattr >> 2, WB)
    inner = kinds.get(memattr & 3, WB)
    return (_enc_half(outer, 0, False) << 4) | _enc_half(inner, 0, False)


#: CONSTRAINED UNPREDICTABLE (``S2DecodeMemAttrs()``, ``S2ResMemAttr()``: "map reserved
#: encodings to an allocated encoding"): a reserved stage 2 MemAttr (0b0100 without
#: FEAT_MTE_PERM, 0b1000, 0b1100 - reserved because the inner half is 0b00) keeps its outer
#: half and reads its inner half as this value (0b11, Write-Back), i.e. 0b0100 -> 0b0111,
#: 0b1000 -> 0b1011, 0b1100 -> 0b1111, as QEMU does.
S2_RESERVED_MEMATTR_INNER = 0b11


def s2_constrain_reserved_memattr(memattr: int) -> int:
    """The allocated encoding atlab uses for a reserved stage 2 MemAttr (FWB=0)."""
    return memattr | S2_RESERVED_MEMATTR_INNER if s2_memattr_reserved(memattr) else memattr


def s2_memattr_reserved(memattr: int) -> bool:
    return memattr == 0b0100 or memattr & 0b1011 == 0b1000


def _combine_half(s1: int, s2: int) -> int:
    k1, rw1, t1 = _half(s1)
    k2, _, _ = _half(s2)
    if NC in (k1, k2):
        return 0b0100
    kind = WT if WT in (k1, k2) else WB
    return _enc_half(kind, rw1, t1)


#: CONSTRAINED UNPREDICTABLE (``S1ConstrainUnpredictableRESMAIR()``): without FEAT_MTE2 the
#: Tagged encoding 0xF0 is reserved; combined with stage 2 atlab reads it as 0xFF (Normal WB
#: RWA), as QEMU does.  With FWB=0 the FEAT_XS encodings 0x40/0xA0 combine half by half, so
#: an XS=0 Non-cacheable result keeps the 0x40 form (``EncodePARAttrs()``); with FWB=1 they
#: are read as the Normal NC / WT attributes they stand for (``S1DecodeMemAttrs()``).
S1_ATTR_FOR_COMBINING = {0xF0: 0xFF}
S1_ATTR_FOR_FWB = {0x40: 0x44, 0xA0: 0xAA, 0xF0: 0xFF}


#: CONSTRAINED UNPREDICTABLE (``S1ConstrainUnpredictableRESMAIR()``): a reserved Device
#: encoding (0b0000xx1x) combined with stage 2 is read as Device-GRE (0x0C), as QEMU does.
S1_RESERVED_DEVICE_AS = 0x0C


def _s1_for_combining(s1_attr: int) -> int:
    if s1_attr >> 4 == 0 and s1_attr & 0b10:
        return S1_RESERVED_DEVICE_AS
    return S1_ATTR_FOR_COMBINING.get(s1_attr, s1_attr)


def combine_s1_s2(s1_attr: int, s2_attr: int) -> int:
    """``S2CombineS1MemAttrs()`` on MAIR-style bytes (FWB=0)."""
    s1_attr = _s1_for_combining(s1_attr)
    d1, d2 = s1_attr >> 4 == 0, s2_attr >> 4 == 0
    if d1 and d2:
        return min(bits(s1_attr, 3, 2), bits(s2_attr, 3, 2)) << 2  # S2CombineS1Device()
    if d1:
        return s1_attr
    if d2:
        return s2_attr
    return (_combine_half(s1_attr >> 4, s2_attr >> 4) << 4) | _combine_half(s1_attr & 15,
                                                                            s2_attr & 15)


#: CONSTRAINED UNPREDICTABLE with HCR_EL2.FWB=1 (Table D8-101; without FEAT_MTE_PERM
#: MemAttr[3] is RES0): MemAttr[2:0]=0b100 is Reserved, and atlab treats a MemAttr with the
#: RES0 bit 3 set as reserved too; both give Device-nGnRnE, as QEMU does.
FWB_RESERVED_MEMATTR_ATTR = ATTR_DEVICE_nGnRnE


def fwb_memattr_reserved(memattr: int) -> bool:
    return bool(memattr & 0b1000) or memattr & 0b0111 == 0b0100


def fwb_combine(s1_attr: int, s2_memattr: int) -> int:
    """``AArch64.S2ApplyFWBMemAttrs()`` on MAIR-style bytes (HCR_EL2.FWB=1)."""
    if fwb_memattr_reserved(s2_memattr):
        return FWB_RESERVED_MEMATTR_ATTR
    s1_attr = S1_ATTR_FOR_FWB.get(s1_attr, _s1_for_combining(s1_attr))
    s1_device = s1_attr >> 4 == 0
    if not s2_memattr & 0b0100:  # stage 2 Device
        s2_dev = s2_memattr & 3
        if s1_device:
            return min(bits(s1_attr, 3, 2), s2_dev) << 2
        return s2_dev << 2
    if s2_memattr & 3 == 0b11:  # stage 1 attributes
        return s1_attr
    if s2_memattr & 3 == 0b10:  # forced Write-Back, hints from a cacheable stage 1
        out = []
        for half in (s1_attr >> 4, s1_attr & 15):
            kind, rw, transient = _half(half)
            if s1_device or kind == NC:
                out.append(_enc_half(WB, 0b11, False))
            else:
                out.append(_enc_half(WB, rw, transient))
        return (out[0] << 4) | out[1]
    # 0b?101 / 0b?100: Non-cacheable unless stage 1 is Device
    return s1_attr if s1_device else 0x44


def combine_shareability(sh1: int, sh2: int) -> int:
    """``S2CombineS1Shareability()``: OSH wins over ISH wins over NSH."""
    if 0b10 in (sh1, sh2):
        return 0b10
    if 0b11 in (sh1, sh2):
        return 0b11
    return 0b00


#: MAIR bytes for which PAR_EL1.SH reads 0b10 (par_shareability() as a lookup table).
PAR_SH_IS_OSH = frozenset(a for a in range(256) if par_shareability(decode_mair_attr(a), 0) == 2)


def s12_par_attrs(s1_attr: int, s1_sh: int, s2_memattr: int, s2_sh: int, *, fwb: bool,
                  cd: bool) -> tuple[int, int]:
    """PAR_EL1.{ATTR, SH} of a successful AT S12E* from the stage 1 attributes and the stage 2
    leaf's MemAttr (after the walk's CONSTRAINED choice, as ``S2Result.memattr``) and SH.

    ``AArch64.S2Translate()``: with HCR_EL2.CD=1 (``AArch64.S2TreatAsNormalNC()``) stage 2
    Normal memory is Normal Non-cacheable for a data access; with FWB=1 the stage 2
    attributes are already combined with stage 1's (``S2ApplyFWBMemAttrs()``), else
    ``S2CombineS1MemAttrs()``; SH by ``S2CombineS1Shareability()``, then 0b10 for Device and
    Normal Inner+Outer Non-cacheable.
    """
    if fwb:
        attr = fwb_combine(s1_attr, s2_memattr)
        if cd and attr >> 4:
            attr = ATTR_NORMAL_NC
    else:
        s2_attr = s2_memattr_to_attr(s2_memattr)
        attr = combine_s1_s2(s1_attr, ATTR_NORMAL_NC if cd and s2_attr >> 4 else s2_attr)
    return attr, 0b10 if attr in PAR_SH_IS_OSH else combine_shareability(s1_sh, s2_sh)

