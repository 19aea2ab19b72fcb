"""The lie must be perfect, over the differential test's generated variety.

For every scenario of the QEMU differential-test generator (all regimes and ops, 4K/16K/64K,
TBI, EPD, LPA2, stage 2 with concatenation, FWB, ...), L1's registers become vEL2 registers,
its memory L1's IPA space, and L0's stage 2 gets random holes and a random partial shadow
stage 2.  The emulated AT (trap, fast path, software walker) must give L1 exactly what the
plain AT gives at a real EL2 (or EL1, for L2's own ATs) with L1's IPA space as physical
memory.  A failure prints a shrunk NV scenario.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from atlab import AtlabError, AtOp, SysRegs
from atlab.features import FeatureSet
from atlab.nv import Context, NvSystem, emulate_at, reference_at
from atlab.nv.model import S2_ATTR_BITS, page_of
from atlab.sysregs import parse_int
from atlab.walk_s2 import S2WalkInfo, setup_s2_walk, stage2_enabled, walk_s2

generator = pytest.importorskip("tools.difftest.generator")

SEEDS = (101, 102, 103)
COUNT = 400  # per seed: 1,200 generated scenarios, several thousand emulated ATs


def _system(sc: dict[str, Any], context: Context, holes: list[int],
            shadow: dict[int, int]) -> NvSystem:
    vregs = SysRegs.from_mapping(sc.get("sysregs", {}))
    mem = {parse_int(m["pa"]): parse_int(m["u64"]) for m in sc.get("memory", [])}
    feats = FeatureSet.from_mapping(sc.get("features", {}))
    return NvSystem(vregs=vregs, l1_memory=mem, holes=holes, shadow=shadow, context=context,
                    features=feats, pan=vregs.field("PSTATE_PAN", "PAN"))


def _correct_shadow(sc: dict[str, Any], rng: random.Random) -> dict[int, int]:
    """A random subset of the shadow entries L0 could have built: L2 IPA page -> PA page."""
    probe = _system(sc, Context.L1_VEL2, [], {})
    if not stage2_enabled(probe.vregs):
        return {}
    info = setup_s2_walk(probe.vregs, probe.features)
    if not isinstance(info, S2WalkInfo):
        return {}
    flat = probe.flat_l1_memory()
    out = {}
    for ipa in sorted({page_of(parse_int(m["pa"])) for m in sc.get("memory", [])}):
        if rng.random() < 0.5:
            continue
        res = walk_s2(info, flat, ipa, probe.features, write=False, s1ptw=True, for_at=False)
        if res.fault is None:
            pa = probe.backing.get(page_of(res.pa))
            if pa is not None:  # the entry carries L1's stage 2 permissions and attributes
                out[ipa] = pa | (res.desc & S2_ATTR_BITS)
    return out


def _outcome(x: Any) -> tuple[object, ...]:
    par = getattr(x, "par", None)
    exc = getattr(x, "exception", None) if hasattr(x, "par") else x
    return (None if par is None else par.value, exc)


def _compare(sc: dict[str, Any], context: Context, holes: list[int], shadow: dict[int, int],
             ops: list[dict[str, Any]]) -> str | None:
    emu_sys = _system(sc, context, holes, shadow)
    ref_sys = _system(sc, context, holes, shadow)
    for spec in ops:
        op, va = AtOp.parse(spec["op"]), parse_int(spec["va"])
        try:
            ref = reference_at(ref_sys, op, va)
        except AtlabError:
            return None  # a scenario this context cannot run (e.g. EL1 with TGE=1)
        emu = emulate_at(emu_sys, op, va, trace=False)
        if _outcome(emu) != _outcome(ref):
            return f"{op} VA={va:#x}: emulated {emu.outcome()} vs reference {_outcome(ref)}"
    return None


def _shrink(sc: dict[str, Any], context: Context, holes: list[int], shadow: dict[int, int],
            ops: list[dict[str, Any]]) -> dict[str, Any]:
    i = 0
    while i < len(ops):  # drop ops one at a time while the mismatch persists
        fewer_ops = ops[:i] + ops[i + 1:]
        if fewer_ops and _compare(sc, context, holes, shadow, fewer_ops):
            ops = fewer_ops
        else:
            i += 1
    for h in list(holes):
        fewer = [x for x in holes if x != h]
        if _compare(sc, context, fewer, shadow, ops):
            holes = fewer
    for k in list(shadow):
        smaller = {a: b for a, b in shadow.items() if a != k}
        if _compare(sc, context, holes, smaller, ops):
            shadow = smaller
    return {"name": sc.get("name"), "context": context.name, "vsysregs": sc.get("sysregs"),
            "l1_memory": [{"ipa": m["pa"], "u64": m["u64"]} for m in sc.get("memory", [])],
            "l0_stage2": {"pa_offset": "0x100000000", "holes": [hex(h) for h in holes]},
            "shadow_s2": [{"l2_ipa": hex(a), "pa": hex(b)} for a, b in shadow.items()],
            "features": sc.get("features", {}), "ops": ops}


@pytest.mark.parametrize("seed", SEEDS)
def test_emulated_at_equals_plain_at_on_generated_scenarios(seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    for sc in generator.generate(seed, COUNT):
        if any(str(t).startswith("atlab-only") for t in sc.get("tags", [])):
            continue  # features switched off or invalid on purpose: not an NV machine
        pages = sorted({page_of(parse_int(m["pa"])) for m in sc.get("memory", [])})
        holes = [p for p in pages if rng.random() < 0.3]
        shadow = _correct_shadow(sc, rng)
        ops = list(sc.get("ops", []))
        contexts = [Context.L1_VEL2]
        if not (parse_int(sc.get("sysregs", {}).get("HCR_EL2", 0)) >> 27) & 1:
            contexts.append(Context.L2_EL1)
        for context in contexts:
            use = ops if context is Context.L1_VEL2 else [
                o for o in ops if str(o["op"]).upper().startswith(("S1E0", "S1E1"))]
            problem = _compare(sc, context, holes, shadow, use)
            if problem:
                repro = _shrink(sc, context, holes, shadow, use)
                pytest.fail(f"{sc.get('name')} ({context.value}): {problem}\n"
                            f"shrunk NV scenario:\n{json.dumps(repro, indent=1)}")
            checked += len(use)
    assert checked > 1000, checked
