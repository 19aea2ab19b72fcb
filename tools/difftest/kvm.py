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
from atlab.at import AtResult, run_at
from atlab.features import Feature, FeatureSet
from atlab.nv import (
    KvmBehaviour,
    NvSystem,
    emulate_at,
    parse_nv_scenario,
    reference_at,
)
from atlab.nv.emulate import kvm_live_context
from atlab.nv.kvm import (
    DEVIATIONS,
    FAST_PATH_REGS,
    fast_path_regs,
    kvm_nv_features,
    kvm_sanitise,
)
from atlab.nv.model import SHADOW_IPA_BITS, NvScenario, page_of
from atlab.regime import AtOp
from atlab.syndrome import TakenException
from atlab.sysregs import SysRegs, parse_int
from atlab.walk_s2 import S2WalkInfo, setup_s2_walk, stage2_enabled, walk_s2
from tools.difftest.generator import generate
from tools.kvm.harness import HwAtRequest, kvm_scenario_name

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


def with_shadow(nv: dict[str, Any], r: random.Random) -> dict[str, Any]:
    """``nv`` with a random half of the shadow stage 2 entries L0 could have built (for each
    L1 memory page that L1's stage 2 maps from an L2 IPA page, with L1's leaf attributes), so
    that KVM's hardware fast path for L2's regime can succeed."""
    sc = parse_nv_scenario(nv)
    try:
        system = sc.system()
    except AtlabError:
        return nv
    held = kvm_sanitise(sc.vregs, sc.features)
    try:
        info = setup_s2_walk(held, sc.features)
    except AtlabError:
        return nv
    if not stage2_enabled(held) or not isinstance(info, S2WalkInfo):
        return nv
    flat = system.flat_l1_memory()
    entries = []
    for page in sorted({page_of(ipa) for ipa, _ in sc.l1_memory}):
        if r.random() < 0.5:
            continue
        try:
            res = walk_s2(info, flat, page, sc.features, write=False, s1ptw=True,
                          for_at=False)
        except AtlabError:
            continue
        backing = system.backed_pa(res.pa) if res.fault is None else None
        if backing is None or page >> SHADOW_IPA_BITS:
            continue
        d = res.desc
        entries.append({"l2_ipa": hex(page), "pa": hex(page_of(backing)),
                        "s2ap": ("none", "ro", "wo", "rw")[d >> 6 & 3], "memattr": d >> 2 & 15,
                        "sh": d >> 8 & 3, "xn": d >> 53 & 3})
    return {**nv, "shadow_s2": entries} if entries else nv


def generate_nv(seed: int, count: int, *, features: str = "max",
                shadow: bool = False) -> list[dict[str, Any]]:
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
        if shadow:
            nv = with_shadow(nv, random.Random(f"atlab-kvm-shadow:{nv['name']}"))
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


@dataclass(slots=True)
class HardwareAnswers:
    """Answers the hardware ATs of KVM's fast path (``hardware`` mode) with atlab's walker on
    the registers KVM loaded and L0's memory, and checks those registers against the model's
    (:func:`atlab.nv.kvm.fast_path_regs`)."""

    systems: dict[str, tuple[NvScenario, NvSystem, SysRegs, dict[str, int]]] = field(
        default_factory=dict)
    asked: int = 0
    refused: list[str] = field(default_factory=list)
    register_mismatches: list[str] = field(default_factory=list)

    def add(self, sc: NvScenario) -> dict[str, int]:
        """The scenario's system and its ``hw`` lines: what is live when L1 traps (none when
        the NV model refuses the machine, e.g. PAMax < 48: its ops are then not modelled)."""
        try:
            system = sc.system()
        except AtlabError:
            return {}
        held, live = kvm_live_context(system)
        self.systems[kvm_scenario_name(sc.name)] = (sc, system, held, live)
        return {**live, "PSTATE_PAN": 0}

    def __call__(self, req: HwAtRequest) -> int | None:
        from tools.kvm.harness import kvm_op_indices

        self.asked += 1
        if req.scenario not in self.systems:
            self.refused.append(f"{req.scenario} op {req.n}: the NV model refuses the machine")
            return None
        sc, system, held, live = self.systems[req.scenario]
        spec = sc.ops[kvm_op_indices(sc)[req.n]]
        pan = spec.pan if spec.pan is not None else system.pan
        want = fast_path_regs(spec.op, held, live, pan=pan)
        got = {**req.regs, "PSTATE_PAN": req.pan}
        diff = sorted(k for k in (*FAST_PATH_REGS, "PSTATE_PAN") if want.get(k) != got.get(k))
        if diff:
            self.register_mismatches.append(
                f"{sc.name} op {req.n} {spec.op.name}: "
                + ", ".join(f"{k} KVM {got.get(k, 0):#x} / model {want.get(k, 0):#x}"
                            for k in diff))
        if not req.regs.get("HCR_EL2", 0) >> 31 & 1:
            self.refused.append(f"{sc.name} op {req.n}: HCR_EL2.RW=0 (AArch32 EL1&0)")
            return None
        regs = SysRegs({k: v for k, v in req.regs.items() if k in FAST_PATH_REGS})
        try:
            res = run_at(AtOp[req.op], req.va, regs=regs, mem=system.mem,
                         features=sc.features, cur_el=2, pan=req.pan, trace=False)
        except AtlabError as exc:
            self.refused.append(f"{sc.name} op {req.n}: {exc}")
            return None
        return None if res.par is None else res.par.value


