"""The course's "crux" pictures: one diagram per chapter, drawn before the details.

Each chapter of the course opens with its crux (the problem it solves) and one picture of
the machinery it is about: the two VA ranges, the chain of tables, who owns which registers,
the two stages, L0/L1/L2 ... Each function here returns a :class:`matplotlib.figure.Figure`
(never displayed by itself) built from boxes and arrows. Where a picture states a fact the
library computes (the VA bits each level indexes, the regime each AT uses under
HCR_EL2.{E2H,TGE}, the number of reads of a nested walk) the label is computed by atlab, not
typed in. Every text is at least 9 pt at the figure's own size (11 in wide).

:data:`CHAPTER_PICTURES` maps each chapter notebook to its picture.

>>> fig = two_stages()
>>> [n["key"] for n in figure_meta(fig)["nodes"]][:3]
['va', 's1', 'ipa']
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from atlab.features import FeatureSet
from atlab.granule import Granule, level_lsb, start_level
from atlab.regime import AtOp, compute_translation_regime
from atlab.sysregs import SysRegs
from atlab.viz import (
    GREEN,
    ON_FILL,
    ORANGE,
    PURPLE,
    SKY,
    VERMILLION,
    YELLOW,
    _arrow,
    _box,
    _figure,
    _theme,
    figure_meta,
    translation_regimes,
)

#: The width every crux picture is drawn at (inches); the drawing unit is the inch.
WIDTH = 11.0
TITLE_PT = 12.0
HEAD_PT = 10.5
BODY_PT = 9.5
LABEL_PT = 9.0


@dataclass(frozen=True, slots=True)
class Node:
    """A box: its key, position and size (inches from the bottom left), a bold title, the
    lines under it, and its fill."""

    key: str
    x: float
    y: float
    w: float
    h: float
    title: str
    lines: tuple[str, ...] = ()
    fill: str = SKY


@dataclass(frozen=True, slots=True)
class Link:
    """An arrow from one box to another, with an optional label at its middle."""

    src: str
    dst: str
    label: str = ""
    dashed: bool = False
    rad: float = 0.0


def _anchor(a: Node, b: Node) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where an arrow from ``a`` to ``b`` leaves ``a`` and enters ``b``: bottom to top (or
    top to bottom) when one box is above the other, else the facing sides."""
    acx, acy, bcx, bcy = a.x + a.w / 2, a.y + a.h / 2, b.x + b.w / 2, b.y + b.h / 2

    def toward(box: Node, x: float) -> float:  # an x on ``box``'s edge, as near ``x`` as fits
        return min(max(x, box.x + 0.25), box.x + box.w - 0.25)

    if b.y + b.h <= a.y + 1e-9:  # b below a
        return (toward(a, bcx), a.y), (toward(b, acx), b.y + b.h)
    if b.y >= a.y + a.h - 1e-9:  # b above a
        return (toward(a, bcx), a.y + a.h), (toward(b, acx), b.y)
    if b.x >= a.x + a.w - 1e-9:
        return (a.x + a.w, acy), (b.x, bcy)
    return (a.x, acy), (b.x + b.w, bcy)


def _diagram(kind: str, title: str, height: float, nodes: list[Node], links: list[Link],
             *, notes: tuple[str, ...] = (), theme: str = "light") -> Figure:
    """Draw ``nodes`` and ``links`` on an 11 in wide figure; ``notes`` are lines at the foot."""
    th = _theme(theme)
    by_key = {n.key: n for n in nodes}
    missing = [k for link in links for k in (link.src, link.dst) if k not in by_key]
    if missing:  # a programming error in this module, not user input
        raise ValueError(f"links name unknown boxes: {missing}")
    meta = {"kind": kind, "title": title, "fontsize_min": LABEL_PT,
            "nodes": [{"key": n.key, "title": n.title, "lines": n.lines} for n in nodes],
            "links": [{"src": k.src, "dst": k.dst, "label": k.label} for k in links],
            "notes": notes}
    fig, ax = _figure(WIDTH, height, th, meta)
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, height)
    ax.text(0.15, height - 0.28, title, ha="left", va="center", fontsize=TITLE_PT,
            color=th.ink, fontweight="bold")
    for n in nodes:
        _box(ax, n.x, n.y, n.w, n.h, fill=n.fill, edge=th.ink, gid=f"node-{n.key}", round_=True)
        ink = ON_FILL if n.fill != th.face else th.ink
        ax.text(n.x + n.w / 2, n.y + n.h - 0.2, n.title, ha="center", va="center",
                fontsize=HEAD_PT, fontweight="bold", color=ink)
        if n.lines:
            ax.text(n.x + n.w / 2, n.y + n.h - 0.4, "\n".join(n.lines), ha="center", va="top",
                    fontsize=BODY_PT, color=ink, linespacing=1.25)
    for k in links:
        start, end = _anchor(by_key[k.src], by_key[k.dst])
        _arrow(ax, start, end, th.ink, gid=f"link-{k.src}-{k.dst}", dashed=k.dashed, rad=k.rad)
        if k.label:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, k.label, ha="center",
                    va="center", fontsize=LABEL_PT, color=th.ink,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": th.face,
                          "edgecolor": "none"})
    for i, note in enumerate(notes):
        ax.text(0.15, 0.2 + 0.24 * (len(notes) - 1 - i), note, ha="left", va="center",
                fontsize=BODY_PT, color=th.ink)
    return fig


