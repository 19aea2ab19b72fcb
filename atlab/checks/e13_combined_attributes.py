"""Exercise 13: combined stage 1 x stage 2 memory attributes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.attrs import combine_s1_s2, decode_mair_attr, s2_memattr_to_attr
from atlab.bits import bits
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check


def reference_combine_attrs(s1_attr: int, s2_memattr: int) -> int:
    """``S2CombineS1MemAttrs()`` with HCR_EL2.FWB=0: :func:`atlab.attrs.combine_s1_s2` of the
    MAIR byte and :func:`atlab.attrs.s2_memattr_to_attr` of MemAttr[3:0]."""
    return combine_s1_s2(s1_attr, s2_memattr_to_attr(s2_memattr))


def _attr_name(attr: int) -> str:
    return str(decode_mair_attr(attr))


def _ref_attrs_cmp(s1_attr: int, s2_memattr: int) -> str:
    return _attr_name(reference_combine_attrs(s1_attr, s2_memattr))


def _norm_attrs(args: tuple[Any, ...], got: Any) -> str:
    if not isinstance(got, int) or not 0 <= got <= 0xFF:
        raise TypeError(f"return a MAIR attribute byte, not {got!r}")
    return _attr_name(got)


_S2_MEMATTRS = (0b0000, 0b0001, 0b0010, 0b0011, 0b0101, 0b0110, 0b0111, 0b1001, 0b1010, 0b1011,
                0b1101, 0b1110, 0b1111)


def _attrs_cases() -> list[Case]:
    out = []
    for s1 in (0x00, 0x04, 0x08, 0x0C, 0x44, 0xFF, 0xBB, 0x4F, 0xF4, 0xAA):
        for m in _S2_MEMATTRS:
            out.append(_case(f"stage 1 {s1:#04x} ({_attr_name(s1)}) x stage 2 MemAttr={m:04b}",
                             f"stage 1 {_attr_name(s1)}", s1, m))
    return out


def _wrong_s2_wins(s1: int, m: int) -> int:
    return s2_memattr_to_attr(m)


def _wrong_s1_wins(s1: int, m: int) -> int:
    return s1


def _wrong_device_weaker(s1: int, m: int) -> int:
    s2 = s2_memattr_to_attr(m)
    if s1 >> 4 == 0 and s2 >> 4 == 0:
        return max(bits(s1, 3, 2), bits(s2, 3, 2)) << 2
    return combine_s1_s2(s1, s2)


COMBINE_ATTRS = Exercise(
    "combine_attrs", "Combined stage 1 and stage 2 attributes", _attrs_cases, _ref_attrs_cmp,
    str, _norm_attrs,
    (Mistake("stage 2 overrides stage 1", _wrong_s2_wins,
             "with FWB=0 the stages combine: the more restrictive of the two wins"),
     Mistake("stage 2 ignored", _wrong_s1_wins,
             "stage 2 can make memory more restrictive: Device at either stage gives Device, "
             "Non-cacheable at either stage gives Non-cacheable"),
     Mistake("the less restrictive Device type wins", _wrong_device_weaker,
             "Device at both stages: nGnRnE < nGnRE < nGRE < GRE, the more restrictive wins")),
    "Device beats Normal; Non-cacheable beats Write-Through beats Write-Back, per half",
    reference_combine_attrs,
    # most instructive first: the plain cases first (Write-Back and Device-nGnRnE at stage 1),
    # then Non-cacheable and Write-Through, then mixed inner/outer and the other Device types
    group_order=(
        "stage 1 Normal iWB oWB",
        "stage 1 Device-nGnRnE",
        "stage 1 Normal iNC oNC",
        "stage 1 Normal iWT oWT",
    ),
)


def check_combine_attrs(fn: Callable[[int, int], int], *, quiet: bool = False,
                        file: TextIO | None = None) -> CheckResult:
    """Check ``combine_attrs(s1_attr, s2_memattr) -> attr``."""
    return check(COMBINE_ATTRS, fn, quiet=quiet, file=file)
