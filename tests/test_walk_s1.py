"""The stage 1 walker: start levels, TxSZ and VA range checks, TTBR selection, granule
encodings, descriptors at every level, AF, address size faults, 52-bit OAs, big-endian tables
and the trace.  Expected PARs are built by hand (tests/helpers.py) from the Arm ARM rules."""

from __future__ import annotations

import pytest

from atlab import AtlabError, AtOp, AtResult, Feature, FeatureSet, PhysMem, Regime, run_at
from atlab.granule import Granule, start_level
from atlab.walk_s1 import setup_s1_walk, walk_s1
from tests.helpers import (
    AF,
    CONTIG,
    PGSHIFT,
    SH_ISH,
    SH_OSH,
    TG0,
    TG1,
    TableAlloc,
    build_s1,
    byteswap64,
    el1_regs,
    oa_64k_lpa,
    oa_lpa2,
    par_fault,
    par_ok,
    sctlr,
    sh,
    tcr_el1,
)

ALL = FeatureSet.all()
GRAN = {"4K": Granule.K4, "16K": Granule.K16, "64K": Granule.K64}
LEAF = AF | sh(SH_ISH)  # Attr0 (0xff), AP=00, ISH, AF=1


# --- start level (AArch64.S1StartLevel()) -----------------------------------------------------

@pytest.mark.parametrize(
    ("granule", "ia_bits", "level"),
    [
        # 3 - ((iasize - 1 - granulebits) DIV stride)
        pytest.param("4K", 48, 0, id="4K-48bit-L0"),
        pytest.param("4K", 40, 0, id="4K-40bit-L0"),
        pytest.param("4K", 39, 1, id="4K-39bit-L1"),
        pytest.param("4K", 31, 1, id="4K-31bit-L1"),
        pytest.param("4K", 30, 2, id="4K-30bit-L2"),
        pytest.param("4K", 21, 3, id="4K-21bit-L3"),
        pytest.param("4K", 16, 3, id="4K-16bit-L3"),
        pytest.param("4K", 49, -1, id="4K-49bit-L-1"),
        pytest.param("4K", 52, -1, id="4K-52bit-L-1"),
        pytest.param("16K", 52, 0, id="16K-52bit-L0"),
        pytest.param("16K", 48, 0, id="16K-48bit-L0"),
        pytest.param("16K", 47, 1, id="16K-47bit-L1"),
        pytest.param("16K", 36, 2, id="16K-36bit-L2"),
        pytest.param("16K", 25, 3, id="16K-25bit-L3"),
        pytest.param("64K", 52, 1, id="64K-52bit-L1"),
        pytest.param("64K", 43, 1, id="64K-43bit-L1"),
        pytest.param("64K", 42, 2, id="64K-42bit-L2"),
        pytest.param("64K", 29, 3, id="64K-29bit-L3"),
    ],
)
def test_start_level(granule: str, ia_bits: int, level: int) -> None:
    assert start_level(ia_bits, GRAN[granule]) == level


@pytest.mark.parametrize(
    ("granule", "txsz", "ds", "level"),
    [
        # FEAT_LPA2: TCR_EL1.DS=1, T0SZ=12 (52-bit VA) starts at level -1 with 4KB,
        # level 0 with 16KB (AArch64.S1StartLevel(), AArch64.S1MinTxSZ()).
        pytest.param("4K", 12, 1, -1, id="4K-DS1-T0SZ12-L-1"),
        pytest.param("16K", 12, 1, 0, id="16K-DS1-T0SZ12-L0"),
        pytest.param("64K", 12, 0, 1, id="64K-LVA-T0SZ12-L1"),
        pytest.param("4K", 16, 0, 0, id="4K-T0SZ16-L0"),
        pytest.param("4K", 25, 0, 1, id="4K-T0SZ25-L1"),
        pytest.param("16K", 28, 0, 2, id="16K-T0SZ28-L2"),
        pytest.param("64K", 22, 0, 2, id="64K-T0SZ22-L2"),
    ],
)
def test_setup_start_level(granule: str, txsz: int, ds: int, level: int) -> None:
    regs = el1_regs(ttbr0=0x4000_0000, tcr=tcr_el1(T0SZ=txsz, TG0=TG0[granule], DS=ds, IPS=6))
    wi = setup_s1_walk(regs, ALL, Regime.EL10, 1, 0)
    assert not isinstance(wi, type(None))
    assert getattr(wi, "sl", None) == level, wi


# --- successful walks: every legal leaf level per granule -------------------------------------