# --- 01: two VA ranges -----------------------------------------------------------------------


def va_ranges(*, txsz: int = 16, theme: str = "light") -> Figure:
    """01: the 64-bit VA space with ``TCR_EL1.T0SZ = T1SZ = txsz``: the TTBR0 range at the
    bottom, the TTBR1 range at the top, and between them VAs that fault at level 0."""
    size = 1 << (64 - txsz)
    lo_end, hi_start = size - 1, (1 << 64) - size
    nodes = [
        Node("ttbr0", 0.2, 0.9, 3.3, 1.9, "TTBR0_EL1 range (lower)",
             (f"{0:#018x}", f"to {lo_end:#018x}", f"bits [63:{64 - txsz}] all 0",
              "applications (EL0)"), SKY),
        Node("hole", 3.85, 0.9, 3.3, 1.9, "neither range",
             ("any other top bits", "Translation fault, level 0", "before any table",
              "is read"), VERMILLION),
        Node("ttbr1", 7.5, 0.9, 3.3, 1.9, "TTBR1_EL1 range (upper)",
             (f"{hi_start:#018x}", f"to {(1 << 64) - 1:#018x}", f"bits [63:{64 - txsz}] all 1",
              "the kernel (EL1)"), ORANGE),
        Node("va", 3.85, 3.35, 3.3, 1.0, "a 64-bit VA",
             ("bit 55 picks the range",), YELLOW),
    ]
    links = [Link("va", "ttbr0", "bit 55 = 0"), Link("va", "ttbr1", "bit 55 = 1"),
             Link("va", "hole", "")]
    return _diagram("va_ranges", f"Two VA ranges, {64 - txsz} bits each (T0SZ = T1SZ = "
                    f"{txsz}, 4KB granule)", 4.9, nodes, links, theme=theme)


# --- 02: the chain of tables -----------------------------------------------------------------


def walk_levels(*, granule: Granule = Granule.K4, txsz: int = 16,
                theme: str = "light") -> Figure:
    """02: a stage 1 walk as the chain TTBR -> one table per level -> page, each table indexed
    by the VA bits of its level (computed for ``granule`` and ``txsz``)."""
    ia_bits = 64 - txsz
    first = start_level(ia_bits, granule)
    levels = list(range(first, 4))
    entries = 1 << granule.stride
    nodes = [Node("ttbr", 0.15, 0.95, 1.35, 1.3, "TTBR0_EL1", ("address of", f"level {first}",
                                                             "table"), YELLOW)]
    step = (WIDTH - 0.15 - 1.55 - 1.5) / len(levels)
    w = step - 0.3
    for i, level in enumerate(levels):
        hi = ia_bits - 1 if level == first else level_lsb(level - 1, granule) - 1
        lo = level_lsb(level, granule)
        what = "page or fault" if level == 3 else "table, block or fault"
        nodes.append(Node(f"l{level}", 1.8 + i * step, 0.95, w, 1.3, f"L{level} table",
                          (f"index VA[{hi}:{lo}]", f"{entries} entries", what), SKY))
    page = granule.pgshift
    nodes.append(Node("page", WIDTH - 1.45, 0.95, 1.3, 1.3, f"{granule} page",
                      (f"offset VA[{page - 1}:0]",), GREEN))
    keys = ["ttbr", *[f"l{level}" for level in levels], "page"]
    links = [Link(a, b) for a, b in itertools.pairwise(keys)]
    notes = (f"One 8-byte descriptor read per level: {len(levels)} reads before the access "
             "itself. A table descriptor points to the next table;",
             "a block descriptor (a larger leaf) ends the walk early; an invalid one ends it "
             "with a Translation fault at that level.")
    return _diagram("walk_levels", f"The stage 1 walk: one table per level ({granule} "
                    f"granule, {ia_bits}-bit VA)", 2.9, nodes, links, notes=notes,
                    theme=theme)


