"""KVM's own code as the judge of ``atlab.nv``: generated NV scenarios run through

- KVM's AT emulation built in userspace from a kernel tree (:mod:`tools.kvm`), fast path
  failing so that at.c's software path runs;
- ``atlab.nv.emulate_at(..., kvm=KvmBehaviour(version, fast_path=False))`` (the model of KVM);
- ``atlab.nv.reference_at`` (the architecture: the plain AT at a real EL2).

Two checks per op.  *Model vs KVM*: the PAR KVM writes into the guest's PAR_EL1 (or UNDEFINED
injected, or no PAR written, or a WARN) must be exactly the model's; any difference is a bug
in the model.  *KVM vs the architecture*: where the model (now known to be KVM) differs from
the architecture, the difference must be covered by the deviations the model recorded
(:data:`atlab.nv.kvm.DEVIATIONS`, each with the PAR bits it may change); anything else is
unexplained.  One shrunk reproducer per deviation goes to ``artifacts/difftest/kvm/``.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlab import AtlabError
from atlab.at import AtResult
from atlab.features import Feature, FeatureSet
from atlab.nv import KvmBehaviour, emulate_at, parse_nv_scenario, reference_at
from atlab.nv.kvm import DEVIATIONS, kvm_nv_features
from atlab.syndrome import TakenException
from atlab.sysregs import parse_int
from tools.difftest.generator import generate

ARTIFACTS = Path("artifacts/difftest/kvm")
#: An op's outcome: ("par", value, warned) | ("undef",) | ("nowrite", warned) | ("bug", where)
#: | ("exc", ec) for an architectural exception | ("error", text).
KOutcome = tuple[object, ...]

_HCR_NV, _HCR_NV1, _HCR_AT = 1 << 42, 1 << 43, 1 << 44


# ---- scenarios --------------------------------------------------------------------------------

def nv_from_generated(scn: Mapping[str, Any], r: random.Random) -> dict[str, Any] | None:
    """An NV scenario file (dict) from a generated AT scenario: its registers become L1's
    virtual registers, its memory L1's IPA space, and every op not at EL3 is executed by L1
    at vEL2 (so it traps to L0).  vHCR_EL2.{NV,NV1,AT} get random values."""
    ops = [dict(o) for o in scn.get("ops", []) if not str(o["op"]).upper().startswith("S1E3")]
    if not ops:
        return None
    regs = dict(scn.get("sysregs", {}))
    regs.pop("SCTLR_EL3", None)
    hcr = parse_int(regs.get("HCR_EL2", 0))
    roll = r.random()
    if roll < 0.15:
        hcr |= _HCR_NV | _HCR_NV1
    elif roll < 0.25:
        hcr |= _HCR_NV
    elif roll < 0.30:
        hcr |= _HCR_NV1
    if r.random() < 0.3:
        hcr |= _HCR_AT
    regs["HCR_EL2"] = hex(hcr)
    return {"name": scn["name"], "context": "L1", "vsysregs": regs,
            "l1_memory": [{"ipa": m["pa"], "u64": m["u64"]} for m in scn.get("memory", [])],
            "features": dict(scn.get("features", {})), "tags": list(scn.get("tags", [])),
            "ops": ops}


def generate_nv(seed: int, count: int, *, features: str = "max") -> list[dict[str, Any]]:
    """``count`` generated scenarios for ``seed`` (the QEMU generator's variety: every regime
    and op, E2H/TGE, granules, TBI, EPD, LPA2, stage 2, PAN ...; its ``atlab-only`` variants
    too: features switched off, reserved encodings) as NV scenarios.

    ``features``: ``"max"`` keeps the generator's PE (``-cpu max``-like); ``"nv"`` gives L1
    only what KVM 6.12 advertises to a guest hypervisor (:func:`atlab.nv.kvm.kvm_nv_features`:
    no HAFDBS, XNX, TTST, LVA; PAMax 48)."""
    if features not in ("max", "nv"):
        raise AtlabError(f"features must be 'max' or 'nv', not {features!r}")
    out = []
    for scn in generate(seed, count):
        nv = nv_from_generated(scn, random.Random(f"atlab-kvm-difftest:{scn['name']}"))
        if nv is None:
            continue
        if features == "nv":
            fs = kvm_nv_features(FeatureSet.from_mapping(nv["features"]))
            nv["features"] = {**{f.value: False for f in Feature if f not in fs.features},
                              "PAMax": fs.pa_max}
            nv["name"] = f"{nv['name']}-nv"
        out.append(nv)
    return out


# ---- the three sides --------------------------------------------------------------------------

def _op_pan(spec: Mapping[str, Any], default: int) -> int:
    return parse_int(spec["pan"]) & 1 if spec.get("pan") is not None else default


def run_atlab(nv: Mapping[str, Any], version: str = "6.12", *, fast_path: bool = False
              ) -> tuple[list[KOutcome], list[KOutcome], list[frozenset[str]]]:
    """(model of KVM, architecture, deviations fired) per op; ``fast_path``: KVM's hardware
    fast path runs (answered by atlab's walker on the context KVM loads) before at.c's
    software path."""
    try:
        sc = parse_nv_scenario(nv)
        sc.system()  # e.g. a PE with PAMax < 48: the NV model refuses it
    except AtlabError as exc:
        err: KOutcome = ("error", str(exc))
        n = len(nv.get("ops", []))
        return [err] * n, [err] * n, [frozenset()] * n
    kvm = KvmBehaviour(version, fast_path=fast_path)
    model: list[KOutcome] = []
    arch: list[KOutcome] = []
    fired: list[frozenset[str]] = []
    for spec in sc.ops:
        system = sc.system()
        pan = spec.pan if spec.pan is not None else system.pan
        try:
            res = emulate_at(system, spec.op, spec.va, kvm=kvm, trace=False, pan=pan)
        except AtlabError as exc:
            model.append(("error", str(exc)))
            fired.append(frozenset())
        else:
            k = res.kvm
            warned = bool(k is not None and k.warn)
            if res.par is not None:
                model.append(("par", res.par.value, warned))
            elif res.exception is not None and res.exception.ec == 0:
                model.append(("undef",))
            else:
                model.append(("error", res.outcome()))
            fired.append(k.fired if k is not None else frozenset())
        try:
            ref = reference_at(sc.system(), spec.op, spec.va, pan=pan)
        except AtlabError as exc:
            arch.append(("error", str(exc)))
            continue
        arch.append(_arch_outcome(ref))
    return model, arch, fired


def _arch_outcome(ref: AtResult | TakenException) -> KOutcome:
    if isinstance(ref, TakenException):
        return ("undef",) if ref.ec == 0 else ("exc", ref.ec)
    if ref.par is not None:
        return ("par", ref.par.value, False)
    assert ref.exception is not None
    return ("undef",) if ref.exception.ec == 0 else ("exc", ref.exception.ec)


def run_kvm(nvs: Sequence[Mapping[str, Any]], *, binary: Path | None = None
            ) -> list[list[KOutcome]]:
    """KVM's outcome for every op of every NV scenario (one harness run)."""
    from tools.kvm.harness import kvm_op_indices, run, to_kvm_input

    scns = [parse_nv_scenario(nv) for nv in nvs]
    text = "".join(to_kvm_input(sc) for sc in scns)
    results = run(text, mode="fails", binary=binary)
    out: list[list[KOutcome]] = []
    it = iter(results)
    for sc in scns:
        ops: list[KOutcome] = []
        sent = set(kvm_op_indices(sc))
        for i in range(len(sc.ops)):
            if i not in sent:
                ops.append(("untrapped",))  # UNDEFINED in hardware: KVM never sees it
                continue
            k = next(it)
            if k.bug:
                ops.append(("bug", k.bug))
            elif k.undef:
                ops.append(("undef",))
            elif not k.written:
                ops.append(("nowrite", bool(k.warn)))
            else:
                ops.append(("par", k.par, bool(k.warn)))
        out.append(ops)
    return out


# ---- KVM vs the architecture -----------------------------------------------------------------

def explain(model: KOutcome, arch: KOutcome, fired: frozenset[str]) -> tuple[str, ...] | None:
    """The deviations that explain ``model != arch`` (``()`` when equal), or ``None``."""
    if model[:2] == arch[:2]:
        return ()
    if model[0] == "par" and arch[0] == "par":
        diff = int(model[1]) ^ int(arch[1])  # type: ignore[call-overload]
        names = []
        covered = 0
        for name in sorted(fired):
            bits_ = DEVIATIONS[name].par_bits
            if bits_ is None or diff & bits_:
                names.append(name)
                covered |= diff if bits_ is None else diff & bits_
        return tuple(names) if covered == diff else None
    whole = tuple(n for n in sorted(fired) if DEVIATIONS[n].par_bits is None)
    return whole or None


# ---- the report -------------------------------------------------------------------------------

@dataclass(slots=True)
class KvmReport:
    scenarios: int = 0
    ops: int = 0
    kernel: str = ""
    mismatches: list[tuple[dict[str, Any], int, KOutcome, KOutcome]] = field(default_factory=list)
    unexplained: list[tuple[dict[str, Any], int, KOutcome, KOutcome]] = field(
        default_factory=list)
    deviations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)
    same_as_arch: int = 0
    warns: int = 0
    #: ops UNDEFINED in hardware before any trap (a feature the PE lacks): never sent
    untrapped: int = 0
    #: ops atlab refuses (an AtlabError: e.g. a reserved granule the hardware fast path would
    #: walk): counted apart, never compared.
    not_modelled: list[tuple[dict[str, Any], int, KOutcome, KOutcome]] = field(
        default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"kvm": 0.0, "atlab": 0.0})

    def summary(self) -> str:
        return (f"{self.scenarios} NV scenarios, {self.ops} ops against KVM {self.kernel}: "
                f"{len(self.mismatches)} model/KVM differences; KVM = architecture on "
                f"{self.same_as_arch} ops, {sum(self.deviations.values())} op-deviations "
                f"of {len(self.deviations)} kinds; {len(self.not_modelled)} not modelled, "
                f"{self.untrapped} never trapped; "
                f"{len(self.mismatches) + len(self.unexplained)} unexplained")

    def merged(self, other: KvmReport) -> KvmReport:
        out = KvmReport(self.scenarios + other.scenarios, self.ops + other.ops, self.kernel,
                        self.mismatches + other.mismatches,
                        self.unexplained + other.unexplained,
                        self.deviations + other.deviations, {**other.examples, **self.examples},
                        self.same_as_arch + other.same_as_arch, self.warns + other.warns,
                        untrapped=self.untrapped + other.untrapped,
                        not_modelled=self.not_modelled + other.not_modelled)
        return out

    def table(self) -> str:
        rows = ["deviation                         ops   verdict"]
        for name, n in self.deviations.most_common():
            rows.append(f"{name:<32} {n:>5}   {DEVIATIONS[name].verdict.name}")
        return "\n".join(rows)


