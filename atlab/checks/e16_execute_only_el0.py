"""Exercise 16: execute-only for EL0 with permission indirection (FEAT_S1PIE)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.bits import mask
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.perms import S1PermBits, compute_s1_permissions


def _pie_rights(ppi: int, upi: int, el: int) -> str:
    """The rights ``AArch64.S1IndirectBasePermissions()`` gives EL ``el`` (EL1&0 regime)."""
    p = compute_s1_permissions(S1PermBits(pie=True, ppi=ppi, upi=upi), has_unprivileged=True,
                               nv1=False, el=el, pan=False, epan=False, wxn=False, hd=True)
    return ("R" if p.r else "-") + ("W" if p.w else "-") + ("X" if p.x else "-")


def _pie_view(args: tuple[int, int, int], got: tuple[int, int]) -> tuple[str, str, str]:
    pir, pire0, index = args
    new_pir, new_pire0 = got
    lo = 4 * index
    others = ~(0xF << lo) & mask(63, 0)
    kept = ("other entries kept" if (new_pir & others, new_pire0 & others)
            == (pir & others, pire0 & others) else "other entries changed")
    return (f"EL0 {_pie_rights(new_pir >> lo & 0xF, new_pire0 >> lo & 0xF, 0)}",
            f"EL1 {_pie_rights(new_pir >> lo & 0xF, new_pire0 >> lo & 0xF, 1)}", kept)


def reference_execute_only_el0(pir_el1: int, pire0_el1: int, pi_index: int) -> tuple[int, int]:
    """PIRE0_EL1.Perm<pi_index> = 0b0010 (execute, no read: ``AArch64.S1IndirectBasePermissions()``
    case '0010'); PIR_EL1, which gives EL1's rights, and every other entry unchanged."""
    lo = 4 * pi_index
    return pir_el1, (pire0_el1 & ~(0xF << lo)) | (0b0010 << lo)


def _ref_xo(pir_el1: int, pire0_el1: int, pi_index: int) -> tuple[str, str, str]:
    args = (pir_el1, pire0_el1, pi_index)
    return _pie_view(args, reference_execute_only_el0(*args))


def _norm_xo(args: tuple[Any, ...], got: Any) -> tuple[str, str, str]:
    if (not isinstance(got, tuple) or len(got) != 2
            or not all(isinstance(v, int) and 0 <= v < 1 << 64 for v in got)):
        raise TypeError(f"return (pir_el1, pire0_el1), two 64-bit ints, not {got!r}")
    return _pie_view(args, got)


def _xo_cases() -> list[Case]:
    out = []
    for pir, pire0, index in ((0x5555_5555_5555_5555, 0, 0), (0x5555_5555_5555_5555, 0, 5),
                              (0x0000_0000_0010_0000, 0x0000_0000_0050_0000, 5),
                              (0x5555_5555_5555_5555, 0x1111_1111_1111_1111, 15),
                              (0xC5C5_C5C5_C5C5_C5C5, 0x5555_5555_5555_5555, 3),
                              (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321, 9),
                              (0, 0xFFFF_FFFF_FFFF_FFFF, 7)):
        out.append(_case(f"PIR_EL1={pir:#x} PIRE0_EL1={pire0:#x} PIIndex={index}",
                         "execute-only for EL0", pir, pire0, index))
    for index in (1, 2, 4, 8, 12):
        out.append(_case(f"PIR_EL1=RW everywhere, PIRE0_EL1=RW everywhere, PIIndex={index}",
                         "replace an EL0 RW entry", 0x5555_5555_5555_5555,
                         0x5555_5555_5555_5555, index))
    return out


def _show_xo(v: Any) -> str:
    el0, el1, kept = v
    return f"{el0}, {el1}, {kept}"


def _mistake_pir(pir: int, pire0: int, index: int) -> tuple[int, int]:
    return (pir & ~(0xF << 4 * index)) | (0b0010 << 4 * index), pire0


EXECUTE_ONLY_EL0 = Exercise(
    "execute_only_el0", "Execute-only for EL0 with permission indirection", _xo_cases, _ref_xo,
    _show_xo, _norm_xo,
    (Mistake("PIR_EL1 changed", _mistake_pir,
             "PIR_EL1 gives the privileged (EL1) rights; EL0's come from PIRE0_EL1"),
     Mistake("index not times 4", lambda pir, pire0, i: (pir, (pire0 & ~(0xF << i))
                                                          | (0b0010 << i)),
             "each Perm<m> field is 4 bits wide: Perm<m> is bits [4m+3:4m]"),
     Mistake("RX instead of X", lambda pir, pire0, i: (pir, (pire0 & ~(0xF << 4 * i))
                                                        | (0b0011 << 4 * i)),
             "0b0011 is read and execute: execute-only is 0b0010"),
     Mistake("old entry not cleared", lambda pir, pire0, i: (pir, pire0 | (0b0010 << 4 * i)),
             "OR-ing 0b0010 into an entry that was 0b0101 gives 0b0111 (RWX): clear the four "
             "bits first"),
     Mistake("other entries clobbered", lambda pir, pire0, i: (pir, 0b0010 << 4 * i),
             "keep the other 15 entries of PIRE0_EL1: other pages use them")),
    "EL0's rights come from PIRE0_EL1.Perm<PIIndex>; execute-only is 0b0010",
    reference_execute_only_el0,
    # most instructive first: making a page execute-only first, then replacing an EL0 RW entry
    # without side effects
    group_order=(
        "execute-only for EL0",
        "replace an EL0 RW entry",
    ),
)


def check_execute_only_el0(fn: Callable[[int, int, int], tuple[int, int]], *,
                           quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``execute_only_el0(pir_el1, pire0_el1, pi_index) -> (pir_el1', pire0_el1')``."""
    return check(EXECUTE_ONLY_EL0, fn, quiet=quiet, file=file)
