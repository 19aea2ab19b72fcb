"""The committed snapshot of a booted Linux (notebooks/data), replayed without QEMU.

The snapshot was taken by ``python -m tools.realsys compare --kernel 6.12 --cpu max,lpa2=off``
(Debian's linux-image-6.12 cloud kernel, VHE host at EL2, 256 MiB): its metadata records
QEMU's own translation (HMP ``gva2gpa``) of ~2,700 VAs and the kernel's /proc/PID/pagemap
answer for user pages.  atlab's walk of the recorded tables must give the same PAs.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from atlab.at import run_at
from atlab.cli import main
from atlab.errors import AtlabError
from atlab.memory import PhysMem
from atlab.ptdump import ptdump, ptdump_s2
from atlab.regime import AtOp, Regime
from atlab.scenario import Scenario, load_scenarios
from atlab.snapshot import (
    COURSE_SNAPSHOT,
    PAGE,
    LiveMem,
    Snapshot,
    course_snapshot,
    load_snapshot,
    read_snapshot_bytes,
    required_registers,
    snapshot_to_scenario,
    translate_va,
)

SNAPSHOT = COURSE_SNAPSHOT


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return course_snapshot()


def _sc(snap: Snapshot) -> Scenario:
    return snap.scenario


def _sym(snap: Snapshot, name: str) -> int:
    symbols = snap.meta["symbols"]
    assert isinstance(symbols, dict)
    return int(symbols[name], 16)


def test_snapshot_is_small_and_in_the_el20_regime(snap: Snapshot) -> None:
    assert SNAPSHOT.stat().st_size < 2 << 20
    sc = _sc(snap)
    assert sc.el == 2 and sc.regs.field("HCR_EL2", "E2H") == 1  # a VHE host
    assert sc.regs.field("HCR_EL2", "TGE") == 1
    assert len(snap.pages) > 100 and all(len(d) == PAGE for d in snap.pages.values())


def test_atlab_translations_equal_qemus_recorded_answers(snap: Snapshot) -> None:
    sc = _sc(snap)
    mem = sc.fresh_memory()
    recorded = snap.meta["qemu_gva2gpa"]
    assert isinstance(recorded, list) and len(recorded) > 1000
    regions = set()
    mapped = 0
    for va_text, qemu, region in recorded:
        pa, why = translate_va(sc.regs, mem, int(va_text, 16), el=sc.el, features=sc.features)
        want = None if qemu is None else int(qemu, 16)
        assert pa == want, f"{region} VA={va_text}: atlab {pa} ({why}), QEMU {qemu}"
        regions.add(region)
        mapped += want is not None
    assert {"linear map", "image text", "image rodata", "image data/bss", "vmalloc",
            "vmemmap", "user"} <= regions
    assert 0 < mapped < len(recorded)  # both mapped and unmapped VAs were compared


def test_user_pages_match_the_kernels_pagemap(snap: Snapshot) -> None:
    sc = _sc(snap)
    pages = snap.meta["pagemap"]
    assert isinstance(pages, dict) and len(pages) >= 8
    for va_text, kernel_pa in pages.items():
        pa, _ = translate_va(sc.regs, sc.fresh_memory(), int(va_text, 16), el=2,
                             features=sc.features)
        assert pa == (None if kernel_pa is None else int(kernel_pa, 16)), va_text


def test_kernel_image_has_a_wx_split_and_no_wx(snap: Snapshot) -> None:
    sc = _sc(snap)
    dump = ptdump(sc.regs, sc.fresh_memory(), regime=Regime.EL20, ttbr=1, features=sc.features)
    text, etext = _sym(snap, "_stext"), _sym(snap, "_etext")
    rodata, data, end = _sym(snap, "__start_rodata"), _sym(snap, "_sdata"), _sym(snap, "_end")

    def rights(lo: int, hi: int) -> set[str]:
        return {r.rights for r in dump.ranges if r.start < hi and r.end > lo}

    assert rights(text, etext) == {"EL2:R-X EL0:---"}  # text: read-only, executable
    assert rights(rodata, _sym(snap, "__end_rodata")) == {"EL2:R-- EL0:---"}
    assert rights(data, end) == {"EL2:RW- EL0:---"}  # data: writable, never executable
    assert dump.wx() == []
    user = ptdump(sc.regs, sc.fresh_memory(), regime=Regime.EL20, ttbr=0, features=sc.features)
    assert user.ranges and user.wx() == []
    assert "passed, no W+X pages" in str(snap.meta["kernel_wx"])  # the kernel agrees


def test_init_task_is_the_idle_cpus_current(snap: Snapshot) -> None:
    """init_task's VA from /proc/kallsyms is what SP_EL0 (``current``) held on the idle CPU;
    it is in the kernel image's data, mapped read-write."""
    init_task = _sym(snap, "init_task")
    assert int(str(snap.meta["idle_sp_el0"]), 16) == init_task
    sc = _sc(snap)
    res = sc.run_op(next(o for o in sc.ops if o.va == init_task))
    assert res.par is not None and res.par.f == 0
    assert res.perms is not None and (res.perms.r, res.perms.w, res.perms.x) == (True, True,
                                                                                False)


