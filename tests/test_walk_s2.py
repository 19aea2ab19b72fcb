"""The stage 2 walker: start levels (AArch64.S2StartLevel()), invalid and inconsistent SL
(AArch64.S2InvalidSL(), AArch64.S2InconsistentSL()), concatenated start tables, S2AP,
combined attributes (S2CombineS1MemAttrs(), AArch64.S2ApplyFWBMemAttrs()), the 2-D trace."""

from __future__ import annotations

import pytest

from atlab import AtOp, Fault, FaultKind, Feature, FeatureSet, PhysMem, SysRegs, run_at
from atlab.walk_s2 import S2WalkInfo, setup_s2_walk, walk_s2
from tests.helpers import (
    AF,
    SH_ISH,
    SH_NSH,
    SH_OSH,
    TG0,
    TableAlloc,
    build_s1,
    build_s2,
    el1_regs,
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
S2_LEAF = AF | s2ap(0b11) | memattr(0b1111) | sh(SH_ISH)


def _s2_regs(vttbr: int = 0, *, s1_on: bool = False, hcr_fields: dict[str, int] | None = None,
             **vtcr_fields: int) -> SysRegs:
    h = {"VM": 1}
    h.update(hcr_fields or {})
    return el1_regs(hcr_el2=hcr(**h), sctlr_el1=sctlr(M=int(s1_on)), VTCR_EL2=vtcr(**vtcr_fields),
                    VTTBR_EL2=vttbr)


# --- start level and concatenation -------------------------------------------------------

@pytest.mark.parametrize(
    ("granule", "t0sz", "sl0", "sl2", "ds", "features", "level", "concat"),
    [
        # AArch64.S2StartLevel(): 4KB SL0 00 -> L2, 01 -> L1, 10 -> L0, 11 -> L3 (FEAT_TTST),
        # SL2:SL0 = 1:00 -> L-1 (FEAT_LPA2, DS=1).
        pytest.param("4K", 34, 0, 0, 0, ALL, 2, 1, id="4K-SL0=0-L2-30bit"),
        pytest.param("4K", 25, 1, 0, 0, ALL, 1, 1, id="4K-SL0=1-L1-39bit"),
        pytest.param("4K", 24, 1, 0, 0, ALL, 1, 2, id="4K-SL0=1-L1-40bit-2-concat"),
        pytest.param("4K", 21, 1, 0, 0, ALL, 1, 16, id="4K-SL0=1-L1-43bit-16-concat"),
        pytest.param("4K", 16, 2, 0, 0, ALL, 0, 1, id="4K-SL0=2-L0-48bit"),
        pytest.param("4K", 44, 3, 0, 0, ALL, 3, 1, id="4K-SL0=3-L3-TTST"),
        pytest.param("4K", 12, 0, 1, 1, ALL, -1, 1, id="4K-SL2=1-L-1-52bit"),
        pytest.param("4K", 30, 0, 0, 0, ALL, 2, 16, id="4K-SL0=0-L2-34bit-16-concat"),
        # 16KB: SL0 00 -> L3, 01 -> L2, 10 -> L1, 11 -> L0 (DS=1, PAMax 52).
        pytest.param("16K", 39, 0, 0, 0, ALL, 3, 1, id="16K-SL0=0-L3-25bit"),
        pytest.param("16K", 38, 0, 0, 0, ALL, 3, 2, id="16K-SL0=0-L3-26bit-2-concat"),
        pytest.param("16K", 28, 1, 0, 0, ALL, 2, 1, id="16K-SL0=1-L2-36bit"),
        pytest.param("16K", 24, 1, 0, 0, ALL, 2, 16, id="16K-SL0=1-L2-40bit-16-concat"),
        pytest.param("16K", 17, 2, 0, 0, ALL, 1, 1, id="16K-SL0=2-L1-47bit"),
        pytest.param("16K", 12, 3, 0, 1, ALL, 0, 1, id="16K-SL0=3-L0-DS-52bit"),
        # 64KB: SL0 00 -> L3, 01 -> L2, 10 -> L1.
        pytest.param("64K", 36, 0, 0, 0, ALL, 3, 1, id="64K-SL0=0-L3"),
        pytest.param("64K", 22, 1, 0, 0, ALL, 2, 1, id="64K-SL0=1-L2-42bit"),
        pytest.param("64K", 20, 1, 0, 0, ALL, 2, 4, id="64K-SL0=1-L2-44bit-4-concat"),
        pytest.param("64K", 12, 2, 0, 0, ALL, 1, 1, id="64K-SL0=2-L1-52bit"),
    ],
)
def test_s2_start_level(granule: str, t0sz: int, sl0: int, sl2: int, ds: int,
                        features: FeatureSet, level: int, concat: int) -> None:
    regs = _s2_regs(T0SZ=t0sz, SL0=sl0, SL2=sl2, DS=ds, TG0=TG0[granule], PS=0b110)
    wi = setup_s2_walk(regs, features)
    assert isinstance(wi, S2WalkInfo), wi
    assert (wi.sl, wi.concat) == (level, concat)


S2_L0_FAULT = Fault(FaultKind.TRANSLATION, 0, stage=2)


@pytest.mark.parametrize(
    ("granule", "t0sz", "sl0", "sl2", "ds", "features"),
    [
        # AArch64.S2InvalidSL()
        pytest.param("4K", 44, 3, 0, 0, ALL.without(Feature.TTST), id="4K-SL0=3-noTTST-invalid"),
        pytest.param("4K", 24, 2, 0, 0, FeatureSet.all(pa_max=40), id="4K-SL0=2-PAMax40-invalid"),
        pytest.param("4K", 12, 0, 1, 1, FeatureSet.all(pa_max=48), id="4K-SL2=1-PAMax48-invalid"),
        pytest.param("4K", 24, 1, 1, 1, ALL, id="4K-SL2:SL0=101-invalid"),
        pytest.param("16K", 12, 3, 0, 0, ALL, id="16K-SL0=3-DS0-invalid"),
        pytest.param("16K", 24, 2, 0, 0, FeatureSet.all(pa_max=40), id="16K-SL0=2-PAMax40-invalid"),
        pytest.param("64K", 22, 3, 0, 0, ALL, id="64K-SL0=3-invalid"),
        pytest.param("64K", 22, 2, 0, 0, FeatureSet.all(pa_max=42), id="64K-SL0=2-PAMax42-invalid"),
        # AArch64.S2InconsistentSL(): IPA size outside [sl_min_iasize, sl_max_iasize].
        pytest.param("4K", 24, 0, 0, 0, ALL, id="4K-SL0=0-40bit-more-than-16-tables"),
        pytest.param("4K", 20, 1, 0, 0, ALL, id="4K-SL0=1-44bit-32-tables-inconsistent"),
        pytest.param("4K", 34, 2, 0, 0, ALL, id="4K-SL0=2-30bit-too-small-for-L0"),
        pytest.param("4K", 40, 1, 0, 0, ALL, id="4K-SL0=1-24bit-too-small-for-L1"),
        pytest.param("64K", 36, 1, 0, 0, ALL, id="64K-SL0=1-28bit-too-small-for-L2"),
        # AArch64.S2TxSZFaults()
        pytest.param("4K", 15, 2, 0, 0, ALL, id="4K-T0SZ15-below-min"),
        pytest.param("4K", 49, 3, 0, 0, ALL, id="4K-T0SZ49-above-max"),
    ],
)
def test_s2_invalid_config(granule: str, t0sz: int, sl0: int, sl2: int, ds: int,
                           features: FeatureSet) -> None:
    regs = _s2_regs(T0SZ=t0sz, SL0=sl0, SL2=sl2, DS=ds, TG0=TG0[granule], PS=0b110)
    assert setup_s2_walk(regs, features) == S2_L0_FAULT
    # AT S12E1R with stage 1 off: the final IPA faults at stage 2, level 0, PTW=0.
    res = run_at(AtOp.S12E1R, 0x1000, regs=regs, mem=PhysMem(), features=features)
    assert res.par is not None and res.par.value == par_fault("translation", 0, s=1)


@pytest.mark.parametrize(
    ("t0sz", "sl0", "ipa"),
    [
        # The start-level index uses IPA[ia-1:lsb]: with 2 or 16 concatenated tables it runs
        # past 512 entries, into the next 4KB table of the concatenation.
        pytest.param(24, 1, 0xC0_1234_5000, id="4K-40bit-L1-2-concat-second-table"),
        pytest.param(21, 1, 0x7F0_1234_5000, id="4K-43bit-L1-16-concat-last-table"),
        pytest.param(30, 0, 0x3_C123_4000, id="4K-34bit-L2-16-concat"),
    ],
)
def test_s2_concatenated_walk(t0sz: int, sl0: int, ipa: int) -> None:
    level = {0: 2, 1: 1}[sl0]
    mem = PhysMem()
    pa = 0x9_8765_4000
    root = build_s2(mem, "4K", t0sz, level, ipa, pa, 3, S2_LEAF, alloc=TableAlloc(0x8000_0000))
    regs = _s2_regs(root, T0SZ=t0sz, SL0=sl0, PS=0b101)
    res = run_at(AtOp.S12E1R, ipa | 0x123, regs=regs, mem=mem)
    # Stage 1 off: Device-nGnRnE, OSH; combined with Normal WB stage 2 -> Device-nGnRnE.
    assert res.par is not None and res.par.value == par_ok(pa, 0x00, SH_OSH)
    start = res.trace.final_s2[0]
    index = ipa >> (12 + 9 * (3 - level))
    assert start.index == index and start.index >= 512
    assert start.desc_pa == root + 8 * index


# --- S2AP (AArch64.S2DirectBasePermissions()) ---------------------------------------------

@pytest.mark.parametrize(
    ("s2ap_", "op", "ok"),
    [
        pytest.param(v, op, ok, id=f"S2AP{v:02b}-{op.name}")
        for v, op, ok in [
            (0b00, AtOp.S12E1R, False), (0b00, AtOp.S12E1W, False),
            (0b01, AtOp.S12E1R, True), (0b01, AtOp.S12E1W, False),
            (0b10, AtOp.S12E1R, False), (0b10, AtOp.S12E1W, True),
            (0b11, AtOp.S12E1R, True), (0b11, AtOp.S12E1W, True),
            (0b01, AtOp.S12E0R, True), (0b01, AtOp.S12E0W, False),
        ]
    ],
)
def test_s2ap(s2ap_: int, op: AtOp, ok: bool) -> None:
    # S2AP[0] (bit 6) grants read, S2AP[1] (bit 7) write.  Stage 1: AP=01, RW at EL1 and EL0.
    va, ipa, pa = 0x1234_5678_9ABC, 0x2345_6000, 0x3456_7000
    mem = PhysMem()
    s2_alloc = TableAlloc(0x8000_0000)
    root2 = build_s2(mem, "4K", 24, 1, ipa, pa, 3, AF | s2ap(s2ap_) | memattr(0b1111)
                     | sh(SH_ISH), alloc=s2_alloc)
    s1_alloc = TableAlloc(0x4000_0000)
    root1 = build_s1(mem, "4K", 16, va, ipa, 3, AF | sh(SH_ISH) | (0b01 << 6), alloc=s1_alloc)
    # Identity-map the stage 1 tables (IPA == PA) with full access.
    for page in range(0x4000_0000, s1_alloc.next, 0x1000):
        build_s2(mem, "4K", 24, 1, page, page, 3, S2_LEAF, root=root2, alloc=s2_alloc)
    regs = _s2_regs(root2, s1_on=True).replace(TTBR0_EL1=root1)
    res = run_at(op, va, regs=regs, mem=mem)
    assert res.par is not None
    if ok:
        assert res.par.value == par_ok(pa | 0xABC, 0xFF, SH_ISH)
    else:
        assert res.par.value == par_fault("permission", 3, s=1)


def test_walk_s2_direct() -> None:
    mem = PhysMem()
    root = build_s2(mem, "4K", 24, 1, 0x1_2345_6000, 0x7_0000_0000, 2, S2_LEAF,
                    alloc=TableAlloc(0x8000_0000))
    wi = setup_s2_walk(_s2_regs(root), ALL)
    assert isinstance(wi, S2WalkInfo)
    r = walk_s2(wi, mem, 0x1_2345_6789, ALL, write=False, s1ptw=False, for_at=True)
    assert r.fault is None and r.pa == 0x7_0005_6789 and r.level == 2
    # IPA beyond the 40-bit input range: level 0 translation fault (AArch64.IPAIsOutOfRange()).
    r = walk_s2(wi, mem, 1 << 40, ALL, write=False, s1ptw=False, for_at=True)
    assert r.fault == Fault(FaultKind.TRANSLATION, 0, stage=2, ipa=1 << 40)


def test_s2_af_and_address_size() -> None:
    mem = PhysMem()
    alloc = TableAlloc(0x8000_0000)
    root = build_s2(mem, "4K", 24, 1, 0x1000, 0x7000, 3, s2ap(0b11) | memattr(0b1111),
                    alloc=alloc)
    regs = _s2_regs(root)
    res = run_at(AtOp.S12E1R, 0x1000, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == par_fault("access", 3, s=1)
    # VTCR_EL2.HA=1: the walk sets AF in memory and succeeds.
    res = run_at(AtOp.S12E1R, 0x1000, regs=_s2_regs(root, HA=1), mem=mem)
    assert res.par is not None and res.par.f == 0
    leaf = res.trace.final_s2[2]
    assert mem.peek(leaf.desc_pa) & AF
    # Output address beyond VTCR_EL2.PS (32 bits): address size fault at the leaf level.
    build_s2(mem, "4K", 24, 1, 0x2000, 0x1_0000_0000, 3, S2_LEAF, root=root, alloc=alloc)
    res = run_at(AtOp.S12E1R, 0x2000, regs=_s2_regs(root, PS=0b000), mem=mem)
    assert res.par is not None and res.par.value == par_fault("addrsize", 3, s=1)


# --- combined attributes ----------------------------------------------------------------

def _combined(s1_attr: int, s1_sh: int, s2_memattr: int, s2_sh: int, fwb: int):
    va, ipa, pa = 0x1234_5678_9ABC, 0x2345_6000, 0x3456_7000
    mem = PhysMem()
    s2_alloc = TableAlloc(0x8000_0000)
    root2 = build_s2(mem, "4K", 24, 1, ipa, pa, 3,
                     AF | s2ap(0b11) | memattr(s2_memattr) | sh(s2_sh), alloc=s2_alloc)
    s1_alloc = TableAlloc(0x4000_0000)
    root1 = build_s1(mem, "4K", 16, va, ipa, 3, AF | sh(s1_sh), alloc=s1_alloc)
    for page in range(0x4000_0000, s1_alloc.next, 0x1000):
        build_s2(mem, "4K", 24, 1, page, page, 3, S2_LEAF, root=root2, alloc=s2_alloc)
    regs = _s2_regs(root2, s1_on=True, hcr_fields={"FWB": fwb}).replace(
        TTBR0_EL1=root1, MAIR_EL1=s1_attr)
    return run_at(AtOp.S12E1R, va, regs=regs, mem=mem), pa | 0xABC


@pytest.mark.parametrize(
    ("s1_attr", "s2_memattr", "attr"),
    [
        # S2CombineS1MemAttrs(): Device wins; Device+Device -> the more restrictive type
        # (S2CombineS1Device()); Normal+Normal per half: NC if either NC, else WT if either
        # WT, else WB, with stage 1's allocation hints and transience (S2CombineS1AttrHints()).
        pytest.param(0xFF, 0b1111, 0xFF, id="FWB0-WB+WB->WB-RWA"),
        pytest.param(0xFF, 0b1010, 0xBB, id="FWB0-WB-RWA+WT->WT-RWA"),
        pytest.param(0xFF, 0b0101, 0x44, id="FWB0-WB+NC->NC"),
        pytest.param(0xFF, 0b0001, 0x04, id="FWB0-Normal+Device-nGnRE->Device-nGnRE"),
        pytest.param(0x0C, 0b0001, 0x04, id="FWB0-GRE+nGnRE->nGnRE"),
        pytest.param(0x00, 0b0011, 0x00, id="FWB0-nGnRnE+GRE->nGnRnE"),
        pytest.param(0x04, 0b1111, 0x04, id="FWB0-Device+WB->Device"),
        pytest.param(0x4F, 0b1110, 0x4B, id="FWB0-oNC-iWB+oWB-iWT->oNC-iWT"),
        pytest.param(0xAA, 0b1111, 0xAA, id="FWB0-WT-RA+WB->WT-RA"),
        pytest.param(0x77, 0b1111, 0x77, id="FWB0-WB-transient+WB->WB-transient"),
    ],
)
def test_combined_attrs_fwb0(s1_attr: int, s2_memattr: int, attr: int) -> None:
    res, pa = _combined(s1_attr, SH_ISH, s2_memattr, SH_ISH, 0)
    device_or_nc = attr >> 4 == 0 or attr == 0x44
    assert res.par is not None
    assert res.par.value == par_ok(pa, attr, SH_OSH if device_or_nc else SH_ISH)


@pytest.mark.parametrize(
    ("s1_attr", "s2_memattr", "attr"),
    [
        # AArch64.S2ApplyFWBMemAttrs(): MemAttr[2]=0 Device (combined with a Device stage 1);
        # [1:0]=11 stage 1 attributes; 10 forced Write-Back (stage 1 hints if stage 1 is
        # cacheable Normal, else RWA); 0x (with [2]=1) Non-cacheable unless stage 1 is Device.
        pytest.param(0xFF, 0b0110, 0xFF, id="FWB1-110-WB+forcedWB->WB"),
        pytest.param(0x44, 0b0110, 0xFF, id="FWB1-110-NC+forcedWB->WB-RWA"),
        pytest.param(0xAA, 0b0110, 0xEE, id="FWB1-110-WT-RA+forcedWB->WB-RA"),
        pytest.param(0x04, 0b0110, 0xFF, id="FWB1-110-Device+forcedWB->WB-RWA"),
        pytest.param(0xBB, 0b0111, 0xBB, id="FWB1-111-S1-attrs"),
        pytest.param(0x04, 0b0111, 0x04, id="FWB1-111-S1-Device"),
        pytest.param(0xFF, 0b0101, 0x44, id="FWB1-101-NC"),
        pytest.param(0x08, 0b0101, 0x08, id="FWB1-101-S1-Device-kept"),
        pytest.param(0xFF, 0b0001, 0x04, id="FWB1-001-Device-nGnRE"),
        pytest.param(0x08, 0b0001, 0x04, id="FWB1-001-nGRE+nGnRE->nGnRE"),
        pytest.param(0x00, 0b0011, 0x00, id="FWB1-011-nGnRnE+GRE->nGnRnE"),
    ],
)
def test_combined_attrs_fwb1(s1_attr: int, s2_memattr: int, attr: int) -> None:
    res, pa = _combined(s1_attr, SH_ISH, s2_memattr, SH_ISH, 1)
    device_or_nc = attr >> 4 == 0 or attr == 0x44
    assert res.par is not None
    assert res.par.value == par_ok(pa, attr, SH_OSH if device_or_nc else SH_ISH)


@pytest.mark.parametrize(
    ("sh1", "sh2", "expect"),
    [
        # S2CombineS1Shareability(): OSH if either is OSH, else ISH if either ISH, else NSH.
        pytest.param(SH_NSH, SH_NSH, SH_NSH, id="NSH+NSH->NSH"),
        pytest.param(SH_NSH, SH_ISH, SH_ISH, id="NSH+ISH->ISH"),
        pytest.param(SH_ISH, SH_NSH, SH_ISH, id="ISH+NSH->ISH"),
        pytest.param(SH_ISH, SH_OSH, SH_OSH, id="ISH+OSH->OSH"),
        pytest.param(SH_OSH, SH_NSH, SH_OSH, id="OSH+NSH->OSH"),
    ],
)
def test_combined_shareability(sh1: int, sh2: int, expect: int) -> None:
    res, pa = _combined(0xFF, sh1, 0b1111, sh2, 0)
    assert res.par is not None and res.par.value == par_ok(pa, 0xFF, expect)


# --- the two-dimensional trace ------------------------------------------------------------

def test_2d_trace_4x4_is_24_accesses() -> None:
    # 4-level stage 1 (4KB, T0SZ=16) under a 4-level stage 2 (4KB, T0SZ=16, SL0=2 -> L0):
    # each of the 4 stage 1 descriptor reads needs a 4-read stage 2 walk, then the final IPA
    # needs one more: 4 + 4*4 + 4 = 24 = (4+1)(4+1) - 1.
    va, ipa, pa = 0x1234_5678_9ABC, 0x2345_6000, 0x3456_7000
    mem = PhysMem()
    s2_alloc = TableAlloc(0x8000_0000)
    root2 = build_s2(mem, "4K", 16, 0, ipa, pa, 3, S2_LEAF, alloc=s2_alloc)
    s1_alloc = TableAlloc(0x4000_0000)
    root1 = build_s1(mem, "4K", 16, va, ipa, 3, AF | sh(SH_ISH), alloc=s1_alloc)
    for page in range(0x4000_0000, s1_alloc.next, 0x1000):
        build_s2(mem, "4K", 16, 0, page, page, 3, S2_LEAF, root=root2, alloc=s2_alloc)
    regs = el1_regs(ttbr0=root1, tcr=tcr_el1(), hcr_el2=hcr(VM=1),
                    VTCR_EL2=vtcr(T0SZ=16, SL0=2, PS=0b101), VTTBR_EL2=root2)
    res = run_at(AtOp.S12E1R, va, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == par_ok(pa | 0xABC, 0xFF, SH_ISH)
    tr = res.trace
    assert [s.level for s in tr.steps] == [0, 1, 2, 3]
    for step in tr.steps:
        assert [s.level for s in step.s2] == [0, 1, 2, 3]
        assert all(s.stage == 2 for s in step.s2)
        assert step.desc_pa == step.desc_addr  # identity-mapped tables
        assert step.s2[-1].kind == "page"
    assert [s.level for s in tr.final_s2] == [0, 1, 2, 3]
    assert (tr.s1_accesses, tr.s2_accesses, tr.total_accesses) == (4, 20, 24)
    # S1E1R with the same registers: stage 1 only (tables still through stage 2): 20 reads.
    r1 = run_at(AtOp.S1E1R, va, regs=regs, mem=mem)
    assert r1.par is not None and r1.par.value == par_ok(ipa | 0xABC, 0xFF, SH_ISH)
    assert r1.trace.total_accesses == 20 and r1.trace.final_s2 == ()
