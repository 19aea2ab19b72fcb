"""``compare``: boot, snapshot, and check atlab's translations against QEMU's own.

For a sample of VAs in every region of the booted kernel's address space (linear map, kernel
image text/rodata/data from /proc/kallsyms, vmalloc and modules, vmemmap, fixmap and PCI I/O)
and of a user process's pages (the ``spin`` loop of the initramfs, from /proc/PID/maps),
atlab's AT S1E2R (or S1E1R without VHE) on the live tables must give the PA that QEMU's HMP
``gva2gpa`` gives (both: or both unmapped).  Debian's kernels have no
``/sys/kernel/debug/kernel_page_tables`` (no CONFIG_PTDUMP_DEBUGFS), so the kernel's own view
compared is: its boot-time W+X verdict (``Checked W+X mappings``, CONFIG_DEBUG_WX) against
atlab's ptdump W+X check, and /proc/PID/pagemap (the kernel's PFN of each user page) against
atlab's PA of the user VAs.
"""

from __future__ import annotations

import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from atlab.gdbstub import GdbStub
from atlab.ptdump import PtDump, ptdump
from atlab.regime import Regime
from atlab.snapshot import Capture, capture, save_snapshot, translate_va
from tools.realsys import RealsysError
from tools.realsys.qemu import QEMU, BootConfig, Guest

U64 = (1 << 64) - 1
SYMBOLS = ("_text", "_stext", "_etext", "__start_rodata", "__end_rodata", "__init_begin",
           "__init_end", "_sdata", "_edata", "__bss_start", "__bss_stop", "_end", "init_task",
           "swapper_pg_dir")


@dataclass
class Check:
    va: int
    region: str
    atlab: int | None
    qemu: int | None
    atlab_fault: str = ""

    @property
    def same(self) -> bool:
        return self.atlab == self.qemu


@dataclass
class Report:
    kernel: str
    machine: str
    boot_seconds: float
    regimes: list[str]
    pages: int
    snapshot_bytes: int
    checks: list[Check] = field(default_factory=list)
    #: (va, the kernel's PA from /proc/PID/pagemap, atlab's PA)
    pagemap: list[tuple[int, int | None, int | None]] = field(default_factory=list)
    wx_atlab: int = 0
    wx_kernel: str = ""
    idle_sp_el0: int | None = None
    init_task: int | None = None
    seconds: float = 0.0
    stopped_el: int = -1

    def differences(self) -> list[Check]:
        return [c for c in self.checks if not c.same]

    def pagemap_differences(self) -> list[tuple[int, int | None, int | None]]:
        return [p for p in self.pagemap if p[1] != p[2]]

    def lines(self) -> list[str]:
        by_region = Counter(c.region for c in self.checks)
        mapped = Counter(c.region for c in self.checks if c.qemu is not None)
        out = [f"kernel {self.kernel} on {self.machine}: booted in {self.boot_seconds:.1f} s",
               f"regimes: {'; '.join(self.regimes)} (CPU stopped at EL{self.stopped_el})",
               f"snapshot: {self.pages} table pages, {self.snapshot_bytes} bytes gzipped",
               f"VAs checked: {len(self.checks)} in {len(by_region)} ranges "
               f"({sum(mapped.values())} mapped, {len(self.checks) - sum(mapped.values())} "
               "unmapped)"]
        for region in sorted(by_region):
            diff = sum(1 for c in self.checks if c.region == region and not c.same)
            out.append(f"  {region:<22} {by_region[region]:>6} VAs, {mapped[region]:>6} mapped, "
                       f"{diff} differences")
        diffs = self.differences()
        out.append(f"differences atlab vs QEMU gva2gpa: {len(diffs)}; unexplained: {len(diffs)}")
        for c in diffs[:10]:
            out.append(f"  DIFF {c.region} VA={c.va:#x} atlab={_h(c.atlab)} ({c.atlab_fault}) "
                       f"qemu={_h(c.qemu)}")
        pmd = self.pagemap_differences()
        out.append(f"user pages compared with /proc/PID/pagemap: {len(self.pagemap)}, "
                   f"differences: {len(pmd)}")
        for va, kpa, apa in pmd[:5]:
            out.append(f"  PAGEMAP DIFF VA={va:#x} kernel={_h(kpa)} atlab={_h(apa)}")
        out.append(f"W+X check (atlab ptdump of the live tables): {self.wx_atlab} W+X ranges; "
                   f"kernel at boot: {self.wx_kernel or '(no line)'}")
        if self.init_task is not None or self.idle_sp_el0 is not None:
            listed = "not listed" if self.init_task is None else f"{self.init_task:#x}"
            out.append(f"init_task: /proc/kallsyms {listed}, SP_EL0 of the idle CPU "
                       f"{_h(self.idle_sp_el0)}")
        out.append(f"compare took {self.seconds:.1f} s")
        return out


def _h(value: int | None) -> str:
    return "unmapped" if value is None else f"{value:#x}"