def _walk(granule: str, txsz: int, va: int, pa: int, leaf_level: int, desc_bits: int = LEAF, *,
          features: FeatureSet = ALL, op: AtOp = AtOp.S1E1R,
          tcr_extra: dict[str, int] | None = None, build_kw: dict[str, object] | None = None,
          mem: PhysMem | None = None, ttbr_extra: int = 0) -> tuple[AtResult, PhysMem, int]:
    mem = mem if mem is not None else PhysMem()
    root = build_s1(mem, granule, txsz, va, pa, leaf_level, desc_bits, **(build_kw or {}))
    fields = {"T0SZ": txsz, "TG0": TG0[granule], "IPS": 0b110}
    fields.update(tcr_extra or {})
    regs = el1_regs(ttbr0=root | ttbr_extra, tcr=tcr_el1(**fields))
    return run_at(op, va, regs=regs, mem=mem, features=features), mem, root


@pytest.mark.parametrize(
    ("granule", "txsz", "leaf_level", "va", "pa", "features"),
    [
        # AArch64.BlockDescSupported(): 4KB blocks at levels 1 and 2 (and 0 with DS=1),
        # 16KB at level 2 (1 with DS=1), 64KB at level 2 (1 with 52-bit PAs).
        pytest.param("4K", 16, 3, 0x1234_5678_9ABC, 0x4567_8000, ALL, id="4K-L3-page"),
        pytest.param("4K", 16, 2, 0x1234_5678_9ABC, 0x8_0020_0000, ALL, id="4K-L2-block"),
        pytest.param("4K", 16, 1, 0x1234_5678_9ABC, 0x80_4000_0000, ALL, id="4K-L1-block"),
        pytest.param("4K", 25, 3, 0x12_3456_7ABC, 0x4567_8000, ALL, id="4K-39bit-L3-page"),
        pytest.param("16K", 16, 3, 0x1234_5678_9ABC, 0x4567_C000, ALL, id="16K-L3-page"),
        pytest.param("16K", 16, 2, 0x1234_5678_9ABC, 0x8_0200_0000, ALL, id="16K-L2-block"),
        pytest.param("64K", 16, 3, 0x1234_5678_9ABC, 0x4567_0000, ALL, id="64K-L3-page"),
        pytest.param("64K", 16, 2, 0x1234_5678_9ABC, 0x8_2000_0000, ALL, id="64K-L2-block"),
        pytest.param("64K", 16, 1, 0x1234_5678_9ABC, 0x400_0000_0000, ALL, id="64K-L1-block-LPA"),
    ],
)
def test_leaf_levels(granule: str, txsz: int, leaf_level: int, va: int, pa: int,
                     features: FeatureSet) -> None:
    res, _, _ = _walk(granule, txsz, va, pa, leaf_level, features=features)
    lsb = (3 - leaf_level) * (PGSHIFT[granule] - 3) + PGSHIFT[granule]
    expect_pa = pa | (va & ((1 << lsb) - 1))
    assert res.par is not None
    assert res.par.value == par_ok(expect_pa, 0xFF, SH_ISH), str(res.par)
    assert res.fault is None


@pytest.mark.parametrize(
    ("granule", "txsz", "leaf_level", "features"),
    [
        # Block encodings (bits[1:0]=01) not allowed at that level: Translation fault at it
        # (AArch64.DecodeDescriptorType(), AArch64.BlockDescSupported()).
        pytest.param("4K", 16, 0, ALL, id="4K-L0-block-DS0"),
        pytest.param("16K", 16, 1, ALL, id="16K-L1-block-DS0"),
        pytest.param("16K", 16, 0, ALL, id="16K-L0-block"),
        pytest.param("64K", 16, 1, FeatureSet.all(pa_max=48), id="64K-L1-block-PAMax48"),
        pytest.param("64K", 16, 1, ALL.without(Feature.LPA), id="64K-L1-block-noLPA"),
        # Level 3 with bits[1:0]=01 is reserved.
        pytest.param("4K", 16, 3, ALL, id="4K-L3-01-reserved"),
        pytest.param("16K", 16, 3, ALL, id="16K-L3-01-reserved"),
        pytest.param("64K", 16, 3, ALL, id="64K-L3-01-reserved"),
    ],
)
def test_illegal_block_levels(granule: str, txsz: int, leaf_level: int,
                              features: FeatureSet) -> None:
    va = 0x1234_5678_9ABC
    mem = PhysMem()
    root = build_s1(mem, granule, txsz, va, 0, leaf_level, LEAF)
    # build_s1 writes 0b11 at level 3; force the block encoding 0b01 there too.
    if leaf_level == 3:
        for pa, value in list(mem):
            if value & 0b11 == 0b11 and value & AF:
                mem.poke(pa, value & ~0b10)
    regs = el1_regs(ttbr0=root, tcr=tcr_el1(T0SZ=txsz, TG0=TG0[granule]))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem, features=features)
    assert res.par is not None
    assert res.par.value == par_fault("translation", leaf_level)