def test_cli_runs_and_dumps_the_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SNAPSHOT)]) == 0
    pars = json.loads(capsys.readouterr().out)
    assert pars and all(p is not None for p in pars)
    assert main(["ptdump", str(SNAPSHOT), "--regime", "EL20", "--ttbr", "1", "--wx"]) == 0
    out = capsys.readouterr().out
    assert "EL2&0 TTBR1 (TTBR1_EL2)" in out and "0 writable and executable" in out
    assert load_scenarios(SNAPSHOT)[0].tags == ("snapshot",)


def test_live_memory_reads_only_the_pages_a_walk_needs(snap: Snapshot) -> None:
    sc = _sc(snap)
    asked: list[int] = []

    def read_page(pa: int) -> bytes:
        asked.append(pa)
        return snap.pages.get(pa, bytes(PAGE))

    live = LiveMem(read_page)
    va = _sym(snap, "init_task")
    pa, _ = translate_va(sc.regs, live, va, el=2, features=sc.features)
    assert pa == translate_va(sc.regs, sc.fresh_memory(), va, el=2, features=sc.features)[0]
    assert len(asked) == len(set(asked)) == 4  # one table page per level, each read once
    translate_va(sc.regs, live, va + 8, el=2, features=sc.features)
    assert len(asked) == 4  # cached
    assert isinstance(live, PhysMem) and live.read64(0) == 0 and len(asked) == 5


# --- corrupt snapshots: one line each ---------------------------------------------------------

def _doc() -> dict[str, Any]:
    doc = read_snapshot_bytes(SNAPSHOT.read_bytes(), "s")
    assert isinstance(doc, dict)
    doc["pages"] = doc["pages"][:2]
    return doc


def _broken(**changes: Any) -> dict[str, Any]:
    doc = _doc()
    for key, value in changes.items():
        if value is None:
            del doc[key]
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(("doc", "message"), [
    (_broken(version=2), "version 2 is not supported"),
    (_broken(el=3), "'el' must be 1 or 2"),
    (_broken(sysregs={"HCR_EL2": "0x488000000"}), "missing register(s) TCR_EL2"),
    (_broken(pages=[{"pa": "0x1000", "data": "!!"}]), "page 0: 'data' is not base64"),
    (_broken(pages=[{"pa": "0x1000", "data": base64.b64encode(b"x").decode()}]),
     "page 0: 1 bytes, not 4096"),
    (_broken(pages=[{"pa": "0x1001", "data": ""}]), "must be 4KB aligned"),
    (_broken(sysregs={"NOPE": 1}), "unknown register"),
    (_broken(id_registers={"ID_AA64PFR0_EL1": 1}), "unknown ID register"),
    (_broken(format="other"), "not an atlab snapshot"),
    (_broken(pages=[{"pa": "0x0", "data": ""}] * 2049), "2049 pages is too many"),
], ids=["version", "el", "missing-registers", "base64", "page-size", "page-align",
        "unknown-register", "unknown-id-register", "format", "too-many-pages"])
