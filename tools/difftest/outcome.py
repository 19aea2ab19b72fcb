"""One op's outcome, normalised for comparison with exactly the documented masks."""

from __future__ import annotations

from dataclasses import dataclass

# Successful PAR (F=0): bits 11:10 IMPLEMENTATION DEFINED, bit 9 NS (UNKNOWN for a
# Non-secure regime; QEMU sets it) - atlab.par.PAR_SUCCESS_IMPDEF_MASK.
PAR_SUCCESS_MASK = (1 << 11) | (1 << 10) | (1 << 9)
# Faulting PAR (F=1): bits 63:48 IMPLEMENTATION DEFINED (PAR_EL1, D24.2).
PAR_FAULT_MASK = ((1 << 16) - 1) << 48
EC_SYSTEM = 0x18
ESR_ISS_RT = 0x1F << 5  # EC 0x18: ISS.Rt names the register the harness used


@dataclass(frozen=True, slots=True)
class Outcome:
    """``kind`` is "par", "exc", "crash" or "error" (atlab refused the scenario)."""

    kind: str
    value: int = 0  # PAR
    el: int = 0
    esr: int = 0
    far: int = 0
    hpfar: int = 0
    text: str = ""

    @property
    def crashed(self) -> bool:
        return self.kind == "crash"

    def key(self) -> tuple[object, ...]:
        """What is compared."""
        if self.kind == "par":
            m = PAR_FAULT_MASK if self.value & 1 else PAR_SUCCESS_MASK
            return ("par", self.value & ~m)
        if self.kind == "exc":
            esr = self.esr
            if (esr >> 26) & 0x3F == EC_SYSTEM:
                esr &= ~ESR_ISS_RT
            return ("exc", self.el, esr, self.far, self.hpfar)
        return (self.kind, self.text)

    def __str__(self) -> str:
        if self.kind == "par":
            from atlab import Par

            return str(Par(self.value))
        if self.kind == "exc":
            return (f"exception to EL{self.el} ESR={self.esr:#x} FAR={self.far:#x} "
                    f"HPFAR={self.hpfar:#x}")
        return f"{self.kind}: {self.text}"