@pytest.mark.parametrize("level", [0, 1, 2, 3], ids=lambda lv: f"4K-L{lv}-invalid")
def test_invalid_descriptor_level(level: int) -> None:
    # bit[0]=0 at a level: Translation fault at that level (AArch64.S1Walk()).
    va = 0x1234_5678_9ABC
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, va, 0x4567_8000, 3)
    # Zero the descriptor read at `level`.
    res = run_at(AtOp.S1E1R, va, regs=el1_regs(ttbr0=root), mem=mem)
    step = res.trace.steps[level]
    mem.poke(step.desc_pa, 0)
    res = run_at(AtOp.S1E1R, va, regs=el1_regs(ttbr0=root), mem=mem)
    assert res.par is not None and res.par.value == par_fault("translation", level)


# --- TxSZ limits (AArch64.S1TxSZFaults(), S1MinTxSZ(), MaxTxSZ()) -----------------------------

@pytest.mark.parametrize(
    ("granule", "txsz", "features", "ok"),
    [
        pytest.param("4K", 15, ALL, False, id="4K-T0SZ15-below-min-fault"),
        pytest.param("4K", 15, ALL.without(Feature.LVA), False, id="4K-T0SZ15-noLVA-fault"),
        pytest.param("64K", 12, ALL, True, id="64K-T0SZ12-LVA-ok"),
        pytest.param("64K", 12, ALL.without(Feature.LVA), False, id="64K-T0SZ12-noLVA-fault"),
        pytest.param("4K", 39, ALL.without(Feature.TTST), True, id="4K-T0SZ39-noTTST-ok"),
        pytest.param("4K", 40, ALL.without(Feature.TTST), False, id="4K-T0SZ40-noTTST-fault"),
        pytest.param("4K", 48, ALL, True, id="4K-T0SZ48-TTST-ok"),
        pytest.param("4K", 49, ALL, False, id="4K-T0SZ49-TTST-fault"),
        pytest.param("16K", 48, ALL, True, id="16K-T0SZ48-TTST-ok"),
        pytest.param("64K", 47, ALL, True, id="64K-T0SZ47-TTST-ok"),
        pytest.param("64K", 48, ALL, False, id="64K-T0SZ48-TTST-fault"),
    ],
)
def test_txsz_limits(granule: str, txsz: int, features: FeatureSet, ok: bool) -> None:
    va = 0x1ABC if txsz > 40 else 0x5ABC
    res, _, _ = _walk(granule, min(max(txsz, 12), 48), va, 0x4000_0000, 3, features=features,
                      tcr_extra={"T0SZ": txsz})
    assert res.par is not None
    if ok:
        assert res.par.f == 0
    else:
        # IMPLEMENTATION DEFINED choice documented by atlab: fault rather than clamp.
        assert res.par.value == par_fault("translation", 0)


# --- VA range and TBI (AArch64.VAIsOutOfRange(), AArch64.AddrTop()) ---------------------------

@pytest.mark.parametrize(
    ("va", "tbi0", "tbi1", "ok"),
    [
        pytest.param(0x0000_1234_5678_9ABC, 0, 0, True, id="lower-in-range"),
        pytest.param(0x0001_1234_5678_9ABC, 0, 0, False, id="lower-bit48-set-fault"),
        pytest.param(0x5A00_1234_5678_9ABC, 0, 0, False, id="lower-tag-TBI0-0-fault"),
        pytest.param(0x5A00_1234_5678_9ABC, 1, 0, True, id="lower-tag-TBI0-1-ok"),
        pytest.param(0x5A01_1234_5678_9ABC, 1, 0, False, id="lower-tag-bit48-fault"),
        pytest.param(0xFFFF_1234_5678_9ABC, 0, 0, True, id="upper-in-range"),
        pytest.param(0xFFFE_1234_5678_9ABC, 0, 0, False, id="upper-bit48-clear-fault"),
        pytest.param(0x00FF_1234_5678_9ABC, 0, 1, True, id="upper-tag-TBI1-1-ok"),
        pytest.param(0x00FF_1234_5678_9ABC, 0, 0, False, id="upper-tag-TBI1-0-fault"),
        # TBI0 does not apply to the upper range (bit 55 selects the TBIn bit).
        pytest.param(0x00FF_1234_5678_9ABC, 1, 0, False, id="upper-tag-only-TBI0-fault"),
    ],
)
def test_va_range_tbi(va: int, tbi0: int, tbi1: int, ok: bool) -> None:
    mem = PhysMem()
    alloc = TableAlloc()
    pa = 0x4567_8000
    t0 = build_s1(mem, "4K", 16, va, pa, 3, alloc=alloc)
    t1 = build_s1(mem, "4K", 16, va, pa + 0x1000, 3, alloc=alloc)
    regs = el1_regs(ttbr0=t0, ttbr1=t1, tcr=tcr_el1(TBI0=tbi0, TBI1=tbi1))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem)
    assert res.par is not None
    if ok:
        upper = bool(va >> 55 & 1)
        assert res.par.value == par_ok((pa + 0x1000 * upper) | (va & 0xFFF), 0xFF, SH_ISH)
    else:
        assert res.par.value == par_fault("translation", 0)


