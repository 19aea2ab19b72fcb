"""Hypothesis properties of the walkers and the AT front end (deterministic settings)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlab import (
    AtlabError,
    AtOp,
    Fault,
    FaultKind,
    Feature,
    FeatureSet,
    Par,
    PhysMem,
    SysRegs,
    run_at,
)
from atlab.sysregs import LAYOUTS, NOT_MODELLED_FIELDS, WRITABLE, decode, encode, layout
from tests.helpers import (
    AF,
    PGSHIFT,
    SH_NSH,
    TG0,
    TG1,
    TableAlloc,
    build_s1,
    el1_regs,
    hcr,
    identity_s2_1g,
    memattr,
    s1_start_level,
    s2ap,
    sh,
    tcr_el1,
    vtcr,
)

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                         suppress_health_check=[HealthCheck.too_slow])
U64 = st.integers(0, (1 << 64) - 1)

# --- (1) the walker never raises on random inputs ---------------------------------------------

#: The AtlabError messages atlab documents for bad input a random register file can produce.
DOCUMENTED_ERRORS = ("reserved granule encoding", "does not implement", "TGE=1",
                     "which atlab does not model")
POOL = [0x1000, 0x4_0000, 0x20_0000, 0x4000_0000, 0x8_0000_0000, 0x1_0000_0000_0000]


def _random_desc(rng: random.Random) -> int:
    choice = rng.randrange(10)
    if choice == 0:
        return 0
    if choice == 1:
        return rng.getrandbits(64)
    # A plausible descriptor: a pool address, random type bits and attributes.
    base = rng.choice(POOL) & ((1 << 48) - 1)
    low = rng.getrandbits(12)
    high = rng.getrandbits(14) << 50
    oa_hi = rng.getrandbits(4) << 12 if rng.random() < 0.2 else 0
    return base | low | high | oa_hi | rng.choice((0b01, 0b11, 0b11, 0b11))


def _random_memory(rng: random.Random, va: int) -> PhysMem:
    mem = PhysMem(logging=False)
    # The slots a walk of `va` would index, for every granule and level, in every pool table.
    slots = set()
    for pgshift in (12, 14, 16):
        stride = pgshift - 3
        for level in (-1, 0, 1, 2, 3):
            lsb = (3 - level) * stride + pgshift
            slots.add((va >> lsb) & ((1 << stride) - 1))
            slots.add((va >> lsb) & ((1 << (stride + 4)) - 1))  # concatenated start tables
    for base in POOL:
        for idx in slots:
            if rng.random() < 0.97:
                mem.poke(base + 8 * idx, _random_desc(rng))
        for _ in range(4):
            mem.poke(base + 8 * rng.randrange(1 << 13), _random_desc(rng))
    return mem


def _reg_value(rng: random.Random, name: str) -> int:
    if "TTBR" in name and rng.random() < 0.8:
        return rng.choice(POOL) | rng.getrandbits(6)
    return rng.getrandbits(64)


@st.composite
def random_world(draw: st.DrawFn) -> tuple[AtOp, int, int, SysRegs, FeatureSet, int, int]:
    op = draw(st.sampled_from(list(AtOp)))
    cur_el = draw(st.sampled_from([1, 2, 2, 3]))
    va_bits = draw(st.sampled_from([16, 21, 24, 25, 30, 39, 48, 64]))
    va = draw(st.integers(0, (1 << va_bits) - 1))
    if draw(st.booleans()):
        va |= ((1 << 64) - 1) ^ ((1 << draw(st.sampled_from([25, 39, 48, 52]))) - 1)
    seed = draw(st.integers(0, 2**32 - 1))
    missing = draw(st.sets(st.sampled_from(list(Feature)), max_size=4))
    pa_max = draw(st.sampled_from([32, 36, 40, 42, 44, 48, 52]))
    features = FeatureSet(frozenset(Feature) - missing, pa_max)
    rng = random.Random(seed)
    names = sorted(WRITABLE - {"PSTATE_PAN"})
    values = {n: _reg_value(rng, n) for n in names if rng.random() < 0.8}
    # Bias towards configurations that walk: MMUs on, TxSZ in range, implemented granules,
    # a sane stage 2 some of the time.
    for n in ("SCTLR_EL1", "SCTLR_EL2", "SCTLR_EL3"):
        if rng.random() < 0.7:
            values[n] = values.get(n, 0) | 1
    for n in ("TCR_EL1", "TCR_EL2", "TCR_EL3", "VTCR_EL2"):
        if rng.random() < 0.7:
            v = values.get(n, 0) & ~0x3F_C03F & ~(0b11 << 30)
            values[n] = (v | rng.randint(16, 39) | (rng.randint(16, 39) << 16)
                         | (rng.choice((0, 1, 2)) << 14) | (rng.choice((1, 2, 3)) << 30))
            if n == "TCR_EL1" or rng.random() < 0.8:  # EPD0, EPD1, E0PD0, E0PD1 clear
                values[n] &= ~((1 << 7) | (1 << 23) | (1 << 55) | (1 << 56))
    if rng.random() < 0.5:
        values["VTCR_EL2"] = vtcr(T0SZ=24, SL0=1, PS=rng.randrange(8)) | (rng.getrandbits(8) << 19)
    if rng.random() < 0.9:  # fields of features atlab refuses (FEAT_THE/HAFT/D128): mostly clear
        for n, fields in NOT_MODELLED_FIELDS.items():
            if n in values:
                values[n] &= ~sum(1 << pos for _, pos in fields)
    values["PSTATE_PAN"] = rng.getrandbits(1)
    pan = draw(st.sampled_from([None, 0, 1]))
    return op, va, cur_el, SysRegs(values), features, seed, -1 if pan is None else pan


@DETERMINISTIC
@given(random_world())
def test_walker_never_raises(world: tuple[AtOp, int, int, SysRegs, FeatureSet, int, int]) -> None:
    op, va, cur_el, regs, features, seed, pan = world
    mem = _random_memory(random.Random(seed ^ 0x5A5A), va)
    try:
        res = run_at(op, va, regs=regs, mem=mem, features=features, cur_el=cur_el,
                     pan=None if pan < 0 else pan)
    except AtlabError as exc:
        assert any(s in str(exc) for s in DOCUMENTED_ERRORS), str(exc)
        return
    assert (res.par is None) != (res.exception is None)
    if res.par is not None:
        assert 0 <= res.par.value < 1 << 64
        str(res.par)
        if res.par.f:
            assert res.fault is not None
            assert res.par.fault_status == res.fault.fst
            assert res.par.s == (res.fault.stage == 2)
    str(res)
    res.to_dict(full=True)


@DETERMINISTIC
@given(random_world())
def test_trace_and_memory_kind_do_not_change_the_outcome(
        world: tuple[AtOp, int, int, SysRegs, FeatureSet, int, int]) -> None:
    """The walkers take shortcuts without a trace and on plain unlogged memory: the outcome
    (PAR or exception, fault, rights, and the memory after Access-flag updates) must be the
    same as with a trace on logged memory."""
    op, va, cur_el, regs, features, seed, pan = world
    outcomes = []
    for trace, logging in ((True, True), (False, True), (False, False)):
        mem = _random_memory(random.Random(seed ^ 0x5A5A), va)
        mem.logging = logging
        try:
            res = run_at(op, va, regs=regs, mem=mem, features=features, cur_el=cur_el,
                         pan=None if pan < 0 else pan, trace=trace)
        except AtlabError as exc:
            outcomes.append(("error", str(exc)))
            continue
        outcomes.append((res.par, res.exception, res.fault, res.perms, res.ipa, mem.words()))
        if trace:
            assert res.trace.lines()  # every step decodes its descriptor when read
            assert len(mem.log) >= res.trace.s1_accesses
    assert outcomes[0] == outcomes[1] == outcomes[2]


# --- (2) encode/decode round trips ---------------------------------------------------------

@DETERMINISTIC
@given(pa=st.integers(0, (1 << 56) - 1), attr=st.integers(0, 255), sh_=st.integers(0, 3))
def test_par_success_round_trip(pa: int, attr: int, sh_: int) -> None:
    p = Par.success(pa, attr, sh_)
    assert p.f == 0
    assert (p.pa, p.attr, p.sh) == (pa & ~0xFFF, attr, sh_)
    assert Par(p.value) == p
    assert Par.success(p.pa, p.attr, p.sh, p.ns) == p


FAULTS = st.builds(
    Fault,
    kind=st.sampled_from(list(FaultKind)),
    level=st.integers(0, 3),
    stage=st.sampled_from([1, 2]),
    s1ptw=st.booleans(),
) | st.builds(Fault, kind=st.sampled_from([FaultKind.TRANSLATION, FaultKind.ADDRESS_SIZE]),
              level=st.just(-1), stage=st.sampled_from([1, 2]), s1ptw=st.booleans())


@DETERMINISTIC
@given(FAULTS)
def test_par_fault_round_trip(fault: Fault) -> None:
    if fault.stage == 1:
        fault = Fault(fault.kind, fault.level, 1, False)
    p = Par.from_fault(fault)
    assert p.f == 1
    back = Fault.from_fst(p.fault_status, stage=2 if p.s else 1, s1ptw=bool(p.ptw))
    assert back == fault


@DETERMINISTIC
@given(name=st.sampled_from(sorted(LAYOUTS)), value=U64, e2h=st.integers(0, 1))
def test_register_round_trip(name: str, value: int, e2h: int) -> None:
    fields = decode(name, value, e2h=e2h)
    covered = 0
    for f in layout(name, e2h=e2h):
        covered |= ((1 << f.width) - 1) << f.lo
    assert encode(name, e2h=e2h, **fields) == value & covered
    assert decode(name, encode(name, e2h=e2h, **fields), e2h=e2h) == fields


# --- (3) an identity stage 2 changes nothing ---------------------------------------------------

S2_BASE = 0x8000_0000  # 8KB for two concatenated level 1 tables (40-bit IPA)
VALID_ATTRS = [0x00, 0x04, 0x08, 0x0C, 0x44, 0xFF, 0xBB, 0xAA, 0xEE, 0x4F, 0xF4, 0x77, 0x33]
#: AT S1E* and the matching AT S12E*.
PAIRS = [(AtOp.S1E1R, AtOp.S12E1R), (AtOp.S1E1W, AtOp.S12E1W), (AtOp.S1E0R, AtOp.S12E0R),
         (AtOp.S1E0W, AtOp.S12E0W)]
LEAF_LEVELS = {"4K": (1, 2, 3), "16K": (2, 3), "64K": (2, 3)}


@st.composite
def s1_config(draw: st.DrawFn) -> dict[str, object]:
    granule = draw(st.sampled_from(["4K", "16K", "64K"]))
    txsz = draw(st.integers(16, 39))
    ia_bits = 64 - txsz
    sl = s1_start_level(ia_bits, PGSHIFT[granule])
    leaf = draw(st.sampled_from([lv for lv in LEAF_LEVELS[granule] if lv >= max(sl, 0)]))
    upper = draw(st.booleans())
    va = draw(st.integers(0, (1 << ia_bits) - 1))
    if upper:
        va |= ((1 << 64) - 1) ^ ((1 << ia_bits) - 1)
    return {
        "granule": granule, "txsz": txsz, "leaf": leaf, "upper": upper, "va": va,
        "pa": draw(st.integers(0, (1 << 40) - 1)),
        "ap": draw(st.integers(0, 3)), "attridx": draw(st.integers(0, 7)),
        "mair": draw(st.lists(st.sampled_from(VALID_ATTRS), min_size=8, max_size=8)),
        "sh": draw(st.sampled_from([0b00, 0b10, 0b11])), "af": draw(st.booleans()),
        "ha": draw(st.booleans()), "ips": draw(st.integers(0, 5)),
        "xn": draw(st.integers(0, 3)), "pair": draw(st.sampled_from(PAIRS)),
    }


@DETERMINISTIC
@given(s1_config())
def test_identity_stage2_is_transparent(cfg: dict[str, object]) -> None:
    granule, txsz, va = str(cfg["granule"]), int(cfg["txsz"]), int(cfg["va"])  # type: ignore[call-overload]
    desc_bits = ((AF if cfg["af"] else 0) | sh(int(cfg["sh"])) | (int(cfg["ap"]) << 6)  # type: ignore[call-overload]
                 | (int(cfg["attridx"]) << 2) | (int(cfg["xn"]) << 53))  # type: ignore[call-overload]
    mem = PhysMem()
    root = build_s1(mem, granule, txsz, va, int(cfg["pa"]), int(cfg["leaf"]), desc_bits,  # type: ignore[call-overload]
                    alloc=TableAlloc(0x4000_0000))
    # Identity stage 2: 1GB blocks over the 40-bit IPA space, S2AP=11, MemAttr=0b1111 (Normal
    # WB: S2CombineS1MemAttrs() keeps stage 1's attributes), AF=1, SH=NSH (the neutral element
    # of S2CombineS1Shareability()).
    identity_s2_1g(mem, S2_BASE, bits=AF | s2ap(0b11) | memattr(0b1111) | sh(SH_NSH))
    mair = sum(a << (8 * i) for i, a in enumerate(cfg["mair"]))  # type: ignore[arg-type]
    n = "1" if cfg["upper"] else "0"
    tg = TG1[granule] if cfg["upper"] else TG0[granule]
    tcr = tcr_el1(**{f"T{n}SZ": txsz, f"TG{n}": tg, "IPS": int(cfg["ips"]),  # type: ignore[call-overload]
                     "HA": int(bool(cfg["ha"]))})
    base = {"tcr": tcr, "mair": mair, f"ttbr{n}": root}
    s1_only = el1_regs(**base)  # type: ignore[arg-type]
    nested = el1_regs(hcr_el2=hcr(VM=1), VTCR_EL2=vtcr(T0SZ=24, SL0=1, PS=0b010),
                      VTTBR_EL2=S2_BASE, **base)  # type: ignore[arg-type]
    op1, op12 = cfg["pair"]  # type: ignore[misc]
    a = run_at(op1, va, regs=s1_only, mem=mem.copy())
    b = run_at(op12, va, regs=nested, mem=mem.copy())
    assert a.par is not None and b.par is not None
    assert b.par.value == a.par.value, f"{a.par} != {b.par}"
