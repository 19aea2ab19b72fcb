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

from collections.abc import Mapping, Sequence

from atlab.attrs import decode_mair_attr, mair_attr
from atlab.descriptors import attr_index, pi_index, po_index
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


def _pi_entry(reg: str, index: int, register: int,
              meanings: Mapping[int, str] | Sequence[str]) -> str:
    """The PIR/PIRE0/S2PIR entry ``index`` of the register value ``register`` selects."""
    value = register >> 4 * index & 0xF
    return _entry(reg, index, value, meanings[value], "PIIndex")


def _po_entry(reg: str, index: int, register: int) -> str:
    """The POR entry POIndex ``index`` of the register value ``register`` selects."""
    value = register >> 4 * index & 0xF
    return _entry(reg, index, value, _PO_TEXT.get(value, "reserved"), "POIndex", 3)


def _attr_entry(index: int, aie: bool, suffix: str, attr: int) -> str:
    """The MAIR_ELx (indices 0-7) or MAIR2_ELx (8-15) attribute AttrIndx ``index`` selects."""
    reg = f"MAIR2_{suffix}.Attr{index - 8}" if index >= 8 else f"MAIR_{suffix}.Attr{index}"
    return (f"AttrIndx {index:#0{6 if aie else 5}b} → {reg} = {attr:#04x} "
            f"({decode_mair_attr(attr)})")


def s1_leaf_selections(desc: int, wi: S1WalkInfo) -> list[tuple[str, str]]:
    """(name, text) for each register entry a stage 1 leaf selects under ``wi``:
    ``AArch64.S1ApplyOutputPerms()`` (PIIndex, POIndex), ``AArch64.MAIRAttr()`` (AttrIndx)."""
    out: list[tuple[str, str]] = []
    if wi.pie:
        idx = pi_index(desc)
        out.append(("PIIndex", _pi_entry(pir_name(wi.regime), idx, wi.pir, _PI_TEXT)))
        if wi.regime.has_unprivileged:
            reg = "PIRE0 (0 with NV1)" if wi.nv1 else pire0_name(wi.regime)
            out.append(("PIRE0", _pi_entry(reg, idx, wi.pire0, _PI_TEXT)))
        ndirty = desc >> 7 & 1
        out.append(("nDirty", f"nDirty {ndirty} " + (
            "(clean: a write needs hardware dirty state)" if ndirty else "(dirty: writable)")))
    if wi.poe:
        out.append(("POIndex", _po_entry(por_name(wi.regime), po_index(desc), wi.por)))
    if wi.e0poe:
        out.append(("POIndex EL0", _po_entry("POR_EL0", po_index(desc), wi.por_el0)))
    idx = wi.attr_index(desc)
    out.append(("AttrIndx", _attr_entry(idx, wi.aie, wi.regime.suffix, mair_attr(wi.mair, idx))))
    return out


def s2_leaf_selections(desc: int, wi: S2WalkInfo) -> list[tuple[str, str]]:
    """(name, text) for the S2PIR_EL2 entry a stage 2 leaf selects with FEAT_S2PIE
    (``AArch64.S2IndirectBasePermissions()``); empty without S2PIE."""
    if not wi.s2pie:
        return []
    return [("PIIndex", _pi_entry("S2PIR_EL2", s2_pi_index(desc), wi.s2pir, S2PI_TEXT)),
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
            out.append(("PIIndex", _pi_entry("S2PIR_EL2", s2_pi_index(desc), regs["S2PIR_EL2"],
                                             S2PI_TEXT)))
        return out
    if pie:
        for key, name in (("PIIndex", pir_name(regime)), ("PIRE0", pire0_name(regime))):
            if name in regs:
                out.append((key, _pi_entry(name, pi_index(desc), regs[name], _PI_TEXT)))
    if poe:
        for key, name in (("POIndex", por_name(regime)), ("POIndex EL0", "POR_EL0")):
            if name in regs:
                out.append((key, _po_entry(name, po_index(desc), regs[name])))
    idx = attr_index(desc, aie=aie)
    reg = f"MAIR2_{regime.suffix}" if idx >= 8 else f"MAIR_{regime.suffix}"
    if reg in regs:
        attr = mair_attr(regs[reg], idx & 7)
        out.append(("AttrIndx", _attr_entry(idx, aie, regime.suffix, attr)))
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
        out["POIndex"] = po_index(desc)
    if aie and stage == 1:
        out["AttrIndx"] = attr_index(desc, aie=True)
    return out