def test_ttbr_selection_by_bit55() -> None:
    # AArch64.GetVARange(): VA[55] selects TTBR1 (upper range), else TTBR0.
    mem = PhysMem()
    alloc = TableAlloc()
    lo, hi = 0x0000_0000_0040_1000, 0xFFFF_FFFF_FFE0_1000
    t0 = build_s1(mem, "4K", 25, lo, 0x1111_1000, 3, alloc=alloc)
    t1 = build_s1(mem, "4K", 25, hi, 0x2222_2000, 3, alloc=alloc)
    regs = el1_regs(ttbr0=t0, ttbr1=t1, tcr=tcr_el1(T0SZ=25, T1SZ=25))
    r0 = run_at(AtOp.S1E1R, lo, regs=regs, mem=mem)
    r1 = run_at(AtOp.S1E1R, hi, regs=regs, mem=mem)
    assert r0.par is not None and r0.par.value == par_ok(0x1111_1000, 0xFF, SH_ISH)
    assert r1.par is not None and r1.par.value == par_ok(0x2222_2000, 0xFF, SH_ISH)
    assert r1.trace.steps[0].table_base == t1 and r0.trace.steps[0].table_base == t0


# --- TG0 / TG1 encodings (AArch64.S1DecodeTG0(), AArch64.S1DecodeTG1()) -----------------------

@pytest.mark.parametrize(
    ("g_lo", "g_hi"),
    [("64K", "16K"), ("16K", "64K"), ("4K", "16K"), ("16K", "4K")],
    ids=lambda g: str(g),
)
def test_tg0_tg1_encodings(g_lo: str, g_hi: str) -> None:
    mem = PhysMem()
    alloc = TableAlloc()
    lo, hi = 0x0000_1234_5678_9ABC, 0xFFFF_1234_5678_9ABC
    t0 = build_s1(mem, g_lo, 16, lo, 0x4000_0000, 3, alloc=alloc)
    t1 = build_s1(mem, g_hi, 16, hi, 0x8000_0000, 3, alloc=alloc)
    regs = el1_regs(ttbr0=t0, ttbr1=t1, tcr=tcr_el1(TG0=TG0[g_lo], TG1=TG1[g_hi]))
    r0 = run_at(AtOp.S1E1R, lo, regs=regs, mem=mem)
    r1 = run_at(AtOp.S1E1R, hi, regs=regs, mem=mem)
    assert r0.par is not None and r1.par is not None
    m_lo, m_hi = (1 << PGSHIFT[g_lo]) - 1, (1 << PGSHIFT[g_hi]) - 1
    assert r0.par.value == par_ok(0x4000_0000 | (lo & m_lo), 0xFF, SH_ISH)
    assert r1.par.value == par_ok(0x8000_0000 | (hi & m_hi), 0xFF, SH_ISH)


def test_reserved_tg_raises_only_when_used() -> None:
    mem = PhysMem()
    alloc = TableAlloc()
    lo, hi = 0x0000_1234_5678_9ABC, 0xFFFF_1234_5678_9ABC
    t0 = build_s1(mem, "4K", 16, lo, 0x4000_0000, 3, alloc=alloc)
    t1 = build_s1(mem, "4K", 16, hi, 0x8000_0000, 3, alloc=alloc)
    # TG0=0b11 reserved: only a TTBR0 walk uses it.
    regs = el1_regs(ttbr0=t0, ttbr1=t1, tcr=tcr_el1(TG0=0b11))
    with pytest.raises(AtlabError):
        run_at(AtOp.S1E1R, lo, regs=regs, mem=mem)
    r = run_at(AtOp.S1E1R, hi, regs=regs, mem=mem)
    assert r.par is not None and r.par.f == 0
    # TG1=0b00 reserved: only a TTBR1 walk uses it.
    regs = el1_regs(ttbr0=t0, ttbr1=t1, tcr=tcr_el1(TG1=0b00))
    with pytest.raises(AtlabError):
        run_at(AtOp.S1E1R, hi, regs=regs, mem=mem)
    r = run_at(AtOp.S1E1R, lo, regs=regs, mem=mem)
    assert r.par is not None and r.par.f == 0
    # With EPD1=1 the walk never starts: level 0 Translation fault, no granule needed.
    regs = el1_regs(ttbr0=t0, ttbr1=t1, tcr=tcr_el1(TG1=0b00, EPD1=1))
    r = run_at(AtOp.S1E1R, hi, regs=regs, mem=mem)
    assert r.par is not None and r.par.value == par_fault("translation", 0)


def test_unimplemented_granule_raises() -> None:
    regs = el1_regs(ttbr0=0x4000_0000, tcr=tcr_el1(TG0=TG0["16K"]))
    with pytest.raises(AtlabError):
        run_at(AtOp.S1E1R, 0x1000, regs=regs, mem=PhysMem(),
               features=ALL.without(Feature.TGRAN16))


# --- EPDn, E0PDn (AArch64.S1EPD(), FEAT_E0PD) ------------------------------------------------

