"""``python -m tools.difftest.kvm_doc [--check] [--record-newer BINARY]``: write
``docs/kvm-vs-arm-arm.md`` from :data:`atlab.nv.kvm.DEVIATIONS` and the committed minimal
reproducers (``tests/data/kvm/reproducers/*.json``, each with the answer KVM 6.12's own at.c
gave), and say for each whether a newer kernel still has it
(``tests/data/kvm/newer.json``: the answers a newer build gave to the same reproducers,
recorded with ``--record-newer build/kvm/kvm-at`` after building that tree).

One section per deviation, written as a candidate upstream report: what KVM does, what the
Arm ARM requires (rule), the reproducer (the guest hypervisor's registers, the words of its
memory the walk reads, the AT), KVM's PAR and the architecture's.  ``--check`` fails when
the committed document is not what the generator writes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from atlab.nv.kvm import DEVIATIONS, Verdict
from tools.difftest.kvm import _fmt, run_atlab

ROOT = Path(__file__).resolve().parents[2]
REPRODUCERS = ROOT / "tests" / "data" / "kvm" / "reproducers"
DOC = ROOT / "docs" / "kvm-vs-arm-arm.md"
NEWER = ROOT / "tests" / "data" / "kvm" / "newer.json"
#: Where each deviation lives in the kernel tree (function names of 6.12).
WHERE = {
    "ptw-on-stage1-fault": "at.c: walk_s1() (fail_s1_walk(..., true, false) on its exits)",
    "no-access-flag-fault": "at.c: walk_s1() / handle_at_slow() (no AF check)",
    "s2-fault-level-is-s1-level": "at.c: walk_s1() ((s2_trans.esr & ~ESR_ELx_FSC_LEVEL) | level)",
    "no-ns-bit": "at.c: compute_par_s1(), compute_par_s12()",
    "s12-no-bit11": "at.c: compute_par_s12()",
    "sctlr-c0-attr-nc": "at.c: compute_par_s1() (\"Force NC for memory if SCTLR_ELx.C is clear\")",
    "oa-48-bits": "at.c: setup_s1_walk()/walk_s1() (GENMASK_ULL(47, ...)); "
                  "kvm_nested.h: ps_to_output_size()",
    "no-52bit-blocks": "at.c: walk_s1() (valid_block)",
    "ds-never-allows-52bit-va": "at.c: setup_s1_walk() (lva &= tcr & TCR_DS)",
    "ds-sh-from-descriptor": "at.c: compute_sh()",
    "no-nv1-descriptors": "at.c: handle_at_slow() (AArch64.S1DirectBasePermissions() part)",
    "s12-e2h0-skips-stage2": "at.c: __kvm_at_s12() (\"E2H=0 or TGE=1\" early return)",
    "va-top-bits-addrsz": "at.c: setup_s1_walk() (goto addrsz)",
    "s2-input-range-unchecked": "nested.c: walk_nested_s2_pgd()",
    "s2-bad-geometry": "nested.c: walk_nested_s2_pgd() / check_base_s2_limits()",
    "s2-block-levels": "nested.c: walk_nested_s2_pgd() (first_block_level)",
    "s1e1a-undefined": "sys_regs.c: sys_insn_descs[] (no AT_S1E1A entry)",
    "e2h-without-vhe": "at.c: compute_translation_regime() (vcpu_el2_e2h_is_set())",
    "vtcr-upper-bits-res0": "nested.c: kvm_init_nv_sysregs() (VTCR_EL2 res0)",
    "s2-vttbr-addrsz-level": "nested.c: walk_nested_s2_pgd() (base_addr check)",
    "sh-reserved-as-nsh": "at.c: compute_sh()",
    "par-sh-osh-rule": "at.c: compute_sh() (MEMATTR_IS_DEVICE || MEMATTR(NC, NC))",
    "contiguous-aligned-oa": "at.c / nested.c: contiguous_bit_shift()",
    "s2-attr-combination": "at.c: compute_par_s12(), s2_memattr_to_attr(), "
                           "combine_s1_s2_attr()",
    "mmu-off-pa-48": "at.c: compute_par_s1() (wr->pa & GENMASK_ULL(47, 12))",
    "no-hardware-af-update": "at.c: walk_s1() (no TCR_ELx.HA handling in 6.12)",
    "no-dirty-state": "at.c: handle_at_slow(); __kvm_at_s12() (no DBM handling)",
    "no-hcr-ptw": "at.c: walk_s1() (only kvm_s2_trans_readable() is checked)",
    "fast-nv1-on-l2-walk": "at.c: __kvm_at_s1e01_fast() (HCR_EL2 = config.hcr & ~TGE | VM)",
    "fast-el2-register-translation": "at.c: __kvm_at_s1e2(); kvm_nested.h: "
                                     "translate_tcr_el2_to_tcr_el1()",
    "fast-folded-vhcr": "vhe/switch.c: __compute_hcr(); at.c: __kvm_at_s1e2()",
    "fast-vtge-ignored": "at.c: __kvm_at_s1e01_fast()",
}


def load_reproducers() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(REPRODUCERS.glob("*.json"))}


def _repro_text(nv: dict[str, Any]) -> list[str]:
    regs = ", ".join(f"{k}={v}" for k, v in sorted(nv["vsysregs"].items())) or "(all zero)"
    out = [f"- L1 (guest hypervisor at vEL2) virtual registers: {regs}"]
    if nv.get("l1_memory"):
        words = ", ".join(f"[{m['ipa']}]={m['u64']}" for m in nv["l1_memory"])
        out.append(f"- L1 memory (IPA: 64-bit word): {words}")
    else:
        out.append("- L1 memory: all zero")
    feats = {k: v for k, v in nv.get("features", {}).items()}
    out.append("- PE features: `-cpu max`-like (atlab FeatureSet.all())"
               + (f", except {feats}" if feats else ""))
    op = nv["ops"][0]
    pan = f", PSTATE.PAN={op['pan']}" if "pan" in op else ""
    for e in nv.get("shadow_s2", []):
        out.append(f"- L0's shadow stage 2 maps L2 IPA {e['l2_ipa']} to PA {e['pa']} "
                   f"(S2AP {e.get('s2ap', 'rw')}, MemAttr {e.get('memattr', 15)})")
    out.append(f"- L1 executes `AT {op['op']}, {op['va']}`{pan}")
    return out


def record_newer(binary: Path) -> str:
    """Run every reproducer through ``binary`` (a build of a newer tree) and record its
    answers in :data:`NEWER`; returns the kernel version."""
    from tools.difftest.kvm import HardwareAnswers, run_kvm
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             check=True).stdout.strip().removeprefix("kernel=")
    answers = {}
    for name, nv in load_reproducers().items():
        hw = HardwareAnswers() if nv.get("kvm_mode") == "hardware" else None
        answers[name] = list(run_kvm([nv], binary=binary, hardware=hw)[0][0])
    NEWER.write_text(json.dumps({"kernel": version, "answers": answers}, indent=1)
                     + "\n")
    return version


def _newer_status(name: str, nv: dict[str, Any], arch: tuple[object, ...],
                  newer: dict[str, Any]) -> str:
    got = newer.get("answers", {}).get(name)
    if got is None:
        return "not run"
    got = tuple(got)
    if got == tuple(nv["kvm"][0]):
        return "still there"
    if got[:2] == arch[:2]:
        return "fixed"
    if got[0] == arch[0] == "par" and not (int(got[1]) ^ int(arch[1])) & ~(1 << 9):  # type: ignore[call-overload]
        return "fixed (NS=0 aside)"
    return f"changed: {_fmt(got)}"


def render() -> str:
    repros = load_reproducers()
    newer = json.loads(NEWER.read_text()) if NEWER.is_file() else {}
    newer_kernel = newer.get("kernel", "")
    lines = [
        "# KVM 6.12's AT emulation against the Arm ARM",
        "",
        "Generated by `python -m tools.difftest.kvm_doc` from `atlab.nv.kvm.DEVIATIONS` and "
        "the minimal reproducers in `tests/data/kvm/reproducers/` (each holds the PAR that "
        "KVM's own `arch/arm64/kvm/at.c` from Debian's linux-source-6.12 (6.12.118) wrote, "
        "built in userspace by `tools/kvm/`). Do not edit by hand.",
        "",
        "KVM 6.12 emulates the AT instructions a guest hypervisor (L1) executes at vEL2: a "
        "hardware fast path on a loaded context, then a software walk (`handle_at_slow()`). "
        "The table lists every place where what L1 reads in PAR_EL1 differs from what the "
        "Arm ARM requires. *BUG*: the Arm ARM gives a different answer; *PERMITTED*: a "
        "choice the Arm ARM leaves open (UNKNOWN, CONSTRAINED UNPREDICTABLE or IMPLEMENTATION "
        "DEFINED), where KVM's choice differs from atlab's.",
        "",
        f"The last column runs the same reproducer through a newer tree's at.c "
        f"({newer_kernel or 'none recorded'}): *still there*, *fixed* (the architecture's "
        f"answer), or *changed* (another answer).",
        "",
        f"| deviation | verdict | what KVM 6.12 does | Arm ARM | where | {newer_kernel} |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    archs = {n: run_atlab(nv, fast_path=nv.get("kvm_mode") == "hardware")[1][0]
             for n, nv in repros.items()}
    for name, dev in DEVIATIONS.items():
        status = (_newer_status(name, repros[name], archs[name], newer) if name in repros
                  else "no reproducer")
        lines.append(f"| [{name}](#{name}) | {dev.verdict.name} | {dev.summary} | {dev.rule} | "
                     f"{WHERE.get(name, '')} | {status} |")
    lines += ["", "## Candidate reports", ""]
    for name, dev in DEVIATIONS.items():
        lines += [f"### {name}", ""]
        kind = "bug" if dev.verdict is Verdict.BUG else "permitted choice"
        lines.append(f"**KVM/arm64 NV, AT emulation ({kind}):** {dev.summary}.")
        lines.append("")
        lines.append(f"The Arm ARM: {dev.rule}. In the tree: {WHERE.get(name, '?')}.")
        lines.append("")
        nv = repros.get(name)
        if nv is None:
            lines.append("Reproducer: none: atlab does not model what this does (see the "
                         "README, \"KVM's own code as the second judge\").")
            lines.append("")
            continue
        hardware = nv.get("kvm_mode") == "hardware"
        _model, arch, _ = run_atlab(nv, fast_path=hardware)
        kvm_answer = tuple(nv["kvm"][0])
        if hardware:
            lines.append("Reproducer (`tests/data/kvm/reproducers/" + name + ".json`, KVM's "
                         "fast path: `atlab nv run --kvm`, or the harness's hardware mode "
                         "answered by atlab's walker, `python -m tools.difftest --kvm "
                         "--fast-path`):")
        else:
            lines.append("Reproducer (`tests/data/kvm/reproducers/" + name + ".json`, run it "
                         "with `python -m tools.kvm run` or `atlab nv run --kvm "
                         "--no-fast-path`):")
        lines.append("")
        lines += _repro_text(nv)
        lines.append("")
        lines.append(f"KVM 6.12.118 writes {_fmt(kvm_answer)}; the Arm ARM requires "
                     f"{_fmt(arch[0])}.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.difftest.kvm_doc")
    p.add_argument("--check", action="store_true", help="fail if the document is stale")
    p.add_argument("--record-newer", type=Path, metavar="BINARY",
                   help="record a newer kvm-at build's answers to the reproducers first")
    args = p.parse_args(argv)
    if args.record_newer is not None:
        print(f"recorded the answers of {record_newer(args.record_newer)}")
    text = render()
    if args.check:
        if not DOC.is_file() or DOC.read_text() != text:
            print(f"{DOC.relative_to(ROOT)} is stale: run python -m tools.difftest.kvm_doc",
                  file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
