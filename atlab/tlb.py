"""A TLB model, TLBI, and the shadow stage 2 as a TLB of L1's stage 2.

A TLB caches the *result* of a walk, tagged the way the hardware tags it (Arm ARM D8, the
"Translation Lookaside Buffers" and "TLB maintenance" sections; C5.5 TLBI instructions):

============  =======================================================================
tag           meaning
============  =======================================================================
kind          ``S1`` (stage 1 only: VA -> IPA or PA) or ``S12`` (combined: VA -> PA)
regime        EL1&0, EL2&0, EL2 or EL3 (``TranslationRegime()``)
VMID          EL1&0 entries only: VTTBR_EL2.VMID (16 bits when VTCR_EL2.VS=1)
ASID          non-global entries (leaf nG=1) of EL1&0 and EL2&0: the ASID of TTBR0 or
              TTBR1 (TCR_ELx.A1), 16 bits when TCR_ELx.AS=1; ``None`` = global
VA range      the block or page the leaf maps (``size`` bytes; for a combined entry the
              smaller of the stage 1 and stage 2 leaf sizes)
============  =======================================================================

Only walks that reached a valid leaf are cached (a success, or a Permission fault: the
entry is valid and the permission check is done on every lookup).  Translation, Address
size and Access flag faults are never cached.  Nothing ever updates an entry when the tables
in memory change: only a TLBI removes it.  That is what makes an entry *stale*.

>>> from atlab import AtOp, PhysMem, SysRegs
>>> regs = SysRegs.from_mapping({"HCR_EL2": "0x80000000", "SCTLR_EL1": "0x30d00801",
...     "TCR_EL1": "0x500803510", "TTBR0_EL1": "0x40200000", "MAIR_EL1": "0xff"})
>>> mem = PhysMem({0x40200120: 0x40201003, 0x40201688: 0x40202003,
...                0x40202598: 0x40203003, 0x40203C48: 0x45678703})
>>> look = Tlb().translate(AtOp.S1E1R, 0x123456789ABC, regs=regs, mem=mem)
>>> look.hit, hex(look.par.pa)
(False, '0x45678000')
>>> mem.poke(0x40203C48, 0x4ABCD703)  # the page now maps elsewhere; no TLBI
>>> stale = look.tlb.translate(AtOp.S1E1R, 0x123456789ABC, regs=regs, mem=mem)
>>> stale.hit, hex(stale.par.pa)
(True, '0x45678000')
>>> after = stale.tlb.tlbi(TlbiOp.VAE1, regs=regs, va=0x123456789000).tlb
>>> hex(after.translate(AtOp.S1E1R, 0x123456789ABC, regs=regs, mem=mem).par.pa)
'0x4abcd000'
"""

from __future__ import annotations

import dataclasses
import enum
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from atlab.at import AtResult, run_at, s1_enabled
from atlab.bits import bit, bits, mask
from atlab.errors import AtlabError
from atlab.faults import FaultKind
from atlab.features import FeatureSet
from atlab.memory import PhysMem, byteswap64
from atlab.nv.model import S2_ATTR_BITS, L0Event, NvSystem, page_of
from atlab.par import Par
from atlab.regime import (
    AtOp,
    Disposition,
    Regime,
    at_disposition,
    compute_translation_regime,
    hcr_e2h_tge,
)
from atlab.sysregs import SysRegs
from atlab.trace import Trace, WalkStep
from atlab.walk_s1 import Granule, level_lsb
from atlab.walk_s2 import S2WalkInfo, setup_s2_walk, stage2_enabled, walk_s2

__all__ = [
    "EntryKind",
    "ShadowCheck",
    "Tlb",
    "TlbEntry",
    "TlbLookup",
    "TlbiOp",
    "TlbiResult",
    "l0_handle_tlbi",
    "shadow_check",
    "tlb_context",
]

_LEAF_KINDS = ("page", "block")


