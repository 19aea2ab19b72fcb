"""Exercise 06: fix a broken TCR: encode TCR_EL1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.bits import bit, bits
from atlab.checks._helpers import _GRANULES, _TG0_ENC, _TG1_ENC
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.errors import AtlabError
from atlab.granule import Granule, decode_tg0, decode_tg1
from atlab.sysregs import encode, layout


def _tg_encoding(decode: Callable[[int, str], Granule], granule: Granule) -> int:
    for enc in range(4):
        try:
            if decode(enc, "TCR_EL1") is granule:
                return enc
        except AtlabError:
            continue
    raise AtlabError(f"no encoding for {granule}")  # pragma: no cover


def _ips_bits(ips: int) -> int:
    text = layout("TCR_EL1")[[f.name for f in layout("TCR_EL1")].index("IPS")].values[ips]
    return int(text.split()[0])


_TcrView = tuple[int, int, str, str, int, int, int]


def _tcr_view(tcr: int) -> _TcrView:
    def gran(decode: Callable[[int, str], Granule], enc: int) -> str:
        try:
            return str(decode(enc, "TCR_EL1"))
        except AtlabError:
            return "reserved"
    return (bits(tcr, 5, 0), bits(tcr, 21, 16), gran(decode_tg0, bits(tcr, 15, 14)),
            gran(decode_tg1, bits(tcr, 31, 30)), _ips_bits(bits(tcr, 34, 32)), bit(tcr, 7),
            bit(tcr, 23))


def reference_make_tcr_el1(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule,
                           ips_bits: int) -> int:
    """TCR_EL1 with both ranges walked (:func:`atlab.sysregs.encode`; the TGn encodings found
    by asking :func:`atlab.walk_s1.decode_tg0`/``decode_tg1``)."""
    ips = next(v for v in range(8) if _ips_bits(v) == ips_bits)
    return encode("TCR_EL1", T0SZ=t0sz, T1SZ=t1sz, TG0=_tg_encoding(decode_tg0, tg0),
                  TG1=_tg_encoding(decode_tg1, tg1), IPS=ips)


def _ref_tcr_cmp(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule, ips_bits: int) -> _TcrView:
    return _tcr_view(reference_make_tcr_el1(t0sz, t1sz, tg0, tg1, ips_bits))


def _norm_tcr(args: tuple[Any, ...], got: Any) -> _TcrView:
    if not isinstance(got, int) or not 0 <= got < 1 << 64:
        raise TypeError(f"return a 64-bit int, not {got!r}")
    return _tcr_view(got)


def _show_tcr(v: Any) -> str:
    t0, t1, g0, g1, ips, e0, e1 = v
    return f"T0SZ={t0} T1SZ={t1} TG0={g0} TG1={g1} IPS={ips} bits EPD0={e0} EPD1={e1}"


def _tcr_cases() -> list[Case]:
    out = []
    for g0 in _GRANULES:
        for g1 in _GRANULES:
            for t0sz, t1sz, ips in ((16, 16, 48), (25, 25, 40), (33, 20, 32), (22, 39, 44),
                                    (28, 28, 36), (24, 17, 42)):
                out.append(_case(f"T0SZ={t0sz} T1SZ={t1sz} TG0={g0} TG1={g1} IPS={ips} bits",
                                 f"TG0={g0} TG1={g1}", t0sz, t1sz, g0, g1, ips))
    return out


def _wrong_tg1_like_tg0(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule, ips: int) -> int:
    v = reference_make_tcr_el1(t0sz, t1sz, tg0, tg1, ips)
    return (v & ~(3 << 30)) | _TG0_ENC[tg1] << 30


def _wrong_tg_swapped(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule, ips: int) -> int:
    v = reference_make_tcr_el1(t0sz, t1sz, tg0, tg1, ips) & ~(3 << 30) & ~(3 << 14)
    return v | _TG1_ENC[tg0] << 14 | _TG0_ENC[tg1] << 30


def _wrong_ips_raw(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule, ips: int) -> int:
    v = reference_make_tcr_el1(t0sz, t1sz, tg0, tg1, ips) & ~(7 << 32)
    return v | (ips & 7) << 32


MAKE_TCR = Exercise(
    "make_tcr_el1", "Fix a broken TCR_EL1", _tcr_cases, _ref_tcr_cmp, _show_tcr, _norm_tcr,
    (Mistake("TG1 encoded like TG0", _wrong_tg1_like_tg0,
             "TG1 has its own encoding: 0b10=4KB, 0b01=16KB, 0b11=64KB (0b00 is reserved); "
             "TG0 is 0b00=4KB, 0b10=16KB, 0b01=64KB"),
     Mistake("TG0 and TG1 encodings swapped", _wrong_tg_swapped,
             "TG0 (bits [15:14]) uses 0b00=4KB, 0b10=16KB, 0b01=64KB; TG1 (bits [31:30]) "
             "uses 0b10=4KB, 0b01=16KB, 0b11=64KB"),
     Mistake("IPS written as a number of bits", _wrong_ips_raw,
             "IPS is an encoding: 0b000=32, 0b001=36, 0b010=40, 0b011=42, 0b100=44, "
             "0b101=48 bits")),
    "print(atlab.sysregs.format_fields('TCR_EL1', value, all_fields=True)) shows what you built",
    reference_make_tcr_el1,
    # most instructive first: one granule for both ranges first (a TG1 encoded like TG0 shows at
    # once), then mixed granules
    group_order=(
        "TG0=4KB TG1=4KB",
        "TG0=16KB TG1=16KB",
        "TG0=64KB TG1=64KB",
    ),
)


def check_make_tcr_el1(fn: Callable[[int, int, Granule, Granule, int], int], *,
                       quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``make_tcr_el1(t0sz, t1sz, tg0, tg1, ips_bits) -> TCR_EL1``."""
    return check(MAKE_TCR, fn, quiet=quiet, file=file)
