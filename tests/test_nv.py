"""Nested virtualization: trap routing, the emulated AT, and "the lie must be perfect"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlab import AtlabError, AtOp, FeatureSet, SysRegs
from atlab.features import Feature
from atlab.nv import (
    Context,
    KvmBehaviour,
    NvSystem,
    RouteKind,
    emulate_at,
    parse_nv_scenario,
    reference_at,
    route_at,
)
from atlab.nv.model import page_of

SMOKE = json.loads((Path(__file__).parent / "data" / "conformance" / "smoke.json").read_text())
ALL = FeatureSet.all()
NO_TRAPS = SysRegs({"HCR_EL2": 1 << 31})


@pytest.mark.parametrize(
    ("context", "op", "vhcr", "kind"),
    [
        # C5.4 "Executing AT S1E2R": EL1 with HCR_EL2.NV=1 traps to EL2 (EC 0x18).
        (Context.L1_VEL2, AtOp.S1E2R, 0, RouteKind.TRAP_L0),
        (Context.L1_VEL2, AtOp.S12E1W, 0, RouteKind.TRAP_L0),
        # HCR_EL2.AT=1, set by L0 while L1 runs at vEL2, traps S1E0*/S1E1*.
        (Context.L1_VEL2, AtOp.S1E1R, 0, RouteKind.TRAP_L0),
        (Context.L1_VEL2, AtOp.S1E1WP, 0, RouteKind.TRAP_L0),
        (Context.L1_VEL2, AtOp.S1E3R, 0, RouteKind.UNDEFINED),
        # L2 at EL1: L1's vHCR_EL2.AT / NV decide.
        (Context.L2_EL1, AtOp.S1E1R, 0, RouteKind.HARDWARE),
        (Context.L2_EL1, AtOp.S1E1R, 1 << 44, RouteKind.FORWARD_L1),
        (Context.L2_EL1, AtOp.S1E0W, 1 << 44, RouteKind.FORWARD_L1),
        (Context.L2_EL1, AtOp.S1E2R, 0, RouteKind.UNDEFINED),
        (Context.L2_EL1, AtOp.S12E0R, 1 << 42, RouteKind.FORWARD_L1),
        (Context.L2_EL0, AtOp.S1E0R, 0, RouteKind.UNDEFINED),
    ],
    ids=["vEL2-S1E2R-NV-trap", "vEL2-S12E1W-NV-trap", "vEL2-S1E1R-AT-trap",
         "vEL2-S1E1WP-AT-trap", "vEL2-S1E3R-undef", "L2EL1-S1E1R-hw", "L2EL1-S1E1R-vAT-fwd",
         "L2EL1-S1E0W-vAT-fwd", "L2EL1-S1E2R-undef", "L2EL1-S12E0R-vNV-fwd", "L2EL0-undef"],
)
def test_route(context: Context, op: AtOp, vhcr: int, kind: RouteKind) -> None:
    route = route_at(context, op, SysRegs({"HCR_EL2": (1 << 31) | vhcr}), ALL)
    assert route.kind is kind
    assert route.rule  # every outcome cites its rule


def test_route_feature_gated_op_is_undefined() -> None:
    fs = ALL.without(Feature.ATS1A)
    assert route_at(Context.L1_VEL2, AtOp.S1E1A, NO_TRAPS, fs).kind is RouteKind.UNDEFINED


def _system(idx: int, *, context: Context, holes: list[int], shadow: dict[int, int],
            vhcr_or: int = 0) -> NvSystem:
    sc = SMOKE[idx]
    vregs = SysRegs.from_mapping(sc["sysregs"])
    vregs = vregs.replace(HCR_EL2=vregs["HCR_EL2"] | vhcr_or)
    mem = {int(m["pa"], 16): int(m["u64"], 16) for m in sc["memory"]}
    return NvSystem(vregs=vregs, l1_memory=mem, holes=holes, shadow=shadow, context=context)


def _same(system_args: dict[str, object], op: AtOp, va: int) -> None:
    emulated = emulate_at(_system(**system_args), op, va)  # type: ignore[arg-type]
    ref = reference_at(_system(**system_args), op, va)  # type: ignore[arg-type]
    if isinstance(ref, tuple):  # pragma: no cover
        raise AssertionError
    want_par = getattr(ref, "par", None)
    want_exc = getattr(ref, "exception", ref if not hasattr(ref, "par") else None)
    assert emulated.par == want_par, str(emulated)
    assert emulated.exception == want_exc, str(emulated)


# Scenarios with tables L1 can use from vEL2 (EL1&0 of L2, EL2, EL2&0, stage 2).
VEL2_CASES = [0, 2, 3, 6, 7, 8]


@settings(max_examples=60, deadline=None)
@given(idx=st.sampled_from(VEL2_CASES), data=st.data())
def test_the_lie_is_perfect_from_vel2(idx: int, data: st.DataObject) -> None:
    """Emulated AT from L1's vEL2 == plain AT at a real EL2 on L1's IPA space, whatever holes
    L0's stage 2 has and whatever part of the shadow stage 2 exists."""
    sc = SMOKE[idx]
    pages = sorted({page_of(int(m["pa"], 16)) for m in sc["memory"]})
    holes = data.draw(st.lists(st.sampled_from(pages), unique=True), label="holes")
    shadow_pages = data.draw(st.lists(st.sampled_from(pages), unique=True), label="shadow")
    # A partial but correct shadow: L2 IPA page -> its PA (only meaningful when vVM=1).
    shadow = {p: p + 0x1_0000_0000 for p in shadow_pages}
    for op_spec in sc["ops"]:
        op = AtOp.parse(op_spec["op"])
        va = int(op_spec["va"], 16)
        _same({"idx": idx, "context": Context.L1_VEL2, "holes": holes, "shadow": shadow}, op, va)
    for op in (AtOp.S1E2R, AtOp.S1E2W, AtOp.S1E1R, AtOp.S1E0W, AtOp.S12E1R, AtOp.S12E0W):
        va = int(sc["ops"][0]["va"], 16)
        _same({"idx": idx, "context": Context.L1_VEL2, "holes": holes, "shadow": shadow}, op, va)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), at_bit=st.booleans())
