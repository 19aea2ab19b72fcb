"""The widget objects: set a control in Python, check the state and the output they show."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as w
import pytest

from atlab import AtOp, Granule, Regime, load_scenarios
from atlab.nv import Context, load_nv_scenarios
from atlab.viz import artists_with_gid, figure_meta, walk_chain
from atlab.widgets import (
    Decoder,
    NvExplorer,
    RegimeExplorer,
    WalkStepper,
    make_decoder,
    make_nv_explorer,
    make_regime_explorer,
    make_walk_stepper,
)
from atlab.widgets.regime import cell_text, with_e2h_tge
from atlab.widgets.stepper import granule_of

ROOT = Path(__file__).resolve().parent.parent
SMOKE = {s.name: s for s in load_scenarios(ROOT / "tests/data/conformance/smoke.json")}
NV = load_nv_scenarios(str(ROOT / "examples/nv_l1_guest_hypervisor.json"))[0]


def test_every_explorer_is_a_widget() -> None:
    sc = SMOKE["c_stage2"]
    for widget in (make_regime_explorer(SMOKE["e_vhe_e2h1_tge0"]),
                   make_walk_stepper(sc.run_op(sc.ops[0])), make_decoder(),
                   make_nv_explorer(NV)):
        assert isinstance(widget, w.VBox)
        assert widget.error.message == ""


# --- regime explorer: AArch64.AT() + TranslationRegime(), HCR_EL2.{E2H,TGE} ----------------------
@pytest.mark.parametrize(
    ("e2h", "tge", "op", "regime", "ttbr", "pa"),
    [
        (1, 0, AtOp.S1E1R, Regime.EL10, "TTBR0_EL1", 0x45678000),
        (1, 1, AtOp.S1E1R, Regime.EL20, "TTBR0_EL2", 0x4ABCD000),
        (0, 1, AtOp.S1E1R, Regime.EL10, "TTBR0_EL1", 0x123456789000),  # S1 off with TGE=1
        (1, 0, AtOp.S1E2R, Regime.EL20, "TTBR0_EL2", 0x4ABCD000),
    ],
    ids=["E2H1-TGE0-S1E1R->EL10", "E2H1-TGE1-S1E1R->EL20", "E2H0-TGE1-S1E1R->EL10-S1off",
         "E2H1-TGE0-S1E2R->EL20"],
)
def test_regime_explorer_toggles(e2h: int, tge: int, op: AtOp, regime: Regime, ttbr: str,
                                 pa: int) -> None:
    rx = RegimeExplorer(SMOKE["e_vhe_e2h1_tge0"])
    rx.op.value = op
    rx.e2h.value = e2h
    rx.tge.value = tge
    assert rx.error.message == ""
    assert rx.choice is not None and rx.choice.regime is regime
    assert rx.registers[0] == ttbr
    assert rx.result is not None and rx.result.par is not None and rx.result.par.pa == pa
    assert html.escape(str(regime)) in rx.regime_html.value
    assert f"{pa:#x}" in rx.par_html.value
    assert rx.table_html.value.count("atlab-current-cell") == 1


def test_regime_table_highlights_the_current_cell() -> None:
    rx = RegimeExplorer(SMOKE["e_vhe_e2h1_tge0"])
    rx.e2h.value, rx.tge.value = 1, 1
    rx.op.value = AtOp.S1E0R
    cell = rx.table_html.value.split("atlab-current-cell")[1].split("</td>")[0]
    assert "EL2&amp;0, EL0" in cell
    regs = with_e2h_tge(SMOKE["e_vhe_e2h1_tge0"].regs, 0, 1)
    assert cell_text(AtOp.S1E1R, regs, SMOKE["e_vhe_e2h1_tge0"].features) == \
        "EL1&0, EL1 (S1 off: TGE=1)"


def test_regime_explorer_stage2_registers() -> None:
    rx = RegimeExplorer(SMOKE["c_stage2"])
    assert rx.op.value is AtOp.S12E1R
    assert rx.registers == ["TTBR0_EL1", "TCR_EL1", "SCTLR_EL1", "MAIR_EL1", "VTTBR_EL2",
                            "VTCR_EL2"]
    rx.va.value = "0xffff800000000000"
    assert rx.registers[0] == "TTBR1_EL1"


def test_regime_explorer_errors_inline() -> None:
    rx = RegimeExplorer(SMOKE["e_vhe_e2h1_tge0"])
    rx.va.value = "not hex"
    assert "not a number" in rx.error.message
    assert "&#9888;" in rx.error.value
    rx.va.value = "0x1" + "0" * 17  # 69 bits
    assert "does not fit in 64 bits" in rx.error.message
    rx.va.value = "0x123456789000"
    assert rx.error.message == ""
    rx.tge.value = 1
    rx.el.value = 1  # nothing runs at EL1 with TGE=1
    assert "TGE=1" in rx.error.message and rx.result is None
    assert rx.choice is not None  # the regime is still shown
    rx.el.value = 2
    assert rx.error.message == "" and rx.result is not None



def test_regime_explorer_undefined_op_shows_no_regime() -> None:
    """AT S1E2R at EL1 is UNDEFINED (C5.4.13): no regime beside the exception."""
    rx = RegimeExplorer(SMOKE["e_vhe_e2h1_tge0"])
    rx.op.value = AtOp.S1E2R
    rx.el.value = 1
    assert rx.result is not None and rx.result.par is None
    text = rx.regime_html.value
    assert "UNDEFINED at EL1 — no regime" in text and rx.choice is None
    assert "EL2&amp;0" not in text and "permissions of" not in text
    assert "UNDEFINED" in rx.par_html.value
    rx.el.value = 2  # back at EL2 the regime returns
    assert "EL2&amp;0" in rx.regime_html.value and "permissions of EL2" in rx.regime_html.value
    assert rx.choice is not None and rx.choice.regime is Regime.EL20

# --- walk stepper -------------------------------------------------------------------------------
def test_walk_stepper_nested_step_back() -> None:
    sc = SMOKE["c_stage2"]
    res = sc.run_op(sc.ops[0])
    st = WalkStepper(res)
    assert st.mode.value == "nested 2-D" and len(st.accesses) == 15
    assert st.picture.value[:4] == b"\x89PNG"
    first = st.picture.value
    st.step_button.click()
    assert st.position.value == 1 and st.picture.value != first
    st.step()
    assert st.current is not None and (st.current.step.stage, st.current.step.level) == (1, 0)
    assert "S1 L0 descriptor" in st.descriptor_html.value
    assert "next_table" in st.descriptor_html.value
    st.back_button.click()
    assert st.position.value == 1
    assert st.ended_html.value == ""
    st.position.value = 14
    assert st.at_end and "why the walk ended" in st.ended_html.value
    assert "PA 0x45678123" in st.ended_html.value
    assert "effective stage 1 rights: RWX" in st.perms_html.value
    st.step()  # stays on the last access
    assert st.position.value == 14
    st.position.value = 0
    st.back()
    assert st.position.value == 0


def test_walk_stepper_modes() -> None:
    sc = SMOKE["c_stage2"]
    st = WalkStepper(sc.run_op(sc.ops[0]), mode="stage 1")
    assert list(st.mode.options) == ["stage 1", "stage 2", "nested 2-D"]
    assert len(st.accesses) == 4 and st.position.max == 3 and st.play.max == 3
    st.position.value = 3
    st.mode.value = "stage 2"
    assert st.position.value == 0 and len(st.accesses) == 3
    assert st.current is not None and st.current.step.stage == 2
    flat = SMOKE["a_el1_4k_48bit"]
    st = WalkStepper(flat.run_op(flat.ops[0]).trace)
    assert list(st.mode.options) == ["stage 1"]
    with pytest.raises(Exception, match="not available"):
        WalkStepper(flat.run_op(flat.ops[0]), mode="nested 2-D")


def test_walk_stepper_fault_and_empty_walk() -> None:
    sc = SMOKE["c_stage2"]
    st = WalkStepper(sc.run_op(sc.ops[4]))  # stage 2 fault on the S1 L0 table address
    st.position.value = st.position.max
    assert "#D55E00" in st.ended_html.value and "translation L2 S2" in st.ended_html.value
    flat = SMOKE["a_el1_4k_48bit"]
    st = WalkStepper(flat.run_op(flat.ops[5]))  # faults before the walk
    assert st.accesses == [] and "no descriptor was read" in st.counter.value
    assert "before the walk" in st.ended_html.value



def test_walk_stepper_stage_1_mode_shows_no_descriptor_that_was_never_read() -> None:
    """A stage 2 fault on the S1 L0 table address: stage 1 read nothing, so its mode shows no
    stage 1 descriptor (no 0x0 'descriptor'), says why, and points at the nested mode."""
    sc = SMOKE["c_stage2"]
    res = sc.run_op(sc.ops[4])
    assert [s.kind for s in res.trace.steps] == ["not read"]
    st = WalkStepper(res, mode="stage 1")
    assert st.accesses == [] and st.current is None
    assert "no descriptor was read" in st.counter.value and st.descriptor_html.value == ""
    assert "never read its L0 descriptor" in st.ended_html.value
    assert "nested 2-D" in st.ended_html.value
    fig = walk_chain(res.trace)
    meta = figure_meta(fig)
    assert meta["levels"] == [] and meta["unread"] == 0 and meta["fault"] is False
    assert artists_with_gid(fig, "unread")
    st.mode.value = "nested 2-D"  # the stage 2 walk that faulted is there
    assert len(st.accesses) >= 1 and all(a.step.kind != "not read" or a.step.stage == 1
                                         for a in st.accesses)
    assert "never read its L0" not in st.ended_html.value

def test_walk_stepper_decodes_with_the_walks_ds() -> None:
    """A 52-bit walk (4KB, TCR_EL1.DS=1) starts at level -1 (R_KSBQV): the stepper decodes
    each descriptor with the walk's DS (the leaf's OA[51:50] are bits [9:8], no SH field)."""
    from atlab import run_at
    from atlab.builder import S1Builder

    b = S1Builder(Regime.EL10, va_bits=52, pa_bits=52, ds=True,
                  tables=(0x4000_0000, 0x4010_0000))
    b.map(0x8_0000_0000_0000, 0xC_0000_4567_8000, 0x1000)
    res = run_at(AtOp.S1E1R, 0x8_0000_0000_0000, regs=b.regs(), mem=b.memory())
    assert res.par is not None and not res.par.f
    st = WalkStepper(res)
    assert st.accesses[0].step.level == -1
    assert "S1 L-1 descriptor" in st.descriptor_html.value
    st.position.value = st.position.max
    assert "0xc000045678000" in st.descriptor_html.value
    assert "<td>SH</td>" not in st.descriptor_html.value


def test_granule_of_steps() -> None:
    sc = SMOKE["a_el1_4k_48bit"]
    steps = sc.run_op(sc.ops[0]).trace.steps
    assert {granule_of(s).name for s in steps} == {"K4"}


# --- decoder ------------------------------------------------------------------------------------
def test_decoder_par_descriptor_register() -> None:
    d = Decoder()
    d.value.value = "0xb0d"
    assert d.fields == {"F": 1, "FST": 6, "PTW": 1, "S": 1}
    assert d.picture.layout.display == ""
    d.kind.value = "descriptor"
    d.value.value = "0x45678703"
    assert d.fields["kind"] == "page" and d.fields["OA"] == 0x45678000
    assert d.picture.layout.display == "none"
    d.level.value = 2
    assert d.fields["kind"] == "table"  # bits[1:0]=0b11 below level 3
    d.value.value = "0x40200701"
    assert d.fields["kind"] == "block" and d.fields["OA"] == 0x40200000
    d.kind.value = "register"
    d.register.value = "TCR_EL1"
    d.value.value = "0x500803510"
    assert d.fields["T0SZ"] == 16 and d.fields["IPS"] == 5
    assert "48 bits" in d.fields_html.value


def test_decoder_errors_inline() -> None:
    d = Decoder()
    d.value.value = ""
    assert "type a value" in d.error.message
    d.value.value = "0x1" + "0" * 16
    assert "does not fit" in d.error.message and d.fields == {}
    d.value.value = "0x81f"
    assert d.error.message == "" and d.fields["FST"] == 0xF



@pytest.mark.parametrize("granule", [Granule.K16, Granule.K64], ids=["16K", "64K"])
def test_decoder_refuses_level_minus_1_outside_4k(granule: Granule) -> None:
    """Level -1 is the 4KB granule's with DS=1 (FEAT_LPA2, R_KSBQV); 16KB walks start at
    level 0 (R_VGVLD), 64KB walks at level 1 (R_MLLGN): the decoder says so instead of
    decoding."""
    d = Decoder("descriptor", 0x40200703)
    d.level.value = -1
    assert "level -1 exists only with the 4KB granule and DS=1" in d.error.message
    assert d.fields == {}
    d.ds.value = True
    assert d.error.message == "" and d.fields["kind"] == "table"  # 4KB, DS=1: fine
    d.granule.value = granule
    assert f"a {granule} walk has no level -1" in d.error.message
    assert d.fields == {} and d.fields_html.value == ""
    d.level.value = 0
    if granule is Granule.K64:
        assert "a 64KB walk has no level 0" in d.error.message and d.fields == {}
        d.level.value = 1
    assert d.error.message == "" and d.fields["kind"] == "table"


def test_decoder_ds_reads_52_bit_output_addresses() -> None:
    """With DS=1 a 4KB page descriptor holds OA[51:50] in bits [9:8] (no SH field there):
    the DS box changes the OA the decoder shows."""
    d = Decoder("descriptor", 0x4567_8703)
    assert d.fields["OA"] == 0x4567_8000 and d.fields["SH"] == 3
    d.ds.value = True
    assert d.fields["OA"] == 0xC_0000_4567_8000 and "SH" not in d.fields


# --- NV explorer --------------------------------------------------------------------------------
def test_nv_explorer_fast_path_only_after_l1_touches_the_hole() -> None:
    nx = NvExplorer(NV)
    assert nx.result is not None and nx.result.path == "software walker"
    assert "traps to L0" in nx.route_html.value
    assert nx.picture.value[:4] == b"\x89PNG"
    nx.run_button.click()  # the emulated AT filled no hole: the software walker again
    assert nx.result is not None and nx.result.path == "software walker"
    assert nx.system is not None
    nx.system.l1_access(0x4040_1000)  # L1 reads its level 1 EL2 table: L0 maps the page
    nx.run_button.click()
    assert nx.result is not None and nx.result.path == "fast path"
    nx.op.value = AtOp.S1E3R
    assert nx.result is not None and nx.result.path == "UNDEFINED"


def test_nv_explorer_context_and_vhcr_bits() -> None:
    nx = NvExplorer(NV)
    nx.op.value = AtOp.S1E1R
    nx.context.value = Context.L2_EL1
    assert nx.result is not None and nx.result.route.kind.name == "HARDWARE"
    nx.bits["AT"].value = True  # vHCR_EL2.AT=1: L2's AT is forwarded to L1
    assert nx.result is not None and nx.result.route.kind.name == "FORWARD_L1"
    assert nx.vregs().field("HCR_EL2", "AT") == 1
    nx.context.value = Context.L2_EL0
    assert nx.result is not None and nx.result.path == "UNDEFINED"
    nx.va.value = "0xg"
    assert "not a number" in nx.error.message and nx.result is None



def test_nv_explorer_names_who_receives_an_injected_abort() -> None:
    """L2's AT meets a hole in L1's stage 2: the Data Abort goes to L1's virtual EL2, injected
    by L0 — not to "the guest" (L2)."""
    nx = NvExplorer(NV)
    nx.context.value = Context.L2_EL1
    nx.op.value = AtOp.S1E1R
    nx.va.value = "0xffff800000000000"
    res = nx.result
    assert res is not None and res.par is None and res.exception is not None
    assert res.exception.target_el == 2 and res.exception.ec == 0x24
    assert "the guest sees" not in nx.par_html.value
    assert "received by:</b>" in nx.par_html.value
    assert "L1, at its virtual EL2, injected by L0" in nx.par_html.value
    nx.va.value = "0x0"  # a PAR again: what L2 reads
    assert "the guest sees" in nx.par_html.value and "received by" not in nx.par_html.value


def test_nv_explorer_invalid_va_clears_the_old_result() -> None:
    nx = NvExplorer(NV)
    assert "PAR_EL1" in nx.par_html.value or "exception" in nx.par_html.value
    nx.va.value = "0xg"
    assert "not a number" in nx.error.message and nx.result is None
    assert nx.par_html.value == "<b>the guest sees:</b> —"
    assert "PAR_EL1" not in nx.par_html.value and nx.narration_html.value == ""
    assert nx.picture.layout.display == "none" and nx.route_html.value == "<b>route:</b> —"
    nx.va.value = "0x0"
    assert nx.error.message == "" and nx.picture.layout.display == ""

# --- page-table builder -------------------------------------------------------------------------
def test_page_table_builder_map_unmap_export() -> None:
    import json

    from atlab import Regime, parse_scenario
    from atlab.widgets import PageTableBuilder

    b = PageTableBuilder()
    b.add_button.click()  # the default 2MB mapping at VA 0x400000
    assert b.error.message == "" and b.dump is not None and len(b.dump.ranges) == 1
    assert b.dump.ranges[0].kind == "BLK" and "TTBR0_EL1=" in b.regs_html.value
    b.va.value, b.pa.value, b.size.value = "0x800000", "0x90000000", "0x3000"
    b.add()
    b.va.value, b.size.value = "0x801000", "0x1000"
    b.remove_button.click()
    assert [hex(r.start) for r in b.dump.ranges] == ["0x400000", "0x800000", "0x802000"]
    b.regime.value = Regime.EL2
    assert "TTBR0_EL2" in b.dump.title
    b.export_button.click()
    sc = parse_scenario(json.loads(b.export_text.value))
    assert [r.par.pa for r in sc.run() if r.par is not None] == [0x80000000, 0x90000000]


def test_page_table_builder_errors_inline() -> None:
    from atlab import Granule
    from atlab.widgets import PageTableBuilder

    b = PageTableBuilder()
    b.remove()
    assert "nothing is mapped" in b.error.message
    b.va.value = "zz"
    b.add()
    assert "not a number" in b.error.message and b.mappings == []
    b.va.value, b.size.value = "0x800000", "0x3000"
    b.add()
    b.granule.value = Granule.K64  # 0x3000 is not 64KB aligned: the old tables stay
    assert "not aligned" in b.error.message and len(b.mappings) == 1


# --- permission views: AP bits, PIE, POE on one page -----------------------------------------
def test_permission_views_toggle() -> None:
    from atlab import PhysMem, run_at
    from atlab.builder import S1Builder
    from atlab.descriptors import pi_index
    from atlab.widgets import make_permission_views

    b = S1Builder(Regime.EL10, va_bits=48, tables=(0x4020_0000, 0x4040_0000))
    b.map(0x50_0000, 0x4B00_0000, 0x1000, ap="EL1 RW / EL0 RW")
    plain, mem = b.regs(), b.memory()
    assert isinstance(mem, PhysMem)
    idx = pi_index(run_at(AtOp.S1E0R, 0x50_0000, regs=plain, mem=mem).trace.steps[-1].raw)
    pie = plain.replace(HCRX_EL2=1 << 14, TCR2_EL1=1 << 1, PIR_EL1=0b0101 << 4 * idx,
                        PIRE0_EL1=0b0010 << 4 * idx)   # EL0 execute-only
    views = make_permission_views({"AP": plain, "PIE": pie}, mem, 0x50_0000)
    assert isinstance(views, w.VBox) and views.error.message == ""
    assert [r[1] for r in views.rows] == ["ok", "ok", "ok", "ok"]
    views.view.value = "PIE"
    assert [r[1] for r in views.rows] == ["ok", "ok", "fault", "fault"]
    assert "PIIndex" in views.leaf.value and "PIRE0_EL1" in views.leaf.value


def _pie_page() -> tuple[object, object, object]:
    """One EL1&0 page (AP=01, PXN: PIIndex 0b0101), its registers without and with S1PIE."""
    from atlab import PhysMem
    from atlab.builder import S1Builder

    b = S1Builder(Regime.EL10, va_bits=48, tables=(0x4020_0000, 0x4040_0000))
    b.map(0x50_0000, 0x4B00_0000, 0x1000, ap="EL1 RW / EL0 RW", pxn=True)
    mem = b.memory()
    assert isinstance(mem, PhysMem)
    pie = b.regs().replace(HCRX_EL2=1 << 14, TCR2_EL1=1 << 1, PIR_EL1=0b0101 << 20,
                           PIRE0_EL1=0b0010 << 20)
    return b.regs(), pie, mem


def test_stepper_explains_an_indirect_permission() -> None:
    """AArch64.S1IndirectBasePermissions(): at the leaf the stepper names the PIR/PIRE0 entry
    the PIIndex selects, and the leaf's descriptor panel lists what each index selects."""
    from atlab import run_at

    _plain, pie, mem = _pie_page()
    res = run_at(AtOp.S1E1R, 0x50_0000, regs=pie, mem=mem)  # type: ignore[arg-type]
    st = make_walk_stepper(res, mode="stage 1")
    assert "PIR_EL1" not in st.perms_html.value  # L0: nothing selected yet
    st.position.value = st.position.max
    text = html.unescape(st.perms_html.value)
    assert "S1 L3: PIIndex 0b0101 → PIR_EL1[23:20] = 0b0101 (RW)" in text
    assert "PIIndex 0b0101 → PIRE0_EL1[23:20] = 0b0010 (X)" in text
    assert "effective stage 1 rights: RW-" in text
    assert "atlab-stepper-selects" in st.descriptor_html.value
    assert "PIRE0_EL1[23:20]" in html.unescape(st.descriptor_html.value)
    assert "form the PIIndex, bit 7 is nDirty" in st.descriptor_html.value


