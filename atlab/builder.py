"""Build translation tables by intent: say what is mapped, get descriptors and registers.

:class:`S1Builder` writes the stage 1 tables of one regime (EL1&0 with TTBR0 and TTBR1, EL2,
EL2&0, EL3); :class:`S2Builder` writes stage 2 tables (VTCR_EL2/VTTBR_EL2).  Both allocate their
tables from a :class:`TableAllocator` over a physical range, choose the largest legal block for
each part of a mapping (``AArch64.BlockDescSupported()``), set the Contiguous bit when asked,
and split blocks when :meth:`~S1Builder.unmap` or :meth:`~S1Builder.protect` cut into them.

Every change is all-or-nothing: an overlapping map, a misaligned address, an address beyond
the configured sizes or an exhausted allocator raises :class:`~atlab.errors.AtlabError` and
leaves the tables exactly as they were (changes are journalled per table and undone).

>>> b = S1Builder(Regime.EL10, granule=Granule.K4, va_bits=48, tables=(0x40200000, 0x40300000))
>>> b.map(0x40000000, 0x40000000, 0x40000000, mem="normal-wb", ap="EL1 RW")  # one 1GB block
>>> b.map(0xffff000000000000, 0x80000000, 0x200000, ap="EL1 RO", uxn=True)
>>> level, pa = b.lookup(0x40001234); level, hex(pa)
(1, '0x40001234')
>>> b.map(0x40200000, 0x50000000, 0x1000)
Traceback (most recent call last):
...
atlab.errors.AtlabError: map VA 0x40200000 (0x1000 bytes): VA 0x40000000 is already mapped ...
>>> hex(b.sysregs()["TCR_EL1"])
'0x15b5103510'
>>> from atlab import AtOp, run_at
>>> sc = b.scenario(name="doc")
>>> print(run_at(AtOp.S1E1R, 0xffff000000001008, regs=b.regs(), mem=b.memory()).par)
PAR_EL1=0xff00000080001b80 F=0 PA=0x80001000 ATTR=0xff SH=ISH NS=1

Descriptor fields (Arm ARM D8.3, "Translation table descriptor formats"): bits [1:0] 0b11 table
or page, 0b01 block; stage 1 leaf: AttrIndx [4:2], NS [5], AP[2:1] [7:6], SH [9:8], AF [10],
nG [11], DBM [51], Contiguous [52], PXN [53], UXN/XN [54]; stage 2 leaf: MemAttr [5:2],
S2AP [7:6], SH [9:8], AF [10], DBM [51], Contiguous [52], XN[1:0] [54:53]; stage 1 table:
PXNTable [59], UXNTable/XNTable [60], APTable [62:61].  With TCR_ELx.DS=1 bits [9:8] carry
OA[51:50] and bits [49:48] OA[49:48]; with the 64KB granule and FEAT_LPA bits [15:12] carry
OA[51:48].
"""

from __future__ import annotations

import contextlib
import dataclasses
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from atlab.bits import bits, mask
from atlab.errors import AtlabError, clip
from atlab.features import Feature, FeatureSet
from atlab.granule import (
    FINAL_LEVEL,
    Granule,
    block_desc_supported,
    level_lsb,
    lpa_64k,
    start_level,
)
from atlab.memory import PhysMem
from atlab.regime import Regime
from atlab.sysregs import SysRegs, encode

__all__ = [
    "MAIR_DEFAULT",
    "MEM_TYPES",
    "S1Attrs",
    "S1Builder",
    "S2Attrs",
    "S2Builder",
    "TableAllocator",
    "qemu_allocator",
    "scenario_dict",
]

# --- attribute names ------------------------------------------------------------------------

#: Memory types by name, as MAIR_ELx attribute bytes (D24.2 MAIR_EL1): Normal Inner/Outer
#: Write-Back RW-allocate 0xff, Non-cacheable 0x44, Write-Through RW-allocate 0xbb; Device
#: types 0b0000dd00.
MEM_TYPES: Mapping[str, int] = {
    "normal-wb": 0xFF, "normal-nc": 0x44, "normal-wt": 0xBB,
    "device-ngnrne": 0x00, "device-ngnre": 0x04, "device-ngre": 0x08, "device-gre": 0x0C,
}
#: The MAIR every stage 1 builder programs: AttrIndx n holds the n-th type of MEM_TYPES
#: (Attr0 Normal WB, Attr1 Normal NC, Attr2 Normal WT, Attr3..6 Device-nGnRnE..GRE); Attr7 is
#: free for one custom attribute byte.
MAIR_DEFAULT = sum(v << (8 * i) for i, v in enumerate(MEM_TYPES.values()))

#: Stage 2 MemAttr[3:0] by name (FWB=0; D8.6.5): 0b00dd Device, 0bOOII Normal with
#: outer/inner 01 NC, 10 WT, 11 WB.
S2_MEMATTR: Mapping[str, int] = {
    "normal-wb": 0b1111, "normal-nc": 0b0101, "normal-wt": 0b1010,
    "device-ngnrne": 0b0000, "device-ngnre": 0b0001, "device-ngre": 0b0010,
    "device-gre": 0b0011,
}
_SH_NAMES = {"NSH": 0b00, "NON-SHAREABLE": 0b00, "OSH": 0b10, "OUTER": 0b10,
             "ISH": 0b11, "INNER": 0b11}
#: Stage 1 AP[2:1] (D8.4.1, Table D8-63): 00 EL1 RW, 01 EL1 RW / EL0 RW, 10 EL1 RO,
#: 11 EL1 RO / EL0 RO.  "EL1" names the regime's privileged EL (EL2 in EL2&0).
_AP_NAMES = {"EL1RW": 0b00, "EL1RW/EL0RW": 0b01, "EL1RO": 0b10, "EL1RO/EL0RO": 0b11,
             "RW": 0b00, "RO": 0b10, "EL1RW/EL0NONE": 0b00, "EL1RO/EL0NONE": 0b10}
_S2AP_NAMES = {"NONE": 0b00, "RO": 0b01, "WO": 0b10, "RW": 0b11}
#: APTable (D8.4.2): 00 no effect, 01 no EL0 access, 10 no write access, 11 neither.
_APTABLE_NAMES = {"NONE": 0b00, "NOEL0": 0b01, "RO": 0b10, "RONOEL0": 0b11}

SH_BITS = (9, 8)
CONTIGUOUS = 1 << 52
_AF = 1 << 10
_A = TypeVar("_A")