def _reason(text: str) -> str:
    """A not-modelled error message without its numbers (to count them by kind)."""
    if "fast-hcr-unsaved" in text:
        return "KVM's fast path runs with HCR_EL2=0x1 (fast-hcr-unsaved: an AArch32 EL1&0 walk)"
    if "PAMax >= 48" in text:
        return "a PE with PAMax < 48 (the NV model's L0 memory layout)"
    if "which this PE does not implement" in text:
        return "a granule the PE does not implement (atlab refuses it)"
    if "reserved granule" in text:
        return "a reserved granule encoding (atlab refuses it: IMPLEMENTATION DEFINED)"
    return text[:80]


def run_kvm(nvs: Sequence[Mapping[str, Any]], *, binary: Path | None = None,
            hardware: HardwareAnswers | None = None) -> list[list[KOutcome]]:
    """KVM's outcome for every op of every NV scenario (one harness run); with ``hardware``
    KVM's fast path runs too, its hardware ATs answered by ``hardware``."""
    from tools.kvm.harness import kvm_op_indices, run, to_kvm_input

    scns = [parse_nv_scenario(nv) for nv in nvs]
    if hardware is None:
        text = "".join(to_kvm_input(sc) for sc in scns)
        results = run(text, mode="fails", binary=binary)
    else:
        text = "".join(to_kvm_input(sc, hw=hardware.add(sc)) for sc in scns)
        results = run(text, mode="hardware", binary=binary, answer=hardware)
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
    #: hardware mode: the answerer of KVM's hardware ATs
    hardware: HardwareAnswers | None = None
    #: ops atlab refuses (an AtlabError: e.g. a reserved granule the hardware fast path would
    #: walk): counted apart, never compared.
    not_modelled: list[tuple[dict[str, Any], int, KOutcome, KOutcome]] = field(
        default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"kvm": 0.0, "atlab": 0.0})

    def summary(self) -> str:
        hw = self.hardware
        fast = "" if hw is None else (
            f"fast path: {hw.asked} hardware ATs, {len(hw.register_mismatches)} register "
            f"differences, {len(hw.refused)} not answered; ")
        return (f"{self.scenarios} NV scenarios, {self.ops} ops against KVM {self.kernel}: "
                f"{len(self.mismatches)} model/KVM differences; KVM = architecture on "
                f"{self.same_as_arch} ops, {sum(self.deviations.values())} op-deviations "
                f"of {len(self.deviations)} kinds; {len(self.not_modelled)} not modelled, "
                f"{self.untrapped} never trapped; " + fast + f"{self.unexplained_count()} "
                "unexplained")

    def unexplained_count(self) -> int:
        """Model/KVM differences, unexplained KVM/architecture differences and, in hardware
        mode, register differences."""
        return (len(self.mismatches) + len(self.unexplained)
                + self.hardware_register_differences())

    def hardware_register_differences(self) -> int:
        return 0 if self.hardware is None else len(self.hardware.register_mismatches)

    def merged(self, other: KvmReport) -> KvmReport:
        hw = None
        if self.hardware is not None and other.hardware is not None:
            hw = HardwareAnswers(asked=self.hardware.asked + other.hardware.asked,
                                 refused=self.hardware.refused + other.hardware.refused,
                                 register_mismatches=self.hardware.register_mismatches
                                 + other.hardware.register_mismatches)
        out = KvmReport(self.scenarios + other.scenarios, self.ops + other.ops, self.kernel,
                        self.mismatches + other.mismatches,
                        self.unexplained + other.unexplained,
                        self.deviations + other.deviations, {**other.examples, **self.examples},
                        self.same_as_arch + other.same_as_arch, self.warns + other.warns,
                        untrapped=self.untrapped + other.untrapped,
                        not_modelled=self.not_modelled + other.not_modelled, hardware=hw)
        return out

    def table(self) -> str:
        rows = ["deviation                         ops   verdict"]
        for name, n in self.deviations.most_common():
            rows.append(f"{name:<32} {n:>5}   {DEVIATIONS[name].verdict.name}")
        why = Counter(_reason(str(m[1])) for _, _, m, _ in self.not_modelled)
        for reason, n in why.most_common():
            rows.append(f"not modelled: {reason} ({n} ops)")
        return "\n".join(rows)


