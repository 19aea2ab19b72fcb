"""Programs on PEs (atlab.pe): scenario files with a ``program``, and ``atlab tlb run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from atlab import AtlabError
from atlab.cli import main
from atlab.pe import load_tlb_programs, parse_tlb_program

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tlb" / "maintenance.yaml"


def _base() -> dict[str, Any]:
    return dict(yaml.safe_load(EXAMPLE.read_text())[0])


def test_example_programs_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Every expectation in the example file (written from the rules) holds."""
    assert main(["tlb", "run", "--check", str(EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert "checked: 0 mismatches" in err
    assert "# two-pes-need-the-is-form" in out and "PE1 #4 gone" in out
    for prog in load_tlb_programs(str(EXAMPLE)):
        machine, problems = prog.run()
        assert problems == [] and machine.pending() == []


def test_a_wrong_expectation_is_reported(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    sc = _base()
    # Claim the TLBI took effect before the ISB: it has not on the issuing PE (R_BLDZX).
    sc["program"][5] = {"at": "S1E1R", "va": 0x1000_0000, "expected_pa": 0x4A00_0000,
                        "expected_hit": False}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump([sc]))
    assert main(["tlb", "run", "--check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "step 5 (AT S1E1R): expected PA 0x4a000000, got PAR_EL1=" in err
    assert "expected a TLB miss, got a hit" in err


def test_json_records(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tlb", "run", "--json", str(EXAMPLE)]) == 0
    out = json.loads(capsys.readouterr().out)
    first = out[0]
    assert first[0] == {"pe": 0, "insn": "AT S1E1R, 0x10000000", "hit": False,
                        "par": "0xff00000041000b80",
                        "note": "TLB miss: PAR_EL1=0xff00000041000b80 F=0 PA=0x41000000 "
                                "ATTR=0xff SH=ISH NS=1"}
    assert [r["hit"] for r in first if r["insn"].startswith("AT")] == [False, True, True, False]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"program": []}, "'program' must be a non-empty list of steps"),
        ({"program": "at"}, "'program' must be a non-empty list of steps"),
        ({"program": [42]}, "program step 0 must be a mapping"),
        ({"program": [{"at": "S1E1R", "tlbi": "VAE1", "va": 0}]},
         "program step 0 needs exactly one of at, store, msr, tlbi, dsb, isb"),
        ({"program": [{"at": "S1E1R"}]}, "program step 0 (at): needs 'va'"),
        ({"program": [{"at": "S1E9R", "va": 0}]}, "S1E9R"),
        ({"program": [{"at": "S1E1R", "va": 0, "colour": 1}]}, "unknown key(s) colour"),
        ({"program": [{"at": "S1E1R", "va": "zz"}]}, "program step 0 va"),
        ({"program": [{"at": "S1E1R", "va": 0, "expected_hit": "yes"}]},
         "'expected_hit' must be true or false"),
        ({"program": [{"tlbi": "VAE9", "va": 0}]}, "unknown TLBI 'VAE9'"),
        ({"program": [{"tlbi": "VAE1"}]}, "TLBI VAE1 needs the operand va"),
        ({"program": [{"tlbi": "VMALLE1", "va": 0}]}, "TLBI VMALLE1 takes no va operand"),
        ({"program": [{"store": 0x40203004, "value": 0}]}, "is not 8-byte aligned"),
        ({"program": [{"store": 0x40203000}]}, "needs 'value'"),
        ({"program": [{"msr": "TCR_EL9", "value": 0}]}, "TCR_EL9"),
        ({"program": [{"dsb": "XYZ"}]}, "dsb takes true or a domain"),
        ({"program": [{"isb": True, "pe": 1}]}, "'pe' must be 0..0"),
        ({"pes": 0}, "'pes' must be 1..8"),
        ({"tlb": {"capacity": -1}}, "TLB capacity must be 0 or more"),
        ({"tlb": {"replacement": "random"}}, "'tlb.replacement' must be fifo or lru"),
        ({"tlb": {"walk_cache": "no"}}, "'tlb.walk_cache' must be true or false"),
        ({"tlb": {"size": 4}}, "'tlb': unknown key(s) size"),
    ],
    ids=["empty", "not-a-list", "step-not-mapping", "two-instructions", "at-no-va",
         "bad-at-op", "unknown-key", "bad-hex", "bad-expected-hit", "bad-tlbi", "tlbi-no-va",
         "tlbi-extra-operand", "store-unaligned", "store-no-value", "msr-bad-reg", "dsb-bad",
         "pe-out-of-range", "pes-zero", "capacity-negative", "bad-replacement",
         "bad-walk-cache", "tlb-unknown-key"],
)
def test_malformed_programs_give_one_line(change: dict[str, Any], message: str,
                                          tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    sc = {**_base(), **change}
    with pytest.raises(AtlabError) as exc:
        parse_tlb_program(sc, source="p.yaml")
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert str(exc.value).startswith("p.yaml: stale-leaf-until-tlbi-dsb-isb")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(sc))
    assert main(["tlb", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atlab: error: ") and err.count("\n") == 1 and "Traceback" not in err