class EntryKind(enum.Enum):
    S1 = "stage 1"  # VA -> stage 1 output (IPA under stage 2)
    S12 = "stage 1+2"  # VA -> PA, combined


class TlbiOp(enum.Enum):
    """The TLB maintenance operations modelled (C5.5), with what they invalidate."""

    VMALLE1 = "EL1&0 stage 1 entries of the current VMID, every ASID"
    VAE1 = "EL1&0 entries of the current VMID for a VA: global ones and the given ASID's"
    VAAE1 = "EL1&0 entries of the current VMID for a VA, every ASID"
    ASIDE1 = "EL1&0 non-global entries of the current VMID with the given ASID"
    ALLE1 = "every EL1&0 entry, every VMID"
    IPAS2E1 = "stage 2 only entries of the current VMID for an IPA (not combined ones)"
    VMALLS12E1 = "EL1&0 stage 1 and stage 2 entries of the current VMID"
    VAE2 = "EL2 (or EL2&0 with E2H=1) entries for a VA"
    ALLE2 = "every EL2 and EL2&0 entry"

    def __str__(self) -> str:
        return f"TLBI {self.name}"


@dataclass(frozen=True, slots=True)
class TlbEntry:
    """One cached translation, tagged like hardware.  ``oa`` is the output address of the
    first byte (None when the entry was filled by a walk that ended in a Permission fault).
    ``words`` are the descriptors the walk read, ``regs`` the registers it used: a hit
    replays that walk, so the PAR is computed by the same code as :func:`atlab.run_at`."""

    kind: EntryKind
    regime: Regime
    vmid: int | None
    asid: int | None
    va: int
    size: int
    level: int
    oa: int | None
    words: tuple[tuple[int, int], ...]
    regs: SysRegs
    features: FeatureSet

    @property
    def is_global(self) -> bool:
        return self.asid is None

    def covers(self, va: int) -> bool:
        """The entry translates ``va`` (a lookup compares the whole VA)."""
        return self.va <= va < self.va + self.size

    def covers_tlbi(self, va: int) -> bool:
        """A TLBI by VA matches (the operand carries VA[55:12]; the top byte is ignored)."""
        lo = self.va & mask(55, 0)
        return lo <= (va & mask(55, 0)) < lo + self.size

    def __str__(self) -> str:
        tags = [self.kind.value, str(self.regime)]
        if self.vmid is not None:
            tags.append(f"VMID={self.vmid}")
        tags.append("global" if self.asid is None else f"ASID={self.asid}")
        out = "-" if self.oa is None else f"{self.oa:#x}"
        return (f"[{' '.join(tags)}] VA {self.va:#x} +{_size(self.size)} (S1 L{self.level})"
                f" -> {out}")


@dataclass(frozen=True, slots=True)
class TlbLookup:
    """A translation through the TLB: the AT result, whether the TLB answered it, the entry
    that answered or was filled (None: not cacheable, or the TLB was bypassed), and the TLB
    after the lookup."""

    result: AtResult
    hit: bool
    entry: TlbEntry | None
    tlb: Tlb

    @property
    def par(self) -> Par | None:
        return self.result.par

    def __str__(self) -> str:
        how = "hit" if self.hit else ("miss, filled" if self.entry is not None else "miss")
        return f"TLB {how}: {self.result}"


@dataclass(frozen=True, slots=True)
class TlbiResult:
    tlb: Tlb
    removed: tuple[TlbEntry, ...]


def _size(size: int) -> str:
    for unit, shift in (("GB", 30), ("MB", 20), ("KB", 10)):
        if size >= 1 << shift:
            return f"{size >> shift}{unit}"
    return f"{size}B"


def tlb_context(op: AtOp, regs: SysRegs, features: FeatureSet | None = None
                ) -> tuple[EntryKind, Regime, int | None, int | None]:
    """The tags a lookup for ``op`` uses: (kind, regime, VMID, current ASID)."""
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


