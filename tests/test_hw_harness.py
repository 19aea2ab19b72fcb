"""The QEMU hardware harness (tools/hw): smoke conformance, read-back warnings, crash survival.

Tests that boot QEMU skip, with the reason, when QEMU >= 10 or the AArch64 binutils are
missing (install them with tools/install-system-deps.sh).
"""

from __future__ import annotations

import copy
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tools.hw.__main__ import main
from tools.hw.driver import (
    HarnessError,
    OpResult,
    ScenarioResult,
    check_environment,
    check_op,
    check_scenario,
    run_scenarios,
)

SMOKE_FILE = Path(__file__).parent / "data" / "conformance" / "smoke.json"
SMOKE: list[dict[str, Any]] = json.loads(SMOKE_FILE.read_text())
SMOKE_OPS = [(s, n) for s in range(len(SMOKE)) for n in range(len(SMOKE[s]["ops"]))]


def _op_id(case: tuple[int, int]) -> str:
    scenario = SMOKE[case[0]]
    return f"{scenario['name']}-{case[1]}-{scenario['ops'][case[1]]['op']}"


@pytest.fixture(scope="module")
def hw() -> str:
    """Skips the test unless QEMU >= 10 and the AArch64 binutils are installed."""
    try:
        return check_environment()
    except HarnessError as err:
        pytest.skip(f"QEMU hardware harness unavailable: {err}")


@pytest.fixture(scope="module")
def smoke_results(hw: str) -> list[ScenarioResult]:
    return run_scenarios(SMOKE)


def _by_name(name: str) -> dict[str, Any]:
    return copy.deepcopy(next(s for s in SMOKE if s["name"] == name))


def _s2_permission_fault_scenario() -> dict[str, Any]:
    """c_stage2 with the stage-2 page of the final IPA made S2AP=0b00 (no access).

    AT S12E1R then takes a stage-2 permission fault on the final IPA: the Arm ARM wants
    PAR = 0xa1f (permission fault, level 3, S=1); QEMU 10.0.2 fails an assertion instead.
    """
    scenario = _by_name("c_stage2")
    scenario["name"] = "s2_permission_fault_on_final_ipa"
    for word in scenario["memory"]:
        if word["pa"] == "0x403033c0":
            word["u64"] = "0x000000004567873f"  # was ...7ff: S2AP (bits 7:6) cleared
    scenario["ops"] = [{"op": "S12E1R", "va": "0x123456789000", "expected_par": "0xa1f"}]
    return scenario


def _hanging_scenario() -> dict[str, Any]:
    """Ops at EL1 with SCTLR_EL1.M=1 but no tables: the stub's fetch faults at EL1, and so
    does every fetch of the EL1 vectors after it: the boot makes no progress."""
    scenario = _by_name("d_pan_el1")
    scenario["name"] = "el1_mmu_on_without_tables"
    scenario["memory"] = []
    return scenario


# ---- smoke conformance ----------------------------------------------------------------------


@pytest.mark.parametrize("case", SMOKE_OPS, ids=_op_id)
def test_smoke_op_matches_qemu10(
    smoke_results: list[ScenarioResult], case: tuple[int, int]
) -> None:
    scenario, n = case
    result = smoke_results[scenario]
    assert result.crash is None
    assert check_op(SMOKE[scenario]["ops"][n], result.ops[n]) is None


def test_smoke_scenarios_all_match(smoke_results: list[ScenarioResult]) -> None:
    assert [r.name for r in smoke_results] == [s["name"] for s in SMOKE]
    for scenario, result in zip(SMOKE, smoke_results, strict=True):
        assert check_scenario(scenario, result) == []
        assert result.warnings == ()  # every smoke register value is implemented


def test_stage2_fault_during_el1_walk_is_taken_to_el2(smoke_results: list[ScenarioResult]) -> None:
    """An EL1 AT whose stage-1 walk faults at stage 2 is not reported in PAR_EL1: it is a
    data abort from a lower EL (EC 0x24, S1PTW=1) taken to EL2, with the IPA in HPFAR_EL2."""
    index = [s["name"] for s in SMOKE].index("c_stage2_ops_at_el1")
    exc = smoke_results[index].ops[1].exception
    assert exc is not None and exc.taken_to_el == 2 and exc.ec == 0x24
    assert exc.esr & (1 << 7)  # ISS.S1PTW
    assert exc.hpfar == 0x70000000 >> 8  # HPFAR_EL2.FIPA = IPA[47:12] at bits 43:4


# ---- checking -------------------------------------------------------------------------------


def test_check_op_masks_implementation_defined_and_ns_bits_of_successful_par() -> None:
    op = {"op": "S1E1R", "va": "0x0", "expected_par": "0xff00000045678380"}
    assert check_op(op, OpResult(par=0xFF00000045678B80)) is None
    assert check_op(op, OpResult(par=0xFF00000045679B80)) is not None
    fault = {"op": "S1E1R", "va": "0x0", "expected_par": "0x80f"}
    assert check_op(fault, OpResult(par=0x80F)) is None
    assert check_op(fault, OpResult(par=0x00F)) is not None  # fault PARs compare exactly
    assert check_op(fault, OpResult(None, None, crashed=True)) is not None


