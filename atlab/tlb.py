"""A TLB model, TLBI, and the shadow stage 2 as a TLB of L1's stage 2.

A TLB caches the *result* of walks, tagged the way the hardware tags it (Arm ARM D8.16
"Translation Lookaside Buffers", D8.17 "TLB maintenance"; C5.5 the TLBI instructions):

==============  =====================================================================
entry kind      what it holds
==============  =====================================================================
``S1``          a stage 1 leaf: VA -> stage 1 output (a PA, or an IPA under stage 2)
``S12``         a combined leaf: VA -> PA through both stages
``S2``          a stage 2 leaf: IPA -> PA (EL1&0 only, tagged with the VMID)
``S1_WALK``     walk cache: a stage 1 *table* descriptor (the next table's address and
                the hierarchical permissions so far) for the VA range it spans
``S2_WALK``     walk cache: a stage 2 table descriptor for the IPA range it spans
==============  =====================================================================

============  =======================================================================
tag           meaning
============  =======================================================================
regime        EL1&0, EL2&0, EL2 or EL3 (``TranslationRegime()``)
VMID          EL1&0 entries only: VTTBR_EL2.VMID (16 bits when VTCR_EL2.VS=1)
ASID          non-global leaves (nG=1) of EL1&0 and EL2&0: the ASID of TTBR0 or TTBR1
              (TCR_ELx.A1), 16 bits when TCR_ELx.AS=1; ``None`` = global.  Walk cache
              entries of these regimes are always non-global (R_CHVGJ)
range         the block or page the leaf maps, or the range a table descriptor spans;
              a combined entry takes the smaller of the stage 1 and stage 2 leaf sizes
============  =======================================================================

The architecture lets a TLB hold any translation that was valid at some time since it was
last invalidated, and lets it hold nothing at all (D8.16: a TLB is a cache, never required to
hit).  atlab picks one deterministic behaviour, configurable by :class:`TlbPolicy`: every walk
that reads a valid descriptor allocates entries (capacity unlimited unless set; FIFO or LRU
replacement), and nothing leaves the TLB except by replacement or TLBI.  Only valid
descriptors are cached: a walk that ends in a Translation, Address size or Access flag fault
allocates no leaf (a Permission fault does: the entry is valid and permissions are checked on
every lookup).  Changing a descriptor in memory never updates an entry: that is what makes an
entry *stale*.

>>> from atlab import AtOp, PhysMem, SysRegs
>>> regs = SysRegs.from_mapping({"HCR_EL2": "0x80000000", "SCTLR_EL1": "0x30d00801",
...     "TCR_EL1": "0x500803510", "TTBR0_EL1": "0x40200000", "MAIR_EL1": "0xff"})
>>> mem = PhysMem({0x40200120: 0x40201003, 0x40201688: 0x40202003,
...                0x40202598: 0x40203003, 0x40203C48: 0x45678703})
>>> look = Tlb().translate(AtOp.S1E1R, 0x123456789ABC, regs=regs, mem=mem)
>>> look.hit, hex(look.par.pa), len(look.tlb)  # a leaf and three walk cache entries
(False, '0x45678000', 4)
>>> mem.poke(0x40203C48, 0x4ABCD703)  # the page now maps elsewhere; no TLBI
>>> stale = look.tlb.translate(AtOp.S1E1R, 0x123456789ABC, regs=regs, mem=mem)
>>> stale.hit, hex(stale.par.pa)
(True, '0x45678000')
>>> after = stale.tlb.tlbi(TlbiOp.VALE1, regs=regs, va=0x123456789000).tlb
>>> hex(after.translate(AtOp.S1E1R, 0x123456789ABC, regs=regs, mem=mem).par.pa)
'0x4abcd000'
"""

from __future__ import annotations

import dataclasses
import enum
import html
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from atlab.at import AtResult, Stage2Walker, run_at, s1_enabled
from atlab.bits import bit, bits, mask
from atlab.descriptors import next_table_base
from atlab.errors import AtlabError, clip
from atlab.faults import Fault, FaultKind
from atlab.features import FeatureSet
from atlab.memory import PhysMem, byteswap64
from atlab.par import Par
from atlab.ptdump import human_size
from atlab.regime import (
    AtOp,
    Disposition,
    Regime,
    at_disposition,
    compute_translation_regime,
    hcr_e2h_tge,
)
from atlab.syndrome import TakenException, trapped_sys, undefined
from atlab.sysregs import SysRegs
from atlab.trace import Trace, WalkStep
from atlab.walk_s1 import S1Start, S1WalkInfo
from atlab.walk_s2 import S2Result, S2WalkInfo, setup_s2_walk, stage2_enabled, walk_s2

__all__ = [
    "EntryKind",
    "Replacement",
    "Tlb",
    "TlbEntry",
    "TlbLookup",
    "TlbPolicy",
    "TlbiOp",
    "TlbiResult",
    "TlbiRoute",
    "TlbiScope",
    "tlb_context",
    "tlbi_route",
]

_LEAF_KINDS = ("page", "block")

