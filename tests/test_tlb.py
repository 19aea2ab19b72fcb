"""The TLB model: tags, hits, staleness, TLBI, and the shadow stage 2 as L0's TLB."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlab import (
    AtlabError,
    AtOp,
    PhysMem,
    Regime,
    S1Builder,
    S2Builder,
    SysRegs,
    parse_scenario,
    run_at,
)
from atlab.builder import scenario_dict
from atlab.nv import (
    Context,
    NvSystem,
    emulate_at,
    l0_handle_tlbi,
    l1_tlbi,
    l2_access,
    reference_at,
    shadow_check,
)
from atlab.nv.model import S2_ATTR_BITS, page_of
from atlab.par import Par
from atlab.pe import Machine
from atlab.tlb import EntryKind, Replacement, Tlb, TlbEntry, TlbiOp, TlbPolicy, tlb_context

VA_G = 0x1000_0000  # global 4KB page, EL1 RW
VA_NG = 0x1000_1000  # non-global (nG=1) 4KB page, EL1 RW / EL0 RW
VA_BLK = 0x4000_0000  # global 2MB block
ASID = 5
VMID = 3


def _system(*, s2: bool = False) -> tuple[SysRegs, PhysMem]:
    b = S1Builder(Regime.EL10, tables=(0x4020_0000, 0x4030_0000), asid=ASID)
    b.map(VA_G, 0x4100_0000, 0x1000, ap="EL1 RW")
    b.map(VA_NG, 0x4100_1000, 0x1000, ap="EL1 RW / EL0 RW", ng=True)
    b.map(VA_BLK, 0x4200_0000, 0x20_0000, ap="EL1 RO")
    s2b = None
    if s2:
        s2b = S2Builder(ipa_bits=48, tables=(0x4040_0000, 0x4050_0000), vmid=VMID)
        s2b.map(0x4000_0000, 0x4000_0000, 0x4000_0000)  # IPA == PA, 1GB block
    sc = parse_scenario(scenario_dict(name="tlb", s1=[b], s2=s2b,
                                      sysregs={} if s2b else {"VTTBR_EL2": VMID << 48}))
    return sc.regs, sc.fresh_memory()


def _leaf_pa(regs: SysRegs, mem: PhysMem, va: int) -> int:
    """Where the leaf descriptor of ``va`` is (read from a fresh walk's trace)."""
    return run_at(AtOp.S1E1R, va, regs=regs, mem=mem).trace.steps[-1].desc_pa


def _leaves(tlb: Tlb) -> list[TlbEntry]:
    return [e for e in tlb.entries if e.kind.is_leaf]


def test_miss_fill_then_hit() -> None:
    regs, mem = _system()
    first = Tlb().translate(AtOp.S1E1R, VA_G + 0x123, regs=regs, mem=mem)
    assert not first.hit and first.entry is not None
    e = first.entry
    assert (e.kind, e.regime, e.vmid, e.asid, e.ia, e.size, e.level, e.oa) == (
        EntryKind.S1, Regime.EL10, VMID, None, VA_G, 0x1000, 3, 0x4100_0000)
    # D8.16: the table descriptors of levels 0-2 go to the walk cache; R_CHVGJ: they are
    # non-global whatever the leaf's nG, so they carry the walk's ASID.
    walks = [(w.kind, w.level, w.ia, w.size, w.asid) for w in first.tlb.entries
             if not w.kind.is_leaf]
    assert walks == [(EntryKind.S1_WALK, 0, 0, 1 << 39, ASID),
                     (EntryKind.S1_WALK, 1, 0, 1 << 30, ASID),
                     (EntryKind.S1_WALK, 2, 0x1000_0000 & ~0x1F_FFFF, 1 << 21, ASID)]
    second = first.tlb.translate(AtOp.S1E1R, VA_G + 0x800, regs=regs, mem=mem)
    assert second.hit and second.par == run_at(AtOp.S1E1R, VA_G + 0x800, regs=regs,
                                               mem=mem).par
    assert second.filled == () and len(second.tlb) == len(first.tlb)  # a hit allocates nothing
    assert second.result.trace.notes[0].startswith("TLB hit")
    assert second.tlb.entries[-1] is e  # LRU: the entry used last is evicted last


def test_walk_cache_resumes_below_the_cached_table() -> None:
    """A neighbour page under the same level 2 table: only the level 3 descriptor is read."""
    regs, mem = _system()
    tlb = Tlb().translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem).tlb
    look = tlb.translate(AtOp.S1E1R, VA_NG, regs=regs, mem=mem)
    assert not look.hit and [u.level for u in look.used] == [2]
    assert [s.level for s in look.result.trace.steps] == [3]
    assert look.par == run_at(AtOp.S1E1R, VA_NG, regs=regs, mem=mem).par


def test_stale_table_descriptor_survives_vale1_not_vae1() -> None:
    """C5.5 TLBI VALE1 removes last-level entries only (I_RTRQB); a changed *table*
    descriptor needs TLBI VAE1, which also removes the walk cache entries for the VA."""
    regs, mem = _system()
    tlb = Tlb().translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem).tlb
    l2 = run_at(AtOp.S1E1R, VA_G, regs=regs, mem=mem).trace.steps[2]
    assert l2.level == 2 and l2.kind == "table"
    mem.poke(l2.desc_pa, 0)  # the whole 2MB is unmapped
    want = run_at(AtOp.S1E1R, VA_G, regs=regs, mem=mem).par
    assert want is not None and want.f
    after_vale1 = tlb.tlbi(TlbiOp.VALE1, regs=regs, va=VA_G, asid=ASID).tlb
    stale = after_vale1.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem)
    assert not stale.hit and [u.level for u in stale.used] == [2]
    assert stale.par is not None and stale.par.pa == 0x4100_0000  # old table, old leaf
    after_vae1 = tlb.tlbi(TlbiOp.VAE1, regs=regs, va=VA_G, asid=ASID).tlb
    assert after_vae1.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem).par == want


def test_stale_entry_until_tlbi_vae1() -> None:
    """D8.17 TLB maintenance: a change to a valid descriptor is not seen until a TLBI."""
    regs, mem = _system()
    tlb = Tlb().translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem).tlb
    leaf = _leaf_pa(regs, mem, VA_G)
    mem.poke(leaf, (mem.peek(leaf) & ~0xFFFF_FFFF_F000) | 0x4A00_0000)
    stale = tlb.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem)
    assert stale.hit and stale.par is not None and stale.par.pa == 0x4100_0000
    fresh = tlb.tlbi(TlbiOp.VAE1, regs=regs, va=VA_G).tlb
    now = fresh.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem)
    assert not now.hit and now.par is not None and now.par.pa == 0x4A00_0000


