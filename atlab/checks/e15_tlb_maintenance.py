"""Exercise 15: TLB maintenance after a table change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from atlab.at import AtResult, run_at
from atlab.bits import mask
from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.errors import AtlabError
from atlab.memory import PhysMem
from atlab.par import Par
from atlab.regime import AtOp, Regime
from atlab.sysregs import SysRegs

#: The lab of exercise 15 (EL1&0, ASID 5, VMID 3, stage 2 on, two PEs): a global page, a
#: non-global page of ASID 5 under the same level 2 table, and an unrelated non-global page.
TLB_VA_GLOBAL, TLB_VA_NG, TLB_VA_OTHER = 0x1000_0000, 0x1000_1000, 0x2000_0000
_TLB_ASID, _TLB_VMID = 5, 3


@dataclass(frozen=True, slots=True)
class TableChange:
    """A descriptor the OS (stage 1) or the hypervisor (stage 2) just changed in memory.

    ``va``/``size``: the VA range the changed descriptor maps (stage 1); ``ipa``/``size`` the
    IPA range (stage 2, where ``va`` is 0).  ``leaf``: a block or page descriptor (else a
    table descriptor).
    ``asid``: the ASID entries for the range may be tagged with (a non-global leaf's, or for a
    table descriptor the walks' ASID, R_CHVGJ); None for a global leaf."""

    what: str
    stage: int
    leaf: bool
    va: int
    size: int
    asid: int | None
    ipa: int | None = None
    desc_pa: int = 0  # where the descriptor is (the checker writes the new value there)
    new_desc: int = 0

    def __str__(self) -> str:
        return self.what


def tlb_lab() -> tuple[SysRegs, dict[int, int]]:
    """Exercise 15's guest: its registers and memory words (tables of both stages)."""
    from atlab.builder import S1Builder, S2Builder, scenario_dict
    from atlab.scenario import parse_scenario

    b = S1Builder(Regime.EL10, tables=(0x4020_0000, 0x4030_0000), asid=_TLB_ASID)
    b.map(TLB_VA_GLOBAL, 0x4100_0000, 0x1000, ap="EL1 RW")
    b.map(TLB_VA_NG, 0x4100_1000, 0x1000, ap="EL1 RW / EL0 RW", ng=True)
    b.map(TLB_VA_OTHER, 0x4100_2000, 0x1000, ap="EL1 RW", ng=True)
    s2 = S2Builder(ipa_bits=40, tables=(0x4040_0000, 0x4050_0000), vmid=_TLB_VMID)
    s2.map(0x4020_0000, 0x4020_0000, 0x1_0000, blocks=False)
    s2.map(0x4100_0000, 0x4100_0000, 0x3000, blocks=False)
    s2.map(0x4A00_0000, 0x4A00_0000, 0x2000, blocks=False)  # where the remaps point
    sc = parse_scenario(scenario_dict(name="tlb-lab", s1=[b], s2=s2))
    return sc.regs, dict(sc.memory)


def tlb_changes() -> list[tuple[str, TableChange]]:
    """Exercise 15's changes, each with its group name."""
    regs, words = tlb_lab()
    mem = PhysMem(words)

    def walk(va: int) -> AtResult:
        return run_at(AtOp.S12E1R, va, regs=regs, mem=mem)

    g, ng, other = walk(TLB_VA_GLOBAL), walk(TLB_VA_NG), walk(TLB_VA_OTHER)
    oa = ~0xFFFF_FFFF_F000

    def leaf(res: AtResult, va: int, asid: int | None, new_ipa: int | None,
             what: str) -> TableChange:
        step = res.trace.steps[-1]
        new = 0 if new_ipa is None else step.raw & oa | new_ipa
        return TableChange(what, 1, True, va, 0x1000, asid, None, step.desc_pa, new)

    def table(res: AtResult, va: int, what: str) -> TableChange:
        step = next(s for s in res.trace.steps if s.level == 2)
        return TableChange(what, 1, False, va & ~0x1F_FFFF, 0x20_0000, _TLB_ASID, None,
                           step.desc_pa, 0)

    def s2(res: AtResult, level: int, new_pa: int | None, what: str) -> TableChange:
        step = [s for s in res.trace.final_s2 if s.level == level][-1]
        size = 1 << step.ia_lo
        ipa = (res.ipa or 0) & ~(size - 1)
        new = 0 if new_pa is None else step.raw & oa | new_pa
        return TableChange(what, 2, level == 3, 0, size, None, ipa, step.desc_pa, new)

    a = _TLB_ASID
    return [
        ("leaf remaps", leaf(g, TLB_VA_GLOBAL, None, 0x4A00_0000,
                             f"the global page VA {TLB_VA_GLOBAL:#x} now maps IPA 0x4a000000")),
        ("leaf remaps", leaf(ng, TLB_VA_NG, a, 0x4A00_1000,
                             f"the ASID {a} page VA {TLB_VA_NG:#x} now maps IPA 0x4a001000")),
        ("leaf remaps", leaf(other, TLB_VA_OTHER, a, 0x4A00_0000,
                             f"the ASID {a} page VA {TLB_VA_OTHER:#x} now maps IPA "
                             "0x4a000000")),
        ("unmaps", leaf(g, TLB_VA_GLOBAL, None, None,
                        f"the global page VA {TLB_VA_GLOBAL:#x} is unmapped (leaf invalid)")),
        ("unmaps", leaf(ng, TLB_VA_NG, a, None,
                        f"the ASID {a} page VA {TLB_VA_NG:#x} is unmapped (leaf invalid)")),
        ("table descriptors", table(g, TLB_VA_GLOBAL,
                                    f"the level 2 table descriptor for VA {TLB_VA_GLOBAL:#x}"
                                    "+2MB is cleared (two pages gone)")),
        ("table descriptors", table(other, TLB_VA_OTHER,
                                    f"the level 2 table descriptor for VA {TLB_VA_OTHER:#x}"
                                    "+2MB is cleared")),
        ("stage 2", s2(g, 3, 0x4A00_0000,
                       "the hypervisor moves IPA 0x41000000 to PA 0x4a000000 (stage 2 leaf)")),
        ("stage 2", s2(ng, 3, None,
                       "the hypervisor unmaps IPA 0x41001000 (stage 2 leaf invalid)")),
        ("stage 2", s2(g, 2, None,
                       "the hypervisor clears the stage 2 level 2 table descriptor for IPA "
                       "0x41000000+2MB (three pages gone)")),
    ]


def _tlb_cases() -> list[Case]:
    return [_case(c.what, group, c) for group, c in tlb_changes()]


def _run_maintenance(change: TableChange, insns: Any) -> str:
    """Fill both PEs' TLBs, make the change, run ``insns`` on PE0, and say what is stale."""
    from atlab.pe import Machine
    from atlab.tlb import EntryKind, TlbiOp

    regs, words = tlb_lab()
    m = Machine(regs, PhysMem(words), pes=2)
    vas = (TLB_VA_GLOBAL, TLB_VA_NG, TLB_VA_OTHER)
    for pe in (0, 1):
        for va in vas:
            m.at(AtOp.S12E1R, va, pe=pe)
    m.store(change.desc_pa, change.new_desc)
    if not isinstance(insns, list | tuple):
        raise TypeError(f"return a list of (instruction, Xt) pairs, not {insns!r}")
    for i, item in enumerate(insns):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise TypeError(f"item {i}: {item!r} is not an (instruction, Xt) pair")
        name, xt = item
        parts = str(name).upper().replace(",", " ").split()
        if len(parts) == 2 and parts[0] == "TLBI":
            try:
                op = TlbiOp.parse(parts[1])
            except AtlabError as exc:
                raise TypeError(f"item {i}: {exc}") from None
            if op.operands and not isinstance(xt, int):
                raise TypeError(f"item {i}: {op} takes its operand in Xt (an int)")
            m.tlbi(op, **op.operands_from_xt(xt if isinstance(xt, int) else 0))
        elif parts and parts[0] == "DSB" and len(parts) <= 2:
            m.dsb(domain=parts[1] if len(parts) == 2 else "SY")
        elif parts == ["ISB"]:
            m.isb()
        else:
            raise TypeError(f"item {i}: {name!r} is not TLBI <op>, DSB <domain> or ISB")
    lost: list[tuple[int, int]] = []
    if change.stage == 1:  # (a stage 2 change needs TLBI VMALLE1 for the combined entries)
        lost = [(pe, va) for pe in (0, 1) for va in vas
                if not change.va <= va < change.va + change.size
                and m.tlbs[pe].lookup(EntryKind.S12, Regime.EL10, _TLB_VMID, _TLB_ASID,
                                      va) is None]
    stale = []
    for pe in (0, 1):
        for va in vas:
            look = m.at(AtOp.S12E1R, va, pe=pe)
            want = run_at(AtOp.S12E1R, va, regs=regs, mem=m.mem).par
            if look.par != want:
                how = "a TLB hit" if look.hit else "through the walk cache"
                stale.append(f"PE{pe} VA {va:#x} gives {_par_short(look.par)} ({how}), the "
                             f"tables {_par_short(want)}")
    if stale:
        pending = "; a TLBI is still not complete" if m.pending() else ""
        return "stale: " + "; ".join(stale) + pending
    if lost:
        pe, va = lost[0]
        return (f"every translation fresh, but PE{pe} lost its entry for VA {va:#x}, which "
                "the change does not affect: more was invalidated than needed")
    return "every translation fresh on both PEs; unrelated entries kept"


def _par_short(par: Par | None) -> str:
    if par is None:
        return "an exception"
    if par.f:
        fields = par.fields()
        return f"a fault (FST={fields['FST']:#04x}, S={fields['S']})"
    return f"PA {par.pa:#x}"


def reference_tlb_maintenance(change: TableChange) -> list[tuple[str, int | None]]:
    """The sequence D8.17 requires on a PE whose TLBs may all hold the old entries:

    - a changed leaf: ``TLBI VALE1IS`` for the page (the last-level form keeps the walk
      cache), with the ASID of a non-global page in Xt[63:48] and VA[55:12] in Xt[43:0];
    - a changed table descriptor: ``TLBI VAE1IS`` (all levels: the walk cache holds the old
      table) for every page of the range it maps, with the walks' ASID (walk cache entries
      are non-global, R_CHVGJ);
    - a changed stage 2 descriptor: ``TLBI IPAS2E1IS`` (IPA[51:12] in Xt[39:0]), a DSB, then
      ``TLBI VMALLE1IS`` for the combined entries (I_CKZGP);

    each followed by ``DSB ISH`` (completion on every PE, R_YNJCP) and ``ISB`` (on this PE,
    R_BLDZX)."""
    if change.stage == 2:
        assert change.ipa is not None
        by_ipa: list[tuple[str, int | None]] = [
            ("TLBI IPAS2E1IS", ipa >> 12) for ipa in range(change.ipa, change.ipa + change.size,
                                                           0x1000)]
        return [*by_ipa, ("DSB ISH", None), ("TLBI VMALLE1IS", None), ("DSB ISH", None),
                ("ISB", None)]
    op = "TLBI VALE1IS" if change.leaf else "TLBI VAE1IS"
    asid = change.asid or 0
    insns: list[tuple[str, int | None]] = [
        (op, asid << 48 | va >> 12) for va in range(change.va, change.va + change.size, 0x1000)]
    return [*insns, ("DSB ISH", None), ("ISB", None)]


def _ref_tlb(change: TableChange) -> str:
    return _run_maintenance(change, reference_tlb_maintenance(change))


def _without(kind: str) -> Callable[[TableChange], list[tuple[str, int | None]]]:
    def fn(change: TableChange) -> list[tuple[str, int | None]]:
        return [i for i in reference_tlb_maintenance(change) if not i[0].startswith(kind)]
    return fn


def _local_forms(change: TableChange) -> list[tuple[str, int | None]]:
    return [(n.removesuffix("IS") if n.startswith("TLBI") else n, x)
            for n, x in reference_tlb_maintenance(change)]


def _va_unshifted(change: TableChange) -> list[tuple[str, int | None]]:
    return [(n, (change.asid or 0) << 48 | change.va if n.startswith("TLBI VA") else x)
            for n, x in reference_tlb_maintenance(change)]


def _no_asid(change: TableChange) -> list[tuple[str, int | None]]:
    return [(n, x & mask(43, 0) if x is not None and n.startswith("TLBI VA") else x)
            for n, x in reference_tlb_maintenance(change)]


def _last_level_always(change: TableChange) -> list[tuple[str, int | None]]:
    return [(n.replace("VAE1IS", "VALE1IS"), x) for n, x in reference_tlb_maintenance(change)]


def _ipas2_only(change: TableChange) -> list[tuple[str, int | None]]:
    return [i for i in reference_tlb_maintenance(change) if i[0] != "TLBI VMALLE1IS"]


def _flush_all(change: TableChange) -> list[tuple[str, int | None]]:
    return [("TLBI VMALLE1IS", None), ("DSB ISH", None), ("ISB", None)]


def _dsb_nsh(change: TableChange) -> list[tuple[str, int | None]]:
    return [("DSB NSH", None) if n == "DSB ISH" else (n, x)
            for n, x in reference_tlb_maintenance(change)]


TLB_MAINTENANCE = Exercise(
    "tlb_maintenance", "The TLB maintenance a table change needs", _tlb_cases, _ref_tlb, str,
    lambda args, got: _run_maintenance(args[0], got),
    (Mistake("no DSB", _without("DSB"),
             "a TLBI is only guaranteed complete after a DSB (R_YNJCP): until then both PEs may "
             "still use the old entry"),
     Mistake("no ISB", _without("ISB"),
             "on the PE that issued it, the TLBI completes at the DSB *followed by* a context "
             "synchronization event (R_BLDZX): end with ISB"),
     Mistake("non-shareable forms", _local_forms,
             "TLBI VALE1 reaches this PE only; the other PE keeps its entry: use the IS form"),
     Mistake("DSB NSH", _dsb_nsh,
             "DSB NSH completes a TLBI on this PE only; a broadcast TLBI needs DSB ISH "
             "(R_PSMWS)"),
     Mistake("ASID left out", _no_asid,
             "a non-global entry (and every walk cache entry) is tagged with its ASID: put it "
             "in Xt[63:48], or use the VAA forms"),
     Mistake("VA not shifted into Xt", _va_unshifted,
             "Xt holds VA[55:12] in bits [43:0] and the ASID in bits [63:48]: pass va >> 12"),
     Mistake("last level for a table descriptor", _last_level_always,
             "TLBI VALE1 removes leaves only; the walk cache still holds the old table "
             "descriptor (I_RTRQB): a changed table needs TLBI VAE1"),
     Mistake("IPAS2E1 alone", _ipas2_only,
             "TLBI IPAS2E1 need not remove combined stage 1+2 entries (C5.5): follow it with "
             "DSB and TLBI VMALLE1IS"),
     Mistake("flush everything", _flush_all,
             "TLBI VMALLE1IS is enough but throws away every translation of the VM; invalidate "
             "the changed range by VA (for a stage 2 change, TLBI IPAS2E1IS first)")),
    "after the change and your sequence, every PE must see the tables as they are now, and "
    "entries the change does not affect should stay",
    reference_tlb_maintenance,
    # most instructive first: a leaf remap first (the basic TLBI; DSB; ISB), then unmaps, table
    # descriptors (the walk cache) and stage 2
    group_order=(
        "leaf remaps",
        "unmaps",
        "table descriptors",
        "stage 2",
    ),
)


def check_tlb_maintenance(fn: Callable[[TableChange], list[tuple[str, int | None]]], *,
                          quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``tlb_maintenance(change) -> [(instruction, Xt or None), ...]``."""
    return check(TLB_MAINTENANCE, fn, quiet=quiet, file=file)