@pytest.mark.parametrize(
    ("va", "fields", "op", "features", "faults"),
    [
        pytest.param(0x1000, {"EPD0": 1}, AtOp.S1E1R, ALL, True, id="EPD0-S1E1R-L0"),
        pytest.param(0xFFFF_0000_0000_1000, {"EPD0": 1}, AtOp.S1E1R, ALL, False,
                     id="EPD0-upper-unaffected"),
        pytest.param(0xFFFF_0000_0000_1000, {"EPD1": 1}, AtOp.S1E1R, ALL, True,
                     id="EPD1-S1E1R-L0"),
        pytest.param(0x1000, {"E0PD0": 1}, AtOp.S1E0R, ALL, True, id="E0PD0-S1E0R-L0"),
        pytest.param(0x1000, {"E0PD0": 1}, AtOp.S1E1R, ALL, False, id="E0PD0-S1E1R-ok"),
        pytest.param(0xFFFF_0000_0000_1000, {"E0PD1": 1}, AtOp.S1E0W, ALL, True,
                     id="E0PD1-S1E0W-L0"),
        pytest.param(0x1000, {"E0PD0": 1}, AtOp.S1E0R, ALL.without(Feature.E0PD), False,
                     id="E0PD0-noFEAT_E0PD-ignored"),
    ],
)
def test_epd_e0pd(va: int, fields: dict[str, int], op: AtOp, features: FeatureSet,
                  faults: bool) -> None:
    mem = PhysMem()
    alloc = TableAlloc()
    bits_ = AF | sh(SH_ISH) | (0b01 << 6)  # AP=01: EL0 and EL1 read/write
    t0 = build_s1(mem, "4K", 16, va, 0x4000_0000, 3, bits_, alloc=alloc)
    t1 = build_s1(mem, "4K", 16, va, 0x4000_0000, 3, bits_, alloc=alloc)
    regs = el1_regs(ttbr0=t0, ttbr1=t1, tcr=tcr_el1(**fields))
    res = run_at(op, va, regs=regs, mem=mem, features=features)
    assert res.par is not None
    if faults:
        assert res.par.value == par_fault("translation", 0)
    else:
        assert res.par.value == par_ok(0x4000_0000, 0xFF, SH_ISH)


# --- contiguous bit ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("granule", "leaf_level", "pa"),
    [
        pytest.param("4K", 3, 0x4567_8000, id="4K-L3-contiguous"),
        pytest.param("4K", 2, 0x8_0020_0000, id="4K-L2-contiguous"),
        pytest.param("16K", 3, 0x4567_C000, id="16K-L3-contiguous"),
        pytest.param("64K", 3, 0x4567_0000, id="64K-L3-contiguous"),
    ],
)
def test_contiguous_hint(granule: str, leaf_level: int, pa: int) -> None:
    # The Contiguous bit is a TLB hint: the translation is unchanged (AArch64.ContiguousBit()).
    va = 0x1234_5678_9ABC
    res, mem, root = _walk(granule, 16, va, pa, leaf_level, LEAF | CONTIG)
    lsb = (3 - leaf_level) * (PGSHIFT[granule] - 3) + PGSHIFT[granule]
    assert res.par is not None
    assert res.par.value == par_ok(pa | (va & ((1 << lsb) - 1)), 0xFF, SH_ISH)
    regs = el1_regs(ttbr0=root, tcr=tcr_el1(TG0=TG0[granule], IPS=6))
    wi = setup_s1_walk(regs, ALL, Regime.EL10, 1, va)
    assert not hasattr(wi, "kind")
    s1 = walk_s1(wi, mem, va, ALL)  # type: ignore[arg-type]
    assert s1.contiguous


# --- Access flag (AArch64.S1Walk(), AArch64.SetAccessFlag()) ---------------------------------

@pytest.mark.parametrize("leaf_level", [1, 2, 3], ids=lambda lv: f"4K-L{lv}")
def test_af_fault_with_ha0(leaf_level: int) -> None:
    va = 0x1234_5678_9ABC
    res, _, _ = _walk("4K", 16, va, 0x80_0000_0000, leaf_level, sh(SH_ISH))
    assert res.par is not None
    assert res.par.value == par_fault("access", leaf_level)


@pytest.mark.parametrize("leaf_level", [2, 3], ids=lambda lv: f"4K-L{lv}-HA1")
def test_af_set_by_walk_with_ha1(leaf_level: int) -> None:
    va = 0x1234_5678_9ABC
    res, mem, _ = _walk("4K", 16, va, 0x80_0000_0000, leaf_level, sh(SH_ISH),
                        tcr_extra={"HA": 1})
    assert res.par is not None and res.par.f == 0
    leaf = res.trace.steps[leaf_level]  # start level 0: steps[i] is level i
    assert leaf.level == leaf_level
    # The word in memory now has AF (bit 10) set; nothing else changed.
    assert mem.peek(leaf.desc_pa) == leaf.raw | AF


