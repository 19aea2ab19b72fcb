"""Stage 1 permissions (AArch64.S1DirectBasePermissions(), AArch64.S1CheckPermissions()):
AP[2:1] x APTable, XN bits, implicit PXN, EL2/EL3 regimes, HPD, PAN/EPAN, WXN, DBM."""

from __future__ import annotations

import pytest

from atlab import AtOp, Feature, FeatureSet, PhysMem, SysRegs, run_at
from atlab.perms import S1PermBits, compute_s1_permissions
from tests.helpers import (
    AF,
    DBM,
    MAIR,
    PXN,
    SH_ISH,
    UXN,
    TableAlloc,
    ap,
    build_s1,
    el1_regs,
    hcr,
    par_fault,
    par_ok,
    sctlr,
    sh,
    tcr_el1,
    tcr_el2,
)

ALL = FeatureSet.all()
VA = 0x1234_5678_9ABC
PA = 0x4567_8000
OK = par_ok(PA | 0xABC, 0xFF, SH_ISH)
PERM_L3 = par_fault("permission", 3)

# AP[2:1] x APTable -> (EL1 read, EL1 write, EL0 read, EL0 write), transcribed from the two
# case statements of AArch64.S1DirectBasePermissions():
#   AP 00 EL1 RW; 01 EL1 RW + EL0 RW; 10 EL1 RO; 11 EL1 RO + EL0 RO.
#   APTable 01: no EL0 access; 10: no write access; 11: neither.
AP_TABLE = [
    (0b00, 0b00, (1, 1, 0, 0)), (0b00, 0b01, (1, 1, 0, 0)),
    (0b00, 0b10, (1, 0, 0, 0)), (0b00, 0b11, (1, 0, 0, 0)),
    (0b01, 0b00, (1, 1, 1, 1)), (0b01, 0b01, (1, 1, 0, 0)),
    (0b01, 0b10, (1, 0, 1, 0)), (0b01, 0b11, (1, 0, 0, 0)),
    (0b10, 0b00, (1, 0, 0, 0)), (0b10, 0b01, (1, 0, 0, 0)),
    (0b10, 0b10, (1, 0, 0, 0)), (0b10, 0b11, (1, 0, 0, 0)),
    (0b11, 0b00, (1, 0, 1, 0)), (0b11, 0b01, (1, 0, 0, 0)),
    (0b11, 0b10, (1, 0, 1, 0)), (0b11, 0b11, (1, 0, 0, 0)),
]
OPS = [AtOp.S1E1R, AtOp.S1E1W, AtOp.S1E0R, AtOp.S1E0W]


def _map(desc_bits: int, *, table_bits: int = 0, **tcr_fields: int) -> tuple[PhysMem, SysRegs]:
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH) | desc_bits,
                    table_bits=table_bits, alloc=TableAlloc())
    return mem, el1_regs(ttbr0=root, tcr=tcr_el1(**tcr_fields))


@pytest.mark.parametrize(
    ("ap21", "aptable", "op", "allowed"),
    [
        pytest.param(a, t, op, bool(rights[i]), id=f"AP{a:02b}-APTable{t:02b}-{op.name}")
        for a, t, rights in AP_TABLE for i, op in enumerate(OPS)
    ],
)
def test_ap_aptable(ap21: int, aptable: int, op: AtOp, allowed: bool) -> None:
    # APTable is set on every table descriptor of the walk (they OR together).
    mem, regs = _map(ap(ap21), table_bits=aptable << 61)
    res = run_at(op, VA, regs=regs, mem=mem)
    assert res.par is not None
    assert res.par.value == (OK if allowed else PERM_L3)


def test_aptable_on_one_level_only() -> None:
    # Hierarchical controls from any level apply: APTable=10 only at level 1 still blocks writes.
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH), alloc=TableAlloc())
    regs = el1_regs(ttbr0=root)
    step = run_at(AtOp.S1E1R, VA, regs=regs, mem=mem).trace.steps[1]
    mem.poke(step.desc_pa, step.raw | (0b10 << 61))
    assert run_at(AtOp.S1E1W, VA, regs=regs, mem=mem).par.value == PERM_L3  # type: ignore[union-attr]
    assert run_at(AtOp.S1E1R, VA, regs=regs, mem=mem).par.value == OK  # type: ignore[union-attr]


# --- execute permissions (not reported by AT; checked on the permission record) -----------

