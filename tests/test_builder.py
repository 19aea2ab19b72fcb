"""The table builder: what is mapped is exactly what AT returns.

Expected values come from the intent and from independent transcriptions of the Arm ARM:
the AP[2:1] permission table (D8.4.1), the block sizes per level and granule
(``AArch64.BlockDescSupported()``), the Contiguous run sizes (``AArch64.ContiguousSize()``),
PAR_EL1.SH for Device/Non-cacheable memory, and the rule that a walk of an unmapped address
stops at the first level whose entry covers no mapping (the builder creates a table only
where a mapping needs it and frees tables that become empty).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlab import AtlabError, AtOp, Regime, run_at
from atlab.builder import (
    MEM_TYPES,
    S1Builder,
    S2Builder,
    TableAllocator,
    contiguous_entries,
    qemu_allocator,
    s2_geometry,
)
from atlab.features import FeatureSet
from atlab.granule import Granule
from atlab.par import Par

PGSHIFT = {Granule.K4: 12, Granule.K16: 14, Granule.K64: 16}
STRIDE = {Granule.K4: 9, Granule.K16: 11, Granule.K64: 13}


def lsb(level: int, g: Granule) -> int:
    return (3 - level) * STRIDE[g] + PGSHIFT[g]


def sl_of(ia: int, g: Granule) -> int:
    return 3 - (ia - 1 - PGSHIFT[g]) // STRIDE[g]  # AArch64.S1StartLevel()


#: Levels with block descriptors (AArch64.BlockDescSupported(), all features, PAMax 52).
BLOCK_LEVELS = {(Granule.K4, False): {1, 2}, (Granule.K4, True): {0, 1, 2},
                (Granule.K16, False): {2}, (Granule.K16, True): {1, 2},
                (Granule.K64, False): {1, 2}, (Granule.K64, True): {1, 2}}
#: Stage 1 AP[2:1] -> (EL1 R, EL1 W, EL0 R, EL0 W) (D8.4.1, Table D8-43).
AP_RIGHTS = {"EL1 RW": (1, 1, 0, 0), "EL1 RW / EL0 RW": (1, 1, 1, 1), "EL1 RO": (1, 0, 0, 0),
             "EL1 RO / EL0 RO": (1, 0, 1, 0)}


@dataclass(frozen=True)
class Cfg:
    regime: Regime
    granule: Granule
    va_bits: int
    pa_bits: int = 48
    ds: bool = False
    upper: bool = False

    @property
    def page(self) -> int:
        return 1 << PGSHIFT[self.granule]

    @property
    def base(self) -> int:
        return (1 << 64) - (1 << self.va_bits) if self.upper else 0


CFGS = [
    pytest.param(Cfg(Regime.EL10, Granule.K4, 48), id="EL10-4K-48bit-TTBR0"),
    pytest.param(Cfg(Regime.EL10, Granule.K4, 48, upper=True), id="EL10-4K-48bit-TTBR1"),
    pytest.param(Cfg(Regime.EL10, Granule.K4, 39), id="EL10-4K-39bit-SL1"),
    pytest.param(Cfg(Regime.EL10, Granule.K16, 47, upper=True), id="EL10-16K-47bit-TTBR1"),
    pytest.param(Cfg(Regime.EL10, Granule.K64, 52, 52, upper=True), id="EL10-64K-52bit-LPA"),
    pytest.param(Cfg(Regime.EL10, Granule.K4, 52, 52, ds=True), id="EL10-4K-52bit-DS-SL-1"),
    pytest.param(Cfg(Regime.EL10, Granule.K16, 52, 52, ds=True), id="EL10-16K-52bit-DS"),
    pytest.param(Cfg(Regime.EL20, Granule.K16, 48, upper=True), id="EL20-16K-48bit-TTBR1"),
    pytest.param(Cfg(Regime.EL2, Granule.K4, 48), id="EL2-4K-48bit"),
    pytest.param(Cfg(Regime.EL3, Granule.K64, 42), id="EL3-64K-42bit"),
]


def ops_for(regime: Regime) -> list[tuple[AtOp, int, bool, int]]:
    """(op, EL whose rights apply, write, cur_el)."""
    if regime is Regime.EL10:
        return [(AtOp.S1E1R, 1, False, 2), (AtOp.S1E1W, 1, True, 2),
                (AtOp.S1E0R, 0, False, 2), (AtOp.S1E0W, 0, True, 2)]
    if regime is Regime.EL20:
        return [(AtOp.S1E2R, 1, False, 2), (AtOp.S1E2W, 1, True, 2),
                (AtOp.S1E0R, 0, False, 2), (AtOp.S1E0W, 0, True, 2)]
    if regime is Regime.EL2:
        return [(AtOp.S1E2R, 1, False, 2), (AtOp.S1E2W, 1, True, 2)]
    return [(AtOp.S1E3R, 1, False, 3), (AtOp.S1E3W, 1, True, 3)]


def new_builder(cfg: Cfg, tables: tuple[int, int] = (0x4020_0000, 0x4800_0000)) -> S1Builder:
    return S1Builder(cfg.regime, granule=cfg.granule, va_bits=cfg.va_bits, pa_bits=cfg.pa_bits,
                     ds=cfg.ds, tables=tables)


@dataclass(frozen=True)
class M:
    va: int
    pa: int
    size: int
    ap: str
    mem: str


def expected_leaf_level(cfg: Cfg, m: M, va: int) -> int:
    """Greedy largest block: the first level whose entry lies inside the mapping, with the
    VA-PA offset aligned to the block size, where blocks are allowed."""
    for level in range(sl_of(cfg.va_bits, cfg.granule), 4):
        size = 1 << lsb(level, cfg.granule)
        start = va & ~(size - 1)
        if (level == 3 or level in BLOCK_LEVELS[cfg.granule, cfg.ds]) and \
                m.va <= start and start + size <= m.va + m.size and not (m.pa - m.va) % size:
            return level
    raise AssertionError("unreachable")


def expected_fault_level(cfg: Cfg, maps: list[M], va: int) -> int:
    """First level whose entry for ``va`` covers no mapping (0 if the range has none: EPDn)."""
    if not maps:
        return 0
    for level in range(sl_of(cfg.va_bits, cfg.granule), 4):
        size = 1 << lsb(level, cfg.granule)
        start = va & ~(size - 1)
        if not any(m.va < start + size and start < m.va + m.size for m in maps):
            return level
    raise AssertionError(f"{va:#x} is mapped")


def ap_for(cfg: Cfg, ap: str) -> str:
    if cfg.regime in (Regime.EL2, Regime.EL3):
        return "RW" if ap.startswith("EL1 RW") else "RO"
    return ap


def rights(cfg: Cfg, ap: str, el: int, write: bool) -> bool:
    r1, w1, r0, w0 = AP_RIGHTS[ap]
    if cfg.regime in (Regime.EL2, Regime.EL3):
        r0 = w0 = 0
    if el == 1:
        return bool(w1 if write else r1)
    return bool(w0 if write else r0)


def par_sh(mem: str) -> int:
    return 0b10 if mem.startswith("device") or mem == "normal-nc" else 0b11


def check_va(cfg: Cfg, b: S1Builder, maps: list[M], va: int) -> None:
    regs, mem = b.regs(), b.memory()
    hit = [m for m in maps if m.va <= va < m.va + m.size]
    for op, el, write, cur_el in ops_for(cfg.regime):
        par = run_at(op, va, regs=regs, mem=mem, cur_el=cur_el, trace=False).par
        assert par is not None
        if not hit:
            assert par.f == 1, f"{op} {va:#x}: expected a fault, got {par}"
            level = expected_fault_level(cfg, maps, va)
            # Translation fault FST: 0b0001LL; level -1 (FEAT_LPA2) is 0b101011.
            assert par.fault_status == (0b101011 if level == -1 else 0b000100 + level), (
                f"{op} {va:#x}: {par}")
            continue
        m = hit[0]
        level = expected_leaf_level(cfg, m, va)
        if not rights(cfg, m.ap, el, write):
            assert par.f == 1 and par.fault_status == 0b001100 + level, f"{op} {va:#x}: {par}"
            continue
        assert par.f == 0, f"{op} {va:#x}: {par}"
        assert par.pa == (m.pa + va - m.va) & ~0xFFF
        assert par.attr == MEM_TYPES[m.mem]
        assert par.sh == par_sh(m.mem)


# --- round trip (hypothesis) -------------------------------------------------------------------

@st.composite
def mapping_plans(draw: st.DrawFn, cfg: Cfg) -> list[tuple[int, int, int, str, str, bool]]:
    g = cfg.granule
    page = cfg.page
    l2 = 1 << lsb(2, g)
    window = 4 * l2
    plans = []
    for _ in range(draw(st.integers(1, 3))):
        va_off = draw(st.one_of(st.integers(0, window // page - 1).map(lambda p: p * page),
                                st.integers(0, 3).map(lambda k: k * l2)))
        npages = draw(st.one_of(st.integers(1, 40), st.sampled_from([l2 // page,
                                                                     l2 // page + 3,
                                                                     2 * l2 // page])))
        pa_off = draw(st.one_of(st.just(0), st.integers(1, 31).map(lambda p: p * page)))
        ap = draw(st.sampled_from(sorted(AP_RIGHTS)))
        mem = draw(st.sampled_from(["normal-wb", "normal-nc", "device-ngnre", "normal-wt"]))
        cont = draw(st.booleans())
        plans.append((va_off, pa_off, npages * page, ap, mem, cont))
    return plans


@pytest.mark.parametrize("cfg", CFGS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_map_round_trip(cfg: Cfg, data: st.DataObject) -> None:
    """Every mapped VA translates to its PA with its rights and attributes; VAs around the
    mappings fault at the level where the tables stop; a refused map changes nothing."""
    b = new_builder(cfg)
    page, l2 = cfg.page, 1 << lsb(2, cfg.granule)
    base = cfg.base + (1 << (cfg.va_bits - 2))  # somewhere inside the range
    pa_base = 0x8000_0000 if cfg.pa_bits < 52 else 0xA_0000_0000_0000
    maps: list[M] = []
    for va_off, pa_off, size, ap, mem, cont in data.draw(mapping_plans(cfg)):
        va, pa = base + va_off, pa_base + va_off + pa_off
        ap_name = ap_for(cfg, ap)
        before = (b.memory(), b.sysregs())
        overlap = any(m.va < va + size and va < m.va + m.size for m in maps)
        try:
            b.map(va, pa, size, ap=ap_name, mem=mem, contiguous=cont)
        except AtlabError as exc:
            assert overlap, f"unexpected refusal: {exc}"
            assert "already mapped" in str(exc)
            assert (b.memory(), b.sysregs()) == before
            continue
        assert not overlap
        maps.append(M(va, pa, size, ap, mem))
    probes = set()
    for m in maps:
        for va in (m.va, m.va + m.size - page, m.va + (m.size // 2 & ~(page - 1)), m.va - page,
                   m.va + m.size, m.va + m.size + l2):
            probes.add(va + data.draw(st.integers(0, page - 1)) // 8 * 8)
    for va in sorted(probes):
        if cfg.base <= va < cfg.base + (1 << cfg.va_bits):
            check_va(cfg, b, maps, va)


# --- unmap and protect split blocks --------------------------------------------------------------

@pytest.mark.parametrize("cfg", CFGS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_unmap_protect_split(cfg: Cfg, data: st.DataObject) -> None:
    b = new_builder(cfg)
    page, l2 = cfg.page, 1 << lsb(2, cfg.granule)
    va0 = cfg.base + (1 << (cfg.va_bits - 2))
    pa0 = 0x8000_0000
    size = 2 * l2
    b.map(va0, pa0, size, ap="EL1 RW / EL0 RW" if cfg.regime.has_unprivileged else "RW",
          contiguous=data.draw(st.booleans()))
    hole_off = data.draw(st.integers(0, size // page - 1)) * page
    hole_size = data.draw(st.integers(1, min(40, (size - hole_off) // page))) * page
    b.unmap(va0 + hole_off, hole_size)
    ro_off = data.draw(st.integers(0, size // page - 1)) * page
    ro_size = data.draw(st.integers(1, (size - ro_off) // page)) * page
    ro_ap = "EL1 RO / EL0 RO" if cfg.regime.has_unprivileged else "RO"
    in_hole = [va0 + hole_off + i for i in (0, hole_size - page)]
    if any(va0 + ro_off <= h < va0 + ro_off + ro_size for h in
           range(va0 + hole_off, va0 + hole_off + hole_size, page)):
        before = b.memory()
        with pytest.raises(AtlabError, match="not mapped"):
            b.protect(va0 + ro_off, ro_size, ap=ro_ap)
        assert b.memory() == before  # no half-applied protect
        ro_size = 0
    else:
        b.protect(va0 + ro_off, ro_size, ap=ro_ap)
    regs, mem = b.regs(), b.memory()
    write = ops_for(cfg.regime)[1]
    for va in {va0, va0 + size - page, va0 + hole_off - page, va0 + hole_off + hole_size,
               va0 + ro_off, va0 + ro_off + ro_size - page, va0 + ro_off + ro_size, *in_hole}:
        if not va0 <= va < va0 + size:
            continue
        par = run_at(write[0], va, regs=regs, mem=mem, cur_el=write[3], trace=False).par
        assert par is not None
        if va0 + hole_off <= va < va0 + hole_off + hole_size:
            assert par.f and par.fault_status >> 2 == 0b0001, f"{va:#x} unmapped: {par}"
        elif va0 + ro_off <= va < va0 + ro_off + ro_size:
            assert par.f and par.fault_status >> 2 == 0b0011, f"{va:#x} RO: {par}"
        else:
            assert not par.f and par.pa == pa0 + va - va0, f"{va:#x}: {par}"
    # Contiguous runs never straddle a changed entry: every CON run is whole and uniform.
    for tbl in b.tables.values():
        _check_contiguous_runs(b, tbl)


def _check_contiguous_runs(b: S1Builder | S2Builder, tbl: object) -> None:
    from array import array

    assert isinstance(tbl, array)
    words = list(tbl)
    for i, d in enumerate(words):
        if d & 1 and d >> 52 & 1:
            # a run of N entries, all with the bit, same attributes
            for n in (16, 32, 128):
                g0 = i - i % n
                if all(words[j] >> 52 & 1 for j in range(g0, min(g0 + n, len(words)))):
                    break
            else:
                raise AssertionError(f"entry {i} has the Contiguous bit outside a whole run")


# --- table-driven: block choice, contiguous runs, stage 2 geometry --------------------------------

@pytest.mark.parametrize(
    ("granule", "va_bits", "ds", "size", "level"),
    [
        # AArch64.BlockDescSupported(): 4KB L1/L2 (L0 with DS), 16KB L2 (L1 with DS),
        # 64KB L2 (L1 with FEAT_LPA).
        pytest.param(Granule.K4, 48, False, 1 << 30, 1, id="4K-L1-block-1G"),
        pytest.param(Granule.K4, 48, False, 1 << 21, 2, id="4K-L2-block-2M"),
        pytest.param(Granule.K4, 48, False, 1 << 39, 1, id="4K-no-L0-block-without-DS"),
        pytest.param(Granule.K4, 52, True, 1 << 39, 0, id="4K-L0-block-512G-DS"),
        pytest.param(Granule.K16, 47, False, 1 << 25, 2, id="16K-L2-block-32M"),
        pytest.param(Granule.K16, 47, False, 1 << 36, 2, id="16K-no-L1-block-without-DS"),
        pytest.param(Granule.K16, 52, True, 1 << 36, 1, id="16K-L1-block-64G-DS"),
        pytest.param(Granule.K64, 48, False, 1 << 29, 2, id="64K-L2-block-512M"),
        pytest.param(Granule.K64, 52, False, 1 << 42, 1, id="64K-L1-block-4T-LPA"),
    ],
)
def test_largest_block(granule: Granule, va_bits: int, ds: bool, size: int, level: int) -> None:
    b = S1Builder(granule=granule, va_bits=va_bits, ds=ds, pa_bits=52 if va_bits == 52 else 48,
                  tables=(0x4020_0000, 0x4800_0000))
    b.map(size, size, size)
    assert b.lookup(size) == (level, size)
    assert b.lookup(2 * size - 8) == (level, 2 * size - 8)


@pytest.mark.parametrize(
    ("granule", "level", "entries"),
    [
        # AArch64.ContiguousSize(): 16 for 4KB; 128 (L3) / 32 (L2) for 16KB; 32 for 64KB.
        pytest.param(Granule.K4, 3, 16, id="4K-L3-CON-16"),
        pytest.param(Granule.K4, 2, 16, id="4K-L2-CON-16"),
        pytest.param(Granule.K16, 3, 128, id="16K-L3-CON-128"),
        pytest.param(Granule.K16, 2, 32, id="16K-L2-CON-32"),
        pytest.param(Granule.K64, 3, 32, id="64K-L3-CON-32"),
        pytest.param(Granule.K64, 2, 32, id="64K-L2-CON-32"),
    ],
)
def test_contiguous_runs(granule: Granule, level: int, entries: int) -> None:
    assert contiguous_entries(granule, level) == entries
    b = S1Builder(granule=granule, va_bits=48, tables=(0x4020_0000, 0x4800_0000))
    leaf = 1 << lsb(level, granule)
    run = entries * leaf
    # One leaf before an aligned run, the run, and one leaf after: only the run is CON.
    va = 4 * run - leaf
    b.map(va, va + (1 << 44), run + 2 * leaf, contiguous=True)
    regs, mem = b.regs(), b.memory()
    descs = {}
    for a in (va, 4 * run, 5 * run - leaf, 5 * run):
        res = run_at(AtOp.S1E1R, a, regs=regs, mem=mem)
        assert res.par is not None and not res.par.f
        descs[a] = mem.peek(res.trace.steps[-1].desc_pa) if res.trace.steps else 0
    assert [d >> 52 & 1 for d in descs.values()] == [0, 1, 1, 0]


def test_contiguous_not_set_when_pa_misaligned() -> None:
    b = S1Builder(tables=(0x4020_0000, 0x4040_0000))
    b.map(0x10_0000, 0x8000_1000, 0x1_0000, contiguous=True)  # PA not 64KB aligned
    assert not any(d >> 52 & 1 for _, d in b.words())


@pytest.mark.parametrize(
    ("granule", "ipa_bits", "sl", "concat", "sl0"),
    [
        # AArch64.S2InconsistentSL(): up to 16 concatenated start tables; KVM picks the
        # fewest levels.
        pytest.param(Granule.K4, 40, 1, 2, 0b01, id="S2-4K-40bit-SL0=1-concat2"),
        pytest.param(Granule.K4, 43, 1, 16, 0b01, id="S2-4K-43bit-SL0=1-concat16"),
        pytest.param(Granule.K4, 44, 0, 1, 0b10, id="S2-4K-44bit-SL0=2-no-17-tables"),
        pytest.param(Granule.K4, 48, 0, 1, 0b10, id="S2-4K-48bit-SL0=2-L0"),
        pytest.param(Granule.K4, 32, 2, 4, 0b00, id="S2-4K-32bit-SL0=0-concat4"),
        pytest.param(Granule.K16, 40, 2, 16, 0b01, id="S2-16K-40bit-L2-concat16"),
        pytest.param(Granule.K64, 42, 2, 1, 0b01, id="S2-64K-42bit-L2"),
        pytest.param(Granule.K64, 52, 1, 1, 0b10, id="S2-64K-52bit-L1-LPA"),
    ],
)
def test_s2_start_level(granule: Granule, ipa_bits: int, sl: int, concat: int,
                        sl0: int) -> None:
    assert s2_geometry(granule, ipa_bits, False, FeatureSet.all()) == (sl, concat)
    s2 = S2Builder(granule=granule, ipa_bits=ipa_bits, pa_bits=52 if ipa_bits == 52 else 48,
                   tables=(0x4020_0000, 0x4800_0000))
    assert s2.sysregs()["VTCR_EL2"] >> 6 & 3 == sl0
    # Map the last page of the IPA space (in the last concatenated table) and the first.
    page = 1 << PGSHIFT[granule]
    top = (1 << ipa_bits) - page
    s2.map(top, 0x9000_0000, page, s2ap="RO")
    s2.map(0, 0x9100_0000, page, s2ap="RW")
    regs = s2.regs().replace(HCR_EL2=s2.sysregs()["HCR_EL2"])
    mem = s2.memory()
    for ipa, pa, writable in ((top + 8, 0x9000_0000, False), (0x10, 0x9100_0000, True)):
        r = run_at(AtOp.S12E1R, ipa, regs=regs, mem=mem).par
        assert r is not None and not r.f and r.pa == pa, f"{ipa:#x}: {r}"
        w = run_at(AtOp.S12E1W, ipa, regs=regs, mem=mem).par
        assert w is not None
        assert (not w.f) if writable else (w.f and w.s and w.fault_status >> 2 == 0b0011)
    hole = run_at(AtOp.S12E1R, 1 << (ipa_bits - 1), regs=regs, mem=mem).par
    assert hole is not None and hole.f and hole.s
    assert hole.fault_status == 0b000100 + sl  # the empty start-level entry


@pytest.mark.parametrize(
    ("s2ap", "read", "write"),
    [pytest.param("none", False, False, id="S2AP=00"), pytest.param("RO", True, False,
                                                                    id="S2AP=01-RO"),
     pytest.param("WO", False, True, id="S2AP=10-WO"), pytest.param("RW", True, True,
                                                                    id="S2AP=11-RW")],
)
def test_s2ap(s2ap: str, read: bool, write: bool) -> None:
    s2 = S2Builder(ipa_bits=40, tables=(0x4020_0000, 0x4040_0000))
    s2.map(0x4000_0000, 0x6000_0000, 0x20_0000, s2ap=s2ap, mem="normal-nc")
    regs, mem = s2.regs(), s2.memory()
    for op, allowed in ((AtOp.S12E1R, read), (AtOp.S12E1W, write)):
        par = run_at(op, 0x4000_3000, regs=regs, mem=mem).par
        assert par is not None
        if allowed:
            assert not par.f and par.pa == 0x6000_3000
        else:  # stage 2 permission fault at the 2MB block's level
            assert par.f and par.s and par.fault_status == 0b001110


def test_s1_under_s2_scenario() -> None:
    from atlab.builder import scenario_dict
    from atlab.scenario import parse_scenario

    s2 = S2Builder(ipa_bits=40, tables=qemu_allocator(0x4030_0000, 0x4040_0000))
    s2.map(0x4000_0000, 0x5000_0000, 0x1000_0000)
    g = S1Builder(tables=TableAllocator(0x4020_0000, 0x4030_0000))
    g.map(0xFFFF_0000_0000_0000, 0x4000_0000, 0x1000_0000, xn=True)
    sc = parse_scenario(scenario_dict(name="g", s1=[g], s2=s2, ops=[
        {"op": "S12E1R", "va": 0xFFFF_0000_0012_3000,
         "expected_par": Par.success(0x5012_3000, 0xFF, 0b11).value}]))
    res = sc.run(trace=False)[0]
    assert res.par is not None and res.par.value == sc.ops[0].expected_par


# --- errors: one line, nothing changed ------------------------------------------------------------

@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda b: b.map(0x1000, 0x1800, 0x1000), "not aligned", id="PA-misaligned"),
        pytest.param(lambda b: b.map(0x1800, 0x1000, 0x1000), "not aligned", id="VA-misaligned"),
        pytest.param(lambda b: b.map(0x1000, 0x1000, 0x1800), "not aligned",
                     id="size-misaligned"),
        pytest.param(lambda b: b.map(1 << 48, 0, 0x1000), "outside the 48-bit TTBR0",
                     id="VA-beyond-T0SZ"),
        pytest.param(lambda b: b.map(0xFFFE_0000_0000_0000, 0, 0x1000),
                     "outside the 48-bit TTBR1", id="VA-below-TTBR1-range"),
        pytest.param(lambda b: b.map(0x1000, 1 << 48, 0x1000), "beyond the 48-bit PA",
                     id="PA-beyond-IPS"),
        pytest.param(lambda b: b.map(0x4000_0000, 0, 0x1000), "already mapped",
                     id="overlap-block"),
        pytest.param(lambda b: b.map(0x3FFF_F000, 0, 0x2000), "already mapped",
                     id="overlap-straddles"),
        pytest.param(lambda b: b.map(0x1000, 0, 0x1000, ap="EL1 RW / EL0 RO"),
                     "not encodable", id="AP-EL1RW-EL0RO-unencodable"),
        pytest.param(lambda b: b.map(0x1000, 0, 0x1000, mem="strongly-ordered"),
                     "unknown memory type", id="unknown-memtype"),
        pytest.param(lambda b: b.unmap(0x8000_0000_0000 - 0x1000, 0x1000), "nothing is mapped",
                     id="unmap-hole"),
        pytest.param(lambda b: b.protect(0x3FFF_F000, 0x2000, ap="EL1 RO"), "not mapped",
                     id="protect-hole"),
        pytest.param(lambda b: b.map(0x100_0000_0000, 0x8000_0000, 0x40_0000_0000,
                                     blocks=False), "exhausted", id="allocator-exhausted"),
    ],
)
def test_errors_leave_tables_unchanged(call: object, match: str) -> None:
    b = S1Builder(tables=(0x4020_0000, 0x4024_0000))  # room for 64 tables
    b.map(0x4000_0000, 0x4000_0000, 0x4000_0000)
    b.map(0x7F_0000_0000, 0x5000_0000, 0x10_0000)
    before = (b.memory(), b.sysregs(), b.alloc.snapshot())
    with pytest.raises(AtlabError, match=match) as info:
        call(b)  # type: ignore[operator]
    assert "\n" not in str(info.value)
    assert (b.memory(), b.sysregs(), b.alloc.snapshot()) == before


def test_exhausted_midway_is_rolled_back() -> None:
    """A map that allocates some tables and then runs out leaves no trace."""
    b = S1Builder(tables=(0x4020_0000, 0x4020_4000))  # four tables
    before = b.memory()
    with pytest.raises(AtlabError, match="exhausted"):
        b.map(0x1000, 0x1000, 0x40_0000, blocks=False)  # root + L1 + L2 + 2 L3 tables
    assert b.memory() == before and b.roots == [None, None]
    b.map(0x1000, 0x1000, 0x1000)  # the allocator is usable again
    assert b.lookup(0x1000) == (3, 0x1000)


def test_unmap_frees_tables_and_reuses_them() -> None:
    b = S1Builder(tables=(0x4020_0000, 0x4030_0000))
    b.map(0x1000, 0x8000_0000, 0x1000)
    n = b.table_count
    b.unmap(0x1000, 0x1000)
    assert b.table_count == 1  # only the root is left
    b.map(0x1000, 0x8000_0000, 0x1000)
    assert b.table_count == n


def test_table_attrs() -> None:
    """APTable=01 on the level 1 table descriptor removes EL0 access (D8.4.2)."""
    b = S1Builder(tables=(0x4020_0000, 0x4030_0000))
    b.map(0x40_0000, 0x8000_0000, 0x1000, ap="EL1 RW / EL0 RW")
    b.set_table_attrs(0x40_0000, 1, ap_table="no EL0")
    par = run_at(AtOp.S1E0R, 0x40_0000, regs=b.regs(), mem=b.memory()).par
    assert par is not None and par.f and par.fault_status == 0b001111
    with pytest.raises(AtlabError, match="no table descriptor"):
        b.set_table_attrs(0x40_0000, 3, ap_table="RO")


def test_el2_regime_names() -> None:
    b = S1Builder(Regime.EL2, tables=(0x4020_0000, 0x4030_0000))
    with pytest.raises(AtlabError, match="has no EL0"):
        b.map(0x1000, 0x1000, 0x1000, ap="EL1 RW / EL0 RW")
    with pytest.raises(AtlabError, match="no upper"):
        b.map(0xFFFF_0000_0000_0000, 0x1000, 0x1000)
    b.map(0x1000, 0x1000, 0x1000, ap="RO", xn=True)
    assert b.sysregs()["TCR_EL2"] >> 31 & 1 and b.sysregs()["TCR_EL2"] >> 23 & 1  # RES1


def test_tg1_encoding() -> None:
    """TCR_EL1.TG1 uses its own encoding: 4KB=0b10, 16KB=0b01, 64KB=0b11."""
    for g, tg1 in ((Granule.K4, 0b10), (Granule.K16, 0b01), (Granule.K64, 0b11)):
        b = S1Builder(granule=g, tables=(0x4020_0000, 0x4030_0000))
        assert b.sysregs()["TCR_EL1"] >> 30 & 3 == tg1


def test_scenario_for_qemu_avoids_reserved_ranges() -> None:
    a = qemu_allocator(0x400F_0000, 0x4020_0000)
    got = [a.alloc(0x1_0000) for _ in range(3)]
    assert got == [0x400F_0000, 0x4012_0000, 0x4013_0000]
