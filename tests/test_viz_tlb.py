"""Figure structure of atlab.viz_tlb: which TLB rows are hit, new, used, removed or evicted, and
which descriptor is stale — read from figure metadata and gids, never pixels."""

from __future__ import annotations

import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from atlab import AtlabError, AtOp, PhysMem, Regime, S1Builder, SysRegs, parse_scenario, run_at
from atlab.builder import scenario_dict
from atlab.pe import Machine, PeEvent
from atlab.tlb import TLB_COLUMNS, Tlb, TlbiOp, TlbPolicy
from atlab.trace import Trace
from atlab.viz import GREEN, ORANGE, SKY, THEMES, artists_with_gid, figure_meta
from atlab.viz_tlb import ROW_STATES, tlb_table, tlb_view

VA = 0x1000_0000  # a non-global 4KB page, ASID 5
OLD_PA = 0x4100_0000
NEW_PA = 0x4A00_0000
ASID = 5
LEAF_SEQ = 4  # a 4-level walk fills three walk cache entries (#1-#3), then the leaf (#4)


def _system() -> tuple[SysRegs, PhysMem, Trace]:
    b = S1Builder(Regime.EL10, tables=(0x4020_0000, 0x4030_0000), asid=ASID)
    b.map(VA, OLD_PA, 0x1000, ap="EL1 RW / EL0 RW", ng=True)
    sc = parse_scenario(scenario_dict(name="viz-tlb", s1=[b], sysregs={"VTTBR_EL2": 3 << 48}))
    mem = sc.fresh_memory()
    return sc.regs, mem, run_at(AtOp.S1E1R, VA, regs=sc.regs, mem=sc.fresh_memory()).trace


def _remapped(machine: Machine, trace: Trace) -> None:
    leaf = trace.steps[-1]
    machine.store(leaf.desc_pa, (leaf.raw & ~0xFFFF_FFFF_F000) | NEW_PA)


def _fill(fig: Figure, gid: str) -> str:
    (patch,) = artists_with_gid(fig, gid)
    return str(to_hex(patch.get_facecolor()))


def _states(fig: Figure) -> dict[int, str]:
    return {r["seq"]: r["state"] for r in figure_meta(fig)["rows"]}


def test_hit_row_highlighted_and_stale_descriptor_marked() -> None:
    """D8.16: after the remap without a TLBI, AT hits the old leaf entry; the leaf descriptor
    in memory no longer holds the word the entry cached."""
    regs, mem, trace = _system()
    m = Machine(regs, mem)
    m.at(AtOp.S1E1R, VA)
    _remapped(m, trace)
    look = m.at(AtOp.S1E1R, VA)
    assert look.hit and look.entry is not None and look.entry.seq == LEAF_SEQ
    fig = tlb_table(m.history[-1], page_tables=trace, mem=mem)
    meta = figure_meta(fig)
    assert meta["kind"] == "tlb_table" and meta["columns"] == list(TLB_COLUMNS)
    assert meta["hit"] == [LEAF_SEQ] and meta["new"] == [] and meta["removed"] == []
    assert _states(fig) == {1: "", 2: "", 3: "", LEAF_SEQ: "hit"}
    assert _fill(fig, f"tlb-row-{LEAF_SEQ}") == ORANGE.lower()
    assert _fill(fig, "tlb-row-1") == THEMES["light"].face
    # the stale descriptor: the level 3 one, cached by the hit entry only
    assert [(d["level"], d["current"] & ~0xFFF, d["cached"] & ~0xFFF, d["entries"])
            for d in meta["stale"]] == [(3, NEW_PA, OLD_PA, [LEAF_SEQ])]
    assert len(artists_with_gid(fig, "pt-stale-S1L3")) == 1
    assert {a.get_gid() for a in artists_with_gid(fig, "pt-row-")} == {
        "pt-row-S1L0", "pt-row-S1L1", "pt-row-S1L2"}
    assert [r["stale"] for r in meta["rows"]] == [False, False, False, True]
    assert meta["rows"][3]["cells"][-1] == hex(OLD_PA)  # the output column still says old


def test_removed_rows_greyed_and_struck() -> None:
    """R_BLDZX: the TLBI completes on the issuing PE at the ISB after the DSB; the ISB step
    shows the entries it removed, though they are no longer in the TLB."""
    regs, mem, trace = _system()
    m = Machine(regs, mem)
    m.at(AtOp.S1E1R, VA)
    _remapped(m, trace)
    m.tlbi(TlbiOp.VAE1, va=VA, asid=ASID)
    m.dsb()
    assert figure_meta(tlb_table(m.history[-1]))["removed"] == []  # DSB: pending here
    m.isb()
    event = m.history[-1]
    assert len(event.tlbs[0]) == 0
    fig = tlb_table(event, page_tables=trace, mem=mem)
    meta = figure_meta(fig)
    assert meta["removed"] == [1, 2, 3, LEAF_SEQ]
    for seq in meta["removed"]:
        assert len(artists_with_gid(fig, f"tlb-strike-{seq}")) == 1
        assert _fill(fig, f"tlb-row-{seq}") == THEMES["light"].panel
    assert meta["stale"] == []  # no entry left holds the old word
    assert "completes the TLBI" in meta["note"]


