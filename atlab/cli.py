"""The ``atlab`` command line.

``atlab run FILE [--full] [--check]`` runs every AT op of a scenario file;
``atlab decode par|desc|reg ...`` decodes values; ``atlab ptdump FILE [--regime R] [--ttbr N]
[--wx]`` lists the mapped ranges of a scenario's tables; ``atlab tlb run FILE [--check]``
runs a scenario's ``program`` (stores, MSR, TLBI, DSB, ISB and AT through per-PE TLBs);
``atlab snapshot --gdb PORT -o FILE`` snapshots a live QEMU guest's tables
(:mod:`atlab.snapshot`).  Bad
input, usage errors included, gives one line on stderr and exit status 2 (the README's "Input
guarantees"); ``--check`` mismatches give exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from atlab.at import AtResult
from atlab.errors import AtlabError, clip
from atlab.par import Par
from atlab.regime import Regime
from atlab.scenario import _Missing, parse_scenarios, read_file
from atlab.syndrome import EC_SYSTEM
from atlab.sysregs import decode, format_fields, layout, parse_int


def _par_mismatch(expected: int | None, result: AtResult) -> str | None:
    got = result.par
    if expected is None:
        if got is None:
            return None
        return f"expected no PAR (an exception), got {got}"
    if got is None:
        return f"expected {Par(expected)}, got {result.exception or 'no PAR'}"
    if Par(expected).masked() != got.masked():
        return f"expected {Par(expected)}, got {got}"
    return None


def _exc_mismatch(expected: Mapping[str, object], result: AtResult) -> str | None:
    exc = result.exception
    if exc is None:
        return f"expected an exception to EL{expected.get('taken_to_el')}, got {result.par}"
    diffs = []
    for key, got in (("taken_to_el", exc.target_el), ("esr", exc.esr), ("far", exc.far),
                     ("hpfar", exc.hpfar)):
        if key not in expected:
            continue
        want = parse_int(expected[key], what=f"expected_exception.{key}")
        if key == "esr" and exc.ec == EC_SYSTEM:
            want &= ~(0x1F << 5)  # ISS.Rt depends on the register the harness used
            got &= ~(0x1F << 5)
        if want != got:
            diffs.append(f"{key}: expected {want:#x}, got {got:#x}")
    return "; ".join(diffs) if diffs else None


def _where(path: str, index: int | None, name: str) -> str:
    """``FILE: scenario N ('name')`` for messages about one scenario of a file."""
    return f"{path}: " + ("" if index is None else f"scenario {index} ") + f"({clip(name)})"


def cmd_run(args: argparse.Namespace) -> int:
    scenarios, is_list = parse_scenarios(read_file(args.file), source=args.file)
    out: list[list[dict[str, object] | str | None]] = []
    mismatches: list[str] = []  # printed once every scenario ran: an error stays one line
    for n, sc in enumerate(scenarios):
        mem = sc.fresh_memory()
        rows: list[dict[str, object] | str | None] = []
        for i, spec in enumerate(sc.ops):
            try:
                res = sc.run_op(spec, trace=args.full, mem=mem)
            except AtlabError as exc:
                raise AtlabError(f"{_where(args.file, n if is_list else None, sc.name)}: op {i} "
                                 f"({spec.op.name} VA={spec.va:#x}): {exc}") from None
            if args.full:
                rows.append(res.to_dict(full=True))
            else:
                rows.append(None if res.par is None else f"0x{res.par.value:016x}")
            if args.check:
                problem = None
                if spec.expected_exception is not None:
                    problem = _exc_mismatch(spec.expected_exception, res)
                elif not isinstance(spec.expected_par, _Missing):
                    problem = _par_mismatch(spec.expected_par, res)
                if problem:
                    mismatches.append(f"MISMATCH {sc.name}: {spec.op} VA={spec.va:#x}: "
                                      f"{problem}")
        out.append(rows)
    print(json.dumps(out if is_list else out[0], indent=2 if args.full else None))
    if args.check:
        for line in mismatches:
            print(line, file=sys.stderr)
        total = sum(len(sc.ops) for sc in scenarios)
        print(f"checked {total} ops: {len(mismatches)} mismatches", file=sys.stderr)
        return 1 if mismatches else 0
    return 0


def _u64(value: int, what: str) -> int:
    if value >> 64:
        raise AtlabError(f"{what}: {value:#x} does not fit in 64 bits")
    return value


def cmd_decode(args: argparse.Namespace) -> int:
    if args.what == "par":
        value = _u64(parse_int(args.args[0] if args.args else "", what="PAR value"), "PAR value")
        print(Par(value))
        return 0
    if args.what == "reg":
        if len(args.args) != 2:
            raise AtlabError("usage: atlab decode reg NAME VALUE")
        name, raw = args.args
        layout(name)
        value = _u64(parse_int(raw, what=name), name)
        e2h = int(args.e2h)
        print(format_fields(name, value, e2h=e2h, all_fields=True))
        if args.json:
            print(json.dumps(decode(name, value, e2h=e2h)))
        return 0
    from atlab.descriptors import decode_descriptor, parse_granule
    from atlab.explain import given_leaf_selections, leaf_index_fields

    value = parse_int(args.args[0] if args.args else "", what="descriptor")
    regime = Regime[args.regime]
    regs = _leaf_registers(args, regime)
    fields = decode_descriptor(value, level=args.level, granule=parse_granule(args.granule),
                               stage=args.stage, regime=regime, ds=args.ds)
    leaf = fields["kind"] in ("page", "block")
    if leaf:
        # FEAT_S1PIE/S2PIE, S1POE, AIE: the index fields the controls make of the bits
        fields.update(leaf_index_fields(value, stage=args.stage, pie=args.pie, poe=args.poe,
                                        aie=args.aie))
    print(" ".join(f"{k}={v:#x}" if isinstance(v, int) and k in ("OA", "next_table")
                   else f"{k}={v:#06b}" if k == "PIIndex" and isinstance(v, int)
                   else f"{k}={v:#05b}" if k == "POIndex" and isinstance(v, int)
                   else f"{k}={v}" for k, v in fields.items()))
    if leaf:
        for _name, text in given_leaf_selections(value, stage=args.stage, regime=regime,
                                                 pie=args.pie, poe=args.poe, aie=args.aie,
                                                 regs=regs):
            print(text)
    return 0


#: ``atlab decode desc`` register options: (option, the control a leaf needs to select an
#: entry of that register; None: always).
_LEAF_REGISTER_OPTIONS = (("pir", "pie"), ("pire0", "pie"), ("por", "poe"),
                          ("por_el0", "poe"), ("mair", None), ("mair2", "aie"))


def _leaf_registers(args: argparse.Namespace, regime: Regime) -> dict[str, int]:
    """The register values ``atlab decode desc`` was given, by their names in ``regime``;
    one-line errors for an option that cannot apply."""
    from atlab.walk_s1 import pir_name, pire0_name, por_name

    if args.stage == 2:
        for flag, feat in (("poe", "FEAT_S1POE"), ("aie", "FEAT_AIE")):
            if getattr(args, flag):
                raise AtlabError(f"--{flag} reads a stage 1 leaf ({feat}); at stage 2 use "
                                 "--pie (VTCR_EL2.S2PIE) and --pir (S2PIR_EL2)")
    names = {"pir": "S2PIR_EL2" if args.stage == 2 else pir_name(regime),
             "pire0": pire0_name(regime), "por": por_name(regime), "por_el0": "POR_EL0",
             "mair": f"MAIR_{regime.suffix}", "mair2": f"MAIR2_{regime.suffix}"}
    regs: dict[str, int] = {}
    for opt, control in _LEAF_REGISTER_OPTIONS:
        raw = getattr(args, opt)
        if raw is None:
            continue
        flag = "--" + opt.replace("_", "-")
        if args.stage == 2 and opt != "pir":
            raise AtlabError(f"{flag} gives a stage 1 register; a stage 2 leaf reads only "
                             "S2PIR_EL2 (--pir with --pie)")
        if control is not None and not getattr(args, control):
            raise AtlabError(f"{flag} gives {names[opt]}, which a leaf selects from only "
                             f"with --{control}")
        if opt in ("pire0", "por_el0") and not regime.has_unprivileged:
            raise AtlabError(f"{flag}: the {regime.name} regime has no EL0 accesses, so no "
                             f"{names[opt]}")
        regs[names[opt]] = _u64(parse_int(raw, what=flag), flag)
    return regs


def cmd_nv_run(args: argparse.Namespace) -> int:
    from atlab.nv import KvmBehaviour, emulate_at, load_nv_scenarios

    scenarios = load_nv_scenarios(args.file)
    out = []
    for n, sc in enumerate(scenarios):
        where = _where(args.file, n if len(scenarios) > 1 else None, sc.name)
        try:
            system = sc.system()
        except AtlabError as exc:
            raise AtlabError(f"{where}: {exc}") from None
        kvm = (KvmBehaviour.kvm(fast_path=not args.no_fast_path)
               if (sc.kvm_behaviour or args.kvm) else None)
        rows = []
        for i, spec in enumerate(sc.ops):
            try:
                rows.append(emulate_at(system, spec.op, spec.va, kvm=kvm, pan=spec.pan)
                            .to_dict(full=args.full))
            except AtlabError as exc:
                raise AtlabError(f"{where}: op {i} ({spec.op.name} VA={spec.va:#x}): {exc}"
                                 ) from None
        out.append(rows)
    # One scenario prints its rows; a list (also an empty one) prints a list of them.
    print(json.dumps(out[0] if len(out) == 1 else out, indent=2 if args.full else None))
    return 0


def cmd_tlb_run(args: argparse.Namespace) -> int:
    from atlab.pe import load_tlb_programs

    mismatches: list[str] = []  # printed once every program ran: an error stays one line
    out = []
    programs = load_tlb_programs(args.file)
    for n, prog in enumerate(programs):
        try:
            machine, problems = prog.run()
        except AtlabError as exc:
            where = _where(args.file, n if len(programs) > 1 else None, prog.scenario.name)
            raise AtlabError(f"{where}: {exc}") from None
        if args.json:
            out.append([{"pe": e.pe, "insn": e.text, "note": e.note,
                         "par": None if e.lookup is None or e.lookup.par is None
                         else f"0x{e.lookup.par.value:016x}",
                         "hit": None if e.lookup is None else e.lookup.hit}
                        for e in machine.history])
        else:
            if n:
                print()
            print(f"# {prog.scenario.name}")
            print(machine)
            for pe, tlb in enumerate(machine.tlbs):
                print(f"PE{pe} {tlb}")
        mismatches += [f"MISMATCH {prog.scenario.name}: {problem}" for problem in problems]
    if args.json:
        print(json.dumps(out[0] if len(out) == 1 else out))
    if args.check:  # without --check the expectations are not compared
        for line in mismatches:
            print(line, file=sys.stderr)
        print(f"checked: {len(mismatches)} mismatches", file=sys.stderr)
        return 1 if mismatches else 0
    return 0


def cmd_ptdump(args: argparse.Namespace) -> int:
    from atlab.ptdump import MAX_DESCRIPTORS, ptdump, ptdump_s2

    scenarios, is_list = parse_scenarios(read_file(args.file), source=args.file)
    indexed = list(enumerate(scenarios))
    if args.scenario is not None:
        indexed = [(n, sc) for n, sc in indexed if sc.name == args.scenario]
        if not indexed:
            raise AtlabError(f"{args.file}: no scenario named {clip(args.scenario)}")
    wx_found = 0
    budget = MAX_DESCRIPTORS  # for the whole file: a dump of many scenarios is bounded too
    for k, (n, sc) in enumerate(indexed):
        mem = sc.fresh_memory()
        try:
            if args.regime == "S2":
                dump = ptdump_s2(sc.regs, mem, features=sc.features, max_descriptors=budget)
            else:
                dump = ptdump(sc.regs, mem, regime=Regime[args.regime], ttbr=args.ttbr,
                              features=sc.features, max_descriptors=budget)
            budget -= dump.read
        except AtlabError as exc:
            raise AtlabError(f"{_where(args.file, n if is_list else None, sc.name)}: {exc}"
                             ) from None
        if k:
            print()
        print(f"# {sc.name}")
        print(dump)
        if args.wx:
            bad = dump.wx()
            wx_found += len(bad)
            print(f"W+X check: {len(bad)} writable and executable range(s)"
                  + "".join(f"\n  W+X {r.start:#x}-{r.end:#x} ({r.rights})" for r in bad))
    return 1 if args.wx and wx_found else 0


def _gdb_address(text: str) -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` of a QEMU gdbstub."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise AtlabError(f"--gdb {clip(text)}: expected PORT or HOST:PORT (e.g. 1234)")
    if host and not all(c.isalnum() or c in ".-_[]:" for c in host):
        raise AtlabError(f"--gdb {clip(text)}: {clip(host)} is not a host name")
    return host or "127.0.0.1", int(port)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from atlab.gdbstub import GdbStub
    from atlab.snapshot import capture, save_snapshot

    host, port = _gdb_address(args.gdb)
    vas = [_u64(parse_int(v, what="--va"), "--va") for v in args.va]
    with GdbStub(port, host=host) as stub:
        cap = capture(stub, name=args.name or f"snapshot of {host}:{port}")
        op = "S1E2R" if cap.el == 2 else "S1E1R"
        cap.doc["ops"] = [{"op": op, "va": f"{va:#x}"} for va in vas]
        answers = []
        with stub.regime_view(cap.el):
            for va in vas:
                pa = stub.gva2gpa(va)
                answers.append([f"{va:#x}", None if pa is None else f"{pa:#x}", "--va"])
        meta = cap.doc["meta"]
        assert isinstance(meta, dict)
        meta["qemu_gva2gpa"] = answers
    size = save_snapshot(args.output, cap.doc)
    regimes = meta.get("regimes", [])
    print(f"{args.output}: {len(cap.mem.pages)} table pages, {size} bytes; EL{cap.el}; "
          + "; ".join(str(r) for r in regimes if isinstance(regimes, list)))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error: ``atlab: error: ... (try 'atlab run --help')``,
    exit status 2, like every other bad input (the README's "Input guarantees")."""

    def error(self, message: str) -> NoReturn:
        msg = " ".join(message.split())
        self.exit(2, f"atlab: error: {msg} (try '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="atlab", description="AArch64 address translation kit")
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the AT ops of a scenario file (JSON or YAML)")
    run.add_argument("file")
    run.add_argument("--full", action="store_true",
                     help="decoded fields, exception details and the walk trace")
    run.add_argument("--check", action="store_true",
                     help="compare with expected_par/expected_exception; exit 1 on mismatch")
    run.set_defaults(func=cmd_run)
    dec = sub.add_parser("decode", help="decode a PAR, a descriptor or a register value")
    dec.add_argument("what", choices=["par", "desc", "reg"])
    dec.add_argument("args", nargs="*", help="VALUE (par, desc) or NAME VALUE (reg)")
    dec.add_argument("--level", type=int, default=3, help="descriptor level (desc)")
    dec.add_argument("--granule", default="4K", help="4K, 16K or 64K (desc)")
    dec.add_argument("--stage", type=int, choices=[1, 2], default=1, help="stage (desc)")
    dec.add_argument("--regime", choices=[r.name for r in Regime], default="EL10")
    dec.add_argument("--ds", action="store_true", help="TCR_ELx.DS=1 (desc)")
    dec.add_argument("--pie", action="store_true",
                     help="TCR2_ELx.PIE=1 (VTCR_EL2.S2PIE=1 with --stage 2): print the leaf's "
                          "PIIndex (desc)")
    dec.add_argument("--poe", action="store_true",
                     help="TCR2_ELx.POE/E0POE=1: print the leaf's POIndex, bits [62:60] (desc)")
    dec.add_argument("--aie", action="store_true",
                     help="TCR2_ELx.AIE=1: AttrIndx[3] is bit 59 (desc)")
    for opt, what in (("--pir", "PIR_ELx (S2PIR_EL2 with --stage 2), with --pie"),
                      ("--pire0", "PIRE0_ELx, with --pie"),
                      ("--por", "POR_ELx, with --poe"), ("--por-el0", "POR_EL0, with --poe"),
                      ("--mair", "MAIR_ELx"), ("--mair2", "MAIR2_ELx, with --aie")):
        dec.add_argument(opt, metavar="VALUE",
                         help=f"{what}: print the entry the leaf selects (desc)")
    dec.add_argument("--e2h", action="store_true", help="HCR_EL2.E2H=1 layout (TCR_EL2, TCR2_EL2)")
    dec.add_argument("--json", action="store_true", help="also print the fields as JSON (reg)")
    dec.set_defaults(func=cmd_decode)
    pt = sub.add_parser("ptdump", help="the mapped ranges of a scenario's tables, like ptdump")
    pt.add_argument("file")
    pt.add_argument("--regime", choices=[*(r.name for r in Regime), "S2"], default="EL10",
                    help="stage 1 regime, or S2 for the stage 2 tables (default EL10)")
    pt.add_argument("--ttbr", type=int, choices=[0, 1], default=0,
                    help="TTBR0 or TTBR1 range (EL10, EL20)")
    pt.add_argument("--wx", action="store_true",
                    help="check for writable+executable mappings; exit 1 if any")
    pt.add_argument("--scenario", help="only the scenario with this name")
    pt.set_defaults(func=cmd_ptdump)
    snap = sub.add_parser("snapshot", help="snapshot a live QEMU guest's translation registers "
                          "and table pages through its gdbstub (gzipped; loads as a scenario)")
    snap.add_argument("--gdb", required=True, help="the gdbstub: PORT or HOST:PORT "
                      "(QEMU -gdb tcp::PORT); needs gdb-multiarch and pygdbmi")
    snap.add_argument("-o", "--output", required=True, help="the snapshot file (.json.gz)")
    snap.add_argument("--name", help="the scenario name")
    snap.add_argument("--va", action="append", default=[],
                      help="a VA to record as an op, with QEMU's gva2gpa answer (repeatable)")
    snap.set_defaults(func=cmd_snapshot)
    nv = sub.add_parser("nv", help="nested virtualization: emulate AT for a guest hypervisor")
    nv_sub = nv.add_subparsers(dest="nv_cmd", required=True)
    nv_run = nv_sub.add_parser("run", help="run the ops of an NV scenario file")
    nv_run.add_argument("file")
    nv_run.add_argument("--full", action="store_true", help="the narrated trace of each op")
    nv_run.add_argument("--kvm", action="store_true",
                        help="emulate as KVM 6.12's at.c does (atlab.nv.kvm), not as the Arm "
                             "ARM requires")
    nv_run.add_argument("--no-fast-path", action="store_true",
                        help="with --kvm: the hardware fast path fails (at.c's software path)")
    nv_run.set_defaults(func=cmd_nv_run)
    tlb = sub.add_parser("tlb", help="TLBs: run a program of stores, TLBIs, DSB, ISB and ATs")
    tlb_sub = tlb.add_subparsers(dest="tlb_cmd", required=True)
    tlb_run = tlb_sub.add_parser("run", help="run the program of each scenario in a file")
    tlb_run.add_argument("file")
    tlb_run.add_argument("--json", action="store_true", help="one JSON record per instruction")
    tlb_run.add_argument("--check", action="store_true",
                         help="compare with expected_par/expected_hit; exit 1 on mismatch")
    tlb_run.set_defaults(func=cmd_tlb_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except AtlabError as exc:
        print(f"atlab: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:  # a last resort: the inputs are capped well below this
        print("atlab: error: out of memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `atlab run --full f.json | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
