"""ptdump: coalesced mapped ranges, W+X check, stage 2, the CLI, and its cost."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlab import PhysMem, Regime, SysRegs
from atlab.builder import S1Builder, S2Builder, TableAllocator
from atlab.cli import main
from atlab.granule import Granule
from atlab.ptdump import ptdump, ptdump_s2
from atlab.scenario import save_scenarios


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


# --- FEAT_S1PIE / FEAT_S1POE / FEAT_AIE / FEAT_S2PIE ------------------------------------------
# Expected rights derived by hand from AArch64.S1ApplyOutputPerms() (PIIndex = descriptor bits
# 54, 53, 51, 6; POIndex = bits 62:60), AArch64.S1IndirectBasePermissions() (PIR/PIRE0
# Perm encodings), AArch64.S1OverlayPermissions() (POR Perm: bit 0 R, bit 1 X, bit 2 W),
# AArch64.MAIRAttr() (AttrIndx[3] = bit 59 with AIE selects MAIR2) and
# AArch64.S2IndirectBasePermissions() (S2PIR encodings).

TCR2_PIE, TCR2_E0POE, TCR2_POE, TCR2_AIE = 1 << 1, 1 << 2, 1 << 3, 1 << 4
HCRX_TCR2EN = 1 << 14


def _perm(**entries: int) -> int:
    """PIR/PIRE0/POR value with Perm<m> = entries["pm"], every other entry 0."""
    return sum(v << 4 * int(k[1:]) for k, v in entries.items())


def pie_tables() -> S1Builder:
    """Three EL1&0 pages whose descriptor bits select different PIIndex values."""
    b = S1Builder(tables=(0x4020_0000, 0x4040_0000))
    b.map(0x10_0000, 0x8000_0000, 0x1000, ap="EL1 RW / EL0 RW", pxn=True)  # PI 0b0101
    b.map(0x20_0000, 0x8010_0000, 0x1000, ap="EL1 RW", uxn=True)  # PI 0b1000
    b.map(0x30_0000, 0x8020_0000, 0x1000, ap="EL1 RO / EL0 RO")  # PI 0b0001, nDirty=1
    return b


def with_pie(b: S1Builder, **regs: int) -> SysRegs:
    return b.regs().replace(HCRX_EL2=HCRX_TCR2EN, **regs)


def test_pie_permissions_come_from_pir() -> None:
    b = pie_tables()
    regs = with_pie(b, TCR2_EL1=TCR2_PIE, PIR_EL1=_perm(p5=0b0101, p8=0b0111, p1=0b0001),
                    PIRE0_EL1=_perm(p5=0b0001, p1=0b0010))
    d = ptdump(regs, b.memory())
    got = [(hex(r.start), r.ap, r.pi_index, r.rights, r.wx) for r in d.ranges]
    assert got == [
        ("0x100000", "PI 0b0101", 0b0101, "EL1:RW- EL0:R--", False),  # PIR RW, PIRE0 R
        ("0x200000", "PI 0b1000", 0b1000, "EL1:RWX EL0:---", True),  # PIR RWX: W+X
        ("0x300000", "PI 0b0001", 0b0001, "EL1:R-- EL0:--X", False),  # PIR R, PIRE0 X
    ]
    # with PIE, bits 54/53/51 are PIIndex bits, not UXN/PXN/DBM; bit 7 is nDirty
    assert d.ranges[0].flags == ("AF",) and d.ranges[2].flags == ("AF", "nDirty")
    assert "PI 0b0101" in str(d) and "PI 0b1000" in d._repr_html_()
    # the same tables read through AP/UXN/PXN (TCR2_EL1.PIE=0)
    direct = ptdump(with_pie(b, TCR2_EL1=0), b.memory())
    assert [(r.ap, r.pi_index, r.rights) for r in direct.ranges] == [
        ("EL1 RW / EL0 RW", None, "EL1:RW- EL0:RWX"), ("EL1 RW", None, "EL1:RWX EL0:---"),
        ("EL1 RO / EL0 RO", None, "EL1:R-X EL0:R-X")]
    # IsTCR2EL1Enabled(): HCRX_EL2.TCR2En=0 leaves TCR2_EL1 out of force
    off = ptdump(regs.replace(HCRX_EL2=0), b.memory())
    assert [r.rights for r in off.ranges] == [r.rights for r in direct.ranges]


def test_pie_wx_check_uses_the_indirect_permissions() -> None:
    """Perm 0b0110 is RWX with WXN applied (no execute); 0b0111 is RWX: only the second is W+X,
    whatever AP[2:1] and UXN/PXN would say."""
    b = pie_tables()
    clean = ptdump(with_pie(b, TCR2_EL1=TCR2_PIE, PIR_EL1=_perm(p8=0b0110)), b.memory())
    assert clean.wx() == [] and clean.ranges[1].rights == "EL1:RW- EL0:---"
    dirty = ptdump(with_pie(b, TCR2_EL1=TCR2_PIE, PIR_EL1=_perm(p5=0b0111, p1=0b0111)),
                   b.memory())
    assert [hex(r.start) for r in dirty.wx()] == ["0x100000", "0x300000"]


def test_pie_ranges_split_where_the_piindex_changes() -> None:
    b = S1Builder(tables=(0x4020_0000, 0x4040_0000))
    b.map(0x10_0000, 0x8000_0000, 0x4000, ap="EL1 RW / EL0 RW")
    b.protect(0x10_2000, 0x1000, pxn=True)
    regs = with_pie(b, TCR2_EL1=TCR2_PIE, PIR_EL1=_perm(p1=0b0101, p5=0b0101),
                    PIRE0_EL1=_perm(p1=0b0101, p5=0b0101))
    d = ptdump(regs, b.memory())
    assert [(r.start, r.entries, r.pi_index) for r in d.ranges] == [
        (0x10_0000, 2, 0b0001), (0x10_2000, 1, 0b0101), (0x10_3000, 1, 0b0001)]


def _set_leaf_bits(b: S1Builder, oa: int, value: int) -> PhysMem:
    """The tables with ``value`` or-ed into the level 3 leaf whose OA is ``oa``."""
    words = dict(b.words())
    (pa,) = [pa for pa, v in words.items() if v & 3 == 3 and v & 0xFFFF_FFFF_F000 == oa]
    words[pa] |= value
    return PhysMem(words)


def test_poe_overlay_and_poindex() -> None:
    b = pie_tables()
    mem = _set_leaf_bits(b, 0x8000_0000, 0b010 << 60)  # POIndex 2 on the first page
    regs = with_pie(b, TCR2_EL1=TCR2_POE | TCR2_E0POE, POR_EL1=_perm(p2=0b0001, p0=0b0111),
                    POR_EL0=_perm(p2=0b0101, p0=0b0111))
    d = ptdump(regs, mem)
    first = d.ranges[0]
    # direct base permissions EL1 RW-, EL0 RWX; overlay POR_EL1 R, POR_EL0 RW
    assert (first.po_index, first.rights) == (0b010, "EL1:R-- EL0:RW-")
    assert "PO 0b010" in first.flags and "PO 0b010" in str(d)
    # POIndex 0 (POR RWX) leaves the other pages as the AP bits say
    assert [r.rights for r in d.ranges[1:]] == ["EL1:RWX EL0:---", "EL1:R-X EL0:R-X"]
    # overlays need TCR2_EL1.POE/E0POE: the same bits do nothing without them
    plain = ptdump(regs.replace(TCR2_EL1=0), mem).ranges[0]
    assert (plain.po_index, plain.rights) == (None, "EL1:RW- EL0:RWX")


def test_pie_with_poe_overlay_removes_rights() -> None:
    """The PIR entry 0b0101 (RW, bit 3 clear) allows an overlay; POR_EL1 X-only removes R/W."""
    b = pie_tables()
    mem = _set_leaf_bits(b, 0x8000_0000, 0b001 << 60)
    regs = with_pie(b, TCR2_EL1=TCR2_PIE | TCR2_POE, PIR_EL1=_perm(p5=0b0101),
                    PIRE0_EL1=_perm(p5=0b0001), POR_EL1=_perm(p1=0b0010, p0=0b0111))
    first = ptdump(regs, mem).ranges[0]
    assert (first.ap, first.po_index, first.rights) == ("PI 0b0101", 0b001, "EL1:--- EL0:R--")


def test_aie_attrindx3_selects_mair2() -> None:
    b = pie_tables()
    mem = _set_leaf_bits(b, 0x8010_0000, 1 << 59)  # AttrIndx[3] on the second page
    (idx,) = [v >> 2 & 7 for _pa, v in b.words() if v & 0xFFFF_FFFF_F000 == 0x8010_0000]
    regs = with_pie(b, TCR2_EL1=TCR2_AIE, MAIR2_EL1=0x04 << 8 * idx)  # Device-nGnRE
    d = ptdump(regs, mem)
    second = d.ranges[1]
    assert (second.attr_index, second.memtype) == (8 + idx, "Device-nGnRE")
    assert f"MAIR2.Attr{idx}" in second.flags
    assert d.ranges[0].memtype == "Normal iWB oWB" and d.ranges[0].attr_index == idx
    # without AIE, bit 59 is not part of AttrIndx: MAIR_EL1 answers
    assert ptdump(regs.replace(TCR2_EL1=0), mem).ranges[1].memtype == "Normal iWB oWB"


def test_stage2_s2pie_rights() -> None:
    s2 = S2Builder(ipa_bits=40, tables=(0x4030_0000, 0x4040_0000))
    s2.map(0x4000_0000, 0x5000_0000, 0x20_0000, s2ap="RW")  # S2AP=11: PIIndex 0b0001
    s2.map(0x80_0000_0000, 0x6000_0000, 0x1000, s2ap="RW", xn=True)  # bit 54: 0b1001
    vtcr = s2.regs()["VTCR_EL2"] | 1 << 36  # VTCR_EL2.S2PIE
    regs = s2.regs().replace(VTCR_EL2=vtcr, S2PIR_EL2=_perm(p1=0b1010, p9=0b1111))
    d = ptdump_s2(regs, s2.memory())
    assert [(r.ap, r.pi_index, r.rights, r.wx) for r in d.ranges] == [
        ("PI 0b0001", 0b0001, "EL1:R-X EL0:R--", False),  # Read, Priv Execute
        ("PI 0b1001", 0b1001, "EL1:RWX EL0:RWX", True),  # RW, All Execute
    ]
    assert d.ranges[0].flags[0] == "S2PIR=0b1010"


@pytest.mark.parametrize("tcr2", [TCR2_PIE, TCR2_PIE | TCR2_POE | TCR2_E0POE,
                                  TCR2_POE | TCR2_E0POE, 0],
                         ids=["PIE", "PIE+POE", "POE", "direct"])
def test_ptdump_rights_agree_with_at(tcr2: int) -> None:
    """ptdump's rights are the ones AT's permission phase computes for the same leaf
    (AArch64.S1ComputePermissions() for EL1 and EL0): one model, not two."""
    from atlab import AtOp, run_at

    b = pie_tables()
    mem = _set_leaf_bits(b, 0x8000_0000, 0b011 << 60)
    regs = with_pie(b, TCR2_EL1=tcr2, PIR_EL1=0x0123_4567_89AB_7654,
                    PIRE0_EL1=0xFEDC_BA98_7610_3201, POR_EL1=0x7654_3210_7654_3217,
                    POR_EL0=0x0123_4567_0123_4567)
    for r in ptdump(regs, mem).ranges:
        for op, el in ((AtOp.S1E1R, 1), (AtOp.S1E0R, 0)):
            p = run_at(op, r.start, regs=regs, mem=mem.copy()).perms
            assert p is not None
            text = f"EL{el}:" + "".join(c if ok else "-"
                                        for c, ok in zip("RWX", (p.r, p.w, p.x), strict=True))
            assert text in r.rights.split(), (hex(r.start), text, r.rights)


def test_nv1_table_bit60_is_pxntable() -> None:
    """AArch64.S1ApplyTablePerms(): EL1&0 with HCR_EL2.{NV,NV1}={1,1} reads table bit 60 as
    PXNTable (EL2-style descriptors); ptdump takes the permission inputs from the walker's
    s1_perm_bits(), so bit 60 removes EL1 execute there and bit 59 does nothing (EL0 has no
    data access with NV1; no UXN bit is read, so it keeps execute)."""
    b = S1Builder(tables=(0x4020_0000, 0x4040_0000))
    b.map(0x10_0000, 0x8000_0000, 0x1000, ap="EL1 RW")
    b.map(0x4000_0000, 0x8010_0000, 0x1000, ap="EL1 RW")
    b.set_table_attrs(0x10_0000, 2, uxn_table=True)  # bit 60
    b.set_table_attrs(0x4000_0000, 2, pxn_table=True)  # bit 59
    regs = b.regs().replace(HCR_EL2=b.regs()["HCR_EL2"] | 1 << 42 | 1 << 43)
    d = ptdump(regs, b.memory())
    assert [(hex(r.start), r.rights) for r in d.ranges] == [
        ("0x100000", "EL1:RW- EL0:--X"), ("0x40000000", "EL1:RWX EL0:--X")]


def test_stage2_s2poe_overlay() -> None:
    """AArch64.S2OverlayPermissions(): with VTCR_EL2.S2POE the leaf's bits [62:59] select an
    S2POR_EL1 entry (S2PIR encodings) that can only take rights away."""
    s2 = S2Builder(ipa_bits=40, tables=(0x4030_0000, 0x4040_0000))
    s2.map(0x4000_0000, 0x5000_0000, 0x20_0000, s2ap="RW")  # PIIndex 0b0001, POIndex 0
    s2.map(0x80_0000_0000, 0x6000_0000, 0x1000, s2ap="RW", xn=True)  # PIIndex 0b1001
    words = dict(s2.words())
    (pa,) = [pa for pa, v in words.items() if v & 0xFFFF_FFFF_F000 == 0x6000_0000]
    words[pa] |= 0b0010 << 59  # POIndex 0b0010
    vtcr = s2.regs()["VTCR_EL2"] | 1 << 36 | 1 << 37  # S2PIE, S2POE
    regs = s2.regs().replace(VTCR_EL2=vtcr, S2PIR_EL2=_perm(p1=0b1010, p9=0b1111),
                             S2POR_EL1=_perm(p0=0b1111, p2=0b1010))
    d = ptdump_s2(regs, PhysMem(words))
    assert [(r.pi_index, r.po_index, r.rights, r.wx) for r in d.ranges] == [
        (0b0001, 0, "EL1:R-X EL0:R--", False),  # S2POR Perm0 RW, All Execute: no change
        (0b1001, 0b0010, "EL1:R-X EL0:R--", False),  # RWX everywhere, overlay R + EL1 X
    ]
    assert "PO 0b0010" in d.ranges[1].flags