@pytest.mark.parametrize(
    ("desc_bits", "table_bits", "px", "ux"),
    [
        pytest.param(ap(0b00), 0, True, True, id="AP00-PX-UX"),
        pytest.param(ap(0b00) | UXN, 0, True, False, id="UXN"),
        pytest.param(ap(0b00) | PXN, 0, False, True, id="PXN"),
        pytest.param(ap(0b00), 1 << 60, True, False, id="UXNTable"),
        pytest.param(ap(0b00), 1 << 59, False, True, id="PXNTable"),
        # Locations writable at EL0 are never privileged-executable (px = NOT(... OR uw)).
        pytest.param(ap(0b01), 0, False, True, id="AP01-EL0-writable-implicit-PXN"),
        pytest.param(ap(0b11), 0, True, True, id="AP11-EL0-readonly-no-implicit-PXN"),
        # ...but uw after APTable: APTable=10 removes EL0 write, so PX comes back.
        pytest.param(ap(0b01), 0b10 << 61, True, True, id="AP01-APTable10-PX"),
    ],
)
def test_execute_permissions(desc_bits: int, table_bits: int, px: bool, ux: bool) -> None:
    mem, regs = _map(desc_bits, table_bits=table_bits)
    r1 = run_at(AtOp.S1E1R, VA, regs=regs, mem=mem)
    r0 = run_at(AtOp.S1E0R, VA, regs=regs, mem=mem)
    assert r1.perms is not None and r0.perms is not None
    assert r1.perms.x is px
    if r0.perms.r:
        assert r0.perms.x is ux


# --- EL2 and EL3 regimes: AP[1] RES1/ignored, a single XN bit --------------------------------

def _el2(desc_bits: int, *, table_bits: int = 0, suffix: str = "EL2",
         **tcr_fields: int) -> tuple[PhysMem, SysRegs]:
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH) | desc_bits, table_bits=table_bits,
                    alloc=TableAlloc())
    regs = SysRegs({"HCR_EL2": hcr(), f"SCTLR_{suffix}": sctlr(),
                    f"TCR_{suffix}": tcr_el2(**tcr_fields), f"MAIR_{suffix}": MAIR,
                    f"TTBR0_{suffix}": root})
    return mem, regs


@pytest.mark.parametrize(
    ("desc_bits", "table_bits", "write_ok", "x"),
    [
        # EL2 regime (no EL0): AP[2] only: 0 RW, 1 RO; AP[1] is ignored.
        pytest.param(ap(0b00), 0, True, True, id="EL2-AP00-RW"),
        pytest.param(ap(0b01), 0, True, True, id="EL2-AP01-RW-AP1-ignored"),
        pytest.param(ap(0b10), 0, False, True, id="EL2-AP10-RO"),
        pytest.param(ap(0b11), 0, False, True, id="EL2-AP11-RO"),
        pytest.param(ap(0b00) | UXN, 0, True, False, id="EL2-XN"),
        pytest.param(ap(0b00) | PXN, 0, True, True, id="EL2-bit53-ignored"),
        pytest.param(ap(0b00), 1 << 60, True, False, id="EL2-XNTable"),
        pytest.param(ap(0b00), 0b10 << 61, False, True, id="EL2-APTable1x-RO"),
        pytest.param(ap(0b00), 0b01 << 61, True, True, id="EL2-APTable01-ignored"),
    ],
)
def test_el2_regime_permissions(desc_bits: int, table_bits: int, write_ok: bool,
                                x: bool) -> None:
    mem, regs = _el2(desc_bits, table_bits=table_bits)
    r = run_at(AtOp.S1E2R, VA, regs=regs, mem=mem)
    w = run_at(AtOp.S1E2W, VA, regs=regs, mem=mem)
    assert r.par is not None and r.par.value == OK
    assert w.par is not None and w.par.value == (OK if write_ok else PERM_L3)
    assert r.perms is not None and r.perms.x is x


@pytest.mark.parametrize("ap21", [0b00, 0b01, 0b10, 0b11], ids=lambda a: f"EL3-AP{a:02b}")
def test_el3_regime_permissions(ap21: int) -> None:
    mem, regs = _el2(ap(ap21), suffix="EL3")
    w = run_at(AtOp.S1E3W, VA, regs=regs, mem=mem, cur_el=3)
    assert w.par is not None and w.par.value == (PERM_L3 if ap21 & 0b10 else OK)