class EntryKind(enum.Enum):
    S1 = "stage 1"  # leaf: VA -> stage 1 output (an IPA under stage 2)
    S12 = "stage 1+2"  # leaf: VA -> PA, combined
    S2 = "stage 2"  # leaf: IPA -> PA
    S1_WALK = "stage 1 walk"  # walk cache: a stage 1 table descriptor
    S2_WALK = "stage 2 walk"  # walk cache: a stage 2 table descriptor

    __hash__ = object.__hash__

    @property
    def is_leaf(self) -> bool:
        return self in (EntryKind.S1, EntryKind.S12, EntryKind.S2)

    @property
    def stage1(self) -> bool:
        """The entry is looked up by VA (stage 1 or combined); else by IPA."""
        return self in (EntryKind.S1, EntryKind.S12, EntryKind.S1_WALK)


class Replacement(enum.Enum):
    FIFO = "fifo"  # evict the entry allocated first
    LRU = "lru"  # evict the entry used least recently (a hit counts as a use)


@dataclass(frozen=True, slots=True)
class TlbPolicy:
    """The model's choices where the architecture allows many (all deterministic).

    ``capacity``: total entries (every kind counts), None = unlimited, 0 = a TLB that
    holds nothing (the other extreme the architecture allows: every lookup walks).  ``walk_cache``:
    cache table descriptors (``S1_WALK``/``S2_WALK``).  ``stage2_entries``: cache stage 2
    leaves separately (``S2``), as well as combined ``S12`` leaves."""

    capacity: int | None = None
    replacement: Replacement = Replacement.LRU
    walk_cache: bool = True
    stage2_entries: bool = True

    def __post_init__(self) -> None:
        if self.capacity is not None and self.capacity < 0:
            raise AtlabError(f"TLB capacity must be 0 or more (or None), not {self.capacity}")


class TlbiScope(enum.Enum):
    """What a TLBI instruction's name says it invalidates (C5.5), before E2H/TGE."""

    VMALL = "every stage 1 entry of the EL1&0 regime (current VMID), every ASID"
    VA = "stage 1 entries for the VA: global ones and those of the operand's ASID"
    VAA = "stage 1 entries for the VA, every ASID"
    ASID = "non-global stage 1 entries of the operand's ASID"
    VMALLS12 = "every stage 1 and stage 2 entry of the current VMID"
    ALL_E1 = "every EL1&0 entry of every VMID"
    IPA = "stage 2 entries for the IPA (current VMID); combined entries need not go"
    ALL_E2 = "every EL2 and EL2&0 entry"
    VA_E2 = "EL2 (E2H=0) or EL2&0 (E2H=1) entries for the VA"


@dataclass(frozen=True, slots=True)
class TlbiInfo:
    scope: TlbiScope
    last_level: bool  # ...L...: only the last level (leaves) must go, not walk cache entries
    shareable: bool  # ...IS: broadcast to every PE in the Inner Shareable domain
    op1: int
    crm: int
    op2: int

    @property
    def is_el2_op(self) -> bool:
        """An EL2 instruction (op1=4): UNDEFINED at EL1, trapped to EL2 when HCR_EL2.NV=1."""
        return self.op1 == 4


def _t(scope: TlbiScope, crm: int, op2: int, *, op1: int = 0, last: bool = False) -> TlbiInfo:
    return TlbiInfo(scope, last, crm in (0, 3), op1, crm, op2)


_S = TlbiScope


