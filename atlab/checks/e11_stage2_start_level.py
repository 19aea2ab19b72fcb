"""Exercise 11: stage 2 start level and concatenated tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.bits import bits
from atlab.checks._helpers import _FEATS, _GRANULES, _TG0_ENC
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.faults import Fault
from atlab.granule import Granule, decode_tg0, start_level
from atlab.sysregs import SysRegs, encode
from atlab.walk_s2 import setup_s2_walk


def reference_s2_start(vtcr_el2: int) -> tuple[int, int] | None:
    """(start level, number of concatenated start tables) from
    :func:`atlab.walk_s2.setup_s2_walk`, or None for a configuration that faults
    (``AArch64.S2InvalidSL()``, ``AArch64.S2InconsistentSL()``, TxSZ out of range)."""
    wi = setup_s2_walk(SysRegs({"VTCR_EL2": vtcr_el2}), _FEATS)
    if isinstance(wi, Fault):
        return None
    return wi.sl, wi.concat


def _norm_s2_start(args: tuple[Any, ...], got: Any) -> tuple[int, int] | None:
    if got is None:
        return None
    sl, concat = got
    return int(sl), int(concat)


def _show_s2_start(v: Any) -> str:
    if v is None:
        return "None (level 0 Translation fault)"
    sl, concat = v
    return f"start level {sl}, {concat} concatenated table{'s' if concat > 1 else ''}"


def _s2_start_cases() -> list[Case]:
    out = []
    for g in _GRANULES:
        for t0sz in (16, 20, 24, 25, 26, 28, 30, 32, 34, 36, 39, 42):
            for sl0 in range(4):
                vtcr = encode("VTCR_EL2", T0SZ=t0sz, SL0=sl0, TG0=_TG0_ENC[g], PS=5,
                              RES1_31=1)
                out.append(_case(f"VTCR_EL2={vtcr:#x} ({g}, T0SZ={t0sz}, SL0={sl0:02b})",
                                 f"{g} granule", vtcr))
    return out


def _s2_start_model(vtcr: int, *, stage1_rule: bool = False, sl0_like_16k: bool = False,
                    no_concat: bool = False) -> tuple[int, int] | None:
    g = decode_tg0(bits(vtcr, 15, 14), "VTCR_EL2")
    t0sz, sl0 = bits(vtcr, 5, 0), bits(vtcr, 7, 6)
    ia = 64 - t0sz
    if stage1_rule:
        return start_level(ia, g), 1
    if g is not Granule.K4 and sl0 == 3:
        return None
    if g is Granule.K4 and not sl0_like_16k:
        sl = {0: 2, 1: 1, 2: 0, 3: 3}[sl0]
    else:
        sl = 3 - sl0
    levels = 3 - sl
    lo = levels * g.stride + g.pgshift
    extra = ia - lo - g.stride  # index bits beyond one full table
    if ia <= lo or extra > (0 if no_concat else 4):
        return None
    return sl, 1 << max(0, extra)


S2_START = Exercise(
    "s2_start", "Stage 2 start level and concatenation", _s2_start_cases, reference_s2_start,
    _show_s2_start, _norm_s2_start,
    (Mistake("stage 1 rule used for stage 2", lambda v: _s2_start_model(v, stage1_rule=True),
             "stage 2 does not derive its start level from T0SZ: VTCR_EL2.SL0 chooses it, and "
             "the start level may use up to 16 concatenated tables"),
     Mistake("SL0 decoded like 16KB/64KB for 4KB", lambda v: _s2_start_model(v,
                                                                             sl0_like_16k=True),
             "4KB granule: SL0=0b00 level 2, 0b01 level 1, 0b10 level 0, 0b11 level 3; "
             "16KB/64KB: 0b00 level 3, 0b01 level 2, 0b10 level 1"),
     Mistake("no concatenation", lambda v: _s2_start_model(v, no_concat=True),
             "at stage 2 the start level may resolve up to 4 extra IPA bits with 2..16 "
             "concatenated tables (AArch64.S2InconsistentSL())")),
    "levels = 3 - start level; the start level resolves IPA bits [iasize-1:lsb]; more than "
    "one table's worth of bits means concatenated tables",
    reference_s2_start,
    # most instructive first: the 4KB granule first (SL0 and concatenation as chapter 07 shows
    # them), then 16KB and 64KB
    group_order=(
        "4KB granule",
        "16KB granule",
        "64KB granule",
    ),
)


def check_s2_start(fn: Callable[[int], tuple[int, int] | None], *, quiet: bool = False,
                   file: TextIO | None = None) -> CheckResult:
    """Check ``s2_start(vtcr_el2) -> (start level, concatenated tables) | None``."""
    return check(S2_START, fn, quiet=quiet, file=file)
