"""Bit-field helpers in the Arm ARM's ``x<hi:lo>`` style.

>>> bits(0xff00, 15, 8)
255
>>> bit(0b100, 2)
1
>>> hex(set_bits(0, 7, 4, 0xa))
'0xa0'
>>> hex(mask(47, 12))
'0xfffffffff000'
"""

from __future__ import annotations


def mask(hi: int, lo: int) -> int:
    """Mask of bits ``hi:lo`` inclusive (empty if ``hi < lo``)."""
    if hi < lo:
        return 0
    return ((1 << (hi - lo + 1)) - 1) << lo


def bits(value: int, hi: int, lo: int) -> int:
    """``value<hi:lo>`` as an unsigned integer."""
    if hi < lo:
        return 0
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def bit(value: int, n: int) -> int:
    """``value<n>``."""
    return (value >> n) & 1


def set_bits(value: int, hi: int, lo: int, field: int) -> int:
    """``value`` with ``value<hi:lo>`` replaced by ``field`` (truncated to the width)."""
    m = mask(hi, lo)
    return (value & ~m) | ((field << lo) & m)


def align_down(value: int, size_log2: int) -> int:
    """``Align(value, 2^size_log2)``."""
    return value & ~((1 << size_log2) - 1)


U64 = (1 << 64) - 1