# --- 03: who decides what EL0 and EL1 may do --------------------------------------------------


def permission_sources(*, theme: str = "light") -> Figure:
    """03: where the permissions of an access come from: the leaf's AP/UXN/PXN, limited by
    the table descriptors above it and by PSTATE.PAN and SCTLR_ELx.WXN."""
    nodes = [
        Node("tables", 0.2, 3.1, 3.2, 1.35, "table descriptors", ("APTable, UXNTable,",
                                                                  "PXNTable: can only",
                                                                  "remove rights"), SKY),
        Node("leaf", 0.2, 0.9, 3.2, 1.6, "leaf descriptor", ("AP[2:1]: read/write for",
                                                             "EL1 and for EL0;",
                                                             "UXN, PXN: no execute"), SKY),
        Node("controls", 3.9, 3.1, 3.2, 1.35, "controls", ("PSTATE.PAN: EL1 may not",
                                                           "touch EL0 data;",
                                                           "SCTLR_EL1.WXN"), ORANGE),
        Node("rights", 3.9, 0.9, 3.2, 1.6, "rights of the access", ("EL0: R? W? X?",
                                                                    "EL1: R? W? X?"), GREEN),
        Node("par", 7.6, 0.9, 3.2, 1.6, "not allowed?", ("Permission fault at the", "leaf's level",
                                                         "(PAR_EL1.FST)"), VERMILLION),
    ]
    links = [Link("tables", "leaf", "limit"), Link("leaf", "rights"),
             Link("controls", "rights", "limit"), Link("rights", "par")]
    return _diagram("permission_sources", "Permissions: the leaf grants, tables and controls "
                    "take away", 4.9, nodes, links, theme=theme)


# --- 04: memory attributes -------------------------------------------------------------------


def attribute_path(*, theme: str = "light") -> Figure:
    """04: how a page gets its memory type: AttrIndx selects a MAIR byte; SH gives the
    shareability; PAR_EL1 reports both."""
    nodes = [
        Node("leaf", 0.2, 0.75, 2.4, 1.7, "leaf descriptor", ("AttrIndx = bits [4:2]",
                                                             "SH = bits [9:8]"), SKY),
        Node("mair", 3.05, 0.75, 2.6, 1.7, "MAIR_EL1", ("8 bytes: Attr0..Attr7",
                                                       "byte AttrIndx is", "the memory type"),
             ORANGE),
        Node("type", 6.1, 0.75, 2.3, 1.7, "memory type", ("Device-nGnRnE ... GRE", "Normal WB,",
                                                         "WT or NC"), YELLOW),
        Node("par", 8.85, 0.75, 2.0, 1.7, "PAR_EL1", ("ATTR = MAIR byte", "SH (0b10 for",
                                                     "Device and NC)"), GREEN),
    ]
    links = [Link("leaf", "mair", "AttrIndx"), Link("mair", "type"), Link("type", "par")]
    notes = ("Stage 1 off (SCTLR_EL1.M = 0): no descriptor, no MAIR — Device-nGnRnE, VA = PA.",)
    return _diagram("attribute_path", "Memory attributes: the descriptor names a MAIR byte",
                    3.05, nodes, links, notes=notes, theme=theme)


# --- 05: the regime each AT uses under E2H/TGE ------------------------------------------------

_E2H, _TGE, _RW = 1 << 34, 1 << 27, 1 << 31
_SETTINGS = ((0, 0, "nVHE hypervisor, or a guest runs"), (1, 0, "VHE host, a guest runs"),
             (1, 1, "VHE host runs its apps"))


