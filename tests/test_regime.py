"""compute_translation_regime() and at_disposition() against the Arm ARM (C5.4, AArch64.AT(),
TranslationRegime(), ELIsInHost())."""

from __future__ import annotations

import pytest

from atlab import (
    AtlabError,
    AtOp,
    Feature,
    FeatureSet,
    Regime,
    SysRegs,
    at_disposition,
    compute_translation_regime,
)
from atlab.regime import Disposition
from tests.helpers import hcr

ALL = FeatureSet.all()

EL10, EL20, EL2, EL3 = Regime.EL10, Regime.EL20, Regime.EL2, Regime.EL3

# (op, E2H, TGE) -> (regime, EL of the access, AT S12E* stage-2 flag)
# C5.4.x "Purpose" of each AT, AArch64.AT(): "when HCR_EL2.{E2H,TGE} is {1,1} and the requested
# EL is EL1, the EL2&0 translation regime is used" (stage 1 only); TranslationRegime(EL0) is
# EL2&0 when ELIsInHost(EL0); TranslationRegime(EL2) is EL2&0 when E2H=1.
REGIME_TABLE = [
    # S1E0R/W: TranslationRegime(EL0): EL1&0 unless ELIsInHost(EL0) ({E2H,TGE}={1,1}).
    *[(op, e2h, tge, EL20 if (e2h, tge) == (1, 1) else EL10, 0, False)
      for op in (AtOp.S1E0R, AtOp.S1E0W) for e2h in (0, 1) for tge in (0, 1)],
    # S1E1*: el=EL1 -> EL2 when ELIsInHost(EL0) (AArch64.AT()).
    *[(op, e2h, tge, EL20 if (e2h, tge) == (1, 1) else EL10, 2 if (e2h, tge) == (1, 1) else 1,
       False)
      for op in (AtOp.S1E1R, AtOp.S1E1W, AtOp.S1E1RP, AtOp.S1E1WP, AtOp.S1E1A)
      for e2h in (0, 1) for tge in (0, 1)],
    # S1E2*: TranslationRegime(EL2): EL2&0 iff ELIsInHost(EL2) (E2H=1), whatever TGE.
    *[(op, e2h, tge, EL20 if e2h else EL2, 2, False)
      for op in (AtOp.S1E2R, AtOp.S1E2W, AtOp.S1E2A) for e2h in (0, 1) for tge in (0, 1)],
    # S1E3*: TranslationRegime(EL3) = Regime_EL3.
    *[(op, e2h, tge, EL3, 3, False)
      for op in (AtOp.S1E3R, AtOp.S1E3W, AtOp.S1E3A) for e2h in (0, 1) for tge in (0, 1)],
    # S12E*: Regime_EL10 with stage 2 unless {E2H,TGE}={1,1} (C5.4.1-C5.4.4).
    *[(op, e2h, tge, EL10, op.info.el, True)
      for op in (AtOp.S12E0R, AtOp.S12E0W, AtOp.S12E1R, AtOp.S12E1W)
      for e2h, tge in ((0, 0), (0, 1), (1, 0))],
]

# C5.4.1-C5.4.4 Purpose: "If the Effective value of HCR_EL2.{E2H, TGE} is {1, 1}, the EL2&0
# translation regime, accessed from EL2" (S12E1*) / from EL0 (S12E0*); stage 1 only.
REGIME_TABLE_S12_HOST = [
    pytest.param(op, 1, 1, EL20, 0 if op.info.el == 0 else 2, False,
                 id=f"E2H1-TGE1-{op.name}->EL20")
    for op in (AtOp.S12E0R, AtOp.S12E0W, AtOp.S12E1R, AtOp.S12E1W)
]


def _regime_id(row: tuple[AtOp, int, int, Regime, int, bool]) -> str:
    op, e2h, tge, regime, _el, _s2 = row
    return f"E2H{e2h}-TGE{tge}-{op.name}->{regime.name}"


@pytest.mark.parametrize(
    ("op", "e2h", "tge", "regime", "el", "stage2"),
    [pytest.param(*row, id=_regime_id(row)) for row in REGIME_TABLE] + REGIME_TABLE_S12_HOST,
)
def test_compute_translation_regime(op: AtOp, e2h: int, tge: int, regime: Regime, el: int,
                                    stage2: bool) -> None:
    regs = SysRegs({"HCR_EL2": hcr(E2H=e2h, TGE=tge)})
    choice = compute_translation_regime(op, regs, ALL)
    assert (choice.regime, choice.el, choice.stage2) == (regime, el, stage2)
    assert choice.reason