def test_the_lie_is_perfect_for_l2(data: st.DataObject, at_bit: bool) -> None:
    """L2's own AT (hardware on the shadow, or forwarded to L1) == a real EL1 under L1."""
    sc = SMOKE[3]  # stage 2 on; TTBR1_EL1 at an IPA L1's stage 2 does not map
    pages = sorted({page_of(int(m["pa"], 16)) for m in sc["memory"]})
    holes = data.draw(st.lists(st.sampled_from(pages), unique=True), label="holes")
    shadow = {p: p + 0x1_0000_0000 for p in data.draw(st.lists(st.sampled_from(pages),
                                                                unique=True))}
    args = {"idx": 3, "context": Context.L2_EL1, "holes": holes, "shadow": shadow,
            "vhcr_or": (1 << 44) if at_bit else 0}
    for op, va in ((AtOp.S1E1R, 0x1234_5678_9000), (AtOp.S1E1R, 0xFFFF_8000_0000_0000),
                   (AtOp.S1E0R, 0x1234_5678_9000), (AtOp.S1E1W, 0x1234_5678_B000),
                   (AtOp.S12E1R, 0x1234_5678_9000)):
        _same(args, op, va)


def test_l2_abort_on_unmapped_l1_stage2_is_injected_into_l1() -> None:
    system = _system(3, context=Context.L2_EL1, holes=[], shadow={})
    res = emulate_at(system, AtOp.S1E1R, 0xFFFF_8000_0000_0000)
    assert res.exception is not None and res.exception.target_el == 2
    assert res.exception.hpfar == 0x70_0000  # L2 IPA 0x70000000
    assert any("injects" in line for line in res.narration)


def test_software_walker_never_fills_a_hole_only_l1s_own_access_does() -> None:
    # at.c's software walker reads L1's tables with kvm_read_guest() (the host's mapping of
    # L1's memory): the hole in L0's stage 2 stays, so the next AT goes slow again.
    system = _system(8, context=Context.L1_VEL2, holes=[0x4020_1000], shadow={})
    first = emulate_at(system, AtOp.S1E2R, 0x1234_5678_9000)
    assert first.path == "software walker" and first.fast_path_accepted is False
    assert 0x4020_1000 not in system.l0_mapped and not system.events
    second = emulate_at(system, AtOp.S1E2R, 0x1234_5678_9000)
    assert second.path == "software walker" and second.par == first.par
    # L1 itself reads its table page: a stage 2 fault that L0 handles by mapping the page.
    system.l1_access(0x4020_1000)
    assert 0x4020_1000 in system.l0_mapped
    assert any("faults in L1 IPA 0x40201000" in e.what for e in system.events)
    third = emulate_at(system, AtOp.S1E2R, 0x1234_5678_9000)
    assert third.path == "fast path" and third.par == first.par