def test_el20_regime_has_el0_permissions() -> None:
    # EL2&0 (E2H=1): TCR_EL2 has the TCR_EL1 layout and AP[1] gives EL0 access.
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH) | ap(0b00), alloc=TableAlloc())
    regs = SysRegs({"HCR_EL2": hcr(E2H=1, TGE=1), "SCTLR_EL2": sctlr(), "TCR_EL2": tcr_el1(),
                    "MAIR_EL2": MAIR, "TTBR0_EL2": root})
    assert run_at(AtOp.S1E2W, VA, regs=regs, mem=mem).par.value == OK  # type: ignore[union-attr]
    # AT S1E0R in the host: EL0 has no access with AP=00.
    assert run_at(AtOp.S1E0R, VA, regs=regs, mem=mem).par.value == PERM_L3  # type: ignore[union-attr]


# --- HPD: hierarchical permissions disabled (FEAT_HPDS) -------------------------------------

@pytest.mark.parametrize(
    ("hpd", "features", "write_ok"),
    [
        pytest.param(0, ALL, False, id="HPD0-APTable10-applies"),
        pytest.param(1, ALL, True, id="HPD0=1-APTable-ignored"),
        pytest.param(1, ALL.without(Feature.HPDS), False, id="HPD0=1-noFEAT_HPDS-applies"),
    ],
)
def test_hpd_el1(hpd: int, features: FeatureSet, write_ok: bool) -> None:
    mem, regs = _map(ap(0b00), table_bits=(0b10 << 61) | (1 << 59), HPD0=hpd)
    res = run_at(AtOp.S1E1W, VA, regs=regs, mem=mem, features=features)
    assert res.par is not None and res.par.value == (OK if write_ok else PERM_L3)
    assert res.perms is not None and res.perms.x is write_ok  # PXNTable ignored too with HPD


def test_hpd1_applies_to_ttbr1_only() -> None:
    mem, regs = _map(ap(0b00), table_bits=0b10 << 61, HPD1=1)
    res = run_at(AtOp.S1E1W, VA, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == PERM_L3


@pytest.mark.parametrize("hpd", [0, 1], ids=["EL2-HPD0", "EL2-HPD1"])
def test_hpd_el2(hpd: int) -> None:
    mem, regs = _el2(ap(0b00), table_bits=0b10 << 61, HPD=hpd)
    res = run_at(AtOp.S1E2W, VA, regs=regs, mem=mem)
    assert res.par is not None and res.par.value == (OK if hpd else PERM_L3)


# --- PAN (FEAT_PAN, FEAT_PAN2 AT S1E1RP/WP, FEAT_PAN3 EPAN) -----------------------------------

@pytest.mark.parametrize(
    ("op", "ap21", "uxn", "pan", "epan", "features", "ok"),
    [
        # PAN applies to EL0-accessible memory, only for S1E1RP/WP (accdesc.pan).
        pytest.param(AtOp.S1E1RP, 0b01, 0, 1, 0, ALL, False, id="S1E1RP-PAN1-AP01-fault"),
        pytest.param(AtOp.S1E1WP, 0b01, 0, 1, 0, ALL, False, id="S1E1WP-PAN1-AP01-fault"),
        pytest.param(AtOp.S1E1RP, 0b11, 0, 1, 0, ALL, False, id="S1E1RP-PAN1-AP11-fault"),
        pytest.param(AtOp.S1E1RP, 0b00, 0, 1, 0, ALL, True, id="S1E1RP-PAN1-AP00-ok"),
        pytest.param(AtOp.S1E1RP, 0b01, 0, 0, 0, ALL, True, id="S1E1RP-PAN0-AP01-ok"),
        pytest.param(AtOp.S1E1R, 0b01, 0, 1, 0, ALL, True, id="S1E1R-ignores-PAN"),
        pytest.param(AtOp.S1E1W, 0b01, 0, 1, 0, ALL, True, id="S1E1W-ignores-PAN"),
        pytest.param(AtOp.S1E1RP, 0b01, 0, 1, 0, ALL.without(Feature.PAN), True,
                     id="S1E1RP-noFEAT_PAN-ok"),
        # EPAN (FEAT_PAN3): PAN also covers EL0-executable memory: pan = PAN AND (ur OR uw OR
        # (epan AND ux)).
        pytest.param(AtOp.S1E1RP, 0b00, 0, 1, 1, ALL, False, id="S1E1RP-EPAN-EL0-exec-fault"),
        pytest.param(AtOp.S1E1RP, 0b00, 1, 1, 1, ALL, True, id="S1E1RP-EPAN-UXN-ok"),
        pytest.param(AtOp.S1E1RP, 0b00, 0, 1, 0, ALL, True, id="S1E1RP-EPAN0-EL0-exec-ok"),
        pytest.param(AtOp.S1E1RP, 0b00, 0, 1, 1, ALL.without(Feature.PAN3), True,
                     id="S1E1RP-EPAN-noFEAT_PAN3-ok"),
    ],
)
def test_pan(op: AtOp, ap21: int, uxn: int, pan: int, epan: int, features: FeatureSet,
             ok: bool) -> None:
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH) | ap(ap21) | (UXN if uxn else 0),
                    alloc=TableAlloc())
    regs = el1_regs(ttbr0=root, sctlr_el1=sctlr(EPAN=epan))
    res = run_at(op, VA, regs=regs, mem=mem, pan=pan, features=features)
    assert res.par is not None and res.par.value == (OK if ok else PERM_L3)


