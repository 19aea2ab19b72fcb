"""The shadow stage 2 is L0's TLB of L1's stage 2: how L0 keeps it coherent.

L1 never has its stage 2 resident; the hardware walks the shadow stage 2, which L0 fills
lazily from L1's stage 2.  Like a TLB it may be stale for exactly as long as a real TLB of
L1's stage 2 could be: until L1 executes a TLBI that covers the change.  L1 runs at EL1 with
HCR_EL2.NV=1, so its EL2 TLBIs (IPAS2E1, VMALLS12E1, ALLE1 ...) trap to L0 (EC 0x18,
I_XMYBL), which unmaps the shadow entries the TLBI covers (KVM: ``handle_ipas2e1is``,
``handle_vmalls12e1is``, ``handle_alle1is`` in ``arch/arm64/kvm/sys_regs.c``).
"""

from __future__ import annotations

from dataclasses import dataclass

from atlab.errors import AtlabError
from atlab.features import Feature, FeatureSet
from atlab.granule import Granule, block_desc_supported, level_lsb
from atlab.nv.emulate import emulate_at
from atlab.nv.model import S2_ATTR_BITS, L0Event, NvSystem, page_of, shadow_attrs
from atlab.nv.routing import Context, loaded_hcr_el2
from atlab.regime import AtOp
from atlab.syndrome import TakenException
from atlab.tlb import TlbiOp, TlbiScope, size_text, tlbi_route
from atlab.walk_s2 import S2WalkInfo, setup_s2_walk, stage2_enabled, walk_s2

__all__ = ["L1Tlbi", "L2Access", "ShadowCheck", "l0_handle_tlbi", "l1_tlbi", "l2_access",
           "shadow_check"]


@dataclass(frozen=True, slots=True)
class ShadowCheck:
    """One shadow stage 2 entry against what L1's stage 2 (then L0's) says now."""

    l2_ipa: int
    shadow_pa: int
    now_pa: int | None  # None: L1's stage 2 no longer maps the page (or it is unbacked)
    why: str

    @property
    def stale(self) -> bool:
        return self.now_pa != self.shadow_pa

    def __str__(self) -> str:
        now = "unmapped" if self.now_pa is None else f"{self.now_pa:#x}"
        state = "STALE" if self.stale else "ok"
        return (f"shadow L2 IPA {self.l2_ipa:#x} -> PA {self.shadow_pa:#x}; L1's stage 2 now "
                f"gives {now} ({self.why}): {state}")


def shadow_check(system: NvSystem) -> list[ShadowCheck]:
    """Compare every shadow stage 2 entry with a fresh walk of L1's stage 2 (read in L1's
    IPA space, without faulting anything in) followed by L0's stage 2."""
    out = []
    info = setup_s2_walk(system.vregs, system.features)
    flat = system.flat_l1_memory()
    for l2_ipa, entry in sorted(system.shadow.items()):
        pa = page_of(entry & ~S2_ATTR_BITS)  # an entry may carry L1's attribute bits
        if not isinstance(info, S2WalkInfo):
            out.append(ShadowCheck(l2_ipa, pa, None, f"L1's stage 2 is misconfigured: {info}"))
            continue
        res = walk_s2(info, flat, l2_ipa, system.features, write=False, s1ptw=True,
                      for_at=False)
        if res.fault is not None:
            out.append(ShadowCheck(l2_ipa, pa, None, f"L1's stage 2: {res.fault}"))
            continue
        backing = system.backing.get(page_of(res.pa))
        why = f"L2 IPA -> L1 IPA {page_of(res.pa):#x}"
        out.append(ShadowCheck(l2_ipa, pa, backing, why if backing is not None
                               else why + ", which L0 has not backed"))
    return out


_NO_LPA = FeatureSet.all().without(Feature.LPA)


def _leaf_shifts(granule: Granule) -> list[int]:
    """The sizes (as shifts) of the leaves a 48-bit stage 2 of ``granule`` maps, the page
    first: ``AArch64.BlockDescSupported()`` without DS or FEAT_LPA (4KB, 2MB, 1GB for 4KB;
    16KB, 32MB; 64KB, 512MB), the sizes KVM's ``ttl_to_size()`` knows."""
    return [level_lsb(level, granule) for level in (3, 2, 1)
            if level == 3 or block_desc_supported(granule, level, False, _NO_LPA)]


def _max_block(granule: Granule) -> int:
    """The largest block a stage 2 of this granule can map (level 1 for 4KB, else level 2)."""
    return 1 << _leaf_shifts(granule)[-1]


