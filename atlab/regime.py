"""Translation regimes, the AT operations, and which regime each AT uses.

The regime an AT instruction translates in depends on the instruction and on
HCR_EL2.{E2H,TGE} (``AArch64.AT()``, ``TranslationRegime()``, ``ELIsInHost()``).  One function,
:func:`compute_translation_regime`, answers it; :func:`at_disposition` says whether the
instruction executes at all at the current EL (UNDEFINED, trapped to EL2, or executed).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from atlab.errors import AtlabError, clip
from atlab.features import Feature, FeatureSet
from atlab.sysregs import SysRegs


class Regime(enum.Enum):
    """A stage 1 translation regime (``Regime_EL10`` ... in the pseudocode)."""

    EL10 = "EL1&0"
    EL20 = "EL2&0"
    EL2 = "EL2"
    EL3 = "EL3"

    # Members are singletons compared by identity: hash them the same way (a C-level hash;
    # Enum's own hashes the name in Python, and regimes key the per-snapshot memos).
    __hash__ = object.__hash__

    @property
    def has_unprivileged(self) -> bool:
        """``HasUnprivileged()``: the regime has an EL0 (and two VA ranges)."""
        return self in (Regime.EL10, Regime.EL20)

    @property
    def suffix(self) -> str:
        """The register suffix of the regime's stage 1 registers."""
        return {Regime.EL10: "EL1", Regime.EL20: "EL2", Regime.EL2: "EL2", Regime.EL3: "EL3"}[self]

    def __str__(self) -> str:
        return self.value


class Access(enum.Enum):
    """The access an AT checks permissions for (``ATAccess``)."""

    READ = "R"
    WRITE = "W"
    ANY = "A"  # FEAT_ATS1A: no permission check

    __hash__ = object.__hash__  # identity, as for Regime


@dataclass(frozen=True, slots=True)
class AtOpInfo:
    """What an AT operation is: its stages, the EL it translates for, its access, whether
    PSTATE.PAN applies, its SYS encoding (op1, CRm, op2; CRn is 7), and the feature it needs."""

    stages: int  # 1: stage 1 only, 12: stages 1 and 2
    el: int
    access: Access
    pan: bool
    op1: int
    crm: int
    op2: int
    feature: Feature | None = None


class AtOp(enum.Enum):
    """Every AT instruction atlab models (Arm ARM C5.4)."""

    S1E0R = AtOpInfo(1, 0, Access.READ, False, 0, 8, 2)
    S1E0W = AtOpInfo(1, 0, Access.WRITE, False, 0, 8, 3)
    S1E1R = AtOpInfo(1, 1, Access.READ, False, 0, 8, 0)
    S1E1W = AtOpInfo(1, 1, Access.WRITE, False, 0, 8, 1)
    S1E1RP = AtOpInfo(1, 1, Access.READ, True, 0, 9, 0, Feature.PAN2)
    S1E1WP = AtOpInfo(1, 1, Access.WRITE, True, 0, 9, 1, Feature.PAN2)
    S1E1A = AtOpInfo(1, 1, Access.ANY, False, 0, 9, 2, Feature.ATS1A)
    S1E2R = AtOpInfo(1, 2, Access.READ, False, 4, 8, 0)
    S1E2W = AtOpInfo(1, 2, Access.WRITE, False, 4, 8, 1)
    S1E2A = AtOpInfo(1, 2, Access.ANY, False, 4, 9, 2, Feature.ATS1A)
    S12E1R = AtOpInfo(12, 1, Access.READ, False, 4, 8, 4)
    S12E1W = AtOpInfo(12, 1, Access.WRITE, False, 4, 8, 5)
    S12E0R = AtOpInfo(12, 0, Access.READ, False, 4, 8, 6)
    S12E0W = AtOpInfo(12, 0, Access.WRITE, False, 4, 8, 7)
    S1E3R = AtOpInfo(1, 3, Access.READ, False, 6, 8, 0)
    S1E3W = AtOpInfo(1, 3, Access.WRITE, False, 6, 8, 1)
    S1E3A = AtOpInfo(1, 3, Access.ANY, False, 6, 9, 2, Feature.ATS1A)

    __hash__ = object.__hash__  # identity, as for Regime

    @property
    def info(self) -> AtOpInfo:
        return self.value

    @property
    def is_s12(self) -> bool:
        return self.value.stages == 12

    @property
    def min_el(self) -> int:
        """The lowest EL at which the instruction is not UNDEFINED (ignoring traps)."""
        return max(1, self.value.el) if self.value.stages == 1 else 2

    @staticmethod
    def parse(name: str) -> AtOp:
        key = name.strip().upper()
        if key.startswith("AT "):
            key = key[3:].strip()
        try:
            return AtOp[key]
        except KeyError:
            known = ", ".join(op.name for op in AtOp)
            raise AtlabError(f"unknown AT operation {clip(name)}; known: {known}") from None

    def __str__(self) -> str:
        return f"AT {self.name}"


