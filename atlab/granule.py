"""Translation granules and the walk geometry they give, below the walkers and the
descriptor decoder (:mod:`atlab.descriptors`).

>>> Granule.K4.stride, str(Granule.K16)
(9, '16KB')
>>> start_level(48, Granule.K4), level_lsb(2, Granule.K4)
(0, 21)
>>> decode_tg1(0b10, "TCR_EL1")
<Granule.K4: 12>
"""

from __future__ import annotations

import enum

from atlab.errors import AtlabError
from atlab.features import Feature, FeatureSet

#: The last level of a walk (``FINAL_LEVEL`` in at.c).
FINAL_LEVEL = 3


class Granule(enum.Enum):
    """Translation granule; the value is log2 of its size (``TGxGranuleBits()``)."""

    K4 = 12
    K16 = 14
    K64 = 16

    @property
    def pgshift(self) -> int:
        return self.value

    @property
    def stride(self) -> int:
        """Index bits resolved per level (granule bits minus 3 for 8-byte descriptors)."""
        return self.value - 3

    @property
    def feature(self) -> Feature:
        return {Granule.K4: Feature.TGRAN4, Granule.K16: Feature.TGRAN16,
                Granule.K64: Feature.TGRAN64}[self]

    def __str__(self) -> str:
        return {Granule.K4: "4KB", Granule.K16: "16KB", Granule.K64: "64KB"}[self]


_TG0 = {0b00: Granule.K4, 0b01: Granule.K64, 0b10: Granule.K16}
_TG1 = {0b10: Granule.K4, 0b11: Granule.K64, 0b01: Granule.K16}


def decode_tg0(tg0: int, reg: str) -> Granule:
    """``AArch64.S1DecodeTG0()`` / ``S2DecodeTG0()``; the reserved 0b11 raises."""
    try:
        return _TG0[tg0]
    except KeyError:
        raise AtlabError(f"{reg}.TG0=0b11 is a reserved granule encoding") from None


def decode_tg1(tg1: int, reg: str) -> Granule:
    """``AArch64.S1DecodeTG1()``: TG1 is encoded differently from TG0; 0b00 is reserved."""
    try:
        return _TG1[tg1]
    except KeyError:
        raise AtlabError(f"{reg}.TG1=0b00 is a reserved granule encoding") from None


#: TCR_ELx.{PS,IPS} and VTCR_EL2.PS encodings, also ID_AA64MMFR0_EL1.PARange's: the size in
#: bits by encoding (0b111, 56 bits, is FEAT_D128's).
PS_BITS = (32, 36, 40, 42, 44, 48, 52, 56)


def physical_address_size(ps: int, granule: Granule, ds: bool, features: FeatureSet) -> int:
    """``AArch64.PhysicalAddressSize()``: the configured size capped by what the PE supports."""
    if features.has(Feature.LPA) and (granule is Granule.K64 or ds):
        max_ps = min(52, features.pa_max)
    else:
        max_ps = min(48, features.pa_max)
    return min(PS_BITS[ps], max_ps)


def start_level(ia_bits: int, granule: Granule) -> int:
    """``AArch64.S1StartLevel()``: FINAL_LEVEL - ((iasize - 1 - granulebits) DIV stride)."""
    return FINAL_LEVEL - (ia_bits - 1 - granule.pgshift) // granule.stride


def level_lsb(level: int, granule: Granule) -> int:
    """Lowest input-address bit resolved at ``level``."""
    return (FINAL_LEVEL - level) * granule.stride + granule.pgshift


def index_slices(ia_bits: int, sl: int, granule: Granule) -> tuple[tuple[int, int], ...]:
    """(lowest bit, index mask) of the input-address slice that indexes the table at each
    level from ``sl`` to level 3; the start level takes every bit up to ``ia_bits``."""
    out = []
    for level in range(sl, FINAL_LEVEL + 1):
        lsb = level_lsb(level, granule)
        hi = ia_bits if level == sl else lsb + granule.stride
        out.append((lsb, (1 << (hi - lsb)) - 1))
    return tuple(out)


def lpa_64k(granule: Granule, features: FeatureSet) -> bool:
    """64KB-granule descriptors (and TTBRs) carry OA[51:48] in bits [15:12]: FEAT_LPA with
    ``AArch64.PAMax() >= 52`` (``AArch64.S1LeafBase()``, ``AArch64.NextTableBase()``); the
    same condition allows 64KB level 1 blocks (``AArch64.BlockDescSupported()``)."""
    return granule is Granule.K64 and features.pa_max >= 52 and features.has(Feature.LPA)


def block_desc_supported(granule: Granule, level: int, ds: bool, features: FeatureSet) -> bool:
    """``AArch64.BlockDescSupported()``."""
    if granule is Granule.K4:
        return (level == 0 and ds) or level in (1, 2)
    if granule is Granule.K16:
        return (level == 1 and ds) or level == 2
    return (level == 1 and lpa_64k(granule, features)) or level == 2


def contiguous_bit(desc: int, level: int, granule: Granule) -> bool:
    """``AArch64.ContiguousBit()``: RES0 for 4KB level 0, 16KB level 1 and 64KB level 1
    blocks."""
    return bool(desc >> 52 & 1) and level != (0 if granule is Granule.K4 else 1)