def compare_kvm(nvs: Sequence[dict[str, Any]], *, kvm: Sequence[Sequence[KOutcome]] | None = None,
                binary: Path | None = None, version: str = "6.12", kernel: str = "",
                shrink: bool = True) -> KvmReport:
    """Run ``nvs`` through KVM (or use the recorded answers ``kvm``) and the model; report."""
    rep = KvmReport(scenarios=len(nvs), kernel=kernel or version)
    t0 = time.monotonic()
    answers = list(kvm) if kvm is not None else run_kvm(nvs, binary=binary)
    rep.seconds["kvm"] = time.monotonic() - t0
    t0 = time.monotonic()
    for nv, got in zip(nvs, answers, strict=True):
        model, arch, fired = run_atlab(nv, version)
        for i, (m, a, f, k) in enumerate(zip(model, arch, fired, got, strict=True)):
            rep.ops += 1
            rep.warns += bool(k[0] in ("par", "nowrite") and k[-1])
            if k[0] == "untrapped":
                rep.untrapped += 1
                continue
            if (m[0] == "error" or a[0] == "error") and k[0] != "bug":
                # atlab refuses the op (e.g. a reserved granule encoding): nothing to compare
                rep.not_modelled.append((nv, i, m if m[0] == "error" else a, k))
                continue
            if m != k:
                rep.mismatches.append((nv, i, m, k))
                continue
            why = explain(m, a, f)
            if why is None:
                rep.unexplained.append((nv, i, m, a))
            elif not why:
                rep.same_as_arch += 1
            for name in why or ():
                rep.deviations[name] += 1
                rep.examples.setdefault(name, (nv, i))
    rep.seconds["atlab"] = time.monotonic() - t0
    if shrink:
        _write_reproducers(rep, binary=binary, version=version,
                           use_kvm=kvm is None)
    return rep


