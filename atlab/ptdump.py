"""What the tables really say: the mapped ranges of a regime or a stage 2, like Linux's
``/sys/kernel/debug/kernel_page_tables`` (arch/arm64/mm/ptdump.c).

Adjacent leaves with the same level, kind and attributes whose output addresses follow on are
coalesced into one :class:`MappedRange`.  The dump reads only the tables that exist and only
their non-zero words (``PhysMem.iter_range``), so its cost grows with the number of mapped
entries, not with the size of the address space.

Each range's rights come from the model's permission phase (:func:`~atlab.walk_s1.s1_perm_bits`,
:func:`~atlab.perms.compute_s1_permissions`) for the regime's privileged EL and EL0: with
FEAT_S1PIE (TCR2_ELx.PIE) the ``ap`` column is the leaf's PIIndex (``PI 0b0101``) and the
rights are the PIR_ELx/PIRE0_ELx entries it selects; with FEAT_S1POE the ``PO 0b010`` flag is
the POIndex whose POR_ELx/POR_EL0 overlay the rights include; with FEAT_AIE AttrIndx[3] (bit
59) selects MAIR2_ELx; with FEAT_S2PIE (and FEAT_S2POE) the stage 2 rights come from
S2PIR_EL2 (and the S2POR_EL1 overlay).

>>> from atlab.builder import S1Builder
>>> b = S1Builder(tables=(0x40200000, 0x40300000))
>>> b.map(0x400000, 0x80000000, 0x400000, ap="EL1 RW / EL0 RW", uxn=True)
>>> b.map(0x800000, 0x90000000, 0x3000, ap="EL1 RW")
>>> d = ptdump(b.regs(), b.memory())
>>> print(d)
EL1&0 TTBR0 (TTBR0_EL1), 4KB granule, 48-bit VA, start level 0
0x0000000000400000-0x0000000000800000 4M L2 BLK -> 0x80000000 EL1 RW / EL0 RW UXN AF ...
0x0000000000800000-0x0000000000803000 12K L3 PTE -> 0x90000000 EL1 RW AF ... EL0:--X W+X
>>> r = d.ranges[0]; r.memtype, r.sh, r.rights
('Normal iWB oWB', 'ISH', 'EL1:RW- EL0:RW-')
>>> [hex(r.start) for r in d.wx()]
['0x800000']
"""

from __future__ import annotations

import html
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from atlab.attrs import SH_NAMES, decode_mair_attr, mair_attr
from atlab.bits import bit, bits, mask
from atlab.descriptors import pi_index, po_index
from atlab.errors import AtlabError
from atlab.faults import Fault
from atlab.features import Feature, FeatureSet
from atlab.granule import FINAL_LEVEL, Granule, block_desc_supported, level_lsb
from atlab.perms import compute_s1_permissions
from atlab.regime import Regime
from atlab.sysregs import SysRegs
from atlab.walk_s1 import s1_perm_bits, setup_s1_walk
from atlab.walk_s2 import S2PI_RW, s2_pi_index, setup_s2_walk, stage2_enabled

__all__ = ["MAX_DESCRIPTORS", "MappedRange", "PtDump", "WordSource", "ptdump", "ptdump_s2"]


class WordSource(Protocol):
    """Memory as ptdump reads it: :class:`~atlab.memory.PhysMem`, or a builder."""

    def iter_range(self, start: int, end: int) -> Iterator[tuple[int, int]]: ...


#: A dump reads at most this many descriptors (tables shared by many entries make the tree
#: they describe exponentially large), lists at most ``MAX_RANGES`` ranges and keeps at most
#: ``MAX_NOTES`` notes; a cut dump says so in a note.
MAX_DESCRIPTORS = 1 << 20
MAX_RANGES = 1 << 14
MAX_NOTES = 20

#: Where a table's IPA is in physical memory (None: not mapped).
IpaToPa = Callable[[int], "int | None"]

_S2_MEMATTR_NAMES = {0b0000: "Device-nGnRnE", 0b0001: "Device-nGnRE", 0b0010: "Device-nGRE",
                     0b0011: "Device-GRE"}