def test_ha1_without_hafdbs_faults() -> None:
    res, _, _ = _walk("4K", 16, 0x1000, 0x4000_0000, 3, sh(SH_ISH), tcr_extra={"HA": 1},
                      features=ALL.without(Feature.HAFDBS))
    assert res.par is not None and res.par.value == par_fault("access", 3)


# --- address size faults (AArch64.S1OAOutOfRange(), AArch64.PhysicalAddressSize()) -----------

@pytest.mark.parametrize(
    ("ips", "ttbr", "ok"),
    [
        # PS 000 = 32 bits, 010 = 40 bits, 101 = 48 bits.
        pytest.param(0b000, 0x1_0000_0000, False, id="IPS32-TTBR-4GB-L0"),
        pytest.param(0b000, 0xFFFF_F000, True, id="IPS32-TTBR-below-4GB"),
        pytest.param(0b010, 0x100_0000_0000, False, id="IPS40-TTBR-1TB-L0"),
        pytest.param(0b010, 0xFF_FFFF_F000, True, id="IPS40-TTBR-below-1TB"),
        pytest.param(0b101, 0x8000_0000_0000, True, id="IPS48-TTBR-2^47"),
    ],
)
def test_address_size_ttbr(ips: int, ttbr: int, ok: bool) -> None:
    va = 0x1234_5678_9ABC
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, va, 0x4000_0000, 3, root=ttbr, alloc=TableAlloc(0x1000_0000))
    res = run_at(AtOp.S1E1R, va, regs=el1_regs(ttbr0=root, tcr=tcr_el1(IPS=ips)), mem=mem)
    assert res.par is not None
    if ok:
        assert res.par.value == par_ok(0x4000_0000 | 0xABC, 0xFF, SH_ISH)
    else:
        assert res.par.value == par_fault("addrsize", 0)


@pytest.mark.parametrize(
    ("ips", "table_base", "level", "ok"),
    [
        # A table descriptor whose next-level address is beyond the OA size: Address size
        # fault at the level of that table descriptor.
        pytest.param(0b010, 0x100_0000_0000, 0, False, id="IPS40-L0-table-1TB"),
        pytest.param(0b010, 0x100_0000_0000, 2, False, id="IPS40-L2-table-1TB"),
        pytest.param(0b100, 0x1000_0000_0000, 1, False, id="IPS44-L1-table-16TB"),
        pytest.param(0b101, 0x1000_0000_0000, 1, True, id="IPS48-L1-table-16TB"),
    ],
)
def test_address_size_table(ips: int, table_base: int, level: int, ok: bool) -> None:
    va = 0x1234_5678_9ABC
    mem = PhysMem()
    alloc = TableAlloc()
    root = alloc.table(12)
    # Build the path, allocating the table *after* `level` at table_base.
    tables = [root]
    for lv in range(4):
        if lv == level:
            nxt = table_base
        else:
            nxt = alloc.table(12)
        tables.append(nxt)
    for lv in range(3):
        idx = (va >> (39 - 9 * lv)) & 0x1FF
        mem.poke(tables[lv] + 8 * idx, tables[lv + 1] | 0b11)
    mem.poke(tables[3] + 8 * ((va >> 12) & 0x1FF), 0x4000_0000 | LEAF | 0b11)
    res = run_at(AtOp.S1E1R, va, regs=el1_regs(ttbr0=root, tcr=tcr_el1(IPS=ips)), mem=mem)
    assert res.par is not None
    if ok:
        assert res.par.value == par_ok(0x4000_0ABC, 0xFF, SH_ISH)
    else:
        assert res.par.value == par_fault("addrsize", level)


@pytest.mark.parametrize(
    ("ips", "pa", "leaf_level", "features", "ok"),
    [
        pytest.param(0b000, 0x1_0000_0000, 3, ALL, False, id="IPS32-page-4GB-L3"),
        pytest.param(0b001, 0x10_0000_0000, 2, ALL, False, id="IPS36-block-64GB-L2"),
        pytest.param(0b001, 0xF_FFE0_0000, 2, ALL, True, id="IPS36-block-below-64GB"),
        pytest.param(0b011, 0x400_0000_0000, 1, ALL, False, id="IPS42-block-4TB-L1"),
        pytest.param(0b101, 0x8000_4000_0000, 1, ALL, True, id="IPS48-block-2^47"),
        # IPS larger than PAMax is capped at PAMax (AArch64.PhysicalAddressSize()).
        pytest.param(0b101, 0x100_0000_0000, 3, FeatureSet.all(pa_max=40), False,
                     id="IPS48-PAMax40-page-1TB"),
        # IPS=52 bits without DS/64KB is capped at 48.
        pytest.param(0b110, 0x0_8000_0000_0000, 3, ALL, True, id="IPS52-4K-DS0-2^47"),
    ],
)
def test_address_size_output(ips: int, pa: int, leaf_level: int, features: FeatureSet,
                             ok: bool) -> None:
    va = 0x1234_5678_9ABC
    res, _, _ = _walk("4K", 16, va, pa, leaf_level, features=features, tcr_extra={"IPS": ips})
    assert res.par is not None
    if ok:
        lsb = 12 + 9 * (3 - leaf_level)
        assert res.par.value == par_ok(pa | (va & ((1 << lsb) - 1)), 0xFF, SH_ISH)
    else:
        assert res.par.value == par_fault("addrsize", leaf_level)