def hcr_e2h_tge(regs: SysRegs, features: FeatureSet) -> tuple[int, int]:
    """Effective HCR_EL2.{E2H,TGE}: E2H reads as 0 without FEAT_VHE."""
    e2h = regs.field("HCR_EL2", "E2H") if features.has(Feature.VHE) else 0
    return e2h, regs.field("HCR_EL2", "TGE")


@dataclass(frozen=True, slots=True)
class RegimeChoice:
    """The regime an AT translates in, the EL whose permissions it checks, and why."""

    regime: Regime
    el: int
    stage2: bool  # the op is AT S12E* (stage 2 applies if enabled)
    reason: str


def compute_translation_regime(op: AtOp, regs: SysRegs, features: FeatureSet) -> RegimeChoice:
    """The translation regime of ``op`` (``AArch64.AT()`` with ``TranslationRegime()``).

    EL2 is always enabled in atlab (SCR_EL3 is fixed, see :mod:`atlab.sysregs`).

    ========================  =============  =============  ==============  ================
    op \\ HCR_EL2.{E2H,TGE}    {0,0}          {0,1}          {1,0}           {1,1}
    ========================  =============  =============  ==============  ================
    S1E0R/W                   EL1&0, EL0     EL1&0, EL0 †   EL1&0, EL0      EL2&0, EL0
    S1E1R/W, S1E1RP/WP, A     EL1&0, EL1     EL1&0, EL1 †   EL1&0, EL1      EL2&0, EL2
    S1E2R/W, S1E2A            EL2            EL2            EL2&0, EL2      EL2&0, EL2
    S12E0R/W, S12E1R/W        EL1&0 + S2     EL1&0 + S2 †   EL1&0 + S2      EL2&0 (S1 only) ‡
    S1E3R/W, S1E3A            EL3            EL3            EL3             EL3
    ========================  =============  =============  ==============  ================

    † With TGE=1 the EL1&0 stage 1 is disabled (``AArch64.S1Enabled()``: ``HCR_EL2.<DC,TGE>``
    must be ``00``), so those ops return the flat VA->PA mapping; stage 2 still applies to
    AT S12E* when HCR_EL2.VM=1 (VM is forced to 0 only when {E2H,TGE}={1,1}).
    ‡ "Executing AT S12E1R" (C5.4.3): with ELIsInHost(EL0) the op is executed as a stage 1 AT
    for EL1 (S12E0*: EL0), and ``AArch64.AT()`` moves EL1 to EL2: the EL2&0 regime, accessed
    from EL2 (S12E1*) or EL0 (S12E0*), without stage 2.
    """
    info = op.info
    e2h, tge = hcr_e2h_tge(regs, features)
    in_host = e2h == 1 and tge == 1  # ELIsInHost(EL0)
    if info.stages == 12:
        if in_host:
            # "Executing AT S12E1R" (C5.4.3): with ELIsInHost(EL0) the op runs as
            # AArch64.AT(..., TranslationStage_1, EL1/EL0), which AArch64.AT() turns into the
            # EL2&0 regime (EL1 becomes EL2): stage 1 only.
            el = 2 if info.el == 1 else 0
            return RegimeChoice(Regime.EL20, el, False,
                                "HCR_EL2.{E2H,TGE}={1,1}: AT S12E* is a stage 1 AT in EL2&0")
        return RegimeChoice(Regime.EL10, info.el, True,
                            "AT S12E* translates in the EL1&0 regime, then stage 2 if enabled")
    if info.el == 3:
        return RegimeChoice(Regime.EL3, 3, False, "AT S1E3* uses the EL3 regime")
    if info.el == 2:
        if e2h:
            return RegimeChoice(Regime.EL20, 2, False, "HCR_EL2.E2H=1: EL2 is in the EL2&0 regime")
        return RegimeChoice(Regime.EL2, 2, False, "HCR_EL2.E2H=0: the EL2 regime")
    if in_host:
        if info.el == 1:
            return RegimeChoice(Regime.EL20, 2, False,
                                "HCR_EL2.{E2H,TGE}={1,1}: AT S1E1* uses EL2&0, accessed from EL2")
        return RegimeChoice(Regime.EL20, 0, False,
                            "HCR_EL2.{E2H,TGE}={1,1}: EL0 is in the EL2&0 regime")
    return RegimeChoice(Regime.EL10, info.el, False,
                        f"HCR_EL2.{{E2H,TGE}}={{{e2h},{tge}}}: the EL1&0 regime")


