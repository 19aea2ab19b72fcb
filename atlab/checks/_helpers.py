"""Helpers shared by several exercise checkers (constants, a table writer)."""

from __future__ import annotations

from typing import Any

from atlab.bits import bits, mask
from atlab.errors import AtlabError
from atlab.features import FeatureSet
from atlab.granule import Granule, level_lsb, start_level
from atlab.par import Par
from atlab.sysregs import encode

_FEATS = FeatureSet.all()
#: A PE with 48-bit physical addresses (no 52-bit OA in 64KB descriptors).
_FEATS_48 = FeatureSet.all(pa_max=48)
_RW = 1 << 31  # HCR_EL2.RW
_E2H = 1 << 34
_TGE = 1 << 27
_GRANULES = (Granule.K4, Granule.K16, Granule.K64)


def _hex(value: Any) -> str:
    return f"{value:#x}" if isinstance(value, int) else repr(value)


def _par_text(value: Any) -> str:
    return str(Par(value)) if isinstance(value, int) else repr(value)


class _Tables:
    """Writes translation tables (any granule) into a dict of words, allocating tables from
    ``next_free``.  Stage 1 and stage 2 tables have the same shape."""

    def __init__(self, granule: Granule, ia_bits: int, root: int, next_free: int,
                 words: dict[int, int] | None = None, *, sl: int | None = None) -> None:
        self.granule = granule
        self.ia_bits = ia_bits
        self.root = root
        self.next_free = next_free
        self.sl = start_level(ia_bits, granule) if sl is None else sl
        self.words: dict[int, int] = words if words is not None else {}

    def entry(self, va: int, level: int, *, create: bool = True) -> int | None:
        """The address of the level ``level`` entry for ``va`` (tables created on the way)."""
        g = self.granule
        table = self.root
        for lvl in range(self.sl, level + 1):
            lsb = level_lsb(lvl, g)
            hi = self.ia_bits - 1 if lvl == self.sl else lsb + g.stride - 1
            addr = table + 8 * bits(va, hi, lsb)
            if lvl == level:
                return addr
            desc = self.words.get(addr)
            if desc is not None and desc & 3 != 3:
                raise AtlabError(f"level {lvl} entry at {addr:#x} is not a table")
            if desc is None:
                if not create:
                    return None
                table = self.next_free
                self.next_free += 1 << g.pgshift
                self.words[addr] = table | 3
            else:
                table = desc & mask(47, g.pgshift)
        raise AtlabError(f"level {level} is above the start level {self.sl}")  # pragma: no cover

    def map(self, va: int, level: int, desc: int) -> None:
        addr = self.entry(va, level)
        assert addr is not None
        if addr in self.words:
            raise AtlabError(f"level {level} entry at {addr:#x} is already in use")
        self.words[addr] = desc


#: TCR_ELx.TG0 / TG1 encodings of each granule.
_TG0_ENC = {Granule.K4: 0b00, Granule.K16: 0b10, Granule.K64: 0b01}
_TG1_ENC = {Granule.K4: 0b10, Granule.K16: 0b01, Granule.K64: 0b11}


def _tcr_el1(*, t0sz: int = 16, t1sz: int = 16, tg0: int = 0b00, tg1: int = 0b10,
             tbi0: int = 0, tbi1: int = 0, ips: int = 5, epd1: int = 0, **extra: int) -> int:
    return encode("TCR_EL1", T0SZ=t0sz, T1SZ=t1sz, TG0=tg0, TG1=tg1, TBI0=tbi0, TBI1=tbi1,
                  IPS=ips, EPD1=epd1, SH0=3, SH1=3, **extra)
