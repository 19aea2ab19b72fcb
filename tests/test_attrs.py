"""MAIR decoding and the PAR_EL1.SH rule (D24.2 MAIR_EL1, PAR_EL1)."""

from __future__ import annotations

import pytest

from atlab.attrs import decode_mair_attr, mair_attr, par_shareability

SH_NSH, SH_OSH, SH_ISH = 0b00, 0b10, 0b11


@pytest.mark.parametrize(
    ("attr", "device", "inner", "outer", "text"),
    [
        # Attr<n>[7:4]=0000: Device, type in [3:2] (00 nGnRnE, 01 nGnRE, 10 nGRE, 11 GRE).
        pytest.param(0x00, True, 0, 0, "Device-nGnRnE", id="0x00-Device-nGnRnE"),
        pytest.param(0x04, True, 0, 0, "Device-nGnRE", id="0x04-Device-nGnRE"),
        pytest.param(0x08, True, 0, 0, "Device-nGRE", id="0x08-Device-nGRE"),
        pytest.param(0x0C, True, 0, 0, "Device-GRE", id="0x0c-Device-GRE"),
        # Normal: outer [7:4], inner [3:0]; 0100 Non-cacheable, 11RW WB, 10RW WT.
        pytest.param(0x44, False, 0x4, 0x4, "Normal iNC oNC", id="0x44-Normal-NC"),
        pytest.param(0xFF, False, 0xF, 0xF, "Normal iWB oWB", id="0xff-Normal-WB"),
        pytest.param(0xBB, False, 0xB, 0xB, "Normal iWT oWT", id="0xbb-Normal-WT"),
        pytest.param(0x4F, False, 0xF, 0x4, "Normal iWB oNC", id="0x4f-oNC-iWB"),
    ],
)
def test_decode_mair_attr(attr: int, device: bool, inner: int, outer: int, text: str) -> None:
    m = decode_mair_attr(attr)
    assert (m.attr, m.device, m.inner, m.outer) == (attr, device, inner, outer)
    assert str(m) == text


def test_mair_attr_index() -> None:
    mair = 0x0C_08_04_00_BB_44_FF_AA
    assert [mair_attr(mair, i) for i in range(8)] == [0xAA, 0xFF, 0x44, 0xBB, 0x00, 0x04, 0x08,
                                                      0x0C]


@pytest.mark.parametrize(
    ("attr", "sh", "expect"),
    [
        # PAR_EL1.SH: "for Device or Normal Inner Non-cacheable, Outer Non-cacheable memory
        # ... 0b10", otherwise the translation's shareability.
        pytest.param(0x00, SH_NSH, SH_OSH, id="Device-NSH->OSH"),
        pytest.param(0x04, SH_ISH, SH_OSH, id="Device-ISH->OSH"),
        pytest.param(0x44, SH_ISH, SH_OSH, id="NC-ISH->OSH"),
        pytest.param(0x44, SH_NSH, SH_OSH, id="NC-NSH->OSH"),
        pytest.param(0xFF, SH_NSH, SH_NSH, id="WB-NSH->NSH"),
        pytest.param(0xFF, SH_ISH, SH_ISH, id="WB-ISH->ISH"),
        pytest.param(0x4F, SH_ISH, SH_ISH, id="oNC-iWB-ISH->ISH"),
        pytest.param(0xF4, SH_NSH, SH_NSH, id="oWB-iNC-NSH->NSH"),
    ],
)
def test_par_shareability(attr: int, sh: int, expect: int) -> None:
    assert par_shareability(decode_mair_attr(attr), sh) == expect