def regime_map() -> list[dict[str, object]]:
    """For each HCR_EL2.{E2H,TGE} setting the picture shows: the regime AT S1E0R, S1E1R and
    S1E2R translate in, computed by :func:`atlab.regime.compute_translation_regime`."""
    rows: list[dict[str, object]] = []
    for e2h, tge, who in _SETTINGS:
        regs = SysRegs({"HCR_EL2": _RW | (_E2H if e2h else 0) | (_TGE if tge else 0)})
        rows.append({"e2h": e2h, "tge": tge, "who": who, "regimes": {
            op.name: str(compute_translation_regime(op, regs, FeatureSet.all()).regime)
            for op in (AtOp.S1E0R, AtOp.S1E1R, AtOp.S1E2R)}})
    return rows


def regime_switch(*, theme: str = "light") -> Figure:
    """05: three HCR_EL2.{E2H,TGE} settings and the regime each AT translates in there
    (computed by the library), with the registers that regime uses."""
    regs_of = {"EL1&0": "TTBR0/1_EL1", "EL2&0": "TTBR0/1_EL2", "EL2": "TTBR0_EL2"}
    nodes = []
    for i, row in enumerate(regime_map()):
        regimes = row["regimes"]
        assert isinstance(regimes, dict)
        lines = tuple(f"AT {op}: {r} ({regs_of[r]})" for op, r in regimes.items())
        nodes.append(Node(f"s{row['e2h']}{row['tge']}", 0.2 + i * 3.6, 0.25, 3.4, 1.85,
                          f"{{E2H,TGE}} = {{{row['e2h']},{row['tge']}}}",
                          (str(row["who"]), "", *lines), (SKY, ORANGE, GREEN)[i]))
    return _diagram("regime_switch", "Same instruction, other regime: HCR_EL2.{E2H,TGE} "
                    "decides", 2.6, nodes, [], theme=theme)


# --- 06: what an AT instruction does ---------------------------------------------------------


def at_flow(*, theme: str = "light") -> Figure:
    """06: an AT instruction: the op picks a regime and an access, the MMU walks without
    accessing memory at the VA, and PAR_EL1 receives the PA and attributes or the fault."""
    nodes = [
        Node("op", 0.2, 2.2, 2.3, 1.5, "AT S1E1R, X0", ("stage 1, as for", "an EL1 read,",
                                                        "of the VA in X0"), YELLOW),
        Node("walk", 3.0, 2.2, 2.6, 1.5, "the MMU's walk", ("the op's regime", "and permissions;",
                                                            "no data access"), SKY),
        Node("ok", 6.2, 3.0, 2.1, 1.2, "F = 0", ("PA, ATTR, SH",), GREEN),
        Node("fault", 6.2, 1.4, 2.1, 1.2, "F = 1", ("FST (kind, level),", "S, PTW"), VERMILLION),
        Node("par", 8.85, 2.2, 2.0, 1.5, "PAR_EL1", ("the answer,", "read with MRS"), ORANGE),
        Node("exc", 3.0, 0.25, 2.6, 1.0, "or an exception", ("trap to EL2, UNDEFINED",), PURPLE),
    ]
    links = [Link("op", "walk"), Link("walk", "ok", "success"), Link("walk", "fault", "fault"),
             Link("ok", "par"), Link("fault", "par"), Link("op", "exc", "", dashed=True)]
    return _diagram("at_flow", "AT: ask the MMU; the answer lands in PAR_EL1", 4.6, nodes,
                    links, theme=theme)


# --- 07: two stages --------------------------------------------------------------------------


def nested_reads(s1_levels: int, s2_levels: int) -> int:
    """Descriptor reads of a full nested walk: every stage 1 table address and the final IPA
    go through stage 2 -- (n+1)(m+1) - 1."""
    return (s1_levels + 1) * (s2_levels + 1) - 1


