"""Architecture features: which optional parts of the VMSA the modelled PE implements.

The default :class:`FeatureSet` implements everything atlab models.  A scenario switches
features off by name (``{"features": {"FEAT_ATS1A": false}}``) and behaviour follows: AT
S1E1A without FEAT_ATS1A is UNDEFINED, TCR_ELx.DS is ignored without FEAT_LPA2, and so on.

>>> fs = FeatureSet.all().without(Feature.ATS1A)
>>> fs.has(Feature.ATS1A), fs.has(Feature.VHE)
(False, True)
>>> FeatureSet.all().pa_max
52
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from atlab.errors import AtlabError, clip


class Feature(enum.Enum):
    """Optional features, named as in the Arm ARM (without the ``FEAT_`` prefix)."""

    VHE = "FEAT_VHE"  # HCR_EL2.E2H, the EL2&0 regime
    PAN = "FEAT_PAN"  # PSTATE.PAN
    PAN2 = "FEAT_PAN2"  # AT S1E1RP/WP
    PAN3 = "FEAT_PAN3"  # SCTLR_ELx.EPAN
    HPDS = "FEAT_HPDS"  # TCR_ELx.HPD: hierarchical permission disables
    HPDS2 = "FEAT_HPDS2"  # PBHA bits in descriptors (no effect on PAR)
    LPA = "FEAT_LPA"  # 52-bit PA with the 64KB granule
    LPA2 = "FEAT_LPA2"  # TCR_ELx.DS: 52-bit VA/PA with 4KB and 16KB granules
    LVA = "FEAT_LVA"  # 52-bit VA with the 64KB granule
    TTST = "FEAT_TTST"  # small translation tables (TxSZ up to 48)
    E0PD = "FEAT_E0PD"  # TCR_ELx.E0PDn
    HAFDBS = "FEAT_HAFDBS"  # hardware Access flag and dirty state
    ATS1A = "FEAT_ATS1A"  # AT S1E1A, AT S1E2A, AT S1E3A
    XNX = "FEAT_XNX"  # stage 2 XN[1:0]
    S2FWB = "FEAT_S2FWB"  # HCR_EL2.FWB
    NV = "FEAT_NV"  # HCR_EL2.{NV,NV1,AT}
    NV2 = "FEAT_NV2"  # HCR_EL2.NV2
    TCR2 = "FEAT_TCR2"  # TCR2_EL1/TCR2_EL2, HCRX_EL2.TCR2En (IsTCR2EL1Enabled())
    SCTLR2 = "FEAT_SCTLR2"  # SCTLR2_EL1/SCTLR2_EL2 (no effect on AT in atlab)
    S1PIE = "FEAT_S1PIE"  # stage 1 permission indirection: TCR2_ELx.PIE, PIR_ELx, PIRE0_ELx
    S2PIE = "FEAT_S2PIE"  # stage 2 permission indirection: VTCR_EL2.S2PIE, S2PIR_EL2
    AIE = "FEAT_AIE"  # AttrIndx[3] and MAIR2_ELx: TCR2_ELx.AIE
    S1POE = "FEAT_S1POE"  # stage 1 permission overlays: TCR2_ELx.{POE,E0POE}, POR_ELx
    S2POE = "FEAT_S2POE"  # stage 2 permission overlays: VTCR_EL2.S2POE, S2POR_EL1
    TGRAN4 = "FEAT_TGran4K"
    TGRAN16 = "FEAT_TGran16K"
    TGRAN64 = "FEAT_TGran64K"

    def __init__(self, value: str) -> None:
        # A bit per feature, so that FeatureSet.has() is one AND (walks call it often).
        self.bit = 1 << len(type(self).__members__)


#: Features atlab does not model (README, LIMITATIONS): a scenario may name them only to
#: switch them off; asking for one raises AtlabError rather than giving output without it.
NOT_MODELLED: frozenset[str] = frozenset({"FEAT_THE", "FEAT_HAFT", "FEAT_D128"})

_BY_NAME: dict[str, Feature] = {}
for _f in Feature:
    _BY_NAME[_f.value] = _f
    _BY_NAME[_f.name] = _f


def feature_by_name(name: str) -> Feature:
    """Look a feature up by ``FEAT_X`` or ``X``; unknown names raise :class:`AtlabError`."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(f.value for f in Feature)
        raise AtlabError(f"unknown feature {clip(name)} (known: {known})") from None


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """The features a PE implements and its physical address size (``AArch64.PAMax()``)."""

    features: frozenset[Feature]
    pa_max: int = 52
    _mask: int = field(default=0, init=False, repr=False, compare=False)
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        mask = 0
        for f in self.features:
            mask |= f.bit
        object.__setattr__(self, "_mask", mask)
        object.__setattr__(self, "_hash", hash((self.features, self.pa_max)))

    def __hash__(self) -> int:
        return self._hash  # computed once: feature sets key the per-snapshot memos

    @staticmethod
    def all(pa_max: int = 52) -> FeatureSet:
        """Everything atlab models (the default)."""
        if pa_max == 52:
            return _ALL
        return FeatureSet(frozenset(Feature), pa_max)

    def has(self, feature: Feature) -> bool:
        return bool(self._mask & feature.bit)

    def without(self, *features: Feature) -> FeatureSet:
        return FeatureSet(self.features - set(features), self.pa_max)

    def with_(self, *features: Feature) -> FeatureSet:
        return FeatureSet(self.features | set(features), self.pa_max)

    @staticmethod
    def from_mapping(spec: Mapping[str, object]) -> FeatureSet:
        """Start from :meth:`all` and apply ``{"FEAT_X": bool, "PAMax": int}``."""
        fs = FeatureSet.all()
        pa_max = fs.pa_max
        enabled = set(fs.features)
        for name, value in spec.items():
            if name in ("PAMax", "pa_max"):
                if not isinstance(value, int) or value not in (32, 36, 40, 42, 44, 48, 52):
                    raise AtlabError(
                        f"PAMax must be one of 32, 36, 40, 42, 44, 48, 52, not {clip(value)}")
                pa_max = value
                continue
            full = name if name.startswith("FEAT_") else f"FEAT_{name}"
            if full in NOT_MODELLED:
                if value is not False:
                    raise AtlabError(f"{full} is not modelled by atlab (README, LIMITATIONS); "
                                     "leave it out or set it to false")
                continue
            feat = feature_by_name(name)
            if not isinstance(value, bool):
                raise AtlabError(f"feature {name} must be true or false, not {clip(value)}")
            if value:
                enabled.add(feat)
            else:
                enabled.discard(feat)
        return FeatureSet(frozenset(enabled), pa_max)

    def names(self) -> list[str]:
        return sorted(f.value for f in self.features)

    def __str__(self) -> str:
        missing = sorted(f.value for f in Feature if f not in self.features)
        base = f"PAMax={self.pa_max}"
        return base + (" without " + ", ".join(missing) if missing else " (all features)")


_ALL = FeatureSet(frozenset(Feature), 52)