def test_decoder_reads_a_leaf_through_pie_poe_aie() -> None:
    d = make_decoder("descriptor", 0x4B00_0000 | 0b101 << 60 | 1 << 59 | 1 << 54 | 1 << 51
                     | 1 << 7 | 0b010 << 2 | 0x703)
    assert "PIIndex" not in d.fields and d.fields["AttrIndx"] == 0b010
    d.pie.value = True
    d.poe.value = True
    d.aie.value = True
    assert (d.fields["PIIndex"], d.fields["nDirty"], d.fields["POIndex"],
            d.fields["AttrIndx"]) == (0b1010, 1, 0b101, 0b1010)
    assert "0b1010" in d.fields_html.value and d.error.message == ""
    d.stage.value = 2  # S2PIE: PIIndex from the same bits, Dirty is bit 7
    assert d.fields["PIIndex"] == 0b1010 and d.fields["Dirty"] == 1 and "POIndex" not in d.fields


def test_permission_views_misuse_is_an_atlab_error() -> None:
    from atlab import AtlabError, PhysMem
    from atlab.widgets import make_permission_views

    plain, pie, mem = _pie_page()
    for views, m, va in (({}, mem, 0), ({"x": {"TCR_EL1": 0}}, mem, 0),
                         ({"AP": plain}, {}, 0), ({"AP": plain}, mem, -1),
                         ({"AP": plain}, mem, 1 << 64)):
        with pytest.raises(AtlabError) as err:
            make_permission_views(views, m, va)  # type: ignore[arg-type]
        assert "\n" not in str(err.value)
    v = make_permission_views({"AP": plain, "PIE": pie}, mem, 0x50_0000)  # type: ignore[dict-item,arg-type]
    assert isinstance(mem, PhysMem) and v.selections[0][0] == "AttrIndx"
    v.view.value = "PIE"
    assert [r[1] for r in v.rows] == ["ok", "ok", "fault", "fault"]  # EL0: PIRE0 X only
    assert v.selections[0] == ("PIIndex", "PIIndex 0b0101 → PIR_EL1[23:20] = 0b0101 (RW)")
    assert "atlab-perms-selects" in v.leaf.value