def two_stages(*, s1_levels: int = 4, s2_levels: int = 4, theme: str = "light") -> Figure:
    """07: VA -> stage 1 (the guest's tables) -> IPA -> stage 2 (the hypervisor's) -> PA, and
    why a nested walk reads so many descriptors."""
    nodes = [
        Node("va", 0.2, 2.15, 1.3, 1.1, "VA", ("guest",), YELLOW),
        Node("s1", 2.0, 1.9, 2.6, 1.6, "stage 1", ("the guest OS's tables", "TTBR0/1_EL1,",
                                                   "TCR_EL1"), SKY),
        Node("ipa", 5.1, 2.15, 1.3, 1.1, "IPA", ("guest's \"PA\"",), YELLOW),
        Node("s2", 6.9, 1.9, 2.4, 1.6, "stage 2", ("the hypervisor's", "tables VTTBR_EL2,",
                                                   "VTCR_EL2"), ORANGE),
        Node("pa", 9.75, 2.15, 1.1, 1.1, "PA", ("RAM",), GREEN),
        Node("reads", 2.0, 0.55, 4.4, 0.95, "stage 1's table reads",
             ("each table address is an IPA too",), PURPLE),
    ]
    links = [Link("va", "s1"), Link("s1", "ipa"), Link("ipa", "s2"), Link("s2", "pa"),
             Link("s1", "reads"), Link("reads", "s2", "stage 2 first", dashed=True)]
    total = nested_reads(s1_levels, s2_levels)
    notes = (f"{s1_levels} stage 1 levels x {s2_levels} stage 2 levels: ({s1_levels}+1)"
             f"({s2_levels}+1) - 1 = {total} descriptor reads for one translation.",)
    return _diagram("two_stages", "Two stages: the guest translates, the hypervisor "
                    "translates again", 4.1, nodes, links, notes=notes, theme=theme)


# --- 08: L0, L1, L2 --------------------------------------------------------------------------


def nested_levels(*, theme: str = "light") -> Figure:
    """08: nested virtualization: L0 at the real EL2, L1 (a guest hypervisor) at EL1 believing
    it is at EL2, L2 (L1's guest) at EL1/EL0 -- and where L1's AT goes."""
    nodes = [
        Node("l0", 0.2, 3.5, 10.6, 1.1, "real EL2: L0, the host hypervisor (KVM)",
             ("owns the hardware EL2 registers and the real stage 2; emulates L1's EL2",),
             ORANGE),
        Node("l1", 0.2, 1.9, 5.1, 1.2, "EL1: L1, a guest hypervisor (vEL2)",
             ("believes it is at EL2; its EL2", "registers live in L0's memory"), SKY),
        Node("l2", 5.7, 1.9, 5.1, 1.2, "EL1/EL0: L2, L1's guest",
             ("its stage 1, then L1's stage 2,", "then L0's stage 2"), GREEN),
        Node("hw", 0.2, 0.3, 10.6, 1.1, "the hardware MMU", ("one stage 2 only: L0 builds a "
                                                             "shadow = L1's stage 2 then L0's",),
             YELLOW),
    ]
    links = [Link("l1", "l0", "AT S1E2R traps"), Link("l2", "l0", "stage 2 faults"),
             Link("l0", "hw", "", rad=0.0)]
    return _diagram("nested_levels", "Three levels of software, two of hardware", 5.0, nodes,
                    links, theme=theme)


# --- 09: model against hardware ---------------------------------------------------------------


def differential_test(*, theme: str = "light") -> Figure:
    """09: the differential test: one scenario run by atlab and by QEMU, the two PARs
    compared after masking the bits the architecture leaves open."""
    nodes = [
        Node("sc", 0.2, 1.3, 2.4, 1.6, "scenario", ("registers,", "memory words,",
                                                   "AT operations"), YELLOW),
        Node("atlab", 3.1, 2.55, 2.7, 1.2, "atlab: run_at()", ("the model",), SKY),
        Node("qemu", 3.1, 0.45, 2.7, 1.2, "QEMU -cpu max", ("the AT executed",), ORANGE),
        Node("cmp", 6.4, 1.3, 2.2, 1.6, "compare", ("Par.masked():", "drop IMPLEMENTATION",
                                                  "DEFINED bits"), GREEN),
        Node("out", 9.1, 1.3, 1.75, 1.6, "mismatch?", ("a bug in one", "of the two"),
         VERMILLION),
    ]
    links = [Link("sc", "atlab"), Link("sc", "qemu"), Link("atlab", "cmp", "PAR"),
             Link("qemu", "cmp", "PAR"), Link("cmp", "out")]
    return _diagram("differential_test", "A model is only as good as its comparison with "
                    "hardware", 4.3, nodes, links, theme=theme)


# --- 10: the TLB ----------------------------------------------------------------------------


