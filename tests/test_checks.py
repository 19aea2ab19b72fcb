"""The exercise checkers (atlab.checks): each accepts the reference, rejects typical wrong
answers with the matching hint, and reports an untouched stub as "not attempted"."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pytest

from atlab import AtOp, Par, PhysMem, Regime, SysRegs
from atlab import checks as C
from atlab.bits import bit, bits
from atlab.checks import (
    EXERCISES,
    Exercise,
    Status,
    e04_translate_by_hand,
    e05_permissions,
    e07_at_regime_and_ttbr,
    e11_stage2_start_level,
    e14_emulate_at_for_a_guest,
)
from atlab.granule import Granule, start_level
from atlab.nv import Context
from atlab.perms import S1PermBits

EX_IDS = list(EXERCISES)
MISTAKES = [(key, m) for key, ex in EXERCISES.items() for m in ex.mistakes]
MISTAKE_IDS = [f"{key}:{m.name}" for key, m in MISTAKES]


def _run(ex: Exercise, fn: Any) -> tuple[C.CheckResult, str]:
    out = io.StringIO()
    return C.check(ex, fn, file=out), out.getvalue()


@pytest.mark.parametrize("key", EX_IDS)
def test_reference_solution_passes(key: str) -> None:
    ex = EXERCISES[key]
    assert ex.solution is not None
    result, text = _run(ex, ex.solution)
    assert result.status is Status.PASSED, result.first_failure
    assert result.failed == 0 and result.passed == result.total >= 10
    assert result.ok and result.first_failure is None
    assert "✗" not in text and f"✓ {ex.name}: all cases pass" in text


def test_the_package_exports_every_public_name_and_one_module_per_exercise() -> None:
    import importlib

    assert [name for name in C.__all__ if not hasattr(C, name)] == []
    for key, ex in EXERCISES.items():
        module = importlib.import_module(f"atlab.checks.e{key}")
        assert getattr(module, f"check_{ex.name}") is getattr(C, f"check_{ex.name}")


@pytest.mark.parametrize("key", EX_IDS)
def test_every_exercise_has_a_typed_checker_and_typical_mistakes(key: str) -> None:
    ex = EXERCISES[key]
    checker = getattr(C, f"check_{ex.name}")
    assert callable(checker) and f"check_{ex.name}" in C.__all__
    assert len(ex.mistakes) >= 2
    result = checker(ex.solution, quiet=True)
    assert result.exercise == ex.name and result.ok


@pytest.mark.parametrize(("key", "mistake"), MISTAKES, ids=MISTAKE_IDS)
def test_typical_mistake_is_rejected_with_a_hint(key: str, mistake: C.Mistake) -> None:
    ex = EXERCISES[key]
    result, text = _run(ex, mistake.fn)
    assert result.status is Status.FAILED
    assert result.failed >= 1 and result.passed + result.failed == result.total
    failure = result.first_failure
    assert failure is not None
    # The first failing case may match several catalogued mistakes: the hint is one of them.
    assert failure.hint in {m.hint for m in ex.mistakes}
    assert "✗ failing case 1/" in text and "expected:" in text and "hint:" in text
    # One failing case per failing group, each naming its group.
    assert len({f.group for f in result.failures}) == len(result.failures) >= 1
    assert all(f"✗ {f.group}: " in text for f in result.failures)


def _raises(*args: Any) -> Any:
    raise NotImplementedError


def _todo(*args: Any) -> Any:
    return C.TODO


@pytest.mark.parametrize("stub", [_raises, _todo], ids=["raises", "returns-TODO"])
@pytest.mark.parametrize("key", EX_IDS)
def test_untouched_stub_is_not_attempted(key: str, stub: Any) -> None:
    ex = EXERCISES[key]
    result, text = _run(ex, stub)
    assert result.status is Status.NOT_ATTEMPTED
    assert (result.passed, result.failed, result.first_failure) == (0, 0, None)
    assert "not attempted" in text and "✗" not in text
    assert str(result) == f"{ex.name}: not attempted"


def test_learner_exceptions_and_wrong_types_never_escape() -> None:
    def boom(*args: Any) -> Any:
        raise ValueError("oops")

    result, _ = _run(C.DECODE, boom)
    assert result.status is Status.FAILED and result.passed == 0
    assert result.first_failure is not None
    assert result.first_failure.got == "raised ValueError: oops"
    result, _ = _run(C.DECODE, lambda *a: 3)
    assert result.status is Status.FAILED
    assert result.first_failure is not None and "return a DescFields" in result.first_failure.got


def test_a_partly_written_function_is_failed_not_unattempted() -> None:
    def only_4k(desc: int, level: int, granule: Granule) -> C.DescFields:
        if granule is not Granule.K4:
            raise NotImplementedError
        return C.reference_decode_descriptor(desc, level, granule)

    result, text = _run(C.DECODE, only_4k)
    assert result.status is Status.FAILED and result.passed > 0
    assert "✓ 4KB page:" in text and "✗ 16KB invalid:" in text
    assert result.first_failure is not None and "NotImplementedError" in result.first_failure.got


def test_output_format_and_quiet_mode(capsys: pytest.CaptureFixture[str]) -> None:
    result = C.check_va_range(C.VA_RANGE.mistakes[0].fn)
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].startswith("Checking va_range against atlab (")
    assert any(line.startswith("✓ ") for line in lines)
    assert any(line.startswith("✗ T0SZ=") for line in lines)
    assert lines[-1] == f"✗ va_range: {result.passed}/{result.total} cases pass"
    assert result.first_failure is not None and result.first_failure.case in printed
    C.check_va_range(C.reference_va_range, quiet=True)
    assert capsys.readouterr().out == ""


def test_no_global_state_between_runs_and_cases() -> None:
    calls: list[int] = []

    def scribbler(regs: SysRegs, mem: PhysMem, va: int) -> int | None:
        answer = C.reference_translate(regs, mem, va)
        for pa, _ in list(mem):  # wreck the tables this case was given
            mem.poke(pa, 0)
        calls.append(va)
        return answer

    first = C.check_translate(scribbler, quiet=True)
    second = C.check_translate(scribbler, quiet=True)
    assert first == second and first.ok
    assert len(calls) == 2 * first.total


# --- independently written wrong answers (not the checkers' own catalogue) -------------------


def test_translate_ignoring_tbi_is_rejected() -> None:
    def no_tbi(regs: SysRegs, mem: PhysMem, va: int) -> int | None:
        regs = regs.replace(TCR_EL1=regs["TCR_EL1"] & ~(0b11 << 37))
        return C.reference_translate(regs, mem, va)

    result = C.check_translate(no_tbi, quiet=True)
    assert result.status is Status.FAILED
    assert result.first_failure is not None and "TBI" in result.first_failure.hint


def test_walk_geometry_with_a_4k_stride_is_rejected() -> None:
    def stride9(granule: Granule, txsz: int, va: int) -> tuple[int, list[int]]:
        return C.reference_walk_geometry(Granule.K4, txsz, va)

    assert C.check_walk_geometry(stride9, quiet=True).status is Status.FAILED


def test_tcr_with_tg0_tg1_encodings_swapped_is_rejected() -> None:
    enc = {Granule.K4: 0b00, Granule.K16: 0b10, Granule.K64: 0b01}  # TG0's table for both

    def same_table(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule, ips: int) -> int:
        ips_enc = {32: 0, 36: 1, 40: 2, 42: 3, 44: 4, 48: 5}[ips]
        return t0sz | enc[tg0] << 14 | t1sz << 16 | enc[tg1] << 30 | ips_enc << 32

    result = C.check_make_tcr_el1(same_table, quiet=True)
    assert result.status is Status.FAILED
    assert result.first_failure is not None and "TG1" in result.first_failure.hint


def test_at_target_misreading_e2h_is_rejected() -> None:
    def e2h_means_host(op: AtOp, hcr: int, va: int) -> tuple[Regime, str]:
        # E2H=1 taken to move every EL1/EL0 op to EL2&0, TGE ignored.
        return C.reference_at_target(op, hcr | (bit(hcr, 34) << 27), va)

    result = C.check_at_target(e2h_means_host, quiet=True)
    assert result.status is Status.FAILED
    assert result.first_failure is not None and "{E2H,TGE}" in result.first_failure.case


def test_permissions_ignoring_pan_is_rejected() -> None:
    def no_pan(p: S1PermBits, el: int, pan: bool, wxn: bool) -> tuple[bool, bool, bool]:
        return C.reference_s1_permissions(p, el, False, wxn)

    result = C.check_s1_permissions(no_pan, quiet=True)
    assert result.status is Status.FAILED
    assert result.first_failure is not None and "PAN" in result.first_failure.hint


def test_s2_fault_level_taken_from_stage_1_is_rejected() -> None:
    def s1_level_twice(regs: SysRegs, mem: PhysMem, va: int) -> tuple[int, int] | None:
        ref = C.reference_s2_fault_during_s1(regs, mem, va)
        return None if ref is None else (ref[0], ref[0])

    result = C.check_s2_fault_during_s1(s1_level_twice, quiet=True)
    assert result.status is Status.FAILED
    assert result.first_failure is not None and "stage 2" in result.first_failure.hint


def test_par_without_res1_bit_11_on_faults_is_rejected() -> None:
    def no_bit11(outcome: C.WalkOutcome) -> int:
        return C.reference_encode_par(outcome) & ~(1 << 11)

    result = C.check_encode_par(no_bit11, quiet=True)
    assert result.status is Status.FAILED
    failure = result.first_failure
    assert failure is not None and "F=1" in failure.expected and "bit 11" in failure.hint


def test_s2_start_ignoring_sl0_is_rejected() -> None:
    def from_t0sz(vtcr: int) -> tuple[int, int] | None:
        granule = {0: Granule.K4, 2: Granule.K16, 1: Granule.K64}[bits(vtcr, 15, 14)]
        return start_level(64 - bits(vtcr, 5, 0), granule), 1

    assert C.check_s2_start(from_t0sz, quiet=True).status is Status.FAILED


def test_tables_without_af_are_rejected() -> None:
    def no_af(va: int, want: Par) -> PhysMem:
        mem = C.reference_tables_for_par(va, want)
        for pa, value in list(mem):
            mem.poke(pa, value & ~(1 << 10))  # only leaves have AF set
        return mem

    assert C.check_tables_for_par(no_af, quiet=True).status is Status.FAILED


def test_nv_path_trusting_every_fast_path_result_is_rejected() -> None:
    def always_fast(ctx: Context, op: AtOp, vhcr: int, par: int, before: int) -> str:
        path = C.reference_nv_at_path(ctx, op, vhcr, par, before)
        return "fast path" if path == "software walker" else path

    result = C.check_nv_at_path(always_fast, quiet=True)
    assert result.status is Status.FAILED and result.first_failure is not None
    assert "TypeError" not in result.first_failure.got


@pytest.mark.parametrize("mistake", C.NV_PATH.mistakes, ids=[m.name for m in C.NV_PATH.mistakes])
def test_each_nv_path_mistake_gets_its_own_hint(mistake: C.Mistake) -> None:
    # KVM 6.12 keeps only a stage 1 permission fault (not AF), for S1E2* too; the emulated AT
    # fills no hole; L2's AT on a hole in L1's stage 2 is a Data Abort injected into L1.
    result = C.check_nv_at_path(mistake.fn, quiet=True)
    assert result.status is Status.FAILED and result.first_failure is not None
    assert result.first_failure.hint == mistake.hint, result.first_failure.case


def test_nv_path_hints_name_the_kvm_612_rules() -> None:
    hints = {m.name: m.hint for m in C.NV_PATH.mistakes}
    assert "KVM 6.12 keeps only permission faults" in hints["stage 1 permission/AF faults kept"]
    assert "S1E2*" in hints["S1E2 keeps AF faults"]
    assert "kvm_read_guest()" in hints["the software walker faults the hole in"]
    assert "injected into L1" in hints["L2 reads the stage 2 fault in its PAR"]
    assert "injected into L1" in C.NV_PATHS and C.NV_S12_SPLIT in C.NV_PATHS


def _nv_example() -> Any:
    from pathlib import Path

    from atlab.nv import load_nv_scenarios

    root = Path(__file__).resolve().parent.parent
    return load_nv_scenarios(str(root / "examples" / "nv_l1_guest_hypervisor.json"))[0]


def test_nv_path_reference_agrees_with_emulate_at_as_kvm_612() -> None:
    """The exercise's reference, fed what the hardware met, names the path emulate_at(kvm=...)
    takes on the example machine (and L2's injected abort)."""
    from dataclasses import replace

    from atlab.nv import KvmBehaviour, emulate_at, reference_at

    nv, kvm, va = _nv_example(), KvmBehaviour.kvm(), 0x1234_5678_9000
    system = nv.system()
    vhcr = system.vregs["HCR_EL2"]
    for before in (0, 1):  # the hole in L0's stage 2 stays a hole
        res = emulate_at(system, AtOp.S1E2R, va, kvm=kvm)
        assert res.fast_path is not None and res.fast_path.par is not None
        path = C.reference_nv_at_path(Context.L1_VEL2, AtOp.S1E2R, vhcr, res.fast_path.par.value,
                                      before)
        assert path == res.path == "software walker"
    system.l1_access(0x4040_1000)
    res = emulate_at(system, AtOp.S1E2R, va, kvm=kvm)
    assert res.fast_path is not None and res.fast_path.par is not None
    assert C.reference_nv_at_path(Context.L1_VEL2, AtOp.S1E2R, vhcr, res.fast_path.par.value,
                                  2) == res.path == "fast path"
    # VHE L1 running L2, after L2 ran (the shadow maps L2's tables): AT S12E1R splits.
    vhe = replace(nv, vregs=nv.vregs.replace(HCR_EL2=vhcr | 1 << 34), context=Context.L2_EL1)
    vhe_system = vhe.system()
    emulate_at(vhe_system, AtOp.S1E1R, va)
    vhe_system.context = Context.L1_VEL2
    res = emulate_at(vhe_system, AtOp.S12E1R, va, kvm=kvm)
    assert res.fast_path is not None and res.fast_path.par is not None
    assert C.reference_nv_at_path(Context.L1_VEL2, AtOp.S12E1R, vhcr | 1 << 34,
                                  res.fast_path.par.value, 0) == res.path == C.NV_S12_SPLIT
    # L2's own AT on a table L1's stage 2 does not map: what the walk meets is a stage 2
    # fault on the stage 1 walk; L0 injects the Data Abort into L1.
    hole_va = 0xFFFF_8000_0000_0000
    meets = getattr(reference_at(nv.system(), AtOp.S1E1R, hole_va), "par", None)
    assert isinstance(meets, Par) and (meets.s, meets.ptw) == (1, 1)
    l2 = emulate_at(replace(nv, context=Context.L2_EL1).system(), AtOp.S1E1R, hole_va)
    assert l2.exception is not None and (l2.exception.ec, l2.exception.target_el) == (0x24, 2)
    assert C.reference_nv_at_path(Context.L2_EL1, AtOp.S1E1R, vhcr, meets.value,
                                  0) == "injected into L1"


# --- the checkers' hand models agree with the library ----------------------------------------


@pytest.mark.parametrize(("ex", "model"), [
    (C.TRANSLATE, e04_translate_by_hand._hand_translate),
    (C.PERMS, e05_permissions._perms_model),
    (C.AT_TARGET, e07_at_regime_and_ttbr._target_model),
    (C.S2_START, e11_stage2_start_level._s2_start_model),
    (C.NV_PATH, e14_emulate_at_for_a_guest._nv_model),
], ids=["translate", "permissions", "at-target", "s2-start", "nv-path"])
def test_mistake_models_without_the_mistake_match_the_library(ex: Exercise, model: Any) -> None:
    """Each catalogued mistake is a switch on an independent hand model; with every switch
    off the model must agree with atlab on every case (a cross-check of both)."""
    assert C.check(ex, model, quiet=True).ok


# --- feedback on every mistake: one failing case per failing group ----------------------------

TWO_MISTAKES = [
    # (exercise, hand model, the two switches, the two mistakes' names)
    (C.TRANSLATE, e04_translate_by_hand._hand_translate, {"stride9": True, "ttbr1": False},
     ("wrong stride", "TTBR1 ignored")),
    (C.PERMS, e05_permissions._perms_model, {"use_pan": False, "use_wxn": False},
     ("PAN ignored", "WXN ignored")),
    (C.AT_TARGET, e07_at_regime_and_ttbr._target_model, {"e2h_alone": True, "el2_ttbr1": True},
     ("E2H=1 alone taken for the host", "the EL2 regime has a TTBR1")),
    (C.AT_TARGET, e07_at_regime_and_ttbr._target_model, {"tge_keeps_s1": True,
                                                         "el2_ttbr1": True},
     ("TGE=1 does not disable the EL1&0 stage 1", "the EL2 regime has a TTBR1")),
    (C.S2_START, e11_stage2_start_level._s2_start_model, {"sl0_like_16k": True,
                                                          "no_concat": True},
     ("SL0 decoded like 16KB/64KB for 4KB", "no concatenation")),
    (C.NV_PATH, e14_emulate_at_for_a_guest._nv_model, {"l2_ignores_vat": True,
                                                       "fills_hole": True},
     ("L1's vHCR_EL2.AT ignored for L2", "the software walker faults the hole in")),
]


@pytest.mark.parametrize(("ex", "model", "switches", "names"), TWO_MISTAKES,
                         ids=[" + ".join(n) for *_, n in TWO_MISTAKES])
def test_two_mistakes_in_different_groups_are_both_reported(
        ex: Exercise, model: Any, switches: dict[str, bool], names: tuple[str, str]) -> None:
    result, text = _run(ex, lambda *args: model(*args, **switches))
    assert result.status is Status.FAILED and len(result.failures) >= 2
    hints = {m.name: m.hint for m in ex.mistakes}
    reported = [f.hint for f in result.failures]
    for name in names:
        assert hints[name] in reported, (name, [f.group for f in result.failures])
        assert hints[name] in text
    # Each hint is attached to a failure of its own group.
    groups = {f.group for f in result.failures if f.hint in {hints[n] for n in names}}
    assert len(groups) >= 2
    assert result.first_failure is result.failures[0]
    assert text.count("✗ failing case ") == len(result.failures)


def test_at_target_e2h_alone_is_reported_first_not_hidden_by_ttbr1() -> None:
    """Exercise 07: "TTBR1 in the EL2 regime" must not hide "E2H alone means host"; the VHE
    misreading is the more instructive and is reported first."""
    def both(op: AtOp, hcr: int, va: int) -> tuple[Regime, str]:
        return e07_at_regime_and_ttbr._target_model(op, hcr, va, e2h_alone=True,
                                                    el2_ttbr1=True)

    result, text = _run(C.AT_TARGET, both)
    first = result.first_failure
    assert first is not None and first.group == "HCR_EL2.{E2H,TGE}={1,0}"
    assert first.hint == C.AT_TARGET.mistakes[0].hint and first.diagnosed
    assert "TTBR0_EL2" in first.hint or "E2H=1 with TGE=0" in first.hint
    assert [f.group for f in result.failures] == [
        "HCR_EL2.{E2H,TGE}={1,0}", "HCR_EL2.{E2H,TGE}={0,1}", "HCR_EL2.{E2H,TGE}={0,0}"]
    # The same hint is printed once; the repeat is one line that points back at it.
    assert text.count(C.AT_TARGET.mistakes[3].hint) == 1
    assert "(the hint of failing case 2)" in text


def test_a_failure_matching_a_typical_mistake_comes_before_an_undiagnosed_one() -> None:
    cases = lambda: [C.Case(f"x={x}", f"group {x % 3}", lambda x=x: (x,)) for x in range(9)]  # noqa: E731
    off_by_one = C.Mistake("off by one", lambda x: x + 1, "count from 0")
    ex = C.Exercise("double", "Double it", cases, lambda x: 2 * x, mistakes=(off_by_one,),
                    hint="multiply by 2")

    def wrong(x: int) -> int:  # group 0 undiagnosed, group 1 the typical mistake, group 2 right
        return {0: 0, 1: x + 1}.get(x % 3, 2 * x) if x else 5

    result, text = _run(ex, wrong)
    assert [(f.group, f.diagnosed) for f in result.failures] == [("group 1", True),
                                                                 ("group 0", False)]
    assert [f.hint for f in result.failures] == ["count from 0", "multiply by 2"]
    assert "✓ group 2: 3/3" in text and text.count("hint: ") == 2
    ordered = replace(ex, group_order=("group 0",))
    result, _ = _run(ordered, wrong)
    assert [f.group for f in result.failures] == ["group 0", "group 1"]
