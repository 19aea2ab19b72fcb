"""Exercise 02: start level and per-level indices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.bits import bits, mask
from atlab.checks._helpers import _GRANULES
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.granule import Granule, level_lsb, start_level


def reference_walk_geometry(granule: Granule, txsz: int, va: int) -> tuple[int, list[int]]:
    """Start level (``AArch64.S1StartLevel()``) and the table index used at each level."""
    ia_bits = 64 - txsz
    sl = start_level(ia_bits, granule)
    indices = []
    for level in range(sl, 4):
        lsb = level_lsb(level, granule)
        hi = ia_bits - 1 if level == sl else lsb + granule.stride - 1
        indices.append(bits(va, hi, lsb))
    return sl, indices


def _norm_geometry(args: tuple[Any, ...], got: Any) -> tuple[int, tuple[int, ...]]:
    sl, indices = got
    return int(sl), tuple(int(i) for i in indices)


def _ref_geometry_cmp(granule: Granule, txsz: int, va: int) -> tuple[int, tuple[int, ...]]:
    sl, indices = reference_walk_geometry(granule, txsz, va)
    return sl, tuple(indices)


def _geometry_cases() -> list[Case]:
    out = []
    for g in _GRANULES:
        for txsz in (16, 17, 20, 22, 24, 25, 27, 28, 30, 33, 34, 36, 37, 39, 42, 44, 47, 48):
            if g is Granule.K64 and txsz == 48:
                continue
            ia = 64 - txsz
            vas = [0x0000_7ABC_DEF1_2345 & mask(ia - 1, 0),
                   0x0000_1234_5678_9ABC & mask(ia - 1, 0),
                   mask(63, ia) | (0x0000_5A5A_5A5A_5A5A & mask(ia - 1, 0))]
            for va in vas:
                rng = "TTBR1 VA" if va >> 63 else "TTBR0 VA"
                out.append(_case(f"{g} granule, TxSZ={txsz}, VA={va:#x}", f"{g} granule",
                                 g, txsz, va,
                                 hint=f"{ia}-bit range; the start level resolves the bits left "
                                 f"over above the lower levels ({rng})"))
    return out


def _show_geometry(v: Any) -> str:
    sl, idx = v
    return f"start level {sl}, indices {list(idx)}"


def _wrong_stride9(granule: Granule, txsz: int, va: int) -> tuple[int, list[int]]:
    ia_bits = 64 - txsz
    pg = granule.pgshift
    sl = 3 - (ia_bits - 1 - pg) // 9
    out = []
    for level in range(sl, 4):
        lsb = (3 - level) * 9 + pg
        hi = ia_bits - 1 if level == sl else lsb + 8
        out.append(bits(va, hi, lsb))
    return sl, out


def _wrong_start_no_minus1(granule: Granule, txsz: int, va: int) -> tuple[int, list[int]]:
    ia_bits = 64 - txsz
    sl = max(-1, 3 - (ia_bits - granule.pgshift) // granule.stride)
    out = []
    for level in range(sl, 4):
        lsb = level_lsb(level, granule)
        hi = ia_bits - 1 if level == sl else lsb + granule.stride - 1
        out.append(bits(va, hi, lsb))
    return sl, out


def _wrong_full_stride_at_start(granule: Granule, txsz: int, va: int) -> tuple[int, list[int]]:
    sl, _ = reference_walk_geometry(granule, txsz, va)
    out = []
    for level in range(sl, 4):
        lsb = level_lsb(level, granule)
        out.append(bits(va, lsb + granule.stride - 1, lsb))
    return sl, out


GEOMETRY = Exercise(
    "walk_geometry", "Start level and per-level indices", _geometry_cases, _ref_geometry_cmp,
    _show_geometry, _norm_geometry,
    (Mistake("wrong stride (9 bits for every granule)", _wrong_stride9,
             "each level resolves granule bits - 3 bits: 9 (4KB), 11 (16KB), 13 (64KB)"),
     Mistake("start level without the -1", _wrong_start_no_minus1,
             "AArch64.S1StartLevel(): 3 - ((iasize - 1 - pgshift) DIV stride); the -1 matters "
             "when the range is an exact number of levels"),
     Mistake("full stride at the start level", _wrong_full_stride_at_start,
             "the start-level index uses VA bits [iasize-1:lsb] only, fewer than a full "
             "stride; the bits above the range are not part of it (they are all ones for TTBR1)")),
    "indices come from VA[hi:lsb] with lsb = (3 - level) * stride + pgshift",
    reference_walk_geometry,
    # most instructive first: the 4KB granule first (chapter 01's base case), then 64KB and 16KB,
    # whose start levels and strides the 4KB rule gets wrong
    group_order=(
        "4KB granule",
        "64KB granule",
        "16KB granule",
    ),
)


def check_walk_geometry(fn: Callable[[Granule, int, int], tuple[int, list[int]]], *,
                        quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``walk_geometry(granule, txsz, va) -> (start_level, indices)``."""
    return check(GEOMETRY, fn, quiet=quiet, file=file)
