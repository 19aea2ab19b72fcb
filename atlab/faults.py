"""Architectural faults as values, and their fault status codes.

A walk never raises for an architectural condition: it returns a :class:`Fault`.

>>> f = Fault(FaultKind.TRANSLATION, level=2, stage=1)
>>> str(f), hex(f.fst)
('translation L2 S1', '0x6')
>>> hex(Fault(FaultKind.ADDRESS_SIZE, level=-1, stage=1).fst)
'0x29'
>>> Fault.from_fst(0x0f, stage=2, s1ptw=True)  # doctest: +NORMALIZE_WHITESPACE
Fault(kind=<FaultKind.PERMISSION: 'permission'>, level=3, stage=2, s1ptw=True, ipa=None,
      overlay=False, dirtybit=False)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from atlab.errors import AtlabError


class FaultKind(enum.Enum):
    """The fault types an AT instruction can report (``EncodeLDFSC()``)."""

    ADDRESS_SIZE = "address size"
    TRANSLATION = "translation"
    ACCESS_FLAG = "access flag"
    PERMISSION = "permission"
    SYNC_EXTERNAL_WALK = "synchronous external abort on walk"


# Long-descriptor fault status codes for levels 0..3 (EncodeLDFSC(); ESR_ELx.DFSC table).
_FST_BASE = {
    FaultKind.ADDRESS_SIZE: 0b000000,
    FaultKind.TRANSLATION: 0b000100,
    FaultKind.ACCESS_FLAG: 0b001000,
    FaultKind.PERMISSION: 0b001100,
    FaultKind.SYNC_EXTERNAL_WALK: 0b010100,
}
# Level -1 (FEAT_LPA2) has its own codes.
_FST_LEVEL_M1 = {
    FaultKind.ADDRESS_SIZE: 0b101001,
    FaultKind.TRANSLATION: 0b101011,
    FaultKind.SYNC_EXTERNAL_WALK: 0b010011,
}
_FROM_FST: dict[int, tuple[FaultKind, int]] = {}
for _k, _b in _FST_BASE.items():
    for _lvl in range(4):
        _FROM_FST[_b + _lvl] = (_k, _lvl)
for _k, _c in _FST_LEVEL_M1.items():
    _FROM_FST[_c] = (_k, -1)


@dataclass(frozen=True, slots=True)
class Fault:
    """A translation fault: its kind, lookup level, stage, and whether it was a stage-2
    fault on a stage-1 table walk (``s1ptw``, reported as PAR_EL1.PTW / ESR ISS.S1PTW).
    ``ipa`` is the faulting IPA of a stage-2 fault (for HPFAR_EL2).  ``overlay`` and
    ``dirtybit`` mark a Permission fault caused by a permission overlay (FEAT_S1POE/S2POE) or by
    a clean page under permission indirection (fault.overlay, fault.dirtybit: ESR_ELx.ISS2
    Overlay and DirtyBit when the fault is taken as an exception)."""

    kind: FaultKind
    level: int
    stage: int = 1
    s1ptw: bool = False
    ipa: int | None = None
    overlay: bool = False
    dirtybit: bool = False

    @property
    def fst(self) -> int:
        """The 6-bit fault status code (PAR_EL1.FST, ESR_ELx.DFSC)."""
        if self.level == -1:
            try:
                return _FST_LEVEL_M1[self.kind]
            except KeyError:
                raise AtlabError(f"{self.kind.value} fault cannot occur at level -1") from None
        return _FST_BASE[self.kind] + self.level

    @staticmethod
    def from_fst(fst: int, *, stage: int = 1, s1ptw: bool = False) -> Fault:
        try:
            kind, level = _FROM_FST[fst]
        except KeyError:
            msg = f"FST {fst:#04x} is not a translation fault code atlab models"
            raise AtlabError(msg) from None
        return Fault(kind, level, stage, s1ptw)

    def __str__(self) -> str:
        text = f"{self.kind.value} L{self.level} S{self.stage}"
        if self.s1ptw:
            text += " on S1 walk"
        if self.overlay:
            text += " (overlay)"
        if self.dirtybit:
            text += " (dirty state)"
        return text


def fst_name(fst: int) -> str:
    """Readable name of a fault status code, e.g. ``translation L2``."""
    if fst in _FROM_FST:
        kind, level = _FROM_FST[fst]
        return f"{kind.value} L{level}"
    return f"FST {fst:#04x}"
