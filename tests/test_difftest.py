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

from tools.difftest.compare import compare, replay, run_model, shrink
from tools.difftest.generator import generate
from tools.difftest.outcome import Outcome

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
        assert s["tags"] and s["features"] == {"FEAT_ATS1A": False}
        assert all(isinstance(run_model(s)[0], Outcome) for _ in (0,))


def test_ats1a_ops_are_undefined() -> None:
    """FEAT_ATS1A is off in every generated scenario: AT S1E1A / S1E2A are UNDEFINED."""
    scns = [s for s in generate(1, 200) if "op:ats1a-undef" in s["tags"]]
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