def _e1_regime(regs: SysRegs, features: FeatureSet) -> Regime:
    """The regime a TLBI ...E1 executed at EL2 acts on: EL2&0 when {E2H,TGE}={1,1}."""
    e2h, tge = hcr_e2h_tge(regs, features)
    return Regime.EL20 if e2h and tge else Regime.EL10


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


def _walk_reads(trace: Trace) -> Iterable[WalkStep]:
    for step in trace.steps:
        yield from step.s2
        if step.kind != "not read" and not step.is_write:
            yield step
    yield from trace.final_s2


def _leaf(steps: Iterable[WalkStep]) -> WalkStep | None:
    found = None
    for s in steps:
        if s.kind in _LEAF_KINDS and not s.is_write:
            found = s
    return found


@dataclass(frozen=True, slots=True)
class Tlb:
    """An immutable TLB: every operation returns the new TLB.

    # SIMPLIFIED: unlimited capacity, no replacement; one entry per block or page (the
    # Contiguous hint is ignored); no walk caches and no stage 2 only entries (so
    # TLBI IPAS2E1 finds nothing to remove, which the architecture allows: it is not
    # required to remove combined entries).
    """

    entries: tuple[TlbEntry, ...] = ()

    def lookup(self, kind: EntryKind, regime: Regime, vmid: int | None, asid: int | None,
               va: int) -> TlbEntry | None:
        """The entry that translates ``va`` with these tags, if any."""
        for e in self.entries:
            if (e.kind is kind and e.regime is regime and e.vmid == vmid
                    and (e.asid is None or e.asid == asid) and e.covers(va)):
                return e
        return None

    def translate(self, op: AtOp, va: int, *, regs: SysRegs, mem: PhysMem,
                  features: FeatureSet | None = None, cur_el: int = 2,
                  pan: int | None = None) -> TlbLookup:
        """``AT <op>`` looked up in the TLB first: a hit answers from the entry (the current
        tables are not read); a miss walks with :func:`atlab.run_at` and fills an entry
        when the walk reached a valid leaf."""
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
        # SIMPLIFIED: a VA whose top byte is not the sign extension of bit 55 (a TBI tag)
        # bypasses the TLB; translations with stage 1 disabled are not cached.
        canonical = bits(va, 63, 56) in (0, 0xFF) and bits(va, 63, 56) & 1 == bit(va, 55)
        if not canonical or not s1_enabled(regime, regs):
            return TlbLookup(walk(), False, None, self)
        entry = self.lookup(kind, regime, vmid, asid, va)
        if entry is not None:
            res = run_at(op, va, regs=entry.regs, mem=_Snapshot(dict(entry.words), mem),
                         features=entry.features, cur_el=cur_el, pan=pan_now)
            note = f"TLB hit: {entry}; the tables in memory are not read"
            tr = dataclasses.replace(res.trace, notes=(note, *res.trace.notes))
            return TlbLookup(dataclasses.replace(res, trace=tr), True, entry, self)
        res = walk()
        new = _entry_from_walk(res, kind, regime, vmid, asid, va, regs, mem, features)
        if new is None:
            return TlbLookup(res, False, None, self)
        return TlbLookup(res, False, new, Tlb((*self.entries, new)))

    def tlbi(self, op: TlbiOp, *, regs: SysRegs, va: int | None = None,
             asid: int | None = None, ipa: int | None = None,
             features: FeatureSet | None = None) -> TlbiResult:
        """Execute ``TLBI <op>`` at EL2 with ``regs`` (which give the current VMID and
        HCR_EL2.{E2H,TGE}); ``va``/``asid``/``ipa`` are the operands the op takes (the
        ASID field of the VAE1/ASIDE1 operand reads as 0 when ``asid`` is not given)."""
        features = features if features is not None else FeatureSet.all()
        need = {TlbiOp.VAE1: ("va",), TlbiOp.VAAE1: ("va",), TlbiOp.IPAS2E1: ("ipa",),
                TlbiOp.VAE2: ("va",)}.get(op, ())
        given = {"va": va, "ipa": ipa}
        for name in need:
            if given[name] is None:
                raise AtlabError(f"{op} needs the operand {name}")
        if op in (TlbiOp.VAE1, TlbiOp.ASIDE1) and asid is None:
            asid = 0
        e1 = _e1_regime(regs, features)
        vmid = _vmid(Regime.EL10, regs)

        def in_e1(e: TlbEntry) -> bool:
            return e.regime is e1 and (e1 is not Regime.EL10 or e.vmid == vmid)

        def hit(e: TlbEntry) -> bool:
            if op in (TlbiOp.VMALLE1, TlbiOp.VMALLS12E1):
                return in_e1(e)
            if op is TlbiOp.VAE1:
                assert va is not None
                return in_e1(e) and e.covers_tlbi(va) and (e.is_global or e.asid == asid)
            if op is TlbiOp.VAAE1:
                assert va is not None
                return in_e1(e) and e.covers_tlbi(va)
            if op is TlbiOp.ASIDE1:
                return in_e1(e) and not e.is_global and e.asid == asid
            if op is TlbiOp.ALLE1:
                return e.regime is Regime.EL10
            if op is TlbiOp.IPAS2E1:
                return False  # no stage 2 only entries are modelled
            el2 = e.regime in (Regime.EL2, Regime.EL20)
            if op is TlbiOp.VAE2:
                assert va is not None
                return el2 and e.covers_tlbi(va) and (asid is None or e.is_global
                                                       or e.asid == asid)
            return el2  # ALLE2

        removed = tuple(e for e in self.entries if hit(e))
        kept = tuple(e for e in self.entries if not hit(e))
        return TlbiResult(Tlb(kept), removed)

    def __len__(self) -> int:
        return len(self.entries)

    def __str__(self) -> str:
        if not self.entries:
            return "TLB: empty"
        return "\n".join(["TLB:", *(f"  {e}" for e in self.entries)])

    def _repr_html_(self) -> str:
        head = ("<tr><th>kind</th><th>regime</th><th>VMID</th><th>ASID</th><th>VA</th>"
                "<th>size</th><th>output</th></tr>")
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
                e.kind.value, str(e.regime), "-" if e.vmid is None else str(e.vmid),
                "global" if e.asid is None else str(e.asid), f"{e.va:#x}", _size(e.size),
                "-" if e.oa is None else f"{e.oa:#x}")) + "</tr>"
            for e in self.entries)
        return f"<table>{head}{rows}</table>"


