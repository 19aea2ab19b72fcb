"""Which lines and branches of atlab's walkers the generated scenarios reach, by tag.

``python -m tools.difftest --coverage [--seed S ...] [--count N] [--coverage-html]`` runs the
generated scenarios through atlab only (no QEMU needed) under coverage.py, with branch
coverage and one dynamic context per scenario, and prints

(a) per measured file (:data:`MEASURED`): statements and branches reached / total and the
    line numbers never reached;
(b) a per-tag table: for every tag, the scenarios carrying it, the walker lines they reach,
    and the lines *only* scenarios with that tag reach (every scenario that executes the line
    carries the tag) - which rules each tag is the sole witness of;
(c) with ``--coverage-html``, an HTML report in ``artifacts/difftest/coverage/``.

Every scenario runs three ways, as atlab's users run it: ``trace=True`` (``atlab run --full``:
walk steps, descriptions, the result rendered with ``AtResult.to_dict(full=True)`` and
``Par.masked()`` as ``--check`` does), ``trace=False`` on logged memory (the differential
test's model side), and ``trace=False`` on plain unlogged memory (the lean walk loop the TLB
model and the benchmarks use).  The three must give the same outcome; a difference is reported.

The measurement runs in fresh interpreters (one per seed, two at a time) that start coverage
before importing atlab, so module-level lines count as reached wherever this is called from.
Lines that no scenario can reach are listed with the reason in :data:`UNREACHABLE` (by their
source text), whole functions beside the AT path in :data:`UNREACHABLE_FUNCTIONS`, branches in
:data:`UNREACHABLE_BRANCHES`.

The scenarios are those the project checks (:func:`profile_scenarios`): every generated
scenario as ``python -m tools.difftest`` sends it to QEMU 10, the same scenario as the QEMU 11
profile (``--qemu 11``: FEAT_ATS1A, TCR2, S1PIE, S2PIE, AIE, EL3's PIE/AIE) changes it, and a
share of FEAT_S1POE/S2POE variants, which no QEMU has (their check is the hand-derived cases
of tests/test_pie.py; these variants make the overlay code count as reached by generated
input).  Tags ``profile:qemu10``, ``profile:qemu11``, ``profile:poe`` say which.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MEASURED = ("walk_s1", "walk_s2", "at", "perms", "attrs", "regime", "par", "syndrome",
            "granule", "descriptors")
HTML_DIR = Path("artifacts/difftest/coverage")

#: Lines no generated scenario reaches, by file and the source text that identifies them
#: (line numbers move; the text is looked up), with the reason.
_RESUMED = ("a walk resumed below a walk cache entry: only atlab.tlb passes start, and QEMU's AT "
         "always walks from the start level (tests/test_tlb.py checks resumed walks against "
         "the walks they stand for)")

UNREACHABLE: dict[str, list[tuple[str, str]]] = {
    "walk_s1": [
        ("txsz = min_txsz", "IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS is True: an out-of-range TxSZ "
         "faults instead of being clamped"),
        ("txsz = max_txsz", "IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS is True (as above)"),
        ("span = lsb + {", "IMPDEF_CONTIGUOUS_MISPROGRAM_FAULTS is False: no fault for a "
         "contiguous range beyond the input range"),
        ("if span > wi.ia_bits:", "IMPDEF_CONTIGUOUS_MISPROGRAM_FAULTS is False (as above)"),
        ("    res = walk_s1_leaf(wi, mem, va, features, s2=s2, trace=trace)\n"
         "    if isinstance(res, S1WalkResult):\n        return res\n"
         "    level, desc, desc_addr, desc_pa, oa, table_bits = res\n"
         "    kind = DescKind.PAGE if level == FINAL_LEVEL else DescKind.BLOCK\n"
         "    ended = f\"{kind.value} at level {level}: output address {oa:#x}\" if trace is not "
         "None else \"\"\n"
         "    return S1WalkResult(None, level, desc, desc_addr, desc_pa, oa, table_bits,\n"
         "                        contiguous_bit(desc, level, wi.granule), kind, ended)",
         "walk_s1(), the public wrapper that builds an S1WalkResult: run_at calls walk_s1_leaf "
         "(tests/test_walk_s1.py runs the wrapper)"),
        ("return S1WalkResult(Fault(FaultKind.TRANSLATION, level), level, desc, desc_addr,\n"
         "                                desc_pa, table_bits=table_bits, contiguous=True",
         "IMPDEF_CONTIGUOUS_MISPROGRAM_FAULTS is False (as above)"),
        ("        level, table, table_bits = start\n        shifts = shifts[level - wi.sl:]",
         _RESUMED),
    ],
    "walk_s2": [
        ("        level, table = start\n        shifts = shifts[level - wi.sl:]", _RESUMED),
        ("txsz = min_txsz", "IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS is True"),
        ("txsz = max_txsz", "IMPDEF_TXSZ_OUT_OF_RANGE_FAULTS is True"),
    ],
    "attrs": [
        ("    @property\n    def reserved(self) -> bool:", "MemAttrs.reserved: used by "
         "atlab.checks, not by the AT path"),
        ("        if self.device:\n            return bits(self.attr, 1, 0) != 0",
         "MemAttrs.reserved (as above)"),
        ("        return self.inner == 0 and self.attr not in", "MemAttrs.reserved (as above)"),
        ("    def __str__(self) -> str:\n        if self.device:\n            return f\"Device-",
         "MemAttrs.__str__: attribute names printed by atlab.ptdump and atlab.checks"),
        ("        return f\"Normal i{_cache_name", "MemAttrs.__str__ (as above)"),
        ("def _cache_name(enc: int) -> str:\n    if enc == 0b0100:\n        return \"NC\"\n"
         "    if enc == 0:\n        return \"?\"\n    top = bits(enc, 3, 2)\n"
         "    if top in (0b00, 0b10):\n        return \"WT\" + (\"t\" if top == 0 else \"\")\n"
         "    return \"WB\" + (\"t\" if top == 0b01 else \"\")",
         "_cache_name: used by MemAttrs.__str__ only (as above)"),
    ],
    "at": [
        ("        return head + self.disposition.reason", "defensive: run_at always returns a "
         "PAR or an exception"),
    ],
    "perms": [
        ("    def __str__(self) -> str:\n        if self.pie:\n            return f\"PIE ppi="
         "{self.ppi:04b} upi={self.upi:04b} nDirty={self.ndirty}\"\n        return (f\"AP="
         "{self.ap:02b} APTable=", "S1PermBits.__str__: a printing helper for notebooks and "
         "exercises (05_permissions); AtResult reports S1Perms"),
        ("    r, w, x, _gcs = _INDIRECT[pi]\n    return bool(r), bool(w), bool(x)",
         "indirect_rwx(): a lookup helper for readers (the module's doctest); the permission "
         "phase reads the PIR entry table directly"),
    ],
    "descriptors": [
        ("        return DescKind.PAGE if level == FINAL_LEVEL else DescKind.TABLE",
         "decode_desc_kind() of a table or page descriptor: the walk loops decode those inline "
         "(the line serves decode_descriptor(), atlab.ptdump and the widgets)"),
    ],
    "regime": [
        ("        return self.value.stages == 12", "AtOp.is_s12: used by atlab.nv and "
         "atlab.checks, not by run_at"),
        ("        return max(1, self.value.el) if", "AtOp.min_el: used by atlab.nv and the "
         "widgets, not by run_at"),
        ("            key = key[3:].strip()", "AtOp.parse of 'AT S1E1R' spelling: the harness "
         "only accepts bare op names, so generated scenarios never use it (tests/test_scenario)"),
        ("        except KeyError:\n            known = \", \".join(op.name for op in AtOp)\n"
         "            raise AtlabError(f\"unknown AT operation",
         "input validation of op names (scenario parsing), not a rule of the architecture"),
        ("        raise AtlabError(f\"AT instructions execute at EL1, EL2 or EL3",
         "input validation: parse_scenario already refuses an 'el' other than 1, 2, 3"),
    ],
}
#: Whole functions no generated scenario calls (helpers beside the AT path), by file:
#: (name, or "Class.name" for a method; the reason).  Every line of the body counts as listed.
_DECODER = ("the field decoder of `atlab decode desc`, the decoder widget and the walk stepper, "
            "not the AT path (tests/test_descriptors.py, tests/test_cli.py, tests/test_widgets.py)")
UNREACHABLE_FUNCTIONS: dict[str, list[tuple[str, str]]] = {
    "descriptors": [
        ("parse_granule", "parses `atlab decode desc --granule` (tests/test_descriptors.py)"),
        ("check_level", _DECODER),
        ("decode_descriptor", _DECODER),
        ("encode_page", "a descriptor encoder for tests, notebooks and exercises; generated "
         "scenarios carry raw memory words"),
        ("encode_table", "a descriptor encoder (as above)"),
    ],
}
#: Branches (from line, to line; -1 is the function exit) no scenario can take, with the reason.
_LOOP_ENDS = ("    for lsb, imask in shifts:  # from the start level to level 3",
              "the walk loop never runs out: level 3 always ends it (a page breaks out, "
              "anything else returns a fault)")
UNREACHABLE_BRANCHES: dict[str, list[tuple[str, str]]] = {
    "descriptors": [("    if desc & 2:\n        return DescKind.PAGE", "decode_desc_kind() of "
                     "a table or page descriptor (as above)")],
    "walk_s1": [
        ("    if addrtop >= ia_bits:", "ia_bits <= 52 < 55 <= addrtop: the VA range check always "
         "has bits above the range"),
        _LOOP_ENDS,
        ("    if start is not None:\n        level, table, table_bits = start", _RESUMED),
    ],
    "walk_s2": [_LOOP_ENDS, ("    if start is not None:\n        level, table = start", _RESUMED)],
}


# ---- the worker: runs scenarios under coverage -----------------------------------------------

def _measured_paths() -> list[str]:
    return [str(ROOT / "atlab" / f"{m}.py") for m in MEASURED]


def _run_scenario(scn: Mapping[str, Any]) -> str | None:
    """Run ``scn`` the three ways; None, or what differed between them."""
    from atlab import AtlabError, PhysMem, parse_scenario

    try:
        sc = parse_scenario(scn)
    except AtlabError:
        return None
    outs: list[list[str]] = []
    for mode in ("trace", "plain", "lean"):
        try:
            if mode == "lean":
                mem = PhysMem(dict(sc.memory), logging=False)
                results = sc.run(trace=False, mem=mem)
            else:
                results = sc.run(trace=mode == "trace")
        except AtlabError as exc:
            outs.append([f"error: {exc}"])
            continue
        row = []
        for res in results:
            if mode == "trace":
                # what `atlab run [--full] --check` does with a result
                res.to_dict()
                res.to_dict(full=True)
                str(res)
                if res.par is not None:
                    res.par.masked()
                    res.par._repr_html_()
            row.append(str(res.par.value if res.par is not None else res.exception))
        outs.append(row)
    if outs[0] == outs[1] == outs[2]:
        return None
    return f"{scn['name']}: trace {outs[0]} / plain {outs[1]} / lean {outs[2]}"


#: Share of the generated scenarios (not atlab-only) that also run as a FEAT_S1POE/S2POE
#: variant (:func:`tools.difftest.generator.poe_variant`).
POE_SHARE = 0.15


def profile_scenarios(seed: int, count: int) -> Iterator[dict[str, Any]]:
    """The scenarios the project checks, from ``generate(seed, count)``, each tagged with its
    profile:

    - ``profile:qemu10``: every generated scenario, as ``python -m tools.difftest`` sends it
      to QEMU 10 (atlab-only variants included);
    - ``profile:qemu11``: the scenario as ``--qemu 11`` sends it (:func:`qemu11_profile`), when
      that changes what runs: the TCR2/S1PIE/S2PIE/AIE registers of :func:`v94_variant` or
      :func:`v94_el3_variant`, or FEAT_ATS1A ops that now execute (a scenario that only gains
      the FEAT_ATS1A switch runs as its QEMU 10 self and is not repeated);
    - ``profile:poe``: for :data:`POE_SHARE` of them, the FEAT_S1POE/S2POE variant
      (:func:`poe_variant`, tagged ``atlab-only:poe``): no QEMU has those features, the
      hand-derived cases of tests/test_pie.py are their check, and these scenarios make the
      overlay code of the walkers count as reached by generated input, not only by them.
    """
    import random

    from tools.difftest.generator import generate, is_atlab_only, poe_variant, qemu11_profile

    def tagged(scn: dict[str, Any], profile: str, suffix: str = "") -> dict[str, Any]:
        return dict(scn, name=scn["name"] + suffix,
                    tags=sorted({*scn["tags"], f"profile:{profile}"}))

    for scn in generate(seed, count):
        yield tagged(scn, "qemu10")
        q11 = qemu11_profile(scn)
        if (q11["tags"] != scn["tags"] or q11["sysregs"] != scn["sysregs"]
                or q11["memory"] != scn["memory"]):
            yield tagged(q11, "qemu11", ":q11")
        if is_atlab_only(scn):
            continue
        r = random.Random(f"atlab-difftest-poe:{scn['name']}")
        if r.random() < POE_SHARE:
            yield tagged(poe_variant(r, scn), "poe", ":poe")


def worker(seed: int, count: int, data_file: str, meta_file: str) -> None:
    """Generate and run seed ``seed`` under coverage (contexts = scenario names)."""
    import coverage

    cov = coverage.Coverage(data_file=data_file, branch=True, include=_measured_paths(),
                            config_file=False)
    cov.start()
    import atlab  # noqa: F401  (module-level lines belong to no scenario)

    meta: dict[str, Any] = {"tags": {}, "differences": []}
    for scn in profile_scenarios(seed, count):
        cov.switch_context(scn["name"])
        meta["tags"][scn["name"]] = scn["tags"]
        diff = _run_scenario(scn)
        if diff:
            meta["differences"].append(diff)
    cov.switch_context("")
    cov.stop()
    cov.save()
    Path(meta_file).write_text(json.dumps(meta))


# ---- the report ------------------------------------------------------------------------------

@dataclass
class FileCoverage:
    name: str
    statements: int
    covered: int
    branches: int
    covered_branches: int
    missing: list[int]
    missing_branches: list[tuple[int, int]]
    unreachable: dict[int, str] = field(default_factory=dict)
    unreachable_branches: dict[int, str] = field(default_factory=dict)

    @property
    def unexplained(self) -> list[int]:
        """Unreached lines, and sources of untaken branches, without a documented reason."""
        out = [n for n in self.missing if n not in self.unreachable]
        out += [a for a, b in self.missing_branches
                if a not in self.missing and a not in self.unreachable
                and a not in self.unreachable_branches and b not in self.unreachable]
        return sorted(set(out))


@dataclass
class TagCoverage:
    scenarios: int = 0
    lines: set[tuple[str, int]] = field(default_factory=set)
    only: set[tuple[str, int]] = field(default_factory=set)


@dataclass
class CoverageReport:
    files: list[FileCoverage]
    tags: dict[str, TagCoverage]
    scenarios: int
    differences: list[str]
    seconds: float = 0.0
    #: (file, line) -> number of scenarios that execute it
    hits: dict[tuple[str, int], int] = field(default_factory=dict)

    def unexplained(self) -> dict[str, list[int]]:
        return {f.name: f.unexplained for f in self.files if f.unexplained}

    def file_table(self) -> str:
        rows = [f"{'file':<16} {'lines':>11} {'%':>6} {'branches':>11} {'%':>6}  unreached lines"]
        tot = [0, 0, 0, 0]
        for f in self.files:
            tot[0] += f.covered
            tot[1] += f.statements
            tot[2] += f.covered_branches
            tot[3] += f.branches
            miss = _ranges(f.missing)
            rows.append(f"{f.name + '.py':<16} {f.covered:>5}/{f.statements:<5} "
                        f"{_pct(f.covered, f.statements):>6} {f.covered_branches:>5}/"
                        f"{f.branches:<5} {_pct(f.covered_branches, f.branches):>6}  "
                        f"{miss or '-'}")
        rows.append(f"{'total':<16} {tot[0]:>5}/{tot[1]:<5} {_pct(tot[0], tot[1]):>6} "
                    f"{tot[2]:>5}/{tot[3]:<5} {_pct(tot[2], tot[3]):>6}")
        return "\n".join(rows)

    def unreachable_table(self) -> str:
        rows = []
        for f in self.files:
            # consecutive unreached lines with one reason: one row (a range)
            runs: list[tuple[int, int, str]] = []
            for n in sorted(f.missing):
                why = f.unreachable.get(n, "NOT EXPLAINED")
                if runs and runs[-1][1] + 1 == n and runs[-1][2] == why != "NOT EXPLAINED":
                    runs[-1] = (runs[-1][0], n, why)
                else:
                    runs.append((n, n, why))
            for a, b, why in runs:
                rows.append(f"  {f.name}.py:{a if a == b else f'{a}-{b}'}: {why}")
            for a, b in f.missing_branches:
                if a in f.missing or a in f.unreachable:
                    continue
                dest = "exit" if b < 0 else str(b)
                why = f.unreachable_branches.get(a, "")
                if not why and b in f.unreachable:
                    why = f.unreachable[b]
                rows.append(f"  {f.name}.py:{a}->{dest}: {why or 'branch NOT EXPLAINED'}")
        return "\n".join(rows) if rows else "  (none)"

    def tag_table(self, *, width: int = 100) -> str:
        rows = [f"{'tag':<34} {'scen':>6} {'lines':>6} {'only':>5}  lines only this tag reaches"]
        for tag in sorted(self.tags):
            t = self.tags[tag]
            only = _file_ranges(t.only)
            if len(only) > width - 57:
                only = only[: width - 60] + "..."
            rows.append(f"{tag:<34} {t.scenarios:>6} {len(t.lines):>6} {len(t.only):>5}  "
                        f"{only}")
        return "\n".join(rows)

    def rare_table(self, at_most: int = 3) -> str:
        """Lines reached by at most ``at_most`` scenarios (where the generator is thin)."""
        rare = sorted(k for k, n in self.hits.items() if 0 < n <= at_most)
        if not rare:
            return f"  (none reached by {at_most} scenarios or fewer)"
        by_n: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for k in rare:
            by_n[self.hits[k]].append(k)
        return "\n".join(f"  {n} scenario{'s' if n > 1 else ''}: {_file_ranges(ks)}"
                         for n, ks in sorted(by_n.items()))

    def text(self) -> str:
        n = {p: self.tags[f"profile:{p}"].scenarios if f"profile:{p}" in self.tags else 0
             for p in ("qemu10", "qemu11", "poe")}
        parts = [
            f"atlab walker coverage: {self.scenarios} scenarios ({n['qemu10']} generated "
            f"scenarios as QEMU 10 gets them, {n['qemu11']} as the QEMU 11 profile changes "
            f"them, {n['poe']} FEAT_S1POE/S2POE variants), each run with trace=True, "
            f"trace=False and trace=False on unlogged memory ({self.seconds:.1f} s)",
            "", self.file_table(), "", "unreached (reason):", self.unreachable_table(), "",
            "lines few scenarios reach:", self.rare_table(), "", self.tag_table(),
        ]
        if self.differences:
            parts += ["", f"{len(self.differences)} scenarios whose outcome depends on the "
                      "run mode:", *self.differences[:20]]
        return "\n".join(parts)


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f}" if b else "100.0"


def _ranges(nums: Iterable[int]) -> str:
    out: list[str] = []
    ns = sorted(nums)
    i = 0
    while i < len(ns):
        j = i
        while j + 1 < len(ns) and ns[j + 1] == ns[j] + 1:
            j += 1
        out.append(str(ns[i]) if i == j else f"{ns[i]}-{ns[j]}")
        i = j + 1
    return ",".join(out)


def _file_ranges(lines: Iterable[tuple[str, int]]) -> str:
    by: dict[str, list[int]] = defaultdict(list)
    for f, n in lines:
        by[f].append(n)
    return " ".join(f"{f}:{_ranges(ns)}" for f, ns in sorted(by.items()))


def _unreachable_lines(name: str, table: Mapping[str, list[tuple[str, str]]] | None = None
                       ) -> dict[int, str]:
    """:data:`UNREACHABLE` resolved to line numbers (every line of a multi-line snippet)."""
    src = (ROOT / "atlab" / f"{name}.py").read_text()
    out: dict[int, str] = {}
    for snippet, why in (UNREACHABLE if table is None else table).get(name, []):
        at = src.find(snippet)
        if at < 0:
            continue
        first = src.count("\n", 0, at) + 1
        for k in range(snippet.count("\n") + 1):
            out[first + k] = why
    return out


def _function_bodies(name: str) -> dict[str, tuple[int, int]]:
    """The first and last body line of every function and method of ``atlab/<name>.py``, by
    name ("Class.name" for a method)."""
    import ast

    tree = ast.parse((ROOT / "atlab" / f"{name}.py").read_text())
    out: dict[str, tuple[int, int]] = {}
    for node in tree.body:
        defs = [(node.name, node)] if isinstance(node, ast.FunctionDef) else []
        if isinstance(node, ast.ClassDef):
            defs = [(f"{node.name}.{n.name}", n) for n in node.body
                    if isinstance(n, ast.FunctionDef)]
        for qual, fn in defs:
            out[qual] = (fn.body[0].lineno, fn.end_lineno or fn.body[-1].lineno)
    return out


def _unreachable_functions(name: str) -> dict[int, str]:
    """:data:`UNREACHABLE_FUNCTIONS` resolved to line numbers."""
    rows = UNREACHABLE_FUNCTIONS.get(name, [])
    bodies = _function_bodies(name) if rows else {}
    out: dict[int, str] = {}
    for func, why in rows:
        if func in bodies:
            first, last = bodies[func]
            out.update(dict.fromkeys(range(first, last + 1), why))
    return out


def measure(seeds: Sequence[int], count: int, *, html: Path | None = None,
            jobs: int = 2) -> CoverageReport:
    """Run the worker for every seed (``jobs`` at a time) and build the report."""
    import time

    import coverage

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="atlab-cov-") as tmp:
        procs: list[tuple[subprocess.Popen[bytes], str]] = []
        pending = list(seeds)
        metas: list[str] = []
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get(
            "PYTHONPATH", ""))
        while pending or procs:
            while pending and len(procs) < jobs:
                seed = pending.pop(0)
                data = os.path.join(tmp, f".coverage.seed{seed}")
                meta = os.path.join(tmp, f"meta{seed}.json")
                metas.append(meta)
                cmd = [sys.executable, "-m", "tools.difftest.covreport", "--worker",
                       str(seed), str(count), data, meta]
                procs.append((subprocess.Popen(cmd, cwd=ROOT, env=env,
                                               stderr=subprocess.PIPE), meta))
            p, _ = procs.pop(0)
            _, err = p.communicate()
            if p.returncode:
                raise RuntimeError(f"coverage worker failed: {err.decode()[-2000:]}")
        cov = coverage.Coverage(data_file=os.path.join(tmp, ".coverage"), branch=True,
                                include=_measured_paths(), config_file=False)
        cov.combine([tmp], keep=True)
        cov.save()
        cov.load()
        report_json = os.path.join(tmp, "cov.json")
        cov.json_report(outfile=report_json)
        summary = json.loads(Path(report_json).read_text())
        if html is not None:
            cov.html_report(directory=str(html), title="atlab walkers: generated scenarios")
        tags: dict[str, list[str]] = {}
        differences: list[str] = []
        for meta in metas:
            m = json.loads(Path(meta).read_text())
            tags.update(m["tags"])
            differences += m["differences"]
        data = cov.get_data()
        files = []
        # (file, line) -> scenarios (contexts) that execute it
        hit: dict[tuple[str, int], list[str]] = {}
        for name in MEASURED:
            path = str(ROOT / "atlab" / f"{name}.py")
            fs = _file_summary(summary, path)
            unreach = _unreachable_lines(name) | _unreachable_functions(name)
            files.append(FileCoverage(
                name, fs["summary"]["num_statements"], fs["summary"]["covered_lines"],
                fs["summary"].get("num_branches", 0), fs["summary"].get("covered_branches", 0),
                list(fs["missing_lines"]), [tuple(b) for b in fs.get("missing_branches", [])],
                unreach, _unreachable_lines(name, UNREACHABLE_BRANCHES)))
            for line, ctxs in data.contexts_by_lineno(path).items():
                hit[(name, line)] = [c for c in ctxs if c]
    by_tag: dict[str, TagCoverage] = defaultdict(TagCoverage)
    for tlist in tags.values():
        for t in tlist:
            by_tag[t].scenarios += 1
    for key, ctxs in hit.items():
        if not ctxs:
            continue  # import time only
        common: set[str] | None = None
        seen: set[str] = set()
        for c in ctxs:
            ts = tags.get(c, [])
            seen.update(ts)
            common = set(ts) if common is None else common & set(ts)
        for t in seen:
            by_tag[t].lines.add(key)
        for t in common or ():
            by_tag[t].only.add(key)
    return CoverageReport(files, dict(by_tag), len(tags), differences, time.monotonic() - t0,
                          {k: len(v) for k, v in hit.items()})


def _file_summary(summary: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    files = summary["files"]
    for k, v in files.items():
        if os.path.abspath(os.path.join(ROOT, k)) == path or os.path.abspath(k) == path:
            return v  # type: ignore[no-any-return]
    raise KeyError(path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.difftest.covreport")
    p.add_argument("--worker", nargs=4, metavar=("SEED", "COUNT", "DATA", "META"))
    args = p.parse_args(argv)
    if args.worker:
        seed, count, data, meta = args.worker
        worker(int(seed), int(count), data, meta)
        return 0
    p.error("use python -m tools.difftest --coverage")
    return 2


if __name__ == "__main__":
    sys.exit(main())
