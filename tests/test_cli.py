"""The atlab command line: run, --check, --full, decode; bad input gives exit 2, one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlab.cli import main

SMOKE = Path(__file__).parent / "data" / "conformance" / "smoke.json"


def test_run_check_passes_on_qemu_smoke_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--check", str(SMOKE)]) == 0
    out, err = capsys.readouterr()
    results = json.loads(out)
    assert len(results) == 9
    assert results[0][0] == "0xff00000045678b80"
    assert results[4][1] is None  # the stage 2 abort taken to EL2 writes no PAR
    assert "40 ops: 0 mismatches" in err


def test_run_single_scenario_gives_flat_list(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(SMOKE.read_text())[0]
    path = tmp_path / "one.json"
    path.write_text(json.dumps(doc))
    assert main(["run", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0] == "0xff00000045678b80" and len(out) == 6


def test_run_full_has_fields_trace_and_exception(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--full", str(SMOKE)]) == 0
    out = json.loads(capsys.readouterr().out)
    op = out[3][0]  # S12E1R through stage 2
    assert op["par_fields"]["PA"] == "0x45678000"
    assert op["accesses"]["total"] == op["accesses"]["stage1"] + op["accesses"]["stage2"]
    assert any("S2" in line for line in op["trace"])
    exc = out[4][1]["exception"]
    assert exc["taken_to_el"] == 2 and exc["esr"] == "0x00000000920001c6"
    assert exc["hpfar"] == "0x0000000000700000"


def test_check_reports_mismatch_with_exit_1(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(SMOKE.read_text())[0]
    doc["ops"][0]["expected_par"] = "0xff00000045679b80"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    assert main(["run", "--check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "MISMATCH" in err and "0x45679000" in err and "1 mismatches" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ('{"ops": [{"op": "S1E1R", "va": "0x1"}], "sysregs": {"TCR_EL5": 1}}', "unknown register"),
        ('{"ops": [{"op": "NOPE", "va": 1}]}', "unknown AT operation"),
        ('{"sysregs": {"TCR_EL1": "0xc000"}, "ops": [{"op": "S1E1R", "va": 0}],'
         ' "el": 2}', "TG0=0b11 is a reserved"),
    ],
    ids=["bad-json", "unknown-register", "unknown-op", "reserved-TG0"],
)
def test_bad_input_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   content: str, message: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    sysregs_fix = content.replace('"TCR_EL1": "0xc000"', '"TCR_EL1": "0xc000", '
                                  '"SCTLR_EL1": 1, "HCR_EL2": "0x80000000"')
    path.write_text(sysregs_fix)
    assert main(["run", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_missing_file_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "/nonexistent/x.json"]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["decode", "par", "0xb0d"], "FST=translation L2 S=1 PTW=1"),
        (["decode", "par", "0xff00000045678b80"], "PA=0x45678000 ATTR=0xff SH=ISH"),
        (["decode", "desc", "0x45678703", "--level", "3"], "OA=0x45678000 AF=1 SH=3"),
        (["decode", "desc", "0x40201003", "--level", "0"], "next_table=0x40201000"),
        (["decode", "desc", "0x40000701", "--level", "1", "--granule", "16K"], "kind=reserved"),
        (["decode", "reg", "TCR_EL1", "0x500803510"], "TG1=0(reserved)"),
        (["decode", "reg", "TCR_EL2", "0x80853510"], "PS=5(48 bits)"),
    ],
    ids=["par-fault", "par-success", "desc-page", "desc-table", "desc-16K-L1-block",
         "reg-TCR_EL1", "reg-TCR_EL2-E2H0"],
)
def test_decode(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    assert expected in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["decode", "par", "0xzz"], ["decode", "reg", "FOO", "1"],
                                  ["decode", "desc", "1", "--granule", "8K"]],
                         ids=["bad-hex", "unknown-reg", "bad-granule"])
def test_decode_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("atlab: error: ")


NV_EXAMPLE = Path(__file__).parent.parent / "examples" / "nv_l1_guest_hypervisor.json"


def test_nv_run_reports_par_route_and_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nv", "run", str(NV_EXAMPLE)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["route"] == "TRAP_L0" and rows[0]["path"] == "software walker"
    # the software walker reads through the host mapping: the hole stays, so slow again
    assert rows[1]["path"] == "software walker" and rows[0]["par"] == rows[1]["par"]
    assert rows[-1]["route"] == "UNDEFINED" and rows[-1]["par"] is None
    assert all("kvm_deviations" not in r for r in rows)


def test_nv_run_full_and_kvm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nv", "run", "--full", "--kvm", str(NV_EXAMPLE)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any("holes stay holes" in line or "KVM 6.12" in line for line in rows[0]["narration"])
    # KVM reports the stage 1 level (0) for the stage 2 fault on TTBR1's table: 0xb09.
    assert rows[4]["par"] == "0x0000000000000b09"
    assert "s2-fault-level-is-s1-level" in rows[4]["kvm_deviations"]


def test_nv_run_honours_an_ops_pan_and_shadow_attributes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(NV_EXAMPLE.read_text())
    # L2's page 0x85678000 (L1 IPA 0x45678000) is EL0-accessible: with PAN=1, S1E1RP
    # faults (permission, level 3); with PAN=0 it translates.
    doc["ops"] = [{"op": "S1E1RP", "va": "0x123456789000", "pan": 1},
                  {"op": "S1E1RP", "va": "0x123456789000", "pan": 0}]
    doc["vsysregs"]["HCR_EL2"] = "0x480000001"  # vE2H=1 so that AT S1E1RP walks EL1&0
    for m in doc["l1_memory"]:  # L2's leaf: AP[1]=1 (EL0 read/write)
        if m["ipa"] == "0x40203c48":
            m["u64"] = "0x0000000085678743"
    doc["shadow_s2"] = [{"l2_ipa": "0x85678000", "pa": "0x145678000", "s2ap": "ro",
                         "memattr": 1}]
    path = tmp_path / "nv.json"
    path.write_text(json.dumps(doc))
    assert main(["nv", "run", str(path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert int(rows[0]["par"], 16) & 1 and int(rows[0]["par"], 16) >> 1 & 0x3F == 0b001111
    assert not int(rows[1]["par"], 16) & 1
    from atlab.nv.model import load_nv_scenarios, shadow_desc

    (sc,) = load_nv_scenarios(str(path))
    desc = shadow_desc(dict(sc.shadow)[0x8567_8000])
    assert desc >> 6 & 3 == 0b01 and desc >> 2 & 0xF == 1  # read-only, Device-nGnRE
    doc["shadow_s2"][0]["s2ap"] = "rx"
    path.write_text(json.dumps(doc))
    assert main(["nv", "run", str(path)]) == 2
    assert "s2ap must be one of" in capsys.readouterr().err


@pytest.mark.parametrize("content", ['{"context": "L9", "ops": []}', "[1, 2", '{"ops": 3}'],
                         ids=["bad-context", "bad-json", "ops-not-list"])
def test_nv_run_bad_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                content: str) -> None:
    path = tmp_path / "nv.json"
    path.write_text(content)
    assert main(["nv", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atlab: error: ") and err.count("\n") == 1