def _entry_from_walk(res: AtResult, kind: EntryKind, regime: Regime, vmid: int | None,
                     asid: int | None, va: int, regs: SysRegs, mem: PhysMem,
                     features: FeatureSet) -> TlbEntry | None:
    """The entry a walk allocates, or None (a fault other than Permission, no leaf)."""
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
    ng = bool(bit(leaf.raw, 11)) and regime.has_unprivileged
    words = tuple(sorted({s.desc_pa: mem.peek(s.desc_pa) for s in _walk_reads(res.trace)}
                         .items()))
    return TlbEntry(kind, regime, vmid, asid if ng else None, base, size, leaf.level, oa,
                    words, regs, features)


# --- the shadow stage 2: L0's TLB of L1's stage 2 ------------------------------------------------

@dataclass(frozen=True, slots=True)
class ShadowCheck:
    """One shadow stage 2 entry against what L1's stage 2 (then L0's) says now."""

    l2_ipa: int
    shadow_pa: int
    now_pa: int | None  # None: L1's stage 2 no longer maps the page (or it is unbacked)
    why: str

    @property
    def stale(self) -> bool:
        return self.now_pa != self.shadow_pa

    def __str__(self) -> str:
        now = "unmapped" if self.now_pa is None else f"{self.now_pa:#x}"
        state = "STALE" if self.stale else "ok"
        return (f"shadow L2 IPA {self.l2_ipa:#x} -> PA {self.shadow_pa:#x}; L1's stage 2 now "
                f"gives {now} ({self.why}): {state}")


