"""``kvm`` (issue 17's stretch): a KVM guest inside the booted VHE host, and its stage 2.

``kvmguest`` (``kvmguest.c``, built with Debian's ``gcc-aarch64-linux-gnu``) creates a VM
with 2 MiB of RAM at IPA 0x80000000 whose one vCPU keeps storing to 32 pages.  QEMU is stopped
(through the gdbstub) until the CPU is in the guest (EL1, HCR_EL2.VM=1): the snapshot then
holds VTTBR_EL2/VTCR_EL2 and the stage 2 tables.  For every page of the guest's RAM, atlab's
``AT S12E1R`` (the guest's stage 1 is off: VA = IPA) must give the PA of QEMU's ``gva2gpa``
(which, with the CPU in the guest, translates through both stages).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from atlab.at import run_at
from atlab.gdbstub import GdbStub
from atlab.ptdump import ptdump_s2
from atlab.regime import AtOp
from atlab.snapshot import Capture, capture, save_snapshot
from tools.realsys import RealsysError
from tools.realsys.qemu import BootConfig, Guest

SOURCE = Path(__file__).with_name("kvmguest.c")
CC = "aarch64-linux-gnu-gcc"
GUEST_BASE = 0x8000_0000
GUEST_SIZE = 2 << 20


def build(out: Path) -> Path:
    if shutil.which(CC) is None:
        raise RealsysError(f"{CC} is not installed (apt-get install gcc-aarch64-linux-gnu)")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([CC, "-static", "-O2", "-Wall", "-o", str(out), str(SOURCE)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RealsysError(f"{CC} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return out


@dataclass
class KvmReport:
    setup: str
    tries: int
    pages: int
    s2_title: str
    s2_ranges: int
    checked: int
    mapped: int
    differences: list[tuple[int, int | None, int | None]]
    seconds: float
    snapshot_bytes: int

    def lines(self) -> list[str]:
        out = [f"KVM guest inside the VHE host: {self.setup}",
               f"stopped in the guest (EL1, HCR_EL2.VM=1) after {self.tries} stop(s)",
               f"stage 2: {self.s2_title}; {self.s2_ranges} mapped IPA ranges; snapshot "
               f"{self.pages} table pages, {self.snapshot_bytes} bytes",
               f"AT S12E1R vs QEMU gva2gpa: {self.checked} guest pages checked "
               f"({self.mapped} mapped), {len(self.differences)} differences"]
        out += [f"  DIFF IPA={va:#x} atlab={a} qemu={q}" for va, a, q in self.differences[:10]]
        out.append(f"took {self.seconds:.1f} s")
        return out


def _stop_in_guest(port: int, tries: int) -> tuple[GdbStub, int]:
    for n in range(1, tries + 1):
        stub = GdbStub(port)
        regs = stub.registers(["cpsr", "HCR_EL2"])
        if (regs.get("cpsr", 0) >> 2) & 3 == 1 and regs.get("HCR_EL2", 0) & 1:
            return stub, n
        stub.close()
        time.sleep(0.05)
    raise RealsysError(f"the CPU was not in the KVM guest at any of {tries} stops")


def run(kernel: Path, busybox: Path, *, snapshot: Path | None = None,
        build_dir: Path = Path("build/realsys")) -> KvmReport:
    from tools.realsys.initrd import build_initrd

    t0 = time.monotonic()
    binary = build(build_dir / "kvmguest")
    initrd = build_initrd(busybox, build_dir / "initrd-kvm.cpio.gz", {"bin/kvmguest": binary})
    with Guest(BootConfig(kernel, initrd)) as guest:
        assert guest.proc is not None and guest.proc.stdin is not None
        start = len(guest.console)
        guest.proc.stdin.write(b"kvmguest &\n")
        guest.proc.stdin.flush()
        end = guest.wait_for("KVMGUEST-RUNNING", 120, what="the KVM guest", since=start)
        stop = guest.wait_for("\n", 10, what="the KVM guest's line", since=end)
        line = guest.console[end:stop].strip()
        time.sleep(0.5)
        stub, tries = _stop_in_guest(guest.config.gdb_port, 50)
        with stub:
            cap: Capture = capture(stub, name="KVM guest in a VHE host (stage 2)")
            diffs = []
            answers: list[list[str | None]] = []
            mapped = 0
            for ipa in range(GUEST_BASE, GUEST_BASE + GUEST_SIZE, 0x1000):
                va = ipa + 0x18
                res = run_at(AtOp.S12E1R, va, regs=cap.regs, mem=cap.mem,
                             features=cap.features, cur_el=2, trace=False)
                ours = None if res.par is None or res.par.f else res.par.pa | (va & 0xFFF)
                qemu = stub.gva2gpa(va)
                mapped += qemu is not None
                answers.append([f"{va:#x}", None if qemu is None else f"{qemu:#x}"])
                if ours != qemu:
                    diffs.append((va, ours, qemu))
    s2 = ptdump_s2(cap.regs, cap.mem, features=cap.features)
    meta = cap.doc["meta"]
    assert isinstance(meta, dict)
    meta.update({"kvmguest": line, "guest_ram": [f"{GUEST_BASE:#x}", f"{GUEST_SIZE:#x}"],
                 "qemu_gva2gpa_s12": answers})
    cap.doc["ops"] = [{"op": "S12E1R", "va": f"{GUEST_BASE + 0x10018:#x}"},
                      {"op": "S12E1R", "va": f"{GUEST_BASE + 0x100018:#x}"}]
    size = save_snapshot(snapshot, cap.doc) if snapshot is not None else 0
    return KvmReport(line.replace("KVMGUEST-RUNNING ", ""), tries, len(cap.mem.pages),
                     s2.title, len(s2.ranges), GUEST_SIZE >> 12, mapped, diffs,
                     time.monotonic() - t0, size)