# Without FEAT_VHE, HCR_EL2.E2H is RES0 (EffectiveHCR_EL2_E2H() is 0): ELIsInHost() is FALSE.
@pytest.mark.parametrize(
    ("op", "regime", "el"),
    [
        pytest.param(AtOp.S1E0R, EL10, 0, id="noVHE-E2H1-TGE1-S1E0R->EL10"),
        pytest.param(AtOp.S1E1R, EL10, 1, id="noVHE-E2H1-TGE1-S1E1R->EL10"),
        pytest.param(AtOp.S1E2R, EL2, 2, id="noVHE-E2H1-TGE1-S1E2R->EL2"),
        pytest.param(AtOp.S1E2W, EL2, 2, id="noVHE-E2H1-TGE0-S1E2W->EL2"),
        pytest.param(AtOp.S12E1R, EL10, 1, id="noVHE-E2H1-TGE1-S12E1R->EL10"),
    ],
)
def test_regime_without_vhe_ignores_e2h(op: AtOp, regime: Regime, el: int) -> None:
    regs = SysRegs({"HCR_EL2": hcr(E2H=1, TGE=1)})
    choice = compute_translation_regime(op, regs, ALL.without(Feature.VHE))
    assert (choice.regime, choice.el) == (regime, el)


# --- at_disposition ---------------------------------------------------------------------------

EXECUTE, UNDEF, TRAP = Disposition.EXECUTE, Disposition.UNDEFINED, Disposition.TRAP_EL2

DISPOSITION_TABLE = [
    # C5.4.16/17/15: AT S1E3* is UNDEFINED at EL1 and EL2.
    pytest.param(AtOp.S1E3R, 1, {}, ALL, UNDEF, id="S1E3R-EL1-UNDEFINED"),
    pytest.param(AtOp.S1E3W, 2, {}, ALL, UNDEF, id="S1E3W-EL2-UNDEFINED"),
    pytest.param(AtOp.S1E3A, 2, {}, ALL, UNDEF, id="S1E3A-EL2-UNDEFINED"),
    pytest.param(AtOp.S1E3R, 3, {}, ALL, EXECUTE, id="S1E3R-EL3-executes"),
    # C5.4.13/14/12: AT S1E2* at EL1: trap if EffectiveHCR_EL2_NVx() = 'xx1', else UNDEFINED.
    pytest.param(AtOp.S1E2R, 1, {}, ALL, UNDEF, id="S1E2R-EL1-NV0-UNDEFINED"),
    pytest.param(AtOp.S1E2W, 1, {"NV": 1}, ALL, TRAP, id="S1E2W-EL1-NV1-trap"),
    pytest.param(AtOp.S1E2R, 1, {"NV": 1}, ALL.without(Feature.NV), UNDEF,
                 id="S1E2R-EL1-NV1-noFEAT_NV-UNDEFINED"),
    pytest.param(AtOp.S1E2R, 2, {}, ALL, EXECUTE, id="S1E2R-EL2-executes"),
    pytest.param(AtOp.S1E2R, 3, {}, ALL, EXECUTE, id="S1E2R-EL3-executes"),
    # C5.4.1-C5.4.4: AT S12E* at EL1: same rule as S1E2*.
    pytest.param(AtOp.S12E1R, 1, {}, ALL, UNDEF, id="S12E1R-EL1-NV0-UNDEFINED"),
    pytest.param(AtOp.S12E0W, 1, {}, ALL, UNDEF, id="S12E0W-EL1-NV0-UNDEFINED"),
    pytest.param(AtOp.S12E1W, 1, {"NV": 1}, ALL, TRAP, id="S12E1W-EL1-NV1-trap"),
    pytest.param(AtOp.S12E0R, 1, {"NV": 1}, ALL, TRAP, id="S12E0R-EL1-NV1-trap"),
    pytest.param(AtOp.S12E1R, 2, {}, ALL, EXECUTE, id="S12E1R-EL2-executes"),
    # C5.4.9/C5.4.11: S1E1RP/WP need FEAT_PAN2; C5.4.7/12/15: S1ExA need FEAT_ATS1A.
    pytest.param(AtOp.S1E1RP, 2, {}, ALL.without(Feature.PAN2), UNDEF,
                 id="S1E1RP-noPAN2-UNDEFINED"),
    pytest.param(AtOp.S1E1WP, 1, {}, ALL.without(Feature.PAN2), UNDEF,
                 id="S1E1WP-EL1-noPAN2-UNDEFINED"),
    pytest.param(AtOp.S1E1RP, 1, {}, ALL, EXECUTE, id="S1E1RP-EL1-PAN2-executes"),
    pytest.param(AtOp.S1E1A, 1, {}, ALL.without(Feature.ATS1A), UNDEF,
                 id="S1E1A-EL1-noATS1A-UNDEFINED"),
    pytest.param(AtOp.S1E2A, 2, {}, ALL.without(Feature.ATS1A), UNDEF,
                 id="S1E2A-EL2-noATS1A-UNDEFINED"),
    pytest.param(AtOp.S1E3A, 3, {}, ALL.without(Feature.ATS1A), UNDEF,
                 id="S1E3A-EL3-noATS1A-UNDEFINED"),
    pytest.param(AtOp.S1E1A, 1, {}, ALL, EXECUTE, id="S1E1A-EL1-executes"),
    # C5.4.5-C5.4.11: S1E0*/S1E1* at EL1 trap to EL2 when HCR_EL2.AT=1 (FEAT_NV).
    *[pytest.param(op, 1, {"AT": 1}, ALL, TRAP, id=f"{op.name}-EL1-HCR.AT1-trap")
      for op in (AtOp.S1E0R, AtOp.S1E0W, AtOp.S1E1R, AtOp.S1E1W, AtOp.S1E1RP, AtOp.S1E1WP,
                 AtOp.S1E1A)],
    *[pytest.param(op, 1, {}, ALL, EXECUTE, id=f"{op.name}-EL1-HCR.AT0-executes")
      for op in (AtOp.S1E0R, AtOp.S1E1W)],
    # HCR_EL2.AT traps only EL1 execution.
    pytest.param(AtOp.S1E1R, 2, {"AT": 1}, ALL, EXECUTE, id="S1E1R-EL2-HCR.AT1-executes"),
    # HCR_EL2.NV alone does not trap S1E1* (only HCR_EL2.AT does).
    pytest.param(AtOp.S1E1R, 1, {"NV": 1}, ALL, EXECUTE, id="S1E1R-EL1-NV1-executes"),
]


