"""Run generated scenarios through QEMU (tools.hw) and atlab, compare, shrink mismatches.

The comparison uses exactly the documented masks (:mod:`tools.difftest.outcome`): a
successful PAR without bits 11:9, a faulting PAR without bits 63:48, an exception by target
EL, ESR (ISS.Rt masked for EC 0x18), FAR and HPFAR - never ELR.  A disagreement explained by
an entry of :mod:`tools.difftest.known_deviations` is counted under that entry's name.
Scenarios tagged ``atlab-only:*`` (:func:`tools.difftest.generator.atlab_only_variant`) are
never sent to QEMU: atlab runs them (they must not crash it) and the report counts them apart.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlab import AtlabError, Par, parse_scenario
from atlab.perms import S1Perms, s1_access_allowed
from atlab.regime import Access
from tools.difftest.generator import is_atlab_only
from tools.difftest.known_deviations import classify
from tools.difftest.outcome import Outcome

ARTIFACTS = Path("artifacts/difftest")
#: Seconds without progress before a QEMU boot counts as hung (a generated scenario whose
#: tables fail to map the harness hangs; none should).
QEMU_TIMEOUT = 3.0


# ---- the two sides ---------------------------------------------------------------------------

def run_model(scn: Mapping[str, Any]) -> list[Outcome]:
    """atlab's outcome for every op of ``scn`` (ops share one memory, in order)."""
    try:
        sc = parse_scenario(scn)
        results = sc.run(trace=False)
    except AtlabError as exc:
        return [Outcome("error", text=str(exc))] * len(scn.get("ops", []))
    out = []
    for res in results:
        if res.par is not None:
            out.append(Outcome("par", res.par.value))
        elif res.exception is not None:
            e = res.exception
            out.append(Outcome("exc", el=e.target_el, esr=e.esr, far=e.far, hpfar=e.hpfar))
        else:
            out.append(Outcome("error", text=res.disposition.reason))
    return out


def run_qemu(scns: Sequence[Mapping[str, Any]], qemu: str = "10") -> list[list[Outcome]]:
    """QEMU's outcome for every op of every scenario (one or a few boots).

    ``qemu``: "10" (the system's QEMU 10) or "11" (QEMU 11.1 in the Debian 13 chroot made by
    tools/install-system-deps.sh; :func:`tools.hw.driver.qemu_target`)."""
    from tools.hw import run_scenarios

    out = []
    for res in run_scenarios(list(scns), qemu=qemu, timeout=QEMU_TIMEOUT):
        ops = []
        for op in res.ops:
            if op.crashed:
                ops.append(Outcome("crash", text=res.crash or "QEMU crashed"))
            elif op.exception is not None:
                e = op.exception
                ops.append(Outcome("exc", el=e.taken_to_el, esr=e.esr, far=e.far,
                                   hpfar=e.hpfar))
            else:
                assert op.par is not None
                ops.append(Outcome("par", op.par))
        out.append(ops)
    return out


def expected_outcomes(scn: Mapping[str, Any]) -> list[Outcome | None]:
    """The recorded answers of a corpus scenario (``expected_par``/``expected_exception``)."""
    out: list[Outcome | None] = []
    for op in scn.get("ops", []):
        if op.get("expected_exception") is not None:
            e = op["expected_exception"]
            out.append(Outcome("exc", el=int(e["taken_to_el"]), esr=int(str(e["esr"]), 0),
                               far=int(str(e.get("far", "0")), 0),
                               hpfar=int(str(e.get("hpfar", "0")), 0)))
        elif op.get("expected_par") is not None:
            out.append(Outcome("par", int(str(op["expected_par"]), 0)))
        else:
            out.append(None)
    return out


def decode_line(label: str, o: Outcome) -> str:
    return f"{label:>5}: {o}"


# ---- comparison and report -------------------------------------------------------------------

@dataclass
class TagStats:
    scenarios: int = 0
    ops: int = 0
    mismatches: int = 0
    deviations: int = 0


