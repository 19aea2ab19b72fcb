"""Figure structure of atlab.viz: highlighted entries, labels, metadata — never pixels."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from atlab import AtlabError, AtResult, Granule, Par, Scenario, load_scenarios, viz
from atlab.nv import Context, emulate_at, load_nv_scenarios

ROOT = Path(__file__).resolve().parent.parent
SMOKE = {s.name: s for s in load_scenarios(ROOT / "tests/data/conformance/smoke.json")}
NV = load_nv_scenarios(str(ROOT / "examples/nv_l1_guest_hypervisor.json"))[0]


def run(name: str, i: int) -> AtResult:
    sc: Scenario = SMOKE[name]
    return sc.run_op(sc.ops[i])


# --- the VA, sliced (AArch64.S1StartLevel(), D8.2 "translation table walk" index ranges) -------
@pytest.mark.parametrize(
    ("granule", "txsz", "names", "offset_bits"),
    [
        (Granule.K4, 16, ["TTBR select", "L0 index", "L1 index", "L2 index", "L3 index",
                          "page offset"], 12),
        (Granule.K4, 25, ["TTBR select", "L1 index", "L2 index", "L3 index", "page offset"], 12),
        (Granule.K16, 16, ["TTBR select", "L0 index", "L1 index", "L2 index", "L3 index",
                           "page offset"], 14),
        (Granule.K64, 22, ["TTBR select", "L2 index", "L3 index", "page offset"], 16),
        (Granule.K4, 12, ["TTBR select", "L-1 index", "L0 index", "L1 index", "L2 index",
                          "L3 index", "page offset"], 12),
    ],
    ids=["4K-T0SZ16-L0", "4K-T0SZ25-L1", "16K-T0SZ16-L0", "64K-T0SZ22-L2", "4K-T0SZ12-LPA2-L-1"],
)
def test_va_fields_slices(granule: Granule, txsz: int, names: list[str],
                          offset_bits: int) -> None:
    fig = viz.va_fields(0x1234_5678_9ABC, granule=granule, txsz=txsz)
    assert isinstance(fig, Figure)
    fields = viz.figure_meta(fig)["fields"]
    assert [f["name"] for f in fields] == names
    # the fields tile bits [63:0] exactly
    assert fields[0]["hi"] == 63 and fields[-1]["lo"] == 0
    assert all(a["lo"] == b["hi"] + 1 for a, b in itertools.pairwise(fields))
    assert fields[-1]["hi"] == offset_bits - 1
    assert fields[-1]["value"] == 0x1234_5678_9ABC & ((1 << offset_bits) - 1)


def test_va_fields_indices_match_the_walk() -> None:
    res = run("a_el1_4k_48bit", 0)
    fields = viz.figure_meta(viz.va_fields(res.va))["fields"]
    indices = [f["value"] for f in fields if f["name"].endswith("index")]
    assert indices == [s.index for s in res.trace.steps]


def test_va_fields_tbi_and_errors() -> None:
    names = [f["name"] for f in viz.figure_meta(viz.va_fields(tbi=True))["fields"]]
    assert names[:2] == ["top byte (TBI)", "TTBR select"]
    with pytest.raises(AtlabError):
        viz.va_fields(txsz=64)
    with pytest.raises(AtlabError):
        viz.va_fields(1 << 64)
    with pytest.raises(AtlabError):
        viz.va_fields(0, theme="sepia")


# --- the stage 1 walk as a chain of tables ------------------------------------------------------
def test_walk_chain_highlights_one_entry_per_level() -> None:
    res = run("a_el1_4k_48bit", 0)
    fig = viz.walk_chain(res.trace)
    meta = viz.figure_meta(fig)
    assert meta["levels"] == [0, 1, 2, 3]
    assert meta["highlighted"] == [0, 1, 2, 3]
    assert len(viz.artists_with_gid(fig, "highlight-entry")) == 4
    assert not viz.artists_with_gid(fig, "fault")
    assert meta["labels"] == ["S1 L0 table", "S1 L1 table", "S1 L2 table", "S1 L3 table",
                              "output"]
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert "[36]" in texts and "[393]" in texts  # the indices of VA 0x123456789abc


@pytest.mark.parametrize("k", [0, 1, 3])
def test_walk_chain_stepper_frame(k: int) -> None:
    res = run("a_el1_4k_48bit", 0)
    fig = viz.walk_chain(res.trace, current=k)
    meta = viz.figure_meta(fig)
    assert meta["current"] == k
    assert meta["highlighted"] == list(range(k + 1))
    assert len(viz.artists_with_gid(fig, "entry-todo")) == 3 - k


def test_walk_chain_marks_the_faulting_descriptor() -> None:
    res = run("a_el1_4k_48bit", 4)  # translation fault, level 3
    fig = viz.walk_chain(res.trace)
    assert viz.figure_meta(fig)["fault"]
    assert len(viz.artists_with_gid(fig, "fault-entry")) == 1
    assert len(viz.artists_with_gid(fig, "highlight-entry")) == 3


def test_walk_chain_stage2_and_empty_walk() -> None:
    res = run("c_stage2", 0)
    meta = viz.figure_meta(viz.walk_chain(res.trace.final_s2))
    assert meta["stage"] == 2 and meta["levels"] == [1, 2, 3]
    before = run("a_el1_4k_48bit", 5)  # level 0 fault before the walk: nothing read
    meta = viz.figure_meta(viz.walk_chain(before.trace))
    assert meta["levels"] == [] and meta["highlighted"] == []
    with pytest.raises(AtlabError):
        viz.walk_chain(res.trace, current=9)


# --- the nested 2-D walk ------------------------------------------------------------------------
def test_nested_grid_counts_every_access_in_order() -> None:
    res = run("c_stage2", 0)  # 4 S1 levels, S2 of each table in 2 levels, final IPA in 3
    acc = viz.walk_accesses(res.trace)
    assert len(acc) == res.trace.total_accesses == 15
    assert [a.n for a in acc] == list(range(1, 16))
    assert [(a.step.stage, a.step.level) for a in acc[:3]] == [(2, 1), (2, 2), (1, 0)]
    assert acc[-1].purpose == "S2 L3 for the final IPA"
    fig = viz.nested_grid(res.trace)
    meta = viz.figure_meta(fig)
    assert meta["rows"] == ["S1 L0", "S1 L1", "S1 L2", "S1 L3", "final IPA"]
    assert meta["cols"] == ["S2 L1", "S2 L2", "S2 L3", "S1 descriptor"]
    assert meta["fault_access"] is None
    numbers = {t.get_text() for t in fig.texts} | {t.get_text() for t in fig.axes[0].texts}
    assert {str(n) for n in range(1, 16)} <= numbers


def test_nested_grid_current_and_fault() -> None:
    ok = run("c_stage2", 0)
    fig = viz.nested_grid(ok.trace, current=5)
    assert viz.figure_meta(fig)["highlighted"] == [6]
    assert len(viz.artists_with_gid(fig, "highlight-access")) == 1
    # a stage 2 fault on the level 0 table address: the S1 L0 descriptor is never read
    bad = run("c_stage2", 4)
    acc = viz.walk_accesses(bad.trace)
    assert [(a.step.stage, a.step.level) for a in acc] == [(2, 1), (2, 2)]
    fig = viz.nested_grid(bad.trace)
    assert viz.figure_meta(fig)["fault_access"] == 2
    assert len(viz.artists_with_gid(fig, "fault-access")) == 1
    # a stage 2 fault on the final IPA: the last access of the final row
    final = run("c_stage2", 6)
    assert viz.figure_meta(viz.nested_grid(final.trace))["fault_access"] == 15


# --- PAR_EL1 ------------------------------------------------------------------------------------
def test_par_fields_success_and_fault() -> None:
    ok = viz.par_fields(Par(0xFF00000045678B80))
    meta = viz.figure_meta(ok)
    assert meta["labels"] == ["ATTR", "PA", "RES1", "IMPDEF", "NS", "SH", "RES0", "F"]
    values = {f["name"]: f["value"] for f in meta["fields"]}
    assert values["PA"] == 0x45678000 and values["ATTR"] == 0xFF and values["SH"] == 3
    bad = viz.par_fields(0xB0D)
    fields = {f["name"]: f["value"] for f in viz.figure_meta(bad)["fields"]}
    assert fields["FST"] == 0b000110 and fields["S"] == 1 and fields["PTW"] == 1
    assert viz.artists_with_gid(bad, "par-FST")
    with pytest.raises(AtlabError):
        viz.par_fields(1 << 64)


# --- the NV route -------------------------------------------------------------------------------
def test_nv_route_trap_fast_path_and_fallback() -> None:
    system = NV.system()
    first = emulate_at(system, NV.ops[0].op, NV.ops[0].va)  # hole: software walker
    meta = viz.figure_meta(viz.nv_route(first))
    assert meta["route"] == "TRAP_L0" and meta["path"] == "software walker"
    assert [n["gid"] for n in meta["nodes"]] == ["start", "trap", "fast-path-rejected",
                                                 "software", "result"]
    again = emulate_at(system, NV.ops[0].op, NV.ops[0].va)  # the hole stays a hole
    assert again.path == "software walker"
    system.l1_access(0x4040_1000)  # L1 reads its level 1 table: L0 maps the page
    fast = emulate_at(system, NV.ops[0].op, NV.ops[0].va)
    meta = viz.figure_meta(viz.nv_route(fast))
    assert meta["path"] == "fast path"
    assert [n["gid"] for n in meta["nodes"]] == ["start", "trap", "fast-path-ok", "result"]
    assert [n["lane"] for n in meta["nodes"]] == [1, 2, 3, 1]


def test_nv_route_undefined_and_l2() -> None:
    und = emulate_at(NV.system(), NV.ops[5].op, NV.ops[5].va)  # S1E3R below EL3
    meta = viz.figure_meta(viz.nv_route(und))
    assert meta["route"] == "UNDEFINED" and meta["nodes"][-1]["gid"] == "undefined"
    system = NV.system()
    system.context = Context.L2_EL1
    l2 = emulate_at(system, NV.ops[2].op, NV.ops[2].va)
    meta = viz.figure_meta(viz.nv_route(l2, theme="dark"))
    assert meta["route"] == "HARDWARE"
    assert meta["nodes"][0]["lane"] == 0 and meta["nodes"][1]["lane"] == 3


# --- every figure: a Figure with a face colour and PNG output -----------------------------------
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_figures_render_in_both_themes(theme: str) -> None:
    res = run("c_stage2", 0)
    figs = [viz.va_fields(res.va, theme=theme), viz.walk_chain(res.trace, theme=theme),
            viz.nested_grid(res.trace, theme=theme), viz.par_fields(res.par, theme=theme)]
    face = viz.THEMES[theme].face
    for fig in figs:
        assert isinstance(fig, Figure)
        assert fig.get_facecolor()[:3] == pytest.approx(
            tuple(int(face[i:i + 2], 16) / 255 for i in (1, 3, 5)))
        assert viz.to_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_meta_rejects_foreign_figures() -> None:
    with pytest.raises(AtlabError):
        viz.figure_meta(Figure())


def test_memory_map_of_a_ptdump() -> None:
    from atlab.builder import S1Builder
    from atlab.ptdump import ptdump

    b = S1Builder(tables=(0x40200000, 0x40300000))
    b.map(0x400000, 0x80000000, 0x400000, ap="EL1 RW / EL0 RW", uxn=True, pxn=True)
    b.map(0x800000, 0x90000000, 0x3000, ap="EL1 RW", mem="device-ngnrne")
    dump = ptdump(b.regs(), b.memory())
    fig = viz.memory_map(dump)
    meta = viz.figure_meta(fig)
    assert meta["ranges"] == len(dump.ranges) == 2
    assert meta["labels"][0].startswith("0x0000000000400000-")
    assert meta["wx"] == len(viz.artists_with_gid(fig, "range-wx")) == len(dump.wx())


# --- the primer's picture: exception levels and translation regimes (D8.1.2) -----------------
def test_translation_regimes_match_the_library() -> None:
    from matplotlib.text import Text

    from atlab import AtOp, FeatureSet, SysRegs
    from atlab.regime import compute_translation_regime

    fig = viz.translation_regimes(highlight="EL2&0")
    meta = viz.figure_meta(fig)
    assert meta["levels"] == [3, 2, 1, 0] and meta["highlight"] == "EL2&0"
    assert len(viz.artists_with_gid(fig, "regime-EL2&0-highlight")) == 1
    assert len(viz.artists_with_gid(fig, "el-")) == 4
    regimes = {r["name"]: r for r in meta["regimes"]}
    assert set(regimes) == {"EL1&0", "EL2", "EL2&0", "EL3"}
    # Each regime serves the ELs the library's TranslationRegime() says it does.
    feats = FeatureSet.all()
    for e2h, tge in itertools.product((0, 1), repeat=2):
        regs = SysRegs({"HCR_EL2": 1 << 31 | e2h << 34 | tge << 27})
        for op, el in ((AtOp.S1E0R, 0), (AtOp.S1E1R, 1), (AtOp.S1E2R, 2), (AtOp.S1E3R, 3)):
            got = compute_translation_regime(op, regs, feats).regime
            served = regimes[str(got)]["els"]
            # S1E1R in the host ({1,1}) translates for EL2 (EL1 becomes EL2).
            assert el in served or (el == 1 and 2 in served), (op, e2h, tge, got)
    # Every text is at least 9 pt (legible at notebook width).
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text()]
    assert sizes and min(sizes) >= meta["fontsize_min"] == 9.0
    with pytest.raises(AtlabError):
        viz.translation_regimes(highlight="EL1")


# --- legibility: every text of every figure is at least 9 pt at the figure's own size ----------
def _all_figures() -> dict[str, Figure]:
    from atlab import AtOp
    from atlab.builder import S1Builder
    from atlab.ptdump import ptdump
    from atlab.regime import Regime

    b = S1Builder(Regime.EL10, va_bits=48, tables=(0x4020_0000, 0x4040_0000))
    b.map(0x1234_5678_9000, 0x4567_8000, 0x1000, ap="EL1 RW")
    nested = run("c_stage2", 0)
    return {
        "va_fields": viz.va_fields(0x1234_5678_9ABC, tbi=True),
        "walk_chain": viz.walk_chain(run("a_el1_4k_48bit", 0).trace, current=1),
        "walk_chain_s2_fault": viz.walk_chain(run("c_stage2", 4).trace),
        "nested_grid": viz.nested_grid(nested.trace, current=3),
        "par_fields_fault": viz.par_fields(Par(0xB0D)),
        "par_fields_ok": viz.par_fields(Par(0xFF00_0000_4567_8B80)),
        "nv_route": viz.nv_route(emulate_at(NV.system(), AtOp.S1E2R, 0xFFFF_8000_0000_0000)),
        "memory_map": viz.memory_map(ptdump(b.regs(), b.memory())),
        "translation_regimes": viz.translation_regimes(),
        "walk_chain_5_levels": viz.walk_chain(_lpa2_walk().trace, current=2),
    }


def _lpa2_walk() -> AtResult:
    from atlab import AtOp, run_at
    from atlab.builder import S1Builder
    from atlab.regime import Regime

    b = S1Builder(Regime.EL10, va_bits=52, ds=True, tables=(0x4020_0000, 0x4040_0000))
    b.map(0x1234_5678_9000, 0x4567_8000, 0x1000, ap="EL1 RW")
    res = run_at(AtOp.S1E1R, 0x1234_5678_9ABC, regs=b.regs(), mem=b.memory())
    assert [s.level for s in res.trace.steps] == [-1, 0, 1, 2, 3]
    return res


def test_every_text_in_every_figure_is_at_least_9_pt() -> None:
    from matplotlib.text import Text

    for name, fig in _all_figures().items():
        small = sorted({(t.get_fontsize(), t.get_text()[:30]) for t in fig.findobj(Text)
                        if t.get_text() and t.get_fontsize() < 9})
        assert small == [], f"{name}: {small}"
        # <= 13.4 in: shown unscaled (widget PNGs at 72 dpi) in a ~965 px output area, so
        # 9 pt stays 9 px (tests/test_browser.py measures it).
        assert fig.get_size_inches()[0] <= 13.4, name


def test_walk_chain_shows_what_a_pie_leaf_selects() -> None:
    """With TCR2_EL1.PIE the leaf's column names the PIR/PIRE0 entries its PIIndex selects
    (AArch64.S1ApplyOutputPerms(), AArch64.S1IndirectBasePermissions()) and the figure grows to
    hold them; a walk without PIE keeps the usual height."""
    from atlab import AtOp, PhysMem, Regime, run_at
    from atlab.builder import S1Builder

    b = S1Builder(Regime.EL10, tables=(0x4020_0000, 0x4040_0000))
    b.map(0x50_0000, 0x4B00_0000, 0x1000, ap="EL1 RW / EL0 RW", pxn=True)  # PIIndex 0b0101
    mem = b.memory()
    assert isinstance(mem, PhysMem)
    pie = b.regs().replace(HCRX_EL2=1 << 14, TCR2_EL1=1 << 1, PIR_EL1=0b0101 << 20,
                           PIRE0_EL1=0b0001 << 20)
    fig = viz.walk_chain(run_at(AtOp.S1E1R, 0x50_0000, regs=pie, mem=mem).trace)
    meta = viz.figure_meta(fig)
    assert meta["selections"][:2] == ["PIIndex 0b0101 → PIR_EL1[23:20] = 0b0101 (RW)",
                                      "PIIndex 0b0101 → PIRE0_EL1[23:20] = 0b0001 (R)"]
    (text,) = viz.artists_with_gid(fig, "selections")
    assert "PIR_EL1[23:20]" in text.get_text() and "PIRE0_EL1[23:20]" in text.get_text()
    plain = viz.walk_chain(run_at(AtOp.S1E1R, 0x50_0000, regs=b.regs(), mem=mem).trace)
    assert fig.get_figheight() > plain.get_figheight() == 4.1
    assert viz.figure_meta(plain)["selections"] == []  # no PIE/POE/AIE: the usual picture
    assert not viz.artists_with_gid(plain, "selections")
    viz.to_png(fig)