class TlbiOp(enum.Enum):
    """The TLB maintenance instructions modelled (C5.5.x; encodings ``SYS #op1, C8, Cm,
    #op2``).  The range (``RVA...``) and Outer Shareable (``...OS``) forms are not modelled."""

    VMALLE1 = _t(_S.VMALL, 7, 0)
    VMALLE1IS = _t(_S.VMALL, 3, 0)
    VAE1 = _t(_S.VA, 7, 1)
    VAE1IS = _t(_S.VA, 3, 1)
    ASIDE1 = _t(_S.ASID, 7, 2)
    ASIDE1IS = _t(_S.ASID, 3, 2)
    VAAE1 = _t(_S.VAA, 7, 3)
    VAAE1IS = _t(_S.VAA, 3, 3)
    VALE1 = _t(_S.VA, 7, 5, last=True)
    VALE1IS = _t(_S.VA, 3, 5, last=True)
    VAALE1 = _t(_S.VAA, 7, 7, last=True)
    VAALE1IS = _t(_S.VAA, 3, 7, last=True)
    IPAS2E1IS = _t(_S.IPA, 0, 1, op1=4)
    IPAS2LE1IS = _t(_S.IPA, 0, 5, op1=4, last=True)
    IPAS2E1 = _t(_S.IPA, 4, 1, op1=4)
    IPAS2LE1 = _t(_S.IPA, 4, 5, op1=4, last=True)
    ALLE2IS = _t(_S.ALL_E2, 3, 0, op1=4)
    VAE2IS = _t(_S.VA_E2, 3, 1, op1=4)
    ALLE1IS = _t(_S.ALL_E1, 3, 4, op1=4)
    VALE2IS = _t(_S.VA_E2, 3, 5, op1=4, last=True)
    VMALLS12E1IS = _t(_S.VMALLS12, 3, 6, op1=4)
    ALLE2 = _t(_S.ALL_E2, 7, 0, op1=4)
    VAE2 = _t(_S.VA_E2, 7, 1, op1=4)
    ALLE1 = _t(_S.ALL_E1, 7, 4, op1=4)
    VALE2 = _t(_S.VA_E2, 7, 5, op1=4, last=True)
    VMALLS12E1 = _t(_S.VMALLS12, 7, 6, op1=4)

    __hash__ = object.__hash__

    @property
    def info(self) -> TlbiInfo:
        value = self.value
        assert isinstance(value, TlbiInfo)
        return value

    @property
    def operands(self) -> tuple[str, ...]:
        """The operands the instruction takes from Xt (``va``, ``asid``, ``ipa``)."""
        return {_S.VA: ("va", "asid"), _S.VAA: ("va",), _S.ASID: ("asid",), _S.IPA: ("ipa",),
                _S.VA_E2: ("va", "asid")}.get(self.info.scope, ())

    @classmethod
    def parse(cls, text: str) -> TlbiOp:
        """``"VAE1"``, ``"tlbi vae1is"`` ... (case ignored, the ``TLBI`` prefix optional)."""
        name = str(text).strip().upper().removeprefix("TLBI").strip()
        try:
            return cls[name]
        except KeyError:
            raise AtlabError(f"unknown TLBI {clip(text)} (one of "
                             f"{', '.join(o.name for o in cls)})") from None

    def check_operands(self, *, va: int | None = None, asid: int | None = None,
                       ipa: int | None = None) -> None:
        """Raise :class:`AtlabError` for a missing operand (an ASID may be left out: its
        field reads as 0) or one the instruction does not take."""
        given = {"va": va, "asid": asid, "ipa": ipa}
        for name in self.operands:
            if given[name] is None and name != "asid":
                raise AtlabError(f"{self} needs the operand {name}")
        for name, value in given.items():
            if value is not None and name not in self.operands:
                raise AtlabError(f"{self} takes no {name} operand")

    def operands_from_xt(self, xt: int) -> dict[str, int]:
        """The operands a TLBI takes from its register (C5.5): for the by-VA forms VA[55:12]
        in Xt[43:0] and the ASID in Xt[63:48]; for ASIDE1 the ASID; for the IPAS2 forms
        IPA[51:12] in Xt[39:0].  The TTL hint Xt[47:44] is not used (FEAT_TTL is not
        modelled: every entry in scope is removed, which a wrong or absent hint allows)."""
        if xt >> 64 or xt < 0:
            raise AtlabError(f"{self}: Xt {xt:#x} does not fit in 64 bits")
        out: dict[str, int] = {}
        if "va" in self.operands:
            out["va"] = (xt & mask(43, 0)) << 12
        if "asid" in self.operands:
            out["asid"] = xt >> 48
        if "ipa" in self.operands:
            out["ipa"] = (xt & mask(39, 0)) << 12
        return out

    @property
    def encoding(self) -> str:
        i = self.info
        return f"SYS #{i.op1}, C8, C{i.crm}, #{i.op2}"

    def describe(self) -> str:
        i = self.info
        text = i.scope.value
        if i.last_level:
            text += "; last level only (walk cache entries may stay)"
        if i.shareable:
            text += "; broadcast to the Inner Shareable domain"
        return text

    def __str__(self) -> str:
        return f"TLBI {self.name}"


@dataclass(frozen=True, slots=True)
class TlbEntry:
    """One cached translation, tagged like hardware.

    ``ia`` and ``size``: the input range (a VA, or an IPA for the stage 2 kinds).  ``oa``:
    for a leaf, the output address of the first byte (None when a Permission fault filled
    it); for a walk cache entry, the next table's address.  ``words`` are the descriptors a
    walk from the start level reads to use the entry, as they were when it was filled, and
    ``regs`` the registers of that walk: a hit replays the walk on them, so the result is
    computed by the same code as :func:`atlab.run_at`.  ``table_bits``: a stage 1 walk cache
    entry's hierarchical permission bits (the OR of the table descriptors' bits [62:59]).
    ``seq`` numbers allocations (the TLB's order of filling); ``filled_by`` and ``walk`` say
    which lookup allocated the entry and show the walk it made (for a stage 2 entry, the stage
    2 walk of that IPA)."""

    kind: EntryKind
    regime: Regime
    vmid: int | None
    asid: int | None
    ia: int
    size: int
    level: int
    oa: int | None
    words: tuple[tuple[int, int], ...]
    regs: SysRegs
    features: FeatureSet
    table_bits: int = 0
    shape: tuple[object, ...] = ()  # walk cache: the walk geometry it is valid for
    seq: int = 0
    filled_by: str = ""  # the lookup whose walk allocated it
    walk: Trace | None = field(default=None, repr=False, compare=False)  # that walk

    @property
    def is_global(self) -> bool:
        return self.asid is None

    def covers(self, ia: int) -> bool:
        """The entry translates ``ia`` (a lookup compares the whole address)."""
        return self.ia <= ia < self.ia + self.size

    def covers_tlbi(self, va: int) -> bool:
        """A TLBI by VA matches (the operand carries VA[55:12]; the top byte is ignored)."""
        lo = self.ia & mask(55, 0)
        return lo <= (va & mask(55, 0)) < lo + self.size

    @property
    def tags(self) -> str:
        tags = [str(self.regime)]
        if self.vmid is not None:
            tags.append(f"VMID={self.vmid}")
        if self.kind.stage1 and self.regime.has_unprivileged:
            tags.append("global" if self.asid is None else f"ASID={self.asid}")
        return " ".join(tags)

    @property
    def output(self) -> str:
        if self.oa is None:
            return "-"
        return f"table {self.oa:#x}" if not self.kind.is_leaf else f"{self.oa:#x}"

    def __str__(self) -> str:
        ia = "VA" if self.kind.stage1 else "IPA"
        return (f"#{self.seq} {self.kind.value} [{self.tags}] {ia} {self.ia:#x} "
                f"+{size_text(self.size)} (L{self.level}) -> {self.output}")


