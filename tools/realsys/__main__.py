"""``python -m tools.realsys fetch|initrd|boot|snapshot|compare|all``.

- ``fetch [--kernel 6.1|6.12]``: Debian's arm64 kernel and busybox-static into build/realsys;
- ``initrd``: build/realsys/initrd.cpio.gz;
- ``boot [--shell CMD]``: boot to the shell prompt, run CMD, print its output and the boot time;
- ``compare [--snapshot FILE] [--per-range N] [--no-virtualization] [--cpu C] [--append A]``:
  boot, snapshot, compare atlab with QEMU and print the figures (exit 1 on any difference);
- ``all``: fetch + initrd + compare (what ``make realsys`` runs);
- ``kvm``: a KVM guest inside the VHE host; its stage 2 walked with AT S12E1R.
Errors are one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from atlab.errors import AtlabError
from tools.realsys import RealsysError
from tools.realsys.fetch import BUILD, KERNELS, fetch
from tools.realsys.initrd import build_initrd
from tools.realsys.qemu import BootConfig, Guest

INITRD = BUILD / "initrd.cpio.gz"


def _prepare(args: argparse.Namespace) -> tuple[Path, str]:
    got = fetch(args.kernel)
    build_initrd(got.busybox, INITRD)
    return got.kernel, got.kernel_package


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.realsys", description=__doc__.split("\n")[0])
    p.add_argument("cmd", choices=["fetch", "initrd", "boot", "compare", "all", "kvm"])
    p.add_argument("--kernel", choices=list(KERNELS), default="6.1")
    p.add_argument("--no-virtualization", action="store_true",
                   help="-M virt,virtualization=off: Linux at EL1 (EL1&0 tables)")
    p.add_argument("--cpu", default="max", help="QEMU -cpu (e.g. max,lpa2=off)")
    p.add_argument("--append", default="", help="extra kernel command line")
    p.add_argument("--memory", default="256M")
    p.add_argument("--shell", default="uname -a", help="boot: the command to run")
    p.add_argument("--snapshot", type=Path, help="compare: write the snapshot here")
    p.add_argument("--per-range", type=int, default=8,
                   help="compare: random VAs per mapped range (plus both ends and a gap)")
    p.add_argument("--pagemap", type=int, default=32,
                   help="compare: user pages checked against /proc/PID/pagemap")
    args = p.parse_args(argv)
    try:
        if args.cmd == "fetch":
            got = fetch(args.kernel)
            print(f"{got.kernel_package}: {got.kernel}\n{got.busybox_package}: {got.busybox}")
            return 0
        if args.cmd == "initrd":
            got = fetch(args.kernel)
            out = build_initrd(got.busybox, INITRD)
            print(f"{out}: {out.stat().st_size} bytes")
            return 0
        kernel, package = _prepare(args)
        if args.cmd == "kvm":
            from tools.realsys import kvm

            out = args.snapshot or BUILD / "kvm-guest-snapshot.json.gz"
            kreport = kvm.run(kernel, fetch(args.kernel).busybox, snapshot=out)
            print("\n".join(kreport.lines()))
            print(f"snapshot written to {out}")
            return 1 if kreport.differences else 0
        if args.cmd == "boot":
            config = BootConfig(kernel, INITRD, virtualization=not args.no_virtualization,
                                cpu=args.cpu, append=args.append, memory=args.memory)
            with Guest(config) as guest:
                print(guest.shell(args.shell))
                print(f"booted {package} in {guest.boot_seconds:.1f} s")
            return 0
        from tools.realsys.compare import run

        snapshot = args.snapshot or BUILD / f"{package}-snapshot.json.gz"
        report = run(kernel, INITRD, virtualization=not args.no_virtualization, cpu=args.cpu,
                     append=args.append, memory=args.memory, per_range=args.per_range,
                     snapshot=snapshot, pagemap_pages=args.pagemap, kernel_package=package)
        print("\n".join(report.lines()))
        print(f"snapshot written to {snapshot}")
        return 1 if report.differences() or report.pagemap_differences() else 0
    except (RealsysError, AtlabError) as exc:
        print(f"realsys: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