def _uint(what: str, bits_: int, **values: object) -> None:
    """Each value an int in [0, 2^bits_), else one line naming it (nothing is applied)."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise AtlabError(f"{what}: {name} must be an int, not {clip(value)}")
        if value < 0 or value >> bits_:
            raise AtlabError(f"{what}: {name} {clip(value)} is not in 0..2^{bits_}-1")


def _flag(name: str, value: object) -> int:
    """A one-bit attribute: True/False (or 1/0)."""
    if value is True or value is False or (type(value) is int and value in (0, 1)):
        return int(value)
    raise AtlabError(f"attribute {name} must be true or false, not {clip(value)}")


def _with_attrs(cls: type[_A], base: _A | None, kw: Mapping[str, object]) -> _A:
    """``base`` (or the defaults) with the ``kw`` attribute fields replaced."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(kw) - known)
    if unknown:
        raise AtlabError(f"unknown {cls.__name__} attribute(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    return dataclasses.replace(base or cls(), **kw)  # type: ignore[type-var]


def _norm(text: str) -> str:
    return "".join(str(text).upper().split())


def _mem_name(mem: str | int) -> str:
    return mem if isinstance(mem, str) else f"{mem:#04x}"


def parse_sh(sh: str | int) -> int:
    """Shareability by name (``"ISH"``, ``"OSH"``, ``"NSH"``, ``"inner"``...) or value."""
    if isinstance(sh, int) and sh in (0, 2, 3):
        return sh
    if isinstance(sh, str) and _norm(sh) in _SH_NAMES:
        return _SH_NAMES[_norm(sh)]
    raise AtlabError(f"unknown shareability {sh!r}; use NSH, OSH or ISH")


@dataclass(frozen=True, slots=True)
class S1Attrs:
    """The attributes of a stage 1 mapping, by name.

    ``ap``: ``"EL1 RW"``, ``"EL1 RW / EL0 RW"``, ``"EL1 RO"``, ``"EL1 RO / EL0 RO"`` (``EL2``
    may stand for the privileged EL of the EL2&0 regime; ``"RW"`` and ``"RO"``, the default
    ``"RW"`` included, mean no EL0 access, and are what the EL2 and EL3 regimes take).
    ``mem``: a :data:`MEM_TYPES` name or a MAIR attribute byte.  ``xn`` sets UXN and PXN in
    the two-range regimes and XN (bit 54) in EL2/EL3.

    >>> hex(S1Attrs(ap="EL1 RO / EL0 RO", uxn=True).leaf_bits(Regime.EL10, mair_index=0))
    '0x400000000007c0'
    """

    mem: str | int = "normal-wb"
    sh: str | int = "ISH"
    ap: str = "RW"  # privileged read/write, no EL0 access
    uxn: bool = False
    pxn: bool = False
    xn: bool = False
    ng: bool = False
    af: bool = True
    dbm: bool = False

    def ap_bits(self, regime: Regime) -> int:
        """AP[2:1] for ``regime``; an unencodable or foreign name raises."""
        key = _norm(self.ap).replace("EL2", "EL1") if regime is Regime.EL20 else _norm(self.ap)
        if regime in (Regime.EL2, Regime.EL3):
            key = key.replace(f"EL{regime.suffix[-1]}", "")
            if "EL0" in key or key not in ("RW", "RO"):
                raise AtlabError(f"AP {self.ap!r}: the {regime} regime has no EL0; use 'RW' or "
                                 "'RO'")
            # AP[1] is RES1 in the regimes with one EL (D8.4.1).
            return 0b01 if key == "RW" else 0b11
        if key not in _AP_NAMES:
            raise AtlabError(f"AP {self.ap!r} is not encodable: stage 1 AP[2:1] offers 'EL1 RW', "
                             "'EL1 RW / EL0 RW', 'EL1 RO', 'EL1 RO / EL0 RO'")
        return _AP_NAMES[key]

    def leaf_bits(self, regime: Regime, *, mair_index: int, ds: bool = False) -> int:
        """The descriptor's attribute bits (no type bits, no OA, no Contiguous)."""
        desc = (mair_index << 2) | (self.ap_bits(regime) << 6)
        if not ds:
            desc |= parse_sh(self.sh) << 8
        af, dbm, ng = _flag("af", self.af), _flag("dbm", self.dbm), _flag("ng", self.ng)
        uxn, pxn, xn = _flag("uxn", self.uxn), _flag("pxn", self.pxn), _flag("xn", self.xn)
        desc |= af << 10 | dbm << 51
        if regime.has_unprivileged:
            desc |= ng << 11 | (pxn | xn) << 53
            desc |= (uxn | xn) << 54
        else:
            if ng or uxn or pxn:
                raise AtlabError(f"the {regime} regime has no nG, UXN or PXN; use xn=True")
            desc |= xn << 54
        return desc


@dataclass(frozen=True, slots=True)
class S2Attrs:
    """The attributes of a stage 2 mapping: ``s2ap`` ``"none"``/``"RO"``/``"WO"``/``"RW"``,
    ``xn`` (True, or XN[1:0] with FEAT_XNX), ``mem`` (a name or MemAttr[3:0]).

    >>> hex(S2Attrs(s2ap="RO", xn=True).leaf_bits())
    '0x4000000000077c'
    """

    mem: str | int = "normal-wb"
    sh: str | int = "ISH"
    s2ap: str = "RW"
    xn: bool | int = False
    af: bool = True
    dbm: bool = False

    def leaf_bits(self, *, ds: bool = False) -> int:
        if isinstance(self.mem, bool) or not isinstance(self.mem, int | str):
            raise AtlabError(f"stage 2 memory type {clip(self.mem)} must be a name or 0..15")
        if isinstance(self.mem, int):
            if not 0 <= self.mem <= 15:
                raise AtlabError(f"stage 2 MemAttr {self.mem:#x} does not fit in 4 bits")
            memattr = self.mem
        else:
            try:
                memattr = S2_MEMATTR[self.mem.lower()]
            except KeyError:
                raise AtlabError(f"unknown memory type {self.mem!r}; use one of "
                                 f"{', '.join(S2_MEMATTR)}") from None
        try:
            s2ap = _S2AP_NAMES[_norm(str(self.s2ap))]
        except KeyError:
            raise AtlabError(f"unknown S2AP {self.s2ap!r}; use none, RO, WO or RW") from None
        if type(self.xn) is not bool and (type(self.xn) is not int or not 0 <= self.xn <= 3):
            raise AtlabError(f"stage 2 XN {clip(self.xn)} must be a bool or 0..3")
        xn = 0b10 if self.xn is True else int(self.xn)
        af, dbm = _flag("af", self.af), _flag("dbm", self.dbm)
        desc = memattr << 2 | s2ap << 6 | af << 10 | dbm << 51 | xn << 53
        if not ds:
            desc |= parse_sh(self.sh) << 8
        return desc


def parse_ap_table(value: str | int) -> int:
    """APTable by name: ``"none"``, ``"no EL0"``, ``"RO"``, ``"RO no EL0"`` (or 0..3)."""
    if isinstance(value, int) and 0 <= value <= 3:
        return value
    if isinstance(value, str) and _norm(value) in _APTABLE_NAMES:
        return _APTABLE_NAMES[_norm(value)]
    raise AtlabError(f"unknown APTable {value!r}; use 'none', 'no EL0', 'RO' or 'RO no EL0'")


# --- the table allocator ----------------------------------------------------------------------

def _check_table_size(size: int) -> None:
    if type(size) is not int or size < 8 or size & (size - 1):
        raise AtlabError(f"a table size must be a power of two of at least 8 bytes, not "
                         f"{clip(size)}")


class TableAllocator:
    """Hands out naturally aligned table memory from ``[start, end)``, skipping ``reserved``
    ranges; freed tables are reused.

    >>> a = TableAllocator(0x40000000, 0x40004000)
    >>> hex(a.alloc(0x1000)), hex(a.alloc(0x2000))
    ('0x40000000', '0x40002000')
    >>> a.alloc(0x1000) == 0x40001000
    True
    >>> a.alloc(0x1000)
    Traceback (most recent call last):
    ...
    atlab.errors.AtlabError: table allocator exhausted: no 0x1000 bytes left in ...
    """

    __slots__ = ("_free", "_next", "end", "reserved", "start")

    def __init__(self, start: int, end: int,
                 reserved: Sequence[tuple[int, int]] = ()) -> None:
        _uint("table range", 64, start=start, end=end)
        if start & 7 or end <= start:
            raise AtlabError(f"table range {start:#x}-{end:#x} is empty or misaligned")
        self.start, self.end = start, end
        self.reserved = tuple(sorted(reserved))
        self._next = start
        self._free: dict[int, list[int]] = {}

    def alloc(self, size: int) -> int:
        """``size`` bytes (a power of two, at least 8) aligned to ``size``."""
        _check_table_size(size)
        free = self._free.get(size)
        if free:
            return free.pop()
        pa = (self._next + size - 1) & ~(size - 1)
        moved = True
        while moved:
            moved = False
            for lo, hi in self.reserved:
                if pa < hi and lo < pa + size:
                    pa = (hi + size - 1) & ~(size - 1)
                    moved = True
        if pa + size > self.end:
            raise AtlabError(f"table allocator exhausted: no {size:#x} bytes left in "
                             f"{self.start:#x}-{self.end - 1:#x}")
        gap = self._next
        while gap < pa:  # keep the alignment hole: naturally aligned power-of-two pieces
            piece = gap & -gap
            while gap + piece > pa:
                piece >>= 1
            if not any(gap < hi and lo < gap + piece for lo, hi in self.reserved):
                self._free.setdefault(piece, []).insert(0, gap)
            gap += piece
        self._next = pa + size
        return pa

    def free(self, pa: int, size: int) -> None:
        _check_table_size(size)
        _uint("free", 64, pa=pa)
        if pa & (size - 1) or not self.start <= pa < self.end:
            raise AtlabError(f"free: {pa:#x} is not a {size:#x}-aligned table of "
                             f"{self.start:#x}-{self.end - 1:#x}")
        self._free.setdefault(size, []).append(pa)

    def snapshot(self) -> tuple[int, dict[int, list[int]]]:
        return self._next, {k: list(v) for k, v in self._free.items()}

    def restore(self, state: tuple[int, dict[int, list[int]]]) -> None:
        self._next, self._free = state[0], {k: list(v) for k, v in state[1].items()}

    @property
    def used(self) -> int:
        """Bytes handed out so far (including freed tables and alignment holes)."""
        return self._next - self.start


#: The QEMU harness (tools/hw): RAM 0x40000000-0x7fffffff; 0x40100000-0x4011ffff (harness code)
#: and 0x7c000000-0x7fffffff (job table) are reserved.
QEMU_RESERVED = ((0x4010_0000, 0x4012_0000), (0x7C00_0000, 0x8000_0000))


def qemu_allocator(start: int, end: int) -> TableAllocator:
    """An allocator for tables that the QEMU harness can load (reserved ranges skipped)."""
    if start < 0x4000_0000 or end > 0x8000_0000:
        raise AtlabError(f"QEMU harness tables must lie in RAM 0x40000000-0x7fffffff, not "
                         f"{start:#x}-{end - 1:#x}")
    return TableAllocator(start, end, QEMU_RESERVED)


# --- geometry and the shared table machinery -------------------------------------------------

_PS = {32: 0, 36: 1, 40: 2, 42: 3, 44: 4, 48: 5, 52: 6}
_TG0 = {Granule.K4: 0b00, Granule.K64: 0b01, Granule.K16: 0b10}
#: TCR_ELx.TG1 is encoded differently from TG0 (D24.2 TCR_EL1.TG1).
_TG1 = {Granule.K16: 0b01, Granule.K4: 0b10, Granule.K64: 0b11}


def contiguous_entries(granule: Granule, level: int) -> int:
    """Entries in a Contiguous run (``AArch64.ContiguousSize()``): 16 for 4KB; 128 at level 3
    and 32 at level 2 for 16KB; 32 for 64KB; 0 where the bit is RES0 (4KB level 0, 16KB and
    64KB level 1)."""
    if granule is Granule.K4:
        return 16 if level >= 1 else 0
    if granule is Granule.K16:
        return {3: 128, 2: 32}.get(level, 0)
    return 32 if level >= 2 else 0


@dataclass(frozen=True, slots=True)
class _Root:
    tpa: int
    sl: int
    ia_bits: int
    nent: int  # entries of the start table (all concatenated tables)
    lo: int  # the input range [lo, hi)
    hi: int


_Journal = dict[int, "array[int] | None"]


class _Tables:
    """Tables as arrays of 64-bit words, keyed by base PA, with an undo journal."""

    def __init__(self, granule: Granule, ds: bool, pa_bits: int, alloc: TableAllocator,
                 features: FeatureSet) -> None:
        if not features.has(granule.feature):
            raise AtlabError(f"this PE does not implement the {granule} granule")
        if ds and (granule is Granule.K64 or not features.has(Feature.LPA2)):
            raise AtlabError("DS=1 (FEAT_LPA2) applies to the 4KB and 16KB granules only")
        if pa_bits not in _PS:
            raise AtlabError(f"pa_bits must be one of {sorted(_PS)}, not {pa_bits}")
        if pa_bits == 52 and not (ds or (granule is Granule.K64 and features.has(Feature.LPA))):
            raise AtlabError("a 52-bit PA needs the 64KB granule (FEAT_LPA) or DS=1 (FEAT_LPA2)")
        if pa_bits > features.pa_max:
            raise AtlabError(f"pa_bits={pa_bits} exceeds the PE's PAMax ({features.pa_max})")
        self.granule, self.ds, self.pa_bits, self.alloc = granule, ds, pa_bits, alloc
        self.features = features
        self.lpa_64k = lpa_64k(granule, features)
        self.stride = granule.stride
        self.nent = 1 << granule.stride
        self.tables: dict[int, array[int]] = {}
        self._journal: _Journal | None = None
        self._block_ok = {lvl: block_desc_supported(granule, lvl, ds, features)
                          for lvl in range(-1, FINAL_LEVEL)}
        self._block_ok[FINAL_LEVEL] = True

    # -- encodings
    def oa_field(self, oa: int) -> int:
        """OA as descriptor bits (``AArch64.S1LeafBase()``/``NextTableBase()`` inverted)."""
        if self.lpa_64k:
            return (oa & mask(47, 16)) | (bits(oa, 51, 48) << 12)
        if self.ds:
            return (oa & mask(49, 12)) | (bits(oa, 51, 50) << 8)
        return oa

    def oa_of(self, desc: int, lsb: int) -> int:
        if self.lpa_64k:
            return (desc & mask(47, lsb)) | (bits(desc, 15, 12) << 48)
        if self.ds:
            return (desc & mask(49, lsb)) | (bits(desc, 9, 8) << 50)
        return desc & mask(47, lsb)

    def is_leaf(self, desc: int, level: int) -> bool:
        return level == FINAL_LEVEL or not desc & 2

    # -- journalled table access
    def _w(self, tpa: int) -> array[int]:
        tbl = self.tables[tpa]
        j = self._journal
        if j is not None and tpa not in j:
            j[tpa] = array("Q", tbl)
        return tbl

    def _new_table(self, nent: int) -> int:
        size = max(nent * 8, 1 << self.granule.pgshift)
        tpa = self.alloc.alloc(size)
        if tpa + size > 1 << self.pa_bits:
            raise AtlabError(f"table at {tpa:#x} is beyond the {self.pa_bits}-bit PA size")
        if self._journal is not None:
            self._journal.setdefault(tpa, None)
        self.tables[tpa] = array("Q", bytes(8 * nent))
        return tpa

    def _free_table(self, tpa: int) -> None:
        self._w(tpa)
        tbl = self.tables.pop(tpa)
        self.alloc.free(tpa, max(len(tbl) * 8, 1 << self.granule.pgshift))

    @contextlib.contextmanager
    def _txn(self) -> Iterator[None]:
        """All-or-nothing: on any error the touched tables and the allocator are restored."""
        self._journal = {}
        saved = self.alloc.snapshot()
        try:
            yield
        except BaseException:
            for tpa, old in self._journal.items():
                if old is None:
                    self.tables.pop(tpa, None)
                else:
                    self.tables[tpa] = old
            self.alloc.restore(saved)
            raise
        finally:
            self._journal = None

    def table_desc(self, tpa: int) -> int:
        return self.oa_field(tpa) | 0b11

    def child(self, desc: int) -> int:
        return self.oa_of(desc, self.granule.pgshift)

    # -- map
    def _map_level(self, tpa: int, level: int, nent: int, va: int, pa: int, end: int,
                   attrs: int, cont: bool, blocks: bool, what: str) -> None:
        lsb = level_lsb(level, self.granule)
        size = 1 << lsb
        leaf_ok = level == FINAL_LEVEL or (blocks and self._block_ok[level])
        tbl = self._w(tpa)
        while va < end:
            idx = (va >> lsb) & (nent - 1)
            if leaf_ok and not (va | pa) & (size - 1) and end - va >= size:
                n = min((end - va) >> lsb, nent - idx)
                self._leaf_run(tbl, idx, n, level, pa, attrs, cont, va, what)
                va += n << lsb
                pa += n << lsb
                continue
            desc = tbl[idx]
            sub_end = min(end, ((va >> lsb) + 1) << lsb)
            if not desc & 1:
                child = self._new_table(self.nent)
                tbl[idx] = self.table_desc(child)
            elif self.is_leaf(desc, level):
                raise AtlabError(f"{what}: VA {va & ~(size - 1):#x} is already mapped "
                                 f"(level {level} {'page' if level == 3 else 'block'})")
            else:
                child = self.child(desc)
            self._map_level(child, level + 1, self.nent, va, pa, sub_end, attrs, cont, blocks,
                            what)
            pa += sub_end - va
            va = sub_end

    def _leaf_run(self, tbl: array[int], idx: int, n: int, level: int, pa: int, attrs: int,
                  cont: bool, va: int, what: str) -> None:
        lsb = level_lsb(level, self.granule)
        size = 1 << lsb
        seg = tbl[idx:idx + n]
        if any(seg):
            k = next(i for i, d in enumerate(seg) if d)
            kind = "page" if level == 3 else ("block" if self.is_leaf(seg[k], level)
                                              else "table")
            raise AtlabError(f"{what}: VA {va + k * size:#x} is already mapped (level {level} "
                             f"{kind})")
        last = pa + (n - 1) * size
        if last + size > 1 << self.pa_bits:
            raise AtlabError(f"{what}: PA {last + size - 1:#x} is beyond the {self.pa_bits}-bit "
                             "PA size")
        typ = 0b11 if level == FINAL_LEVEL else 0b01
        base = attrs | typ
        split_at = 48 if self.lpa_64k else 50
        if pa >> split_at == last >> split_at:
            d0 = self.oa_field(pa) | base
            tbl[idx:idx + n] = array("Q", range(d0, d0 + n * size, size))
        else:
            for i in range(n):
                tbl[idx + i] = self.oa_field(pa + i * size) | base
        ncont = contiguous_entries(self.granule, level) if cont else 0
        if ncont:
            g = -(-idx // ncont) * ncont
            while g + ncont <= idx + n:
                if not (pa + (g - idx) * size) % (ncont * size):
                    for i in range(g, g + ncont):
                        tbl[i] |= CONTIGUOUS
                g += ncont

    # -- unmap / protect
    def _break_contig(self, tbl: array[int], idx: int, level: int) -> None:
        """Clearing one entry of a Contiguous run: the rest of the run loses the bit."""
        ncont = contiguous_entries(self.granule, level)
        if ncont and tbl[idx] & CONTIGUOUS:
            g = idx - idx % ncont
            for i in range(g, g + ncont):
                if tbl[i] & 1 and self.is_leaf(tbl[i], level):
                    tbl[i] &= ~CONTIGUOUS

    def _split(self, tbl: array[int], idx: int, level: int) -> int:
        """Replace the block at ``tbl[idx]`` by a table of next-level leaves with the same
        OA range and attributes (the Contiguous bit is not carried over)."""
        self._break_contig(tbl, idx, level)
        desc = tbl[idx]
        lsb = level_lsb(level, self.granule)
        clsb = lsb - self.stride
        oa = self.oa_of(desc, lsb)
        attrs = desc & ~(self.oa_field(oa) | 0b11 | CONTIGUOUS)
        child = self._new_table(self.nent)
        ctbl = self.tables[child]
        typ = 0b11 if level + 1 == FINAL_LEVEL else 0b01
        for i in range(self.nent):
            ctbl[i] = self.oa_field(oa + (i << clsb)) | attrs | typ
        tbl[idx] = self.table_desc(child)
        return child

    def _change_level(self, tpa: int, level: int, nent: int, va: int, end: int,
                      change: tuple[int, int] | None, what: str) -> bool:
        """Unmap (``change`` None) or apply ``(mask, value)`` to the leaves of [va, end).
        Returns whether anything was found; protect raises on holes."""
        lsb = level_lsb(level, self.granule)
        size = 1 << lsb
        tbl = self._w(tpa)
        found = False
        while va < end:
            idx = (va >> lsb) & (nent - 1)
            start = va & ~(size - 1)
            sub_end = min(end, start + size)
            desc = tbl[idx]
            whole = va == start and sub_end == start + size
            if not desc & 1:
                if change is not None:
                    raise AtlabError(f"{what}: VA {va:#x} is not mapped (level {level})")
            elif self.is_leaf(desc, level) and whole:
                found = True
                if change is None:
                    self._break_contig(tbl, idx, level)
                    tbl[idx] = 0
                else:
                    ncont = contiguous_entries(self.granule, level)
                    if ncont and desc & CONTIGUOUS:
                        g0 = start - (idx % ncont) * size
                        if g0 < va or g0 + ncont * size > end:
                            self._break_contig(tbl, idx, level)
                    m, v = change
                    tbl[idx] = (tbl[idx] & ~m) | v
            else:
                if self.is_leaf(desc, level):
                    child = self._split(tbl, idx, level)
                else:
                    child = self.child(desc)
                found |= self._change_level(child, level + 1, self.nent, va, sub_end, change,
                                            what)
                if change is None and not any(self.tables[child]):
                    self._free_table(child)
                    tbl[idx] = 0
            va = sub_end
        return found

    def _lookup(self, root: _Root, va: int) -> tuple[int, int, int] | None:
        """(level, desc, OA) of the leaf for ``va``, or None."""
        tpa, level, nent = root.tpa, root.sl, root.nent
        while True:
            lsb = level_lsb(level, self.granule)
            desc = self.tables[tpa][(va >> lsb) & (nent - 1)]
            if not desc & 1:
                return None
            if self.is_leaf(desc, level):
                return level, desc, self.oa_of(desc, lsb) | (va & ((1 << lsb) - 1))
            tpa, level, nent = self.child(desc), level + 1, self.nent

    # -- memory
    def iter_range(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Non-zero words in [start, end) in address order (what :mod:`atlab.ptdump` reads)."""
        for tpa in sorted(self.tables):
            tbl = self.tables[tpa]
            if tpa + 8 * len(tbl) <= start or tpa >= end:
                continue
            for i, d in enumerate(tbl):
                if d and start <= tpa + 8 * i < end:
                    yield tpa + 8 * i, d

    def peek(self, pa: int) -> int:
        for tpa, tbl in self.tables.items():
            if tpa <= pa < tpa + 8 * len(tbl):
                return tbl[(pa - tpa) >> 3]
        return 0

    def words(self) -> Iterator[tuple[int, int]]:
        """Every non-zero table word, (pa, value), in address order."""
        for tpa in sorted(self.tables):
            for i, d in enumerate(self.tables[tpa]):
                if d:
                    yield tpa + 8 * i, d

    def memory(self) -> PhysMem:
        """The tables as a :class:`~atlab.memory.PhysMem`."""
        return PhysMem(dict(self.words()))

    def sysregs(self) -> dict[str, int]:
        raise NotImplementedError

    def regs(self) -> SysRegs:
        """:meth:`sysregs` as a :class:`~atlab.sysregs.SysRegs`."""
        return SysRegs(self.sysregs())

    @property
    def table_count(self) -> int:
        return len(self.tables)

    def _check_aligned(self, what: str, **addrs: int) -> None:
        page = 1 << self.granule.pgshift
        _uint(what, 64, **addrs)
        for name, value in addrs.items():
            if value % page:
                raise AtlabError(f"{what}: {name} {value:#x} is not aligned to the {self.granule} "
                                 "granule")


def _tcr_sz_range(granule: Granule, ds: bool, features: FeatureSet) -> tuple[int, int]:
    """Input-address sizes the walker accepts (``AArch64.S1MinTxSZ()``, ``MaxTxSZ()``)."""
    big = features.has(Feature.LVA) and (granule is Granule.K64 or ds)
    max_txsz = (47 if granule is Granule.K64 else 48) if features.has(Feature.TTST) else 39
    return 64 - max_txsz, 52 if big else 48


# --- stage 1 ------------------------------------------------------------------------------------

class S1Builder(_Tables):
    """Stage 1 tables for one regime (both VA ranges for EL1&0 and EL2&0).

    ``va_bits``/``va_bits1``: the TTBR0/TTBR1 range sizes (TxSZ = 64 - bits; the start level
    follows ``AArch64.S1StartLevel()``).  A range with nothing mapped gets EPDn=1.  ``ds``:
    TCR_ELx.DS=1 (FEAT_LPA2: 52-bit VA/PA with 4KB/16KB; leaf shareability then comes from
    ``sh``).  ``tables``: a :class:`TableAllocator` or a ``(start, end)`` PA range.
    """

    def __init__(self, regime: Regime = Regime.EL10, *, granule: Granule = Granule.K4,
                 va_bits: int = 48, va_bits1: int | None = None, pa_bits: int = 48,
                 ds: bool = False, tables: TableAllocator | tuple[int, int],
                 features: FeatureSet | None = None, sh: str | int = "ISH", asid: int = 0,
                 wxn: bool = False, mair: int = MAIR_DEFAULT) -> None:
        _uint("S1Builder", 16, asid=asid)
        _uint("S1Builder", 64, mair=mair)
        alloc = tables if isinstance(tables, TableAllocator) else TableAllocator(*tables)
        super().__init__(granule, ds, pa_bits, alloc, features or FeatureSet.all())
        self.regime = regime
        self.sh = parse_sh(sh)
        self.asid, self.wxn, self.mair = asid, wxn, mair
        lo, hi = _tcr_sz_range(granule, ds, self.features)
        sizes = [va_bits] + ([va_bits1 or va_bits] if regime.has_unprivileged else [])
        for n, bits_ in enumerate(sizes):
            if not lo <= bits_ <= hi:
                raise AtlabError(f"va_bits{'1' if n else ''}={bits_}: the {granule} granule"
                                 f"{' with DS=1' if ds else ''} allows {lo}..{hi}")
        self.va_bits = sizes
        self.roots: list[_Root | None] = [None] * len(sizes)

    def _root(self, upper: bool, create: bool) -> _Root | None:
        n = int(upper)
        root = self.roots[n]
        if root is None and create:
            ia = self.va_bits[n]
            sl = start_level(ia, self.granule)
            nent = 1 << (ia - level_lsb(sl, self.granule))
            lo, hi = ((1 << 64) - (1 << ia), 1 << 64) if upper else (0, 1 << ia)
            root = _Root(self._new_table(nent), sl, ia, nent, lo, hi)
            self.roots[n] = root
        return root

    def _range_root(self, va: int, size: int, what: str, create: bool) -> _Root | None:
        upper = bool(va >> 55 & 1)
        if upper and not self.regime.has_unprivileged:
            raise AtlabError(f"{what}: the {self.regime} regime has no upper (TTBR1) range")
        ia = self.va_bits[int(upper)]
        lo, hi = ((1 << 64) - (1 << ia), 1 << 64) if upper else (0, 1 << ia)
        if size <= 0 or not (lo <= va and va + size <= hi):
            rng = "TTBR1" if upper else "TTBR0"
            raise AtlabError(f"{what}: VA range {va:#x}+{size:#x} is outside the {ia}-bit "
                             f"{rng} range {lo:#x}-{hi - 1:#x}")
        return self._root(upper, create)

    def _mair_index(self, mem: str | int) -> int:
        attr = mem if isinstance(mem, int) else MEM_TYPES.get(mem.lower())
        if attr is None:
            raise AtlabError(f"unknown memory type {mem!r}; use one of {', '.join(MEM_TYPES)} "
                             "or a MAIR attribute byte")
        for i in range(8):
            if bits(self.mair, 8 * i + 7, 8 * i) == attr:
                return i
        if not 0 <= attr <= 0xFF:
            raise AtlabError(f"MAIR attribute {attr:#x} does not fit in 8 bits")
        if bits(self.mair, 63, 56):
            raise AtlabError(f"no free MAIR slot for attribute {attr:#04x} (Attr7 is taken)")
        self.mair |= attr << 56
        return 7

    def attrs_bits(self, attrs: S1Attrs) -> int:
        if self.ds and parse_sh(attrs.sh) != self.sh:
            raise AtlabError("with DS=1 leaf shareability comes from TCR_ELx.SHn "
                             f"({self.sh:02b}); build with sh=... instead")
        return attrs.leaf_bits(self.regime, mair_index=self._mair_index(attrs.mem), ds=self.ds)

    def map(self, va: int, pa: int, size: int, *, attrs: S1Attrs | None = None,
            contiguous: bool = False, blocks: bool = True, **kw: object) -> None:
        """Map [va, va+size) to [pa, pa+size) with the largest legal blocks (pages only with
        ``blocks=False``); ``kw`` are :class:`S1Attrs` fields.  ``contiguous`` sets the
        Contiguous bit on every aligned run of ``contiguous_entries()`` leaves."""
        a = _with_attrs(S1Attrs, attrs, kw)
        _uint('map', 64, va=va, size=size)
        what = f"map VA {va:#x} ({size:#x} bytes)"
        self._check_aligned(what, VA=va, PA=pa, size=size)
        if pa + size > 1 << self.pa_bits:
            raise AtlabError(f"{what}: PA {pa + size - 1:#x} is beyond the {self.pa_bits}-bit "
                             "PA size")
        leaf = self.attrs_bits(a)
        saved_mair = self.mair
        try:
            with self._txn():
                root = self._range_root(va, size, what, create=True)
                assert root is not None
                self._map_level(root.tpa, root.sl, root.nent, va, pa, va + size, leaf,
                                contiguous, blocks, what)
        except AtlabError:
            self.mair = saved_mair
            self._drop_empty_roots()
            raise

    def _drop_empty_roots(self) -> None:
        for n, root in enumerate(self.roots):
            if root is not None and root.tpa not in self.tables:
                self.roots[n] = None

    def unmap(self, va: int, size: int) -> None:
        """Remove every mapping in [va, va+size), splitting blocks that straddle its ends;
        tables left empty are freed.  Raises if nothing at all was mapped there."""
        _uint('unmap', 64, va=va, size=size)
        what = f"unmap VA {va:#x} ({size:#x} bytes)"
        self._check_aligned(what, VA=va, size=size)
        with self._txn():
            root = self._range_root(va, size, what, create=False)
            if root is None or not self._change_level(root.tpa, root.sl, root.nent, va,
                                                      va + size, None, what):
                raise AtlabError(f"{what}: nothing is mapped there")

    def protect(self, va: int, size: int, **kw: object) -> None:
        """Change the given :class:`S1Attrs` fields of every mapping in [va, va+size),
        splitting blocks at its ends; the other fields are kept.  A hole raises."""
        _uint('protect', 64, va=va, size=size)
        what = f"protect VA {va:#x} ({size:#x} bytes)"
        self._check_aligned(what, VA=va, size=size)
        probe = _with_attrs(S1Attrs, None, kw)
        full = self.attrs_bits(probe)
        m = 0
        fields = {"mem": mask(4, 2), "sh": 0 if self.ds else mask(9, 8), "ap": mask(7, 6),
                  "ng": 1 << 11, "af": 1 << 10, "dbm": 1 << 51, "pxn": 1 << 53, "uxn": 1 << 54,
                  "xn": (mask(54, 53) if self.regime.has_unprivileged else 1 << 54)}
        for name in kw:
            if name not in fields:
                raise AtlabError(f"protect: unknown attribute {name!r}")
            m |= fields[name]
        with self._txn():
            root = self._range_root(va, size, what, create=False)
            if root is None:
                raise AtlabError(f"{what}: VA {va:#x} is not mapped")
            self._change_level(root.tpa, root.sl, root.nent, va, va + size, (m, full & m), what)

    def set_table_attrs(self, va: int, level: int, *, ap_table: str | int = 0,
                        uxn_table: bool = False, pxn_table: bool = False,
                        xn_table: bool = False) -> None:
        """Set the hierarchical controls of the table descriptor at ``level`` on the path of
        ``va`` (APTable [62:61], UXNTable/XNTable [60], PXNTable [59]; D8.4.2)."""
        what = f"table attributes at VA {va:#x} level {level}"
        root = self._range_root(va, 1, what, create=False)
        if root is None:
            raise AtlabError(f"{what}: nothing is mapped there")
        if not self.regime.has_unprivileged and (uxn_table or pxn_table or parse_ap_table(
                ap_table) & 1):
            raise AtlabError(f"{what}: the {self.regime} regime has only APTable[1] and XNTable")
        tpa, lvl, nent = root.tpa, root.sl, root.nent
        while True:
            lsb = level_lsb(lvl, self.granule)
            idx = (va >> lsb) & (nent - 1)
            desc = self.tables[tpa][idx]
            if not desc & 1 or self.is_leaf(desc, lvl):
                raise AtlabError(f"{what}: there is no table descriptor at level {level}")
            if lvl == level:
                break
            tpa, lvl, nent = self.child(desc), lvl + 1, self.nent
        bits_ = (parse_ap_table(ap_table) << 61 | int(uxn_table or xn_table) << 60
                 | int(pxn_table) << 59)
        with self._txn():
            tbl = self._w(tpa)
            tbl[idx] = (desc & ~mask(62, 59)) | bits_

    def lookup(self, va: int) -> tuple[int, int] | None:
        """(level, OA) of the leaf that maps ``va``, or None."""
        upper = bool(va >> 55 & 1) and self.regime.has_unprivileged
        root = self.roots[int(upper)]
        if root is None or not root.lo <= va < root.hi:
            return None
        found = self._lookup(root, va)
        return None if found is None else (found[0], found[2])

    # -- registers
    def sysregs(self) -> dict[str, int]:
        """TCR, TTBRs, MAIR, SCTLR (M=1, C=1, I=1) and HCR_EL2 for the regime."""
        r, g = self.regime, self.granule
        ps = _PS[self.pa_bits]
        out: dict[str, int] = {}

        def ttbr(root: _Root | None, asid: int) -> int:
            if root is None:
                return 0
            # TTBR BADDR[47:1]; with DS=1 or a 52-bit PA BADDR[51:48] is in bits [5:2].
            return (root.tpa & mask(47, 1)) | (bits(root.tpa, 51, 48) << 2) | (asid << 48)

        common = {"IRGN0": 1, "ORGN0": 1, "SH0": self.sh, "TG0": _TG0[g],
                  "T0SZ": 64 - self.va_bits[0]}
        if r.has_unprivileged:
            tcr = encode("TCR_EL1", **common, EPD0=int(self.roots[0] is None),
                         T1SZ=64 - self.va_bits[1], EPD1=int(self.roots[1] is None),
                         IRGN1=1, ORGN1=1, SH1=self.sh, TG1=_TG1[g], IPS=ps, DS=int(self.ds),
                         AS=1)
            out[f"TCR_{r.suffix}"] = tcr
            out[f"TTBR0_{r.suffix}"] = ttbr(self.roots[0], self.asid)
            out[f"TTBR1_{r.suffix}"] = ttbr(self.roots[1], 0)
        else:
            tcr = encode("TCR_EL2", **common, PS=ps, DS=int(self.ds), RES1_23=1, RES1_31=1)
            out[f"TCR_{r.suffix}"] = tcr
            out[f"TTBR0_{r.suffix}"] = ttbr(self.roots[0], 0)
        out[f"MAIR_{r.suffix}"] = self.mair
        sctlr = 0x30C50830 if r in (Regime.EL2, Regime.EL3) else 0x30D00800
        out[f"SCTLR_{r.suffix}"] = sctlr | 0b101 | (1 << 12) | (int(self.wxn) << 19)
        # HCR_EL2.RW=1 (EL1 is AArch64); EL2&0 needs E2H=1 and TGE=1 (ELIsInHost()).
        out["HCR_EL2"] = (1 << 31) | ((1 << 34 | 1 << 27) if r is Regime.EL20 else 0)
        return out

    def scenario(self, *, name: str, ops: Sequence[Mapping[str, object]] = (), el: int = 2,
                 comment: str = "", **kw: object) -> dict[str, object]:
        """A scenario dict with this builder's tables and registers (see :func:`scenario_dict`)."""
        return scenario_dict(name=name, s1=[self], ops=ops, el=el, comment=comment,
                             **kw)  # type: ignore[arg-type]


# --- stage 2 ------------------------------------------------------------------------------------

#: VTCR_EL2.{SL2,SL0} for each start level (``AArch64.S2StartLevel()`` inverted).
_SL0_4K = {2: (0, 0b00), 1: (0, 0b01), 0: (0, 0b10), 3: (0, 0b11), -1: (1, 0b00)}
_SL0_16K64K = {3: 0b00, 2: 0b01, 1: 0b10, 0: 0b11}


def _s2_sl_valid(granule: Granule, sl: int, ds: bool, features: FeatureSet) -> bool:
    """Start levels that ``AArch64.S2InvalidSL()`` accepts."""
    pa_max = features.pa_max
    if granule is Granule.K4:
        return {-1: ds and pa_max >= 52, 0: pa_max >= 44,
                3: features.has(Feature.TTST)}.get(sl, sl in (1, 2))
    if granule is Granule.K16:
        return {0: ds and pa_max >= 52, 1: pa_max >= 42}.get(sl, sl in (2, 3))
    return {0: False, 1: pa_max >= 44}.get(sl, sl in (2, 3))


def s2_geometry(granule: Granule, ipa_bits: int, ds: bool, features: FeatureSet,
                start: int | None = None) -> tuple[int, int]:
    """(start level, concatenated tables) for a stage 2 of ``ipa_bits``.

    By default the start level is the lowest (fewest levels) that ``AArch64.S2InconsistentSL()``
    accepts, i.e. up to 16 concatenated start tables, as KVM does.

    >>> s2_geometry(Granule.K4, 40, False, FeatureSet.all())
    (1, 2)
    >>> s2_geometry(Granule.K64, 42, False, FeatureSet.all())
    (2, 1)
    """
    g = granule
    candidates = [start] if start is not None else [3, 2, 1, 0, -1]
    for sl in candidates:
        levels = FINAL_LEVEL - sl
        sl_min = levels * g.stride + g.pgshift + 1
        sl_max = sl_min + (g.stride - 1) + 4
        if sl_min <= ipa_bits <= sl_max and _s2_sl_valid(g, sl, ds, features):
            return sl, max(1, 1 << max(0, ipa_bits - (levels * g.stride + g.pgshift) - g.stride))
    raise AtlabError(f"no stage 2 start level {'' if start is None else start} fits a "
                     f"{ipa_bits}-bit IPA with the {g} granule (AArch64.S2InconsistentSL())")


class S2Builder(_Tables):
    """Stage 2 tables (IPA -> PA) with VTCR_EL2, VTTBR_EL2 and HCR_EL2.VM=1.

    >>> s2 = S2Builder(ipa_bits=40, tables=(0x40400000, 0x40500000))
    >>> (s2.root.sl, s2.concat)
    (1, 2)
    >>> s2.map(0x80000000, 0x40000000, 0x40000000, s2ap="RW")
    >>> s2.translate(0x80001234) == 0x40001234
    True
    """

    def __init__(self, *, granule: Granule = Granule.K4, ipa_bits: int = 40, pa_bits: int = 48,
                 ds: bool = False, start_level: int | None = None,
                 tables: TableAllocator | tuple[int, int], features: FeatureSet | None = None,
                 sh: str | int = "ISH", vmid: int = 0) -> None:
        _uint("S2Builder", 16, vmid=vmid)
        alloc = tables if isinstance(tables, TableAllocator) else TableAllocator(*tables)
        feats = features or FeatureSet.all()
        super().__init__(granule, ds, pa_bits, alloc, feats)
        if feats.pa_max == 52:
            max_ipa = 52 if (granule is Granule.K64 or ds) else 48
        else:
            max_ipa = feats.pa_max
        if not 16 <= ipa_bits <= max_ipa:  # AArch64.S2MinTxSZ(), MaxTxSZ()
            raise AtlabError(f"ipa_bits={ipa_bits}: the {granule} granule allows 16..{max_ipa}")
        self.ipa_bits = ipa_bits
        self.sh, self.vmid = parse_sh(sh), vmid
        sl, self.concat = s2_geometry(granule, ipa_bits, ds, feats, start_level)
        nent = 1 << (ipa_bits - level_lsb(sl, granule))
        self.root = _Root(self._new_table(nent), sl, ipa_bits, nent, 0, 1 << ipa_bits)

    def _check_range(self, ipa: int, size: int, what: str) -> None:
        if size <= 0 or ipa + size > 1 << self.ipa_bits:
            raise AtlabError(f"{what}: IPA range {ipa:#x}+{size:#x} is beyond the "
                             f"{self.ipa_bits}-bit IPA size")

    def attrs_bits(self, attrs: S2Attrs) -> int:
        if self.ds and parse_sh(attrs.sh) != self.sh:
            raise AtlabError("with DS=1 leaf shareability comes from VTCR_EL2.SH0")
        return attrs.leaf_bits(ds=self.ds)

    def map(self, ipa: int, pa: int, size: int, *, attrs: S2Attrs | None = None,
            contiguous: bool = False, blocks: bool = True, **kw: object) -> None:
        """Map [ipa, ipa+size) to [pa, pa+size); ``kw`` are :class:`S2Attrs` fields."""
        a = _with_attrs(S2Attrs, attrs, kw)
        _uint('map', 64, ipa=ipa, size=size)
        what = f"map IPA {ipa:#x} ({size:#x} bytes)"
        self._check_aligned(what, IPA=ipa, PA=pa, size=size)
        self._check_range(ipa, size, what)
        if pa + size > 1 << self.pa_bits:
            raise AtlabError(f"{what}: PA {pa + size - 1:#x} is beyond the {self.pa_bits}-bit "
                             "PA size")
        leaf = self.attrs_bits(a)
        r = self.root
        with self._txn():
            self._map_level(r.tpa, r.sl, r.nent, ipa, pa, ipa + size, leaf, contiguous, blocks,
                            what)

    def unmap(self, ipa: int, size: int) -> None:
        _uint('unmap', 64, ipa=ipa, size=size)
        what = f"unmap IPA {ipa:#x} ({size:#x} bytes)"
        self._check_aligned(what, IPA=ipa, size=size)
        self._check_range(ipa, size, what)
        r = self.root
        with self._txn():
            if not self._change_level(r.tpa, r.sl, r.nent, ipa, ipa + size, None, what):
                raise AtlabError(f"{what}: nothing is mapped there")

    def protect(self, ipa: int, size: int, **kw: object) -> None:
        _uint('protect', 64, ipa=ipa, size=size)
        what = f"protect IPA {ipa:#x} ({size:#x} bytes)"
        self._check_aligned(what, IPA=ipa, size=size)
        self._check_range(ipa, size, what)
        full = self.attrs_bits(_with_attrs(S2Attrs, None, kw))
        fields = {"mem": mask(5, 2), "sh": 0 if self.ds else mask(9, 8), "s2ap": mask(7, 6),
                  "af": 1 << 10, "dbm": 1 << 51, "xn": mask(54, 53)}
        m = 0
        for name in kw:
            if name not in fields:
                raise AtlabError(f"protect: unknown attribute {name!r}")
            m |= fields[name]
        r = self.root
        with self._txn():
            self._change_level(r.tpa, r.sl, r.nent, ipa, ipa + size, (m, full & m), what)

    def lookup(self, ipa: int) -> tuple[int, int] | None:
        """(level, PA) of the leaf that maps ``ipa``, or None."""
        if ipa >> self.ipa_bits:
            return None
        found = self._lookup(self.root, ipa)
        return None if found is None else (found[0], found[2])

    def translate(self, ipa: int) -> int | None:
        found = self.lookup(ipa)
        return None if found is None else found[1]

    def sysregs(self) -> dict[str, int]:
        """VTCR_EL2, VTTBR_EL2 and HCR_EL2 (VM=1, RW=1)."""
        g = self.granule
        if g is Granule.K4:
            sl2, sl0 = _SL0_4K[self.root.sl]
        else:
            sl2, sl0 = 0, _SL0_16K64K[self.root.sl]
        vtcr = encode("VTCR_EL2", T0SZ=64 - self.ipa_bits, SL0=sl0, IRGN0=1, ORGN0=1,
                      SH0=self.sh, TG0=_TG0[g], PS=_PS[self.pa_bits], RES1_31=1,
                      DS=int(self.ds), SL2=sl2)
        tpa = self.root.tpa
        vttbr = (tpa & mask(47, 1)) | (bits(tpa, 51, 48) << 2) | (self.vmid << 48)
        return {"VTCR_EL2": vtcr, "VTTBR_EL2": vttbr, "HCR_EL2": (1 << 31) | 1}


# --- scenarios ------------------------------------------------------------------------------

def _hexify(op: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in op.items():
        if k in ("va", "expected_par") and isinstance(v, int) and not isinstance(v, bool):
            out[k] = f"{v:#x}" if k == "va" else f"0x{v:016x}"
        else:
            out[k] = v
    return out


def scenario_dict(*, name: str, s1: Sequence[S1Builder] = (), s2: S2Builder | None = None,
                  ops: Sequence[Mapping[str, object]] = (), el: int = 2, comment: str = "",
                  tags: Sequence[str] = (), sysregs: Mapping[str, int] | None = None,
                  features: Mapping[str, object] | None = None) -> dict[str, object]:
    """A complete scenario (registers + memory + ops) for ``atlab run`` and the QEMU harness.

    The registers of every builder are merged (HCR_EL2 bits OR-ed; any other register given
    twice must agree); ``sysregs`` then overrides.  EL1&0 stage 1 tables live at IPAs when
    ``s2`` is given: their words are placed at the PAs stage 2 maps them to.  Ops may give
    ``va`` and ``expected_par`` as ints.
    """
    regs: dict[str, int] = {}
    words: dict[int, int] = {}

    def put(pa: int, value: int, who: str) -> None:
        if pa in words and words[pa] != value:
            raise AtlabError(f"scenario {name!r}: {who} writes PA {pa:#x}, which another "
                             "builder's tables already use")
        words[pa] = value

    builders: list[S1Builder | S2Builder] = [*s1, *([s2] if s2 is not None else [])]
    for b in builders:
        for reg, value in b.sysregs().items():
            if reg == "HCR_EL2":
                regs[reg] = regs.get(reg, 0) | value
            elif reg in regs and regs[reg] != value:
                raise AtlabError(f"scenario {name!r}: two builders set {reg} differently")
            else:
                regs[reg] = value
    if s2 is not None:
        for pa, value in s2.words():
            put(pa, value, "stage 2")
    for b1 in s1:
        under_s2 = s2 is not None and b1.regime is Regime.EL10
        for addr, value in b1.words():
            target: int | None = addr
            if under_s2:
                assert s2 is not None
                target = s2.translate(addr)
                if target is None:
                    raise AtlabError(f"scenario {name!r}: the {b1.regime} table word at IPA "
                                     f"{addr:#x} is not mapped by stage 2")
            assert target is not None
            put(target, value, f"the {b1.regime} tables")
    regs.update(sysregs or {})
    out: dict[str, object] = {"name": name}
    if comment:
        out["comment"] = comment
    if tags:
        out["tags"] = list(tags)
    out["el"] = el
    if features:
        out["features"] = dict(features)
    out["sysregs"] = {k: f"{v:#x}" for k, v in sorted(regs.items())}
    out["memory"] = [{"pa": f"{pa:#x}", "u64": f"0x{v:016x}"} for pa, v in sorted(words.items())]
    out["ops"] = [_hexify(o) for o in ops]
    return out
