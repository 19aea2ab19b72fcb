"""Scenario files: parsing, validation errors, running ops in order on one memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlab import AtlabError, AtOp, load_scenarios, parse_scenario
from atlab.features import Feature
from atlab.scenario import MISSING, parse_scenarios

DATA = Path(__file__).parent / "data"
SMOKE = DATA / "conformance" / "smoke.json"

BASE = {
    "name": "base",
    "sysregs": {"HCR_EL2": "0x80000000", "MAIR_EL1": "0x4400ff", "TCR_EL1": "0x500803510",
                "TTBR0_EL1": "0x40200000", "SCTLR_EL1": "0x30d00801"},
    "memory": [{"pa": "0x40200120", "u64": "0x0000000040201003"},
               {"pa": "0x40201688", "u64": "0x0000000040202003"},
               {"pa": "0x40202598", "u64": "0x0000000040203003"},
               {"pa": "0x40203c48", "u64": "0x0000000045678303"}],  # AF=0
    "ops": [{"op": "S1E1R", "va": "0x123456789000"}],
}


def test_smoke_file_loads_with_expectations() -> None:
    scenarios = load_scenarios(SMOKE)
    assert len(scenarios) == 9
    first = scenarios[0]
    assert first.el == 2 and first.ops[0].op is AtOp.S1E1R
    assert first.ops[0].expected_par == 0xFF00000045678B80
    exc_op = scenarios[4].ops[1]
    assert exc_op.expected_par is None and exc_op.expected_exception is not None


def test_defaults_and_unknown_keys_ignored() -> None:
    sc = parse_scenario({"sysregs": {}, "ops": [], "annotation": "ignored", "x-note": 1})
    assert sc.el == 2 and sc.features.has(Feature.ATS1A) and sc.ops == ()
    assert parse_scenario(BASE).ops[0].expected_par is MISSING


def test_features_switch_off_behaviour() -> None:
    sc = parse_scenario({**BASE, "features": {"FEAT_ATS1A": False},
                         "ops": [{"op": "S1E1A", "va": "0x123456789000"}]})
    res = sc.run()[0]
    assert res.par is None and res.exception is not None and res.exception.ec == 0


def test_ops_share_memory_so_hardware_af_updates_persist() -> None:
    # TCR_EL1.HA=1 (bit 39): the first AT sets AF in the descriptor (AT_UPDATES_AF).
    sc = parse_scenario({**BASE, "sysregs": {**BASE["sysregs"], "TCR_EL1": "0x8500803510"},
                         "ops": [{"op": "S1E1R", "va": "0x123456789000"}] * 2})
    mem = sc.fresh_memory()
    results = sc.run(mem=mem)
    assert all(r.par is not None and not r.par.f for r in results)
    assert mem.peek(0x40203C48) == 0x45678703


def test_yaml_with_comments_and_hex(tmp_path: Path) -> None:
    text = """
# a YAML scenario
name: yaml
el: 2
sysregs:
  HCR_EL2: 0x80000000      # RW
  TCR_EL1: "0x500803510"
  MAIR_EL1: 0x4400ff
  TTBR0_EL1: 0x40200000
  SCTLR_EL1: 0x30d00801
memory:
  - {pa: 0x40200120, u64: 0x40201003}
  - {pa: 0x40201688, u64: 0x40202003}
  - {pa: 0x40202598, u64: 0x40203003}
  - {pa: 0x40203c48, u64: 0x45678703}
ops:
  - {op: S1E1R, va: 0x123456789abc}
"""
    path = tmp_path / "s.yaml"
    path.write_text(text)
    (sc,) = load_scenarios(path)
    par = sc.run()[0].par
    assert par is not None and par.value == 0xFF00000045678B80


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({**BASE, "el": 0}, "'el' must be 1, 2 or 3"),
        ({**BASE, "el": True}, "'el' must be 1, 2 or 3"),
        ({**BASE, "sysregs": {"TCR_EL7": 1}}, "unknown register 'TCR_EL7'"),
        ({**BASE, "sysregs": []}, "'sysregs' must be a mapping"),
        ({**BASE, "memory": [{"pa": "0x1001", "u64": 1}]}, "8-byte aligned"),
        ({**BASE, "memory": [{"pa": "0x1000"}]}, "must have 'pa' and 'u64'"),
        ({**BASE, "memory": [{"pa": 8, "u64": 1}, {"pa": 8, "u64": 2}]}, "given twice"),
        ({**BASE, "memory": [{"pa": 8, "u64": 1 << 64}]}, "does not fit"),
        ({**BASE, "ops": [{"op": "S1E9R", "va": 0}]}, "unknown AT operation"),
        ({**BASE, "ops": [{"op": "S1E1R"}]}, "must have 'op' and 'va'"),
        ({**BASE, "ops": [{"op": "S1E1R", "va": "zz"}]}, "not a number"),
        ({**BASE, "ops": [{"op": "S1E1R", "va": 0, "pan": 2}]}, "'pan' must be 0 or 1"),
        ({**BASE, "features": {"FEAT_NOPE": False}}, "unknown feature"),
        ({**BASE, "features": {"FEAT_VHE": "no"}}, "must be true or false"),
        ({**BASE, "ops": "S1E1R"}, "'ops' must be a list"),
        ([1], "a scenario must be a mapping"),
    ],
    ids=["el-0", "el-bool", "unknown-reg", "sysregs-list", "misaligned-pa", "memory-no-u64",
         "duplicate-pa", "u64-too-big", "unknown-op", "op-no-va", "bad-va", "bad-pan",
         "unknown-feature", "feature-not-bool", "ops-not-list", "not-a-mapping"],
)
def test_malformed_scenarios_give_one_line_errors(doc: object, message: str) -> None:
    with pytest.raises(AtlabError, match=message) as info:
        parse_scenarios(doc, source="test.json")
    assert str(info.value).startswith("test.json")
    assert "\n" not in str(info.value)


def test_to_dict_round_trips() -> None:
    (sc,) = load_scenarios(SMOKE)[:1]
    again = parse_scenario(json.loads(json.dumps(sc.to_dict())))
    assert again == sc
