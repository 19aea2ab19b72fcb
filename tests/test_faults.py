"""Fault status codes (EncodeLDFSC(), ESR_ELx.DFSC / PAR_EL1.FST)."""

from __future__ import annotations

import pytest

from atlab import AtlabError, Fault, FaultKind
from atlab.faults import fst_name


@pytest.mark.parametrize(
    ("kind", "level", "fst"),
    [
        (FaultKind.ADDRESS_SIZE, 0, 0b000000),
        (FaultKind.ADDRESS_SIZE, 3, 0b000011),
        (FaultKind.ADDRESS_SIZE, -1, 0b101001),
        (FaultKind.TRANSLATION, 0, 0b000100),
        (FaultKind.TRANSLATION, -1, 0b101011),
        (FaultKind.ACCESS_FLAG, 1, 0b001001),
        (FaultKind.PERMISSION, 3, 0b001111),
        (FaultKind.SYNC_EXTERNAL_WALK, -1, 0b010011),
        (FaultKind.SYNC_EXTERNAL_WALK, 2, 0b010110),
    ],
    ids=["addrsize-L0", "addrsize-L3", "addrsize-L-1", "trans-L0", "trans-L-1", "AF-L1",
         "perm-L3", "SEA-walk-L-1", "SEA-walk-L2"],
)
def test_fst_encodings(kind: FaultKind, level: int, fst: int) -> None:
    assert Fault(kind, level).fst == fst
    assert Fault.from_fst(fst) == Fault(kind, level)


def test_no_access_flag_or_permission_fault_at_level_minus_1() -> None:
    # Level -1 holds only table descriptors (FEAT_LPA2): there is no such code.
    with pytest.raises(AtlabError):
        _ = Fault(FaultKind.PERMISSION, -1).fst


def test_unknown_fst() -> None:
    assert fst_name(0x3F) == "FST 0x3f"
    with pytest.raises(AtlabError, match="not a translation fault code"):
        Fault.from_fst(0x3F)
