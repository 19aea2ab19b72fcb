"""The QEMU differential test (tools/difftest): corpus replay, a live CI-sized run, and the
generator and shrinker themselves."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from atlab.tlb import TlbiOp
from tools.difftest.compare import compare, record, replay, run_model, shrink
from tools.difftest.covreport import MEASURED, measure
from tools.difftest.generator import generate, is_atlab_only
from tools.difftest.outcome import Outcome
from tools.difftest.tlbi import HCR_BITS, compare_tlbi, generate_tlbi

MEASURED_DIR = Path(__file__).resolve().parent.parent / "atlab"
CORPUS = sorted((Path(__file__).parent / "data" / "difftest").glob("corpus-seed*.json"))
LIVE_SEED = 4242
LIVE_COUNT = 1000


def _qemu_10() -> str | None:
    """None when QEMU 10 and the assembler are usable, else why not."""
    try:
        from tools.hw import check_environment

        check_environment()
    except Exception as exc:
        return f"QEMU 10 harness unavailable: {exc}"
    return None


# ---- (a) the committed corpus, replayed through atlab (no QEMU needed) -------------------------

def test_corpus_exists() -> None:
    assert CORPUS, "tests/data/difftest/corpus-seed*.json is missing (python -m tools.difftest "
    "--record-corpus tests/data/difftest/corpus.json --seed ...)"


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_replays(path: Path) -> None:
    scns = json.loads(path.read_text())
    rep = replay(scns)
    detail = "\n".join(f"{s['name']} op {i}: atlab {m} / QEMU {q}"
                       for s, i, m, q in rep.mismatches[:10])
    assert not rep.mismatches, f"{rep.summary()}\n{detail}"
    assert rep.ops >= 500


def test_corpus_replays_with_atlab_cli(tmp_path: Path) -> None:
    """The corpus is ordinary scenario files: ``atlab run --check`` agrees."""
    proc = subprocess.run(["python", "-m", "atlab", "run", "--check", str(CORPUS[0])],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ---- (b) live: generated scenarios through QEMU and atlab ------------------------------------

@pytest.mark.skipif(shutil.which("qemu-system-aarch64") is None,
                    reason="qemu-system-aarch64 (QEMU 10) is not installed")
def test_live_difftest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    why = _qemu_10()
    if why:
        pytest.skip(why)
    monkeypatch.setattr("tools.difftest.compare.ARTIFACTS", tmp_path)
    rep = compare(generate(LIVE_SEED, LIVE_COUNT), max_reproducers=3, log=lambda _: None)
    detail = "\n".join(f"{s['name']} op {i}: atlab {m} / QEMU {q}"
                       for s, i, m, q in rep.mismatches[:10])
    assert not rep.mismatches, f"{rep.summary()}\n{detail}"
    assert rep.ops > 4 * LIVE_COUNT


@pytest.mark.skipif(shutil.which("qemu-system-aarch64") is None,
                    reason="qemu-system-aarch64 (QEMU 10) is not installed")
def test_live_tlbi_traps() -> None:
    """Which TLBIs trap (EC 0x18, ISS.Rt included), are UNDEFINED or execute, at EL1 and EL2
    under generated HCR_EL2 values: atlab.tlb against QEMU."""
    why = _qemu_10()
    if why:
        pytest.skip(why)
    rep = compare_tlbi(generate_tlbi(LIVE_SEED, 600))
    detail = "\n".join(f"{s['name']} {s['sysregs']} {s['ops'][i]}: atlab {m} / QEMU {q}"
                       for s, i, m, q in rep.mismatches[:10])
    assert not rep.mismatches, f"{rep.summary()}\n{detail}"
    # Every kind of outcome occurred, so the comparison had something to disagree on.
    assert {"done", "UNDEFINED", "trap to EL2"} <= set(rep.by_outcome), rep.summary()
    assert rep.ops > 600


def test_tlbi_generator_covers_every_op_and_bit() -> None:
    scns = generate_tlbi(LIVE_SEED, 600)
    assert scns == generate_tlbi(LIVE_SEED, 600)
    tags = {t for s in scns for t in s["tags"]}
    assert {f"tlbi:{op.name}" for op in TlbiOp} <= tags
    assert {f"hcr:{name.lower()}" for name, _ in HCR_BITS} <= tags
    assert {"tlbi:el1", "tlbi:el2", "hcr:tge"} <= tags
    # TGE only at EL2 (EL1 cannot run with TGE=1); VM never (the harness is not mapped).
    for s in scns:
        hcr = int(s["sysregs"]["HCR_EL2"], 0)
        assert not hcr & 1 and (s["el"] == 2 or not hcr >> 27 & 1)


# ---- (c) the generator and the shrinker ------------------------------------------------------

def test_generator_is_deterministic() -> None:
    assert generate(7, 30) == generate(7, 30)
    assert generate(7, 30) != generate(8, 30)
    assert generate(7, 10, start=20) == generate(7, 30)[20:]


def test_generator_tags_and_features() -> None:
    scns = generate(1, 300)
    tags = {t for s in scns for t in s["tags"]}
    for want in ("granule:4K", "granule:16K", "granule:64K", "granule:16K:ttbr1",
                 "regime:EL1&0", "regime:EL2&0", "regime:EL2", "regime:EL3", "feature:lpa2",
                 "stage2:vm", "s2:concat", "fault:addrsize-oa", "mmu:off", "op:ats1a-undef",
                 "el:1", "el:2", "el:3", "pstate:pan", "feature:tbi", "feature:hpd"):
        assert want in tags, want
    for s in scns:
        assert s["tags"]
        if not is_atlab_only(s):
            assert s["features"] == {"FEAT_ATS1A": False}
        assert all(isinstance(run_model(s)[0], Outcome) for _ in (0,))


def test_ats1a_ops_are_undefined() -> None:
    """FEAT_ATS1A is off in every generated scenario: AT S1E1A / S1E2A are UNDEFINED."""
    scns = [s for s in generate(1, 200)
            if "op:ats1a-undef" in s["tags"] and not is_atlab_only(s)]
    assert scns
    for s in scns:
        for op, out in zip(s["ops"], run_model(s), strict=True):
            if op["op"] in ("S1E1A", "S1E2A"):
                assert out.kind == "exc" and (out.esr >> 26) == 0, (s["name"], out)


def _fake_predicate(target: Mapping[str, Any]) -> Any:
    """A synthetic "mismatch": present while the last op is the target op and TCR_EL1.T0SZ
    and the memory word at the first table entry are still there."""
    first_word = target["memory"][0]

    def pred(cands: Sequence[Mapping[str, Any]]) -> list[bool]:
        out = []
        for c in cands:
            last = c["ops"][-1]
            t0sz = int(str(c["sysregs"].get("TCR_EL1", "0")), 0) & 0x3F
            out.append(last == target["ops"][-1] and t0sz != 0
                       and first_word in c.get("memory", []))
        return out
    return pred


def test_shrinker_reduces_to_one_op() -> None:
    scn = next(s for s in generate(5, 50) if s["sysregs"].get("TCR_EL1")
               and len(s["ops"]) >= 3 and len(s["memory"]) >= 3)
    target = dict(scn)
    small = shrink(scn, len(scn["ops"]) - 1, _fake_predicate(target))
    assert len(small["ops"]) == 1
    assert small["ops"][0] == scn["ops"][-1]
    assert small["memory"] == [scn["memory"][0]]
    # every register field not needed by the predicate is gone
    assert set(small["sysregs"]) <= set(scn["sysregs"])
    assert int(small["sysregs"]["TCR_EL1"], 0) & 0x3F == int(scn["sysregs"]["TCR_EL1"], 0) & 0x3F
    others = {k: int(v, 0) for k, v in small["sysregs"].items() if k != "TCR_EL1"}
    assert all(v == 0 for v in others.values()), others


# ---- (d) the scenario kinds added for coverage, atlab-only scenarios, the coverage report ----

NEW_KINDS = (
    # compared with QEMU
    "hcr:nv", "hcr:nv1", "hcr:at", "hcr:cd", "fault:s2-addrsize-vttbr", "fault:s2-addrsize-table",
    "fault:s2-txsz", "s2:block-level", "s2:s1-table-readonly",
    # atlab only
    "atlab-only:feature-off", "atlab-only:reserved-tg", "atlab-only:granule-off",
    "atlab-only:el1-tge", "atlab-only:ats1a", "atlab-only:error-expected", "feature-off:pamax",
)


def test_generator_tags_new_kinds() -> None:
    tags = {t for s in generate(1, 2000) for t in s["tags"]}
    missing = [k for k in NEW_KINDS if k not in tags]
    assert not missing, missing


def test_atlab_only_scenarios() -> None:
    """Features off, reserved TG, EL1 with TGE=1 and FEAT_ATS1A on: tagged, and atlab answers
    as documented (AtlabError for the error-expected kinds, a PAR for AT S1E*A)."""
    scns = [s for s in generate(1, 1500) if is_atlab_only(s)]
    assert 0.03 * 1500 < len(scns) < 0.1 * 1500
    for s in scns:
        outs = run_model(s)
        if "atlab-only:error-expected" in s["tags"]:
            assert all(o.kind == "error" for o in outs), (s["name"], outs)
        if "atlab-only:feature-off" in s["tags"]:
            assert any((v is False and k != "FEAT_ATS1A") or k == "PAMax"
                       for k, v in s["features"].items()), s["features"]
        if "atlab-only:ats1a" in s["tags"]:
            assert s["features"] == {"FEAT_ATS1A": True}
            for op, out in zip(s["ops"], outs, strict=True):
                if op["op"] in ("S1E1A", "S1E2A", "S1E3A") and s["el"] == 3:
                    assert out.kind == "par", (s["name"], op, out)


def test_atlab_only_scenarios_are_not_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    """compare() never sends atlab-only scenarios to QEMU; record() never puts them in a
    corpus."""
    scns = generate(1, 300)
    only = [s for s in scns if is_atlab_only(s)]
    assert only
    sent: list[Mapping[str, Any]] = []

    def fake_qemu(batch: Sequence[Mapping[str, Any]], qemu: str = "10") -> list[list[Outcome]]:
        sent.extend(batch)
        return [run_model(s) for s in batch]  # QEMU agreeing with atlab

    monkeypatch.setattr("tools.difftest.compare.run_qemu", fake_qemu)
    rep = compare(scns, shrink_mismatches=False, log=lambda _: None)
    assert not any(is_atlab_only(s) for s in sent)
    assert len(sent) == len(scns) - len(only)
    assert rep.atlab_only == len(only) and rep.scenarios == len(sent)
    assert not rep.mismatches
    corpus, _ = record(scns, [run_model(s) for s in scns], [run_model(s) for s in scns])
    assert not any(is_atlab_only(s) for s in corpus)


def test_coverage_report_small() -> None:
    """``python -m tools.difftest --coverage`` on a small count: every measured file is
    reported with lines and branches, unreached lines carry a reason or NOT EXPLAINED, and
    the per-tag table has a row per tag; the QEMU 11 and POE profiles run too and reach the
    overlay code (``perms._apply_overlay``) that no QEMU 10 scenario reaches."""
    rep = measure([1], 150)
    assert [f.name for f in rep.files] == list(MEASURED)
    for f in rep.files:
        assert 0 < f.covered <= f.statements and 0 <= f.covered_branches <= f.branches
    walk_s1 = rep.files[0]
    assert walk_s1.covered / walk_s1.statements > 0.8
    assert rep.tags["profile:qemu10"].scenarios == 150 and not rep.differences
    assert rep.scenarios == sum(rep.tags[f"profile:{p}"].scenarios
                                for p in ("qemu10", "qemu11", "poe"))
    text = rep.text()
    for want in ("walk_s1.py", "walk_s2.py", "syndrome.py", "granule.py", "descriptors.py",
                 "unreached (reason):", "lines only this tag reaches", "regime:EL1&0",
                 "IMPDEF_TXSZ_OUT_OF_RANGE", "profile:qemu11", "profile:poe"):
        assert want in text, want
    # a per-tag row: scenarios carrying the tag and the lines they reach
    el3 = rep.tags["el:3"]
    assert el3.scenarios > 0 and el3.lines and el3.only <= el3.lines
    # AArch64.S1OverlayPermissions() (FEAT_S1POE): only the POE profile reaches it
    src = (Path(MEASURED_DIR) / "perms.py").read_text().splitlines()
    overlay = next(n for n, line in enumerate(src, 1) if line.startswith("def _apply_overlay"))
    body = {("perms", n) for n in range(overlay + 1, overlay + 20)}
    assert body & rep.tags["profile:poe"].only
    assert not body & rep.tags["profile:qemu10"].lines


def test_profile_scenarios() -> None:
    """The coverage run's scenarios: every generated one (QEMU 10), the QEMU 11 profile's
    when it changes what runs (Armv8.9 registers, FEAT_ATS1A ops), and POE variants that are
    atlab-only with FEAT_S1POE/S2POE on; names stay unique (one coverage context each)."""
    from tools.difftest.covreport import POE_SHARE, profile_scenarios

    scns = list(profile_scenarios(5, 400))
    names = [s["name"] for s in scns]
    assert len(set(names)) == len(names)
    by = {p: [s for s in scns if f"profile:{p}" in s["tags"]] for p in ("qemu10", "qemu11",
                                                                          "poe")}
    assert len(by["qemu10"]) == 400 and len(by["qemu10"]) + len(by["qemu11"]) + len(
        by["poe"]) == len(scns)
    assert any(t.startswith(("pie:", "aie:")) for s in by["qemu11"] for t in s["tags"])
    assert all(s["features"].get("FEAT_ATS1A") for s in by["qemu11"])
    assert 0.5 * POE_SHARE * 400 < len(by["poe"]) < 2 * POE_SHARE * 400
    for s in by["poe"]:
        assert is_atlab_only(s) and "atlab-only:poe" in s["tags"]
        assert s["features"]["FEAT_S1POE"] and s["features"]["FEAT_S2POE"]
    poe_tags = {t for s in by["poe"] for t in s["tags"]}
    assert {"poe:EL1&0", "e0poe"} <= poe_tags and any(t.startswith("poe:EL2") for t in poe_tags)


def test_poe_variant_refuses_features_atlab_does_not_model() -> None:
    """POE variants that set a FEAT_THE/HAFT/D128 bit (tag ``not-modelled:*``): atlab refuses
    the ops whose walks read the register (``refuse_not_modelled``), and only those
    variants meet that refusal."""
    from tools.difftest.covreport import profile_scenarios

    poe = [s for seed in (1, 2, 3) for s in profile_scenarios(seed, 600)
           if "profile:poe" in s["tags"]]
    marked = [s for s in poe if any(t.startswith("not-modelled:") for t in s["tags"])]
    assert marked and len(marked) < len(poe) / 4
    refused = 0
    for s in poe:
        outs = run_model(s)
        hit = [o for o in outs if o.kind == "error" and "which atlab does not model" in o.text]
        if s in marked:
            refused += bool(hit)
        else:
            assert not hit, (s["name"], hit)
    assert refused >= len(marked) / 3, (refused, len(marked))


def test_unreachable_snippets_name_one_place() -> None:
    """Every UNREACHABLE/UNREACHABLE_BRANCHES snippet occurs exactly once in its file, every
    UNREACHABLE_FUNCTIONS name is a function of its file (an entry whose code moved away would
    silently explain nothing)."""
    from tools.difftest.covreport import (
        UNREACHABLE,
        UNREACHABLE_BRANCHES,
        UNREACHABLE_FUNCTIONS,
        _function_bodies,
    )

    for table in (UNREACHABLE, UNREACHABLE_BRANCHES):
        for name, rows in table.items():
            assert name in MEASURED, name
            src = (Path(MEASURED_DIR) / f"{name}.py").read_text()
            for snippet, why in rows:
                assert src.count(snippet) == 1, (name, snippet[:60])
                assert why, (name, snippet[:60])
    for name, funcs in UNREACHABLE_FUNCTIONS.items():
        bodies = _function_bodies(name)
        for func, why in funcs:
            assert func in bodies and why, (name, func)


def test_coverage_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from tools.difftest.__main__ import main

    main(["--coverage", "--seed", "2", "--count", "40"])
    out = capsys.readouterr().out
    assert "40 generated scenarios" in out and "total" in out


def test_v94_lower_el_scenarios_keep_the_harness_running() -> None:
    """QEMU 11 profile, ops at EL1/EL2 (tools/hw/README.md, "QEMU 11.1"): when that EL's own
    translation maps the harness, the PIR/PIRE0 entry its blocks select leaves them
    privileged-executable (``AArch64.S1IndirectBasePermissions()``), the S2PIR_EL2 entry of its
    stage 2 blocks gives read and EL1 execute (``AArch64.S2IndirectBasePermissions()``), and AIE
    leaves bit 59 (PXNTable, which QEMU 11 still applies with AIE) clear on its path."""
    from atlab.scenario import parse_scenario
    from atlab.walk_s2 import S2PI_RW, s2_pi_index
    from tools.difftest.generator import harness_probe, qemu11_profile

    scns = [qemu11_profile(s) for s in generate(21, 600)]
    lower = [s for s in scns if "v94:lower-el" in s["tags"]]
    mapped = [s for s in lower if "v94:harness-mapped" in s["tags"]]
    assert len(lower) > 60 and len(mapped) > 40
    assert {s["el"] for s in mapped} == {1, 2}
    assert any(t.startswith("pie:") for s in mapped for t in s["tags"])
    for s in mapped:
        (res,) = parse_scenario(harness_probe(s)).run()
        assert res.par is not None and res.par.f == 0, s["name"]
        if res.perms is not None:  # the op's EL runs the harness with stage 1 on
            assert res.perms.x, (s["name"], str(res.perms))
            tables = [st.raw for st in res.trace.steps if st.stage == 1 and st.kind == "table"]
            assert not any(raw >> 59 & 1 for raw in tables), s["name"]
        s2pir = int(s["sysregs"].get("S2PIR_EL2", "0"), 16)
        if s["el"] == 1 and res.trace.final_s2 and int(s["sysregs"]["VTCR_EL2"], 16) >> 36 & 1:
            s2pi = s2pir >> 4 * s2_pi_index(res.trace.final_s2[-1].raw) & 0xF
            assert S2PI_RW[s2pi][0] and s2pi >> 3 & s2pi >> 1 & 1, s["name"]