# --- 52-bit output addresses ------------------------------------------------------------------

def test_lpa2_4k_52bit_oa_level_minus1() -> None:
    # FEAT_LPA2, DS=1, 4KB, T0SZ=12: start level -1 (VA[51:48]); descriptors carry OA[51:50]
    # in bits [9:8] and OA[49:48] in bits [49:48]; TTBR0 BADDR[51:48] is in bits [5:2];
    # leaf shareability comes from TCR_EL1.SH0 (AArch64.S1LeafBase(), S1TTBaseAddress()).
    va = 0x000F_1234_5678_9ABC
    pa = 0xC_3456_789A_B000  # bits 51:48 = 0xC
    root = 0x5_0000_0000_1000  # BADDR[51:48] = 5
    mem = PhysMem()
    build_s1(mem, "4K", 12, va, pa, 3, AF, root=root, encode_oa=oa_lpa2,
             alloc=TableAlloc(0x3_0000_0000_0000))
    ttbr = (root & ((1 << 48) - 1)) | ((root >> 48) << 2)
    regs = el1_regs(ttbr0=ttbr, tcr=tcr_el1(T0SZ=12, DS=1, IPS=0b110, SH0=SH_OSH))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem)
    assert [s.level for s in res.trace.steps] == [-1, 0, 1, 2, 3]
    assert res.trace.steps[0].desc_pa == root + 8 * 0xF  # VA[51:48] = 0xF
    assert res.par is not None
    assert res.par.value == par_ok(pa | 0xABC, 0xFF, SH_OSH)


def test_lpa2_16k_52bit_oa_level0() -> None:
    va = 0x000F_1234_5678_9ABC
    pa = 0x9_8765_4321_C000
    mem = PhysMem()
    root = build_s1(mem, "16K", 12, va, pa, 3, AF, encode_oa=oa_lpa2)
    regs = el1_regs(ttbr0=root, tcr=tcr_el1(T0SZ=12, TG0=TG0["16K"], DS=1, IPS=0b110))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem)
    assert res.trace.steps[0].level == 0 and res.trace.steps[0].ia_hi == 51
    assert res.par is not None
    assert res.par.value == par_ok(pa | (va & 0x3FFF), 0xFF, SH_ISH)


def test_lpa2_4k_level0_block() -> None:
    # DS=1 allows a 4KB level 0 block (512GB).
    va = 0x0000_8123_4567_89AB
    pa = 0x7_0080_0000_0000
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, va, pa, 0, AF, encode_oa=oa_lpa2)
    regs = el1_regs(ttbr0=root, tcr=tcr_el1(DS=1, IPS=0b110))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem)
    assert res.par is not None
    assert res.par.value == par_ok(pa | (va & ((1 << 39) - 1)), 0xFF, SH_ISH)


def test_lpa2_ignored_without_feature() -> None:
    # Without FEAT_LPA2, TCR_EL1.DS is RES0: T0SZ=12 with 4KB is below the minimum (16).
    regs = el1_regs(ttbr0=0x4000_0000, tcr=tcr_el1(T0SZ=12, DS=1, IPS=0b110))
    res = run_at(AtOp.S1E1R, 0x1000, regs=regs, mem=PhysMem(),
                 features=ALL.without(Feature.LPA2))
    assert res.par is not None and res.par.value == par_fault("translation", 0)


def test_64k_lpa_52bit_oa() -> None:
    # FEAT_LPA, 64KB: OA[51:48] in descriptor bits [15:12]; with IPS=0b110 the TTBR carries
    # BADDR[51:48] in bits [5:2].
    va = 0x000F_1234_5678_9ABC
    pa = 0xA_1234_5678_0000
    root = 0x3_0000_0004_0000
    mem = PhysMem()
    build_s1(mem, "64K", 12, va, pa, 3, LEAF, root=root, encode_oa=oa_64k_lpa,
             alloc=TableAlloc(0x2_0000_0000_0000))
    ttbr = (root & ((1 << 48) - 1)) | ((root >> 48) << 2)
    regs = el1_regs(ttbr0=ttbr, tcr=tcr_el1(T0SZ=12, TG0=TG0["64K"], IPS=0b110))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem)
    assert res.par is not None
    assert res.par.value == par_ok(pa | (va & 0xFFFF), 0xFF, SH_ISH)


# --- big-endian tables (SCTLR_EL1.EE=1) -------------------------------------------------------

