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


# A stage 1 page: UXN=1, PXN=0, DBM=0, AP[1]=1 (PIIndex 0b1001), POIndex (bits [62:60])
# 0b010, bit 59 set (AttrIndx[3] with AIE), AttrIndx[2:0]=0b011.
LEAF = f"{1 << 54 | 0b010 << 60 | 1 << 59 | 1 << 6 | 0b011 << 2 | 0x4567_8703:#x}"


@pytest.mark.parametrize(
    ("extra", "lines"),
    [
        # AArch64.S1IndirectBasePermissions(): PIIndex = UXN:PXN:DBM:AP[1] selects PIR/PIRE0
        (["--pie", "--pir", "0x5" + "0" * 9, "--pire0", "0x1" + "0" * 9],
         ["PIIndex=0b1001 nDirty=0",
          "PIIndex 0b1001 → PIR_EL1[39:36] = 0b0101 (RW)",
          "PIIndex 0b1001 → PIRE0_EL1[39:36] = 0b0001 (R)"]),
        # AArch64.S1OverlayPermissions(): POIndex selects POR_EL1 (privileged), POR_EL0
        (["--poe", "--por", "0x300", "--por-el0", "0x700"],
         ["POIndex=0b010", "POIndex 0b010 → POR_EL1[11:8] = 0b0011 (RX)",
          "POIndex 0b010 → POR_EL0[11:8] = 0b0111 (RWX)"]),
        # AArch64.S1TTWParamsEL10(): with AIE, AttrIndx[3] is bit 59 and selects MAIR2_EL1
        (["--aie", "--mair2", "0x44000000"],
         ["AttrIndx=11", "AttrIndx 0b1011 → MAIR2_EL1.Attr3 = 0x44 (Normal iNC oNC)"]),
        # without AIE bit 59 is PXNTable's place in a table, ignored in a leaf: MAIR_EL1
        (["--mair", "0xff000000"], ["AttrIndx=3", "AttrIndx 0b011 → MAIR_EL1.Attr3 = 0xff"]),
        # the EL2 regime: PIR_EL2, POR_EL2, MAIR_EL2
        (["--regime", "EL2", "--pie", "--pir", "0x7" + "0" * 9, "--poe", "--por", "0x100"],
         ["PIIndex 0b1001 → PIR_EL2[39:36] = 0b0111 (RWX)",
          "POIndex 0b010 → POR_EL2[11:8] = 0b0001 (R)"]),
        # AArch64.S2IndirectBasePermissions(): the stage 2 PIIndex selects S2PIR_EL2
        (["--stage", "2", "--pie", "--pir", "0xf" + "0" * 9],
         ["PIIndex=0b1001", "Dirty=0", "→ S2PIR_EL2[39:36] = 0b1111"]),
    ],
    ids=["S1PIE-PIR-PIRE0", "S1POE-POR-POR_EL0", "AIE-MAIR2", "no-AIE-MAIR", "EL2-PIE-POE",
         "S2PIE-S2PIR"],
)
def test_decode_desc_pie_poe_aie(extra: list[str], lines: list[str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "desc", LEAF, "--level", "3", *extra]) == 0
    out = capsys.readouterr().out
    for line in lines:
        assert line in out, line


def test_decode_desc_index_fields_only_with_their_controls(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without --pie/--poe/--aie the bits keep their direct meaning (UXN, PXN, AttrIndx 0b011);
    a table descriptor has no index fields."""
    assert main(["decode", "desc", LEAF, "--level", "3"]) == 0
    out = capsys.readouterr().out
    assert "UXN=1" in out and "AttrIndx=3" in out
    assert "PIIndex" not in out and "POIndex" not in out and "→" not in out
    assert main(["decode", "desc", "0x40201003", "--level", "0", "--pie", "--pir", "0x1"]) == 0
    out = capsys.readouterr().out
    assert "kind=table" in out and "PIIndex" not in out


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--pir", "0x1"], "--pir gives PIR_EL1, which a leaf selects from only with --pie"),
        (["--por", "0x1"], "--por gives POR_EL1, which a leaf selects from only with --poe"),
        (["--mair2", "0x1"], "--mair2 gives MAIR2_EL1, which a leaf selects from only with --aie"),
        (["--pie", "--pir", "0xzz"], "--pir: '0xzz' is not a number"),
        (["--pie", "--pir", "0x1" + "0" * 16], "--pir: 0x1" + "0" * 16 + " does not fit"),
        (["--regime", "EL2", "--pie", "--pire0", "0x1"], "the EL2 regime has no EL0 accesses"),
        (["--stage", "2", "--poe"], "--poe reads a stage 1 leaf (FEAT_S1POE)"),
        (["--stage", "2", "--aie"], "--aie reads a stage 1 leaf (FEAT_AIE)"),
        (["--stage", "2", "--pie", "--mair", "0x1"], "--mair gives a stage 1 register"),
        (["--level", "-1"], "level -1 exists only with the 4KB granule and DS=1"),
        (["--level", "0", "--granule", "64K"], "a 64KB walk has no level 0"),
    ],
    ids=["pir-without-pie", "por-without-poe", "mair2-without-aie", "pir-not-a-number",
         "pir-over-64-bits", "pire0-in-EL2", "poe-at-stage-2", "aie-at-stage-2",
         "mair-at-stage-2", "level-minus-1-without-DS", "64K-level-0"],
)
def test_decode_desc_errors_are_one_line(extra: list[str], error: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "desc", LEAF, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("atlab: error: ") and err.count("\n") == 1 and error in err, err


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
