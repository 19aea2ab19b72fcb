"""atlab.explain: what a leaf's PIIndex, POIndex and AttrIndx select, as pictures and widgets
show it.  Expected texts derived by hand from ``AArch64.S1ApplyOutputPerms()`` (PIIndex =
descriptor bits 54, 53, 51, 6; POIndex = bits 62:60), ``AArch64.S1IndirectBasePermissions()``
(PIR/PIRE0 Perm<m> at bits [4m+3:4m]), ``AArch64.S1OverlayPermissions()`` (POR Perm<m>),
``AArch64.MAIRAttr()`` (AttrIndx[3] = bit 59 with AIE selects MAIR2) and
``AArch64.S2IndirectBasePermissions()`` (S2PIR Perm<m>)."""

from __future__ import annotations

from atlab import AtOp, PhysMem, Regime, SysRegs, run_at
from atlab.builder import S1Builder, S2Builder
from atlab.explain import leaf_index_fields, leaf_selections

TCR2_PIE, TCR2_E0POE, TCR2_POE, TCR2_AIE = 1 << 1, 1 << 2, 1 << 3, 1 << 4
VA = 0x50_0000


def page(**regs: int) -> tuple[SysRegs, PhysMem]:
    """One EL1&0 page, AP=01 (bit 6) with PXN (bit 53): PIIndex 0b0101; POIndex 0b011."""
    b = S1Builder(Regime.EL10, tables=(0x4020_0000, 0x4040_0000))
    b.map(VA, 0x4B00_0000, 0x1000, ap="EL1 RW / EL0 RW", pxn=True)
    words = dict(b.words())
    (pa,) = [pa for pa, v in words.items() if v & 0xFFFF_FFFF_F000 == 0x4B00_0000]
    words[pa] |= 0b011 << 60 | 1 << 59
    return b.regs().replace(HCRX_EL2=1 << 14, **regs), PhysMem(words)


def leaf_texts(regs: SysRegs, mem: PhysMem) -> dict[str, str]:
    res = run_at(AtOp.S1E1R, VA, regs=regs, mem=mem)
    return dict(leaf_selections(res.trace.steps[-1]))


def test_pie_entries_named_by_bit_range() -> None:
    regs, mem = page(TCR2_EL1=TCR2_PIE, PIR_EL1=0b0101 << 20, PIRE0_EL1=0b0010 << 20)
    got = leaf_texts(regs, mem)
    assert got["PIIndex"] == "PIIndex 0b0101 → PIR_EL1[23:20] = 0b0101 (RW)"
    assert got["PIRE0"] == "PIIndex 0b0101 → PIRE0_EL1[23:20] = 0b0010 (X)"
    assert got["nDirty"].startswith("nDirty 0")
    assert "POIndex" not in got  # no TCR2_EL1.POE
    assert got["AttrIndx"].startswith("AttrIndx 0b000 → MAIR_EL1.Attr0")  # bit 59 without AIE


def test_poe_and_aie_entries() -> None:
    regs, mem = page(TCR2_EL1=TCR2_POE | TCR2_E0POE | TCR2_AIE, POR_EL1=0b0001 << 12,
                     POR_EL0=0b0101 << 12, MAIR2_EL1=0x04)
    got = leaf_texts(regs, mem)
    assert "PIIndex" not in got  # direct permissions
    assert got["POIndex"] == "POIndex 0b011 → POR_EL1[15:12] = 0b0001 (R)"
    assert got["POIndex EL0"] == "POIndex 0b011 → POR_EL0[15:12] = 0b0101 (RW)"
    assert got["AttrIndx"] == "AttrIndx 0b1000 → MAIR2_EL1.Attr0 = 0x04 (Device-nGnRE)"


def test_tables_and_plain_walks_select_nothing_new() -> None:
    regs, mem = page(TCR2_EL1=TCR2_PIE)
    steps = run_at(AtOp.S1E1R, VA, regs=regs, mem=mem).trace.steps
    assert all(leaf_selections(s) == [] for s in steps[:-1])  # tables
    plain, mem2 = page()
    assert [n for n, _ in leaf_selections(
        run_at(AtOp.S1E1R, VA, regs=plain, mem=mem2).trace.steps[-1])] == ["AttrIndx"]


def test_s2pie_entry() -> None:
    s2 = S2Builder(ipa_bits=40, tables=(0x4030_0000, 0x4040_0000))
    s2.map(0x4000_0000, 0x5000_0000, 0x20_0000, s2ap="RW")  # S2AP=11: PIIndex 0b0001
    regs = s2.regs().replace(VTCR_EL2=s2.regs()["VTCR_EL2"] | 1 << 36, S2PIR_EL2=0b1010 << 4)
    res = run_at(AtOp.S12E1R, 0x4000_1000, regs=regs.replace(SCTLR_EL1=0), mem=s2.memory())
    got = dict(leaf_selections(res.trace.final_s2[-1]))
    assert got == {"PIIndex": "PIIndex 0b0001 → S2PIR_EL2[7:4] = 0b1010 (R, EL1 X)",
                   "Dirty": "Dirty 1"}


def test_leaf_index_fields_for_a_bare_descriptor() -> None:
    desc = 0x4B00_0000 | 0b101 << 60 | 1 << 59 | 1 << 54 | 1 << 51 | 1 << 7 | 0b010 << 2 | 3
    assert leaf_index_fields(desc) == {}
    assert leaf_index_fields(desc, pie=True, poe=True, aie=True) == {
        "PIIndex": 0b1010, "nDirty": 1, "POIndex": 0b101, "AttrIndx": 0b1010}
    assert leaf_index_fields(desc, stage=2, pie=True, poe=True, aie=True) == {
        "PIIndex": 0b1010, "Dirty": 1}