def test_new_and_used_rows_on_a_miss() -> None:
    """TLBI VALE1 removes the leaf only (last level): the next walk resumes from the level 2
    walk cache entry (used) and fills a new leaf."""
    regs, mem, _ = _system()
    first = Tlb().translate(AtOp.S1E1R, VA, regs=regs, mem=mem)
    fig = tlb_table(first)
    assert _states(fig) == {1: "new", 2: "new", 3: "new", LEAF_SEQ: "new"}
    assert _fill(fig, "tlb-row-1") == GREEN.lower()
    after = first.tlb.tlbi(TlbiOp.VALE1, regs=regs, va=VA, asid=ASID).tlb
    again = after.translate(AtOp.S1E1R, VA, regs=regs, mem=mem)
    fig = tlb_table(again)
    meta = figure_meta(fig)
    assert meta["used"] == [3] and meta["new"] == [5] and meta["hit"] == []
    assert _fill(fig, "tlb-row-3") == SKY.lower()
    assert meta["title"] == f"TLB after AT S1E1R, {VA:#x}"


def test_evicted_rows() -> None:
    """A full TLB replaces entries (TlbPolicy capacity 2, LRU): the evicted ones are greyed."""
    regs, mem, _ = _system()
    look = Tlb(policy=TlbPolicy(capacity=2)).translate(AtOp.S1E1R, VA, regs=regs, mem=mem)
    assert len(look.evicted) == 2
    fig = tlb_table(look)
    assert _states(fig) == {3: "new", LEAF_SEQ: "new", 1: "evicted", 2: "evicted"}
    assert artists_with_gid(fig, "tlb-strike-") == []  # struck = removed by a TLBI only


def test_other_pe_removals_after_a_broadcast_tlbi() -> None:
    """R_YNJCP: a broadcast TLBI (…IS) completes on the other PEs at the issuer's DSB."""
    regs, mem, trace = _system()
    m = Machine(regs, mem, pes=2)
    m.at(AtOp.S1E1R, VA, pe=1)
    _remapped(m, trace)
    m.tlbi(TlbiOp.VAE1IS, va=VA, asid=ASID)
    m.dsb()
    event = m.history[-1]
    assert figure_meta(tlb_table(event))["removed"] == []  # PE0's own TLB: empty
    meta = figure_meta(tlb_table(event, pe=1))
    assert meta["pe"] == 1 and meta["removed"] == [1, 2, 3, LEAF_SEQ]
    assert meta["title"] == "PE1 TLB after PE0: DSB ISH"


def test_page_tables_without_memory_use_the_values_read() -> None:
    """Without ``mem`` a descriptor's value is the one the given walk read: a walk of the
    remapped tables shows the stale leaf, the walk that filled the entry does not."""
    regs, mem, trace = _system()
    m = Machine(regs, mem)
    m.at(AtOp.S1E1R, VA)
    _remapped(m, trace)
    event = m.history[-1]
    assert figure_meta(tlb_table(event, page_tables=trace))["stale"] == []
    now = run_at(AtOp.S1E1R, VA, regs=regs, mem=mem).trace
    stale = figure_meta(tlb_table(event, page_tables=now.steps))["stale"]
    assert [d["entries"] for d in stale] == [[LEAF_SEQ]]


def test_empty_tlb_dark_theme_and_legend() -> None:
    fig = tlb_table(Tlb(), page_tables=[], theme="dark")
    meta = figure_meta(fig)
    assert meta["rows"] == [] and len(artists_with_gid(fig, "tlb-empty")) == 1
    assert to_hex(fig.get_facecolor()) == THEMES["dark"].face
    assert meta["legend"][:len(ROW_STATES)] == list(ROW_STATES.values())
    assert {a.get_gid() for a in artists_with_gid(fig, "tlb-legend-")} == {
        *(f"tlb-legend-{s}" for s in ROW_STATES), "tlb-legend-stale"}
    assert "tlb-legend-stale" not in {a.get_gid() for a in
                                      artists_with_gid(tlb_table(Tlb()), "tlb-legend-")}


@pytest.mark.parametrize(
    ("source", "kw", "match"),
    [
        (Tlb(), {"theme": "sepia"}, "unknown theme"),
        (Tlb(), {"pe": 0}, "a Tlb is one PE's TLB"),
        (PeEvent(0, "dsb", "DSB ISH", tlbs=(Tlb(),)), {"pe": 1}, "no TLB for PE1"),
        ("TLB", {}, "not str"),
    ],
    ids=["bad-theme", "pe-of-a-Tlb", "pe-out-of-range", "not-a-TLB"],
)
def test_misuse_raises_atlab_error(source: object, kw: dict[str, object], match: str) -> None:
    with pytest.raises(AtlabError, match=match):
        tlb_table(source, **kw)  # type: ignore[arg-type]


def test_tlb_view_orders_live_entries_first() -> None:
    regs, mem, _ = _system()
    m = Machine(regs, mem)
    m.at(AtOp.S1E1R, VA)
    m.tlbi(TlbiOp.VALE1, va=VA, asid=ASID)
    m.dsb()
    m.isb()
    view = tlb_view(m.history[-1])
    assert [e.seq for e in view.rows] == [1, 2, 3, LEAF_SEQ]  # live walk cache, then removed
    assert view.states == {1: "", 2: "", 3: "", LEAF_SEQ: "removed"}