@dataclass
class Report:
    scenarios: int = 0
    ops: int = 0
    mismatches: list[tuple[Mapping[str, Any], int, Outcome, Outcome]] = field(
        default_factory=list)
    deviations: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    crashed: int = 0
    lost: int = 0
    atlab_only: int = 0  # scenarios QEMU cannot check (run through atlab only)
    by_tag: dict[str, TagStats] = field(default_factory=lambda: defaultdict(TagStats))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, scn: Mapping[str, Any], model: Sequence[Outcome],
            other: Sequence[Outcome | None],
            also: Callable[[Mapping[str, Any], int, Outcome, Outcome], str | None] | None = None,
            ) -> list[int]:
        """Compare one scenario; returns the indices of unexplained mismatches."""
        self.scenarios += 1
        tags = [*scn.get("tags", []), "all"]
        bad: list[int] = []
        ndev = 0
        nops = 0
        crashed_before = False
        for i, (m, q) in enumerate(zip(model, other, strict=True)):
            if q is None:
                continue
            if q.crashed and crashed_before:
                self.lost += 1  # QEMU died on an earlier op: this one never ran
                continue
            nops += 1
            if q.crashed:
                self.crashed += 1
                crashed_before = True
            if m.key() == q.key():
                continue
            name = classify(scn, i, m, q)
            if name is None and also is not None:
                name = also(scn, i, m, q)
            if name is not None:
                self.deviations[name] += 1
                ndev += 1
                continue
            bad.append(i)
            self.mismatches.append((scn, i, m, q))
        self.ops += nops
        for t in tags:
            st = self.by_tag[t]
            st.scenarios += 1
            st.ops += nops
            st.mismatches += len(bad)
            st.deviations += ndev
        return bad

    def table(self, only_interesting: bool = False) -> str:
        rows = [f"{'tag':<34} {'scen':>7} {'ops':>7} {'mism':>6} {'dev':>5}"]
        for tag in sorted(self.by_tag, key=lambda t: (t != "all", t)):
            st = self.by_tag[tag]
            if only_interesting and not st.mismatches and tag != "all":
                continue
            rows.append(f"{tag:<34} {st.scenarios:>7} {st.ops:>7} {st.mismatches:>6} "
                        f"{st.deviations:>5}")
        return "\n".join(rows)

    def summary(self) -> str:
        dev = ", ".join(f"{k}: {v}" for k, v in sorted(self.deviations.items())) or "none"
        return (f"{self.scenarios} scenarios, {self.ops} ops: {len(self.mismatches)} "
                f"unexplained mismatches; known deviations: {dev}; QEMU crashes: "
                f"{self.crashed} (+{self.lost} later ops lost); {self.atlab_only} atlab-only "
                "scenarios not compared")


# ---- shrinking -------------------------------------------------------------------------------

Predicate = Callable[[Sequence[Mapping[str, Any]]], list[bool]]


def _reg_fields(name: str, value: int, e2h: int) -> list[tuple[int, int]]:
    from atlab.sysregs import layout

    try:
        fields = layout(name, e2h=e2h)
    except AtlabError:
        return []
    out = []
    for f in fields:
        m = ((1 << (f.hi - f.lo + 1)) - 1) << f.lo
        if value & m:
            out.append((f.hi, f.lo))
    return out


