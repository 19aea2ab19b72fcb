"""Physical memory: sparse 64-bit words with an access log.

Every descriptor read and write the walkers make goes through :class:`PhysMem` and is logged
with its purpose.  Unwritten memory reads as zero.

Decision (documented in the README): **every physical address is RAM**.  A real system would
take a synchronous External abort for a walk that reads outside RAM; atlab's scenarios never
rely on that, and the QEMU harness keeps tables inside its RAM.

Words are stored as the 64-bit value of 8 bytes in little-endian order.  A walk with
SCTLR_ELx.EE=1 reads big-endian descriptors, i.e. the byte-reversed word:

>>> m = PhysMem({0x1000: 0x0000000040201003})
>>> hex(m.read64(0x1000, purpose="L0 descriptor"))
'0x40201003'
>>> hex(m.read64(0x1000, big_endian=True))
'0x310204000000000'
>>> m.log[0]
MemAccess(pa=4096, value=1075843075, kind=<AccessKind.READ: 'read'>, purpose='L0 descriptor')
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from atlab.bits import U64
from atlab.errors import AtlabError, clip

PA_LIMIT = 1 << 56


class AccessKind(enum.Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class MemAccess:
    """One logged access: ``value`` is the descriptor as the walker saw it."""

    pa: int
    value: int
    kind: AccessKind
    purpose: str


def byteswap64(value: int) -> int:
    return int.from_bytes(value.to_bytes(8, "little"), "big")


class PhysMem:
    """Sparse physical memory of 64-bit words (8-byte aligned addresses).

    This object is mutable on purpose: hardware Access-flag updates write descriptors.  It is
    owned by whoever created it; nothing in atlab keeps memory in a global.
    """

    __slots__ = ("_words", "log", "logging", "words_get")

    def __init__(self, words: Mapping[int, int] | None = None, *, logging: bool = True) -> None:
        self._words: dict[int, int] = {}
        #: ``dict.get`` of the words, for walkers that read without logging.
        self.words_get: Callable[[int, int], int] = self._words.get
        self.log: list[MemAccess] = []
        self.logging = logging
        for pa, value in (words or {}).items():
            self.poke(pa, value)

    @staticmethod
    def _check(pa: int) -> None:
        if not isinstance(pa, int) or isinstance(pa, bool):
            raise AtlabError(f"a physical address must be an int, not {clip(pa)}")
        if pa & 7 or not 0 <= pa < PA_LIMIT:
            raise AtlabError(f"physical address {pa:#x} must be 8-byte aligned and below "
                             "2^56")

    @staticmethod
    def _check_value(pa: int, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise AtlabError(f"memory word at {pa:#x}: the value must be an int, not "
                             f"{clip(value)}")
        if not 0 <= value <= U64:
            raise AtlabError(f"memory word at {pa:#x}: {value:#x} does not fit in 64 bits")

    def poke(self, pa: int, value: int) -> None:
        """Set a word without logging (scenario set-up)."""
        self._check(pa)
        self._check_value(pa, value)
        if value:
            self._words[pa] = value
        else:
            self._words.pop(pa, None)

    def peek(self, pa: int) -> int:
        """Read a word without logging."""
        return self._words.get(pa, 0)

    def read64(self, pa: int, *, big_endian: bool = False, purpose: str = "") -> int:
        if type(pa) is not int or pa & 7 or not 0 <= pa < PA_LIMIT:
            self._check(pa)
        value = self._words.get(pa, 0)
        if big_endian:
            value = byteswap64(value)
        if self.logging:
            self.log.append(MemAccess(pa, value, AccessKind.READ, purpose))
        return value

    def write64(self, pa: int, value: int, *, big_endian: bool = False, purpose: str = "") -> None:
        self._check(pa)
        self._check_value(pa, value)  # before anything is logged or byte-swapped
        if self.logging:
            self.log.append(MemAccess(pa, value, AccessKind.WRITE, purpose))
        self.poke(pa, byteswap64(value) if big_endian else value)

    def iter_range(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """The non-zero words in [start, end), ``(pa, value)`` in address order, without
        logging.  Costs O(min(words in the range, all stored words)): a large sparse range
        is not scanned address by address.

        >>> list(PhysMem({0x1008: 5, 0x2000: 7}).iter_range(0x1000, 0x2000))
        [(4104, 5)]
        """
        words = self._words
        if (end - start) >> 3 <= len(words):
            get = words.get
            for pa in range(start + (-start & 7), end, 8):
                value = get(pa)
                if value:
                    yield pa, value
        else:
            yield from sorted((pa, v) for pa, v in words.items() if start <= pa < end)

    def copy(self) -> PhysMem:
        other = PhysMem(logging=self.logging)
        other._words = dict(self._words)
        other.words_get = other._words.get
        return other

    def words(self) -> dict[int, int]:
        return dict(sorted(self._words.items()))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(sorted(self._words.items()))

    def __len__(self) -> int:
        return len(self._words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhysMem) and self._words == other._words

    __hash__ = None  # type: ignore[assignment]