def test_kvm_612_reports_the_stage1_level_and_drops_bit11() -> None:
    # Stage 2 fault on the level 0 table access (TTBR1_EL1 -> IPA 0x70000000): the Arm ARM
    # and QEMU report the stage 2 level (2); KVM 6.12 reports the stage 1 level (0).
    system = _system(3, context=Context.L1_VEL2, holes=[], shadow={})
    arch = emulate_at(system, AtOp.S1E1R, 0xFFFF_8000_0000_0000)
    kvm = emulate_at(system, AtOp.S1E1R, 0xFFFF_8000_0000_0000, kvm=KvmBehaviour.kvm())
    assert arch.par is not None and kvm.par is not None and kvm.kvm is not None
    assert arch.par.value == 0xB0D and kvm.par.value == 0xB09
    assert "s2-fault-level-is-s1-level" in kvm.kvm.fired
    ok_arch = emulate_at(system, AtOp.S12E1R, 0x1234_5678_9000)
    ok_kvm = emulate_at(system, AtOp.S12E1R, 0x1234_5678_9000, kvm=KvmBehaviour.kvm())
    assert ok_arch.par is not None and ok_kvm.par is not None and ok_kvm.kvm is not None
    # vHCR_EL2.E2H=0 here: KVM 6.12's __kvm_at_s12 returns the stage 1 PAR (L2 IPA
    # 0x85678000, ATTR 0x44 for SCTLR_EL1.C=0) without walking L1's stage 2 (L1 IPA
    # 0x45678000); the architecture walks both stages.
    assert ok_arch.par.pa == 0x4567_8000 and ok_kvm.par.pa == 0x8567_8000
    assert ok_kvm.par.value == 0x4400_0000_8567_8900
    assert "s12-e2h0-skips-stage2" in ok_kvm.kvm.fired
    # With vHCR_EL2.E2H=1 (and TGE=0) KVM walks L1's stage 2; the PAR then lacks bit 11 (RES1)
    # and NS (bit 9, UNKNOWN for Non-secure: atlab says 1).
    vhe = _system(3, context=Context.L1_VEL2, holes=[], shadow={}, vhcr_or=1 << 34)
    arch2 = emulate_at(vhe, AtOp.S12E1R, 0x1234_5678_9000)
    kvm2 = emulate_at(vhe, AtOp.S12E1R, 0x1234_5678_9000, kvm=KvmBehaviour.kvm())
    assert arch2.par is not None and kvm2.par is not None and kvm2.kvm is not None
    assert kvm2.par.pa == arch2.par.pa == 0x4567_8000
    assert {"s12-no-bit11", "no-ns-bit"} <= kvm2.kvm.fired


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"context": "L3"}, "'context' must be one of"),
        ({"vsysregs": {"TCR_EL9": 1}}, "unknown register"),
        ({"l1_memory": [{"ipa": "0x1001", "u64": 1}]}, "8-byte aligned"),
        ({"l0_stage2": {"pa_offset": "0x123"}}, "4KB aligned"),
        ({"shadow_s2": [{"l2_ipa": 0}]}, "must have 'l2_ipa' and 'pa'"),
        ({"kvm_behaviour": "yes"}, "true or false"),
        ({"ops": [{"op": "S1E2R"}]}, "must have 'op' and 'va'"),
    ],
    ids=["bad-context", "unknown-reg", "misaligned", "pa-offset", "shadow-entry", "kvm-flag",
         "op-no-va"],
)
def test_bad_nv_scenarios(doc: dict[str, object], message: str) -> None:
    with pytest.raises(AtlabError, match=message):
        parse_nv_scenario(doc, source="nv.json")


def test_fast_path_with_nv1_honours_dbm() -> None:
    # Regression (found by tests/test_nv_generated.py): with vHCR_EL2.E2H=0 the fast path
    # walks with HCR_EL2.{NV,NV1}=1, and AArch64.S1ApplyOutputPerms() still takes DBM from
    # bit 51: a read-only (AP[2]=1) DBM page is writable when TCR.HD=1.
    sc = SMOKE[8]  # EL2 regime, 4KB
    vregs = SysRegs.from_mapping(sc["sysregs"])
    vregs = vregs.replace(TCR_EL2=vregs["TCR_EL2"] | (1 << 21) | (1 << 22))  # HA, HD
    mem = {int(m["pa"], 16): int(m["u64"], 16) for m in sc["memory"]}
    mem[0x4020_3C48] = 0x4ABC_D000 | (1 << 51) | 0x783  # AP[2]=1, DBM=1, AF=1, page
    for fresh in (True, False):
        emu_sys = NvSystem(vregs=vregs, l1_memory=mem, context=Context.L1_VEL2)
        ref_sys = NvSystem(vregs=vregs, l1_memory=mem, context=Context.L1_VEL2)
        if not fresh:
            emulate_at(emu_sys, AtOp.S1E2R, 0x1234_5678_9000)  # fault the tables in first
        emu = emulate_at(emu_sys, AtOp.S1E2W, 0x1234_5678_9000)
        ref = reference_at(ref_sys, AtOp.S1E2W, 0x1234_5678_9000)
        assert emu.par is not None and emu.par.f == 0
        assert emu.par == getattr(ref, "par", None)