def kernel_dumps(cap: Capture) -> tuple[PtDump, PtDump]:
    """atlab's ptdump of the captured TTBR0 (the process) and TTBR1 (the kernel) tables, made
    once for the sample, the image bounds and the W+X check."""
    regime = Regime.EL20 if cap.el == 2 and cap.regs.field("HCR_EL2", "E2H") else Regime.EL10
    user, kernel = (ptdump(cap.regs, cap.mem, regime=regime, ttbr=t, features=cap.features)
                    for t in (0, 1))
    return user, kernel


def kernel_symbols(guest: Guest) -> dict[str, int]:
    pat = "|".join(re.escape(s) for s in SYMBOLS)
    text = guest.shell(f"grep -E ' ({pat})$' /proc/kallsyms")
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and re.fullmatch(r"[0-9a-f]{16}", parts[0]):
            out.setdefault(parts[2], int(parts[0], 16))
    return out


def user_maps(guest: Guest, pid: int) -> list[tuple[int, int, str]]:
    out = []
    for line in guest.shell(f"cat /proc/{pid}/maps").splitlines():
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
        if m:
            out.append((int(m.group(1), 16), int(m.group(2), 16),
                        (m.group(4) or "anon").strip() + f" {m.group(3)}"))
    return out


def pagemap(guest: Guest, pid: int, vas: list[int]) -> dict[int, int | None]:
    """The kernel's PA of each user page (/proc/PID/pagemap: bit 63 present, bits 54:0 PFN;
    readable by root); None for a page it says is not present."""
    out: dict[int, int | None] = {}
    for va in vas:
        text = guest.shell(f"dd if=/proc/{pid}/pagemap bs=8 skip={va >> 12} count=1 "
                           "2>/dev/null | od -An -tx8 -v")
        words = text.split()
        if len(words) == 1 and re.fullmatch(r"[0-9a-f]{16}", words[0]):
            entry = int(words[0], 16)
            out[va] = (((entry & ((1 << 55) - 1)) << 12) | (va & 0xFFF)) if entry >> 63 \
                else None
        else:
            raise RealsysError(f"/proc/{pid}/pagemap at {va:#x}: cannot read {text[:60]!r}")
    return out


def image_bounds(kernel: PtDump, symbols: dict[str, int]) -> None:
    """Add ``_text``/``_end`` when /proc/kallsyms lacks them (6.1 lists no data symbols):
    ``_text`` is ``_stext`` rounded down to 64 KiB, ``_end`` the end of the run of mapped
    ranges from ``_stext`` that keep its VA-to-PA offset (kimage_voffset), across holes of
    less than 16 MiB (the freed init sections)."""
    start = symbols.get("_text", symbols.get("_stext"))
    if start is None or "_end" in symbols:
        return
    symbols.setdefault("_text", start & ~0xFFFF)
    ranges = kernel.ranges
    first = next((r for r in ranges if r.start <= start < r.end), None)
    if first is None:
        return
    offset, end = first.oa - first.start, first.end
    for r in ranges:
        if r.start >= end and r.start - end < (16 << 20) and r.oa - r.start == offset:
            end = r.end
    symbols["_end"] = end


def classify(va: int, va_bits: int, symbols: Mapping[str, int], el: int) -> str:
    """The region of the arm64 kernel layout (arch/arm64/include/asm/memory.h) ``va`` is in."""
    if not va >> 63:
        return "user"
    text, end = symbols.get("_text"), symbols.get("_end")
    if text is not None and end is not None and text <= va < end:
        etext = symbols.get("_etext", end)
        if va < etext:
            return "image text"
        if "__init_begin" not in symbols:
            return "image rodata/data"
        if va < symbols["__init_begin"]:
            return "image rodata"
        if "__init_end" not in symbols:
            return "image init/data"
        if va < symbols["__init_end"]:
            return "image init"
        return "image data/bss"
    top = 1 << 64
    page_end = top - (1 << (va_bits - 1))
    if va < page_end:
        return "linear map"
    # SIMPLIFIED: the layout of 4KB-page kernels: modules (128 MiB), vmalloc up to the fixmap
    # and PCI I/O just below vmemmap, vmemmap of the linear map's struct pages (64 B each).
    vmemmap = top - (1 << (va_bits - 6)) if va_bits == 48 else top - (1 << (va_bits - 7))
    if va >= vmemmap:
        return "vmemmap"
    if va >= vmemmap - (64 << 20):
        return "fixmap/PCI I/O"
    if va < page_end + (128 << 20):
        return "modules"
    return "vmalloc"


def sample_vas(dumps: tuple[PtDump, PtDump], symbols: Mapping[str, int],
               maps: list[tuple[int, int, str]], per_range: int, rng: random.Random
               ) -> list[int]:
    """VAs in and around every mapped range of the live tables, symbols of the kernel image
    and the pages of the user process's mappings."""
    vas: set[int] = set()
    for dump in dumps:
        prev_end = None
        for r in dump.ranges:
            n = per_range + min(r.size >> 21, 256)  # more in large ranges (linear map)
            picks = [r.start, r.end - 8, *(rng.randrange(r.start, r.end) for _ in range(n))]
            vas.update(p & ~7 for p in picks)
            if prev_end is not None and prev_end < r.start:  # an unmapped gap
                vas.add(rng.randrange(prev_end, r.start) & ~7)
            prev_end = r.end
    names = sorted(symbols)
    vas.update(symbols[n] for n in names)
    for start, end, _ in maps:
        for page in range(start, end, 0x1000)[:64]:
            vas.add(page + (rng.randrange(0, 0x1000) & ~7))
    return sorted(vas)


