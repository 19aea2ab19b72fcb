"""Pictures of a TLB (:mod:`atlab.tlb`) and of the steps of a program (:mod:`atlab.pe`).

Same conventions as :mod:`atlab.viz` (whose helpers this module uses): every function returns
a :class:`matplotlib.figure.Figure` built with the object API, on an explicit theme, in the
Okabe-Ito palette, carrying structural metadata (:func:`atlab.viz.figure_meta`) and ``gid`` s
that tests check instead of pixels.

=======================  ===================================================================
function                 picture
=======================  ===================================================================
:func:`tlb_table`        a TLB's entries as a table (columns :data:`atlab.tlb.TLB_COLUMNS`):
                         the entries a lookup used, the ones it filled, the ones a step
                         removed; optionally the page-table descriptors beside it, the
                         *stale* one (memory no longer holds what an entry cached) marked
=======================  ===================================================================

Row states (``figure_meta(fig)["rows"][i]["state"]``, gid ``"tlb-row-<seq>"``):

==============  ======================================================================
state           meaning
==============  ======================================================================
``hit``         the leaf entry that answered the lookup (the tables were not read)
``used``        a walk cache or stage 2 entry the walk resumed from (a leaf miss)
``new``         allocated by the lookup
``removed``     removed by the step (a TLBI completing at a DSB or ISB): no longer in
                the TLB, drawn greyed and struck through
``evicted``     replaced by the lookup's allocation (capacity), greyed
``""``          in the TLB, not touched by the step
==============  ======================================================================

>>> from atlab import AtOp, PhysMem, SysRegs
>>> from atlab.tlb import Tlb
>>> from atlab.viz import figure_meta
>>> regs = SysRegs.from_mapping({"HCR_EL2": "0x80000000", "SCTLR_EL1": "0x30d00801",
...     "TCR_EL1": "0x500803510", "TTBR0_EL1": "0x40200000", "MAIR_EL1": "0xff"})
>>> mem = PhysMem({0x40200120: 0x40201003, 0x40201688: 0x40202003,
...                0x40202598: 0x40203003, 0x40203C48: 0x45678703})
>>> first = Tlb().translate(AtOp.S1E1R, 0x123456789ABC, regs=regs, mem=mem)
>>> mem.poke(0x40203C48, 0x4ABCD703)  # remapped, no TLBI
>>> again = first.tlb.translate(AtOp.S1E1R, 0x123456789ABC, regs=regs, mem=mem)
>>> meta = figure_meta(tlb_table(again, page_tables=first.result.trace, mem=mem))
>>> meta["hit"], [(d["level"], hex(d["current"]), hex(d["cached"])) for d in meta["stale"]]
([4], [(3, '0x4abcd703', '0x45678703')])
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from atlab.errors import AtlabError
from atlab.memory import PhysMem
from atlab.pe import PeEvent
from atlab.tlb import TLB_COLUMNS, Tlb, TlbEntry, TlbLookup, entry_row
from atlab.trace import Trace, WalkStep
from atlab.viz import (
    BLUE,
    GREEN,
    MONO,
    ON_FILL,
    ORANGE,
    SKY,
    VERMILLION,
    YELLOW,
    _box,
    _figure,
    _theme,
)

__all__ = ["ROW_STATES", "TlbView", "tlb_table", "tlb_view"]

#: Every row state, with the legend text it is drawn with.
ROW_STATES: dict[str, str] = {
    "hit": "hit: answered the lookup",
    "used": "used: the walk resumed from it",
    "new": "new: filled by the lookup",
    "removed": "removed by this step",
    "evicted": "evicted (replaced)",
}

_FILL = {"hit": ORANGE, "used": SKY, "new": GREEN}

# Layout, in inches (the axes span the figure and use inches as data units).
_CHAR = 0.068  # one monospace character at 7.5 pt
_PAD = 0.09
_ROW = 0.27
_FONT = 7.5


@dataclass(frozen=True, slots=True)
class TlbView:
    """What :func:`tlb_table` draws: one PE's TLB after a step, and what the step did to it.

    ``rows`` are the entries still in the TLB (replacement order: the next victim first),
    then the entries the step removed or evicted; ``states`` maps an entry's ``seq`` to its
    row state (see the module docstring)."""

    title: str
    note: str
    pe: int | None
    rows: tuple[TlbEntry, ...]
    states: dict[int, str]


def tlb_view(source: PeEvent | TlbLookup | Tlb, *, pe: int | None = None) -> TlbView:
    """The TLB of ``source`` and the state of each of its rows.

    A :class:`~atlab.pe.PeEvent` shows PE ``pe`` (default: the PE that executed the step)
    after the step, with the entries the step removed from that PE (``event.removed``); a
    :class:`~atlab.tlb.TlbLookup` shows the TLB after the lookup; a :class:`~atlab.tlb.Tlb`
    just its entries."""
    lookup: TlbLookup | None = None
    removed: tuple[TlbEntry, ...] = ()
    if isinstance(source, PeEvent):
        shown = source.pe if pe is None else pe
        if not 0 <= shown < len(source.tlbs):
            raise AtlabError(f"the step has no TLB for PE{shown} "
                             f"({len(source.tlbs)} PE{'s' if len(source.tlbs) != 1 else ''})")
        tlb = source.tlbs[shown]
        if source.pe == shown:
            lookup = source.lookup
        removed = tuple(e for p, e in source.removed if p == shown)
        title = f"PE{shown} TLB after PE{source.pe}: {source.text}"
        note = source.note
        pe_out: int | None = shown
    elif isinstance(source, TlbLookup):
        if pe is not None:
            raise AtlabError("pe= selects a PE of a machine step; a lookup has one TLB")
        lookup = source
        tlb = source.tlb
        title = f"TLB after AT {source.result.op.name}, {source.result.va:#x}"
        note = str(source)
        pe_out = None
    elif isinstance(source, Tlb):
        if pe is not None:
            raise AtlabError("pe= selects a PE of a machine step; a Tlb is one PE's TLB")
        tlb, title, note, pe_out = source, "TLB contents", "", None
    else:
        raise AtlabError(f"tlb_table draws a PeEvent, a TlbLookup or a Tlb, not "
                         f"{type(source).__name__}")
    states: dict[int, str] = {e.seq: "" for e in tlb.entries}
    if lookup is not None:
        for e in lookup.filled:
            if e.seq in states:
                states[e.seq] = "new"
        for e in lookup.used:
            if e.seq in states:
                states[e.seq] = "hit" if lookup.hit and e is lookup.entry else "used"
    gone: list[TlbEntry] = []
    for e in removed:
        if e.seq not in states:
            states[e.seq] = "removed"
            gone.append(e)
    for e in lookup.evicted if lookup is not None else ():
        if e.seq not in states:
            states[e.seq] = "evicted"
            gone.append(e)
    return TlbView(title, note, pe_out, (*tlb.entries, *gone), states)


def _descriptors(page_tables: Trace | Sequence[WalkStep]) -> list[WalkStep]:
    """The descriptor reads to list: a trace's stage 1 reads and the final stage 2 walk, or
    the steps given (descriptor writes and addresses never read are left out)."""
    if isinstance(page_tables, Trace):
        seq: Sequence[WalkStep] = (*page_tables.steps, *page_tables.final_s2)
    else:
        seq = page_tables
    return [s for s in seq if not s.is_write and s.kind != "not read"]


def tlb_table(source: PeEvent | TlbLookup | Tlb, *,
              page_tables: Trace | Sequence[WalkStep] | None = None,
              mem: PhysMem | None = None, pe: int | None = None,
              theme: str = "light") -> Figure:
    """The TLB of ``source`` as a table (see :func:`tlb_view`): the hit entry highlighted,
    the entries the walk resumed from and the ones it filled marked, the entries the step
    removed greyed and struck through, and a legend.

    ``page_tables`` (a walk's :class:`~atlab.trace.Trace` or its steps) adds a panel listing
    those descriptors: level, PA and current value, read from ``mem`` when given (else the
    value the step read).  A descriptor whose current value differs from the word a TLB entry
    cached for the same PA is *stale*: marked, with the entries that hold the old word."""
    th = _theme(theme)
    view = tlb_view(source, pe=pe)
    cells = [entry_row(e) for e in view.rows]
    marks: list[str] = []
    descs = _descriptors(page_tables) if page_tables is not None else []
    live = [e for e in view.rows if view.states[e.seq] not in ("removed", "evicted")]
    desc_rows: list[dict[str, Any]] = []
    stale: list[dict[str, Any]] = []
    stale_seqs: set[int] = set()
    cached = [(e.seq, dict(e.words)) for e in live]
    for s in descs:
        current = mem.peek(s.desc_pa) if mem is not None else s.raw
        holders = [(seq, words[s.desc_pa]) for seq, words in cached
                   if s.desc_pa in words and words[s.desc_pa] != current]
        desc_rows.append({"stage": s.stage, "level": s.level, "pa": s.desc_pa,
                          "value": current, "kind": s.kind, "stale": bool(holders),
                          "cached": holders[0][1] if holders else None,
                          "entries": [seq for seq, _ in holders]})
        if holders:
            stale.append({"stage": s.stage, "level": s.level, "pa": s.desc_pa,
                          "current": current, "cached": holders[0][1],
                          "entries": [seq for seq, _ in holders]})
            stale_seqs.update(seq for seq, _ in holders)
    for e in view.rows:
        state = view.states[e.seq]
        mark = {"hit": "HIT", "used": "used", "new": "new", "removed": "removed",
                "evicted": "evicted"}.get(state, "")
        if e.seq in stale_seqs:
            mark = f"{mark}, stale" if mark else "stale"
        marks.append(mark)
    head = (*TLB_COLUMNS, "")
    full = [(*r, m) for r, m in zip(cells, marks, strict=True)]
    widths = [max(len(text) for text in col) * _CHAR + _PAD
              for col in zip(head, *full, strict=True)]
    table_w = sum(widths) + 0.3
    panel_lines = [_desc_text(d) for d in desc_rows]
    panel_w = 0.0
    if page_tables is not None:
        longest = max([len(line) for line in panel_lines] + [34])
        panel_w = longest * _CHAR + 0.4
    width = max(table_w + panel_w, 6.0)
    n_desc_lines = sum(2 if d["stale"] else 1 for d in desc_rows)
    body = max(len(view.rows), 1, n_desc_lines + 1)
    items = list(ROW_STATES.items())
    if page_tables is not None:
        items.append(("stale", "stale: memory changed since the entry was filled"))
    spots = _legend_spots([label for _, label in items], width)
    legend_h = 0.22 * (1 + max(i for i, _ in spots))
    height = 0.5 + 0.32 + body * _ROW + 0.2 + legend_h + 0.3
    meta: dict[str, Any] = {
        "kind": "tlb_table", "title": view.title, "note": view.note, "pe": view.pe,
        "columns": list(TLB_COLUMNS),
        "rows": [{"seq": e.seq, "state": view.states[e.seq], "cells": list(c),
                  "stale": e.seq in stale_seqs} for e, c in zip(view.rows, cells, strict=True)],
        "descriptors": desc_rows, "stale": stale, "legend": [],
    }
    for state in ROW_STATES:
        meta[state] = [e.seq for e in view.rows if view.states[e.seq] == state]
    fig, ax = _figure(width, height, th, meta)
    spots_in = [(x, 0.3 + legend_h - 0.11 - 0.22 * line) for line, x in spots]
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.text(0.15, height - 0.25, view.title, fontsize=9.5, color=th.ink, ha="left",
            va="center")
    top = height - 0.5
    # header
    x = 0.15
    for name, w in zip(head, widths, strict=True):
        ax.text(x + 0.06, top - 0.16, name, fontsize=_FONT, color=th.ink, fontweight="bold",
                ha="left", va="center", family=MONO)
        x += w
    ax.add_line(Line2D([0.15, 0.15 + sum(widths)], [top - 0.32, top - 0.32], color=th.muted,
                       linewidth=0.8))
    y0 = top - 0.32
    if not view.rows:
        ax.text(0.2, y0 - _ROW / 2, "TLB empty", fontsize=8.5, color=th.muted, ha="left",
                va="center", gid="tlb-empty")
    for i, (e, row, mark) in enumerate(zip(view.rows, cells, marks, strict=True)):
        state = view.states[e.seq]
        y = y0 - (i + 1) * _ROW
        gone = state in ("removed", "evicted")
        fill = _FILL.get(state, th.panel if gone else th.face)
        _box(ax, 0.15, y + 0.02, sum(widths), _ROW - 0.04, fill=fill,
             edge=VERMILLION if e.seq in stale_seqs else (th.muted if gone else th.face),
             lw=1.6 if e.seq in stale_seqs else 0.6, gid=f"tlb-row-{e.seq}",
             dashed=gone, hatch="xx" if state == "evicted" else None)
        ink = th.muted if gone else (ON_FILL if state in _FILL else th.ink)
        x = 0.15
        for text, w in zip((*row, mark), widths, strict=True):
            ax.text(x + 0.06, y + _ROW / 2, text, fontsize=_FONT, color=ink, ha="left",
                    va="center", family=MONO,
                    fontweight="bold" if state == "hit" else "normal")
            x += w
        if state == "removed":
            ax.add_line(Line2D([0.2, 0.1 + sum(widths[:-1])], [y + _ROW / 2] * 2,
                               color=th.muted, linewidth=1.1, gid=f"tlb-strike-{e.seq}"))
    if page_tables is not None:
        _panel(ax, table_w + 0.15, top, desc_rows, panel_lines, th)
    for (state, label), (lx, ly) in zip(items, spots_in, strict=True):
        fill = YELLOW if state == "stale" else _FILL.get(state, th.panel)
        _box(ax, lx, ly - 0.07, 0.22, 0.14, fill=fill,
             edge=VERMILLION if state == "stale" else th.muted, gid=f"tlb-legend-{state}",
             dashed=state in ("removed", "evicted"), hatch="xx" if state == "evicted" else None,
             lw=1.8 if state == "stale" else 0.6)
        ax.text(lx + 0.28, ly, label, fontsize=6.8, color=th.ink, ha="left", va="center")
        meta["legend"].append(label)
    if view.note:
        ax.text(0.15, 0.1, textwrap.shorten(view.note, int(width * 14)), fontsize=7,
                color=th.ink, ha="left", va="bottom", family=MONO)
    return _legible(fig)


#: The smallest text any figure may show (pt at the figure's own size; issue 16).
MIN_PT = 9.0


def _legible(fig: Figure) -> Figure:
    """Scale the whole drawing -- figure size and every font -- so that its smallest text is
    ``MIN_PT``: the table is laid out in a compact unit, and the axes span the figure in data
    coordinates, so boxes, rows and columns grow with the text and nothing moves."""
    texts = [t for t in fig.findobj(Text) if t.get_text()]
    sizes = [float(t.get_fontsize()) for t in texts]  # points: every text here sets a number
    smallest = min(sizes, default=MIN_PT)
    if smallest >= MIN_PT:
        return fig
    k = MIN_PT / smallest
    w, h = fig.get_size_inches()
    fig.set_size_inches(w * k, h * k)
    for t, size in zip(texts, sizes, strict=True):
        t.set_fontsize(size * k)
    return fig


def _legend_spots(labels: list[str], width: float) -> list[tuple[int, float]]:
    """(line, x) of each legend item, wrapped to the figure width."""
    out: list[tuple[int, float]] = []
    line, x = 0, 0.15
    for label in labels:
        w = 0.28 + len(label) * 0.058 + 0.25
        if x > 0.15 and x + w > width - 0.1:
            line, x = line + 1, 0.15
        out.append((line, x))
        x += w
    return out


def _desc_text(d: dict[str, Any]) -> str:
    return f"S{d['stage']} L{d['level']}  [{d['pa']:#x}] = {d['value']:#018x}  {d['kind']}"


def _panel(ax: Any, x: float, top: float, rows: list[dict[str, Any]], lines: list[str],
           th: Any) -> None:
    """The page-table panel: one line per descriptor, the stale ones marked."""
    ax.text(x, top - 0.16, "page tables (memory now)", fontsize=_FONT, color=BLUE,
            fontweight="bold", ha="left", va="center")
    y = top - 0.32
    width = max([len(line) for line in lines] + [34]) * _CHAR + 0.2
    if not rows:
        ax.text(x, y - _ROW / 2, "no descriptor", fontsize=_FONT, color=th.muted, ha="left",
                va="center")
    for d, line in zip(rows, lines, strict=True):
        h = _ROW * (2 if d["stale"] else 1)
        y -= h
        tag = f"S{d['stage']}L{d['level']}"
        if d["stale"]:
            _box(ax, x, y + 0.02, width, h - 0.04, fill=YELLOW, edge=VERMILLION, lw=2.2,
                 gid=f"pt-stale-{tag}")
            ink = ON_FILL
        else:
            _box(ax, x, y + 0.02, width, h - 0.04, fill=th.face, edge=th.muted, lw=0.5,
                 gid=f"pt-row-{tag}")
            ink = th.ink
        ax.text(x + 0.08, y + h - _ROW / 2, line, fontsize=_FONT, color=ink, ha="left",
                va="center", family=MONO)
        if d["stale"]:
            who = ", ".join(f"#{seq}" for seq in d["entries"])
            ax.text(x + 0.08, y + _ROW / 2, f"stale: TLB {who} cached {d['cached']:#018x}",
                    fontsize=_FONT - 0.5, color=ink, ha="left", va="center", family=MONO,
                    fontweight="bold")
