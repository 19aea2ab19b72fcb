"""Exceptions an AT instruction takes instead of writing PAR_EL1, with their syndromes.

>>> e = undefined(1)
>>> hex(e.esr), e.target_el
('0x2000000', 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from atlab.faults import Fault, FaultKind

EC_UNKNOWN = 0x00
EC_SYSTEM = 0x18  # trapped MSR, MRS or System instruction
EC_DABT_LOWER = 0x24
EC_DABT_CUR = 0x25

EC_NAMES = {
    EC_UNKNOWN: "unknown reason (UNDEFINED)",
    EC_SYSTEM: "trapped system instruction",
    EC_DABT_LOWER: "data abort, lower EL",
    EC_DABT_CUR: "data abort, same EL",
}


@dataclass(frozen=True, slots=True)
class TakenException:
    """An exception: the EL it is taken to, ESR_ELx (EC, IL=1, ISS), FAR_ELx and HPFAR_EL2."""

    target_el: int
    ec: int
    iss: int
    far: int = 0
    hpfar: int = 0
    reason: str = field(default="", compare=False)
    iss2: int = 0  # ESR_ELx.ISS2, bits [55:32]

    @property
    def esr(self) -> int:
        return (self.iss2 << 32) | (self.ec << 26) | (1 << 25) | self.iss

    def to_dict(self) -> dict[str, object]:
        return {"taken_to_el": self.target_el, "esr": f"0x{self.esr:016x}",
                "far": f"0x{self.far:016x}", "hpfar": f"0x{self.hpfar:016x}",
                "ec": self.ec, "ec_name": EC_NAMES.get(self.ec, "?"), "reason": self.reason}

    def __str__(self) -> str:
        text = (f"exception to EL{self.target_el}: ESR=0x{self.esr:08x} "
                f"({EC_NAMES.get(self.ec, hex(self.ec))})")
        if self.ec in (EC_DABT_LOWER, EC_DABT_CUR):
            text += f" FAR={self.far:#x} HPFAR={self.hpfar:#x}"
        return text


def undefined(target_el: int, reason: str = "") -> TakenException:
    """An UNDEFINED instruction: EC 0x00, taken to the current EL (EL1 with TGE=0)."""
    return TakenException(target_el, EC_UNKNOWN, 0, reason=reason)


def trapped_sys(
    op1: int, crn: int, crm: int, op2: int, rt: int, reason: str = ""
) -> TakenException:
    """A System instruction trapped to EL2 (EC 0x18): ISS = Op0 Op2 Op1 CRn Rt CRm Direction."""
    iss = (1 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1)
    return TakenException(2, EC_SYSTEM, iss, reason=reason)


def s2_abort_on_s1_walk(fault: Fault, va: int, reason: str = "") -> TakenException:
    """The data abort taken to EL2 when an AT executed at EL1 faults at stage 2 during its
    stage 1 walk (``AArch64.AT()``): ISS has DFSC, WnR=1, S1PTW=1 and CM=1 for AT; for a
    Permission fault ISS2 has DirtyBit (bit 5) and Overlay (bit 6) (``AArch64.FaultSyndrome()``:
    iss2<5> = fault.dirtybit, iss2<6> = fault.overlay)."""
    iss = fault.fst | (1 << 6) | (1 << 7) | (1 << 8)
    iss2 = 0
    if fault.kind is FaultKind.PERMISSION:
        iss2 = (int(fault.overlay) << 6) | (int(fault.dirtybit) << 5)
    ipa = fault.ipa if fault.ipa is not None else 0
    return TakenException(2, EC_DABT_LOWER, iss, far=va, hpfar=(ipa >> 12) << 4, reason=reason,
                          iss2=iss2)
