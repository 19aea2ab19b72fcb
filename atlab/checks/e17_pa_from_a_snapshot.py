"""Exercise 17: the PA of a VA (init_task's page) in the snapshot of a real kernel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.bits import bits, mask
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, check
from atlab.memory import PhysMem
from atlab.snapshot import course_snapshot, translate_va
from atlab.sysregs import SysRegs

#: BADDR of a TTBR and the output address of a descriptor, 4KB granule, 48-bit PA.
_ADDR = mask(47, 12)


def reference_snapshot_pa(regs: SysRegs, mem: PhysMem, va: int) -> int | None:
    """The PA ``va`` maps to in the snapshot's EL2&0 tables (atlab's AT S1E2R walk,
    permissions aside), or None when the walk faults."""
    return translate_va(regs, mem, va, el=2)[0]


def _walk(regs: SysRegs, mem: PhysMem, va: int, *, ttbr: Callable[[int], str] | None = None,
          block_offset: int = 0, keep_ttbr_bits: bool = False, offset: bool = True
          ) -> int | None:
    """A 4KB, 48-bit, four-level walk with the knobs a typical mistake turns."""
    if va >> 48 not in (0, 0xFFFF):
        return None
    name = ttbr(va) if ttbr else ("TTBR1_EL2" if bits(va, 55, 55) else "TTBR0_EL2")
    table = regs[name] if keep_ttbr_bits else regs[name] & _ADDR
    for level in range(4):
        shift = 39 - 9 * level
        desc = mem.read64((table & ~7) + 8 * bits(va, shift + 8, shift))
        if not desc & 1 or (level == 3 and not desc & 2):
            return None
        if level == 3 or not desc & 2:  # a page, or a block
            size = 1 << (block_offset or shift)
            pa = desc & _ADDR & ~((1 << shift) - 1)
            return pa | (va & (size - 1)) if offset else pa
        table = desc & _ADDR
    return None  # pragma: no cover


def _norm(args: tuple[Any, ...], got: Any) -> int | None:
    if got is not None and (not isinstance(got, int) or isinstance(got, bool)
                            or not 0 <= got < 1 << 64):
        raise TypeError(f"return a physical address (an int) or None, not {got!r}")
    return got


def _show(value: Any) -> str:
    return "unmapped (a fault)" if value is None else f"PA {value:#x}"


def _cases() -> list[Case]:
    snap = course_snapshot()
    sc = snap.scenario
    symbols = snap.symbols

    def sym(name: str) -> int:
        return symbols[name]

    def case(label: str, group: str, va: int, hint: str = "") -> Case:
        return Case(f"{label}: VA {va:#x}", group, lambda: (sc.regs, sc.fresh_memory(), va),
                    hint)

    pagemap = snap.meta["pagemap"]
    assert isinstance(pagemap, dict)
    user = [int(str(va), 16) for va in pagemap]
    return [
        case("init_task", "init_task's page", sym("init_task")),
        case("init_task + 0x100", "init_task's page", sym("init_task") + 0x100),
        case("_text", "the kernel image", sym("_text")),
        case("_stext + 0x1234", "the kernel image", sym("_stext") + 0x1234),
        case("_sdata + 0x18", "the kernel image", sym("_sdata") + 0x18),
        case("swapper_pg_dir", "the kernel image", sym("swapper_pg_dir")),
        case("the linear map, a 4KB page", "the linear map", 0xFFFF_0000_0000_0010),
        case("the linear map, in a 2MB block", "blocks", 0xFFFF_0000_0032_3458,
             hint="a level 2 block maps 2MB: keep VA[20:0] as the offset"),
        case("the kernel text, in a 2MB block", "blocks", sym("_stext") + 0x45_6780),
        case("a user page (TTBR0_EL2)", "a user process (TTBR0_EL2)", user[0] + 0x88),
        case("another user page", "a user process (TTBR0_EL2)", user[-1]),
        case("just past the linear map", "unmapped", 0xFFFF_0000_1000_0000),
        case("user VA 0x1000", "unmapped", 0x1000),
        case("bit 47 set, bits 63:48 clear", "unmapped", 0x0000_8000_0000_0000),
    ]


def _ttbr1_always(regs: SysRegs, mem: PhysMem, va: int) -> int | None:
    return _walk(regs, mem, va, ttbr=lambda v: "TTBR1_EL2")


def _el1_registers(regs: SysRegs, mem: PhysMem, va: int) -> int | None:
    return _walk(regs, mem, va, ttbr=lambda v: "TTBR1_EL1" if bits(v, 55, 55) else "TTBR0_EL1")


PA_FROM_SNAPSHOT = Exercise(
    "snapshot_pa", "The PA of a VA in a real kernel's snapshot", _cases,
    reference_snapshot_pa, _show, _norm,
    (Mistake("TTBR1 for every VA", _ttbr1_always,
             "VA bit 55 picks the table: 1 is TTBR1_EL2 (the kernel), 0 is TTBR0_EL2 (the "
             "user process)"),
     Mistake("the EL1 registers", _el1_registers,
             "a VHE host (HCR_EL2.E2H=1) runs in the EL2&0 regime: its tables are in "
             "TTBR0_EL2/TTBR1_EL2; the *_EL1 registers belong to a guest"),
     Mistake("ASID and CnP kept in the table address",
             lambda regs, mem, va: _walk(regs, mem, va, keep_ttbr_bits=True),
             "TTBR1_EL2 holds an ASID in bits 63:48 and CnP in bit 0: the table address is "
             "BADDR, bits 47:1 (here 47:12)"),
     Mistake("block offset at the page size",
             lambda regs, mem, va: _walk(regs, mem, va, block_offset=12),
             "a block maps 2MB (level 2) or 1GB (level 1): keep VA[20:0] or VA[29:0]"),
     Mistake("the page address without the offset",
             lambda regs, mem, va: _walk(regs, mem, va, offset=False),
             "the PA is the output address plus the VA's offset in the page or block")),
    "walk TTBR1_EL2 (bit 55 set) or TTBR0_EL2: L0 to L3, 9 bits each from VA[47:39]; a "
    "block at L1/L2 keeps more of the VA",
    lambda regs, mem, va: _walk(regs, mem, va),
    ("init_task's page", "a user process (TTBR0_EL2)", "blocks"),
)


def check_snapshot_pa(fn: Callable[[SysRegs, PhysMem, int], int | None], *,
                      quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``snapshot_pa(regs, mem, va) -> PA or None`` on the course snapshot."""
    return check(PA_FROM_SNAPSHOT, fn, quiet=quiet, file=file)
