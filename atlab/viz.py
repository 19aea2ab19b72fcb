"""Pictures of translations: every function takes atlab data (a trace, a PAR, an NV result)
and returns a :class:`matplotlib.figure.Figure`.  Nothing here calls ``display()`` or pyplot:
the figures are built with the object API, so they are safe under ``MPLBACKEND=Agg``, do not
appear by themselves in a notebook, and never share state.

Every figure is drawn on an explicit face colour (``theme="light"`` or ``"dark"``) with the
Okabe-Ito colour-blind-safe palette, labelled in Arm terms.  Each carries structural metadata
that tests check instead of pixels: :func:`figure_meta` returns a small dict, and the artists
that matter have ``gid`` s (``"highlight"``, ``"fault"``, ``"entry"`` ...).

=======================  ===================================================================
function                 picture
=======================  ===================================================================
:func:`va_fields`        the VA sliced into range select / per-level indices / page offset
:func:`walk_chain`       a walk as the chain of tables, the selected entry of each highlighted
:func:`nested_grid`      the 2-D nested walk: stage 1 levels x stage 2 levels, access order
:func:`par_fields`       a PAR_EL1 value drawn as its fields
:func:`nv_route`         the route of an emulated AT through the L2 / L1 / L0 / hardware lanes
:func:`memory_map`       the memory map of a ptdump (when :mod:`atlab.ptdump` exists)
:func:`translation_regimes`  the exception levels, who runs there, and the translation regimes
=======================  ===================================================================

>>> from atlab.granule import Granule
>>> fig = va_fields(0x123456789ABC, granule=Granule.K4, txsz=16)
>>> [f["name"] for f in figure_meta(fig)["fields"]]
['TTBR select', 'L0 index', 'L1 index', 'L2 index', 'L3 index', 'page offset']
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from atlab.bits import bits
from atlab.errors import AtlabError
from atlab.explain import indirection_in_force, leaf_selections
from atlab.faults import fst_name
from atlab.granule import Granule, level_lsb, start_level
from atlab.par import Par
from atlab.trace import Trace, WalkStep

if TYPE_CHECKING:
    from atlab.nv.emulate import NvAtResult
    from atlab.ptdump import PtDump

# Okabe-Ito: distinguishable with every common colour-vision deficiency.
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
PALETTE = (ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE)

META_ATTR = "atlab_meta"
MONO = "DejaVu Sans Mono"


@dataclass(frozen=True, slots=True)
class Theme:
    face: str
    ink: str
    muted: str
    panel: str


THEMES = {"light": Theme("#ffffff", "#1b1b1b", "#707070", "#eeeeee"),
          "dark": Theme("#1e1e1e", "#ececec", "#9a9a9a", "#2e2e2e")}
#: Text drawn on a palette fill is always black: every Okabe-Ito fill is light enough.
ON_FILL = "#000000"


def _theme(name: str) -> Theme:
    try:
        return THEMES[name]
    except KeyError:
        raise AtlabError(f"unknown theme {name!r}; use 'light' or 'dark'") from None


def _figure(width: float, height: float, theme: Theme, meta: dict[str, Any]) -> tuple[Figure,
                                                                                         Axes]:
    fig = Figure(figsize=(width, height), facecolor=theme.face, layout=None)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_facecolor(theme.face)
    ax.set_axis_off()
    setattr(fig, META_ATTR, meta)
    return fig, ax


def figure_meta(fig: Figure) -> dict[str, Any]:
    """The structural description every atlab figure carries (for tests and widgets)."""
    meta = getattr(fig, META_ATTR, None)
    if not isinstance(meta, dict):
        raise AtlabError("this figure was not drawn by atlab.viz")
    return meta


def artists_with_gid(fig: Figure, prefix: str) -> list[Any]:
    """The artists of ``fig`` whose gid starts with ``prefix`` (``"highlight"``, ``"fault"``)."""
    return [a for a in fig.findobj() if (a.get_gid() or "").startswith(prefix)]


def to_png(fig: Figure, *, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (on its own face colour)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    return buf.getvalue()


def _box(ax: Axes, x: float, y: float, w: float, h: float, *, fill: str, edge: str,
         gid: str = "", lw: float = 1.0, dashed: bool = False, round_: bool = False,
         hatch: str | None = None) -> None:
    if round_:
        patch: Rectangle | FancyBboxPatch = FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0.0,rounding_size=0.08", facecolor=fill,
            edgecolor=edge, linewidth=lw, linestyle="--" if dashed else "-", hatch=hatch)
    else:
        patch = Rectangle((x, y), w, h, facecolor=fill, edgecolor=edge, linewidth=lw,
                          linestyle="--" if dashed else "-", hatch=hatch)
    if gid:
        patch.set_gid(gid)
    ax.add_patch(patch)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], color: str, *,
           gid: str = "", dashed: bool = False, rad: float = 0.0) -> None:
    arrow = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=color,
                            linewidth=1.3, linestyle="--" if dashed else "-",
                            connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2)
    if gid:
        arrow.set_gid(gid)
    ax.add_patch(arrow)


# --- the VA, sliced ---------------------------------------------------------------------------

def va_slices(granule: Granule, txsz: int, *, tbi: bool = False) -> list[dict[str, Any]]:
    """The fields of a VA for ``granule`` and ``TxSZ``: the range-select bits above the input
    range, one index per level from the start level (``AArch64.S1StartLevel()``), and the page
    offset.  Each field is ``{"name", "hi", "lo"}``, most significant first.

    >>> [(f["name"], f["hi"], f["lo"]) for f in va_slices(Granule.K64, 22)][1:]
    [('L2 index', 41, 29), ('L3 index', 28, 16), ('page offset', 15, 0)]
    """
    if not 0 <= txsz <= 63:
        raise AtlabError(f"TxSZ must be 0..63, not {txsz}")
    ia_bits = 64 - txsz
    if ia_bits <= granule.pgshift:
        raise AtlabError(f"TxSZ={txsz} leaves no index bits with a {granule} granule")
    sl = start_level(ia_bits, granule)
    fields: list[dict[str, Any]] = []
    top = 63
    if tbi:
        fields.append({"name": "top byte (TBI)", "hi": 63, "lo": 56})
        top = 55
    if ia_bits <= top:
        fields.append({"name": "TTBR select", "hi": top, "lo": ia_bits})
    for level in range(sl, 4):
        lsb = level_lsb(level, granule)
        hi = min(ia_bits - 1, lsb + granule.stride - 1)
        fields.append({"name": f"L{level} index", "hi": hi, "lo": lsb})
    fields.append({"name": "page offset", "hi": granule.pgshift - 1, "lo": 0})
    return fields


def va_fields(va: int | None = None, *, granule: Granule = Granule.K4, txsz: int = 16,
              tbi: bool = False, theme: str = "light") -> Figure:
    """The VA sliced into TTBR select / per-level indices / page offset for ``granule`` and
    ``TxSZ``; with ``va``, the value of each field (an index is the entry a level reads)."""
    th = _theme(theme)
    fields = va_slices(granule, txsz, tbi=tbi)
    if va is not None:
        if not 0 <= va < 1 << 64:
            raise AtlabError(f"VA {va:#x} does not fit in 64 bits")
        for f in fields:
            f["value"] = bits(va, f["hi"], f["lo"])
    title = f"VA{'' if va is None else f' {va:#x}'}: {granule} granule, TxSZ={txsz} " \
            f"({64 - txsz}-bit range)"
    meta: dict[str, Any] = {"kind": "va_fields", "fields": fields, "title": title}
    fig, ax = _figure(11.0, 1.9, th, meta)
    ax.set_xlim(-1, 65)
    ax.set_ylim(0, 3.2)
    colours = {"TTBR select": PURPLE, "top byte (TBI)": th.panel, "page offset": GREEN}
    level_cols = (SKY, ORANGE, SKY, ORANGE, SKY)
    li = 0
    for f in fields:
        x = 63 - f["hi"]
        w = f["hi"] - f["lo"] + 1
        if f["name"] in colours:
            fill = colours[f["name"]]
        else:
            fill = level_cols[li % len(level_cols)]
            li += 1
        _box(ax, x, 0.9, w, 1.1, fill=fill, edge=th.ink, gid=f"field-{f['name']}")
        ink = th.ink if fill == th.panel else ON_FILL
        label = f["name"] if w >= 6 else f["name"].replace(" index", "")
        ax.text(x + w / 2, 1.62, label, ha="center", va="center", fontsize=9, color=ink)
        if "value" in f:
            val = f"{f['value']:#x}" if f["name"] in ("page offset", "TTBR select",
                                                      "top byte (TBI)") else f"[{f['value']}]"
            ax.text(x + w / 2, 1.2, val, ha="center", va="center", fontsize=9, color=ink,
                    family=MONO)
        ax.text(x + w / 2, 0.55, f"[{f['hi']}:{f['lo']}]" if w > 1 else f"[{f['hi']}]",
                ha="center", va="center", fontsize=9, color=th.muted, family=MONO)
    ax.text(0, 2.65, title, ha="left", va="center", fontsize=10, color=th.ink)
    return fig


# --- a walk as a chain of tables --------------------------------------------------------------

#: Lines of text under a leaf whose index fields select register entries (other steps: 7).
_LEAF_LINES = 14


def _wrap(meaning: str, width: int = 26) -> list[str]:
    return textwrap.wrap(meaning, width) or [""]


def walk_chain(steps: Sequence[WalkStep] | Trace, *, current: int | None = None,
               fault: bool | None = None, title: str = "", theme: str = "light") -> Figure:
    """A walk drawn as its chain of tables: each table with the entry the walk selected
    highlighted, the descriptor decoded beside it, an arrow to the next table.

    ``steps`` is a :class:`Trace` (its stage 1 reads) or any sequence of steps (e.g.
    ``trace.final_s2`` for a stage 2 walk).  ``current=k`` draws a stepper frame: steps
    before k done, step k highlighted, later steps not yet read.  ``fault`` (default: from the
    trace's ``ended`` text) marks the last descriptor as the one the walk faulted on.
    """
    th = _theme(theme)
    if isinstance(steps, Trace):
        if fault is None:
            fault = "fault" in steps.ended
        ended = steps.ended
        seq = [s for s in steps.steps if not s.is_write]
    else:
        ended = ""
        seq = [s for s in steps if not s.is_write]
    # A stage 1 access whose table address faulted at stage 2 was never read: it is not part
    # of the chain, and the fault is not a stage 1 descriptor's.
    unread = next((s for s in seq if s.kind == "not read"), None)
    seq = [s for s in seq if s.kind != "not read"]
    if unread is not None:
        fault = False
    fault = bool(fault)
    n = len(seq)
    if current is not None and not 0 <= current < max(n, 1):
        raise AtlabError(f"step {current} is outside the walk (0..{n - 1})")
    stage = seq[0].stage if seq else 1
    shown = n if current is None else current + 1
    meta: dict[str, Any] = {
        "kind": "walk_chain", "stage": stage, "levels": [s.level for s in seq],
        "current": current, "highlighted": [], "fault": fault and shown == n and n > 0,
        "labels": [], "title": title,
        "unread": None if unread is None else unread.level,
    }
    # What the leaf's PIIndex/POIndex/AttrIndx select (FEAT_S1PIE/S2PIE, S1POE, AIE), drawn
    # under its descriptor; the figure grows downwards to make room.
    selects = leaf_selections(seq[-1]) if seq and indirection_in_force(seq[-1]) else []
    meta["selections"] = [text for _name, text in selects]
    sel_lines = [line for _name, text in selects for line in _wrap(text, 30)]
    extra = 0.0
    if sel_lines:
        extra = 0.155 * max(0, min(len(sel_lines) + 4, _LEAF_LINES) - 7)
    bottom = -extra
    # Five levels (LPA2) still fit 13.3 in, so a notebook shows the chain unscaled.
    pitch = min(2.75, (13.3 - 1.9) / max(n, 1))
    width = max(4.2, pitch * n + 1.9)
    fig, ax = _figure(width, 4.1 + extra, th, meta)
    ax.set_xlim(0, width)
    ax.set_ylim(bottom, 4.1)
    head = title or f"stage {stage} walk ({n} descriptor read{'s' if n != 1 else ''})"
    ax.text(0.2, 3.85, head, fontsize=10, color=th.ink, ha="left", va="center")
    if unread is not None:
        ax.text(0.2, bottom + 0.2, f"S{unread.stage} L{unread.level} descriptor never read: "
                "the stage 2 walk of its table address faulted", fontsize=9, color=VERMILLION,
                ha="left", va="center", gid="unread")
    if not seq:
        ax.text(0.2, 2.0, ended or "no descriptor was read", fontsize=9, color=th.ink)
        return fig
    tw, th_ = 1.55, 2.3  # table box
    for i, step in enumerate(seq):
        x = 0.3 + i * pitch
        y = 1.15
        done = i < shown
        is_cur = current is not None and i == current
        last = i == n - 1
        is_fault = fault and last and done
        edge = th.ink if done else th.muted
        _box(ax, x, y, tw, th_, fill=th.panel, edge=edge, gid=f"table-L{step.level}",
             dashed=not done)
        label = f"S{step.stage} L{step.level} table"
        meta["labels"].append(label)
        ax.text(x + tw / 2, y + th_ + 0.12, label, ha="center", fontsize=9,
                color=th.ink if done else th.muted)
        ax.text(x + tw / 2, y + th_ - 0.2, f"@ {step.table_base:#x}", ha="center", fontsize=9,
                color=th.muted, family=MONO)
        # dim slots above and below the selected one
        for k, yy in enumerate((y + 1.55, y + 0.2)):
            _box(ax, x + 0.1, yy, tw - 0.2, 0.32, fill=th.face, edge=th.muted,
                 gid=f"entry-dim-{i}-{k}", lw=0.6)
            ax.text(x + tw / 2, yy + 0.16, "…", ha="center", va="center", fontsize=9,
                    color=th.muted)
        sy = y + 0.85
        if done:
            fill = VERMILLION if is_fault else (ORANGE if (is_cur or current is None) else SKY)
            gid = "fault-entry" if is_fault else "highlight-entry"
            _box(ax, x + 0.05, sy, tw - 0.1, 0.45, fill=fill, edge=th.ink,
                 lw=2.6 if is_cur else 1.2, gid=gid, hatch="//" if is_fault else None)
            meta["highlighted"].append(i)
            ax.text(x + tw / 2, sy + 0.225, f"[{step.index}]", ha="center", va="center",
                    fontsize=9, color=ON_FILL, family=MONO, fontweight="bold")
            # decoded descriptor below the table
            lines = [f"VA[{step.ia_hi}:{step.ia_lo}] = {step.index}", f"{step.raw:#018x}",
                     f"{step.kind}" + (" — FAULT" if is_fault else "")]
            if last and sel_lines:
                # the selections first: the decoded meaning repeats part of them
                lines += sel_lines + _wrap(step.meaning)
            else:
                lines += _wrap(step.meaning)
            if step.perms:
                lines.extend(_wrap(step.perms))
            limit = _LEAF_LINES if last and sel_lines else 7
            ax.text(x, y - 0.1, "\n".join(lines[:limit]), ha="left", va="top", fontsize=9,
                    color=th.ink, family=MONO, gid="selections" if last and sel_lines else None)
            if not last:
                _arrow(ax, (x + tw - 0.05, sy + 0.225), (x + pitch, y + th_),
                       th.ink if i + 1 < shown else th.muted, gid=f"arrow-{i}",
                       dashed=i + 1 >= shown)
        else:
            _box(ax, x + 0.05, sy, tw - 0.1, 0.45, fill=th.face, edge=th.muted, gid="entry-todo",
                 dashed=True)
            ax.text(x + tw / 2, sy + 0.225, "?", ha="center", va="center", fontsize=9,
                    color=th.muted)
    if shown == n and not fault and seq[-1].kind in ("page", "block"):
        x = 0.3 + n * pitch - 0.95
        ax.text(x, 1.15 + 2.3 + 0.12, "output", fontsize=9, color=th.ink, ha="left")
        meta["labels"].append("output")
    if shown == n and ended:
        ax.text(0.2, bottom + 0.08, "\n".join(textwrap.wrap(ended, int(width * 14))[:2]),
                fontsize=9,
                color=VERMILLION if fault else th.ink, ha="left", va="bottom")
    return fig


# --- the 2-D nested walk ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Access:
    """One descriptor access of a translation, in the order the hardware makes it.

    ``row`` is the index of the stage 1 step it belongs to (``len(trace.steps)`` for the stage
    2 walk of the final IPA); ``purpose`` says what it is for, in Arm terms."""

    n: int
    step: WalkStep
    row: int
    purpose: str


def walk_accesses(trace: Trace) -> list[Access]:
    """Every descriptor access of ``trace`` in order: for each stage 1 step the stage 2 walk
    of its table address, then the stage 1 read itself; then the stage 2 walk of the final IPA.

    For a full nested walk there are (n+1)(m+1)-1 of them (:attr:`Trace.total_accesses`).
    A stage 1 step whose table address faulted at stage 2 (kind ``"not read"``) contributes
    only its stage 2 accesses."""
    out: list[Access] = []
    for r, s1 in enumerate(trace.steps):
        for s2 in s1.s2:
            out.append(Access(len(out) + 1, s2, r,
                              f"S2 L{s2.level} for the S1 L{s1.level} table IPA"))
        if s1.kind == "not read":  # its table address faulted at stage 2: no S1 access
            continue
        what = "AF write" if s1.is_write else "read"
        out.append(Access(len(out) + 1, s1, r, f"S1 L{s1.level} descriptor {what}"))
    for s2 in trace.final_s2:
        out.append(Access(len(out) + 1, s2, len(trace.steps),
                          f"S2 L{s2.level} for the final IPA"))
    return out


def nested_grid(trace: Trace, *, current: int | None = None, fault: bool | None = None,
                title: str = "", theme: str = "light") -> Figure:
    """The two-dimensional nested walk: one row per stage 1 step (plus the final IPA), one
    column per stage 2 level plus the stage 1 descriptor; each cell numbered in access order.
    ``current`` (0-based, in :func:`walk_accesses` order) is highlighted; the faulting access
    (the last one, when the translation faulted) is marked."""
    th = _theme(theme)
    acc = walk_accesses(trace)
    if fault is None:
        fault = "fault" in trace.ended
    if current is not None and not 0 <= current < max(len(acc), 1):
        raise AtlabError(f"access {current} is outside the walk (0..{len(acc) - 1})")
    s2_levels = sorted({a.step.level for a in acc if a.step.stage == 2}) or [0, 1, 2, 3]
    s2_levels = list(range(min(s2_levels), max(s2_levels) + 1))
    cols = [f"S2 L{lv}" for lv in s2_levels] + ["S1 descriptor"]
    rows = [(f"S1 L{s.level}" + (" AF write" if s.is_write else "")) for s in trace.steps]
    if trace.final_s2 or not trace.steps:
        rows.append("final IPA")
    shown = len(acc) if current is None else current + 1
    meta: dict[str, Any] = {"kind": "nested_grid", "rows": rows, "cols": cols,
                            "accesses": len(acc), "current": current, "fault_access": None,
                            "highlighted": [], "title": title}
    cw, rh = 1.35, 0.62
    width = 1.9 + cw * len(cols) + 0.4
    height = 1.35 + rh * len(rows) + 0.55
    fig, ax = _figure(width, height, th, meta)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    top = height - 1.0
    ax.text(0.15, height - 0.3, title or f"nested walk: {len(acc)} descriptor accesses",
            fontsize=10, color=th.ink, ha="left", va="center")
    for c, name in enumerate(cols):
        ax.text(1.9 + c * cw + cw / 2, top + 0.2, name, ha="center", fontsize=9,
                color=BLUE if name.startswith("S2") else th.ink, fontweight="bold")
    for r, name in enumerate(rows):
        y = top - (r + 1) * rh
        ax.text(1.75, y + rh / 2, name, ha="right", va="center", fontsize=9, color=th.ink)
        for c in range(len(cols)):
            _box(ax, 1.9 + c * cw, y, cw, rh, fill=th.face, edge=th.muted, lw=0.5,
                 gid="grid-cell")
    for i, a in enumerate(acc):
        col = len(cols) - 1 if a.step.stage == 1 else s2_levels.index(a.step.level)
        y = top - (a.row + 1) * rh
        x = 1.9 + col * cw
        done = i < shown
        is_fault = fault and i == len(acc) - 1 and done
        is_cur = current is not None and i == current
        if not done:
            ax.text(x + cw / 2, y + rh / 2, str(a.n), ha="center", va="center", fontsize=9,
                    color=th.muted)
            continue
        if is_fault:
            fill, gid = VERMILLION, "fault-access"
            meta["fault_access"] = a.n
        elif is_cur:
            fill, gid = ORANGE, "highlight-access"
        else:
            fill, gid = (SKY if a.step.stage == 1 else "#9ad0f0"), "done-access"
        if (is_cur and not is_fault) or is_cur:
            meta["highlighted"].append(a.n)
        _box(ax, x + 0.06, y + 0.06, cw - 0.12, rh - 0.12, fill=fill, edge=th.ink,
             lw=2.6 if is_cur else 0.8, gid=gid, hatch="//" if is_fault else None)
        mark = " ✗" if is_fault else ""
        ax.text(x + cw / 2, y + rh / 2, f"{a.n}{mark}", ha="center", va="center", fontsize=9,
                color=ON_FILL, fontweight="bold")
    foot = f"{trace.s1_accesses} stage 1 + {trace.s2_accesses} stage 2 accesses"
    if shown == len(acc) and trace.ended:
        foot += " — " + trace.ended
    ax.text(0.15, 0.12, "\n".join(textwrap.wrap(foot, int(width * 13))[:2]), fontsize=9,
            color=VERMILLION if fault and shown == len(acc) else th.ink, ha="left",
            va="bottom")
    return fig


# --- PAR_EL1 --------------------------------------------------------------------------------

def par_layout(par: Par) -> list[dict[str, Any]]:
    """PAR_EL1's fields for its F bit (D24.2 PAR_EL1), most significant first, with values.

    >>> [f["name"] for f in par_layout(Par(0xb0d))]
    ['IMPDEF', 'RES0', 'RES1', 'RES0', 'S', 'PTW', 'RES0', 'FST', 'F']
    """
    v = par.value
    if par.f:
        spec = [("IMPDEF", 63, 48), ("RES0", 47, 12), ("RES1", 11, 11), ("RES0", 10, 10),
                ("S", 9, 9), ("PTW", 8, 8), ("RES0", 7, 7), ("FST", 6, 1), ("F", 0, 0)]
    else:
        spec = [("ATTR", 63, 56), ("PA", 55, 12), ("RES1", 11, 11), ("IMPDEF", 10, 10),
                ("NS", 9, 9), ("SH", 8, 7), ("RES0", 6, 1), ("F", 0, 0)]
    out = []
    for name, hi, lo in spec:
        val = bits(v, hi, lo)
        if name == "PA":
            val <<= 12
        out.append({"name": name, "hi": hi, "lo": lo, "value": val})
    return out


_SH_TEXT = {0: "Non-\nshareable", 1: "reserved", 2: "Outer\nShareable", 3: "Inner\nShareable"}


def par_fields(par: Par | int, *, theme: str = "light") -> Figure:
    """PAR_EL1 drawn as its fields, each with its bits, value and meaning."""
    th = _theme(theme)
    if isinstance(par, int):
        if not 0 <= par < 1 << 64:
            raise AtlabError(f"PAR_EL1 value {par:#x} does not fit in 64 bits")
        par = Par(par)
    fields = par_layout(par)
    meta: dict[str, Any] = {"kind": "par_fields", "value": par.value, "f": par.f,
                            "fields": fields, "labels": [f["name"] for f in fields]}
    fig, ax = _figure(11.0, 2.1, th, meta)
    widths = [max(5.5, (f["hi"] - f["lo"] + 1) * 0.5) for f in fields]
    total = sum(widths)
    ax.set_xlim(-0.5, total + 0.5)
    ax.set_ylim(0, 3.4)
    x = 0.0
    for f, w in zip(fields, widths, strict=True):
        name = f["name"]
        if name in ("RES0", "RES1", "IMPDEF"):
            fill, ink = th.panel, th.ink
        elif name == "F":
            fill, ink = (VERMILLION if par.f else GREEN), ON_FILL
        elif name in ("FST", "PA"):
            fill, ink = ORANGE, ON_FILL
        else:
            fill, ink = SKY, ON_FILL
        _box(ax, x, 1.0, w, 1.3, fill=fill, edge=th.ink, gid=f"par-{name}")
        ax.text(x + w / 2, 1.95, name, ha="center", va="center", fontsize=9, color=ink,
                fontweight="bold")
        val = f["value"]
        if name == "FST":
            text = f"{val:#04x}\n{fst_name(val)}"
        elif name == "SH":
            text = _SH_TEXT[val]
        elif name == "PA":
            text = f"{val:#x}"
        elif name == "ATTR":
            text = f"{val:#04x}"
        else:
            text = str(val) if f["hi"] - f["lo"] < 4 else f"{val:#x}"
        ax.text(x + w / 2, 1.45, text, ha="center", va="center", fontsize=9, color=ink,
                family=MONO)
        ax.text(x + w / 2, 0.7, f"[{f['hi']}:{f['lo']}]" if f["hi"] != f["lo"] else
                f"[{f['hi']}]", ha="center", va="center", fontsize=9, color=th.muted,
                family=MONO)
        x += w
    ax.text(0, 2.85, str(par), fontsize=9.5, color=th.ink, ha="left", va="center",
            family=MONO)
    return fig


# --- the NV route of an emulated AT ------------------------------------------------------------

LANES = ("L2 (guest EL1/EL0)", "L1 (guest hypervisor, vEL2)", "L0 (host, EL2)",
         "hardware (MMU)")


def nv_route_nodes(result: NvAtResult) -> list[dict[str, Any]]:
    """The route of an emulated AT as nodes ``{"lane", "label", "gid"}`` in time order."""
    from atlab.nv.routing import Context, RouteKind

    lane_of = {Context.L1_VEL2: 1, Context.L2_EL1: 0, Context.L2_EL0: 0}
    start = lane_of[result.context]
    nodes = [{"lane": start, "label": f"{result.context.value}\n{result.op}", "gid": "start"}]
    kind = result.route.kind
    outcome = "exception" if result.par is None else ("PAR F=1" if result.par.f else "PAR F=0")
    if kind is RouteKind.UNDEFINED:
        nodes.append({"lane": start, "label": "UNDEFINED\n(exception in\nthe guest)",
                      "gid": "undefined"})
        return nodes
    if kind is RouteKind.FORWARD_L1:
        nodes.append({"lane": 2, "label": "trap to L0\n(EC 0x18)", "gid": "trap"})
        nodes.append({"lane": 1, "label": "L0 injects the\ntrap into vEL2", "gid": "forward"})
        return nodes
    if kind is RouteKind.HARDWARE:
        nodes.append({"lane": 3, "label": f"{result.op}\non the shadow S2", "gid": "hardware"})
        fixups = sum(1 for line in result.narration if line.startswith("attempt "))
        if fixups:
            nodes.append({"lane": 2, "label": f"S2 abort: L0 fixes\nthe shadow ({fixups}x)",
                          "gid": "shadow-fixup"})
            nodes.append({"lane": 3, "label": "retry in\nhardware", "gid": "retry"})
        nodes.append({"lane": 0, "label": outcome, "gid": "result"})
        return nodes
    nodes.append({"lane": 2, "label": "trap to L0\n(EC 0x18)", "gid": "trap"})
    fast_ok = bool(result.fast_path_accepted) and result.software is None
    verdict = "accepted" if fast_ok else "rejected" if not result.fast_path_accepted \
        else "S1 only: S2 needed"
    nodes.append({"lane": 3, "label": f"fast path: hardware AT\n({verdict})",
                  "gid": "fast-path-ok" if fast_ok else "fast-path-rejected"})
    if result.software is not None:
        nodes.append({"lane": 2, "label": "software walker\n(L1's tables)", "gid": "software"})
    nodes.append({"lane": start, "label": outcome, "gid": "result"})
    return nodes


def nv_route(result: NvAtResult, *, theme: str = "light") -> Figure:
    """The route of an emulated AT: L2 / L1 / L0 / hardware lanes, the trap, the fast path and
    the software fallback, ending in what the guest reads."""
    th = _theme(theme)
    nodes = nv_route_nodes(result)
    meta: dict[str, Any] = {"kind": "nv_route", "route": result.route.kind.name,
                            "path": result.path, "nodes": nodes,
                            "labels": [n["label"] for n in nodes]}
    # At most 5 nodes: 12.4 in, shown unscaled in a notebook or widget (tests/test_browser.py).
    step, box_w, left = 2.1, 1.8, 1.75
    width = left + step * len(nodes) + 0.15
    height = 3.9
    fig, ax = _figure(width, height, th, meta)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    lane_h = 0.72
    top = height - 0.55
    lane_cols = (SKY, GREEN, PURPLE, YELLOW)
    for i, name in enumerate(LANES):
        y = top - (i + 1) * lane_h
        _box(ax, 0.05, y + 0.03, width - 0.1, lane_h - 0.06, fill=th.panel, edge=th.panel,
             gid=f"lane-{i}")
        _box(ax, 0.05, y + 0.03, 0.12, lane_h - 0.06, fill=lane_cols[i], edge=lane_cols[i])
        ax.text(0.25, y + lane_h / 2, name.replace(" (", "\n(").replace(", ", ",\n"),
                ha="left", va="center", fontsize=9, color=th.ink, linespacing=1.0)
    ax.text(0.1, height - 0.25, f"{result.op} from {result.context.value}: "
            f"{result.route.kind.value} — {result.path}", fontsize=9.5, color=th.ink,
            ha="left", va="center")
    prev: tuple[float, float] | None = None
    for j, node in enumerate(nodes):
        cx = left + box_w / 2 + j * step
        cy = top - (node["lane"] + 0.5) * lane_h
        gid = node["gid"]
        if gid in ("undefined", "fast-path-rejected") or node["label"].startswith("PAR F=1") \
                or node["label"] == "exception":
            fill = VERMILLION
        elif gid in ("result", "fast-path-ok"):
            fill = GREEN
        elif gid == "start":
            fill = ORANGE
        else:
            fill = SKY
        _box(ax, cx - box_w / 2, cy - 0.27, box_w, 0.54, fill=fill, edge=th.ink,
             gid=f"node-{gid}", round_=True)
        ax.text(cx, cy, node["label"], ha="center", va="center", fontsize=9, color=ON_FILL)
        if prev is not None:
            _arrow(ax, (prev[0] + box_w / 2, prev[1]), (cx - box_w / 2, cy), th.ink,
                   gid=f"edge-{j}")
        prev = (cx, cy)
    foot = result.outcome()
    ax.text(0.1, 0.15, "\n".join(textwrap.wrap(foot, int(width * 13))[:2]), fontsize=9,
            color=th.ink, ha="left", va="bottom", family=MONO)
    return fig


# --- the memory map of a ptdump ---------------------------------------------------------------

def memory_map(dump: PtDump, *, theme: str = "light") -> Figure:
    """The mapped ranges of a :func:`atlab.ptdump.ptdump`, one bar per coalesced range
    (VA range, size, level and kind, output address, memory type, effective rights), coloured
    by memory type; writable-and-executable ranges are marked."""
    th = _theme(theme)
    ranges = list(dump.ranges)
    meta: dict[str, Any] = {"kind": "memory_map", "title": dump.title, "ranges": len(ranges),
                            "wx": sum(1 for r in ranges if r.wx), "labels": []}
    height = 1.1 + 0.42 * max(len(ranges), 1)
    fig, ax = _figure(11.0, height, th, meta)
    ax.set_xlim(0, 11)
    ax.set_ylim(0, height)
    ax.text(0.1, height - 0.3, dump.title, fontsize=9.5, color=th.ink, ha="left", va="center")
    if not ranges:
        ax.text(0.1, height - 0.75, "nothing mapped", fontsize=9, color=th.muted)
        return fig
    for i, r in enumerate(ranges):
        y = height - 0.85 - i * 0.42
        fill = ORANGE if r.memtype.startswith("Device") else SKY
        gid = "range-wx" if r.wx else "range"
        _box(ax, 0.1, y, 4.3, 0.34, fill=fill, edge=th.ink, gid=gid,
             hatch="//" if r.wx else None)
        label = f"{r.start:#018x}-{r.end:#018x}"
        meta["labels"].append(label)
        ax.text(0.2, y + 0.17, label, fontsize=9, color=ON_FILL, va="center", family=MONO)
        detail = (f"{human_size(r.size):>5} L{r.level} {r.kind} -> {r.oa:#x}  {r.memtype} "
                  f"{r.sh}  " + (f"{r.ap}: " if r.pi_index is not None else "")
                  + r.rights + ("  W+X" if r.wx else ""))
        ax.text(4.55, y + 0.17, detail, fontsize=9, color=VERMILLION if r.wx else th.ink,
                va="center", family=MONO)
    return fig


def human_size(size: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift and not size & ((1 << shift) - 1):
            return f"{size >> shift}{unit}"
    return f"{size:#x}"



# --- exception levels and translation regimes (the primer's picture) -------------------------

#: Who runs at each exception level, in the usual system (Arm's "Learn the architecture").
EL_OCCUPANTS = {0: "applications", 1: "OS kernel (or a guest's kernel)",
                2: "hypervisor (KVM with VHE)", 3: "secure monitor (firmware)"}

#: Each stage 1 translation regime: the ELs whose accesses it translates, its table base
#: registers, when it is in use (HCR_EL2.{E2H,TGE}), and whether a stage 2 may follow
#: (D8.1.2; ``TranslationRegime()``).
REGIMES: tuple[dict[str, Any], ...] = (
    {"name": "EL1&0", "els": (0, 1), "ttbrs": ("TTBR0_EL1", "TTBR1_EL1"),
     "when": "{E2H,TGE} != {1,1}", "stage2": "VTTBR_EL2 (HCR_EL2.VM=1)"},
    {"name": "EL2", "els": (2,), "ttbrs": ("TTBR0_EL2",), "when": "E2H=0", "stage2": ""},
    {"name": "EL2&0", "els": (0, 2), "ttbrs": ("TTBR0_EL2", "TTBR1_EL2"),
     "when": "E2H=1 (EL0 with TGE=1)", "stage2": ""},
    {"name": "EL3", "els": (3,), "ttbrs": ("TTBR0_EL3",), "when": "always", "stage2": ""},
)


def translation_regimes(*, highlight: str | None = None, theme: str = "light") -> Figure:
    """The four exception levels (who runs where) and the stage 1 translation regimes that
    serve them, each with its TTBRs and when it applies; ``highlight`` names one regime
    (``"EL1&0"``, ``"EL2"``, ``"EL2&0"``, ``"EL3"``)."""
    th = _theme(theme)
    names = [r["name"] for r in REGIMES]
    if highlight is not None and highlight not in names:
        raise AtlabError(f"unknown regime {highlight!r}; use one of {', '.join(names)}")
    meta: dict[str, Any] = {"kind": "translation_regimes", "levels": [3, 2, 1, 0],
                            "occupants": dict(EL_OCCUPANTS),
                            "regimes": [dict(r) for r in REGIMES], "highlight": highlight,
                            "fontsize_min": 9.0}
    fig, ax = _figure(11.0, 4.6, th, meta)
    ax.set_xlim(0, 22.8)
    ax.set_ylim(-0.9, 8.4)
    row = {3: 6.0, 2: 4.2, 1: 2.4, 0: 0.6}  # bottom of each EL's band
    for el, y in row.items():
        _box(ax, 0.2, y, 6.2, 1.5, fill=th.panel, edge=th.ink, gid=f"el-{el}", round_=True)
        ax.text(0.5, y + 1.05, f"EL{el}", ha="left", va="center", fontsize=12,
                fontweight="bold", color=th.ink)
        ax.text(0.5, y + 0.45, EL_OCCUPANTS[el], ha="left", va="center", fontsize=10,
                color=th.ink)
    columns = {"EL1&0": (7.0, SKY), "EL2": (10.9, ORANGE), "EL2&0": (14.8, GREEN),
               "EL3": (18.7, PURPLE)}
    for regime in REGIMES:
        x, fill = columns[regime["name"]]
        lo, hi = min(regime["els"]), max(regime["els"])
        y0, y1 = row[lo], row[hi] + 1.5
        w = 3.6
        gid = f"regime-{regime['name']}"
        strong = highlight == regime["name"]
        _box(ax, x, y0, w, y1 - y0, fill=fill if highlight in (None, regime["name"]) else th.panel,
             edge=th.ink, gid=gid + ("-highlight" if strong else ""), lw=2.4 if strong else 1.0,
             round_=True)
        if len(regime["els"]) == 2 and hi - lo > 1:  # EL2&0 skips EL1: mark the gap
            _box(ax, x, row[1], w, 1.5, fill=th.face, edge=th.muted, dashed=True)
            ax.text(x + w / 2, row[1] + 0.75, "(not EL1)", ha="center", va="center",
                    fontsize=9, color=th.muted)
        ink = ON_FILL if highlight in (None, regime["name"]) else th.ink
        top = y1 - 0.3
        ax.text(x + w / 2, top, f"{regime['name']} regime", ha="center", va="center",
                fontsize=11, fontweight="bold", color=ink)
        ax.text(x + w / 2, top - 0.45, " / ".join(regime["ttbrs"]) if len(
            regime["ttbrs"]) == 1 else "\n".join(regime["ttbrs"]), ha="center", va="top",
            fontsize=9.5, color=ink, family=MONO, linespacing=1.1)
        ax.text(x + w / 2, y0 + 0.22, regime["when"], ha="center", va="center", fontsize=9,
                color=ink)
        if regime["stage2"]:
            ax.text(x + w / 2, y0 - 0.45, "+ stage 2: " + regime["stage2"], ha="center",
                    va="center", fontsize=9, color=th.ink)
    ax.text(0.2, 8.0, "Exception levels and the stage 1 translation regimes that serve them",
            ha="left", va="center", fontsize=12, color=th.ink)
    return fig


__all__ = [
    "EL_OCCUPANTS",
    "LANES",
    "PALETTE",
    "REGIMES",
    "THEMES",
    "Access",
    "Theme",
    "artists_with_gid",
    "figure_meta",
    "memory_map",
    "nested_grid",
    "nv_route",
    "nv_route_nodes",
    "par_fields",
    "par_layout",
    "to_png",
    "translation_regimes",
    "va_fields",
    "va_slices",
    "walk_accesses",
    "walk_chain",
]