class Disposition(enum.Enum):
    EXECUTE = "execute"
    UNDEFINED = "UNDEFINED"
    TRAP_EL2 = "trapped to EL2"


@dataclass(frozen=True, slots=True)
class AtDisposition:
    """Whether an AT executes at the current EL, and the rule that says so."""

    kind: Disposition
    reason: str


def at_disposition(op: AtOp, cur_el: int, regs: SysRegs, features: FeatureSet) -> AtDisposition:
    """What executing ``op`` at ``cur_el`` does (the "Executing AT ..." pseudocode, C5.4).

    - A feature-gated op without its feature (S1E1RP/WP without FEAT_PAN2; S1E1A, S1E2A,
      S1E3A without FEAT_ATS1A) is UNDEFINED.
    - S1E3* below EL3 is UNDEFINED.
    - S1E2*, S12E* at EL1: trapped to EL2 (EC 0x18) when HCR_EL2.NV=1 (FEAT_NV), otherwise
      UNDEFINED.
    - S1E0*, S1E1* at EL1: trapped to EL2 (EC 0x18) when HCR_EL2.AT=1 (FEAT_NV).
    - Everything else executes.
    """
    if cur_el not in (1, 2, 3):
        raise AtlabError(f"AT instructions execute at EL1, EL2 or EL3, not EL{cur_el}")
    info = op.info
    if cur_el == 1 and regs.field("HCR_EL2", "TGE"):
        raise AtlabError("nothing runs at EL1 while HCR_EL2.TGE=1 (an ERET to EL1 is illegal)")
    if info.feature is not None and not features.has(info.feature):
        return AtDisposition(Disposition.UNDEFINED, f"{op} needs {info.feature.value}")
    if info.el == 3 and cur_el < 3:
        return AtDisposition(Disposition.UNDEFINED, f"{op} is UNDEFINED below EL3")
    if cur_el == 1:
        nv = features.has(Feature.NV)
        if info.el == 2 or info.stages == 12:
            if nv and regs.field("HCR_EL2", "NV"):
                return AtDisposition(Disposition.TRAP_EL2,
                                     f"HCR_EL2.NV=1 traps {op} at EL1 to EL2 (EC 0x18)")
            return AtDisposition(Disposition.UNDEFINED, f"{op} is UNDEFINED at EL1")
        if nv and regs.field("HCR_EL2", "AT"):
            return AtDisposition(Disposition.TRAP_EL2,
                                 f"HCR_EL2.AT=1 traps {op} at EL1 to EL2 (EC 0x18)")
    return AtDisposition(Disposition.EXECUTE, f"{op} executes at EL{cur_el}")
