"""The AT front end (AArch64.AT(), AArch64.EncodePAR()): stage 2 faults on the stage 1 walk
(PAR at EL2, data abort to EL2 at EL1), faults on the final IPA, AT S1E1R under stage 2,
MMU-off output (AArch64.S1DisabledOutput()), HCR_EL2.DC and HCR_EL2.PTW."""

from __future__ import annotations

import pytest

from atlab import AtOp, FeatureSet, PhysMem, SysRegs, run_at
from tests.helpers import (
    AF,
    SH_ISH,
    SH_NSH,
    SH_OSH,
    TableAlloc,
    build_s1,
    build_s2,
    el1_regs,
    fst,
    hcr,
    memattr,
    par_fault,
    par_ok,
    s2ap,
    sctlr,
    sh,
    tcr_el1,
    vtcr,
)

ALL = FeatureSet.all()
VA, IPA, PA = 0x1234_5678_9ABC, 0x2345_6000, 0x3456_7000
S2_LEAF = AF | s2ap(0b11) | memattr(0b1111) | sh(SH_ISH)


def _nested(*, table_s2_bits: int = S2_LEAF, final_s2_bits: int = S2_LEAF,
            skip_table_page: int | None = None, hcr_fields: dict[str, int] | None = None
            ) -> tuple[PhysMem, SysRegs, list[int]]:
    """Stage 1 (4KB, 4 levels, tables at IPA==PA 0x4000_0000...) mapping VA -> IPA; stage 2
    (4KB, 40-bit IPA, level 1 start, 2 concatenated tables) mapping IPA -> PA and the stage 1
    table pages to themselves.  ``skip_table_page``: leave that table page unmapped."""
    mem = PhysMem()
    s2_alloc = TableAlloc(0x8000_0000)
    root2 = build_s2(mem, "4K", 24, 1, IPA, PA, 3, final_s2_bits, alloc=s2_alloc)
    s1_alloc = TableAlloc(0x4000_0000)
    root1 = build_s1(mem, "4K", 16, VA, IPA, 3, AF | sh(SH_ISH), alloc=s1_alloc)
    pages = list(range(0x4000_0000, s1_alloc.next, 0x1000))
    for i, page in enumerate(pages):
        if i != skip_table_page:
            build_s2(mem, "4K", 24, 1, page, page, 3, table_s2_bits, root=root2, alloc=s2_alloc)
    h = {"VM": 1}
    h.update(hcr_fields or {})
    regs = el1_regs(ttbr0=root1, hcr_el2=hcr(**h), VTCR_EL2=vtcr(), VTTBR_EL2=root2)
    return mem, regs, pages


# --- stage 2 fault on a stage 1 table access -----------------------------------------------

@pytest.mark.parametrize("missing", [0, 1, 2, 3], ids=lambda i: f"S1-L{i}-table-unmapped-at-S2")
@pytest.mark.parametrize("op", [AtOp.S12E1R, AtOp.S1E1R, AtOp.S1E0W])
def test_s2_fault_on_s1_walk_at_el2(op: AtOp, missing: int) -> None:
    # AT at EL2: the stage 2 fault is reported in PAR_EL1 with S=1, PTW=1; the stage 2 walk of
    # the table's IPA finds an invalid level 3 entry (the page of that table was not mapped).
    mem, regs, _ = _nested(skip_table_page=missing)
    res = run_at(op, VA, regs=regs, mem=mem)
    assert res.exception is None and res.par is not None
    assert res.par.value == par_fault("translation", 3, s=1, ptw=1)
    assert res.fault is not None and res.fault.s1ptw and res.fault.stage == 2
    assert len(res.trace.steps) == missing + 1  # the walk stopped at that level


@pytest.mark.parametrize("missing", [0, 2], ids=lambda i: f"S1-L{i}-table")
def test_s2_fault_on_s1_walk_at_el1_is_data_abort(missing: int) -> None:
    # AArch64.AT(): "(PSTATE.EL == EL1 && fault.s2fs1walk)" -> AArch64.Abort(): a Data Abort
    # taken to EL2 (EC 0x24, lower EL) with ISS.S1PTW=1, CM=1 (AT), WnR=1 (AT always reports
    # 1), DFSC = the stage 2 fault; FAR_EL2 = VA; HPFAR_EL2.FIPA = IPA[51:12] in bits [43:4].
    mem, regs, pages = _nested(skip_table_page=missing)
    res = run_at(AtOp.S1E1R, VA, regs=regs, mem=mem, cur_el=1)
    assert res.par is None and res.exception is not None
    exc = res.exception
    assert (exc.target_el, exc.ec) == (2, 0x24)
    iss = exc.iss
    assert iss & 0x3F == fst("translation", 3)
    assert (iss >> 6) & 1 == 1  # WnR
    assert (iss >> 7) & 1 == 1  # S1PTW
    assert (iss >> 8) & 1 == 1  # CM
    assert (iss >> 24) & 1 == 0  # ISV
    assert exc.esr >> 26 == 0x24 and (exc.esr >> 25) & 1 == 1  # IL
    assert exc.far == VA
    desc_ipa = pages[missing] + 8 * ((VA >> (39 - 9 * missing)) & 0x1FF)
    assert exc.hpfar == (desc_ipa >> 12) << 4