def run(kernel: Path, initrd: Path, *, virtualization: bool = True, cpu: str = "max",
        append: str = "", memory: str = "256M", per_range: int = 8, seed: int = 17,
        snapshot: Path | None = None, name: str = "", pagemap_pages: int = 32,
        kernel_package: str = "", record: int = 2000) -> Report:
    t0 = time.monotonic()
    rng = random.Random(seed)
    config = BootConfig(kernel, initrd, virtualization=virtualization, cpu=cpu, memory=memory,
                        append=append)
    machine = ("-M virt,virtualization=" + ("on" if virtualization else "off")
               + f" -cpu {cpu} -m {memory} -smp 1" + (f" -append '{append}'" if append else ""))
    with Guest(config) as guest:
        wx = re.search(r"Checked W\+X mappings: [^\n]*", guest.console)
        symbols = kernel_symbols(guest)
        # Stop 1, the shell waiting for input: the CPU is idle, its current task (SP_EL0 holds
        # `current` in the arm64 kernel) is CPU 0's idle task, init_task.
        with GdbStub(config.gdb_port) as stub:
            idle = stub.registers(["SP_EL0", "cpsr"])
        pid = int(guest.shell("spin & echo $!").split()[-1])
        maps = user_maps(guest, pid)
        time.sleep(0.5)
        # Stop 2, the spin loop running: TTBR0 holds its tables.
        with GdbStub(config.gdb_port) as stub:
            cap = capture(stub, name=name or f"{kernel.name} {machine}")
            dumps = kernel_dumps(cap)
            vas = sample_vas(dumps, symbols, maps, per_range, rng)
            va_bits = 64 - cap.regs.field("TCR_EL2" if cap.el == 2 else "TCR_EL1", "T1SZ")
            image_bounds(dumps[1], symbols)
            checks = []
            # gva2gpa answers with the CPU at the regime's EL and PAN=0 (GdbStub.regime_view).
            with stub.regime_view(cap.el):
                for va in vas:
                    pa, why = translate_va(cap.regs, cap.mem, va, el=cap.el,
                                           features=cap.features)
                    checks.append(Check(va, classify(va, va_bits, symbols, cap.el), pa,
                                        stub.gva2gpa(va), why))
        user_present = [c.va for c in checks if c.region == "user" and c.atlab is not None]
        kernel_view = pagemap(guest, pid, user_present[:pagemap_pages])
        qemu_version = subprocess.run([QEMU, "--version"], capture_output=True, text=True,
                                      check=False).stdout.splitlines()[0]
    wx_atlab = sum(len(d.wx()) for d in dumps)
    meta = cap.doc["meta"]
    assert isinstance(meta, dict)
    step = max(1, len(checks) // record) if record else len(checks) + 1
    meta.update({
        "kernel": kernel_package or kernel.name, "qemu": qemu_version, "machine": machine,
        "symbols": {k: f"{v:#x}" for k, v in sorted(symbols.items())},
        "idle_sp_el0": f"{idle.get('SP_EL0', 0):#x}",
        "user": {"pid": pid, "maps": [[f"{s:#x}", f"{e:#x}", what] for s, e, what in maps]},
        "kernel_wx": wx.group(0) if wx else "",
        "qemu_gva2gpa": [[f"{c.va:#x}", None if c.qemu is None else f"{c.qemu:#x}", c.region]
                         for c in checks[::step]],
        "pagemap": {f"{va:#x}": None if pa is None else f"{pa:#x}"
                    for va, pa in sorted(kernel_view.items())},
    })
    cap.doc["ops"] = [{"op": "S1E2R" if cap.el == 2 else "S1E1R", "va": f"{va:#x}"}
                      for va in sorted({symbols.get("_text", 0), symbols.get("init_task", 0),
                                        idle.get("SP_EL0", 0)} - {0})]
    size = save_snapshot(snapshot, cap.doc) if snapshot is not None else 0
    report = Report(kernel_package or kernel.name, machine, guest.boot_seconds,
                    [str(t) for t in meta["regimes"]], len(cap.mem.pages), size, checks,
                    [(va, kpa, next(c.atlab for c in checks if c.va == va))
                     for va, kpa in sorted(kernel_view.items())],
                    wx_atlab, wx.group(0) if wx else "", idle.get("SP_EL0"),
                    symbols.get("init_task"))
    report.seconds = time.monotonic() - t0
    report.stopped_el = int(str(meta["stopped_at_el"]))
    if not checks:
        raise RealsysError("no VA was compared")
    return report