def compare_kvm(nvs: Sequence[dict[str, Any]], *, kvm: Sequence[Sequence[KOutcome]] | None = None,
                binary: Path | None = None, version: str = "6.12", kernel: str = "",
                shrink: bool = True, fast_path: bool = False) -> KvmReport:
    """Run ``nvs`` through KVM (or use the recorded answers ``kvm``) and the model; report.
    ``fast_path``: KVM's hardware fast path runs (``hardware`` mode, answered by
    :class:`HardwareAnswers`), and so does the model's."""
    rep = KvmReport(scenarios=len(nvs), kernel=kernel or version)
    t0 = time.monotonic()
    hardware = HardwareAnswers() if fast_path and kvm is None else None
    answers = list(kvm) if kvm is not None else run_kvm(nvs, binary=binary, hardware=hardware)
    if hardware is not None:
        rep.hardware = hardware
    rep.seconds["kvm"] = time.monotonic() - t0
    t0 = time.monotonic()
    for nv, got in zip(nvs, answers, strict=True):
        model, arch, fired = run_atlab(nv, version, fast_path=fast_path)
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
                           use_kvm=kvm is None, fast_path=fast_path)
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
    for key in ("l1_memory", "shadow_s2"):
        i = 0
        while i < len(cur.get(key, [])):
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
                       use_kvm: bool, fast_path: bool = False) -> None:
    """One shrunk reproducer per deviation (and per model/KVM mismatch) in ``ARTIFACTS``;
    with ``fast_path`` they are hardware-mode reproducers (``"kvm_mode": "hardware"``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def kvm_says(trial: dict[str, Any]) -> KOutcome:
        hw = HardwareAnswers() if fast_path else None
        return run_kvm([trial], binary=binary, hardware=hw)[0][0]

    for name, (nv, i) in sorted(rep.examples.items()):

        def fires(trial: dict[str, Any], name: str = name) -> bool:
            model, arch, fired = run_atlab(trial, version, fast_path=fast_path)
            why = explain(model[0], arch[0], fired[0])
            return bool(why) and name in (why or ())

        small = shrink(one_op(nv, i), fires)
        model, arch, _ = run_atlab(small, version, fast_path=fast_path)
        if use_kvm:
            got = kvm_says(small)
            if got != model[0]:
                continue  # the shrunk form no longer agrees with KVM: keep the big one
            small["kvm"] = [list(got)]
        if fast_path:
            small["kvm_mode"] = "hardware"
        small["comment"] = (f"KVM {version} vs the Arm ARM: {name}: "
                            f"{DEVIATIONS[name].summary}. KVM: {_fmt(model[0])}; "
                            f"architecture: {_fmt(arch[0])}. Rule: {DEVIATIONS[name].rule}")
        small["name"] = f"kvm-{name}"
        (ARTIFACTS / f"{name}.json").write_text(json.dumps(small, indent=1) + "\n")
    for n, (nv, i, m, k) in enumerate(rep.mismatches[:20]):
        small = one_op(nv, i)
        if use_kvm:
            def differs(trial: dict[str, Any]) -> bool:
                model = run_atlab(trial, version, fast_path=fast_path)[0][0]
                return model != kvm_says(trial)
            small = shrink(small, differs)
        small["comment"] = f"model {_fmt(m)} / KVM {_fmt(k)}"
        (ARTIFACTS / f"mismatch-{n}.json").write_text(json.dumps(small, indent=1) + "\n")


def _fmt(o: KOutcome) -> str:
    if o[0] == "par":
        return f"PAR 0x{int(o[1]):016x}" + (" + WARN" if o[2] else "")  # type: ignore[call-overload]
    return " ".join(str(x) for x in o)