def test_s2_fault_on_final_ipa() -> None:
    # The stage 1 walk succeeds; stage 2 of the output IPA faults: S=1, PTW=0.
    mem, regs, _ = _nested(final_s2_bits=s2ap(0b11) | memattr(0b1111))  # AF=0
    res = run_at(AtOp.S12E1R, VA, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == par_fault("access", 3, s=1)
    # AT S1E1R (even at EL1) never translates the final IPA: it succeeds with the IPA.
    r1 = run_at(AtOp.S1E1R, VA, regs=regs, mem=mem, cur_el=1)
    assert r1.par is not None and r1.par.value == par_ok(IPA | 0xABC, 0xFF, SH_ISH)


def test_s1e1r_at_el2_with_vm_reports_ipa() -> None:
    # AT S1E1R is a stage 1 translation: PAR holds the IPA and the stage 1 attributes only.
    mem, regs, _ = _nested(final_s2_bits=AF | s2ap(0b11) | memattr(0b0000) | sh(SH_NSH))
    res = run_at(AtOp.S1E1R, VA, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == par_ok(IPA | 0xABC, 0xFF, SH_ISH)
    s12 = run_at(AtOp.S12E1R, VA, regs=regs, mem=mem)
    assert s12.par is not None and s12.par.value == par_ok(PA | 0xABC, 0x00, SH_OSH)


# --- HCR_EL2.PTW: stage 1 tables in stage 2 Device memory --------------------------------

@pytest.mark.parametrize(
    ("ptw", "table_memattr", "ok"),
    [
        # HCR_EL2.PTW=1: a stage 1 walk to memory that stage 2 maps as Device gives a stage 2
        # Permission fault (S1PTW).
        pytest.param(1, 0b0001, False, id="PTW1-Device-tables-permission-fault"),
        pytest.param(0, 0b0001, True, id="PTW0-Device-tables-ok"),
        pytest.param(1, 0b1111, True, id="PTW1-Normal-tables-ok"),
    ],
)
def test_hcr_ptw(ptw: int, table_memattr: int, ok: bool) -> None:
    mem, regs, _ = _nested(table_s2_bits=AF | s2ap(0b11) | memattr(table_memattr),
                           hcr_fields={"PTW": ptw})
    res = run_at(AtOp.S12E1R, VA, regs=regs, mem=mem)
    assert res.par is not None
    if ok:
        assert res.par.value == par_ok(PA | 0xABC, 0xFF, SH_ISH)
    else:
        assert res.par.value == par_fault("permission", 3, s=1, ptw=1)


def test_s2_read_only_tables_af_update_needs_write() -> None:
    # Stage 1 HA=1 with AF=0 in the leaf: the hardware update is a write to the descriptor,
    # which stage 2 must allow (S2AP=01 read-only -> stage 2 permission fault on the walk).
    mem = PhysMem()
    s2_alloc = TableAlloc(0x8000_0000)
    root2 = build_s2(mem, "4K", 24, 1, IPA, PA, 3, S2_LEAF, alloc=s2_alloc)
    s1_alloc = TableAlloc(0x4000_0000)
    root1 = build_s1(mem, "4K", 16, VA, IPA, 3, sh(SH_ISH), alloc=s1_alloc)
    for page in range(0x4000_0000, s1_alloc.next, 0x1000):
        build_s2(mem, "4K", 24, 1, page, page, 3, AF | s2ap(0b01) | memattr(0b1111),
                 root=root2, alloc=s2_alloc)
    regs = el1_regs(ttbr0=root1, tcr=tcr_el1(HA=1), hcr_el2=hcr(VM=1), VTCR_EL2=vtcr(),
                    VTTBR_EL2=root2)
    res = run_at(AtOp.S12E1R, VA, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == par_fault("permission", 3, s=1, ptw=1)


# --- stage 1 disabled (AArch64.S1DisabledOutput()) -------------------------------------------

@pytest.mark.parametrize(
    ("hcr_fields", "va", "attr", "sh_"),
    [
        # SCTLR_EL1.M=0: Device-nGnRnE (ATTR=0x00), Outer Shareable -> PAR.SH=0b10.
        pytest.param({}, 0x1234_5678_9ABC, 0x00, SH_OSH, id="EL10-M0-Device-nGnRnE"),
        # HCR_EL2.DC=1: Normal Inner/Outer WB RWA (0xff), Non-shareable.
        pytest.param({"DC": 1}, 0x1234_5678_9ABC, 0xFF, SH_NSH, id="EL10-DC1-Normal-WB-NSH"),
        # HCR_EL2.TGE=1 also disables the EL1&0 stage 1.
        pytest.param({"TGE": 1}, 0x1234_5678_9ABC, 0x00, SH_OSH, id="EL10-TGE1-S1-off"),
    ],
)
def test_mmu_off(hcr_fields: dict[str, int], va: int, attr: int, sh_: int) -> None:
    regs = el1_regs(sctlr_el1=sctlr(M=0), hcr_el2=hcr(**hcr_fields))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=PhysMem())
    assert res.par is not None and res.par.value == par_ok(va, attr, sh_)
    assert res.trace.steps == ()


def test_mmu_off_el2() -> None:
    res = run_at(AtOp.S1E2W, 0x8000_1234, regs=SysRegs({"HCR_EL2": hcr()}), mem=PhysMem())
    assert res.par is not None and res.par.value == par_ok(0x8000_1234, 0x00, SH_OSH)


@pytest.mark.parametrize(
    ("pa_max", "va", "tbi0", "ok"),
    [
        # Stage 1 disabled: VA[addrtop:PAMax] must be zero, else Address size fault level 0.
        pytest.param(40, 1 << 40, 0, False, id="PAMax40-VA-2^40-fault"),
        pytest.param(40, (1 << 40) - 4096, 0, True, id="PAMax40-VA-below-ok"),
        pytest.param(48, 0xFF00_0000_0000_1000, 0, False, id="PAMax48-tag-TBI0-0-fault"),
        pytest.param(48, 0xFF00_0000_0000_1000, 1, True, id="PAMax48-tag-TBI0-1-ok"),
        pytest.param(52, 0x000F_0000_0000_1000, 0, True, id="PAMax52-VA-bit51-ok"),
    ],
)
def test_mmu_off_address_size(pa_max: int, va: int, tbi0: int, ok: bool) -> None:
    regs = el1_regs(sctlr_el1=sctlr(M=0), tcr=tcr_el1(TBI0=tbi0))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=PhysMem(), features=FeatureSet.all(pa_max))
    assert res.par is not None
    if ok:
        assert res.par.value == par_ok(va & ((1 << pa_max) - 1), 0x00, SH_OSH)
    else:
        assert res.par.value == par_fault("addrsize", 0)


def test_s12_with_stage1_off_dc1() -> None:
    # HCR_EL2.DC=1 enables stage 2 (walkparams.vm = VM OR DC): S12E1R translates the flat
    # IPA through stage 2 and combines Normal WB NSH with the stage 2 attributes.
    mem = PhysMem()
    root2 = build_s2(mem, "4K", 24, 1, IPA, PA, 3, S2_LEAF, alloc=TableAlloc(0x8000_0000))
    regs = el1_regs(hcr_el2=hcr(DC=1), sctlr_el1=sctlr(M=1), VTCR_EL2=vtcr(), VTTBR_EL2=root2)
    res = run_at(AtOp.S12E1R, IPA | 0x123, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == par_ok(PA | 0x123, 0xFF, SH_ISH)


def test_s12_without_stage2_is_stage1() -> None:
    # HCR_EL2.{DC,VM}={0,0}: AT S12E1R is AArch64.AT(..., TranslationStage_1, ...).
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, IPA, 3, AF | sh(SH_ISH))
    regs = el1_regs(ttbr0=root)
    a = run_at(AtOp.S12E1R, VA, regs=regs, mem=mem)
    b = run_at(AtOp.S1E1R, VA, regs=regs, mem=mem)
    assert a.par is not None and b.par is not None
    assert a.par.value == b.par.value == par_ok(IPA | 0xABC, 0xFF, SH_ISH)


def test_ats1a_ignores_permissions() -> None:
    # AT S1E1A (FEAT_ATS1A): ATAccess_Any, no permission check.
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, IPA, 3, AF | sh(SH_ISH) | (0b10 << 6))
    regs = el1_regs(ttbr0=root)
    assert run_at(AtOp.S1E1W, VA, regs=regs, mem=mem).par.value == par_fault(  # type: ignore[union-attr]
        "permission", 3)
    res = run_at(AtOp.S1E1A, VA, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == par_ok(IPA | 0xABC, 0xFF, SH_ISH)


def test_to_dict_and_str() -> None:
    mem, regs, _ = _nested()
    res = run_at(AtOp.S12E1R, VA, regs=regs, mem=mem)
    d = res.to_dict(full=True)
    assert d["par"] == f"0x{par_ok(PA | 0xABC, 0xFF, SH_ISH):016x}"
    assert d["accesses"] == {"stage1": 4, "stage2": 4 * 3 + 3, "total": 19}
    assert "PAR_EL1=" in str(res)