@pytest.mark.parametrize(
    ("context", "vhcr", "set_bits", "clear_bits"),
    [
        # L1 at vEL2 (vE2H=0): NV, NV1 and AT trap/redirect; TGE=0; VM for L0's stage 2.
        (Context.L1_VEL2, 1 << 31, (42, 43, 44, 0, 31, 34), (27,)),
        # L1 at vEL2 with vE2H=1: no NV1 (L1's EL2&0 tables use the EL1 format).
        (Context.L1_VEL2, (1 << 31) | (1 << 34), (42, 44), (43, 27)),
        # L2 with L1's vHCR_EL2.AT=1: folded, so L2's AT traps to L0 which forwards it.
        (Context.L2_EL1, (1 << 31) | 1 | (1 << 44), (44, 0), (42, 43)),
        # L2 with vHCR_EL2.AT=0: L2's AT runs in hardware on the shadow stage 2.
        (Context.L2_EL1, (1 << 31) | 1, (0,), (44, 42)),
    ],
    ids=["vEL2-nVHE", "vEL2-VHE", "L2-vAT1", "L2-vAT0"],
)
def test_loaded_hcr_el2(context: Context, vhcr: int, set_bits: tuple[int, ...],
                        clear_bits: tuple[int, ...]) -> None:
    from atlab.nv import loaded_hcr_el2

    loaded = loaded_hcr_el2(context, SysRegs({"HCR_EL2": vhcr}), ALL)
    assert all(loaded.value >> b & 1 for b in set_bits), str(loaded)
    assert not any(loaded.value >> b & 1 for b in clear_bits), str(loaded)
    assert loaded.reasons


_HOP = re.compile(r"(0x[0-9a-f]+)\)?:?\s*->\s*(?:(?:L[012]|PA|IPA|VA)\s+)*(0x[0-9a-f]+)")


@pytest.mark.parametrize("kvm", [None, KvmBehaviour.kvm()], ids=["arch", "kvm-6.12"])
@pytest.mark.parametrize(("context", "op", "va"), [
    (Context.L1_VEL2, AtOp.S12E1R, 0x1234_5678_9000),  # L1's stage 2 maps its tables 1:1
    (Context.L1_VEL2, AtOp.S1E1R, 0xFFFF_8000_0000_0000),  # table IPA not in L1's stage 2
    (Context.L2_EL1, AtOp.S1E1R, 0x1234_5678_9000),  # L0 fills the shadow, 1:1 stage 2
], ids=["S12E1R-identity-s2", "S1E1R-s2-hole", "L2-shadow-fill"])
def test_narration_never_shows_an_address_mapped_to_itself_as_a_hop(
        context: Context, op: AtOp, va: int, kvm: KvmBehaviour | None) -> None:
    from atlab.nv import load_nv_scenarios

    nv = load_nv_scenarios(str(Path(__file__).parent.parent / "examples"
                               / "nv_l1_guest_hypervisor.json"))[0]
    system = nv.system()
    system.context = context
    res = emulate_at(system, op, va, kvm=kvm if context is Context.L1_VEL2 else None)
    for line in res.narration:
        for m in _HOP.finditer(line):
            assert int(m.group(1), 16) != int(m.group(2), 16), line
    assert res.narration


def test_l2_walk_above_the_48bit_shadow_is_refused_with_one_line() -> None:
    # Regression (fuzzing, issue 19): L2's stage 1 tables at L2 IPA 2^48, which L1's 52-bit
    # 64KB stage 2 maps, cannot be mapped in L0's 48-bit shadow stage 2; the emulation used to
    # loop and fail with "AssertionError: shadow stage 2 did not converge".
    from atlab.builder import S1Builder, S2Builder
    from atlab.granule import Granule
    from atlab.regime import Regime

    high = 1 << 48
    s1 = S1Builder(Regime.EL10, granule=Granule.K64, va_bits=48, pa_bits=52,
                   tables=(high, high + 0x10_0000))
    s1.map(0x1000_0000, 0x4060_0000, 0x1_0000)
    s2 = S2Builder(granule=Granule.K64, ipa_bits=52, pa_bits=52,
                   tables=(0x4030_0000, 0x4040_0000))
    s2.map(high, 0x4050_0000, 0x10_0000)
    s2.map(0x4060_0000, 0x4060_0000, 0x1_0000)
    mem = {ipa - high + 0x4050_0000: v for ipa, v in s1.words()}
    mem.update(dict(s2.words()))
    system = NvSystem(vregs=SysRegs({**s1.sysregs(), **s2.sysregs(), "HCR_EL2": (1 << 31) | 1}),
                      l1_memory=mem, context=Context.L2_EL1)
    with pytest.raises(AtlabError, match="beyond the 48-bit shadow stage 2") as err:
        emulate_at(system, AtOp.S1E1R, 0x1000_0000)
    assert "\n" not in str(err.value)