@pytest.mark.parametrize(("op", "cur_el", "hcr_fields", "features", "kind"), DISPOSITION_TABLE)
def test_at_disposition(op: AtOp, cur_el: int, hcr_fields: dict[str, int],
                        features: FeatureSet, kind: Disposition) -> None:
    regs = SysRegs({"HCR_EL2": hcr(**hcr_fields)})
    disp = at_disposition(op, cur_el, regs, features)
    assert disp.kind is kind
    assert disp.reason


@pytest.mark.parametrize("op", [AtOp.S1E1R, AtOp.S1E0W, AtOp.S12E1R],
                         ids=["S1E1R", "S1E0W", "S12E1R"])
def test_el1_with_tge1_is_misuse(op: AtOp) -> None:
    # Nothing executes at EL1 with HCR_EL2.TGE=1: an exception return to EL1 is illegal.
    regs = SysRegs({"HCR_EL2": hcr(TGE=1)})
    with pytest.raises(AtlabError):
        at_disposition(op, 1, regs, ALL)


@pytest.mark.parametrize("cur_el", [0, 4], ids=["EL0", "EL4"])
def test_at_disposition_bad_el(cur_el: int) -> None:
    with pytest.raises(AtlabError):
        at_disposition(AtOp.S1E1R, cur_el, SysRegs(), ALL)


def test_trap_syndrome_via_run_at() -> None:
    # A trapped AT: EC 0x18, IL=1; ISS = Op0(bit 20) Op2 Op1 CRn Rt CRm Direction=0.
    from atlab import PhysMem, run_at
    regs = SysRegs({"HCR_EL2": hcr(AT=1)})
    res = run_at(AtOp.S1E1W, 0x1000, regs=regs, mem=PhysMem(), cur_el=1, rt=3)
    assert res.par is None and res.exception is not None
    exc = res.exception
    assert exc.target_el == 2 and exc.ec == 0x18
    # S1E1W: op1=0, CRn=7, CRm=8, op2=1
    assert exc.iss == (1 << 20) | (1 << 17) | (0 << 14) | (7 << 10) | (3 << 5) | (8 << 1)
    assert exc.esr == (0x18 << 26) | (1 << 25) | exc.iss


def test_undefined_via_run_at() -> None:
    from atlab import PhysMem, run_at
    res = run_at(AtOp.S1E3R, 0, regs=SysRegs(), mem=PhysMem(), cur_el=2)
    assert res.par is None and res.exception is not None
    assert res.exception.ec == 0 and res.exception.target_el == 2