def test_corrupt_snapshot_documents(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(AtlabError, match="corrupt snapshot") as exc:
        snapshot_to_scenario(doc, "s")
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(("data", "message"), [
    (lambda raw: raw[: len(raw) // 2], "cut short"),
    (lambda raw: raw[:10] + bytes(40), "gzip"),
    (lambda raw: gzip.compress(b"{not json"), "not JSON"),
    (lambda raw: gzip.compress(b"\xff\xfe"), "not JSON"),
], ids=["truncated", "bad-deflate", "not-json", "not-utf8"])
def test_corrupt_snapshot_files(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                data: Any, message: str) -> None:
    path = tmp_path / "bad-snapshot.json.gz"
    path.write_bytes(data(SNAPSHOT.read_bytes()))
    assert main(["ptdump", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "corrupt snapshot" in err


def test_required_registers_follow_the_regime() -> None:
    assert "TTBR1_EL2" in required_registers(2, 1 << 34)  # EL2&0 has two TTBRs
    assert "TTBR1_EL2" not in required_registers(2, 0)
    assert "TTBR1_EL1" in required_registers(1, 0)


def test_the_snapshot_op_is_an_s1e2r() -> None:
    sc = load_scenarios(SNAPSHOT)[0]
    assert {o.op for o in sc.ops} == {AtOp.S1E2R}


# --- a KVM guest's stage 2 (python -m tools.realsys kvm) --------------------------------------

KVM_SNAPSHOT = Path(__file__).parent / "data" / "realsys" / "kvm-guest-snapshot.json.gz"


def test_kvm_guest_stage2_replays_qemus_answers() -> None:
    """Stopped inside a KVM guest (EL1, HCR_EL2.VM=1, its stage 1 off) of the VHE host: atlab's
    AT S12E1R through the recorded stage 2 tables gives QEMU's gva2gpa for every guest page."""
    snap = load_snapshot(KVM_SNAPSHOT)
    sc = snap.scenario
    assert sc.el == 1 and sc.regs.field("HCR_EL2", "VM") == 1
    assert sc.regs.field("SCTLR_EL1", "M") == 0 and sc.regs["VTTBR_EL2"] != 0
    recorded = snap.meta["qemu_gva2gpa_s12"]
    assert isinstance(recorded, list) and len(recorded) == 512
    mem = sc.fresh_memory()
    mapped = 0
    for va_text, qemu in recorded:
        va = int(va_text, 16)
        res = run_at(AtOp.S12E1R, va, regs=sc.regs, mem=mem, features=sc.features, cur_el=2)
        got = None if res.par is None or res.par.f else res.par.pa | (va & 0xFFF)
        assert got == (None if qemu is None else int(qemu, 16)), va_text
        mapped += got is not None
    assert mapped == 33  # the code page and the 32 pages the guest stores to
    s2 = ptdump_s2(sc.regs, sc.fresh_memory(), features=sc.features)
    assert "40-bit IPA" in s2.title and "2 concatenated" in s2.title and len(s2.ranges) == 33


def test_widgets_take_the_snapshot_as_a_scenario(snap: Snapshot) -> None:
    from atlab.widgets import WalkStepper, make_regime_explorer

    sc = _sc(snap)
    explorer = make_regime_explorer(sc)
    assert explorer is not None
    stepper = WalkStepper(sc.run_op(sc.ops[0]))
    assert stepper.position.max == 3  # four descriptor reads: levels 0 to 3


def test_snapshot_of_no_guest_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    import shutil
    import socket

    if shutil.which("gdb-multiarch") is None or importlib.util.find_spec("pygdbmi") is None:
        pytest.skip("gdb-multiarch or pygdbmi is not installed (tools/install-system-deps.sh)")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["snapshot", "--gdb", str(port), "-o", "/nonexistent/x.json.gz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no guest at the gdbstub" in err
    assert main(["snapshot", "--gdb", "host:0", "-o", "x"]) == 2
    assert "expected PORT or HOST:PORT" in capsys.readouterr().err
