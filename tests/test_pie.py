"""FEAT_TCR2, FEAT_S1PIE, FEAT_S2PIE, FEAT_AIE, FEAT_S1POE: permission indirection and
overlays, AttrIndx[3].

Every expected value is derived by hand from the Arm ARM pseudocode named in each test:
``IsTCR2EL1Enabled()``, ``AArch64.S1TTWParamsEL10()`` (pie, aie, hpd),
``AArch64.S1ApplyOutputPerms()`` (PIIndex = descriptor bits 54, 53, 51, 6),
``AArch64.S1IndirectBasePermissions()``, ``AArch64.S1ComputePermissions()`` (WXN),
``AArch64.S1CheckPermissions()`` (nDirty) and ``AArch64.MAIRAttr()``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlab import AtlabError, AtOp, Feature, FeatureSet, PhysMem, SysRegs, run_at
from atlab.descriptors import pi_index
from atlab.sysregs import decode, format_fields, id_registers
from tests.helpers import AF, MAIR, SH_ISH, TableAlloc, build_s1, el1_regs, par_fault, par_ok, sh

ALL = FeatureSet.all()
VA = 0x1234_5678_9ABC
PA = 0x4567_8000
OK = par_ok(PA | 0xABC, 0xFF, SH_ISH)
PERM_L3 = par_fault("permission", 3)
TCR2_PIE = 1 << 1
TCR2_AIE = 1 << 4
HCRX_TCR2EN = 1 << 14


def pi_bits(index: int) -> int:
    """Descriptor bits carrying PIIndex: [3] bit 54, [2] bit 53, [1] bit 51, [0] bit 6."""
    return ((index >> 3 & 1) << 54 | (index >> 2 & 1) << 53 | (index >> 1 & 1) << 51
            | (index & 1) << 6)


def perm(index: int, value: int) -> int:
    """PIR_ELx/PIRE0_ELx with Perm<index> = value, every other entry 0 (no access)."""
    return value << 4 * index


def _run(op: AtOp, desc_bits: int, *, table_bits: int = 0, features: FeatureSet = ALL,
         pan: int = 0, **regs: int) -> int:
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH) | desc_bits,
                    table_bits=table_bits, alloc=TableAlloc())
    values = {"TCR2_EL1": TCR2_PIE, "HCRX_EL2": HCRX_TCR2EN}
    values.update(regs)
    res = run_at(op, VA, regs=el1_regs(ttbr0=root, **values), mem=mem, features=features,
                 pan=pan)
    assert res.par is not None, res
    return res.par.value


def test_pi_index_bits() -> None:
    # AArch64.S1ApplyOutputPerms(): pi_index = descriptor<54:53>:descriptor<51>:descriptor<6>
    for index in range(16):
        assert pi_index(pi_bits(index)) == index


# PIR/PIRE0 Perm encodings -> rights, from the case statements of
# AArch64.S1IndirectBasePermissions() (0b0110: RWX with the WXN control -> RW).
PERMS = [
    (0b0000, (0, 0)), (0b0001, (1, 0)), (0b0010, (0, 0)), (0b0011, (1, 0)),
    (0b0100, (0, 0)), (0b0101, (1, 1)), (0b0110, (1, 1)), (0b0111, (1, 1)),
    (0b1000, (1, 0)), (0b1001, (1, 0)), (0b1010, (1, 0)), (0b1011, (0, 0)),
    (0b1100, (1, 1)), (0b1101, (0, 0)), (0b1110, (1, 1)), (0b1111, (0, 0)),
]


@pytest.mark.parametrize(("value", "rw"), PERMS, ids=[f"Perm{v:04b}" for v, _ in PERMS])
@pytest.mark.parametrize("index", [0b0000, 0b0101, 0b1010, 0b1111])
def test_pir_gives_el1_rights(index: int, value: int, rw: tuple[int, int]) -> None:
    """The leaf's PIIndex selects PIR_EL1.Perm<PIIndex> for EL1; AP bits no longer count
    (descriptor bit 7 is nDirty: set to 0 here, so writes need no dirty state)."""
    regs = {"PIR_EL1": perm(index, value), "PIRE0_EL1": 0}
    assert _run(AtOp.S1E1R, pi_bits(index), **regs) == (OK if rw[0] else PERM_L3)
    assert _run(AtOp.S1E1W, pi_bits(index), **regs) == (OK if rw[1] else PERM_L3)


def test_pire0_gives_el0_rights() -> None:
    """AT S1E0* checks PIRE0_EL1.Perm<PIIndex>; PIR_EL1 is the EL1 view."""
    regs = {"PIR_EL1": perm(3, 0b0101), "PIRE0_EL1": perm(3, 0b0001)}
    assert _run(AtOp.S1E0R, pi_bits(3), **regs) == OK
    assert _run(AtOp.S1E0W, pi_bits(3), **regs) == PERM_L3
    assert _run(AtOp.S1E1W, pi_bits(3), **regs) == OK


def test_el1_exec_and_el0_write_gives_nothing() -> None:
    """S1IndirectBasePermissions(): px (or pgcs) with uw (or ugcs) -> every base permission
    is 0, for EL1 and EL0."""
    regs = {"PIR_EL1": perm(1, 0b0111), "PIRE0_EL1": perm(1, 0b0101)}
    assert _run(AtOp.S1E1R, pi_bits(1), **regs) == PERM_L3
    assert _run(AtOp.S1E0R, pi_bits(1), **regs) == PERM_L3


@pytest.mark.parametrize(("upi", "pan_blocks"), [(0b0000, False), (0b0010, True),
                                                  (0b0001, True), (0b1111, True)])
def test_pan_with_pie(upi: int, pan_blocks: bool) -> None:
    """PAN with PIE: PSTATE.PAN and permissions.upi != '0000' remove privileged read and
    write -- EL0 execute-only counts (the FEAT_PAN3 behaviour), and so does a reserved
    encoding (the test is on the PIRE0 entry, not on the rights it gives)."""
    regs = {"PIR_EL1": perm(2, 0b0101), "PIRE0_EL1": perm(2, upi)}
    got = _run(AtOp.S1E1RP, pi_bits(2), pan=1, **regs)
    assert got == (PERM_L3 if pan_blocks else OK)
    assert _run(AtOp.S1E1RP, pi_bits(2), pan=0, **regs) == OK


def test_hierarchical_permissions_ignored_with_pie() -> None:
    """AArch64.S1TTWParamsEL10(): walkparams.hpd = '1' when walkparams.pie is 1: APTable=11
    (no write, no EL0) in every table descriptor changes nothing."""
    regs = {"PIR_EL1": perm(0, 0b0101), "PIRE0_EL1": perm(0, 0b0101)}
    assert _run(AtOp.S1E1W, 0, table_bits=0b11 << 61, **regs) == OK
    assert _run(AtOp.S1E0W, 0, table_bits=0b11 << 61, **regs) == OK
    # without PIE the same tables forbid the write
    assert _run(AtOp.S1E1W, 0, table_bits=0b11 << 61, TCR2_EL1=0) == PERM_L3


def test_ndirty_without_hardware_dirty_state() -> None:
    """AArch64.S1CheckPermissions(): a write with walkparams.hd != '1', pie == '1' and
    permissions.ndirty == '1' (descriptor bit 7) is a Permission fault; a read is not."""
    regs = {"PIR_EL1": perm(0, 0b0101), "PIRE0_EL1": 0}
    ndirty = 1 << 7
    assert _run(AtOp.S1E1R, ndirty, **regs) == OK
    assert _run(AtOp.S1E1W, ndirty, **regs) == PERM_L3
    # TCR_EL1.HA=HD=1: hardware dirty state, the clean page is writable (AT sets no dirty)
    from tests.helpers import tcr_el1

    assert _run(AtOp.S1E1W, ndirty, tcr=tcr_el1(HA=1, HD=1), **regs) == OK


def test_tcr2_el1_needs_hcrx_tcr2en_and_the_features() -> None:
    """IsTCR2EL1Enabled(): with EL2 enabled, HCRX_EL2.TCR2En=0 makes TCR2_EL1 count as 0;
    without FEAT_TCR2 or FEAT_S1PIE, TCR2_EL1.PIE has no effect: AP[2:1]=00 (EL1 RW) then."""
    regs = {"PIR_EL1": 0, "PIRE0_EL1": 0}  # with PIE: no access at all
    assert _run(AtOp.S1E1W, 0, **regs) == PERM_L3
    assert _run(AtOp.S1E1W, 0, HCRX_EL2=0, **regs) == OK
    assert _run(AtOp.S1E1W, 0, features=ALL.without(Feature.TCR2), **regs) == OK
    assert _run(AtOp.S1E1W, 0, features=ALL.without(Feature.S1PIE), **regs) == OK


def test_wxn_with_pie_is_per_encoding() -> None:
    """AArch64.S1IndirectBasePermissions(): pwxn is 1 for Perm 0b0110 only; SCTLR_EL1.WXN does
    not enter (the rights are only seen as X removed: the PAR is the same, the trace says)."""
    from tests.helpers import sctlr

    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH) | pi_bits(4),
                    alloc=TableAlloc())
    for value, wxn in ((0b0110, True), (0b0111, False)):
        regs = el1_regs(ttbr0=root, TCR2_EL1=TCR2_PIE, HCRX_EL2=HCRX_TCR2EN,
                        PIR_EL1=perm(4, value), sctlr_el1=sctlr(WXN=1))
        res = run_at(AtOp.S1E1W, VA, regs=regs, mem=mem)
        assert res.perms is not None
        assert (res.perms.w, res.perms.x, res.perms.wxn_applied) == (True, not wxn, wxn)


def test_aie_attrindx3_selects_mair2() -> None:
    """AArch64.S1NextWalkStateLeaf(): with walkparams.aie, attrindx = descriptor<59,4:2>;
    AArch64.MAIRAttr() reads MAIR2_EL1 for 8-15.  Without AIE bit 59 is ignored."""
    leaf = (1 << 59) | (2 << 2)  # AttrIndx[3]=1, AttrIndx[2:0]=2 -> MAIR2_EL1.Attr10
    mair2 = 0x44 << 16  # Attr10 = Normal Non-cacheable
    got = _run(AtOp.S1E1R, leaf, TCR2_EL1=TCR2_AIE, MAIR2_EL1=mair2)
    assert got == par_ok(PA | 0xABC, 0x44, 0b10)  # Non-cacheable: PAR.SH reads OSH
    got = _run(AtOp.S1E1R, leaf, TCR2_EL1=0, MAIR2_EL1=mair2)
    assert got >> 56 == MAIR >> 16 & 0xFF and not got & 1  # MAIR_EL1.Attr2


def test_tcr2_fields_of_absent_features_read_as_zero() -> None:
    """Without FEAT_S1POE, TCR2_EL1.POE (bit 3) changes nothing (AArch64.S1POEnabled() is
    FALSE).  PnCH (bit 0, FEAT_THE) is not modelled: setting it is refused (LIMITATIONS)."""
    regs = {"PIR_EL1": perm(0, 0b0001), "PIRE0_EL1": 0}
    no_poe = ALL.without(Feature.S1POE)
    assert _run(AtOp.S1E1R, 0, **regs) == OK
    assert _run(AtOp.S1E1R, 0, TCR2_EL1=TCR2_PIE | 1 << 3, features=no_poe, **regs) == OK
    assert _run(AtOp.S1E1R, 0, TCR2_EL1=TCR2_PIE | 1 << 3, **regs) == PERM_L3  # POR_EL1=0
    with pytest.raises(AtlabError, match=r"^TCR2_EL1\.PnCH=1 needs FEAT_THE"):
        _run(AtOp.S1E1R, 0, TCR2_EL1=TCR2_PIE | 1, **regs)


def test_register_tables() -> None:
    assert decode("TCR2_EL1", 0x13) == {**dict.fromkeys(decode("TCR2_EL1", 0), 0),
                                        "PnCH": 1, "PIE": 1, "AIE": 1}
    assert decode("HCRX_EL2", 1 << 14)["TCR2En"] == 1
    assert decode("PIR_EL1", perm(5, 0b0110))["Perm5"] == 0b0110
    assert "Perm5=0x6" not in format_fields("PIR_EL1", perm(5, 0b0110))
    ids = id_registers(ALL)["ID_AA64MMFR3_EL1"]
    assert decode("ID_AA64MMFR3_EL1", ids)["S1PIE"] == 1
    assert decode("ID_AA64MMFR3_EL1", id_registers(ALL.without(Feature.AIE))
                  ["ID_AA64MMFR3_EL1"])["AIE"] == 0
    SysRegs.from_mapping({"PIR_EL2": "0x1", "S2PIR_EL2": "0x2", "POR_EL0": "0x3"})


# --- FEAT_S2PIE ---------------------------------------------------------------------------

# S2PIR_EL2.Perm<m> -> (data read, data write), AArch64.S2IndirectBasePermissions().
S2PERMS = [(0b0000, 0, 0), (0b0001, 0, 0), (0b0010, 1, 0), (0b0100, 0, 1), (0b1000, 1, 0),
           (0b1011, 1, 0), (0b1100, 1, 1), (0b1111, 1, 1)]


@pytest.mark.parametrize(("value", "r", "w"), S2PERMS,
                         ids=[f"S2Perm{v:04b}" for v, _, _ in S2PERMS])
def test_s2pir_gives_stage2_rights(value: int, r: int, w: int) -> None:
    """AT S12E1R/W with stage 1 off (HCR_EL2.DC=0, SCTLR_EL1.M=0) and VTCR_EL2.S2PIE=1: the
    stage 2 leaf's PIIndex (bits 54, 53, 51, 6) selects S2PIR_EL2.Perm<m>; S2AP no longer
    counts; bit 7 is Dirty (1 here: no dirty-state fault)."""
    from tests.helpers import build_s2, hcr, memattr, vtcr

    ipa, pa, index = 0x2345_6000, 0x3456_7000, 0b1010
    mem = PhysMem()
    leaf = AF | memattr(0b1111) | sh(SH_ISH) | pi_bits(index) | 1 << 7
    root = build_s2(mem, "4K", 24, 1, ipa, pa, 3, leaf, alloc=TableAlloc(0x8000_0000))
    regs = SysRegs({"HCR_EL2": hcr(VM=1), "VTTBR_EL2": root,
                    "VTCR_EL2": vtcr(T0SZ=24, SL0=1, PS=0b101) | 1 << 36,
                    "S2PIR_EL2": perm(index, value)})
    for op, allowed in ((AtOp.S12E1R, r), (AtOp.S12E1W, w)):
        res = run_at(op, ipa, regs=regs, mem=mem)
        assert res.par is not None
        want = par_fault("permission", 3, s=1)
        assert (res.par.value != want) == bool(allowed), (op, hex(res.par.value))


def test_s2pie_clean_page_write() -> None:
    """AArch64.S2CheckPermissions(): with S2PIE a write to a page whose Dirty bit (7) is 0
    and VTCR_EL2.HD=0 is a Permission fault; a read is not."""
    from tests.helpers import build_s2, hcr, memattr, vtcr

    ipa, pa = 0x2345_6000, 0x3456_7000
    mem = PhysMem()
    leaf = AF | memattr(0b1111) | sh(SH_ISH)  # PIIndex 0, Dirty=0
    root = build_s2(mem, "4K", 24, 1, ipa, pa, 3, leaf, alloc=TableAlloc(0x8000_0000))
    regs = SysRegs({"HCR_EL2": hcr(VM=1), "VTTBR_EL2": root,
                    "VTCR_EL2": vtcr(T0SZ=24, SL0=1, PS=0b101) | 1 << 36,
                    "S2PIR_EL2": perm(0, 0b1100)})
    read = run_at(AtOp.S12E1R, ipa, regs=regs, mem=mem).par
    write = run_at(AtOp.S12E1W, ipa, regs=regs, mem=mem).par
    assert read is not None and not read.value & 1
    assert write is not None and write.value == par_fault("permission", 3, s=1)
    no_pie = regs.replace(VTCR_EL2=vtcr(T0SZ=24, SL0=1, PS=0b101))  # S2AP=00: no access
    got = run_at(AtOp.S12E1R, ipa, regs=no_pie, mem=mem).par
    assert got is not None and got.value == par_fault("permission", 3, s=1)


# --- FEAT_S1POE ---------------------------------------------------------------------------

TCR2_POE = 1 << 3
TCR2_E0POE = 1 << 2


def po_bits(index: int) -> int:
    """POIndex in descriptor bits [62:60] (AArch64.S1ApplyOutputPerms(): '0':desc<62:60>)."""
    return index << 60


# POR_ELx.Perm<m> -> (read, write), AArch64.S1OverlayPermissions(): bit 0 R, bit 1 X, bit 2 W;
# 0b1xxx reserved (no access).
OVERLAYS = [(0b0000, 0, 0), (0b0001, 1, 0), (0b0010, 0, 0), (0b0100, 0, 1), (0b0101, 1, 1),
            (0b0111, 1, 1), (0b1101, 0, 0)]


@pytest.mark.parametrize(("value", "r", "w"), OVERLAYS,
                         ids=[f"POR{v:04b}" for v, _, _ in OVERLAYS])
def test_por_el1_overlay_restricts_el1(value: int, r: int, w: int) -> None:
    """TCR2_EL1.POE=1 (AArch64.S1POEnabled()): the overlay POR_EL1.Perm<POIndex> is ANDed with
    the base permissions (AP[2:1]=00: EL1 RW; direct permissions always allow an overlay)."""
    regs = {"TCR2_EL1": TCR2_POE, "POR_EL1": perm(3, value)}
    assert _run(AtOp.S1E1R, po_bits(3), **regs) == (OK if r else PERM_L3)
    assert _run(AtOp.S1E1W, po_bits(3), **regs) == (OK if w else PERM_L3)


def test_poe_el0_needs_e0poe() -> None:
    """AArch64.S1ComputePermissions(): for EL0 the overlay needs S1E0POEnabled() (E0POE), for
    EL1 S1POEnabled() (POE); POR_EL0 is the EL0 overlay.  AP[2:1]=01: EL1 and EL0 RW."""
    from tests.helpers import ap

    regs = {"POR_EL1": 0, "POR_EL0": 0}  # both overlays: no access
    assert _run(AtOp.S1E0R, ap(0b01), TCR2_EL1=TCR2_POE, **regs) == OK
    assert _run(AtOp.S1E1R, ap(0b01), TCR2_EL1=TCR2_POE, **regs) == PERM_L3
    assert _run(AtOp.S1E0R, ap(0b01), TCR2_EL1=TCR2_E0POE, **regs) == PERM_L3
    assert _run(AtOp.S1E1R, ap(0b01), TCR2_EL1=TCR2_E0POE, **regs) == OK
    # E0POE is ignored with HCR_EL2.{NV,NV1}={1,1} (S1E0POEnabled(regime, nv1))
    from tests.helpers import hcr

    assert _run(AtOp.S1E1R, 0, TCR2_EL1=TCR2_E0POE, hcr_el2=hcr(NV=1, NV1=1), **regs) == OK


def test_pie_entries_without_overlay() -> None:
    """S1IndirectBasePermissions(): p_overlay = NOT(ppi<3>): Perm 0b1100 (RW, overlay not
    applied) ignores POR_EL1; 0b0101 (RW, overlay applied) takes it."""
    regs = {"TCR2_EL1": TCR2_PIE | TCR2_POE, "POR_EL1": 0, "PIRE0_EL1": 0}
    assert _run(AtOp.S1E1W, pi_bits(1), PIR_EL1=perm(1, 0b1100), **regs) == OK
    assert _run(AtOp.S1E1W, pi_bits(1), PIR_EL1=perm(1, 0b0101), **regs) == PERM_L3


def test_overlay_wxn_removes_write() -> None:
    """AArch64.S1ComputePermissions(): with an overlay, WXN removes the overlay's write
    permission when it also gives execute (instead of removing execute)."""
    from tests.helpers import sctlr

    regs = {"TCR2_EL1": TCR2_POE, "sctlr_el1": sctlr(WXN=1)}
    assert _run(AtOp.S1E1W, 0, POR_EL1=perm(0, 0b0111), **regs) == PERM_L3  # RWX overlay
    assert _run(AtOp.S1E1W, 0, POR_EL1=perm(0, 0b0101), **regs) == OK  # RW overlay


def test_poe_disables_hierarchical_permissions() -> None:
    """AArch64.S1TTWParamsEL10(): walkparams.hpd = '1' when S1POEnabled() or S1E0POEnabled()."""
    regs = {"TCR2_EL1": TCR2_POE, "POR_EL1": perm(0, 0b0111)}
    assert _run(AtOp.S1E1W, 0, table_bits=0b10 << 61, **regs) == OK
    assert _run(AtOp.S1E1W, 0, table_bits=0b10 << 61, TCR2_EL1=0) == PERM_L3


# --- FEAT_S2POE and the ESR_EL2.ISS2 Overlay / DirtyBit bits --------------------------------

S2PIE_BIT, S2POE_BIT = 1 << 36, 1 << 37


def _s2_world(s2_leaf_bits: int, s1_desc_bits: int = 0, *, table_bits: int = 0,
              **regs: int) -> tuple[SysRegs, PhysMem, int]:
    """Stage 1 (4KB, EL1&0) over a stage 2 (4KB, 40-bit IPA, level 1 start): the final IPA's
    page gets ``s2_leaf_bits``; the stage 1 tables are identity-mapped by stage 2 pages with
    ``table_bits`` (S2PIR entry 0b1100 RW, Dirty=1 by default)."""
    from tests.helpers import build_s2, hcr, memattr, sctlr, vtcr

    va, ipa, pa = 0x1234_5678_9ABC, 0x2345_6000, 0x3456_7000
    mem = PhysMem()
    s2_alloc = TableAlloc(0x8000_0000)
    leaf = AF | memattr(0b1111) | sh(SH_ISH)
    root2 = build_s2(mem, "4K", 24, 1, ipa, pa, 3, leaf | s2_leaf_bits, alloc=s2_alloc)
    s1_alloc = TableAlloc(0x4000_0000)
    root1 = build_s1(mem, "4K", 16, va, ipa, 3, AF | sh(SH_ISH) | s1_desc_bits,
                     alloc=s1_alloc)
    for page in range(0x4000_0000, s1_alloc.next, 0x1000):
        build_s2(mem, "4K", 24, 1, page, page, 3, leaf | (table_bits or 1 << 7), root=root2,
                 alloc=s2_alloc)
    values = {"HCR_EL2": hcr(VM=1), "SCTLR_EL1": sctlr(), "TTBR0_EL1": root1,
              "MAIR_EL1": MAIR, "VTTBR_EL2": root2,
              "VTCR_EL2": vtcr(T0SZ=24, SL0=1, PS=0b101) | S2PIE_BIT | S2POE_BIT,
              "S2PIR_EL2": perm(0, 0b1100) | perm(1, 0b1100), "S2POR_EL1": perm(0, 0b1100)}
    from tests.helpers import tcr_el1

    values["TCR_EL1"] = tcr_el1()
    values.update(regs)
    return SysRegs(values), mem, va


def test_s2por_overlay_on_the_final_ipa() -> None:
    """AArch64.S2ComputePermissions(): with S2PIE and VTCR_EL2.S2POE the overlay
    S2POR_EL1.Perm<POIndex> (descriptor bits [62:59], AArch64.S2ApplyOutputPerms()) is checked
    first (AArch64.S2CheckPermissions()); a fault on the final IPA is a PAR permission fault,
    S=1 (PAR_EL1 has no Overlay bit)."""
    regs, mem, va = _s2_world(1 << 7)  # POIndex 0, Dirty=1
    ok_ = run_at(AtOp.S12E1W, va, regs=regs, mem=mem).par
    assert ok_ is not None and not ok_.value & 1
    denied = regs.replace(S2POR_EL1=perm(0, 0b1000))  # overlay: read only
    got = run_at(AtOp.S12E1W, va, regs=denied, mem=mem).par
    assert got is not None and got.value == par_fault("permission", 3, s=1)
    got = run_at(AtOp.S12E1R, va, regs=denied, mem=mem).par
    assert got is not None and not got.value & 1
    # POIndex 1 (bit 59) reads S2POR_EL1.Perm1 = 0: no access
    regs1, mem1, va1 = _s2_world(1 << 7 | 1 << 59)
    got = run_at(AtOp.S12E1R, va1, regs=regs1, mem=mem1).par
    assert got is not None and got.value == par_fault("permission", 3, s=1)


def test_s2poe_needs_s2pie() -> None:
    """The overlay exists only with walkparams.s2pie (AArch64.S2ComputePermissions())."""
    from tests.helpers import s2ap, vtcr

    regs, mem, va = _s2_world(s2ap(0b11), table_bits=s2ap(0b11), S2POR_EL1=0,
                              VTCR_EL2=vtcr(T0SZ=24, SL0=1, PS=0b101) | S2POE_BIT)
    got = run_at(AtOp.S12E1W, va, regs=regs, mem=mem).par
    assert got is not None and not got.value & 1


def test_overlay_fault_on_the_stage1_walk_sets_iss2_overlay() -> None:
    """AT S1E1R at EL1 whose stage 1 table read faults at stage 2 on the overlay: a Data
    Abort to EL2 (AArch64.AT()), ESR_EL2.ISS2.Overlay (ESR bit 38) = fault.overlay
    (AArch64.FaultSyndrome(): iss2<6>); a base-permission fault leaves it 0."""
    regs, mem, va = _s2_world(1 << 7, table_bits=1 << 7 | 1 << 59)  # tables: POIndex 1 = none
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem, cur_el=1)
    assert res.exception is not None and res.exception.target_el == 2
    esr = res.exception.esr
    # EC 0x24 (Data Abort, lower EL), DFSC permission fault level 3 (the stage 2 page)
    assert esr >> 38 & 1 and esr >> 26 & 0x3F == 0x24 and esr & 0x3F == 0b001111
    assert esr >> 7 & 1  # S1PTW
    base = regs.replace(S2POR_EL1=perm(0, 0b1100) | perm(1, 0b1100),
                        S2PIR_EL2=perm(0, 0b0000))  # PIIndex 0: the base denies instead
    res = run_at(AtOp.S1E1R, va, regs=base, mem=mem, cur_el=1)
    assert res.exception is not None and not res.exception.esr >> 38 & 1


def test_clean_stage1_table_update_sets_iss2_dirtybit() -> None:
    """S2PIE: the hardware Access flag update of a stage 1 descriptor (TCR_EL1.HA=1) writes a
    page whose Dirty bit is 0 with VTCR_EL2.HD=0: a Permission fault with fault.dirtybit, so
    ESR_EL2.ISS2.DirtyBit (bit 37) = 1 when AT S1E1R at EL1 takes it."""
    from tests.helpers import tcr_el1

    # the stage 1 tables' stage 2 pages: POIndex 1 (overlay RW), PIIndex 0 (RW), Dirty=0
    regs, mem, va = _s2_world(1 << 7, table_bits=1 << 59)
    regs = regs.replace(TCR_EL1=tcr_el1(HA=1), S2POR_EL1=perm(0, 0b1100) | perm(1, 0b1100))
    leaf_step = run_at(AtOp.S1E1R, va, regs=regs, mem=mem, cur_el=2).trace.steps[-1]
    mem.poke(leaf_step.desc_pa, leaf_step.raw & ~AF)  # AF=0: the walk must set it
    res = run_at(AtOp.S1E1R, va, regs=regs, mem=mem, cur_el=1)
    assert res.exception is not None
    assert res.exception.esr >> 37 & 1 and not res.exception.esr >> 38 & 1


# --- The EL3 regime: TCR_EL3.{PIE,POE,AIE}, PIR_EL3, POR_EL3, MAIR2_EL3 -----------------------
# AArch64.S1TTWParamsEL3(): walkparams.pie = TCR_EL3.PIE (bit 35) with FEAT_S1PIE, pir = PIR_EL3;
# walkparams.aie = TCR_EL3.AIE (bit 37) with FEAT_AIE, mair2 = MAIR2_EL3; hpd = '1' when aie,
# pie or AArch64.S1POEnabled(Regime_EL3) (TCR_EL3.POE, bit 36, with FEAT_S1POE); AArch64.S1POR()
# returns POR_EL3.  None of it needs FEAT_TCR2: the EL3 regime has no TCR2 register.

TCR_EL3_PIE = 1 << 35
TCR_EL3_POE = 1 << 36
TCR_EL3_AIE = 1 << 37


def _run_el3(op: AtOp, desc_bits: int, *, table_bits: int = 0, features: FeatureSet = ALL,
             tcr_bits: int = TCR_EL3_PIE, **regs: int) -> int:
    """AT S1E3* at EL3 through a 4-level 4KB EL3 stage 1 (TTBR0_EL3, SCTLR_EL3.M=1)."""
    from tests.helpers import sctlr, tcr_el2

    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH) | desc_bits,
                    table_bits=table_bits, alloc=TableAlloc())
    values = {"SCTLR_EL3": sctlr(), "TCR_EL3": tcr_el2() | tcr_bits, "MAIR_EL3": MAIR,
              "TTBR0_EL3": root}
    values.update(regs)
    res = run_at(op, VA, regs=SysRegs(values), mem=mem, features=features, cur_el=3)
    assert res.par is not None, res
    return res.par.value


@pytest.mark.parametrize(("value", "rw"), PERMS, ids=[f"Perm{v:04b}" for v, _ in PERMS])
def test_pir_el3_gives_el3_rights(value: int, rw: tuple[int, int]) -> None:
    """AArch64.S1IndirectBasePermissions(): the EL3 regime has no unprivileged rights
    (HasUnprivileged() is FALSE), so PIR_EL3.Perm<PIIndex> alone decides; the same encodings
    as PIR_EL1 for EL1."""
    index = 0b1010
    assert _run_el3(AtOp.S1E3R, pi_bits(index), PIR_EL3=perm(index, value)) == (
        OK if rw[0] else PERM_L3)
    assert _run_el3(AtOp.S1E3W, pi_bits(index), PIR_EL3=perm(index, value)) == (
        OK if rw[1] else PERM_L3)


def test_tcr_el3_pie_gating() -> None:
    """TCR_EL3.PIE counts with FEAT_S1PIE whatever FEAT_TCR2 says; without FEAT_S1PIE bit 35
    is RES0 and the direct permissions apply (AP[2:1]=00 at EL3: AP[1] is RES1, read/write).
    TCR2_EL2.PIE and PIR_EL2 never reach the EL3 regime."""
    pir0 = {"PIR_EL3": 0}  # every PIIndex: no access
    assert _run_el3(AtOp.S1E3R, 0, **pir0) == PERM_L3
    assert _run_el3(AtOp.S1E3R, 0, features=ALL.without(Feature.TCR2), **pir0) == PERM_L3
    assert _run_el3(AtOp.S1E3W, 0, features=ALL.without(Feature.S1PIE), **pir0) == OK
    assert _run_el3(AtOp.S1E3W, 0, tcr_bits=0, TCR2_EL2=TCR2_PIE, PIR_EL2=0) == OK


def test_tcr_el3_aie_selects_mair2_el3() -> None:
    """AArch64.MAIRAttr(): AttrIndx = descriptor bit 59 : bits [4:2] with TCR_EL3.AIE; index
    10 reads MAIR2_EL3.Attr10 (bits [23:16]); without FEAT_AIE, MAIR_EL3.Attr2."""
    leaf = (1 << 59) | (2 << 2)
    mair2 = 0x44 << 16  # Attr10: Normal Non-cacheable
    got = _run_el3(AtOp.S1E3R, leaf, tcr_bits=TCR_EL3_AIE, MAIR2_EL3=mair2)
    assert got == par_ok(PA | 0xABC, 0x44, 0b10)  # Non-cacheable: PAR.SH reads OSH
    got = _run_el3(AtOp.S1E3R, leaf, tcr_bits=TCR_EL3_AIE, MAIR2_EL3=mair2,
                   features=ALL.without(Feature.AIE))
    assert got >> 56 == MAIR >> 16 & 0xFF and not got & 1


@pytest.mark.parametrize(("value", "r", "w"), OVERLAYS,
                         ids=[f"POR{v:04b}" for v, _, _ in OVERLAYS])
def test_por_el3_overlay(value: int, r: int, w: int) -> None:
    """AArch64.S1POEnabled(Regime_EL3) is TCR_EL3.POE; AArch64.S1POR() gives POR_EL3, and its
    Perm<POIndex> is ANDed with the direct base permissions (AP[2:1]=00: EL3 read/write)."""
    regs = {"POR_EL3": perm(3, value), "POR_EL2": perm(3, 0b0111), "POR_EL1": perm(3, 0b0111)}
    assert _run_el3(AtOp.S1E3R, po_bits(3), tcr_bits=TCR_EL3_POE, **regs) == (
        OK if r else PERM_L3)
    assert _run_el3(AtOp.S1E3W, po_bits(3), tcr_bits=TCR_EL3_POE, **regs) == (
        OK if w else PERM_L3)
    no_poe = ALL.without(Feature.S1POE)  # bit 36 is RES0: no overlay
    assert _run_el3(AtOp.S1E3W, po_bits(3), tcr_bits=TCR_EL3_POE, features=no_poe,
                    **regs) == OK


@pytest.mark.parametrize("tcr_bits", [TCR_EL3_PIE, TCR_EL3_AIE, TCR_EL3_POE],
                         ids=["PIE", "AIE", "POE"])
def test_tcr_el3_controls_disable_hierarchical_permissions(tcr_bits: int) -> None:
    """AArch64.S1TTWParamsEL3(): hpd = '1' when aie, pie or S1POEnabled(); APTable=0b10 (bit
    62: no writes below) then counts for nothing.  PIR_EL3/POR_EL3 allow read/write here."""
    table_ro = 0b10 << 61
    regs = {"PIR_EL3": perm(0, 0b0101), "POR_EL3": perm(0, 0b0101)}
    assert _run_el3(AtOp.S1E3W, 0, table_bits=table_ro, tcr_bits=tcr_bits, **regs) == OK
    assert _run_el3(AtOp.S1E3W, 0, table_bits=table_ro, tcr_bits=0, **regs) == PERM_L3


def test_el3_walk_text_names_pir_el3() -> None:
    from tests.helpers import sctlr, tcr_el2

    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH) | pi_bits(5), alloc=TableAlloc())
    regs = SysRegs({"SCTLR_EL3": sctlr(), "TCR_EL3": tcr_el2() | TCR_EL3_PIE | TCR_EL3_POE,
                    "MAIR_EL3": MAIR, "TTBR0_EL3": root, "PIR_EL3": perm(5, 0b0101),
                    "POR_EL3": 0x7})
    res = run_at(AtOp.S1E3R, VA, regs=regs, mem=mem, cur_el=3)
    assert "PIE=1 (PIR_EL3=0x500000)" in res.walk and "POE=1 (POR_EL3=0x7)" in res.walk
    assert "PIRE0" not in res.walk
    assert "PIIndex=0b0101 -> PIR_EL3[23:20]=0b0101 (RW)" in "\n".join(res.trace.lines())


def test_el3_register_tables() -> None:
    """D24.2.196 TCR_EL3: PnCH bit 34, PIE 35, POE 36, AIE 37, D128 38, HAFT 42; PIR_EL3,
    POR_EL3 and MAIR2_EL3 have the layouts of their EL1 counterparts."""
    fields = decode("TCR_EL3", TCR_EL3_PIE | TCR_EL3_AIE | 1 << 42)
    assert (fields["PIE"], fields["POE"], fields["AIE"], fields["HAFT"]) == (1, 0, 1, 1)
    assert decode("TCR_EL3", 1 << 38)["D128"] == 1 and decode("TCR_EL3", 1 << 34)["PnCH"] == 1
    assert "PIE" not in decode("TCR_EL2", 0)  # TCR_EL2 (E2H=0) has no such bits: TCR2_EL2
    assert decode("PIR_EL3", perm(5, 0b0110))["Perm5"] == 0b0110
    assert decode("POR_EL3", perm(2, 0b0011))["Perm2"] == 0b0011
    assert decode("MAIR2_EL3", 0x44 << 16)["Attr10"] == 0x44
    SysRegs.from_mapping({"PIR_EL3": "0x1", "POR_EL3": "0x2", "MAIR2_EL3": "0x3"})


def test_decode_reg_cli_for_el3(capsys: pytest.CaptureFixture[str]) -> None:
    from atlab.cli import main

    assert main(["decode", "reg", "TCR_EL3", hex(0x80803510 | TCR_EL3_PIE)]) == 0
    out = capsys.readouterr().out
    assert "PIE=1" in out and "AIE=0" in out and "TG0=0(4KB)" in out
    assert main(["decode", "reg", "PIR_EL3", "0x60"]) == 0
    assert "Perm1=6(RWX, WXN applies)" in capsys.readouterr().out


# --- FEAT_THE / FEAT_HAFT / FEAT_D128: not modelled, refused --------------------------------

@pytest.mark.parametrize(
    ("regs", "message"),
    [
        pytest.param({"TCR2_EL1": TCR2_PIE | 1 << 11}, r"^TCR2_EL1\.HAFT=1 needs FEAT_HAFT",
                     id="TCR2_EL1.HAFT"),
        pytest.param({"TCR2_EL1": TCR2_PIE | 1 << 5}, r"^TCR2_EL1\.D128=1 needs FEAT_D128",
                     id="TCR2_EL1.D128"),
        pytest.param({"VTCR_EL2": 1 << 38, "HCR_EL2": 1 << 31 | 1},
                     r"^VTCR_EL2\.D128=1 needs FEAT_D128", id="VTCR_EL2.D128"),
        pytest.param({"VTCR_EL2": 1 << 44, "HCR_EL2": 1 << 31 | 1},
                     r"^VTCR_EL2\.HAFT=1 needs FEAT_HAFT", id="VTCR_EL2.HAFT"),
        pytest.param({"VTCR_EL2": 1 << 41, "HCR_EL2": 1 << 31 | 1},
                     r"^VTCR_EL2\.TL0=1 needs FEAT_THE", id="VTCR_EL2.TL0"),
    ],
)
def test_not_modelled_fields_are_refused(regs: dict[str, int], message: str) -> None:
    """A register a walk uses with a FEAT_THE/FEAT_HAFT/FEAT_D128 field set: one-line
    AtlabError, never output that silently ignores the field."""
    values = {"TCR2_EL1": TCR2_PIE, "HCRX_EL2": HCRX_TCR2EN, "PIR_EL1": perm(0, 0b0101)}
    values.update(regs)
    with pytest.raises(AtlabError, match=message) as err:
        _run(AtOp.S1E1R, 0, **values)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("bit", [34, 38, 42], ids=["PnCH", "D128", "HAFT"])
def test_not_modelled_tcr_el3_fields_are_refused(bit: int) -> None:
    with pytest.raises(AtlabError, match=r"^TCR_EL3\.(PnCH|D128|HAFT)=1 needs FEAT_"):
        _run_el3(AtOp.S1E3R, 0, tcr_bits=TCR_EL3_PIE | 1 << bit, PIR_EL3=perm(0, 1))


def test_unused_registers_with_not_modelled_fields_are_ignored() -> None:
    """TCR2_EL1 not in force (HCRX_EL2.TCR2En=0, IsTCR2EL1Enabled() FALSE): its HAFT bit
    cannot change the walk, so it is not refused."""
    assert _run(AtOp.S1E1R, 0, TCR2_EL1=TCR2_PIE | 1 << 11, HCRX_EL2=0) == OK


@pytest.mark.parametrize("name", ["FEAT_THE", "FEAT_HAFT", "FEAT_D128", "D128"])
def test_not_modelled_features_are_refused(name: str) -> None:
    full = name if name.startswith("FEAT_") else f"FEAT_{name}"
    with pytest.raises(AtlabError, match=rf"^{full} is not modelled by atlab"):
        FeatureSet.from_mapping({name: True})
    assert FeatureSet.from_mapping({name: False}) == ALL  # off is what atlab models
    with pytest.raises(AtlabError):
        FeatureSet.from_mapping({name: "yes"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"features": {"FEAT_D128": True}}, "FEAT_D128 is not modelled",
                     id="features-D128"),
        pytest.param({"sysregs": {"TCR2_EL1": "0x802", "HCRX_EL2": "0x4000"}},
                     "TCR2_EL1.HAFT=1 needs FEAT_HAFT", id="TCR2_EL1.HAFT"),
    ],
)
def test_scenario_file_asking_for_unmodelled_features(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        change: dict[str, dict[str, object]], message: str) -> None:
    """From a scenario file, `atlab run` stops with one error line (exit status 2)."""
    from atlab.cli import main

    smoke = json.loads((Path(__file__).parent / "data/conformance/smoke.json").read_text())
    scn = dict(smoke[0])
    for key, value in change.items():
        scn[key] = {**scn.get(key, {}), **value}
    path = tmp_path / "scn.json"
    path.write_text(json.dumps([scn]))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
