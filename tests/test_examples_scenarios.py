"""Every example system in examples/*.yaml: up to date with its generator, every op's
expected_par met by `atlab run --check`, the W+X example caught by `atlab ptdump --wx`, and
the scenarios tagged ``qemu`` checked on QEMU 10 (skipped without it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from atlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
ALL_FILES = [*EXAMPLES, ROOT / "examples" / "nv_l1_guest_hypervisor.json"]


def test_generated_files_are_up_to_date() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import build_examples
    finally:
        sys.path.pop(0)
    assert sorted(build_examples.FILES) == [p.name for p in EXAMPLES]
    for name in build_examples.FILES:
        assert build_examples.render(name) == (ROOT / "examples" / name).read_text(), (
            f"{name} is stale: run python examples/build_examples.py --write")


def test_every_example_is_documented() -> None:
    readme = (ROOT / "examples" / "README.md").read_text()
    for path in ALL_FILES:
        assert f"`{path.name}`" in readme, path.name


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_run_check(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(path.read_text())
    assert all("expected_par" in op for sc in data for op in sc["ops"])
    assert main(["run", "--check", str(path)]) == 0, capsys.readouterr().err


def test_nv_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nv", "run", str(ALL_FILES[-1])]) == 0


def test_wx_example_is_caught(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "examples" / "broken_wx_page.yaml"
    assert main(["ptdump", str(path), "--ttbr", "1", "--wx"]) == 1
    out = capsys.readouterr().out
    assert "W+X 0xffff800010000000-0xffff800010001000" in out
    clean = ROOT / "examples" / "linux_el1_4k_48bit.yaml"
    assert main(["ptdump", str(clean), "--ttbr", "1", "--wx"]) == 0


def _qemu10() -> bool:
    exe = shutil.which("qemu-system-aarch64")
    if exe is None or shutil.which("aarch64-linux-gnu-as") is None:
        return False
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    try:
        return int(out.stdout.split("version ")[1].split(".")[0]) >= 10
    except (IndexError, ValueError):
        return False


@pytest.mark.skipif(not _qemu10(), reason="needs QEMU 10 and aarch64 binutils")
def test_on_qemu() -> None:
    from tools.hw import check_scenario, run_scenarios

    scenarios = [sc for path in EXAMPLES for sc in yaml.safe_load(path.read_text())
                 if "qemu" in sc.get("tags", [])]
    assert len(scenarios) >= 10
    results = run_scenarios(scenarios)
    problems = [line for sc, res in zip(scenarios, results, strict=True)
                for line in check_scenario(sc, res)]
    assert problems == []
    assert all(not res.warnings for res in results)