@dataclass(frozen=True, slots=True)
class TlbLookup:
    """A translation through the TLB: the AT result, whether a leaf entry answered it
    (``hit``), the leaf entry that answered or was filled (None: not cacheable, or the TLB
    was bypassed), every entry the translation used (``used``: the leaf on a hit, else the
    walk cache and stage 2 entries it resumed from), what it allocated and evicted, and the
    TLB after the lookup."""

    result: AtResult
    hit: bool
    entry: TlbEntry | None
    tlb: Tlb
    used: tuple[TlbEntry, ...] = ()
    filled: tuple[TlbEntry, ...] = ()
    evicted: tuple[TlbEntry, ...] = ()

    @property
    def par(self) -> Par | None:
        return self.result.par

    def __str__(self) -> str:
        if self.hit:
            how = "hit"
        elif self.used:
            how = f"miss, walk resumed from {len(self.used)} cached entr" + (
                "y" if len(self.used) == 1 else "ies")
        else:
            how = "miss"
        return f"TLB {how}: {self.result}"


@dataclass(frozen=True, slots=True)
class TlbiResult:
    """A TLBI: the TLB after it, the entries it removed, and how it was executed (the
    exception instead when it traps or is UNDEFINED; ``broadcast`` when it reaches every PE
    of the Inner Shareable domain: an ...IS form, or HCR_EL2.FB=1 at EL1)."""

    tlb: Tlb
    removed: tuple[TlbEntry, ...]
    exception: TakenException | None = None
    broadcast: bool = False
    why: str = ""


def size_text(size: int) -> str:
    """An entry's size as ``4KB``, ``2MB``, ``1GB``... (sizes are powers of two)."""
    return human_size(size) + "B"


def tlb_context(op: AtOp, regs: SysRegs, features: FeatureSet | None = None
                ) -> tuple[EntryKind, Regime, int | None, int | None]:
    """The tags a lookup for ``op`` uses: (leaf kind, regime, VMID, current ASID)."""
    features = features if features is not None else FeatureSet.all()
    choice = compute_translation_regime(op, regs, features)
    regime = choice.regime
    kind = EntryKind.S12 if choice.stage2 and stage2_enabled(regs) else EntryKind.S1
    return kind, regime, _vmid(regime, regs), _asid(regime, regs)


def _vmid(regime: Regime, regs: SysRegs) -> int | None:
    if regime is not Regime.EL10:
        return None
    hi = 63 if bit(regs["VTCR_EL2"], 19) else 55  # VTCR_EL2.VS: 16-bit VMID
    return bits(regs["VTTBR_EL2"], hi, 48)


def _asid(regime: Regime, regs: SysRegs) -> int | None:
    if not regime.has_unprivileged:
        return None
    tcr = regs[f"TCR_{regime.suffix}"]
    ttbr = regs[f"TTBR{bit(tcr, 22)}_{regime.suffix}"]  # TCR_ELx.A1
    return bits(ttbr, 63 if bit(tcr, 36) else 55, 48)  # TCR_ELx.AS: 16-bit ASID


class _Snapshot(PhysMem):
    """Memory as the cached walk saw it: the entry's words, else the current memory."""

    __slots__ = ("base", "cached")

    def __init__(self, cached: Mapping[int, int], base: PhysMem) -> None:
        super().__init__(logging=False)
        self.cached = dict(cached)
        self.base = base

    def peek(self, pa: int) -> int:
        value = self.cached.get(pa)
        return self.base.peek(pa) if value is None else value

    def read64(self, pa: int, *, big_endian: bool = False, purpose: str = "") -> int:
        value = self.peek(pa)
        return byteswap64(value) if big_endian else value

    def write64(self, pa: int, value: int, *, big_endian: bool = False, purpose: str = "") -> None:
        self.cached[pa] = byteswap64(value) if big_endian else value


def _words(steps: Iterable[WalkStep]) -> dict[int, int]:
    """The descriptor words a walk read (a later hardware update wins), by PA."""
    out: dict[int, int] = {}
    for s in steps:
        for sub in s.s2:
            out[sub.desc_pa] = sub.raw
        if s.kind != "not read":
            out[s.desc_pa] = s.raw
    return out


def _leaf(steps: Iterable[WalkStep]) -> WalkStep | None:
    found = None
    for s in steps:
        if s.kind in _LEAF_KINDS and not s.is_write:
            found = s
    return found


