"""``python -m tools.difftest [--seed S ...] [--count N] [--tags T ...] [--record-corpus PATH]
[--replay PATH] [--coverage [--coverage-html]] [--tlbi]``.

- default: generate ``--count`` scenarios per seed, run them through QEMU and atlab, compare
  (a summary table by tag; shrunk reproducers in ``artifacts/difftest/``).  Scenarios tagged
  ``atlab-only:*`` (features QEMU always has switched off, reserved encodings atlab refuses,
  FEAT_ATS1A which QEMU lacks) are not sent to QEMU; they are counted apart.
- ``--record-corpus PATH``: write the scenarios with QEMU's answers (the committed corpus).
- ``--replay PATH``: compare atlab with a recorded corpus (no QEMU needed).
- ``--kvm``: atlab.nv's model of KVM against KVM's own AT emulation (at.c built in userspace
  from a kernel tree, :mod:`tools.kvm`; ``KERNEL_SRC`` picks the tree) on generated NV
  scenarios, and KVM against the architecture (:mod:`tools.difftest.kvm`); with
  ``--record-corpus``/``--replay`` the KVM corpus.
- ``--tlbi``: the TLBI scenarios instead (:mod:`tools.difftest.tlbi`): which TLB maintenance
  instructions trap, are UNDEFINED or execute under generated HCR_EL2 values.
- ``--coverage``: atlab only (no QEMU needed): run the generated scenarios under coverage.py
  (trace on and off) as both QEMU profiles get them (QEMU 10, and QEMU 11's TCR2/PIE/AIE/
  FEAT_ATS1A registers and ops) plus FEAT_S1POE/S2POE variants (atlab-only: no QEMU has
  them), and print lines/branches reached per walker file, the unreached lines
  with the reason, and a per-tag table of the lines each tag reaches and the lines only that
  tag reaches; ``--coverage-html`` also writes ``artifacts/difftest/coverage/index.html``
  (:mod:`tools.difftest.covreport`).  Exit status 1 when a line is unreached without a
  documented reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tools.difftest.compare import (
    compare,
    compare_versions,
    record,
    replay,
    run_model,
    run_qemu,
)
from tools.difftest.covreport import HTML_DIR, measure
from tools.difftest.generator import generate, is_atlab_only, qemu11_profile
from tools.difftest.tlbi import compare_tlbi, generate_tlbi


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.difftest",
                                description="atlab against QEMU -cpu max on generated scenarios")
    p.add_argument("--seed", type=int, nargs="+", default=[1], help="seeds (default 1)")
    p.add_argument("--count", type=int, default=2000, help="scenarios per seed")
    p.add_argument("--tags", nargs="+", default=[],
                   help="keep only scenarios carrying one of these tags")
    p.add_argument("--record-corpus", type=Path, metavar="PATH",
                   help="write the scenarios with QEMU's answers as expectations")
    p.add_argument("--replay", type=Path, metavar="PATH",
                   help="compare atlab with a recorded corpus (no QEMU needed)")
    p.add_argument("--no-shrink", action="store_true", help="write unshrunk reproducers")
    p.add_argument("--all-tags", action="store_true", help="print every tag row")
    p.add_argument("--coverage", action="store_true",
                   help="atlab only: walker line/branch coverage by tag (no QEMU), over the "
                        "QEMU 10 and QEMU 11 profiles and FEAT_S1POE/S2POE variants")
    p.add_argument("--coverage-html", action="store_true",
                   help=f"with --coverage: also write an HTML report to {HTML_DIR}/")
    p.add_argument("--kvm", action="store_true",
                   help="compare atlab.nv's KVM model with KVM's at.c built in userspace")
    p.add_argument("--features", choices=("max", "nv"), default="max",
                   help="with --kvm: the generator's PE (max) or the features KVM 6.12 "
                        "advertises to a guest hypervisor (nv)")
    p.add_argument("--fast-path", action="store_true",
                   help="with --kvm: KVM's hardware fast path runs too (the harness's hardware "
                        "mode, its ATs answered by atlab's walker); scenarios get a partial "
                        "shadow stage 2")
    p.add_argument("--qemu", choices=("10", "11"), default=None,
                   help="the QEMU to compare with: 10 (the system's, default) or 11 (QEMU "
                        "11.1 in the Debian 13 chroot of tools/install-system-deps.sh; the "
                        "generator then targets its PE: FEAT_ATS1A, TCR2, S1PIE, S2PIE, AIE). "
                        "With --replay: also run the corpus on that QEMU and compare it with "
                        "the recorded answers")
    p.add_argument("--tlbi", action="store_true",
                   help="compare TLBI traps/UNDEFINED/execution instead of AT (QEMU needed)")
    args = p.parse_args(argv)

    if args.kvm:
        return _main_kvm(args)

    if args.tlbi:
        bad = 0
        for seed in args.seed:
            rep = compare_tlbi(generate_tlbi(seed, args.count))
            print(f"seed {seed}: {rep.summary()}")
            for scn, i, m, q in rep.mismatches[:20]:
                print(f"MISMATCH {scn['name']} el={scn['el']} HCR_EL2={scn['sysregs']['HCR_EL2']}"
                      f" {scn['ops'][i]['op']} Xt={scn['ops'][i]['va']}: atlab {m} / QEMU {q}")
            bad += len(rep.mismatches)
        return 1 if bad else 0

    if args.coverage:
        cov = measure(args.seed, args.count,
                      html=HTML_DIR if args.coverage_html else None)
        print(cov.text())
        if args.coverage_html:
            print(f"HTML report: {HTML_DIR}/index.html")
        return 1 if cov.unexplained() or cov.differences else 0

    if args.replay is not None:
        scns = json.loads(args.replay.read_text())
        t0 = time.monotonic()
        rep = replay(scns)
        print(rep.table(only_interesting=not args.all_tags))
        print(f"replay {args.replay}: {rep.summary()} ({time.monotonic() - t0:.1f} s)")
        for scn, i, m, q in rep.mismatches[:20]:
            print(f"MISMATCH {scn['name']} op {i}: atlab {m} / recorded {q}")
        bad = len(rep.mismatches)
        if args.qemu is not None:
            t0 = time.monotonic()
            live = run_qemu(scns, args.qemu)
            vrep = compare_versions(scns, live)
            print(f"QEMU {args.qemu} on {args.replay}: {vrep.summary()} "
                  f"({time.monotonic() - t0:.1f} s)")
            for scn, i, q10, q in vrep.unexplained[:20]:
                print(f"CHANGED {scn['name']} op {i} ({scn['ops'][i]['op']}): recorded {q10} "
                      f"/ QEMU {args.qemu} {q}")
            bad += len(vrep.unexplained)
        return 1 if bad else 0

    bad = 0
    for seed in args.seed:
        t0 = time.monotonic()
        scns = generate(seed, args.count)
        if args.qemu == "11":
            scns = [qemu11_profile(s) for s in scns]
        if args.tags:
            scns = [s for s in scns if set(args.tags) & set(s["tags"])]
        if args.record_corpus is not None:
            scns = [s for s in scns if not is_atlab_only(s)]
            qemu = run_qemu(scns, args.qemu or "10")
            model = [run_model(s) for s in scns]
            corpus, skipped = record(scns, qemu, model)
            path = args.record_corpus
            if len(args.seed) > 1:
                path = path.with_name(f"{path.stem}-seed{seed}{path.suffix}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(corpus, separators=(",", ":")) + "\n")
            n_ops = sum(len(s["ops"]) for s in corpus)
            print(f"seed {seed}: wrote {len(corpus)} scenarios ({n_ops} ops) to {path}; "
                  f"{skipped} left out (QEMU crash or known deviation)")
            continue
        rep = compare(scns, shrink_mismatches=not args.no_shrink,
                      qemu_version=args.qemu or "10")
        print(rep.table(only_interesting=not args.all_tags))
        print(f"seed {seed}: {rep.summary()} ({time.monotonic() - t0:.1f} s: QEMU "
              f"{rep.seconds['qemu']:.1f} s, atlab {rep.seconds['atlab']:.1f} s)")
        bad += len(rep.mismatches)
    return 1 if bad else 0


def _main_kvm(args: argparse.Namespace) -> int:
    from tools.difftest.kvm import compare_kvm, generate_nv, load_corpus, record_kvm_corpus

    if args.replay is not None:
        nvs, answers, kernel = load_corpus(args.replay)
        rep = compare_kvm(nvs, kvm=answers, kernel=kernel, shrink=False)
        print(rep.table())
        print(f"replay {args.replay}: {rep.summary()}")
        return 1 if rep.mismatches or rep.unexplained else 0
    from tools.kvm.harness import build, kernel_version

    binary = build()
    kernel = kernel_version()
    bad = 0
    total = None
    for seed in args.seed:
        t0 = time.monotonic()
        nvs = generate_nv(seed, args.count, features=args.features, shadow=args.fast_path)
        if args.tags:
            nvs = [s for s in nvs if set(args.tags) & set(s["tags"])]
        if args.record_corpus is not None:
            path = args.record_corpus
            if len(args.seed) > 1:
                path = path.with_name(f"{path.stem}-seed{seed}{path.suffix}")
            n = record_kvm_corpus(nvs, path, binary=binary, kernel=kernel)
            print(f"seed {seed}: wrote {len(nvs)} NV scenarios ({n} ops) to {path}")
            continue
        rep = compare_kvm(nvs, binary=binary, kernel=kernel, shrink=not args.no_shrink,
                          fast_path=args.fast_path)
        if rep.hardware is not None:
            for line in rep.hardware.register_mismatches[:10]:
                print(f"REGISTERS {line}")
        print(rep.table())
        for nv, i, m, k in rep.mismatches[:10]:
            print(f"MISMATCH {nv['name']} {nv['ops'][i]}: model {m} / KVM {k}")
        for nv, i, m, a in rep.unexplained[:10]:
            print(f"UNEXPLAINED {nv['name']} {nv['ops'][i]}: KVM {m} / architecture {a}")
        print(f"seed {seed}: {time.monotonic() - t0:.1f} s")
        print(f"seed {seed}: {rep.summary()}")
        bad += rep.unexplained_count()
        total = rep if total is None else total.merged(rep)
    if total is not None and len(args.seed) > 1:
        print(f"all seeds: {total.summary()}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
