"""What a leaf descriptor's index fields select: the PIR/PIRE0/S2PIR entry of its PIIndex
(FEAT_S1PIE, FEAT_S2PIE), the POR entries of its POIndex (FEAT_S1POE) and the MAIR/MAIR2
attribute of its AttrIndx (FEAT_AIE), spelled as the registers' bit ranges.

Pictures and widgets show these next to a walk step; they read only the step (its descriptor
and the walk inputs recorded with it, :attr:`atlab.trace.WalkStep.decoder`).

>>> from atlab.regime import Regime
>>> from atlab.granule import Granule
>>> from atlab.walk_s1 import S1WalkInfo
>>> wi = S1WalkInfo(regime=Regime.EL10, el=1, upper=False, ttbr_name="TTBR0_EL1",
...                 tcr_name="TCR_EL1", baddr=0, granule=Granule.K4, txsz=16, ia_bits=48, sl=0,
...                 oa_bits=48, ds=False, tbi=False, hpd=True, ha=False, hd=False, wxn=False,
...                 ee=False, epan=False, nv1=False, mair=0xFF, sh=3, lpa_64k=False, pie=True,
...                 pir=0x0050_0000, pire0=0x0010_0000)
>>> desc = 0x4000_0000 | 1 << 53 | 1 << 6 | 1 << 10 | 3  # PIIndex 0b0101
>>> for name, text in s1_leaf_selections(desc, wi):
...     print(f"{name}: {text}")
PIIndex: PIIndex 0b0101 → PIR_EL1[23:20] = 0b0101 (RW)
PIRE0: PIIndex 0b0101 → PIRE0_EL1[23:20] = 0b0001 (R)
nDirty: nDirty 0 (dirty: writable)
AttrIndx: AttrIndx 0b000 → MAIR_EL1.Attr0 = 0xff (Normal iWB oWB)
>>> leaf_index_fields(desc, stage=1, pie=True, aie=True, poe=True)
{'PIIndex': 5, 'nDirty': 0, 'POIndex': 0, 'AttrIndx': 0}
"""

from __future__ import annotations

from collections.abc import Mapping

from atlab.attrs import decode_mair_attr, mair_attr
from atlab.descriptors import pi_index
from atlab.regime import Regime
from atlab.sysregs import LAYOUTS
from atlab.trace import WalkStep
from atlab.walk_s1 import S1WalkInfo, pir_name, pire0_name, por_name
from atlab.walk_s2 import S2PI_TEXT, S2WalkInfo, s2_pi_index

__all__ = ["given_leaf_selections", "indirection_in_force", "leaf_index_fields",
           "leaf_selections", "s1_leaf_selections", "s2_leaf_selections"]

_PI_TEXT = LAYOUTS["PIR_EL1"][0].values
_PO_TEXT = LAYOUTS["POR_EL1"][0].values

#: The leaf kinds of a trace step (``WalkStep.kind``).
LEAF_KINDS = ("page", "block")


def _entry(reg: str, index: int, value: int, meaning: str, what: str, width: int = 4) -> str:
    lo = 4 * index
    return (f"{what} {index:#0{width + 2}b} → {reg}[{lo + 3}:{lo}] = {value:#06b} "
            f"({meaning})")


def s1_leaf_selections(desc: int, wi: S1WalkInfo) -> list[tuple[str, str]]:
    """(name, text) for each register entry a stage 1 leaf selects under ``wi``:
    ``AArch64.S1ApplyOutputPerms()`` (PIIndex, POIndex), ``AArch64.MAIRAttr()`` (AttrIndx)."""
    out: list[tuple[str, str]] = []
    if wi.pie:
        idx = pi_index(desc)
        ppi = wi.pir >> 4 * idx & 0xF
        out.append(("PIIndex", _entry(pir_name(wi.regime), idx, ppi, _PI_TEXT[ppi], "PIIndex")))
        if wi.regime.has_unprivileged:
            upi = wi.pire0 >> 4 * idx & 0xF
            reg = "PIRE0 (0 with NV1)" if wi.nv1 else pire0_name(wi.regime)
            out.append(("PIRE0", _entry(reg, idx, upi, _PI_TEXT[upi], "PIIndex")))
        ndirty = desc >> 7 & 1
        out.append(("nDirty", f"nDirty {ndirty} " + (
            "(clean: a write needs hardware dirty state)" if ndirty else "(dirty: writable)")))
    if wi.poe or wi.e0poe:
        po = desc >> 60 & 7
        if wi.poe:
            v = wi.por >> 4 * po & 0xF
            out.append(("POIndex", _entry(por_name(wi.regime), po, v, _PO_TEXT.get(v, "reserved"),
                                          "POIndex", 3)))
        if wi.e0poe:
            v = wi.por_el0 >> 4 * po & 0xF
            out.append(("POIndex EL0", _entry("POR_EL0", po, v, _PO_TEXT.get(v, "reserved"),
                                              "POIndex", 3)))
    idx = wi.attr_index(desc)
    suffix = wi.regime.suffix
    reg = f"MAIR2_{suffix}.Attr{idx - 8}" if idx >= 8 else f"MAIR_{suffix}.Attr{idx}"
    attr = mair_attr(wi.mair, idx)
    out.append(("AttrIndx", f"AttrIndx {idx:#0{6 if wi.aie else 5}b} → {reg} = {attr:#04x} "
                            f"({decode_mair_attr(attr)})"))
    return out