class _Session:
    """One translation through the TLB: the cached state it may use (implements
    :class:`atlab.at.WalkCache`) and what it used and allocated."""

    def __init__(self, tlb: Tlb, regime: Regime, vmid: int | None, asid: int | None,
                 regs: SysRegs, origin: str) -> None:
        self.tlb = tlb
        self.origin = origin
        self.regime = regime
        self.vmid = vmid
        self.asid = asid  # a walk cache entry is non-global (R_CHVGJ): it has the ASID
        self.regs = regs
        self.seq = tlb.next_seq
        self.used: list[TlbEntry] = []
        self.fills: list[TlbEntry] = []
        self.supplied: dict[int, int] = {}  # words that came from cached entries
        self.notes: list[str] = []

    def entries(self) -> Iterable[TlbEntry]:
        yield from self.tlb.entries
        yield from self.fills

    def use(self, e: TlbEntry, note: str) -> None:
        self.used.append(e)
        self.supplied.update(e.words)
        self.notes.append(note)

    def fill(self, **kw: object) -> TlbEntry:
        kw.setdefault("filled_by", self.origin)
        e = TlbEntry(seq=self.seq, **kw)  # type: ignore[arg-type]
        self.seq += 1
        self.fills.append(e)
        return e

    def deepest_walk(self, kind: EntryKind, ia: int, wi: S1WalkInfo | S2WalkInfo
                     ) -> TlbEntry | None:
        """The walk cache entry of ``kind`` nearest the leaf that covers ``ia`` for this
        translation's tags and walk geometry (stage 1: regime and the walk's ASID too)."""
        if not self.tlb.policy.walk_cache:
            return None
        shape = _shape(wi)
        best: TlbEntry | None = None
        for e in self.entries():
            if (e.kind is kind and e.vmid == self.vmid and e.covers(ia) and e.shape == shape
                    and e.oa is not None and (best is None or e.level > best.level)
                    and (kind is EntryKind.S2_WALK
                         or (e.regime is self.regime and e.asid == self.asid))):
                best = e
        return best

    # --- stage 1 walk cache ------------------------------------------------------------------
    def s1_start(self, wi: S1WalkInfo, va: int) -> S1Start | None:
        best = self.deepest_walk(EntryKind.S1_WALK, va, wi)
        if best is None or best.oa is None:
            return None
        self.use(best, f"walk cache hit: #{best.seq}, the level {best.level} table descriptor "
                 f"for VA {best.ia:#x}+{size_text(best.size)}; the walk resumes at level "
                 f"{best.level + 1}, table {best.oa:#x} (the levels above are not read)")
        return best.level + 1, best.oa, best.table_bits

    def stage2(self, info: S2WalkInfo | Fault, mem: PhysMem, features: FeatureSet
               ) -> Stage2Walker:
        return _TlbStage2(info, mem, features, self)

    def fill_s1_walks(self, res: AtResult, va: int, features: FeatureSet) -> None:
        """Walk cache entries for the stage 1 table descriptors the walk read and went past."""
        if not self.tlb.policy.walk_cache:
            return
        steps = [s for s in res.trace.steps if not s.is_write]
        # Everything cached that this walk used (the walk cache entry it resumed from, the
        # stage 2 entries and walk cache entries of its table accesses): a later walk that
        # resumes from a new entry must see the same words.
        prefix = dict(self.supplied)
        start_bits = max((e.table_bits for e in self.used if e.kind is EntryKind.S1_WALK),
                         default=0)
        tbits = start_bits
        for i, s in enumerate(steps):
            prefix.update(_words([s]))
            wi = s.decoder
            if s.kind != "table" or i + 1 >= len(steps) or not isinstance(wi, S1WalkInfo):
                continue
            if not wi.hpd:
                tbits |= s.raw & (0xF << 59)
            size = 1 << s.ia_lo
            self.fill(kind=EntryKind.S1_WALK, regime=self.regime, vmid=self.vmid, asid=self.asid,
                      ia=va & ~(size - 1), size=size, level=s.level,
                      oa=next_table_base(s.raw, wi.granule, wi.ds, wi.lpa_64k),
                      words=tuple(sorted(prefix.items())), regs=self.regs,
                      features=features, table_bits=tbits, shape=_shape(wi), walk=res.trace)

    # --- stage 2 -----------------------------------------------------------------------------
    def s2_lookup(self, ipa: int) -> TlbEntry | None:
        for e in self.entries():
            if e.kind is EntryKind.S2 and e.vmid == self.vmid and e.covers(ipa):
                return e
        return None

    def fill_s2(self, ipa: int, steps: list[WalkStep], res: S2Result, wi: S2WalkInfo,
                start: TlbEntry | None, features: FeatureSet) -> None:
        origin = f"{self.origin}: stage 2 walk of IPA {ipa:#x}"
        walk = Trace(tuple(steps), ended=res.ended)
        prefix: dict[int, int] = dict(start.words) if start is not None else {}
        reads = [s for s in steps if not s.is_write]
        for i, s in enumerate(reads):
            prefix.update(_words([s]))
            if (s.kind == "table" and i + 1 < len(reads) and self.tlb.policy.walk_cache):
                size = 1 << s.ia_lo
                self.fill(kind=EntryKind.S2_WALK, regime=Regime.EL10, vmid=self.vmid,
                          asid=None, ia=ipa & ~(size - 1), size=size, level=s.level,
                          oa=next_table_base(s.raw, wi.granule, wi.ds, wi.lpa_64k),
                          words=tuple(sorted(prefix.items())), regs=self.regs,
                          features=features, shape=_shape(wi), filled_by=origin, walk=walk)
        prefix.update(_words(s for s in steps if s.is_write))
        leaf = _leaf(steps)
        if (not self.tlb.policy.stage2_entries or leaf is None
                or (res.fault is not None and res.fault.kind is not FaultKind.PERMISSION)):
            return
        size = 1 << leaf.ia_lo
        base = ipa & ~(size - 1)
        self.fill(kind=EntryKind.S2, regime=Regime.EL10, vmid=self.vmid, asid=None, ia=base,
                  size=size, level=leaf.level,
                  oa=None if res.fault is not None else res.pa - (ipa - base),
                  words=tuple(sorted(prefix.items())), regs=self.regs, features=features,
                  filled_by=origin, walk=walk)