def test_pan_from_pstate_register() -> None:
    mem, regs = _map(ap(0b01))
    res = run_at(AtOp.S1E1RP, VA, regs=regs.replace(PSTATE_PAN=1), mem=mem)
    assert res.par is not None and res.par.value == PERM_L3


# --- WXN --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("ap21", "wxn", "x", "wxn_applied"),
    [
        pytest.param(0b00, 1, False, True, id="WXN-writable-not-executable"),
        pytest.param(0b10, 1, True, False, id="WXN-readonly-executable"),
        pytest.param(0b00, 0, True, False, id="WXN0-writable-executable"),
    ],
)
def test_wxn(ap21: int, wxn: int, x: bool, wxn_applied: bool) -> None:
    mem = PhysMem()
    root = build_s1(mem, "4K", 16, VA, PA, 3, AF | sh(SH_ISH) | ap(ap21), alloc=TableAlloc())
    res = run_at(AtOp.S1E1R, VA, regs=el1_regs(ttbr0=root, sctlr_el1=sctlr(WXN=wxn)), mem=mem)
    assert res.par is not None and res.par.value == OK  # WXN never affects data accesses
    assert res.perms is not None
    assert (res.perms.x, res.perms.wxn_applied) == (x, wxn_applied)


# --- DBM with hardware dirty state (FEAT_HAFDBS) --------------------------------------------

@pytest.mark.parametrize(
    ("ha", "hd", "features", "write_ok"),
    [
        # "Descriptors marked with DBM set have the effective value of AP[2] cleared" when HD=1.
        pytest.param(1, 1, ALL, True, id="DBM-HA1-HD1-writable"),
        pytest.param(1, 0, ALL, False, id="DBM-HD0-readonly"),
        pytest.param(1, 1, ALL.without(Feature.HAFDBS), False, id="DBM-noHAFDBS-readonly"),
    ],
)
def test_dbm(ha: int, hd: int, features: FeatureSet, write_ok: bool) -> None:
    mem, regs = _map(ap(0b10) | DBM, HA=ha, HD=hd)
    before = mem.words()
    res = run_at(AtOp.S1E1W, VA, regs=regs, mem=mem, features=features)
    assert res.par is not None and res.par.value == (OK if write_ok else PERM_L3)
    # AArch64.SetDirtyState(): never for AccessType_AT, so AP[2] stays set in memory.
    assert mem.words() == before


# --- compute_s1_permissions directly ----------------------------------------------------------

@pytest.mark.parametrize(
    ("bits_", "el", "pan", "epan", "rwx"),
    [
        pytest.param(S1PermBits(ap=0b01), 1, False, False, (True, True, False), id="AP01-EL1"),
        pytest.param(S1PermBits(ap=0b01), 0, False, False, (True, True, True), id="AP01-EL0"),
        pytest.param(S1PermBits(ap=0b01), 1, True, False, (False, False, False),
                     id="AP01-EL1-PAN"),
        pytest.param(S1PermBits(ap=0b00, uxn=0), 1, True, True, (False, False, True),
                     id="AP00-EL1-PAN-EPAN"),
        pytest.param(S1PermBits(ap=0b11, ap_table=0b01), 0, False, False, (False, False, True),
                     id="AP11-APTable01-EL0"),
    ],
)
def test_compute_s1_permissions(bits_: S1PermBits, el: int, pan: bool, epan: bool,
                                rwx: tuple[bool, bool, bool]) -> None:
    p = compute_s1_permissions(bits_, has_unprivileged=True, nv1=False, el=el, pan=pan,
                               epan=epan, wxn=False, hd=False)
    assert (p.r, p.w, p.x) == rwx