def _candidates(scn: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every one-step reduction of ``scn`` (the last op is the one that must keep failing):
    drop an earlier op, drop a memory word, zero a register field."""
    out: list[dict[str, Any]] = []
    ops = scn["ops"]
    for i in range(len(ops) - 1):
        c = copy.deepcopy(dict(scn))
        del c["ops"][i]
        out.append(c)
    if out:
        return out  # ops first
    for i in range(len(scn.get("memory", []))):
        c = copy.deepcopy(dict(scn))
        del c["memory"][i]
        out.append(c)
    regs = scn.get("sysregs", {})
    e2h = (int(str(regs.get("HCR_EL2", "0")), 0) >> 34) & 1
    for name, raw in regs.items():
        value = int(str(raw), 0)
        if not value:
            continue
        c = copy.deepcopy(dict(scn))
        c["sysregs"][name] = "0x0"
        out.append(c)
        fields = _reg_fields(name, value, e2h)
        covered = 0
        for hi, lo in fields:
            covered |= ((1 << (hi - lo + 1)) - 1) << lo
        fields += [(b, b) for b in range(64) if value >> b & 1 and not covered >> b & 1]
        for hi, lo in fields:
            c = copy.deepcopy(dict(scn))
            m = ((1 << (hi - lo + 1)) - 1) << lo
            c["sysregs"][name] = f"{value & ~m:#x}"
            out.append(c)
    return out


def shrink(scn: Mapping[str, Any], op_index: int, predicate: Predicate,
           max_rounds: int = 200) -> dict[str, Any]:
    """Reduce ``scn`` (keeping ops up to ``op_index``) while ``predicate`` holds.

    ``predicate`` takes a batch of candidates and says, for each, whether the mismatch is
    still there (for QEMU: one boot per batch).  Greedy: each round evaluates every one-step
    reduction, tries all accepted ones together, and falls back to the first one."""
    cur = copy.deepcopy(dict(scn))
    cur["ops"] = cur["ops"][: op_index + 1]
    cur.pop("tags", None)
    # try the failing op alone first
    alone = copy.deepcopy(cur)
    alone["ops"] = alone["ops"][-1:]
    if predicate([alone])[0]:
        cur = alone
    for _ in range(max_rounds):
        cands = _candidates(cur)
        if not cands:
            break
        ok = predicate(cands)
        good = [c for c, k in zip(cands, ok, strict=True) if k]
        if not good:
            if len(cur["ops"]) > 1:
                # no op can go: move on to memory and registers with all ops kept
                break
            break
        merged = _merge(cur, good)
        if merged is not None and predicate([merged])[0]:
            cur = merged
        else:
            cur = good[0]
    return cur


def _merge(base: Mapping[str, Any], good: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """All accepted reductions at once (only for memory and register reductions)."""
    if len(good) < 2 or len(good[0]["ops"]) != len(base["ops"]):
        return None
    merged = copy.deepcopy(dict(base))
    keep_mem = set(json.dumps(w, sort_keys=True) for w in base.get("memory", []))
    regs = {k: int(str(v), 0) for k, v in base.get("sysregs", {}).items()}
    for g in good:
        gm = {json.dumps(w, sort_keys=True) for w in g.get("memory", [])}
        keep_mem &= gm if len(gm) < len(base.get("memory", [])) else keep_mem
        for k, v in g.get("sysregs", {}).items():
            regs[k] &= int(str(v), 0)
    merged["memory"] = [w for w in base.get("memory", [])
                        if json.dumps(w, sort_keys=True) in keep_mem]
    merged["sysregs"] = {k: f"{v:#x}" for k, v in regs.items()}
    return merged


def qemu_predicate(want_model: Outcome, want_qemu: Outcome, qemu: str = "10") -> Predicate:
    """The mismatch is still the same one: both sides give the same answers as before."""
    def pred(cands: Sequence[Mapping[str, Any]]) -> list[bool]:
        qs = run_qemu(cands, qemu)
        out = []
        for c, q in zip(cands, qs, strict=True):
            m = run_model(c)[-1]
            out.append(m.key() == want_model.key() and q[-1].key() == want_qemu.key())
        return out
    return pred


def write_reproducer(scn: Mapping[str, Any], model: Outcome, qemu: Outcome,
                     directory: Path = ARTIFACTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    out = dict(scn)
    out["comment"] = (f"difftest reproducer: atlab {model} / QEMU {qemu}")
    last = out["ops"][-1]
    if qemu.kind == "par":
        last["expected_par"] = f"0x{qemu.value:016x}"
    elif qemu.kind == "exc":
        last["expected_exception"] = {"taken_to_el": qemu.el, "esr": f"{qemu.esr:#x}",
                                      "far": f"{qemu.far:#x}", "hpfar": f"{qemu.hpfar:#x}"}
    path = directory / f"{scn['name']}-op{len(scn['ops']) - 1}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    return path


# ---- corpus ----------------------------------------------------------------------------------

def record(scns: Sequence[Mapping[str, Any]], qemu: Sequence[Sequence[Outcome]],
           model: Sequence[Sequence[Outcome]]) -> tuple[list[dict[str, Any]], int]:
    """Scenarios with QEMU's answers as expectations.  Scenarios with a QEMU crash or a
    known deviation are left out (their QEMU answer is not the architecture's)."""
    out = []
    skipped = 0
    for scn, qs, ms in zip(scns, qemu, model, strict=True):
        if is_atlab_only(scn) or any(q.crashed for q in qs) or any(
                m.key() != q.key() and classify(scn, i, m, q) is not None
                for i, (m, q) in enumerate(zip(ms, qs, strict=True))):
            skipped += 1
            continue
        c = copy.deepcopy(dict(scn))
        for op, q in zip(c["ops"], qs, strict=True):
            if q.kind == "par":
                op["expected_par"] = f"0x{q.value:016x}"
            else:
                op["expected_exception"] = {"taken_to_el": q.el, "esr": f"{q.esr:#x}",
                                            "far": f"{q.far:#x}", "hpfar": f"{q.hpfar:#x}"}
        out.append(c)
    return out, skipped


def replay(scns: Sequence[Mapping[str, Any]]) -> Report:
    """Compare atlab with a corpus's recorded answers."""
    rep = Report()
    for scn in scns:
        rep.add(scn, run_model(scn), expected_outcomes(scn))
    return rep


def compare(scns: Sequence[Mapping[str, Any]], *, shrink_mismatches: bool = True,
            max_reproducers: int = 20, log: Callable[[str], None] = print,
            qemu_version: str = "10") -> Report:
    """QEMU against atlab over ``scns`` (atlab-only scenarios: atlab alone, not compared)."""
    rep = Report()
    only = [s for s in scns if is_atlab_only(s)]
    scns = [s for s in scns if not is_atlab_only(s)]
    t0 = time.monotonic()
    qemu = run_qemu(scns, qemu_version)
    rep.seconds["qemu"] = time.monotonic() - t0
    t0 = time.monotonic()
    models = [run_model(s) for s in scns]
    for s in only:
        run_model(s)  # atlab must answer (or refuse with AtlabError), never crash
    rep.atlab_only = len(only)
    rep.seconds["atlab"] = time.monotonic() - t0
    also = classify_qemu11 if qemu_version == "11" else None
    for scn, ms, qs in zip(scns, models, qemu, strict=True):
        rep.add(scn, ms, qs, also)
    for n, (scn, i, m, q) in enumerate(rep.mismatches):
        if n >= max_reproducers:
            break
        small = (shrink(scn, i, qemu_predicate(m, q, qemu_version)) if shrink_mismatches
                 else dict(scn))
        path = write_reproducer(small, m, q)
        log(f"MISMATCH {scn['name']} op {i} ({scn['ops'][i]['op']} {scn['ops'][i]['va']}) "
            f"-> {path} ({len(small['ops'])} ops, {len(small.get('memory', []))} words)")
        log(decode_line("atlab", m))
        log(decode_line("QEMU", q))
    return rep


# ---- QEMU 10 against QEMU 11 -----------------------------------------------------------------

#: Why QEMU 11.1 may answer an op of the QEMU 10 corpus differently: each entry is a change
#: between the two versions, argued from the Arm ARM, recognised narrowly.
QEMU11_CHANGES = {
    "qemu11-implements-ats1a": (
        "QEMU 11.1 -cpu max implements FEAT_ATS1A: AT S1E1A/S1E2A, UNDEFINED on 10.0.2 "
        "(the corpus scenarios say FEAT_ATS1A=false, QEMU 10's PE), now execute and write "
        "PAR_EL1 (AArch64.AT() with ATAccess_Any: no permission check)"),
    "qemu11-fwb-memattr3-ignored": (
        "Stage 2 MemAttr encodings that are reserved without FEAT_MTE_PERM, read by QEMU 11.1 "
        "as FEAT_MTE_PERM reads them (NoTagAccess, which AT does not report): with "
        "HCR_EL2.FWB=1 and MemAttr[3]=1 the attributes come from MemAttr[2:0], as "
        "AArch64.S2ApplyFWBMemAttrs() does (it reads only s2_attr<2> and s2_attr<1:0>); with "
        "FWB=0 MemAttr=0b0100 is Normal Write-Back. QEMU 10.0.2 gave Device-nGnRnE (FWB=1) and "
        "outer Non-cacheable (0b0100), the CONSTRAINED UNPREDICTABLE choices atlab copied "
        "(attrs.FWB_RESERVED_MEMATTR_ATTR, attrs.S2_RESERVED_MEMATTR_INNER)"),
    "qemu11-at-write-dbm-faults": (
        "AT S1E*W/S12E*W on a writable-clean page (TCR_ELx.HD=1, DBM=1, AP[2]=1; or on the "
        "final IPA VTCR_EL2.HD=1, DBM=1, S2AP[1]=0): QEMU 11.1 gives a permission fault; "
        "QEMU 10.0.2 and atlab give the translation. QEMU 11 no "
        "longer clears AP[2] for AT (AArch64.SetDirtyState() is FALSE for AccessType_AT: the "
        "10.0.2 deviation is fixed) but now checks the write against the unchanged AP[2], "
        "while AArch64.S1Translate() says 'the walk state permissions will already reflect a "
        "configuration permitting writes' when hardware dirty state is enabled: a QEMU 11 "
        "regression; atlab keeps the architecture's answer"),
    "qemu11-at-no-af-update": (
        "TCR_ELx.HA=1 (or VTCR_EL2.HA=1) and a descriptor with AF=0: QEMU 11.1's AT no longer "
        "sets the Access flag, so it also takes no stage 2 fault on the write of the "
        "descriptor (e.g. a stage 1 table in a page stage 2 maps read-only); QEMU 10.0.2 set "
        "it, as atlab does. AArch64.SetAccessFlag() returns boolean IMPLEMENTATION_DEFINED "
        "\"AT updates AF\" for AccessType_AT: both are permitted (atlab's choice: "
        "walk_s2.AT_UPDATES_AF, README IMPLEMENTATION DEFINED table)"),
    "qemu11-pie-no-ndirty-fault": (
        "FEAT_S1PIE/S2PIE without hardware dirty state (TCR_ELx.HD=0 / VTCR_EL2.HD=0): an AT "
        "write to a clean page (stage 1 nDirty, bit 7, is 1; stage 2 Dirty, bit 7, is 0) "
        "gets the translation on QEMU 11.1; AArch64.S1CheckPermissions() gives a Permission "
        "fault (fault.dirtybit) for 'accdesc.write && walkparams.hd != 1 && walkparams.pie == "
        "1 && permissions.ndirty == 1', AArch64.S2CheckPermissions() for 'walkparams.s2pie == "
        "1 && permissions.s2dirty == 0', AT included: a QEMU 11 departure, atlab follows the "
        "pseudocode"),
    "qemu11-aie-keeps-hierarchical-permissions": (
        "TCR2_ELx.AIE=1 or TCR_EL3.AIE=1 (PIE=0) with APTable/XNTable bits in the table "
        "descriptors: QEMU 11.1 still applies them; AArch64.S1TTWParamsEL10()/EL20()/EL2()/"
        "EL3() set walkparams.hpd "
        "to 1 when walkparams.aie is 1 (hierarchical permissions disabled), as atlab does"),
    "qemu11-pie-pan-reserved-upi": (
        "AT S1E1RP/WP with PSTATE.PAN=1, S1PIE, and a PIRE0_ELx entry that is a reserved "
        "encoding (0b0100, 0b1011, 0b1101, 0b1111: no EL0 access): QEMU 11.1 applies PAN only "
        "when the decoded EL0 permissions are not empty; "
        "AArch64.S1IndirectBasePermissions() applies it when permissions.upi != '0000', so "
        "atlab removes the privileged read and write"),
    "ats1a-walk-external-abort": (
        "AT S1E1A/S1E2A whose walk reads a descriptor outside RAM: QEMU 11.1 takes a "
        "synchronous External abort on the translation table walk (EC 0x24/0x25, DFSC "
        "0b0101xx); atlab models no External aborts (every PA is RAM, README LIMITATIONS). "
        "On QEMU 10 the op was UNDEFINED (no FEAT_ATS1A), so the walk never ran"),
}


def _walk_external_abort(q: Outcome) -> bool:
    """A data abort taken for a synchronous External abort on a translation table walk."""
    return (q.kind == "exc" and (q.esr >> 26) in (0x24, 0x25)
            and (q.esr & 0x3F) >> 2 == 0b0101)


@contextlib.contextmanager
def _qemu11_choices(*, no_af: bool, fwb3: bool, no_ndirty: bool = False) -> Iterator[None]:
    """atlab (within the block) with QEMU 11.1's choices where the Arm ARM leaves one: ``no_af``: AT
    never updates the Access flag (``AArch64.SetAccessFlag()``: ``boolean
    IMPLEMENTATION_DEFINED "AT updates AF"`` FALSE; atlab's :data:`atlab.walk_s2.AT_UPDATES_AF`
    is TRUE); ``fwb3``: stage 2 MemAttr[3] ignored under FWB (AArch64.S2ApplyFWBMemAttrs() as
    written).  Used only to recognise :data:`QEMU11_CHANGES`."""
    import atlab.at as at_module
    import atlab.walk_s2 as s2_module
    from atlab import attrs

    fwb_combine = attrs.fwb_combine  # the one s12_par_attrs() calls

    def pseudocode_fwb(s1_attr: int, s2_memattr: int) -> int:
        return fwb_combine(s1_attr, s2_memattr & 0b0111)

    def mte_perm_memattr(memattr: int) -> int:  # FEAT_MTE_PERM: 0b0100 is NoTagAccess WB
        return 0b1111 if memattr == 0b0100 else attrs.s2_constrain_reserved_memattr(memattr)

    def no_dirty_check(perms: S1Perms, access: Access) -> bool:
        return perms.w if access is Access.WRITE else s1_access_allowed(perms, access)

    def never(desc: int, hd: bool) -> bool:
        return False

    saved = (attrs.fwb_combine, at_module.AT_UPDATES_AF, s2_module.AT_UPDATES_AF,
             s2_module.s2_constrain_reserved_memattr, at_module.s1_access_allowed,
             s2_module.s2_clean_write_faults)
    if no_ndirty:
        at_module.s1_access_allowed = no_dirty_check
        s2_module.s2_clean_write_faults = never
    if fwb3:
        attrs.fwb_combine = pseudocode_fwb
        s2_module.s2_constrain_reserved_memattr = mte_perm_memattr
    if no_af:
        at_module.AT_UPDATES_AF = s2_module.AT_UPDATES_AF = False
    try:
        yield
    finally:
        (attrs.fwb_combine, at_module.AT_UPDATES_AF, s2_module.AT_UPDATES_AF,
         s2_module.s2_constrain_reserved_memattr, at_module.s1_access_allowed,
         s2_module.s2_clean_write_faults) = saved


def _at_write_on_writable_clean(scn: Mapping[str, Any], i: int, q11: Outcome) -> bool:
    """QEMU 11 gave a permission fault to an AT write whose leaf is writable-clean: at stage
    1 (DBM=1, AP[2]=1, TCR_ELx.HD=1) or, on the final IPA, at stage 2 (DBM=1, S2AP[1]=0,
    VTCR_EL2.HD=1); atlab's walk (QEMU 11's AF choice applied) treats it as writable."""
    op = str(scn["ops"][i]["op"]).upper()
    permission_fault = (q11.kind == "par" and q11.value & 1 == 1  # F=1
                        and (q11.value >> 1) & 0x3C == 0x0C  # FST = permission, any level
                        and not (q11.value >> 8) & 1)  # PTW=0
    if not (op.endswith(("W", "WP")) and permission_fault):
        return False
    import atlab.at as at_module
    import atlab.walk_s2 as s2_module
    from atlab import parse_scenario

    stage = 2 if (q11.value >> 9) & 1 else 1
    saved = (at_module.AT_UPDATES_AF, s2_module.AT_UPDATES_AF)
    at_module.AT_UPDATES_AF = s2_module.AT_UPDATES_AF = False
    try:
        res = parse_scenario(scn).run(trace=True)[i]
    finally:
        at_module.AT_UPDATES_AF, s2_module.AT_UPDATES_AF = saved
    if res.fault is not None and not (stage == 1 and res.fault.stage == 2
                                      and not res.fault.s1ptw):
        return False  # atlab faulted before (or at) the same place: not this change
    if stage == 1:
        leaves = [st for st in res.trace.steps if st.stage == 1 and not st.is_write]
    else:
        leaves = [st for st in res.trace.final_s2 if not st.is_write]
    return bool(leaves) and bool(leaves[-1].raw >> 51 & 1
                                 and leaves[-1].raw >> 7 & 1 == (stage == 1))


def _aie_hierarchical(scn: Mapping[str, Any], i: int, q11: Outcome) -> bool:
    """QEMU 11 faults where atlab, with TCR2_ELx.AIE=1 or TCR_EL3.AIE=1 (and PIE=0), ignores
    the hierarchical permissions: the same scenario with AIE cleared gives QEMU's fault."""
    regs = scn.get("sysregs", {})
    if q11.kind != "par":
        return False
    # (register, AIE bit, PIE bit): TCR2_ELx, and TCR_EL3 for the EL3 regime
    for name, aie, pie in (("TCR2_EL1", 4, 1), ("TCR2_EL2", 4, 1), ("TCR_EL3", 37, 35)):
        v = int(str(regs.get(name, "0")), 0)
        if v >> aie & 1 and not v >> pie & 1:
            other = run_model(dict(scn, sysregs={**regs, name: f"{v & ~(1 << aie):#x}"}))[i]
            if other.key() == q11.key():
                return True
            # a translation: AttrIndx[3] no longer counts without AIE, compare all but ATTR
            attr = 0xFF << 56
            if (not q11.value & 1 and other.kind == "par" and not other.value & 1
                    and Outcome("par", other.value & ~attr).key()
                    == Outcome("par", q11.value & ~attr).key()):
                return True
    return False


def _pie_pan_reserved_upi(scn: Mapping[str, Any], i: int, q11: Outcome) -> bool:
    """AT S1E1RP/WP with PSTATE.PAN=1 under S1PIE on a page whose PIRE0 entry is a reserved
    encoding: atlab applies PAN (``permissions.upi != '0000'``), QEMU 11 does not (the op
    without PAN gives QEMU's answer)."""
    op = scn["ops"][i]
    if not (str(op["op"]).upper().endswith(("RP", "WP")) and int(op.get("pan", 0))):
        return False
    from atlab import parse_scenario
    from atlab.descriptors import pi_index

    res = parse_scenario(scn).run(trace=True)[i]
    leaves = [st for st in res.trace.steps if st.stage == 1 and not st.is_write]
    if not leaves or res.regime is None:
        return False
    suffix = res.regime.regime.suffix
    pire0 = int(str(scn["sysregs"].get(f"PIRE0_{suffix}", "0")), 0)
    upi = pire0 >> 4 * pi_index(leaves[-1].raw) & 0xF
    if upi not in (0b0100, 0b1011, 0b1101, 0b1111):
        return False
    ops = [dict(o) for o in scn["ops"]]
    ops[i]["pan"] = 0
    for no_ndirty in (False, True):  # with QEMU 11's missing nDirty check, too
        with _qemu11_choices(no_af=False, fwb3=False, no_ndirty=no_ndirty):
            if run_model(dict(scn, ops=ops))[i].key() == q11.key():
                return True
    return False


def classify_qemu11(scn: Mapping[str, Any], i: int, model: Outcome,
                    q11: Outcome) -> str | None:
    """The :data:`QEMU11_CHANGES` entries (other than FEAT_ATS1A) explaining why QEMU 11's
    answer differs from atlab's, joined with "+", or None."""
    hcr = int(str(scn.get("sysregs", {}).get("HCR_EL2", "0")), 0)
    stage2 = hcr & 1 or hcr >> 12 & 1  # HCR_EL2.VM or HCR_EL2.DC
    pie = any(t.startswith(("pie:", "s2pie")) for t in scn.get("tags", ()))
    choices = sorted(((af, fwb, nd) for af in (True, False) for fwb in (False, True)
                      for nd in (False, True)
                      if (af or fwb or nd) and (stage2 or not fwb) and (pie or not nd)),
                     key=sum)
    for no_af, fwb3, no_ndirty in choices:
        with _qemu11_choices(no_af=no_af, fwb3=fwb3, no_ndirty=no_ndirty):
            m11 = run_model(scn)[i]
            # QEMU 10's departures, still there (their checks rerun the model: keep the choices)
            qemu10_deviation = classify(scn, i, m11, q11) if m11.key() != q11.key() else None
        names = (["qemu11-at-no-af-update"] * no_af + ["qemu11-fwb-memattr3-ignored"] * fwb3
                 + ["qemu11-pie-no-ndirty-fault"] * no_ndirty)
        if m11.key() == q11.key():
            return "+".join(names)
        if qemu10_deviation is not None:
            return "+".join([*names, qemu10_deviation])
    if _at_write_on_writable_clean(scn, i, q11):
        return "qemu11-at-write-dbm-faults"
    if _aie_hierarchical(scn, i, q11):
        return "qemu11-aie-keeps-hierarchical-permissions"
    if _pie_pan_reserved_upi(scn, i, q11):
        return "qemu11-pie-pan-reserved-upi"
    if str(scn["ops"][i]["op"]).upper().endswith("A") and _walk_external_abort(q11):
        return "ats1a-walk-external-abort"
    return None


def qemu11_change(scn: Mapping[str, Any], i: int, q10: Outcome, q11: Outcome) -> str | None:
    """The name of the :data:`QEMU11_CHANGES` entry that explains a QEMU 10 / 11 difference
    on op ``i`` of ``scn``, or None."""
    op = str(scn["ops"][i]["op"]).upper()
    if (op in ("S1E1A", "S1E2A") and q10.kind == "exc" and (q10.esr >> 26) == 0
            and q11.kind == "par"):
        model11 = run_model(dict(scn, features={**scn.get("features", {}),
                                                "FEAT_ATS1A": True}))[i]
        if model11.key() == q11.key():
            return "qemu11-implements-ats1a"
    if op in ("S1E1A", "S1E2A") and _walk_external_abort(q11):
        return "ats1a-walk-external-abort"
    if q10.key() == run_model(scn)[i].key():
        return classify_qemu11(scn, i, q10, q11)
    return None


@dataclass
class VersionReport:
    """QEMU 11 against the answers QEMU 10 recorded in a corpus."""

    ops: int = 0
    same: int = 0
    explained: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unexplained: list[tuple[Mapping[str, Any], int, Outcome, Outcome]] = field(
        default_factory=list)

    def summary(self) -> str:
        expl = ", ".join(f"{k}: {v}" for k, v in sorted(self.explained.items())) or "none"
        return (f"{self.ops} ops: {self.same} identical on QEMU 10 and 11, explained "
                f"differences: {expl}; {len(self.unexplained)} unexplained")


def compare_versions(scns: Sequence[Mapping[str, Any]],
                     q11: Sequence[Sequence[Outcome]]) -> VersionReport:
    """Each op's recorded QEMU 10 answer against QEMU 11's."""
    rep = VersionReport()
    for scn, qs in zip(scns, q11, strict=True):
        for i, (q10, q) in enumerate(zip(expected_outcomes(scn), qs, strict=True)):
            if q10 is None:
                continue
            rep.ops += 1
            if q10.key() == q.key():
                rep.same += 1
                continue
            name = qemu11_change(scn, i, q10, q)
            if name is None:
                rep.unexplained.append((scn, i, q10, q))
            else:
                rep.explained[name] += 1
    return rep


__all__ = ["QEMU11_CHANGES", "Outcome", "Par", "Report", "VersionReport", "classify_qemu11",
           "compare", "compare_versions", "qemu11_change", "record", "replay", "run_model",
           "run_qemu", "shrink"]