def guest_mapping_size(system: NvSystem, ipa: int, granule: Granule) -> int | None:
    """KVM's ``get_guest_mapping_ttl()`` + ``ttl_to_size()``: look for a shadow entry at
    ``ipa`` aligned down to each block size of L1's granule in turn (4KB, 2MB, 1GB for 4KB);
    the first one found gives the size of L1's mapping it came from, used if it covers
    ``ipa``.  ``None``: no hint (the caller takes the largest block)."""
    shifts = _leaf_shifts(granule)
    for shift in shifts:
        tmp = ipa & ~((1 << shift) - 1)
        if tmp not in system.shadow:
            continue
        lsb = level_lsb(system.shadow_level.get(tmp, 3), granule)
        if lsb not in shifts:
            return None  # ttl_to_size() has no size for it
        return 1 << lsb if ipa < tmp + (1 << lsb) else None
    return None


def l0_handle_tlbi(system: NvSystem, op: TlbiOp, *, ipa: int | None = None) -> tuple[int, ...]:
    """L0's reaction to a TLBI that L1 executed at vEL2 and that trapped.  The shadow stage
    2 is a TLB of L1's stage 2, so L0 drops the shadow entries the TLBI covers; the next
    stage 2 abort on them makes L0 walk L1's stage 2 again.  Returns the L2 IPA pages removed.

    - IPAS2E1, IPAS2LE1 (and the IS forms): ``ipa`` is IPA[51:12] from Xt[39:0].  Without a
      TTL hint L0 first asks the shadow: the entry at the IPA records the size of L1's
      mapping (:func:`guest_mapping_size`, KVM's ``get_guest_mapping_ttl()``); failing that
      it unmaps the range of the largest block L1's stage 2 granule allows around it.  The
      last-level form needs no more care: the shadow holds no walk cache of L1's tables.
    - VMALLS12E1, ALLE1 (and the IS forms): the whole shadow stage 2.
    - Stage 1 only TLBIs (VMALLE1, VAE1, ...) leave the shadow stage 2 alone.
    """
    # SIMPLIFIED: one shadow stage 2 (one L1 VMID), and L0's own hardware TLB is not
    # modelled (KVM follows the unmap with TLBI IPAS2E1IS + TLBI VMALLE1IS on the shadow VMID).
    scope = op.info.scope
    if scope is TlbiScope.IPA:
        if ipa is None:
            raise AtlabError(f"{op} needs the operand ipa")
        info = setup_s2_walk(system.vregs, system.features)
        granule = info.granule if isinstance(info, S2WalkInfo) else Granule.K4
        size = guest_mapping_size(system, ipa, granule)
        hint = "the size L1's mapping has in the shadow entry"
        if size is None:
            size, hint = _max_block(granule), "no shadow entry: the largest block"
        lo = ipa & ~(size - 1)
        gone = tuple(p for p in sorted(system.shadow) if lo <= p < lo + size)
        why = (f"{op} {ipa:#x} (no TTL): L0 unmaps the shadow range {lo:#x}+{size_text(size)}"
               f" ({hint})")
    elif scope in (TlbiScope.VMALLS12, TlbiScope.ALL_E1):
        gone = tuple(sorted(system.shadow))
        why = f"{op}: L0 unmaps the whole shadow stage 2"
    else:
        return ()
    for page in gone:
        del system.shadow[page]
        system.shadow_level.pop(page, None)
    system.events.append(L0Event(f"{why} ({len(gone)} entries)"))
    return gone


@dataclass(frozen=True, slots=True)
class L1Tlbi:
    """A TLBI L1 executed at vEL2: the exception that took it to L0 (None: it ran on the
    hardware), the shadow stage 2 pages L0 unmapped, and the story."""

    op: TlbiOp
    exception: TakenException | None
    unmapped: tuple[int, ...]
    story: tuple[str, ...]

    def __str__(self) -> str:
        return "; ".join(self.story)


