"""PAR_EL1 encoding and decoding (D24.2 PAR_EL1, AArch64.EncodePAR())."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atlab import Fault, FaultKind, Par


@pytest.mark.parametrize(
    ("par", "text"),
    [
        (Par.success(0x45678ABC, 0xFF, 0b11),
         "PAR_EL1=0xff00000045678b80 F=0 PA=0x45678000 ATTR=0xff SH=ISH NS=1"),
        (Par.success(0x4000_0000, 0x00, 0b10),
         "PAR_EL1=0x0000000040000b00 F=0 PA=0x40000000 ATTR=0x00 SH=OSH NS=1"),
        (Par.from_fault(Fault(FaultKind.PERMISSION, 3)),
         "PAR_EL1=0x000000000000081f F=1 FST=permission L3 S=0 PTW=0"),
        (Par.from_fault(Fault(FaultKind.TRANSLATION, 2, stage=2, s1ptw=True)),
         "PAR_EL1=0x0000000000000b0d F=1 FST=translation L2 S=1 PTW=1"),
        (Par.from_fault(Fault(FaultKind.TRANSLATION, 3, stage=2)),
         "PAR_EL1=0x0000000000000a0f F=1 FST=translation L3 S=1 PTW=0"),
        (Par.from_fault(Fault(FaultKind.TRANSLATION, -1)),
         "PAR_EL1=0x0000000000000857 F=1 FST=translation L-1 S=0 PTW=0"),
        (Par.from_fault(Fault(FaultKind.ADDRESS_SIZE, 0)),
         "PAR_EL1=0x0000000000000801 F=1 FST=address size L0 S=0 PTW=0"),
    ],
    ids=["success-WB-ISH", "success-Device", "S1-perm-L3", "S2-on-S1-walk-L2",
         "S2-final-L3", "S1-trans-L-1", "S1-addrsize-L0"],
)
def test_par_values_as_qemu_reports_them(par: Par, text: str) -> None:
    # Values cross-checked with ../shared/conformance/smoke.json (QEMU 10 -cpu max).
    assert str(par) == text


def test_success_pa_covers_bits_55_to_12() -> None:
    # PAR_EL1 (64-bit format): PA in bits [55:12]; 52-bit PAs fit.
    par = Par.success(0xF_1234_5678_9000, 0x44, 0)
    assert par.pa == 0xF_1234_5678_9000


@given(st.integers(0, (1 << 56) - 1), st.integers(0, 255), st.sampled_from([0, 2, 3]))
def test_success_roundtrip(pa: int, attr: int, sh: int) -> None:
    par = Par.success(pa, attr, sh)
    assert (par.f, par.pa, par.attr, par.sh, par.ns) == (0, pa & ~0xFFF, attr, sh, 1)
    assert Par(par.value) == par


@given(st.sampled_from(list(FaultKind)), st.integers(0, 3), st.integers(1, 2), st.booleans())
def test_fault_roundtrip(kind: FaultKind, level: int, stage: int, s1ptw: bool) -> None:
    fault = Fault(kind, level, stage, s1ptw and stage == 2)
    par = Par.from_fault(fault)
    assert par.f == 1
    assert Fault.from_fst(par.fault_status, stage=1 + par.s, s1ptw=bool(par.ptw)) == fault


def test_masked_ignores_only_the_implementation_defined_bits() -> None:
    # Success: bit 10 IMPLEMENTATION DEFINED, bit 11 RES1 (QEMU sets it), NS UNKNOWN.
    assert Par(0xFF00000045678B80).masked() == Par(0xFF00000045678180).masked()
    assert Par(0xFF00000045678B80).masked() != Par(0xFF00000045679B80).masked()
    # Fault: bits [63:48] IMPLEMENTATION DEFINED.
    assert Par(0x81F | (0xABCD << 48)).masked() == Par(0x81F).masked()