def _shape(wi: S1WalkInfo | S2WalkInfo) -> tuple[object, ...]:
    """A walk cache entry is used only by walks of the same geometry."""
    return (wi.granule, wi.ia_bits, wi.sl, wi.ds)


class _TlbStage2(Stage2Walker):
    """Stage 2 through the TLB: a stage 2 leaf entry answers (its walk replayed on the cached
    words); else the walk resumes below the deepest stage 2 walk cache entry."""

    def __init__(self, info: S2WalkInfo | Fault, mem: PhysMem, features: FeatureSet,
                 session: _Session) -> None:
        super().__init__(info, mem, features)
        self.session = session

    def translate(self, ipa: int, *, write: bool, s1ptw: bool, for_at: bool,
                  trace: list[WalkStep] | None) -> S2Result:
        info = self.info
        if isinstance(info, Fault):
            return super().translate(ipa, write=write, s1ptw=s1ptw, for_at=for_at, trace=trace)
        ses = self.session
        steps: list[WalkStep] = []
        e = ses.s2_lookup(ipa)
        if e is not None:
            cached = setup_s2_walk(e.regs, e.features)
            assert isinstance(cached, S2WalkInfo)
            ses.use(e, f"stage 2 TLB hit: #{e.seq} answers IPA {ipa:#x} (stage 2 tables not "
                    "read)")
            res = walk_s2(cached, _Snapshot(dict(e.words), self.mem), ipa, e.features,
                          write=write, s1ptw=s1ptw, for_at=for_at, trace=steps)
        else:
            start = ses.deepest_walk(EntryKind.S2_WALK, ipa, info)
            at = None
            if start is not None and start.oa is not None:
                ses.use(start, f"stage 2 walk cache hit: #{start.seq} for IPA {ipa:#x}; the "
                        f"stage 2 walk resumes at level {start.level + 1}")
                at = (start.level + 1, start.oa)
            res = walk_s2(info, self.mem, ipa, self.features, write=write, s1ptw=s1ptw,
                          for_at=for_at, trace=steps, start=at)
            ses.fill_s2(ipa, steps, res, info, start, self.features)
        if trace is not None:
            trace.extend(steps)
        return res

    def translate_ptw(self, ipa: int, *, write: bool, s1_level: int,
                      trace: list[WalkStep] | None) -> int | Fault:
        res = self.translate(ipa, write=write, s1ptw=True, for_at=False, trace=trace)
        return res.pa if res.fault is None else res.fault