_S2_CACHE = {0b01: "NC", 0b10: "WT", 0b11: "WB"}
_AP_TEXT = {0b00: "EL1 RW", 0b01: "EL1 RW / EL0 RW", 0b10: "EL1 RO", 0b11: "EL1 RO / EL0 RO"}
_S2AP_TEXT = {0b00: "none", 0b01: "RO", 0b10: "WO", 0b11: "RW"}


def human_size(size: int) -> str:
    """``4K``, ``2M``, ``1G``... (the largest unit that divides ``size``).

    >>> human_size(0x200000), human_size(0x3000), human_size(1 << 40)
    ('2M', '12K', '1T')
    """
    for shift, unit in ((50, "P"), (40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if size >= 1 << shift and not size & ((1 << shift) - 1):
            return f"{size >> shift}{unit}"
    return f"{size}B"


@dataclass(frozen=True, slots=True)
class MappedRange:
    """One coalesced run of leaves: [start, end) -> [oa, oa + end - start)."""

    start: int
    end: int
    oa: int
    level: int
    kind: str  # "BLK" or "PTE"
    contiguous: bool
    entries: int
    ap: str  # AP or S2AP, by name
    flags: tuple[str, ...]  # UXN PXN XN AF nG DBM, XN=.. for stage 2
    memtype: str
    sh: str
    rights: str  # effective rights per EL, e.g. "EL1:RW- EL0:---"
    wx: bool  # writable and executable at some EL
    attrs: int  # the descriptor bits other than the OA and the type
    #: FEAT_S1PIE/S2PIE: the leaf's PIIndex (None when the permissions are direct); the
    #: ``ap`` column then reads ``PI 0b0101`` and ``rights`` are the indirect permissions.
    pi_index: int | None = None
    #: FEAT_S1POE: the leaf's POIndex (None without overlays); ``rights`` include the overlay.
    po_index: int | None = None
    #: AttrIndx (0-15: bit 59 is AttrIndx[3] with FEAT_AIE; MemAttr for stage 2).
    attr_index: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        kind = self.kind + (" CON" if self.contiguous else "    ")
        flags = " ".join(self.flags)
        return (f"0x{self.start:016x}-0x{self.end:016x} {human_size(self.size):>5} "
                f"L{self.level} {kind} -> {self.oa:#x}  {self.ap:<15}  {flags:<12} "
                f"{self.memtype} {self.sh}  {self.rights}" + ("  W+X" if self.wx else ""))


@dataclass(frozen=True, slots=True)
class PtDump:
    """The coalesced mapped ranges of one table tree, with notes on what could not be read."""

    title: str
    stage: int
    ranges: tuple[MappedRange, ...]
    entries: int  # leaf descriptors read
    notes: tuple[str, ...] = ()
    read: int = 0  # descriptors read (tables and leaves), at most the dump's budget

    def wx(self) -> list[MappedRange]:
        """Ranges both writable and executable at some EL (Linux's ``ptdump_check_wx()``)."""
        return [r for r in self.ranges if r.wx]

    def __str__(self) -> str:
        lines = [self.title, *(str(r) for r in self.ranges)]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = ("<tr><th>VA range</th><th>size</th><th>level</th><th>kind</th><th>OA</th>"
                "<th>AP</th><th>flags</th><th>memory</th><th>SH</th><th>rights</th></tr>"
                if self.stage == 1 else
                "<tr><th>IPA range</th><th>size</th><th>level</th><th>kind</th><th>PA</th>"
                "<th>S2AP</th><th>flags</th><th>MemAttr</th><th>SH</th><th>rights</th></tr>")
        rows = []
        for r in self.ranges:
            style = ' style="background:#fdd"' if r.wx else ""
            cells = (f"0x{r.start:016x}-0x{r.end:016x}", human_size(r.size), f"L{r.level}",
                     r.kind + (" CON" if r.contiguous else ""), f"{r.oa:#x}", r.ap,
                     " ".join(r.flags), r.memtype, r.sh, r.rights + (" W+X" if r.wx else ""))
            rows.append(f"<tr{style}>" + "".join(f"<td><code>{html.escape(c)}</code></td>"
                                                 for c in cells) + "</tr>")
        notes = "".join(f"<p>note: {html.escape(n)}</p>" for n in self.notes)
        return (f"<p><b>{html.escape(self.title)}</b> ({self.entries} leaf entries)</p>"
                f"<table>{head}{''.join(rows)}</table>{notes}")


# --- the traversal, shared by both stages ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Geom:
    granule: Granule
    sl: int
    ia_bits: int
    baddr: int
    ds: bool
    lpa_64k: bool
    hpd: bool
    va_base: int


def _oa_getter(g: _Geom) -> tuple[int, int]:
    """(mask of the OA bits kept in place, OA bits that are elsewhere: 1 for DS, 2 for LPA)."""
    if g.lpa_64k:
        return mask(47, 0), 2
    if g.ds:
        return mask(49, 0), 1
    return mask(47, 0), 0


def _traverse(g: _Geom, mem: WordSource, features: FeatureSet,
              table_pa: IpaToPa | None = None, limit: int = MAX_DESCRIPTORS
              ) -> tuple[list[tuple[int, int, int, int, int, int, int]], int, list[str], int]:
    """Coalesced runs ``(start, end, oa, level, attrs, tblbits, entries)``, the leaf count,
    the notes and the number of descriptors read (at most ``limit``).

    ``attrs`` is the descriptor without its OA bits (Contiguous and type bits included);
    ``tblbits`` the OR of bits [62:59] of the table descriptors above (0 when HPD=1)."""
    gran = g.granule
    block_ok = {lvl: block_desc_supported(gran, lvl, g.ds, features) for lvl in range(-1, 3)}
    keep, extra = _oa_getter(g)
    runs: list[tuple[int, int, int, int, int, int, int]] = []
    notes: list[str] = []
    more_notes = 0
    count = 0
    budget = max(limit, 0)  # descriptors the dump may still read
    on_path: set[int] = set()  # the PAs of the tables from the root to the current one

    def note(text: str) -> None:
        nonlocal more_notes
        if len(notes) < MAX_NOTES:
            notes.append(text)
        else:
            more_notes += 1
    # the current run
    c_start = c_end = c_oa_end = c_level = c_key = c_tb = -1
    c_oa = c_n = 0
    nent0 = 1 << (g.ia_bits - level_lsb(g.sl, gran))
    stack: list[tuple[Iterator[tuple[int, int]], int, int, int, int]] = []

    def open_table(ipa: int, level: int, nent: int, vbase: int, tb: int) -> None:
        pa = ipa if table_pa is None else table_pa(ipa)
        if pa is None:
            note(f"the level {level} table at IPA {ipa:#x} (VA {vbase:#x}) is not "
                 "mapped at stage 2: not shown")
            return
        if pa in on_path:
            note(f"loop: the level {level} table for VA {vbase:#x} is at PA {pa:#x}, a "
                 "table above it on the same path: not followed")
            return
        on_path.add(pa)
        stack.append((mem.iter_range(pa, pa + 8 * nent), level, vbase, pa, tb))

    open_table(g.baddr, g.sl, nent0, g.va_base, 0)
    pgshift = gran.pgshift
    tmask = mask(47, pgshift)
    while stack:
        it, level, vbase, tpa, tb = stack[-1]
        lsb = level_lsb(level, gran)
        size = 1 << lsb
        leafmask = keep & ~((1 << lsb) - 1)
        for addr, desc in it:
            budget -= 1
            if budget < 0:
                break
            t = desc & 3
            va = vbase + (((addr - tpa) >> 3) << lsb)
            if t == 3 and level < FINAL_LEVEL:
                nxt = desc & tmask
                if extra == 2:
                    nxt |= bits(desc, 15, 12) << 48
                elif extra == 1:
                    nxt |= (desc & mask(49, 48)) | (bits(desc, 9, 8) << 50)
                ntb = tb if g.hpd else tb | (desc >> 59 & 0xF)
                open_table(nxt, level + 1, 1 << gran.stride, va, ntb)
                break
            if t == 1 and (level == FINAL_LEVEL or not block_ok[level]):
                note(f"reserved descriptor {desc:#x} at level {level} (VA {va:#x})")
                continue
            if not t & 1:
                continue
            count += 1
            oa = desc & leafmask
            if extra == 2:
                oa |= bits(desc, 15, 12) << 48
                key = desc & ~leafmask & ~mask(15, 12)
            elif extra == 1:
                oa |= bits(desc, 9, 8) << 50
                key = desc & ~leafmask & ~mask(9, 8)
            else:
                key = desc & ~leafmask
            if va == c_end and oa == c_oa_end and key == c_key and level == c_level and \
                    tb == c_tb:
                c_end += size
                c_oa_end += size
                c_n += 1
            else:
                if c_n:
                    runs.append((c_start, c_end, c_oa, c_level, c_key, c_tb, c_n))
                    if len(runs) >= MAX_RANGES:
                        budget = c_n = -1
                        break
                c_start, c_end, c_oa, c_oa_end = va, va + size, oa, oa + size
                c_level, c_key, c_tb, c_n = level, key, tb, 1
        else:
            on_path.discard(stack.pop()[3])
            continue
        if budget < 0:
            break
    if c_n > 0:
        runs.append((c_start, c_end, c_oa, c_level, c_key, c_tb, c_n))
    if more_notes:
        notes.append(f"... and {more_notes} more notes like these")
    if budget < 0:
        notes.append(f"output cut: the dump stops at {limit} descriptors read or "
                     f"{MAX_RANGES} ranges (tables shared by many entries, or a very large "
                     "mapping)")
    return runs, count, notes, max(limit, 0) - max(budget, 0)


# --- stage 1 ----------------------------------------------------------------------------------

def ptdump(regs: SysRegs, mem: WordSource, *, regime: Regime = Regime.EL10, ttbr: int = 0,
           features: FeatureSet | None = None, max_descriptors: int = MAX_DESCRIPTORS
           ) -> PtDump:
    """The mapped ranges of ``regime``'s TTBR0 (or TTBR1) tables.

    For EL1&0 with stage 2 enabled the table addresses are IPAs; each table is read where
    stage 2 maps it.  # SIMPLIFIED: stage 2 permissions and Access flags are not checked for
    these table reads, and hardware AF updates are not modelled (nothing is written).
    """
    features = features or FeatureSet.all()
    if ttbr not in (0, 1):
        raise AtlabError(f"ttbr must be 0 or 1, not {ttbr}")
    if ttbr == 1 and not regime.has_unprivileged:
        raise AtlabError(f"the {regime} regime has only TTBR0")
    probe = (1 << 64) - 1 if ttbr else 0
    wi = setup_s1_walk(regs, features, regime, 1, probe)
    name = f"{regime} TTBR{ttbr}"
    if isinstance(wi, Fault):
        return PtDump(f"{name}: no walk ({wi} before the walk: EPD{ttbr}=1, TxSZ out of range "
                      "or the table base beyond the OA size)", 1, (), 0)
    notes: list[str] = []
    table_pa: IpaToPa | None = None
    read = 0
    if regime is Regime.EL10 and stage2_enabled(regs):
        s2 = ptdump_s2(regs, mem, features=features, max_descriptors=max_descriptors)
        read = s2.read
        starts = [r.start for r in s2.ranges]
        ranges2 = s2.ranges

        def table_pa(ipa: int) -> int | None:
            i = bisect_right(starts, ipa) - 1
            if i < 0 or ipa >= ranges2[i].end:
                return None
            return ranges2[i].oa + ipa - ranges2[i].start

        notes.append("stage 2 is enabled: table addresses are IPAs, read through stage 2")
    va_base = (1 << 64) - (1 << wi.ia_bits) if wi.upper else 0
    g = _Geom(wi.granule, wi.sl, wi.ia_bits, wi.baddr, wi.ds, wi.lpa_64k, wi.hpd, va_base)
    runs, count, tnotes, read1 = _traverse(g, mem, features, table_pa, max_descriptors - read)
    title = (f"{name} ({wi.ttbr_name}), {wi.granule} granule, {wi.ia_bits}-bit VA, start level "
             f"{wi.sl}" + (", DS=1" if wi.ds else ""))
    out = []
    two = regime.has_unprivileged and not wi.nv1
    els = (1 if regime is Regime.EL10 else 2, 0) if regime.has_unprivileged else (
        3 if regime is Regime.EL3 else 2,)
    for start, end, oa, level, key, tb, n in runs:
        # AArch64.S1NextWalkStateLeaf(): AttrIndx (bit 59 is AttrIndx[3] with AIE) selects
        # MAIR_ELx, or MAIR2_ELx for 8-15 (AArch64.MAIRAttr()); AArch64.S1ApplyOutputPerms():
        # the permission inputs, by PIIndex from PIR_ELx/PIRE0_ELx with S1PIE, with the
        # POR_ELx entries POIndex selects with S1POE.
        attr_index = wi.attr_index(key)
        attr = mair_attr(wi.mair, attr_index)
        sh = wi.sh if wi.ds else bits(key, 9, 8)
        pb = s1_perm_bits(key, tb, wi)
        flags: list[str] = []
        pi = pi_index(key) if wi.pie else None
        po = po_index(key) if (wi.poe or wi.e0poe) else None
        if pi is not None:
            ap_text = f"PI {pi:#06b}"
        elif two:
            flags += [f for f, b in (("UXN", 54), ("PXN", 53)) if bit(key, b)]
            ap_text = _AP_TEXT[bits(key, 7, 6)]
            if regime is Regime.EL20:
                ap_text = ap_text.replace("EL1", "EL2")
        elif regime.has_unprivileged:  # NV1
            flags += ["PXN"] if bit(key, 54) else []
            ap_text = "EL1 RO" if bit(key, 7) else "EL1 RW"
        else:
            flags += ["XN"] if bit(key, 54) else []
            ap_text = "RO" if bit(key, 7) else "RW"
        if tb and not wi.hpd:
            flags.append(f"T={tb:04b}")
        flags += [f for f, b in (("AF", 10), ("nG", 11)) if bit(key, b)
                  and (b != 11 or regime.has_unprivileged)]
        if pi is None and bit(key, 51):
            flags.append("DBM")
        if pi is not None and bit(key, 7):
            flags.append("nDirty")
        if po is not None:
            flags.append(f"PO {po:#05b}")
        if wi.aie and attr_index >= 8:
            flags.append(f"MAIR2.Attr{attr_index - 8}")
        rights = []
        wx = False
        for el in els:
            # With PIE, bit 51 is PIIndex[1] (no DBM): dirty state is nDirty with TCR_ELx.HD.
            hd = wi.hd if pi is not None else wi.hd or bool(bit(key, 51))
            p = compute_s1_permissions(pb, has_unprivileged=regime.has_unprivileged,
                                       nv1=wi.nv1, el=el, pan=False, epan=False, wxn=False,
                                       hd=hd)
            rights.append(f"EL{el}:" + ("R" if p.r else "-") + ("W" if p.w else "-")
                          + ("X" if p.x else "-"))
            wx |= p.w and p.x
        out.append(MappedRange(start, end, oa, level, "PTE" if level == FINAL_LEVEL else "BLK",
                               bool(bit(key, 52)), n, ap_text, tuple(flags),
                               str(decode_mair_attr(attr)), SH_NAMES[sh], " ".join(rights), wx,
                               key & ~3, pi, po, attr_index))
    return PtDump(title, 1, tuple(out), count, tuple(notes + tnotes), read + read1)


# --- stage 2 ----------------------------------------------------------------------------------

def _s2_memattr_text(memattr: int) -> str:
    if memattr >> 2 == 0:
        return _S2_MEMATTR_NAMES[memattr]
    outer, inner = _S2_CACHE.get(memattr >> 2), _S2_CACHE.get(memattr & 3)
    if outer is None or inner is None:
        return f"MemAttr={memattr:04b} (reserved)"
    return f"Normal i{inner} o{outer}"


def _s2_execute(perm: int) -> tuple[bool, bool]:
    """(EL1, EL0) execute of an S2PIR_EL2/S2POR_EL1 entry (``AArch64.S2IndirectBasePermissions()``,
    ``AArch64.S2OverlayPermissions()``): px and ux are bits [1] and [0] of the 0b1xxx
    encodings (Read or RW with Priv, Unpriv or All Execute)."""
    return bool(perm >> 3 & perm >> 1 & 1), bool(perm >> 3 & perm & 1)


def ptdump_s2(regs: SysRegs, mem: WordSource, *, features: FeatureSet | None = None,
              max_descriptors: int = MAX_DESCRIPTORS) -> PtDump:
    """The mapped IPA ranges of the stage 2 tables (VTCR_EL2/VTTBR_EL2); at most
    ``max_descriptors`` descriptors are read."""
    features = features or FeatureSet.all()
    wi = setup_s2_walk(regs, features)
    if isinstance(wi, Fault):
        return PtDump(f"stage 2: no walk ({wi}: VTCR_EL2 is inconsistent)", 2, (), 0)
    g = _Geom(wi.granule, wi.sl, wi.ia_bits, wi.baddr, wi.ds, wi.lpa_64k, True, 0)
    runs, count, notes, read = _traverse(g, mem, features, None, max_descriptors)
    xnx = features.has(Feature.XNX)
    out = []
    for start, end, oa, level, key, _tb, n in runs:
        pi: int | None = None
        if wi.s2pie:
            # AArch64.S2IndirectBasePermissions(): S2PIR_EL2.Perm<PIIndex>; r and w as the
            # walker reads them (S2PI_RW), px/ux from _s2_execute().
            pi = s2_pi_index(key)
            s2pi = wi.s2pir >> 4 * pi & 0xF
            r, w = bool(S2PI_RW[s2pi][0]), bool(S2PI_RW[s2pi][1])
            x1, x0 = _s2_execute(s2pi)
            ap_text = f"PI {pi:#06b}"
            flags = [f"S2PIR={s2pi:#06b}"]
            if wi.s2poe:
                # AArch64.S2OverlayPermissions(): S2POR_EL1.Perm<POIndex> (POIndex is bits
                # [62:59]), same encodings as S2PIR; the overlay only takes rights away.
                po = key >> 59 & 0xF
                s2po = wi.s2por >> 4 * po & 0xF
                ox1, ox0 = _s2_execute(s2po)
                r, w = r and bool(S2PI_RW[s2po][0]), w and bool(S2PI_RW[s2po][1])
                x1, x0 = x1 and ox1, x0 and ox0
                flags.append(f"PO {po:#06b}")
            flags += [f for f, b in (("AF", 10),) if bit(key, b)]
            if not bit(key, 7):
                flags.append("clean")  # Dirty (bit 7) is 0: a write faults without VTCR_EL2.HD
        else:
            s2ap = bits(key, 7, 6)
            ap_text = _S2AP_TEXT[s2ap]
            xn = bits(key, 54, 53) if xnx else bit(key, 54) << 1
            flags = [f"XN={xn:02b}"] if xn else []
            flags += [f for f, b in (("AF", 10), ("DBM", 51)) if bit(key, b)]
            w = bool(s2ap & 2) or (bool(bit(key, 51)) and wi.hd)
            r = bool(s2ap & 1)
            x1, x0 = xn in (0b00, 0b11), xn in (0b00, 0b01)  # XN[1:0] (FEAT_XNX), D8.4.2
        rights = (f"EL1:{'R' if r else '-'}{'W' if w else '-'}{'X' if x1 else '-'} "
                  f"EL0:{'R' if r else '-'}{'W' if w else '-'}{'X' if x0 else '-'}")
        sh = wi.sh if wi.ds else bits(key, 9, 8)
        out.append(MappedRange(start, end, oa, level, "PTE" if level == FINAL_LEVEL else "BLK",
                               bool(bit(key, 52)), n, ap_text, tuple(flags),
                               _s2_memattr_text(bits(key, 5, 2)), SH_NAMES[sh], rights,
                               w and (x1 or x0), key & ~3, pi,
                               (key >> 59 & 0xF) if wi.s2poe else None, bits(key, 5, 2)))
    title = wi.describe()
    return PtDump(title, 2, tuple(out), count, tuple(notes), read)