# ---- the committed corpus --------------------------------------------------------------------

def record_kvm_corpus(nvs: Sequence[dict[str, Any]], path: Path, *, binary: Path | None,
                      kernel: str) -> int:
    """Write ``nvs`` with KVM's answer for every op (replayed by ``make test`` without a
    kernel tree); returns the number of ops."""
    answers = run_kvm(nvs, binary=binary)
    doc = {"kernel": kernel, "scenarios": [
        {**{k: v for k, v in nv.items() if k != "tags"}, "kvm": [list(o) for o in ans]}
        for nv, ans in zip(nvs, answers, strict=True)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    return sum(len(a) for a in answers)


def load_corpus(path: Path) -> tuple[list[dict[str, Any]], list[list[KOutcome]], str]:
    doc = json.loads(path.read_text())
    nvs, answers = [], []
    for scn in doc["scenarios"]:
        answers.append([tuple(o) for o in scn["kvm"]])
        nvs.append({k: v for k, v in scn.items() if k != "kvm"})
    return nvs, answers, str(doc["kernel"])


# ---- shrinking -----------------------------------------------------------------------------

def one_op(nv: Mapping[str, Any], i: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(nv))
    out["ops"] = [copy.deepcopy(nv["ops"][i])]
    return out


def shrink(nv: dict[str, Any], still: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Drop memory words and registers one at a time while ``still`` holds."""
    cur = copy.deepcopy(nv)
    for key in ("l1_memory",):
        i = 0
        while i < len(cur[key]):
            trial = copy.deepcopy(cur)
            del trial[key][i]
            if still(trial):
                cur = trial
            else:
                i += 1
    for reg in list(cur["vsysregs"]):
        trial = copy.deepcopy(cur)
        del trial["vsysregs"][reg]
        if still(trial):
            cur = trial
    cur.pop("tags", None)
    return cur


def _write_reproducers(rep: KvmReport, *, binary: Path | None, version: str,
                       use_kvm: bool) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, (nv, i) in sorted(rep.examples.items()):

        def fires(trial: dict[str, Any], name: str = name) -> bool:
            model, arch, fired = run_atlab(trial, version)
            why = explain(model[0], arch[0], fired[0])
            return bool(why) and name in (why or ())

        small = shrink(one_op(nv, i), fires)
        model, arch, _ = run_atlab(small, version)
        if use_kvm:
            got = run_kvm([small], binary=binary)[0][0]
            if got != model[0]:
                continue  # the shrunk form no longer agrees with KVM: keep the big one
        small["comment"] = (f"KVM {version} vs the Arm ARM: {name}: "
                            f"{DEVIATIONS[name].summary}. KVM: {_fmt(model[0])}; "
                            f"architecture: {_fmt(arch[0])}. Rule: {DEVIATIONS[name].rule}")
        small["name"] = f"kvm-{name}"
        (ARTIFACTS / f"{name}.json").write_text(json.dumps(small, indent=1) + "\n")
    for n, (nv, i, m, k) in enumerate(rep.mismatches[:20]):
        small = one_op(nv, i)
        if use_kvm:
            def differs(trial: dict[str, Any]) -> bool:
                return run_atlab(trial, version)[0][0] != run_kvm([trial], binary=binary)[0][0]
            small = shrink(small, differs)
        small["comment"] = f"model {_fmt(m)} / KVM {_fmt(k)}"
        (ARTIFACTS / f"mismatch-{n}.json").write_text(json.dumps(small, indent=1) + "\n")


def _fmt(o: KOutcome) -> str:
    if o[0] == "par":
        return f"PAR 0x{int(o[1]):016x}" + (" + WARN" if o[2] else "")  # type: ignore[call-overload]
    return " ".join(str(x) for x in o)


