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
from atlab.nv import Context, NvSystem, emulate_at, reference_at
from atlab.tlb import EntryKind, Tlb, TlbiOp, l0_handle_tlbi, shadow_check, tlb_context

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
        s2b = S2Builder(ipa_bits=40, tables=(0x4040_0000, 0x4050_0000), vmid=VMID)
        s2b.map(0x4000_0000, 0x4000_0000, 0x4000_0000)  # IPA == PA, 1GB block
    sc = parse_scenario(scenario_dict(name="tlb", s1=[b], s2=s2b,
                                      sysregs={} if s2b else {"VTTBR_EL2": VMID << 48}))
    return sc.regs, sc.fresh_memory()


def _leaf_pa(regs: SysRegs, mem: PhysMem, va: int) -> int:
    """Where the leaf descriptor of ``va`` is (read from a fresh walk's trace)."""
    return run_at(AtOp.S1E1R, va, regs=regs, mem=mem).trace.steps[-1].desc_pa


def test_miss_fill_then_hit() -> None:
    regs, mem = _system()
    first = Tlb().translate(AtOp.S1E1R, VA_G + 0x123, regs=regs, mem=mem)
    assert not first.hit and first.entry is not None and len(first.tlb) == 1
    e = first.entry
    assert (e.kind, e.regime, e.vmid, e.asid, e.va, e.size, e.level, e.oa) == (
        EntryKind.S1, Regime.EL10, VMID, None, VA_G, 0x1000, 3, 0x4100_0000)
    second = first.tlb.translate(AtOp.S1E1R, VA_G + 0x800, regs=regs, mem=mem)
    assert second.hit and second.par == run_at(AtOp.S1E1R, VA_G + 0x800, regs=regs,
                                               mem=mem).par
    assert second.tlb is first.tlb  # a hit allocates nothing
    assert second.result.trace.notes[0].startswith("TLB hit")


def test_stale_entry_until_tlbi_vae1() -> None:
    """D8 TLB maintenance: a change to a valid descriptor is not seen until a TLBI."""
    regs, mem = _system()
    tlb = Tlb().translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem).tlb
    leaf = _leaf_pa(regs, mem, VA_G)
    mem.poke(leaf, (mem.peek(leaf) & ~0xFFFF_FFFF_F000) | 0x4A00_0000)
    stale = tlb.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem)
    assert stale.hit and stale.par is not None and stale.par.pa == 0x4100_0000
    fresh = tlb.tlbi(TlbiOp.VAE1, regs=regs, va=VA_G).tlb
    now = fresh.translate(AtOp.S1E1R, VA_G, regs=regs, mem=mem)
    assert not now.hit and now.par is not None and now.par.pa == 0x4A00_0000


