"""``python -m tools.kvm build [--kernel-src X]`` builds kvm-at (KVM's AT emulation);
``python -m tools.kvm run FILE [--mode fails|hardware]`` runs an atlab NV scenario file (the
format of ``atlab nv run``) through it and prints, per op, what KVM writes to the guest's
PAR_EL1 or what it does instead.  See tools/kvm/README.md."""

from __future__ import annotations

import argparse
import sys

from atlab.errors import AtlabError
from tools.kvm import harness


def _answer_fail(req: harness.HwAtRequest) -> int | None:
    """Hardware mode without a model of the hardware: every hardware AT reports F=1."""
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.kvm", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_build = sub.add_parser("build", help="build build/kvm/kvm-at from a kernel tree")
    p_build.add_argument("--kernel-src", default=None,
                         help="kernel tree: a directory or a .tar.xz (default $KERNEL_SRC, "
                              f"else {harness.DEFAULT_KERNEL_SRC})")
    p_run = sub.add_parser("run", help="run an atlab NV scenario file through KVM's at.c")
    p_run.add_argument("file")
    p_run.add_argument("--mode", choices=("fails", "hardware"), default="fails",
                       help="fails: the hardware fast path fails (software walk); hardware: "
                            "the fast path's hardware ATs are answered F=1 here")
    p_run.add_argument("--kernel-src", default=None)
    p_run.add_argument("--input", action="store_true",
                       help="print the kvm-at input instead of running it")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "build":
            path = harness.build(args.kernel_src)
            print(f"{path} (Linux {harness.kernel_version(args.kernel_src)})")
            return 0
        from atlab.nv.model import load_nv_scenarios

        scns = load_nv_scenarios(args.file)
        if args.input:
            for scn in scns:
                sys.stdout.write(harness.to_kvm_input(scn))
            return 0
        harness.build(args.kernel_src)
        runnable = []
        for scn in scns:
            try:
                harness.to_kvm_input(scn)
                runnable.append(scn)
            except AtlabError as exc:
                print(f"{scn.name}: skipped: {exc}")
        per_scn = harness.run_scenarios(runnable, mode=args.mode,
                                        answer=_answer_fail if args.mode == "hardware" else None)
        for scn, results in zip(runnable, per_scn, strict=True):
            kernel = results[0].kernel if results else harness.kernel_version(args.kernel_src)
            print(f"{scn.name} (KVM at.c, Linux {kernel}, {args.mode} mode)")
            by_index = dict(zip(harness.kvm_op_indices(scn), results, strict=True))
            for i, spec in enumerate(scn.ops):
                res = by_index.get(i)
                if res is None:
                    print(f"  {i}: AT {spec.op.name} {spec.va:#x}: UNDEFINED at vEL2, "
                          "never trapped to KVM")
                else:
                    print(f"  {i}: {res}")
        return 0
    except AtlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