def shadow_check(system: NvSystem) -> list[ShadowCheck]:
    """Compare every shadow stage 2 entry with a fresh walk of L1's stage 2 (read in L1's
    IPA space, without faulting anything in) followed by L0's stage 2."""
    out = []
    info = setup_s2_walk(system.vregs, system.features)
    flat = system.flat_l1_memory()
    for l2_ipa, entry in sorted(system.shadow.items()):
        pa = page_of(entry & ~S2_ATTR_BITS)  # an entry may carry L1's attribute bits
        if not isinstance(info, S2WalkInfo):
            out.append(ShadowCheck(l2_ipa, pa, None, f"L1's stage 2 is misconfigured: {info}"))
            continue
        res = walk_s2(info, flat, l2_ipa, system.features, write=False, s1ptw=True,
                      for_at=False)
        if res.fault is not None:
            out.append(ShadowCheck(l2_ipa, pa, None, f"L1's stage 2: {res.fault}"))
            continue
        backing = system.backing.get(page_of(res.pa))
        why = f"L2 IPA -> L1 IPA {page_of(res.pa):#x}"
        out.append(ShadowCheck(l2_ipa, pa, backing, why if backing is not None
                               else why + ", which L0 has not backed"))
    return out


def _max_block(granule: Granule) -> int:
    """The largest block a stage 2 of this granule can map (level 1 for 4KB, else level 2)."""
    return 1 << level_lsb(1 if granule is Granule.K4 else 2, granule)


def l0_handle_tlbi(system: NvSystem, op: TlbiOp, *, ipa: int | None = None) -> tuple[int, ...]:
    """L0's reaction to a TLBI that L1 executed at vEL2 (trapped: HCR_EL2.NV=1 traps the
    EL2 TLBIs, and L0 sets HCR_EL2.TTLB for the EL1 ones).  The shadow stage 2 is a TLB of
    L1's stage 2, so L0 drops the shadow entries the TLBI covers; the next stage 2 abort on
    them makes L0 walk L1's stage 2 again.  Returns the L2 IPA pages removed.

    - IPAS2E1: without a TTL hint L0 cannot know the size of the entry L1 invalidates, so it
      unmaps the range of the largest block L1's stage 2 granule allows around ``ipa``.
    - VMALLS12E1, ALLE1: the whole shadow stage 2.
    - Stage 1 only TLBIs (VMALLE1, VAE1, ...) leave the shadow stage 2 alone.
    """
    # SIMPLIFIED: one shadow stage 2 (one L1 VMID); the hardware TLB entries L0 must also
    # invalidate for the shadow's VMID are not modelled here (see Tlb.tlbi).
    if op is TlbiOp.IPAS2E1:
        if ipa is None:
            raise AtlabError(f"{op} needs the operand ipa")
        info = setup_s2_walk(system.vregs, system.features)
        granule = info.granule if isinstance(info, S2WalkInfo) else Granule.K4
        size = _max_block(granule)
        lo = ipa & ~(size - 1)
        gone = tuple(p for p in sorted(system.shadow) if lo <= p < lo + size)
        why = f"{op} {ipa:#x}: L0 unmaps the shadow range {lo:#x}+{_size(size)}"
    elif op in (TlbiOp.VMALLS12E1, TlbiOp.ALLE1):
        gone = tuple(sorted(system.shadow))
        why = f"{op}: L0 unmaps the whole shadow stage 2"
    else:
        return ()
    for page in gone:
        del system.shadow[page]
    system.events.append(L0Event(f"{why} ({len(gone)} entries)"))
    return gone
