"""Physical memory: sparse words, endianness, the access log."""

from __future__ import annotations

import pytest

from atlab import AtlabError, PhysMem
from atlab.memory import AccessKind, byteswap64


def test_unwritten_memory_reads_zero_and_is_logged() -> None:
    mem = PhysMem()
    assert mem.read64(0x4000_0000, purpose="L0 descriptor") == 0
    assert mem.log[-1].kind is AccessKind.READ and mem.log[-1].purpose == "L0 descriptor"


def test_big_endian_reads_reverse_bytes() -> None:
    mem = PhysMem({0x1000: 0x0102030405060708})
    assert mem.read64(0x1000, big_endian=True) == 0x0807060504030201
    mem.write64(0x1008, 0x11, big_endian=True, purpose="AF update")
    assert mem.peek(0x1008) == byteswap64(0x11)
    assert mem.log[-1].kind is AccessKind.WRITE


@pytest.mark.parametrize("pa", [0x1001, 1 << 56, -8])
def test_bad_addresses(pa: int) -> None:
    with pytest.raises(AtlabError, match="8-byte aligned"):
        PhysMem({pa: 1})


def test_copy_is_independent() -> None:
    a = PhysMem({8: 1})
    b = a.copy()
    b.poke(8, 2)
    assert a.peek(8) == 1 and a != b and len(b) == 1
