"""One live boot of Debian's arm64 kernel under QEMU (tools/realsys): ``atlab snapshot``
through the gdbstub, then the comparison of atlab's walks with QEMU's ``gva2gpa`` on a small
sample (the large one is ``make realsys``).

Outside CI the tests skip, with the reason, when QEMU, gdb-multiarch or pygdbmi is missing;
with ``CI=true`` they run (and fail if something is missing).  The kernel packages are
downloaded once into build/realsys (``python -m tools.realsys fetch``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlab.cli import main
from atlab.ptdump import ptdump
from atlab.regime import Regime
from atlab.snapshot import load_snapshot

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _missing() -> str | None:
    for tool in ("qemu-system-aarch64", "gdb-multiarch", "apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (tools/install-system-deps.sh)"
    if importlib.util.find_spec("pygdbmi") is None:
        return "pygdbmi is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def kernel() -> tuple[Path, Path, str]:
    reason = _missing()
    if reason and not IN_CI:
        pytest.skip(reason)
    from tools.realsys.fetch import fetch
    from tools.realsys.initrd import build_initrd

    got = fetch("6.1")
    initrd = build_initrd(got.busybox, Path("build/realsys/initrd.cpio.gz"))
    return got.kernel, initrd, got.kernel_package


@pytest.fixture(scope="module")
def guest(kernel: tuple[Path, Path, str]) -> Iterator[object]:
    from tools.realsys.qemu import BootConfig, Guest

    with Guest(BootConfig(kernel[0], kernel[1])) as g:
        yield g


def test_atlab_snapshot_of_a_live_vhe_guest(guest: object, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from tools.realsys.qemu import Guest

    assert isinstance(guest, Guest)
    text = guest.shell("grep -w _stext /proc/kallsyms").split()
    stext = int(text[0], 16)
    out = tmp_path / "live-snapshot.json.gz"
    port = str(guest.config.gdb_port)
    assert main(["snapshot", "--gdb", port, "-o", str(out), "--va", hex(stext)]) == 0
    assert "EL2&0 TTBR1" in capsys.readouterr().out
    snap = load_snapshot(out)
    sc = snap.scenario
    assert sc.el == 2 and sc.regs.field("HCR_EL2", "E2H") == 1
    recorded = snap.meta["qemu_gva2gpa"]
    assert isinstance(recorded, list) and recorded[0][1] is not None
    res = sc.run()[0]
    # atlab's PAR from the snapshot = QEMU's gva2gpa of the live guest
    assert res.par is not None and res.par.pa == int(recorded[0][1], 16) & ~0xFFF
    dump = ptdump(sc.regs, sc.fresh_memory(), regime=Regime.EL20, ttbr=1, features=sc.features)
    assert dump.ranges and dump.wx() == []
    assert guest.shell("echo alive") == "alive"  # the guest runs on after the snapshot


def test_compare_live_with_qemu(kernel: tuple[Path, Path, str], tmp_path: Path) -> None:
    from tools.realsys.compare import run

    report = run(kernel[0], kernel[1], per_range=1, pagemap_pages=8,
                 snapshot=tmp_path / "s.json.gz", kernel_package=kernel[2])
    print("\n".join(report.lines()))
    regions = {c.region for c in report.checks}
    assert {"linear map", "image text", "vmalloc", "vmemmap", "user"} <= regions
    assert len(report.checks) > 300
    assert report.differences() == []
    assert report.pagemap and report.pagemap_differences() == []
    assert report.wx_atlab == 0 and "passed" in report.wx_kernel


def test_kvm_guest_stage2_live(kernel: tuple[Path, Path, str], tmp_path: Path) -> None:
    """Issue 17's stretch: a KVM guest inside the VHE host; AT S12E1R through its stage 2."""
    if shutil.which("aarch64-linux-gnu-gcc") is None and not IN_CI:
        pytest.skip("aarch64-linux-gnu-gcc is not installed (tools/install-system-deps.sh)")
    from tools.realsys import kvm
    from tools.realsys.fetch import fetch

    report = kvm.run(kernel[0], fetch("6.1").busybox, snapshot=tmp_path / "kvm.json.gz",
                     build_dir=tmp_path)
    print("\n".join(report.lines()))
    assert report.checked == 512 and report.mapped >= 33 and report.differences == []