@dataclass(frozen=True, slots=True)
class Tlb:
    """One PE's TLB, immutable: every operation returns the new TLB.  Entries are kept in
    replacement order (the first is evicted first).

    # SIMPLIFIED: one entry per block or page (the Contiguous hint is not used to merge
    # entries); a lookup with a tagged VA (top byte not the sign extension of bit 55) and a
    # translation with stage 1 disabled bypass the TLB.
    """

    entries: tuple[TlbEntry, ...] = ()
    policy: TlbPolicy = TlbPolicy()
    next_seq: int = 1

    def lookup(self, kind: EntryKind, regime: Regime, vmid: int | None, asid: int | None,
               ia: int) -> TlbEntry | None:
        """The leaf entry of ``kind`` that translates ``ia`` with these tags, if any (the
        first in replacement order when several match)."""
        for e in self.entries:
            if (e.kind is kind and e.regime is regime and e.vmid == vmid
                    and (e.asid is None or e.asid == asid) and e.covers(ia)):
                return e
        return None

    def translate(self, op: AtOp, va: int, *, regs: SysRegs, mem: PhysMem,
                  features: FeatureSet | None = None, cur_el: int = 2,
                  pan: int | None = None) -> TlbLookup:
        """``AT <op>`` looked up in the TLB first.  A leaf hit answers from the entry (the
        tables in memory are not read); on a miss the walk resumes below the deepest walk
        cache entry, translates through the stage 2 entries, and allocates what it read."""
        features = features if features is not None else FeatureSet.all()
        va &= mask(63, 0)
        pan_now = regs.field("PSTATE_PAN", "PAN") if pan is None else pan

        def walk() -> AtResult:
            return run_at(op, va, regs=regs, mem=mem, features=features, cur_el=cur_el,
                          pan=pan_now)

        disp = at_disposition(op, cur_el, regs, features)
        if disp.kind is not Disposition.EXECUTE:
            return TlbLookup(walk(), False, None, self)
        kind, regime, vmid, asid = tlb_context(op, regs, features)
        canonical = bits(va, 63, 56) in (0, 0xFF) and bits(va, 63, 56) & 1 == bit(va, 55)
        if not canonical or not s1_enabled(regime, regs):
            return TlbLookup(walk(), False, None, self)
        entry = self.lookup(kind, regime, vmid, asid, va)
        if entry is not None:
            res = run_at(op, va, regs=entry.regs, mem=_Snapshot(dict(entry.words), mem),
                         features=entry.features, cur_el=cur_el, pan=pan_now)
            note = f"TLB hit: {entry}; the tables in memory are not read"
            tr = dataclasses.replace(res.trace, notes=(note, *res.trace.notes))
            tlb = self._touch((entry,))
            return TlbLookup(dataclasses.replace(res, trace=tr), True, entry, tlb, (entry,))
        ses = _Session(self, regime, vmid, asid, regs, f"AT {op.name} {va:#x}")
        res = run_at(op, va, regs=regs, mem=mem, features=features, cur_el=cur_el,
                     pan=pan_now, cache=ses)
        ses.fill_s1_walks(res, va, features)
        new = _leaf_entry(res, ses, kind, asid, va, regs, features)
        if ses.notes:
            tr = dataclasses.replace(res.trace, notes=(*ses.notes, *res.trace.notes))
            res = dataclasses.replace(res, trace=tr)
        tlb, evicted = self._touch(tuple(ses.used))._allocate(tuple(ses.fills), ses.seq)
        return TlbLookup(res, False, new, tlb, tuple(ses.used), tuple(ses.fills), evicted)

    def _touch(self, used: tuple[TlbEntry, ...]) -> Tlb:
        """LRU: the used entries move to the end of the replacement order."""
        if self.policy.replacement is not Replacement.LRU or not used:
            return self
        ids = {id(e) for e in used}
        kept = tuple(e for e in self.entries if id(e) not in ids)
        moved = tuple(e for e in self.entries if id(e) in ids)
        return dataclasses.replace(self, entries=kept + moved)

    def _allocate(self, new: tuple[TlbEntry, ...], next_seq: int
                  ) -> tuple[Tlb, tuple[TlbEntry, ...]]:
        entries = self.entries + new
        cap = self.policy.capacity
        evicted: tuple[TlbEntry, ...] = ()
        if cap is not None and len(entries) > cap:
            evicted, entries = entries[:len(entries) - cap], entries[len(entries) - cap:]
        return dataclasses.replace(self, entries=entries, next_seq=next_seq), evicted

    def tlbi(self, op: TlbiOp, *, regs: SysRegs, va: int | None = None,
             asid: int | None = None, ipa: int | None = None,
             features: FeatureSet | None = None, cur_el: int = 2, rt: int = 1) -> TlbiResult:
        """Execute ``TLBI <op>, Xt`` at ``cur_el`` with ``regs`` (which give the current
        VMID and HCR_EL2) and complete it (as the DSB after it would): the TLB without the
        entries it covers.  ``va``/``asid``/``ipa`` are the operands the op takes from Xt
        (an ASID field not given reads as 0).  How it executes is :func:`tlbi_route`'s
        answer: a trapped or UNDEFINED TLBI's result carries the exception, and the TLB is
        unchanged."""
        features = features if features is not None else FeatureSet.all()
        op.check_operands(va=va, asid=asid, ipa=ipa)
        route = tlbi_route(op, regs=regs, cur_el=cur_el, rt=rt)
        if route.exception is not None:
            return TlbiResult(self, (), route.exception, why=route.why)
        hits = _tlbi_matcher(op, regs, features, cur_el, va, asid or 0, ipa)
        removed = tuple(e for e in self.entries if hits(e))
        kept = tuple(e for e in self.entries if not hits(e))
        return TlbiResult(dataclasses.replace(self, entries=kept), removed, None,
                          route.broadcast, op.describe())

    def __len__(self) -> int:
        return len(self.entries)

    def __str__(self) -> str:
        if not self.entries:
            return "TLB: empty"
        return "\n".join(["TLB:", *(f"  {e}" for e in self.entries)])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in _COLUMNS)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in entry_row(e))
                       + "</tr>" for e in self.entries)
        return f"<table><tr>{head}</tr>{rows}</table>"


@dataclass(frozen=True, slots=True)
class TlbiRoute:
    """How a TLBI executes: the exception it takes instead (trapped or UNDEFINED), or
    whether it is broadcast to the Inner Shareable domain."""

    exception: TakenException | None
    broadcast: bool
    why: str


def tlbi_route(op: TlbiOp, *, regs: SysRegs, cur_el: int = 2, rt: int = 1) -> TlbiRoute:
    """Where ``TLBI <op>, X<rt>`` executed at ``cur_el`` goes (C5.5, D24.2 HCR_EL2).

    At EL1 an EL2 instruction is UNDEFINED, or trapped to EL2 with HCR_EL2.NV=1 (EC 0x18,
    I_XMYBL); an EL1 instruction traps with HCR_EL2.TTLB=1 (its IS form also with
    HCR_EL2.TTLBIS=1, FEAT_EVT) and is broadcast with HCR_EL2.FB=1.  ``tools.difftest
    --tlbi`` compares these rules with QEMU."""
    if cur_el not in (1, 2):
        raise AtlabError(f"TLBI is modelled at EL1 and EL2, not EL{cur_el}")
    info = op.info
    if cur_el == 2:
        return TlbiRoute(None, info.shareable, "executed at EL2")
    hcr = regs["HCR_EL2"]
    # ISS.Rt: the register named in the instruction; the forms without an operand are
    # encoded with Rt=0b11111 (XZR).
    enc = (info.op1, 8, info.crm, info.op2, rt if op.operands else 31)
    if info.is_el2_op:
        if bit(hcr, 42):  # HCR_EL2.NV
            return TlbiRoute(trapped_sys(*enc, f"{op} at EL1 with HCR_EL2.NV=1 traps to EL2"),
                             False, "trapped (NV)")
        return TlbiRoute(undefined(1, f"{op} is an EL2 instruction"), False,
                         "UNDEFINED at EL1")
    for n, name, applies in ((25, "TTLB", True), (54, "TTLBIS", info.shareable)):
        if applies and bit(hcr, n):
            return TlbiRoute(trapped_sys(*enc, f"{op} at EL1 with HCR_EL2.{name}=1 traps to "
                                         "EL2"), False, f"trapped ({name})")
    broadcast = info.shareable or bool(bit(hcr, 9))  # HCR_EL2.FB
    return TlbiRoute(None, broadcast, "executed at EL1" + (" (broadcast)" if broadcast else ""))