@pytest.mark.parametrize(
    ("op", "kw", "va", "regs_change", "removed"),
    [
        # C5.5 TLBI VMALLE1: every EL1&0 entry of the current VMID.
        (TlbiOp.VMALLE1, {}, VA_NG, {}, True),
        (TlbiOp.VMALLE1, {}, VA_NG, {"VTTBR_EL2": 7 << 48}, False),
        # TLBI VAE1: the VA, global entries or the operand's ASID.
        (TlbiOp.VAE1, {"va": VA_NG, "asid": ASID}, VA_NG, {}, True),
        (TlbiOp.VAE1, {"va": VA_NG, "asid": ASID + 1}, VA_NG, {}, False),
        (TlbiOp.VAE1, {"va": VA_G, "asid": ASID + 1}, VA_G, {}, True),
        (TlbiOp.VAE1, {"va": VA_G + 0x1000 * 9}, VA_G, {}, False),
        (TlbiOp.VAE1, {"va": VA_BLK + 0x1F_F000}, VA_BLK, {}, True),
        (TlbiOp.VAE1, {"va": VA_G | 0xAB << 56}, VA_G, {}, True),
        # TLBI VAAE1: the VA, every ASID.
        (TlbiOp.VAAE1, {"va": VA_NG}, VA_NG, {}, True),
        # TLBI ASIDE1: non-global entries of that ASID only.
        (TlbiOp.ASIDE1, {"asid": ASID}, VA_NG, {}, True),
        (TlbiOp.ASIDE1, {"asid": ASID}, VA_G, {}, False),
        # TLBI ALLE1: every VMID.
        (TlbiOp.ALLE1, {}, VA_G, {"VTTBR_EL2": 7 << 48}, True),
        # TLBI IPAS2E1: stage 2 only entries; not required to touch stage 1 entries.
        (TlbiOp.IPAS2E1, {"ipa": 0x4100_0000}, VA_G, {}, False),
        (TlbiOp.VMALLS12E1, {}, VA_G, {}, True),
        # TLBI VAE2 / ALLE2: the EL2 regimes only.
        (TlbiOp.VAE2, {"va": VA_G}, VA_G, {}, False),
        (TlbiOp.ALLE2, {}, VA_G, {}, False),
    ],
    ids=["VMALLE1", "VMALLE1-other-VMID", "VAE1-nG-same-ASID", "VAE1-nG-other-ASID",
         "VAE1-global-any-ASID", "VAE1-other-VA", "VAE1-inside-2MB-block", "VAE1-top-byte",
         "VAAE1-nG", "ASIDE1-nG", "ASIDE1-keeps-global", "ALLE1-other-VMID",
         "IPAS2E1-keeps-S1", "VMALLS12E1", "VAE2-keeps-EL10", "ALLE2-keeps-EL10"],
)
def test_tlbi_scope(op: TlbiOp, kw: dict[str, Any], va: int, regs_change: dict[str, int],
                    removed: bool) -> None:
    regs, mem = _system()
    tlb = Tlb().translate(AtOp.S1E1R, va, regs=regs, mem=mem).tlb
    res = tlb.tlbi(op, regs=regs.replace(**regs_change), **kw)
    assert (len(res.removed) == 1) is removed
    assert len(res.tlb) == (0 if removed else 1)


def test_tlbi_missing_operand() -> None:
    regs, _ = _system()
    with pytest.raises(AtlabError, match="needs the operand va"):
        Tlb().tlbi(TlbiOp.VAE1, regs=regs)


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
    assert miss.par is not None and miss.par.f and miss.entry is None and not miss.tlb.entries
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


def test_shadow_stale_until_l0_handles_ipas2e1() -> None:
    system, s2 = _nv_system()
    va = 0x1234_5678_9000
    first = emulate_at(system, AtOp.S1E1R, va)
    assert first.par is not None and first.par.pa == 0x8000_0000
    assert system.shadow and not any(c.stale for c in shadow_check(system))
    # L1 moves L2 IPA 0x40203000 (the level 3 table) to L1 IPA 0x40260000 and scrubs the old
    # page, without TLBI IPAS2E1.
    l3 = 0x4020_3000
    view = system.l1_view()
    for off in range(0, 0x1000, 8):
        view.write64(0x4026_0000 + off, view.peek(l3 + off))
    before = dict(s2.words())
    s2.unmap(l3, 0x1000)
    s2.map(l3, 0x4026_0000, 0x1000)
    for ipa, value in dict(s2.words()).items():
        if before.get(ipa) != value:
            view.write64(ipa, value)
    for off in range(0, 0x1000, 8):
        view.write64(l3 + off, 0)
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


def test_l0_handle_tlbi_scopes() -> None:
    system, _ = _nv_system()
    emulate_at(system, AtOp.S1E1R, 0x1234_5678_9000)
    n = len(system.shadow)
    assert n >= 4
    assert l0_handle_tlbi(system, TlbiOp.VMALLE1) == () and len(system.shadow) == n
    assert len(l0_handle_tlbi(system, TlbiOp.VMALLS12E1)) == n and not system.shadow
    with pytest.raises(AtlabError):
        l0_handle_tlbi(system, TlbiOp.IPAS2E1)
