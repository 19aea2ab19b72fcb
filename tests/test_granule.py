"""Granules and walk geometry (atlab.granule): AArch64.S1StartLevel(), the TGx encodings,
AArch64.BlockDescSupported(), AArch64.ContiguousBit()."""

from __future__ import annotations

import pytest

from atlab import AtlabError, FeatureSet
from atlab.granule import (
    Granule,
    block_desc_supported,
    contiguous_bit,
    decode_tg0,
    decode_tg1,
    level_lsb,
    start_level,
)

ALL = FeatureSet.all()


@pytest.mark.parametrize(
    ("granule", "ia_bits", "sl"),
    [
        # AArch64.S1StartLevel(): FINAL_LEVEL - ((iasize - 1 - granulebits) DIV stride)
        pytest.param(Granule.K4, 48, 0, id="4K-48bit-L0"),
        pytest.param(Granule.K4, 39, 1, id="4K-39bit-L1"),
        pytest.param(Granule.K4, 52, -1, id="4K-52bit-L-1"),
        pytest.param(Granule.K16, 47, 1, id="16K-47bit-L1"),
        pytest.param(Granule.K16, 48, 0, id="16K-48bit-L0"),
        pytest.param(Granule.K64, 42, 2, id="64K-42bit-L2"),
        pytest.param(Granule.K64, 52, 1, id="64K-52bit-L1"),
    ],
)
def test_start_level(granule: Granule, ia_bits: int, sl: int) -> None:
    assert start_level(ia_bits, granule) == sl


def test_level_lsb_and_strides() -> None:
    assert [level_lsb(lv, Granule.K4) for lv in range(4)] == [39, 30, 21, 12]
    assert [level_lsb(lv, Granule.K16) for lv in range(4)] == [47, 36, 25, 14]
    assert [level_lsb(lv, Granule.K64) for lv in range(1, 4)] == [42, 29, 16]
    assert [g.stride for g in Granule] == [9, 11, 13]


def test_tg_encodings_differ_and_reserved_ones_raise() -> None:
    # TCR_ELx.TG0: 00 4KB, 01 64KB, 10 16KB; TG1: 01 16KB, 10 4KB, 11 64KB (D24.2 TCR_EL1)
    assert [decode_tg0(v, "TCR_EL1") for v in (0, 1, 2)] == [Granule.K4, Granule.K64,
                                                              Granule.K16]
    assert [decode_tg1(v, "TCR_EL1") for v in (1, 2, 3)] == [Granule.K16, Granule.K4,
                                                              Granule.K64]
    with pytest.raises(AtlabError, match=r"^TCR_EL1\.TG0=0b11 is a reserved"):
        decode_tg0(3, "TCR_EL1")
    with pytest.raises(AtlabError, match=r"^TCR_EL1\.TG1=0b00 is a reserved"):
        decode_tg1(0, "TCR_EL1")


def test_block_descriptors_and_contiguous_bit() -> None:
    # AArch64.BlockDescSupported(): 4KB L1/L2 (L0 with DS), 16KB L2 (L1 with DS), 64KB L2
    # (L1 with 52-bit PAs, FEAT_LPA)
    assert [block_desc_supported(Granule.K4, lv, False, ALL) for lv in range(3)] == [
        False, True, True]
    assert block_desc_supported(Granule.K4, 0, True, ALL)
    assert not block_desc_supported(Granule.K16, 1, False, ALL)
    assert block_desc_supported(Granule.K64, 1, False, ALL)
    assert not block_desc_supported(Granule.K64, 1, False, FeatureSet.all(48))
    # AArch64.ContiguousBit(): RES0 for 4KB level 0 and 16KB/64KB level 1 blocks
    assert not contiguous_bit(1 << 52, 0, Granule.K4)
    assert contiguous_bit(1 << 52, 1, Granule.K4)
    assert not contiguous_bit(1 << 52, 1, Granule.K64)