# ---- read-back warnings ---------------------------------------------------------------------


def test_unimplemented_register_bits_give_a_warning(hw: str) -> None:
    """SCTLR_EL1.ATA (bit 43, FEAT_MTE2) is dropped: virt has MTE only with mte=on."""
    scenario = _by_name("a_el1_4k_48bit")
    written = int(scenario["sysregs"]["SCTLR_EL1"], 16) | 1 << 43
    scenario["sysregs"]["SCTLR_EL1"] = hex(written)
    (result,) = run_scenarios([scenario])
    assert result.readbacks["SCTLR_EL1"] == written & ~(1 << 43)
    assert result.warnings == (
        f"SCTLR_EL1: wrote {written:#x}, read back {written & ~(1 << 43):#x} "
        f"(bits {1 << 43:#x} dropped)",
    )
    assert check_scenario(scenario, result) == []


# ---- crash and hang survival ----------------------------------------------------------------


def test_a_crashing_or_hanging_scenario_does_not_take_the_batch_down(hw: str) -> None:
    crash, hang = _s2_permission_fault_scenario(), _hanging_scenario()
    good = [SMOKE[0], SMOKE[2], SMOKE[3]]
    results = run_scenarios([good[0], crash, good[1], hang, good[2]], timeout=1.5)
    assert [r.name for r in results] == [good[0]["name"], crash["name"], good[1]["name"],
                                         hang["name"], good[2]["name"]]  # fmt: skip
    for scenario, result in zip(good, results[0::2], strict=True):
        assert result.crash is None and check_scenario(scenario, result) == []

    crashed = results[1]
    if crashed.crash is None:  # a QEMU without the do_ats_write assertion
        assert check_scenario(crash, crashed) == []
    else:
        assert crashed.ops == (OpResult(None, None, crashed=True),)
        assert any("during op 0 (S12E1R" in w for w in crashed.warnings)

    hung = results[3]
    assert hung.crash is not None and hung.crash.startswith("timeout")
    assert all(op.crashed for op in hung.ops)
    assert hung.readbacks["SCTLR_EL1"] == 0x30D00801  # set-up finished before the hang


# ---- errors ---------------------------------------------------------------------------------


def _fake_qemu(tmp_path: Path, version_line: str) -> str:
    fake = tmp_path / "qemu-system-aarch64"
    fake.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return str(fake)


def test_old_qemu_is_refused_with_its_version(tmp_path: Path) -> None:
    qemu = _fake_qemu(tmp_path, "QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)")
    with pytest.raises(HarnessError, match=r"QEMU 7\.2\.15; the harness needs QEMU >= 10"):
        run_scenarios(SMOKE[:1], qemu=qemu)


def test_missing_qemu_is_a_harness_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="QEMU not found"):
        run_scenarios(SMOKE[:1], qemu=str(tmp_path / "no-such-qemu"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"memory": [{"pa": "0x40100000", "u64": 1}]}, "lies in the harness code"),
        ({"memory": [{"pa": "0x7c000100", "u64": 1}]}, "lies in the job table"),
        ({"memory": [{"pa": "0x40200004", "u64": 1}]}, "8-byte aligned"),
        ({"sysregs": {"POR_EL1": 1}}, "unknown register 'POR_EL1'"),
        ({"ops": [{"op": "S1E3RP", "va": 0}]}, "unknown op 'S1E3RP'"),
        ({"el": 0}, "el must be 1, 2 or 3"),
        ({"ops": [{"op": "S1E1R", "va": 0, "pan": 2}]}, "PAN must be 0 or 1"),
    ],
    ids=["harness-region", "job-region", "unaligned", "unknown-reg", "unknown-op", "el0", "pan2"],
)
def test_bad_scenarios_are_refused(change: dict[str, Any], message: str) -> None:
    scenario = {**_by_name("a_el1_4k_48bit"), **change}
    with pytest.raises(HarnessError, match=message):
        run_scenarios([scenario], qemu="/nonexistent/qemu")  # refused before QEMU is needed


# ---- command line ---------------------------------------------------------------------------


def test_cli_check_passes_on_smoke(hw: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", str(SMOKE_FILE)]) == 0
    out, err = capsys.readouterr()
    pars = json.loads(out)
    assert len(pars) == len(SMOKE) and pars[0][0] == "0xff00000045678b80"
    assert "0 mismatches" in err


def test_cli_check_reports_a_mismatch(
    hw: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = _by_name("c_stage2_ops_at_el1")
    scenario["ops"][1]["expected_exception"]["hpfar"] = "0x0"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(scenario))
    assert main(["--check", "--full", str(path)]) == 1
    out, err = capsys.readouterr()
    (full,) = json.loads(out)
    assert full["ops"][1]["exception"]["hpfar"] == "0x0000000000700000"
    assert full["readbacks"]["VTTBR_EL2"] == "0x0000000040300000"
    assert "MISMATCH c_stage2_ops_at_el1 op 1 (S1E1R 0xffff800000000000)" in err