def test_big_endian_descriptors() -> None:
    # SCTLR_EL1.EE=1: walks read descriptors big-endian; memory holds byte-reversed words.
    va = 0x1234_5678_9ABC
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, va, 0x4567_8000, 3, LEAF, big_endian=True)
    regs = el1_regs(ttbr0=root, sctlr_el1=sctlr(EE=1))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == par_ok(0x4567_8ABC, 0xFF, SH_ISH)
    # The same memory read little-endian is garbage: not a successful translation to that PA.
    le = run_at(AtOp.S1E1R, va, regs=el1_regs(ttbr0=root), mem=mem)
    assert le.par is not None and le.par.value != res.par.value


def test_big_endian_af_update_written_big_endian() -> None:
    va = 0x1234_5678_9ABC
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, va, 0x4567_8000, 3, sh(SH_ISH), big_endian=True)
    regs = el1_regs(ttbr0=root, sctlr_el1=sctlr(EE=1), tcr=tcr_el1(HA=1))
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem)
    assert res.par is not None and res.par.f == 0
    leaf = res.trace.steps[3]
    expected = 0x4567_8000 | sh(SH_ISH) | AF | 0b11
    assert mem.peek(leaf.desc_pa) == byteswap64(expected)


# --- the trace ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("granule", "txsz", "levels"),
    [
        pytest.param("4K", 16, [(0, 47, 39), (1, 38, 30), (2, 29, 21), (3, 20, 12)],
                     id="4K-48bit-4-levels"),
        pytest.param("4K", 25, [(1, 38, 30), (2, 29, 21), (3, 20, 12)], id="4K-39bit-3-levels"),
        pytest.param("16K", 16, [(0, 47, 47), (1, 46, 36), (2, 35, 25), (3, 24, 14)],
                     id="16K-48bit-4-levels"),
        pytest.param("64K", 16, [(1, 47, 42), (2, 41, 29), (3, 28, 16)], id="64K-48bit-3-levels"),
        pytest.param("64K", 22, [(2, 41, 29), (3, 28, 16)], id="64K-42bit-2-levels"),
    ],
)
def test_trace_steps(granule: str, txsz: int, levels: list[tuple[int, int, int]]) -> None:
    va = 0x1234_5678_9ABC & ((1 << (64 - txsz)) - 1)
    res, _, root = _walk(granule, txsz, va, 0x4000_0000, 3)
    assert res.par is not None and res.par.f == 0
    steps = res.trace.steps
    assert len(steps) == len(levels)
    table = root
    for step, (level, hi, lo) in zip(steps, levels, strict=True):
        assert (step.stage, step.level, step.ia_hi, step.ia_lo) == (1, level, hi, lo)
        index = (va >> lo) & ((1 << (hi - lo + 1)) - 1)
        assert step.index == index
        assert step.table_base == table
        assert step.desc_addr == step.desc_pa == table + 8 * index
        assert step.s2 == ()
        table = step.raw & ((1 << 48) - (1 << PGSHIFT[granule]))
    assert [s.kind for s in steps] == ["table"] * (len(levels) - 1) + ["page"]
    assert res.trace.total_accesses == len(levels)


def test_trace_disabled() -> None:
    res, _, _ = _walk("4K", 16, 0x1000, 0x4000_0000, 3, build_kw={})
    assert res.trace.steps
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, 0x1000, 0x4000_0000, 3)
    quiet = run_at(AtOp.S1E1R, 0x1000, regs=el1_regs(ttbr0=root), mem=mem, trace=False)
    assert quiet.trace.steps == ()
    assert quiet.par is not None and quiet.par.value == par_ok(0x4000_0000, 0xFF, SH_ISH)


# --- EL2 and EL3 regimes use their own registers -------------------------------------------

@pytest.mark.parametrize(
    ("op", "cur_el", "suffix"),
    [
        pytest.param(AtOp.S1E2R, 2, "EL2", id="S1E2R-EL2-regime-TTBR0_EL2"),
        pytest.param(AtOp.S1E3R, 3, "EL3", id="S1E3R-EL3-regime-TTBR0_EL3"),
    ],
)
def test_el2_el3_regime_walk(op: AtOp, cur_el: int, suffix: str) -> None:
    from atlab import SysRegs
    from tests.helpers import MAIR, hcr, tcr_el2
    va = 0x1234_5678_9ABC
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, va, 0x4567_8000, 3, LEAF | attridx_bits(3))
    regs = SysRegs({"HCR_EL2": hcr(), f"SCTLR_{suffix}": sctlr(), f"TCR_{suffix}": tcr_el2(),
                    f"MAIR_{suffix}": MAIR, f"TTBR0_{suffix}": root})
    res = run_at(op, va, regs=regs, mem=mem, cur_el=cur_el)
    assert res.par is not None
    assert res.par.value == par_ok(0x4567_8ABC, 0xBB, SH_ISH)  # Attr3 = 0xbb


def attridx_bits(index: int) -> int:
    return index << 2