_COLUMNS = ("#", "kind", "regime", "VMID", "ASID", "input", "size", "level", "output")


def entry_row(e: TlbEntry) -> tuple[str, ...]:
    """One entry as the table columns :data:`TLB_COLUMNS` name."""
    asid = "-"
    if e.kind.stage1 and e.regime.has_unprivileged:
        asid = "global" if e.asid is None else str(e.asid)
    return (str(e.seq), e.kind.value, str(e.regime), "-" if e.vmid is None else str(e.vmid),
            asid, f"{'VA' if e.kind.stage1 else 'IPA'} {e.ia:#x}", size_text(e.size),
            str(e.level), e.output)


#: The column names of :func:`entry_row`.
TLB_COLUMNS = _COLUMNS


def _tlbi_matcher(op: TlbiOp, regs: SysRegs, features: FeatureSet, cur_el: int,
                  va: int | None, asid: int, ipa: int | None) -> Callable[[TlbEntry], bool]:
    """The predicate "this entry is in the scope of the TLBI" (C5.5 and D8.17)."""
    info = op.info
    scope = info.scope
    e2h, tge = hcr_e2h_tge(regs, features)
    # An EL1 TLBI executed at EL2 with {E2H,TGE}={1,1} applies to the EL2&0 regime.
    e1 = Regime.EL20 if cur_el == 2 and e2h and tge else Regime.EL10
    vmid = _vmid(Regime.EL10, regs)
    s1_kinds = (EntryKind.S1, EntryKind.S12, EntryKind.S1_WALK)
    s2_kinds = (EntryKind.S2, EntryKind.S2_WALK)
    last = info.last_level

    def kind_ok(e: TlbEntry, kinds: tuple[EntryKind, ...]) -> bool:
        return e.kind in kinds and not (last and not e.kind.is_leaf)

    def asid_ok(e: TlbEntry) -> bool:  # TLBIMatch(): a global entry matches any ASID
        return e.is_global or e.asid == asid

    def in_e1(e: TlbEntry) -> bool:
        return e.regime is e1 and (e1 is not Regime.EL10 or e.vmid == vmid)

    def hit(e: TlbEntry) -> bool:
        if scope is _S.VMALL:
            return in_e1(e) and kind_ok(e, s1_kinds)
        if scope is _S.VA:
            assert va is not None
            return in_e1(e) and kind_ok(e, s1_kinds) and e.covers_tlbi(va) and asid_ok(e)
        if scope is _S.VAA:
            assert va is not None
            return in_e1(e) and kind_ok(e, s1_kinds) and e.covers_tlbi(va)
        if scope is _S.ASID:
            return in_e1(e) and kind_ok(e, s1_kinds) and not e.is_global and e.asid == asid
        if scope is _S.VMALLS12:
            return e.regime is Regime.EL10 and e.vmid == vmid
        if scope is _S.ALL_E1:
            return e.regime is Regime.EL10
        if scope is _S.IPA:
            assert ipa is not None
            return (e.vmid == vmid and kind_ok(e, s2_kinds)
                    and e.ia <= (ipa & mask(55, 0)) < e.ia + e.size)
        el2 = Regime.EL20 if e2h else Regime.EL2
        if scope is _S.VA_E2:
            assert va is not None
            return (e.regime is el2 and kind_ok(e, s1_kinds) and e.covers_tlbi(va)
                    and (el2 is Regime.EL2 or asid_ok(e)))
        return e.regime in (Regime.EL2, Regime.EL20)  # ALL_E2

    return hit


def _leaf_entry(res: AtResult, ses: _Session, kind: EntryKind, asid: int | None, va: int,
                regs: SysRegs, features: FeatureSet) -> TlbEntry | None:
    """The leaf a walk allocates, or None (a fault other than Permission, no leaf)."""
    if res.par is None or (res.fault is not None and res.fault.kind is not FaultKind.PERMISSION):
        return None
    leaf = _leaf(res.trace.steps)
    if leaf is None:
        return None
    size = 1 << leaf.ia_lo
    if kind is EntryKind.S12:
        s2_leaf = _leaf(res.trace.final_s2)
        if s2_leaf is None:
            return None
        size = min(size, 1 << s2_leaf.ia_lo)
    base = va & ~(size - 1)
    oa = None
    if not res.par.f:
        oa = (res.par.pa | (va & 0xFFF)) - (va - base)
    ng = bool(bit(leaf.raw, 11)) and ses.regime.has_unprivileged
    words = dict(ses.supplied)
    words.update(_words((*res.trace.steps, *res.trace.final_s2)))
    return ses.fill(kind=kind, regime=ses.regime, vmid=ses.vmid, asid=asid if ng else None,
                    ia=base, size=size, level=leaf.level, oa=oa,
                    words=tuple(sorted(words.items())), regs=regs, features=features,
                    walk=res.trace)