def tlb_path(*, theme: str = "light") -> Figure:
    """10: a TLB between the access and the walk; entries tagged with VMID and ASID; TLBI
    removes them; L0's shadow stage 2 caches L1's stage 2 the same way."""
    nodes = [
        Node("cpu", 0.2, 2.4, 1.8, 1.2, "an access", ("VA, ASID, VMID",), YELLOW),
        Node("tlb", 2.6, 2.2, 3.0, 1.6, "TLB", ("entries tagged: regime,", "VMID, ASID or global,",
                                                "VA range"), SKY),
        Node("hit", 6.2, 3.0, 1.9, 1.0, "hit", ("PA, no walk",), GREEN),
        Node("walk", 6.2, 1.5, 1.9, 1.1, "miss", ("walk the tables", "(01-09), fill"),
             ORANGE),
        Node("tlbi", 2.6, 0.25, 3.0, 1.1, "TLBI; DSB; ISB", ("after a descriptor",
                                                             "changes"), VERMILLION),
        Node("shadow", 8.6, 1.5, 2.25, 2.5, "L0's shadow", ("stage 2 = a cache", "of L1's stage 2:",
                                                           "L1's TLBI traps", "to L0"), PURPLE),
    ]
    links = [Link("cpu", "tlb"), Link("tlb", "hit"), Link("tlb", "walk"),
             Link("tlbi", "tlb", "removes"), Link("walk", "shadow", "", dashed=True)]
    return _diagram("tlb_path", "A TLB caches translations; software must keep it honest",
                    4.5, nodes, links, theme=theme)


def real_system(*, theme: str = "light") -> Figure:
    """11: a real kernel under QEMU, stopped through the gdbstub; its registers and table
    pages become a snapshot that atlab walks; QEMU's own translation is the judge.  The
    regime is computed for a VHE host's HCR_EL2 ({E2H, TGE} = {1, 1})."""
    regime = compute_translation_regime(AtOp.S1E2R, SysRegs({"HCR_EL2": _RW | _E2H | _TGE}),
                                        FeatureSet.all()).regime
    nodes = [
        Node("guest", 0.2, 2.3, 2.7, 1.5, "Linux in QEMU", ("Debian's arm64 kernel,",
                                                            "a VHE host at EL2:",
                                                            f"the {regime} regime"), YELLOW),
        Node("stub", 3.5, 2.5, 2.0, 1.1, "gdbstub", ("gdb-multiarch", "+ pygdbmi"), SKY),
        Node("snap", 6.1, 2.3, 2.4, 1.5, "snapshot", ("TTBR0/1_EL2, TCR, MAIR",
                                                      "+ every table page", "(~150, gzipped)"),
             GREEN),
        Node("atlab", 9.0, 2.5, 1.8, 1.1, "atlab", ("run_at, ptdump",), SKY),
        Node("qemu", 3.5, 0.4, 2.0, 1.1, "QEMU gva2gpa", ("its own answer",), ORANGE),
        Node("cmp", 9.0, 0.4, 1.8, 1.1, "same PA?", ("every sampled VA",), PURPLE),
    ]
    links = [Link("guest", "stub", "stop"), Link("stub", "snap", "read"),
             Link("snap", "atlab"), Link("stub", "qemu"), Link("qemu", "cmp"),
             Link("atlab", "cmp")]
    return _diagram("real_system", "Real tables: a booted kernel's own page tables, walked "
                    "by atlab", 4.2, nodes, links, theme=theme)


#: The picture each chapter opens with, by notebook name.
CHAPTER_PICTURES: dict[str, Callable[..., Figure]] = {
    "00a_primer": translation_regimes,
    "01_anatomy_of_a_va": va_ranges,
    "02_stage1_walk": walk_levels,
    "03_permissions_and_faults": permission_sources,
    "04_memory_attributes": attribute_path,
    "05_regimes_e2h_tge": regime_switch,
    "06_at_and_par": at_flow,
    "07_stage2_2d_walk": two_stages,
    "08_nested_virtualization": nested_levels,
    "09_validating_against_hardware": differential_test,
    "10_tlbs_and_shadow_stage2": tlb_path,
    "11_real_tables": real_system,
}

__all__ = [
    "CHAPTER_PICTURES",
    "Link",
    "Node",
    "at_flow",
    "attribute_path",
    "differential_test",
    "figure_meta",
    "nested_levels",
    "nested_reads",
    "permission_sources",
    "real_system",
    "regime_map",
    "regime_switch",
    "tlb_path",
    "translation_regimes",
    "two_stages",
    "va_ranges",
    "walk_levels",
]
