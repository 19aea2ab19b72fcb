"""ptdump: coalesced mapped ranges, W+X check, stage 2, the CLI, and its cost."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlab import PhysMem, Regime
from atlab.builder import S1Builder, S2Builder, TableAllocator
from atlab.cli import main
from atlab.ptdump import ptdump, ptdump_s2
from atlab.scenario import save_scenarios
from atlab.walk_s1 import Granule


def kernel() -> S1Builder:
    b = S1Builder(tables=(0x4020_0000, 0x4040_0000))
    b.map(0xFFFF_0000_0000_0000, 0x4000_0000, 0x4000_0000, xn=True)  # 1G L1 block
    b.map(0xFFFF_8000_0800_0000, 0x4080_0000, 0x20_0000, ap="EL1 RO", uxn=True)  # 2M L2
    b.map(0xFFFF_8000_0820_0000, 0x40A0_0000, 0x10_0000, ap="RO", xn=True, contiguous=True)
    b.map(0xFFFF_8000_1000_0000, 0x40C0_0000, 0x3000, ap="EL1 RW")  # W+X pages
    b.map(0x40_0000, 0x4100_0000, 0x4000, ap="EL1 RW / EL0 RW", pxn=True, ng=True)
    return b


def test_ranges_coalesced_with_levels_and_kinds() -> None:
    b = kernel()
    d = ptdump(b.regs(), b.memory(), ttbr=1)
    got = [(hex(r.start), hex(r.end), hex(r.oa), r.level, r.kind, r.contiguous, r.entries)
           for r in d.ranges]
    assert got == [
        ("0xffff000000000000", "0xffff000040000000", "0x40000000", 1, "BLK", False, 1),
        ("0xffff800008000000", "0xffff800008200000", "0x40800000", 2, "BLK", False, 1),
        ("0xffff800008200000", "0xffff800008300000", "0x40a00000", 3, "PTE", True, 256),
        ("0xffff800010000000", "0xffff800010003000", "0x40c00000", 3, "PTE", False, 3),
    ]
    assert d.entries == 1 + 1 + 256 + 3
    assert d.ranges[0].flags == ("UXN", "PXN", "AF") and d.ranges[0].memtype == "Normal iWB oWB"
    assert [hex(r.start) for r in d.wx()] == ["0xffff800010000000"]
    assert "EL1 RO" in str(d) and "<table>" in d._repr_html_()
    user = ptdump(b.regs(), b.memory(), ttbr=0)
    assert len(user.ranges) == 1 and user.ranges[0].flags == ("PXN", "AF", "nG")
    assert user.ranges[0].rights == "EL1:RW- EL0:RWX" and user.ranges[0].wx


def test_different_attributes_split_ranges() -> None:
    b = S1Builder(tables=(0x4020_0000, 0x4040_0000))
    b.map(0x10_0000, 0x8000_0000, 0x4000)
    b.protect(0x10_1000, 0x1000, mem="device-ngnre")
    d = ptdump(b.regs(), b.memory())
    assert [(r.start, r.entries, r.memtype) for r in d.ranges] == [
        (0x10_0000, 1, "Normal iWB oWB"), (0x10_1000, 1, "Device-nGnRE"),
        (0x10_2000, 2, "Normal iWB oWB")]


@pytest.mark.parametrize(
    ("granule", "va_bits", "pa_bits", "ds", "pa"),
    [pytest.param(Granule.K64, 52, 52, False, 0xF_0000_0001_0000, id="64K-LPA-OA[51:48]"),
     pytest.param(Granule.K4, 52, 52, True, 0xF_0000_0000_1000, id="4K-DS-OA[51:50]"),
     pytest.param(Granule.K16, 47, 48, False, 0x8000_4000, id="16K-47bit")],
)
def test_52bit_output_addresses(granule: Granule, va_bits: int, pa_bits: int, ds: bool,
                                pa: int) -> None:
    b = S1Builder(granule=granule, va_bits=va_bits, pa_bits=pa_bits, ds=ds,
                  tables=(0x4020_0000, 0x4080_0000))
    page = 1 << granule.pgshift
    b.map(1 << 40, pa, 3 * page)
    d = ptdump(b.regs(), b.memory())
    assert [(r.start, r.end, r.oa) for r in d.ranges] == [(1 << 40, (1 << 40) + 3 * page, pa)]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 600), st.integers(1, 20), st.booleans()),
                min_size=1, max_size=5))
def test_dump_is_the_union_of_the_maps(plans: list[tuple[int, int, bool]]) -> None:
    b = S1Builder(tables=(0x4020_0000, 0x4080_0000))
    mapped: dict[int, tuple[int, bool]] = {}
    for page, n, ro in plans:
        if any(p in mapped for p in range(page, page + n)):
            continue
        b.map(page << 12, (page << 12) + (1 << 32), n << 12, ap="RO" if ro else "RW")
        mapped.update({p: ((p << 12) + (1 << 32), ro) for p in range(page, page + n)})
    d = ptdump(b.regs(), b.memory())
    seen: dict[int, tuple[int, bool]] = {}
    for r in d.ranges:
        for va in range(r.start, r.end, 0x1000):
            seen[va >> 12] = (r.oa + va - r.start, r.ap == "EL1 RO")
    assert seen == mapped
    # coalesced: neighbouring ranges differ in something
    for a, c in zip(d.ranges, d.ranges[1:], strict=False):
        assert (a.end, a.oa + a.size, a.ap) != (c.start, c.oa, c.ap)


def test_stage2_dump_and_s1_through_s2() -> None:
    s2 = S2Builder(ipa_bits=40, tables=(0x4030_0000, 0x4040_0000))
    s2.map(0x4000_0000, 0x5000_0000, 0x1000_0000, s2ap="RW")
    s2.map(0x80_0000_0000, 0x6000_0000, 0x1000, s2ap="RO", xn=True, mem="device-ngnre")
    d2 = ptdump_s2(s2.regs(), s2.memory())
    assert [(hex(r.start), r.ap, r.memtype) for r in d2.ranges] == [
        ("0x40000000", "RW", "Normal iWB oWB"), ("0x8000000000", "RO", "Device-nGnRE")]
    assert d2.ranges[0].wx and not d2.ranges[1].wx and d2.ranges[1].flags[0] == "XN=10"
    g = S1Builder(tables=TableAllocator(0x4020_0000, 0x4030_0000))
    g.map(0x1000, 0x4000_0000, 0x2000)
    mem = PhysMem({s2.translate(a) or 0: v for a, v in g.words()} | dict(s2.words()))
    regs = s2.regs().replace(**{**g.sysregs(), "HCR_EL2": 0x8000_0001})
    d1 = ptdump(regs, mem)
    assert [(r.start, r.oa, r.entries) for r in d1.ranges] == [(0x1000, 0x4000_0000, 2)]
    assert "through stage 2" in d1.notes[0]


def test_epd_and_regimes() -> None:
    b = S1Builder(Regime.EL2, tables=(0x4020_0000, 0x4030_0000))
    b.map(0x1000, 0x1000, 0x1000, ap="RO")
    d = ptdump(b.regs(), b.memory(), regime=Regime.EL2)
    assert d.ranges[0].ap == "RO" and d.ranges[0].rights == "EL2:R-X"
    k = kernel()
    assert "no walk" in ptdump(S1Builder(tables=(0x4020_0000, 0x4030_0000)).regs(),
                               k.memory()).title


def test_cost_follows_mapped_entries() -> None:
    """A 48-bit space with one page: the dump reads a handful of words, not 2^36 entries."""
    b = S1Builder(tables=(0x4020_0000, 0x4030_0000))
    b.map(0x7FFF_FFFF_F000, 0x1000, 0x1000)
    mem = b.memory()
    reads = []

    class Counting:
        def iter_range(self, start: int, end: int):  # type: ignore[no-untyped-def]
            for pa, v in mem.iter_range(start, end):
                reads.append(pa)
                yield pa, v

    d = ptdump(b.regs(), Counting())
    assert d.entries == 1 and len(reads) == 4


def test_cli(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "k.yaml"
    save_scenarios(f, [kernel().scenario(name="k")])
    assert main(["ptdump", str(f), "--ttbr", "1"]) == 0
    out = capsys.readouterr().out
    assert "# k" in out and "0xffff800008000000-0xffff800008200000" in out
    assert main(["ptdump", str(f), "--ttbr", "1", "--wx"]) == 1
    assert "W+X check: 1" in capsys.readouterr().out
    assert main(["ptdump", str(f), "--regime", "S2"]) == 0
    assert main(["ptdump", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("atlab: error:")
    assert main(["ptdump", str(f), "--regime", "EL2", "--ttbr", "1"]) == 2