def s2_leaf_selections(desc: int, wi: S2WalkInfo) -> list[tuple[str, str]]:
    """(name, text) for the S2PIR_EL2 entry a stage 2 leaf selects with FEAT_S2PIE
    (``AArch64.S2IndirectBasePermissions()``); empty without S2PIE."""
    if not wi.s2pie:
        return []
    idx = s2_pi_index(desc)
    v = wi.s2pir >> 4 * idx & 0xF
    return [("PIIndex", _entry("S2PIR_EL2", idx, v, S2PI_TEXT[v], "PIIndex")),
            ("Dirty", f"Dirty {desc >> 7 & 1}")]


def given_leaf_selections(desc: int, *, stage: int, regime: Regime, pie: bool = False,
                          poe: bool = False, aie: bool = False,
                          regs: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """For a decoder that has register values but no walk inputs (``atlab decode desc``):
    (name, text) for each entry of a register in ``regs`` that the leaf ``desc`` selects
    under the controls given, as :func:`s1_leaf_selections`/:func:`s2_leaf_selections` spell
    them.  ``regs`` holds the registers of ``regime`` (PIR_ELx, PIRE0_ELx, POR_ELx, POR_EL0,
    MAIR_ELx, MAIR2_ELx; S2PIR_EL2 at stage 2); an entry is given only for those present.

    >>> desc = 0x4000_0000 | 1 << 53 | 1 << 6 | 1 << 10 | 3  # PIIndex 0b0101
    >>> given_leaf_selections(desc, stage=1, regime=Regime.EL10, pie=True,
    ...                       regs={"PIR_EL1": 0x0050_0000})
    [('PIIndex', 'PIIndex 0b0101 → PIR_EL1[23:20] = 0b0101 (RW)')]
    """
    regs = regs or {}
    out: list[tuple[str, str]] = []
    if stage == 2:
        if pie and "S2PIR_EL2" in regs:
            idx = s2_pi_index(desc)
            v = regs["S2PIR_EL2"] >> 4 * idx & 0xF
            out.append(("PIIndex", _entry("S2PIR_EL2", idx, v, S2PI_TEXT[v], "PIIndex")))
        return out
    if pie:
        idx = pi_index(desc)
        for name in (pir_name(regime), pire0_name(regime)):
            if name in regs:
                v = regs[name] >> 4 * idx & 0xF
                out.append(("PIIndex" if name.startswith("PIR_") else "PIRE0",
                            _entry(name, idx, v, _PI_TEXT[v], "PIIndex")))
    if poe:
        po = desc >> 60 & 7
        for name in (por_name(regime), "POR_EL0"):
            if name in regs:
                v = regs[name] >> 4 * po & 0xF
                out.append(("POIndex" if name != "POR_EL0" else "POIndex EL0",
                            _entry(name, po, v, _PO_TEXT.get(v, "reserved"), "POIndex", 3)))
    idx = (desc >> 59 & 1) << 3 | (desc >> 2 & 7) if aie else desc >> 2 & 7
    suffix = regime.suffix
    reg = f"MAIR2_{suffix}" if idx >= 8 else f"MAIR_{suffix}"
    if reg in regs:
        attr = mair_attr(regs[reg], idx & 7)
        out.append(("AttrIndx", f"AttrIndx {idx:#0{6 if aie else 5}b} → {reg}.Attr{idx & 7} = "
                                f"{attr:#04x} ({decode_mair_attr(attr)})"))
    return out


def leaf_selections(step: WalkStep) -> list[tuple[str, str]]:
    """What a trace step's leaf selects (:func:`s1_leaf_selections`,
    :func:`s2_leaf_selections`); empty for a table, a fault or a step recorded without its
    walk inputs."""
    if step.kind not in LEAF_KINDS or step.is_write:
        return []
    if isinstance(step.decoder, S1WalkInfo):
        return s1_leaf_selections(step.raw, step.decoder)
    if isinstance(step.decoder, S2WalkInfo):
        return s2_leaf_selections(step.raw, step.decoder)
    return []


def indirection_in_force(step: WalkStep) -> bool:
    """Whether the walk of ``step`` reads its leaves through PIE, POE, AIE (stage 1) or S2PIE
    (stage 2): then the leaf's bits select register entries beyond MAIR_ELx."""
    wi = step.decoder
    if isinstance(wi, S1WalkInfo):
        return wi.pie or wi.poe or wi.e0poe or wi.aie
    if isinstance(wi, S2WalkInfo):
        return wi.s2pie
    return False


def leaf_index_fields(desc: int, *, stage: int = 1, pie: bool = False, aie: bool = False,
                      poe: bool = False) -> dict[str, int]:
    """The index fields of a leaf descriptor as the given controls read them (for a decoder
    that has no walk inputs): PIIndex and nDirty (Dirty at stage 2) with PIE/S2PIE, POIndex
    (bits [62:60]) with POE, AttrIndx with AttrIndx[3] = bit 59 with AIE (stage 1)."""
    out: dict[str, int] = {}
    if pie:
        out["PIIndex"] = pi_index(desc) if stage == 1 else s2_pi_index(desc)
        out["nDirty" if stage == 1 else "Dirty"] = desc >> 7 & 1
    if poe and stage == 1:
        out["POIndex"] = desc >> 60 & 7
    if aie and stage == 1:
        out["AttrIndx"] = (desc >> 59 & 1) << 3 | (desc >> 2 & 7)
    return out
