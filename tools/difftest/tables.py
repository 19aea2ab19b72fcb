"""A small translation-table builder for generated scenarios (stage 1 and stage 2).

Tables live in guest RAM handed out by :class:`Arena` (never in the harness's reserved
ranges).  A :class:`TableBuilder` knows one walk's geometry (granule, input size, start level,
DS / 64KB-LPA address encoding) and writes descriptors into a shared ``words`` dict
(PA -> u64, little-endian words as in a scenario's ``memory`` list).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

FINAL_LEVEL = 3

# Guest RAM usable by scenarios (tools/hw/README.md): above the harness, below the job table.
RAM_FREE_BASE = 0x4020_0000
RAM_FREE_END = 0x7C00_0000


def mask(hi: int, lo: int) -> int:
    if hi < lo:
        return 0
    return ((1 << (hi - lo + 1)) - 1) << lo


class Arena:
    """A bump allocator over ``[base, end)``."""

    def __init__(self, base: int, end: int) -> None:
        self.base = base
        self.next = base
        self.end = end

    def alloc(self, size: int, align: int | None = None) -> int:
        align = max(align or size, 8)
        pa = (self.next + align - 1) & ~(align - 1)
        if pa + size > self.end:
            raise MemoryError("arena exhausted")
        self.next = pa + size
        return pa


@dataclass
class TableBuilder:
    """One set of tables: ``pgshift`` 12/14/16, input size ``ia_bits``, start level ``sl``.

    ``to_desc`` maps a table's PA to the address written into descriptors and the base
    register (the identity, or PA -> IPA for stage 1 tables placed behind stage 2).
    ``be``: descriptors are stored big-endian (SCTLR_ELx.EE=1).
    """

    words: dict[int, int]
    arena: Arena
    pgshift: int
    ia_bits: int
    sl: int
    ds: bool = False
    lpa64: bool = False
    be: bool = False
    to_desc: Callable[[int], int] = lambda pa: pa
    root: int = 0
    tables: dict[int, int] = field(default_factory=dict)  # entry PA -> child table PA
    leaves: dict[int, int] = field(default_factory=dict)  # entry PA -> level (leaf/raw)
    table_pages: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        size = max(8 << (self.ia_bits - self.lsb(self.sl)), 64)
        self.root = self.arena.alloc(size, max(size, 64))
        self.table_pages.add(self.root)
        self.root_size = size

    @property
    def stride(self) -> int:
        return self.pgshift - 3

    def lsb(self, level: int) -> int:
        return (FINAL_LEVEL - level) * self.stride + self.pgshift

    def index(self, ia: int, level: int) -> int:
        hi = self.ia_bits - 1 if level == self.sl else self.lsb(level) + self.stride - 1
        return (ia & mask(hi, 0)) >> self.lsb(level)

    def enc_addr(self, addr: int, level_lsb: int | None = None) -> int:
        """An output/next-table address in descriptor form."""
        low = self.pgshift if level_lsb is None else level_lsb
        if self.lpa64:
            return (addr & mask(47, low)) | (((addr >> 48) & 0xF) << 12)
        if self.ds:
            return (addr & mask(49, low)) | (((addr >> 50) & 3) << 8)
        return addr & mask(47, low)

    def base_reg(self) -> int:
        """The TTBR/VTTBR value for the root table (BADDR, with [5:2] = OA[51:48] if 52-bit)."""
        addr = self.to_desc(self.root)
        if self.ds or self.lpa64:
            return (addr & mask(47, 6)) | (((addr >> 48) & 0xF) << 2)
        return addr

    def extents(self) -> list[tuple[int, int]]:
        """(PA, size) of every table built."""
        out = [(self.root, self.root_size)]
        out += [(pa, 1 << self.pgshift) for pa in self.table_pages if pa != self.root]
        return out

    def _put(self, pa: int, value: int) -> None:
        if self.be:
            value = int.from_bytes(value.to_bytes(8, "little"), "big")
        if value:
            self.words[pa] = value
        else:
            self.words.pop(pa, None)

    def entry(self, ia: int, level: int, table_bits: Callable[[], int] | None = None) -> int | None:
        """The PA of the entry for ``ia`` at ``level``, creating tables above it; None when a
        leaf (or raw descriptor) already sits on the path or at the entry."""
        table = self.root
        for lvl in range(self.sl, level):
            epa = table + 8 * self.index(ia, lvl)
            if epa in self.leaves:
                return None
            child = self.tables.get(epa)
            if child is None:
                child = self.arena.alloc(1 << self.pgshift)
                self.table_pages.add(child)
                self.tables[epa] = child
                extra = table_bits() if table_bits else 0
                self._put(epa, self.enc_addr(self.to_desc(child)) | 0b11 | extra)
            table = child
        epa = table + 8 * self.index(ia, level)
        if epa in self.leaves or epa in self.tables:
            return None
        return epa

    def set(self, ia: int, level: int, desc: int,
            table_bits: Callable[[], int] | None = None) -> bool:
        """Write a raw descriptor at ``level`` for ``ia``; False if the slot is taken."""
        epa = self.entry(ia, level, table_bits)
        if epa is None:
            return False
        self.leaves[epa] = level
        self._put(epa, desc)
        return True

    def leaf(self, ia: int, level: int, oa: int, attrs: int,
             table_bits: Callable[[], int] | None = None) -> bool:
        """A block (level < 3) or page descriptor mapping ``ia``'s leaf to ``oa``."""
        kind = 0b11 if level == FINAL_LEVEL else 0b01
        desc = self.enc_addr(oa, self.lsb(level)) | attrs | kind
        return self.set(ia, level, desc, table_bits)