def _filled(*, s2: bool = False, regs_change: dict[str, int] | None = None
            ) -> tuple[SysRegs, Tlb]:
    """S1-only: AT S1E1R of VA_G, VA_NG, VA_BLK -> 3 leaves (VA_NG nG=1, ASID 5) and 4
    walk cache entries (L0 0+512GB, L1 0+1GB, L2 0x10000000+2MB, L1 0x40000000+1GB).
    With ``s2``: AT S12E1R of VA_G -> 3 S1_WALK, 1 S12, and (IPA 0x40000000+1GB block) 1 S2
    leaf and 1 S2_WALK (L0)."""
    regs, mem = _system(s2=s2)
    tlb = Tlb()
    for va in (VA_G,) if s2 else (VA_G, VA_NG, VA_BLK):
        tlb = tlb.translate(AtOp.S12E1R if s2 else AtOp.S1E1R, va, regs=regs, mem=mem).tlb
    return regs.replace(**(regs_change or {})), tlb


def _count(entries: tuple[TlbEntry, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in entries:
        out[e.kind.name] = out.get(e.kind.name, 0) + 1
    return out


_OTHER_VMID = {"VTTBR_EL2": 7 << 48}


@pytest.mark.parametrize(
    ("op", "kw", "s2", "regs_change", "removed"),
    [
        # C5.5 TLBI VMALLE1 (TLBIOp_VMALL): every stage 1 entry of the current VMID, every
        # ASID, any level; not the stage 2 only entries.
        (TlbiOp.VMALLE1, {}, False, {}, {"S1": 3, "S1_WALK": 4}),
        (TlbiOp.VMALLE1, {}, False, _OTHER_VMID, {}),
        (TlbiOp.VMALLE1, {}, True, {}, {"S1_WALK": 3, "S12": 1}),
        # TLBI VAE1: walk cache entries of the ASID, global leaves, nG leaves of the ASID.
        (TlbiOp.VAE1, {"va": VA_NG, "asid": ASID}, False, {}, {"S1": 1, "S1_WALK": 3}),
        (TlbiOp.VAE1, {"va": VA_NG, "asid": ASID + 1}, False, {}, {}),
        (TlbiOp.VAE1, {"va": VA_G, "asid": ASID + 1}, False, {}, {"S1": 1}),
        (TlbiOp.VAE1, {"va": VA_G + 0x1000 * 9, "asid": ASID + 1}, False, {}, {}),
        (TlbiOp.VAE1, {"va": VA_BLK + 0x1F_F000, "asid": ASID + 1}, False, {}, {"S1": 1}),
        (TlbiOp.VAE1, {"va": VA_G | 0xAB << 56, "asid": ASID + 1}, False, {}, {"S1": 1}),
        # TLBI VALE1: the final level only.
        (TlbiOp.VALE1, {"va": VA_NG, "asid": ASID}, False, {}, {"S1": 1}),
        # TLBI VAAE1 / VAALE1: the VA, every ASID.
        (TlbiOp.VAAE1, {"va": VA_NG}, False, {}, {"S1": 1, "S1_WALK": 3}),
        (TlbiOp.VAALE1, {"va": VA_NG}, False, {}, {"S1": 1}),
        # TLBI ASIDE1: non-global entries of the ASID (walk cache entries are non-global).
        (TlbiOp.ASIDE1, {"asid": ASID}, False, {}, {"S1": 1, "S1_WALK": 4}),
        (TlbiOp.ASIDE1, {"asid": ASID + 1}, False, {}, {}),
        # TLBI ALLE1: every VMID, both stages.
        (TlbiOp.ALLE1, {}, False, _OTHER_VMID, {"S1": 3, "S1_WALK": 4}),
        (TlbiOp.ALLE1IS, {}, True, _OTHER_VMID, {"S1_WALK": 3, "S12": 1, "S2": 1,
                                                  "S2_WALK": 1}),
        # TLBI VMALLS12E1: both stages of the current VMID (R_GNJPZ).
        (TlbiOp.VMALLS12E1, {}, True, {}, {"S1_WALK": 3, "S12": 1, "S2": 1, "S2_WALK": 1}),
        (TlbiOp.VMALLS12E1, {}, True, _OTHER_VMID, {}),
        # TLBI IPAS2E1: stage 2 only entries from any level; combined entries need not go.
        (TlbiOp.IPAS2E1, {"ipa": 0x4100_0000}, True, {}, {"S2": 1, "S2_WALK": 1}),
        (TlbiOp.IPAS2E1IS, {"ipa": 0x80_0000_0000 - 0x1000}, True, {}, {"S2_WALK": 1}),
        (TlbiOp.IPAS2LE1, {"ipa": 0x4100_0000}, True, {}, {"S2": 1}),
        (TlbiOp.IPAS2E1, {"ipa": 0x4100_0000}, False, {}, {}),
        # TLBI VAE2 / ALLE2: the EL2 regimes only.
        (TlbiOp.VAE2, {"va": VA_G}, False, {}, {}),
        (TlbiOp.ALLE2, {}, False, {}, {}),
    ],
    ids=["VMALLE1", "VMALLE1-other-VMID", "VMALLE1-keeps-S2", "VAE1-nG-same-ASID",
         "VAE1-nG-other-ASID", "VAE1-global-any-ASID", "VAE1-other-VA", "VAE1-inside-2MB-block",
         "VAE1-top-byte-ignored", "VALE1-last-level", "VAAE1", "VAALE1", "ASIDE1",
         "ASIDE1-other-ASID", "ALLE1-every-VMID", "ALLE1IS-both-stages", "VMALLS12E1",
         "VMALLS12E1-other-VMID", "IPAS2E1-keeps-S12", "IPAS2E1-walk-level",
         "IPAS2LE1-last-level", "IPAS2E1-no-S2", "VAE2-keeps-EL10", "ALLE2-keeps-EL10"],
)
def test_tlbi_scope(op: TlbiOp, kw: dict[str, Any], s2: bool, regs_change: dict[str, int],
                    removed: dict[str, int]) -> None:
    regs, tlb = _filled(s2=s2, regs_change=regs_change)
    res = tlb.tlbi(op, regs=regs, **kw)
    assert _count(res.removed) == removed
    assert len(res.tlb) == len(tlb) - len(res.removed)


def _el2_system(*, e2h: int, tge: int) -> tuple[SysRegs, PhysMem, Tlb]:
    """EL2 (E2H=0) or EL2&0 (E2H=1) tables; AT S1E2R of VA_G and VA_NG fills the TLB."""
    regime = Regime.EL20 if e2h else Regime.EL2
    b = S1Builder(regime, tables=(0x4020_0000, 0x4030_0000), asid=ASID)
    ap = "EL1 RW" if e2h else "RW"
    b.map(VA_G, 0x4100_0000, 0x1000, ap=ap)
    b.map(VA_NG, 0x4100_1000, 0x1000, ap=ap, ng=bool(e2h))
    sc = parse_scenario(scenario_dict(name="el2", s1=[b], sysregs={
        "HCR_EL2": 0x8000_0000 | e2h << 34 | tge << 27}))
    regs, mem = sc.regs, sc.fresh_memory()
    tlb = Tlb()
    for va in (VA_G, VA_NG):
        tlb = tlb.translate(AtOp.S1E2R, va, regs=regs, mem=mem).tlb
    assert {e.regime for e in tlb.entries} == {regime}
    return regs, mem, tlb


@pytest.mark.parametrize(
    ("e2h", "tge", "op", "kw", "removed"),
    [
        # An EL1 TLBI at EL2 with {E2H,TGE}={1,1} applies to EL2&0 (ELIsInHost(EL0)).
        (1, 1, TlbiOp.VMALLE1, {}, {"S1": 2, "S1_WALK": 3}),
        (1, 0, TlbiOp.VMALLE1, {}, {}),
        (1, 1, TlbiOp.ASIDE1, {"asid": ASID}, {"S1": 1, "S1_WALK": 3}),
        # TLBI VAE2 with E2H=1: EL2&0, the ASID operand counts for nG entries.
        (1, 0, TlbiOp.VAE2, {"va": VA_NG, "asid": ASID + 1}, {}),
        (1, 0, TlbiOp.VAE2, {"va": VA_NG, "asid": ASID}, {"S1": 1, "S1_WALK": 3}),
        (1, 0, TlbiOp.VALE2, {"va": VA_G}, {"S1": 1}),
        # E2H=0: the EL2 regime has no ASID (R_SHVGC): any operand matches.
        (0, 0, TlbiOp.VAE2, {"va": VA_NG, "asid": 9}, {"S1": 1, "S1_WALK": 3}),
        (0, 0, TlbiOp.VAE1, {"va": VA_NG}, {}),
        (0, 0, TlbiOp.ALLE2, {}, {"S1": 2, "S1_WALK": 3}),
        (1, 1, TlbiOp.ALLE2IS, {}, {"S1": 2, "S1_WALK": 3}),
    ],
    ids=["E2H1-TGE1-VMALLE1->EL20", "E2H1-TGE0-VMALLE1->EL10", "E2H1-TGE1-ASIDE1",
         "E2H1-VAE2-other-ASID", "E2H1-VAE2-ASID", "E2H1-VALE2", "E2H0-VAE2-no-ASID",
         "E2H0-VAE1-keeps-EL2", "E2H0-ALLE2", "E2H1-ALLE2IS"],
)
def test_tlbi_scope_el2(e2h: int, tge: int, op: TlbiOp, kw: dict[str, Any],
                        removed: dict[str, int]) -> None:
    regs, _, tlb = _el2_system(e2h=e2h, tge=tge)
    assert _count(tlb.tlbi(op, regs=regs, **kw).removed) == removed


@pytest.mark.parametrize(
    ("op", "hcr", "outcome"),
    [
        # I_XMYBL: EL2 TLBIs at EL1 are UNDEFINED unless HCR_EL2.NV=1 traps them (EC 0x18).
        (TlbiOp.IPAS2E1IS, 0, "undefined"),
        (TlbiOp.IPAS2E1IS, 1 << 42, "trapped"),
        (TlbiOp.VMALLS12E1, 1 << 42, "trapped"),
        # HCR_EL2.TTLB traps the EL1 ones; HCR_EL2.FB broadcasts them.
        (TlbiOp.VAE1, 1 << 25, "trapped"),
        (TlbiOp.VAE1, 0, "local"),
        (TlbiOp.VAE1, 1 << 9, "broadcast"),
        (TlbiOp.VAE1IS, 0, "broadcast"),
        # HCR_EL2.TTLBIS (FEAT_EVT) traps the IS forms only.
        (TlbiOp.VAE1IS, 1 << 54, "trapped"),
        (TlbiOp.VAE1, 1 << 54, "local"),
    ],
    ids=["IPAS2E1IS-EL1-UNDEFINED", "IPAS2E1IS-EL1-NV-trap", "VMALLS12E1-EL1-NV-trap",
         "VAE1-EL1-TTLB-trap", "VAE1-EL1-local", "VAE1-EL1-FB-broadcast", "VAE1IS-broadcast",
         "VAE1IS-EL1-TTLBIS-trap", "VAE1-EL1-TTLBIS-local"],
)
def test_tlbi_at_el1(op: TlbiOp, hcr: int, outcome: str) -> None:
    regs, tlb = _filled()
    regs = regs.replace(HCR_EL2=regs["HCR_EL2"] | hcr)
    kw: dict[str, int] = {}
    if "va" in op.operands:
        kw = {"va": VA_G}
    elif "ipa" in op.operands:
        kw = {"ipa": 0x4100_0000}
    res = tlb.tlbi(op, regs=regs, cur_el=1, rt=3, **kw)
    if outcome in ("undefined", "trapped"):
        assert res.exception is not None and res.tlb is tlb and res.removed == ()
        assert res.exception.ec == (0x18 if outcome == "trapped" else 0)
        if outcome == "trapped":  # ISS: Op0=01 Op2 Op1 CRn=8 Rt CRm Direction=0
            i = op.info
            rt = 3 if op.operands else 31  # the forms without an operand encode XZR
            want = 1 << 20 | i.op2 << 17 | i.op1 << 14 | 8 << 10 | rt << 5 | i.crm << 1
            assert res.exception.iss == want
    else:
        assert res.exception is None and res.broadcast is (outcome == "broadcast")


def test_tlbi_encodings_match_the_assembler(tmp_path: Any) -> None:
    """Every TlbiOp's (op1, CRm, op2) is what binutils assembles for ``tlbi <name>``."""
    import shutil
    import subprocess
    asm = shutil.which("aarch64-linux-gnu-as")
    if asm is None:
        pytest.skip("aarch64-linux-gnu-as not installed (CI installs binutils-aarch64-linux-gnu)")
    ops = list(TlbiOp)
    src = tmp_path / "t.s"
    src.write_text("".join(f"tlbi {o.name.lower()}{', x1' if o.operands else ''}\n"
                           for o in ops))
    obj = tmp_path / "t.o"
    subprocess.run([asm, "-o", str(obj), str(src)], check=True)
    objcopy = shutil.which("aarch64-linux-gnu-objcopy")
    assert objcopy is not None
    raw = tmp_path / "t.bin"
    subprocess.run([objcopy, "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)
    data = raw.read_bytes()
    for n, o in enumerate(ops):
        word = int.from_bytes(data[4 * n:4 * n + 4], "little")
        # SYS: 1101 0101 0000 1 op1 CRn CRm op2 Rt
        i = o.info
        assert (word >> 16 & 7, word >> 12 & 0xF, word >> 8 & 0xF, word >> 5 & 7) == (
            i.op1, 8, i.crm, i.op2), o.name


def test_tlbi_operand_errors() -> None:
    regs, _ = _system()
    with pytest.raises(AtlabError, match="needs the operand va"):
        Tlb().tlbi(TlbiOp.VAE1, regs=regs)
    with pytest.raises(AtlabError, match="takes no ipa operand"):
        Tlb().tlbi(TlbiOp.VAE1, regs=regs, va=0, ipa=0)
    with pytest.raises(AtlabError, match="capacity"):
        TlbPolicy(capacity=-1)


@pytest.mark.parametrize("replacement", [Replacement.FIFO, Replacement.LRU])
def test_capacity_and_replacement(replacement: Replacement) -> None:
    """A full TLB evicts (FIFO: the first allocated; LRU: the least recently used)."""
    regs, mem = _system()
    tlb = Tlb(policy=TlbPolicy(capacity=2, replacement=replacement, walk_cache=False))
    tlb = tlb.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem).tlb
    tlb = tlb.translate(AtOp.S1E1R, VA_BLK, regs=regs, mem=mem).tlb
    tlb = tlb.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem).tlb  # a hit: LRU reorders
    look = tlb.translate(AtOp.S1E1R, VA_NG, regs=regs, mem=mem)
    assert len(look.tlb) == 2 and len(look.evicted) == 1
    gone = look.evicted[0].ia
    assert gone == (VA_G if replacement is Replacement.FIFO else VA_BLK)


def test_asid_tagging() -> None:
    """A non-global entry hits only under its ASID; a global one under any ASID."""
    regs, mem = _system()
    tlb = Tlb()
    for va in (VA_G, VA_NG):
        tlb = tlb.translate(AtOp.S1E1R, va, regs=regs, mem=mem).tlb
    assert tlb_context(AtOp.S1E1R, regs)[3] == ASID
    other = regs.replace(TTBR0_EL1=(regs["TTBR0_EL1"] & ~(0xFFFF << 48)) | (ASID + 1) << 48)
    assert tlb.translate(AtOp.S1E1R, VA_G, regs=other, mem=mem).hit
    assert not tlb.translate(AtOp.S1E1R, VA_NG, regs=other, mem=mem).hit


def test_faults_not_cached_permission_faults_are() -> None:
    regs, mem = _system()
    miss = Tlb().translate(AtOp.S1E1R, 0x2000_0000, regs=regs, mem=mem)  # unmapped
    # R_XCLRD: a Translation fault is never cached (the valid table descriptors above it are).
    assert miss.par is not None and miss.par.f and miss.entry is None
    assert not _leaves(miss.tlb) and len(miss.tlb) == 2
    perm = Tlb().translate(AtOp.S1E1W, VA_BLK, regs=regs, mem=mem)  # EL1 RO block
    assert perm.par is not None and perm.par.f and perm.entry is not None
    assert perm.entry.oa is None and perm.entry.size == 0x20_0000
    # The same entry answers a read: permissions are checked on every lookup.
    read = perm.tlb.translate(AtOp.S1E1R, VA_BLK + 0x1234, regs=regs, mem=mem)
    assert read.hit and read.par is not None and read.par.pa == 0x4200_1000


def test_pan_applied_at_lookup() -> None:
    """PSTATE.PAN is not part of an entry: AT S1E1RP checks it on a hit."""
    regs, mem = _system()
    tlb = Tlb().translate(AtOp.S1E1R, VA_NG, regs=regs, mem=mem).tlb
    rp = tlb.translate(AtOp.S1E1RP, VA_NG, regs=regs, mem=mem, pan=1)
    assert rp.hit and rp.par is not None and rp.par.f  # EL0-accessible page under PAN


def test_combined_entry_size_and_kind() -> None:
    regs, mem = _system(s2=True)
    look = Tlb().translate(AtOp.S12E1R, VA_BLK, regs=regs, mem=mem)
    assert look.entry is not None and look.entry.kind is EntryKind.S12
    assert look.entry.size == 0x20_0000 and look.entry.vmid == VMID  # min(2MB S1, 1GB S2)
    s1 = look.tlb.translate(AtOp.S1E1R, VA_BLK, regs=regs, mem=mem)
    assert not s1.hit  # a combined entry cannot answer a stage 1 AT (it has no IPA)


def test_bypass_undefined_and_tagged_va() -> None:
    regs, mem = _system()
    und = Tlb().translate(AtOp.S1E3R, VA_G, regs=regs, mem=mem, cur_el=2)
    assert und.result.exception is not None and und.entry is None
    tagged = Tlb().translate(AtOp.S1E1R, VA_G | 0x12 << 56, regs=regs, mem=mem)
    assert tagged.entry is None


# --- property: after a TLBI that covers an address, translate() equals a fresh walk -----------

_VAS = (VA_G, VA_NG, VA_BLK, VA_BLK + 0x10_0000)
_COVERING: dict[TlbiOp, Callable[[int], dict[str, Any]]] = {
    TlbiOp.VAE1: lambda va: {"va": va, "asid": ASID},
    TlbiOp.VAAE1: lambda va: {"va": va},
    TlbiOp.VMALLE1: lambda va: {},
    TlbiOp.VMALLS12E1: lambda va: {},
    TlbiOp.ALLE1: lambda va: {},
}
_OPS = (AtOp.S1E1R, AtOp.S1E1W, AtOp.S1E0R, AtOp.S1E0W)


@settings(max_examples=60, deadline=None)
@given(
    fills=st.lists(st.tuples(st.sampled_from(_OPS), st.sampled_from(_VAS)), max_size=6),
    edits=st.lists(st.tuples(st.sampled_from(_VAS),
                             st.sampled_from(("remap", "invalid", "ro", "el0"))), max_size=3),
    target=st.sampled_from(_VAS),
    op=st.sampled_from(_OPS),
    tlbi=st.sampled_from(sorted(_COVERING, key=lambda o: o.name)),
)
def test_tlbi_then_translate_equals_fresh_walk(
        fills: list[tuple[AtOp, int]], edits: list[tuple[int, str]], target: int, op: AtOp,
        tlbi: TlbiOp) -> None:
    regs, mem = _system()
    tlb = Tlb()
    leaves = {va: _leaf_pa(regs, mem, va) for va in _VAS}
    for fop, va in fills:
        tlb = tlb.translate(fop, va, regs=regs, mem=mem).tlb
    for va, how in edits:
        pa = leaves[va]
        desc = mem.peek(pa)
        desc = {"remap": desc ^ 0x0800_0000, "invalid": 0, "ro": desc | 0b10 << 6,
                "el0": desc | 0b01 << 6}[how]
        mem.poke(pa, desc)
    tlb = tlb.tlbi(tlbi, regs=regs, **_COVERING[tlbi](target)).tlb
    got = tlb.translate(op, target + 0x88, regs=regs, mem=mem)
    want = run_at(op, target + 0x88, regs=regs, mem=mem)
    assert got.par == want.par


# --- properties: what a never-invalidated TLB may return, and the required TLBI sequences ------

class _Chosen(PhysMem):
    """Memory where each word read takes one of the values its PA has held: ``choice`` says
    which (an index into ``history[pa]``), the current value otherwise; records the reads."""

    __slots__ = ("choice", "history", "reads")

    def __init__(self, history: dict[int, list[int]], choice: dict[int, int]) -> None:
        super().__init__(logging=False)
        self.history, self.choice, self.reads = history, choice, []

    def peek(self, pa: int) -> int:
        values = self.history.get(pa, [0])
        return values[self.choice.get(pa, len(values) - 1)]

    def read64(self, pa: int, *, big_endian: bool = False, purpose: str = "") -> int:
        self.reads.append(pa)
        return self.peek(pa)


def _possible_pars(op: AtOp, va: int, regs: SysRegs, history: dict[int, list[int]]
                   ) -> set[Par | None]:
    """Every PAR a walk can give when each descriptor it reads may hold any value it has
    held since the TLB was empty (D8.16/D8.17: entries of any level may be stale)."""
    out: set[Par | None] = set()
    seen: set[frozenset[tuple[int, int]]] = set()
    todo: list[dict[int, int]] = [{}]
    while todo:
        choice = todo.pop()
        key = frozenset(choice.items())
        if key in seen:
            continue
        seen.add(key)
        mem = _Chosen(history, choice)
        out.add(run_at(op, va, regs=regs, mem=mem, trace=False).par)
        for pa in mem.reads:
            if pa not in choice:
                for i in range(len(history.get(pa, [0]))):
                    todo.append({**choice, pa: i})
    return out


def _descriptor_pas(regs: SysRegs, mem: PhysMem, ops: tuple[AtOp, ...]) -> list[int]:
    """The PAs of every descriptor (both stages) the walks of _VAS read."""
    pas: set[int] = set()
    for va in _VAS:
        res = run_at(ops[-1], va, regs=regs, mem=mem)
        for step in (*res.trace.steps, *res.trace.final_s2):
            pas.add(step.desc_pa)
            pas.update(sub.desc_pa for sub in step.s2)
    return sorted(pas)


_EDITS = ("remap", "invalid", "ro", "el0")


def _edit(desc: int, how: str) -> int:
    return {"remap": desc ^ 0x0800_0000, "invalid": 0, "ro": desc | 0b10 << 6,
            "el0": desc | 0b01 << 6}[how]


_program = st.lists(st.one_of(
    st.tuples(st.just("at"), st.sampled_from(range(4)), st.sampled_from(_VAS)),
    st.tuples(st.just("edit"), st.integers(0, 30), st.sampled_from(_EDITS))), max_size=12)


@pytest.mark.parametrize(("s2", "policy"), [
    (False, TlbPolicy(walk_cache=False, stage2_entries=False)),
    (True, TlbPolicy(walk_cache=False, stage2_entries=False)),
    (False, TlbPolicy()),
    (True, TlbPolicy()),
], ids=["S1-leaves-only", "S12-leaves-only", "S1-walk-cache", "S12-walk-cache-and-S2"])
@settings(max_examples=40, deadline=None)
@given(program=_program)
def test_never_invalidated_tlb_returns_a_walk_that_was_valid(
        s2: bool, policy: TlbPolicy, program: list[tuple[str, int, Any]]) -> None:
    """An infinite TLB, never invalidated.  With leaf entries only, every AT returns what a
    walk of the same op and tags returned at some earlier time or returns now.  With walk
    caches and stage 2 entries an earlier table descriptor may lead to a later leaf, so
    each descriptor may hold any value it has held: every result is one of those walks."""
    regs, mem = _system(s2=s2)
    ops = (AtOp.S1E1R, AtOp.S1E1W, AtOp.S1E0R, AtOp.S12E1R if s2 else AtOp.S1E0W)
    pas = _descriptor_pas(regs, mem, ops)
    history: dict[int, list[int]] = {pa: [mem.peek(pa)] for pa in pas}
    states = [dict(mem)]  # memory after each change: the walks a cached leaf can replay
    tlb = Tlb(policy=policy)
    for kind, a, b in program:
        if kind == "edit":
            pa = pas[a % len(pas)]
            mem.poke(pa, _edit(mem.peek(pa), b))
            history[pa].append(mem.peek(pa))
            states.append(dict(mem))
            continue
        op, va = ops[a], b + 0x88
        look = tlb.translate(op, va, regs=regs, mem=mem)
        tlb = look.tlb
        if not policy.walk_cache and not policy.stage2_entries:
            # The same tags: the op's regime, VMID and ASID (regs do not change here).
            assert look.par in {run_at(op, va, regs=regs, mem=PhysMem(state)).par
                                for state in states}
        else:
            assert look.par in _possible_pars(op, va, regs, history)


_REQUIRED: dict[str, tuple[tuple[TlbiOp, str], ...]] = {
    # D8.17: a changed leaf -> TLBI VALE1 of its VA (VAE1 would do too).
    "s1-leaf": ((TlbiOp.VALE1IS, "va"),),
    # A changed table descriptor: every VA below it may be cached -> TLBI VMALLE1.
    "s1-table": ((TlbiOp.VMALLE1IS, ""),),
    # I_CKZGP: a changed stage 2 descriptor -> TLBI IPAS2E1, DSB, TLBI VMALLE1.
    "s2": ((TlbiOp.IPAS2E1IS, "ipa"), (TlbiOp.VMALLE1IS, "")),
}


@settings(max_examples=60, deadline=None)
@given(fills=st.lists(st.tuples(st.sampled_from(range(4)), st.sampled_from(_VAS)), max_size=6),
       change=st.sampled_from(sorted(_REQUIRED)), target=st.sampled_from(_VAS),
       which=st.sampled_from(_VAS), how=st.sampled_from(_EDITS), op=st.sampled_from(range(4)),
       isb=st.booleans())
def test_required_tlbi_sequence_then_translate_equals_fresh_walk(
        fills: list[tuple[int, int]], change: str, target: int, which: int, how: str, op: int,
        isb: bool) -> None:
    """After the change and the architecturally required TLBI sequence, each TLBI followed
    by a DSB and the last by an ISB (R_BLDZX), an AT equals a walk of memory as it is now
    (and, on the model's latest-completion policy, without the ISB the issuing PE may still
    hold the old entry)."""
    regs, mem = _system(s2=True)
    ops = (AtOp.S1E1R, AtOp.S1E1W, AtOp.S1E0R, AtOp.S12E1R)
    m = Machine(regs, mem)
    for o, va in fills:
        m.at(ops[o], va)
    res = run_at(AtOp.S12E1R, which, regs=regs, mem=mem)
    s1 = [s for s in res.trace.steps if s.kind != "not read"]
    if change == "s1-leaf":
        pa, ipa = s1[-1].desc_pa, 0
    elif change == "s1-table":
        pa, ipa = s1[len(s1) // 2 - 1].desc_pa, 0
    else:
        s2 = res.trace.final_s2[-1]  # the stage 2 leaf of the final IPA (stage 1's output)
        assert res.ipa is not None
        pa, ipa = s2.desc_pa, res.ipa & ~0xFFF
    m.store(pa, _edit(mem.peek(pa), how))
    for tlbi, arg in _REQUIRED[change]:
        kw: dict[str, int] = {}
        if arg == "va":
            kw = {"va": which, "asid": ASID}
        elif arg == "ipa":
            kw = {"ipa": ipa}
        m.tlbi(tlbi, **kw)
        m.dsb()
    if isb:
        m.isb()
        assert m.pending() == []
    got = m.at(ops[op], target + 0x88).par
    want = run_at(ops[op], target + 0x88, regs=regs, mem=mem).par
    if isb:
        assert got == want
    elif got != want:  # only a stale entry the last TLBIs cover may explain a difference
        assert m.pending()


def test_broadcast_reaches_other_pes_at_the_dsb() -> None:
    """R_YNJCP: an ...IS TLBI completes on the other PEs of the domain at the issuer's DSB;
    a non-shareable one leaves their entries (stale) in place."""
    for op, stale_on_pe1 in ((TlbiOp.VAE1, True), (TlbiOp.VAE1IS, False)):
        regs, mem = _system()
        m = Machine(regs, mem, pes=2)
        m.at(AtOp.S1E1R, VA_G, pe=0)
        m.at(AtOp.S1E1R, VA_G, pe=1)
        leaf = _leaf_pa(regs, m.mem, VA_G)
        m.store(leaf, (m.mem.peek(leaf) & ~0xFFFF_FFFF_F000) | 0x4A00_0000)
        m.tlbi(op, va=VA_G)
        assert m.at(AtOp.S1E1R, VA_G, pe=1).hit  # not complete before the DSB
        m.dsb()
        pe1 = m.at(AtOp.S1E1R, VA_G, pe=1)
        assert pe1.hit is stale_on_pe1
        assert pe1.par is not None and pe1.par.pa == (0x4100_0000 if stale_on_pe1 else 0x4A00_0000)
        assert m.at(AtOp.S1E1R, VA_G, pe=0).hit  # the issuer: complete only after an ISB
        m.isb()
        pe0 = m.at(AtOp.S1E1R, VA_G, pe=0)
        assert not pe0.hit and pe0.par is not None and pe0.par.pa == 0x4A00_0000


def test_msr_takes_effect_at_the_isb() -> None:
    regs, mem = _system()
    m = Machine(regs, mem)
    m.msr("SCTLR_EL1", regs["SCTLR_EL1"] & ~1)  # stage 1 off
    assert not m.at(AtOp.S1E1R, VA_G).par.f  # type: ignore[union-attr]
    m.isb()
    assert m.at(AtOp.S1E1R, VA_G).par.pa == VA_G  # type: ignore[union-attr]
    with pytest.raises(AtlabError):
        m.msr("NOT_A_REG", 0)
    with pytest.raises(AtlabError, match="no PE3"):
        m.dsb(pe=3)


# --- the shadow stage 2 -------------------------------------------------------------------------

def _nv_system() -> tuple[NvSystem, S2Builder]:
    """L2's stage 1 (4 levels, tables at L2 IPAs 0x4020_0000...) under L1's stage 2, which
    maps every page with 4KB pages (L2 IPA == L1 IPA); L2 at EL1, shadow stage 2 empty."""
    s1 = S1Builder(Regime.EL10, tables=(0x4020_0000, 0x4030_0000))
    s1.map(0x1234_5678_9000, 0x8000_0000, 0x1000, ap="EL1 RW")
    s2 = S2Builder(ipa_bits=40, tables=(0x4040_0000, 0x4050_0000))
    s2.map(0x4020_0000, 0x4020_0000, 0x10_0000, blocks=False)
    s2.map(0x8000_0000, 0x8000_0000, 0x1000)
    sc = parse_scenario(scenario_dict(name="nv", s1=[s1], s2=s2))
    return NvSystem(vregs=sc.regs, l1_memory=dict(sc.memory), context=Context.L2_EL1), s2


def _l1_moves_page(system: NvSystem, s2: S2Builder, l2_ipa: int, new_l1_ipa: int, *,
                   copy: bool) -> None:
    """L1 points its stage 2 entry for the 4KB page ``l2_ipa`` at ``new_l1_ipa`` (copying
    the page there and scrubbing the old one when ``copy``), writing only the stage 2 words
    that change, and executes no TLBI."""
    view = system.l1_view()
    old_l1_ipa = s2.translate(l2_ipa)
    assert old_l1_ipa is not None
    if copy:
        for off in range(0, 0x1000, 8):
            view.write64(new_l1_ipa + off, view.peek(old_l1_ipa + off))
    before = dict(s2.words())
    s2.unmap(l2_ipa, 0x1000)
    s2.map(l2_ipa, new_l1_ipa, 0x1000)
    for ipa, value in dict(s2.words()).items():
        if before.get(ipa) != value:
            view.write64(ipa, value)
    if copy:
        for off in range(0, 0x1000, 8):
            view.write64(old_l1_ipa + off, 0)


def test_shadow_stale_until_l0_handles_ipas2e1() -> None:
    system, s2 = _nv_system()
    va = 0x1234_5678_9000
    first = emulate_at(system, AtOp.S1E1R, va)
    assert first.par is not None and first.par.pa == 0x8000_0000
    assert system.shadow and not any(c.stale for c in shadow_check(system))
    # L1 moves L2 IPA 0x40203000 (the level 3 table) to L1 IPA 0x40260000 and scrubs the old
    # page, without TLBI IPAS2E1.
    l3 = 0x4020_3000
    _l1_moves_page(system, s2, l3, 0x4026_0000, copy=True)
    stale = [c for c in shadow_check(system) if c.stale]
    assert [c.l2_ipa for c in stale] == [l3]
    old = emulate_at(system, AtOp.S1E1R, va)
    assert old.par is not None and old.par.f  # the walk read the scrubbed page
    gone = l0_handle_tlbi(system, TlbiOp.IPAS2E1, ipa=l3)
    assert l3 in gone and l3 not in system.shadow
    again = emulate_at(system, AtOp.S1E1R, va)
    ref = reference_at(system, AtOp.S1E1R, va)
    assert again.par is not None and not isinstance(ref, Exception)
    assert again.par == getattr(ref, "par", None) and again.par.pa == 0x8000_0000
    assert not any(c.stale for c in shadow_check(system))


def test_l0_tlbi_without_ttl_uses_the_shadow_entrys_size_then_the_largest_block() -> None:
    system, _ = _nv_system()
    emulate_at(system, AtOp.S1E1R, 0x1234_5678_9000)
    pages = sorted(system.shadow)
    # the entry at the IPA says L1 mapped a 4KB page (level 3): only that page goes
    assert l0_handle_tlbi(system, TlbiOp.IPAS2E1, ipa=pages[0]) == (pages[0],)
    # the entry at the IPA is tagged as L1's 2MB block (level 2): the whole block goes
    system.shadow_level[pages[1]] = 2
    assert l0_handle_tlbi(system, TlbiOp.IPAS2E1, ipa=pages[1]) == tuple(pages[1:])
    # no entry at the IPA or at its 2MB/1GB-aligned addresses: the largest block (1GB)
    system.add_shadow(0x4000_0000, 0x4000_0000, 0)
    system.add_shadow(0x4010_0000, 0x4010_0000, 0)
    gone = l0_handle_tlbi(system, TlbiOp.IPAS2E1, ipa=0x4020_5000)
    assert {0x4000_0000, 0x4010_0000} <= set(gone)
    assert any("largest block" in e.what for e in system.events)


def test_l0_handle_tlbi_scopes() -> None:
    system, _ = _nv_system()
    emulate_at(system, AtOp.S1E1R, 0x1234_5678_9000)
    n = len(system.shadow)
    assert n >= 4
    assert l0_handle_tlbi(system, TlbiOp.VMALLE1) == () and len(system.shadow) == n
    assert len(l0_handle_tlbi(system, TlbiOp.VMALLS12E1)) == n and not system.shadow
    with pytest.raises(AtlabError):
        l0_handle_tlbi(system, TlbiOp.IPAS2E1)


def test_shadow_is_a_tlb_of_l1_stage2_forgotten_and_done_tlbi() -> None:
    """The shadow stage 2 behaves as the stage 2 entries of a TLB on a machine that runs L1
    natively: the same L2 IPA pages, stale at the same moments, and the same PAR for L2's
    AT when that TLB holds just those entries (no stage 1 leaves: the NV model does not
    model L0's hardware TLB).  A forgotten TLBI leaves both stale; L1's trapped TLBI
    IPAS2E1 makes L0 unmap the shadow entry as the TLBI removes the hardware entry."""
    system, s2 = _nv_system()
    va = 0x1234_5678_9000
    emulate_at(system, AtOp.S1E1R, va)
    flat = system.flat_l1_memory()
    ref = Tlb(policy=TlbPolicy(walk_cache=False)).translate(
        AtOp.S1E1R, va, regs=system.vregs, mem=flat, cur_el=1).tlb
    hw = Tlb(tuple(e for e in ref.entries if e.kind is EntryKind.S2), ref.policy, ref.next_seq)

    def same_pages() -> None:
        assert {e.ia: system.backing[e.oa] for e in hw.entries} == {
            ipa: page_of(pa & ~S2_ATTR_BITS) for ipa, pa in system.shadow.items()}

    same_pages()
    # L1 moves the level 3 table (L2 IPA 0x40203000) to L1 IPA 0x40260000, scrubs the old
    # page, and forgets TLBI IPAS2E1.
    l3 = 0x4020_3000
    _l1_moves_page(system, s2, l3, 0x4026_0000, copy=True)
    flat = system.flat_l1_memory()
    fresh = run_at(AtOp.S1E1R, va, regs=system.vregs, mem=flat, cur_el=1).par
    assert fresh is not None and fresh.pa == 0x8000_0000
    stale_nv = emulate_at(system, AtOp.S1E1R, va).par
    stale_hw = hw.translate(AtOp.S1E1R, va, regs=system.vregs, mem=flat, cur_el=1).par
    assert stale_nv is not None and stale_nv.f and stale_nv == stale_hw  # the scrubbed page
    same_pages()
    # Now L1 does it right: TLBI IPAS2E1 traps (HCR_EL2.NV=1) and L0 unmaps the shadow page.
    done = l1_tlbi(system, TlbiOp.IPAS2E1IS, ipa=l3)
    assert done.exception is not None and done.exception.ec == 0x18 and l3 in done.unmapped
    hw = hw.tlbi(TlbiOp.IPAS2E1IS, regs=system.vregs, ipa=l3).tlb
    assert l3 not in system.shadow and l3 not in {e.ia for e in hw.entries}
    # Without a TTL hint L0 reads the size of L1's mapping from the shadow entry (KVM's
    # get_guest_mapping_ttl(): a 4KB page here) and unmaps exactly what the hardware TLBI
    # removes.
    assert set(system.shadow) == {e.ia for e in hw.entries}
    assert emulate_at(system, AtOp.S1E1R, va).par == fresh
    assert hw.translate(AtOp.S1E1R, va, regs=system.vregs, mem=flat, cur_el=1).par == fresh


def test_l1_stage1_tlbi_leaves_the_shadow() -> None:
    system, _ = _nv_system()
    emulate_at(system, AtOp.S1E1R, 0x1234_5678_9000)
    n = len(system.shadow)
    res = l1_tlbi(system, TlbiOp.VAE1, va=0x1234_5678_9000)
    assert res.exception is not None and res.unmapped == () and len(system.shadow) == n
    assert "TTLB" in res.exception.reason


def test_dsb_nsh_does_not_complete_a_broadcast_on_other_pes() -> None:
    """R_PSMWS: DSB NSH suffices for a local TLBI, not for an ...IS one on the other PEs."""
    regs, mem = _system()
    m = Machine(regs, mem, pes=2)
    m.at(AtOp.S1E1R, VA_G, pe=1)
    m.tlbi(TlbiOp.VAE1IS, va=VA_G)
    m.dsb(domain="NSH")
    assert m.at(AtOp.S1E1R, VA_G, pe=1).hit and m.pending()
    m.dsb(domain="ISH")
    assert not m.at(AtOp.S1E1R, VA_G, pe=1).hit
    with pytest.raises(AtlabError, match="the domain is one of"):
        m.dsb(domain="LD")


@pytest.mark.parametrize(
    ("op", "xt", "want"),
    [
        # C5.5: Xt[63:48] ASID, Xt[47:44] TTL (ignored), Xt[43:0] VA[55:12].
        (TlbiOp.VAE1IS, 5 << 48 | 0x3 << 44 | 0x1_0000, {"va": 0x1000_0000, "asid": 5}),
        (TlbiOp.VAE1, 0xFFF_FFFF_FFFF, {"va": 0xFF_FFFF_FFFF_F000, "asid": 0}),
        (TlbiOp.VAAE1, 7 << 48 | 0x4_0000, {"va": 0x4000_0000}),
        (TlbiOp.ASIDE1, 0xABCD << 48, {"asid": 0xABCD}),
        # IPAS2E1: IPA[51:12] in Xt[39:0]; bits above are NS / TTL / IPA[55:52] (not used).
        (TlbiOp.IPAS2E1IS, 1 << 63 | 0xFF_FFFF_FFFF, {"ipa": 0xF_FFFF_FFFF_F000}),
        (TlbiOp.VMALLE1, 0x1234, {}),
    ],
    ids=["VAE1IS-ASID-TTL", "VAE1-VA55", "VAAE1-no-ASID", "ASIDE1-16bit", "IPAS2E1IS-NS",
         "VMALLE1-no-operand"],
)
def test_operands_from_xt(op: TlbiOp, xt: int, want: dict[str, int]) -> None:
    assert op.operands_from_xt(xt) == want


def test_an_empty_tlb_always_walks() -> None:
    """D8.16: a TLB may hold nothing; capacity 0 is that TLB: no entry, never stale."""
    regs, mem = _system()
    tlb = Tlb(policy=TlbPolicy(capacity=0))
    first = tlb.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem)
    assert len(first.tlb) == 0 and len(first.evicted) == 4
    leaf = _leaf_pa(regs, mem, VA_G)
    mem.poke(leaf, (mem.peek(leaf) & ~0xFFFF_FFFF_F000) | 0x4A00_0000)
    again = first.tlb.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem)
    assert not again.hit and again.par is not None and again.par.pa == 0x4A00_0000


def test_an_entry_records_the_walk_that_filled_it() -> None:
    regs, mem = _system(s2=True)
    look = Tlb().translate(AtOp.S12E1R, VA_G + 0x10, regs=regs, mem=mem)
    assert look.entry is not None and look.entry.walk is not None
    assert look.entry.walk.steps == look.result.trace.steps
    assert look.entry.filled_by == f"AT S12E1R {VA_G + 0x10:#x}"
    s2 = next(e for e in look.tlb.entries if e.kind is EntryKind.S2)
    assert s2.filled_by.startswith(f"AT S12E1R {VA_G + 0x10:#x}: stage 2 walk of IPA")
    assert s2.walk is not None and s2.walk.steps and s2.walk.steps[-1].stage == 2
    assert {pa for pa, _ in s2.words} == {st.desc_pa for st in s2.walk.steps}


def test_l2_reaches_the_old_page_until_l1s_tlbi() -> None:
    """L1 moves L2's data page (L2 IPA 0x80000000) to L1 IPA 0x90000000 and forgets TLBI
    IPAS2E1: L2's loads still land on the old page through the stale shadow entry, while
    L1's tables say the new one; L1's (trapped) TLBI makes L0 drop the entry, and the next
    load lands on the new page."""
    system, s2 = _nv_system()
    va, old_ipa, new_ipa = 0x1234_5678_9000, 0x8000_0000, 0x9000_0000
    first = l2_access(system, va + 0x18)
    assert first.ipa == old_ipa + 0x18 and first.pa == system.backing[old_ipa] + 0x18
    _l1_moves_page(system, s2, old_ipa, new_ipa, copy=False)
    system.l1_view().write64(new_ipa, 0x1234)  # the new page gets content (L0 backs it)
    new_pa = system.backing[new_ipa]
    assert [c.l2_ipa for c in shadow_check(system) if c.stale] == [old_ipa]
    stale = l2_access(system, va)
    assert stale.pa == first.pa - 0x18 != new_pa  # the old page: no TLBI yet
    done = l1_tlbi(system, TlbiOp.IPAS2E1IS, ipa=old_ipa)
    assert old_ipa in done.unmapped
    fresh = l2_access(system, va + 0x18)
    assert fresh.pa == new_pa + 0x18 and "L0 walks L1's stage 2" in " ".join(fresh.story)
    with pytest.raises(AtlabError, match="not L2 at EL1"):
        system.context = Context.L1_VEL2
        l2_access(system, va)
