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
import os
from pathlib import Path

import pytest

from atlab.nv.kvm import DEVIATIONS
from tools.difftest.kvm import compare_kvm, explain, generate_nv, load_corpus

CORPUS = Path(__file__).resolve().parent / "data" / "kvm" / "corpus-6.12.json"


@pytest.fixture(scope="module")
def corpus() -> tuple[list[dict[str, object]], list[list[tuple[object, ...]]], str]:
    return load_corpus(CORPUS)  # type: ignore[return-value]


def test_replayed_corpus_matches_kvm_and_every_deviation_is_named(corpus: tuple) -> None:  # type: ignore[type-arg]
    nvs, answers, kernel = corpus
    assert kernel.startswith("6.12.")
    rep = compare_kvm(nvs, kvm=answers, kernel=kernel, shrink=False)  # type: ignore[arg-type]
    assert rep.ops > 5000
    assert rep.mismatches == [] and rep.unexplained == []
    # the corpus exercises most of the table, and KVM agrees with the architecture on a
    # good share of ops
    assert len(rep.deviations) >= 20
    assert rep.same_as_arch > 1000


def test_a_flipped_recorded_bit_is_a_mismatch(corpus: tuple) -> None:  # type: ignore[type-arg]
    nvs, answers, kernel = corpus
    nvs, answers = nvs[:40], copy.deepcopy(answers[:40])
    i = next(i for i, a in enumerate(answers) if a[0][0] == "par")
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


@pytest.fixture(scope="module")
def kvm_binary() -> Path:
    from tools.kvm import harness

    src = harness.kernel_source()
    if not Path(src).exists() and os.environ.get("CI") != "true":
        pytest.skip(f"no kernel tree at {src}: install linux-source-6.12 "
                    "(tools/install-system-deps.sh) or set KERNEL_SRC")
    return harness.build()


def test_live_model_equals_kvm_on_generated_scenarios(kvm_binary: Path) -> None:
    nvs = generate_nv(31, 700)
    rep = compare_kvm(nvs, binary=kvm_binary, shrink=False)
    assert rep.ops > 3000
    assert rep.mismatches == [], rep.mismatches[:3]
    assert rep.unexplained == [], rep.unexplained[:3]
