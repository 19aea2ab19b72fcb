"""PAR_EL1: encoding, decoding and printing (D24.2 PAR_EL1; ``AArch64.EncodePAR()``).

>>> p = Par.success(pa=0x45678abc, attr=0xff, sh=0b11)
>>> hex(p.value)
'0xff00000045678b80'
>>> str(p)
'PAR_EL1=0xff00000045678b80 F=0 PA=0x45678000 ATTR=0xff SH=ISH NS=1'
>>> str(Par(0xb0d))
'PAR_EL1=0x0000000000000b0d F=1 FST=translation L2 S=1 PTW=1'
>>> Par(0x81f).fault_status
15
"""

from __future__ import annotations

from dataclasses import dataclass

from atlab.attrs import SH_NAMES
from atlab.bits import bit, bits, mask
from atlab.faults import Fault, fst_name

#: PAR_EL1.NS is UNKNOWN for a Non-secure translation regime; atlab reports 1 (as QEMU does).
PAR_NS_NONSECURE = 1
#: PAR_EL1 bit 10 of a successful translation is IMPLEMENTATION DEFINED; atlab reports 0.
PAR_IMPDEF_BIT10 = 0
#: PAR_EL1[63:48] of a faulting translation are IMPLEMENTATION DEFINED; atlab reports 0.
PAR_IMPDEF_FAULT_HIGH = 0
#: Bits a comparison with another implementation must ignore on a successful PAR:
#: bit 10 (IMPLEMENTATION DEFINED), bit 11 (RES1 — some implementations, QEMU included,
#: always set it) and NS (UNKNOWN for a Non-secure regime).
PAR_SUCCESS_IMPDEF_MASK = (1 << 11) | (1 << 10) | (1 << 9)
_PA_BITS = mask(55, 12)  # PAR_EL1.PA
_SUCCESS_BITS = (1 << 11) | (PAR_IMPDEF_BIT10 << 10)  # bit 11 is RES1


@dataclass(frozen=True, slots=True)
class Par:
    """A 64-bit PAR_EL1 value with its fields decoded."""

    value: int

    @staticmethod
    def success(pa: int, attr: int, sh: int, ns: int = PAR_NS_NONSECURE) -> Par:
        return Par((attr << 56) | (pa & _PA_BITS) | _SUCCESS_BITS | (ns << 9) | (sh << 7))

    @staticmethod
    def from_fault(fault: Fault) -> Par:
        value = 1 | (fault.fst << 1) | (1 << 11)
        if fault.stage == 2:
            value |= 1 << 9  # S
            if fault.s1ptw:
                value |= 1 << 8  # PTW
        return Par(value)

    @property
    def f(self) -> int:
        return bit(self.value, 0)

    @property
    def pa(self) -> int:
        return self.value & mask(55, 12)

    @property
    def attr(self) -> int:
        return bits(self.value, 63, 56)

    @property
    def sh(self) -> int:
        return bits(self.value, 8, 7)

    @property
    def ns(self) -> int:
        return bit(self.value, 9)

    @property
    def fault_status(self) -> int:
        return bits(self.value, 6, 1)

    @property
    def s(self) -> int:
        return bit(self.value, 9)

    @property
    def ptw(self) -> int:
        return bit(self.value, 8)

    def fields(self) -> dict[str, int]:
        if self.f:
            return {"F": 1, "FST": self.fault_status, "PTW": self.ptw, "S": self.s}
        return {"F": 0, "PA": self.pa, "ATTR": self.attr, "SH": self.sh, "NS": self.ns}

    def masked(self) -> int:
        """The value with the bits two conforming implementations may differ in cleared."""
        if self.f:
            return self.value & ~mask(63, 48)
        return self.value & ~PAR_SUCCESS_IMPDEF_MASK

    def __str__(self) -> str:
        head = f"PAR_EL1=0x{self.value:016x}"
        if self.f:
            return (f"{head} F=1 FST={fst_name(self.fault_status)} S={self.s} PTW={self.ptw}")
        return (f"{head} F=0 PA={self.pa:#x} ATTR={self.attr:#04x} SH={SH_NAMES[self.sh]} "
                f"NS={self.ns}")

    def _repr_html_(self) -> str:
        cells = "".join(f"<td><b>{k}</b>={v:#x}</td>" for k, v in self.fields().items())
        return f"<table><tr><td><code>0x{self.value:016x}</code></td>{cells}</tr></table>"
