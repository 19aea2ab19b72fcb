"""KVM's own code as the judge of atlab.nv (tools/difftest/kvm.py).

- The committed corpus (generated NV scenarios with the answers KVM 6.12.118's at.c gave) is
  replayed without a kernel tree: the model must give every recorded answer, and every
  difference between KVM and the architecture must be covered by a named deviation.
- A live comparison against the harness built from Debian's linux-source-6.12 (skipped only
  outside CI when the tarball is absent; with CI=true a missing build fails).
- The checks can fail: a flipped bit in a recorded answer, or a deviation the model forgets to
  record, is reported.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from atlab.nv.kvm import DEVIATIONS
from tools.difftest.kvm import compare_kvm, explain, generate_nv, load_corpus, run_atlab

DATA = Path(__file__).resolve().parent / "data" / "kvm"
CORPUS = DATA / "corpus-6.12-max.json"


@pytest.fixture(scope="module")
def corpus() -> tuple[list[dict[str, object]], list[list[tuple[object, ...]]], str]:
    return load_corpus(CORPUS)  # type: ignore[return-value]


@pytest.mark.parametrize(("name", "kinds"), [("corpus-6.12-max.json", 20),
                                             ("corpus-6.12-nv.json", 15)],
                         ids=["cpu-max-features", "kvm-nv-guest-features"])
def test_replayed_corpus_matches_kvm_and_every_deviation_is_named(name: str,
                                                                  kinds: int) -> None:
    nvs, answers, kernel = load_corpus(DATA / name)
    assert kernel.startswith("6.12.")
    rep = compare_kvm(nvs, kvm=answers, kernel=kernel, shrink=False)
    assert rep.ops > 3000
    assert rep.mismatches == [] and rep.unexplained == []
    # the corpus exercises most of the table, and KVM agrees with the architecture on a
    # good share of ops
    assert len(rep.deviations) >= kinds
    assert rep.same_as_arch > 800


def test_a_flipped_recorded_bit_is_a_mismatch(corpus: tuple) -> None:  # type: ignore[type-arg]
    nvs, answers, kernel = corpus
    nvs, answers = nvs[:40], copy.deepcopy(answers[:40])
    i = next(i for i, (nv, a) in enumerate(zip(nvs, answers, strict=True))
             if a[0][0] == "par" and run_atlab(nv)[0][0][0] == "par"
             and run_atlab(nv)[1][0][0] == "par")
    kind, par, warned = answers[i][0]
    answers[i][0] = (kind, int(par) ^ (1 << 12), warned)  # type: ignore[call-overload]
    rep = compare_kvm(nvs, kvm=answers, kernel=kernel, shrink=False)  # type: ignore[arg-type]
    assert len(rep.mismatches) == 1


@pytest.mark.parametrize(
    ("model", "arch", "fired", "expected"),
    [
        (("par", 0x801, False), ("par", 0x801, False), frozenset(), ()),
        # NS only: covered by no-ns-bit (bit 9), not by ptw-on-stage1-fault (bit 8)
        (("par", 0xFF00_0000_1000_0980, False), ("par", 0xFF00_0000_1000_0B80, False),
         frozenset({"no-ns-bit"}), ("no-ns-bit",)),
        (("par", 0xFF00_0000_1000_0980, False), ("par", 0xFF00_0000_1000_0B80, False),
         frozenset({"ptw-on-stage1-fault"}), None),
        # a different PA needs an outcome-level deviation
        (("par", 0x1000_0800, False), ("par", 0x2000_0800, False),
         frozenset({"no-ns-bit", "sctlr-c0-attr-nc"}), None),
        (("par", 0x1000_0800, False), ("par", 0x809, False),
         frozenset({"no-access-flag-fault"}), ("no-access-flag-fault",)),
        # KVM UNDEFINED vs an architectural PAR: only an outcome-level deviation explains it
        (("undef",), ("par", 0x801, False), frozenset({"no-ns-bit"}), None),
    ],
    ids=["same", "ns-covered", "ns-not-covered-by-ptw", "pa-not-covered", "af-outcome",
         "undef-vs-par"],
)
def test_explain_covers_only_the_bits_a_deviation_may_change(
        model: tuple[object, ...], arch: tuple[object, ...], fired: frozenset[str],
        expected: tuple[str, ...] | None) -> None:
    assert explain(model, arch, fired) == expected


def test_every_deviation_is_documented() -> None:
    for name, dev in DEVIATIONS.items():
        assert dev.name == name and dev.summary and dev.rule and dev.versions == ("6.12",)
        assert dev.where.startswith(("at.c", "nested.c", "sys_regs.c", "vhe/switch.c")), name


REPRODUCERS = sorted((DATA / "reproducers").glob("*.json"))


@pytest.mark.parametrize("path", REPRODUCERS, ids=[p.stem for p in REPRODUCERS])
def test_minimal_reproducer_gives_kvms_answer_and_shows_its_deviation(path: Path) -> None:
    """Each committed reproducer (one op) holds the PAR KVM's at.c wrote: the model gives it,
    the architecture differs, and the named deviation is what explains the difference."""
    import json

    nv = json.loads(path.read_text())
    model, arch, fired = run_atlab(nv, fast_path=nv.get("kvm_mode") == "hardware")
    assert model[0] == tuple(nv["kvm"][0])
    assert model[0] != arch[0]
    why = explain(model[0], arch[0], fired[0])
    assert why is not None and path.stem in why


def test_the_deviation_table_covers_every_reproducer_and_the_doc_is_current() -> None:
    from tools.difftest.kvm_doc import main as kvm_doc

    assert {p.stem for p in REPRODUCERS} <= set(DEVIATIONS)
    assert len(REPRODUCERS) >= 25
    assert kvm_doc(["--check"]) == 0


@pytest.mark.parametrize("features", ["max", "nv"])
def test_live_model_equals_kvm_on_generated_scenarios(kvm_at: Path, features: str) -> None:
    nvs = generate_nv(31, 500, features=features)
    rep = compare_kvm(nvs, binary=kvm_at, shrink=False)
    assert rep.ops > 2000
    assert rep.mismatches == [], rep.mismatches[:3]
    assert rep.unexplained == [], rep.unexplained[:3]


def test_live_fast_path_registers_and_answers_equal_kvms(kvm_at: Path) -> None:
    """Hardware mode: KVM's own fast path runs, its hardware ATs answered by atlab's walker on
    the registers KVM loaded; the model must load the same registers and end with the same
    PAR (six of the named deviations are fast-path ones)."""
    nvs = generate_nv(32, 400, shadow=True)
    rep = compare_kvm(nvs, binary=kvm_at, shrink=False, fast_path=True)
    assert rep.hardware is not None and rep.hardware.asked > 1000
    assert rep.hardware.register_mismatches == [], rep.hardware.register_mismatches[:3]
    assert rep.mismatches == [] and rep.unexplained == []
    assert {"fast-nv1-on-l2-walk", "fast-pan-not-copied"} <= set(rep.deviations)
