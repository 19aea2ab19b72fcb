"""Exercise 10: build tables that give a required PAR."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.at import run_at
from atlab.bits import bits
from atlab.checks._helpers import _RW, _par_text, _Tables
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.faults import Fault, FaultKind
from atlab.granule import Granule
from atlab.memory import PhysMem
from atlab.par import Par
from atlab.regime import AtOp
from atlab.sysregs import SysRegs, encode

#: The registers of the "build tables" exercise: EL1&0, 4KB granule, T0SZ=25 (39-bit VA,
#: start level 1), TTBR1 walks disabled, 48-bit IPS; MAIR Attr0=Normal WB, Attr1=Normal NC,
#: Attr2=Device-nGnRE.  The op is AT S1E1W executed at EL2.
TABLES_REGS = SysRegs({
    "HCR_EL2": _RW, "SCTLR_EL1": 1, "TTBR0_EL1": 0x4000_0000, "MAIR_EL1": 0x04_44_FF,
    "TCR_EL1": encode("TCR_EL1", T0SZ=25, TG0=0, SH0=3, IRGN0=1, ORGN0=1, EPD1=1, IPS=5),
})
TABLES_OP = AtOp.S1E1W


def _tables_par(mem: PhysMem, va: int) -> int:
    res = run_at(TABLES_OP, va, regs=TABLES_REGS, mem=mem, cur_el=2, trace=False)
    assert res.par is not None
    return res.par.masked()


def _ref_tables_cmp(va: int, want: Par) -> int:
    return want.masked()


def _norm_tables(args: tuple[Any, ...], got: Any) -> int:
    if not isinstance(got, PhysMem):
        raise TypeError(f"return a PhysMem, not {type(got).__name__}")
    return _tables_par(got, args[0])


def _tables_cases() -> list[Case]:
    wants = [
        (0x12_3456_7ABC, Par.success(0x8765_4000, 0xFF, 0b11)),
        (0x00_0020_1000, Par.success(0x4100_0000, 0xFF, 0b10)),
        (0x00_4000_0000, Par.success(0x6000_3000, 0xFF, 0b00)),
        (0x7F_0000_1000, Par.success(0x0900_0000, 0x04, 0b10)),
        (0x10_0000_0000, Par.success(0x5000_0000, 0x44, 0b10)),
        (0x01_0000_0000, Par.from_fault(Fault(FaultKind.TRANSLATION, 1))),
        (0x01_0000_0000, Par.from_fault(Fault(FaultKind.TRANSLATION, 2))),
        (0x01_0000_0000, Par.from_fault(Fault(FaultKind.TRANSLATION, 3))),
        (0x02_0020_0000, Par.from_fault(Fault(FaultKind.ACCESS_FLAG, 3))),
        (0x02_0040_0000, Par.from_fault(Fault(FaultKind.ACCESS_FLAG, 2))),
        (0x03_0000_5000, Par.from_fault(Fault(FaultKind.PERMISSION, 3))),
        (0x03_0060_0000, Par.from_fault(Fault(FaultKind.PERMISSION, 2))),
    ]
    out = []
    for va, want in wants:
        group = "faults" if want.f else "translations"
        out.append(_case(f"AT S1E1W VA={va:#x} must give {want}", group, va, want))
    return out


def _tables_model(va: int, want: Par, *, l3_block: bool = False,
                  forget_af: bool = False) -> PhysMem:
    t = _Tables(Granule.K4, 39, TABLES_REGS["TTBR0_EL1"], 0x4010_0000)
    af = 0 if forget_af else 1
    leaf3 = 0b01 if l3_block else 0b11
    if not want.f:
        mair = TABLES_REGS["MAIR_EL1"]
        idx = next(i for i in range(8) if bits(mair, 8 * i + 7, 8 * i) == want.attr)
        t.map(va, 3, want.pa | idx << 2 | want.sh << 8 | af << 10 | leaf3)
        return PhysMem(t.words)
    fault = Fault.from_fst(want.fault_status)
    if fault.kind is FaultKind.TRANSLATION:
        if fault.level > 1:
            t.entry(va, fault.level)  # the tables above exist, the entry stays invalid
    elif fault.kind is FaultKind.ACCESS_FLAG:
        lvl = fault.level
        t.map(va, lvl, 0x7000_0000 | (leaf3 if lvl == 3 else 0b01) | 3 << 8)
    else:
        lvl = fault.level
        t.map(va, lvl, 0x7000_0000 | (leaf3 if lvl == 3 else 0b01) | 0b10 << 6 | 3 << 8
              | af << 10)
    return PhysMem(t.words)


def reference_tables_for_par(va: int, want: Par) -> PhysMem:
    """Tables (4KB, levels 1-3) for :data:`TABLES_REGS` whose ``AT S1E1W`` of ``va`` gives
    ``want``: a page, or the leaf or missing entry that faults as ``want`` says."""
    return _tables_model(va, want)


TABLES_FOR_PAR = Exercise(
    "tables_for_par", "Build tables that give a required PAR", _tables_cases, _ref_tables_cmp,
    _par_text, _norm_tables,
    (Mistake("page written with the block encoding", lambda v, w: _tables_model(v, w,
                                                                                l3_block=True),
             "a level 3 page descriptor ends in 0b11; 0b01 at level 3 is reserved (Translation "
             "fault)"),
     Mistake("AF forgotten", lambda v, w: _tables_model(v, w, forget_af=True),
             "TCR_EL1.HA=0: a leaf with AF=0 (bit 10) gives an Access flag fault")),
    "run atlab.run_at(TABLES_OP, va, regs=TABLES_REGS, mem=your_mem, cur_el=2) and read its "
    "trace",
    reference_tables_for_par,
    # most instructive first: a translation first (the tables must walk at all), then the faults
    group_order=(
        "translations",
        "faults",
    ),
)


def check_tables_for_par(fn: Callable[[int, Par], PhysMem], *, quiet: bool = False,
                         file: TextIO | None = None) -> CheckResult:
    """Check ``tables_for_par(va, want) -> PhysMem`` (AT S1E1W with :data:`TABLES_REGS`)."""
    return check(TABLES_FOR_PAR, fn, quiet=quiet, file=file)