def l1_tlbi(system: NvSystem, op: TlbiOp, *, va: int | None = None, asid: int | None = None,
            ipa: int | None = None) -> L1Tlbi:
    """L1, at vEL2 (the hardware's EL1 with HCR_EL2.NV=1), executes ``TLBI <op>``.

    - An EL2 instruction (IPAS2E1, VMALLS12E1, ALLE1, ...E2) traps to L0 (I_XMYBL, EC 0x18);
      for the ones that cover L1's stage 2, L0 unmaps the shadow entries
      (:func:`l0_handle_tlbi`).
    - An EL1 instruction: KVM 6.12 runs vEL2 with HCR_EL2.TTLB=1 (``__compute_hcr()``), so
      it traps too; L0 applies it to L2's VMID, or with vHCR_EL2.{E2H,TGE}={1,1} to L1's own
      EL2&0 context (``handle_tlbi_el1``).  It covers stage 1 only and leaves the shadow
      stage 2 alone.
    """
    hcr = loaded_hcr_el2(Context.L1_VEL2, system.vregs, system.features).value
    op.check_operands(va=va, asid=asid, ipa=ipa)
    res = tlbi_route(op, regs=system.vregs.replace(HCR_EL2=hcr), cur_el=1)
    if res.exception is None:
        return L1Tlbi(op, None, (), (f"{op} runs on the hardware (L1's own EL2&0 context)",))
    story = [f"{op} at vEL2 traps to L0 ({res.why}, EC {res.exception.ec:#x})"]
    gone = l0_handle_tlbi(system, op, ipa=ipa)
    if op.info.scope in (TlbiScope.IPA, TlbiScope.VMALLS12, TlbiScope.ALL_E1):
        story.append(f"L0 unmaps {len(gone)} shadow stage 2 entr{'y' if len(gone) == 1 else 'ies'}")
    else:
        story.append("stage 1 only: L0 invalidates the hardware TLB for L2's VMID; the shadow "
                     "stage 2 stays")
    return L1Tlbi(op, res.exception, gone, tuple(story))


@dataclass(frozen=True, slots=True)
class L2Access:
    """Where a load (or store) L2 executes at ``va`` lands: its stage 1 on the hardware, then
    the shadow stage 2 (filled by L0 from L1's stage 2 on a miss).  ``pa`` is None when the
    access faults (``fault`` says which stage and why)."""

    va: int
    ipa: int | None
    pa: int | None
    fault: str
    story: tuple[str, ...]

    def __str__(self) -> str:
        if self.pa is None:
            return f"L2 access at VA {self.va:#x}: {self.fault}"
        return f"L2 access at VA {self.va:#x} -> L2 IPA {self.ipa:#x} -> PA {self.pa:#x}"


def l2_access(system: NvSystem, va: int, *, write: bool = False) -> L2Access:
    """A load or store by L2 (running at EL1) at ``va``, as the hardware performs it: L2's
    stage 1 walk (through the shadow stage 2, which L0 fills on a stage 2 abort), then the
    shadow stage 2 for the data page.  A stale shadow entry is used as it is: that is how a
    TLBI L1 forgot shows up."""
    if system.context is not Context.L2_EL1:
        raise AtlabError(f"l2_access: the system runs {system.context.value}, not L2 at EL1")
    at = emulate_at(system, AtOp.S1E1W if write else AtOp.S1E1R, va)
    story = list(at.narration)
    if at.par is None or at.par.f:
        return L2Access(va, None, None, f"stage 1: {at.par or at.exception}", tuple(story))
    ipa = at.par.pa | (va & 0xFFF)
    if not stage2_enabled(system.vregs):
        pa = system.l1_ipa_to_pa(ipa, allocate=True)
        assert pa is not None
        return L2Access(va, ipa, pa, "", (*story, "L1's stage 2 is off: L2 IPA = L1 IPA"))
    page = page_of(ipa)
    if page not in system.shadow:
        info = setup_s2_walk(system.vregs, system.features)
        if not isinstance(info, S2WalkInfo):
            return L2Access(va, ipa, None, f"L1's stage 2 is misconfigured: {info}",
                            tuple(story))
        l1 = walk_s2(info, system.l1_view(), ipa, system.features, write=write, s1ptw=False,
                     for_at=False)
        if l1.fault is not None:
            return L2Access(va, ipa, None, f"L1's stage 2: {l1.fault} (L0 injects the abort "
                            "into L1)", tuple(story))
        backing = system.add_shadow(page, l1.pa, l1.desc, l1.level)
        story.append(f"stage 2 abort on the access at L2 IPA {page:#x}: L0 walks L1's stage "
                     f"2 (-> L1 IPA {page_of(l1.pa):#x} -> PA {backing:#x}) and adds "
                     "the shadow entry")
    entry = system.shadow[page]
    if write and not shadow_attrs(entry) >> 7 & 1:  # S2AP[1]: no write
        return L2Access(va, ipa, None, "shadow stage 2: no write permission (L1's S2AP; L0 "
                        "injects the abort into L1)", tuple(story))
    pa = page_of(entry & ~S2_ATTR_BITS) | (ipa & 0xFFF)
    story.append(f"shadow stage 2: L2 IPA {page:#x} -> PA {page_of(pa):#x}")
    return L2Access(va, ipa, pa, "", tuple(story))
