"""The three levels as data: physical memory, L0's stage 2 for the L1 VM (with holes), L1's
virtual EL2 registers and L2's EL1 registers, and the shadow stage 2.

Addresses: L2 VA -> (L2's stage 1) -> L2 IPA -> (L1's stage 2) -> L1 IPA -> (L0's stage 2)
-> PA.  L1's memory is described in *L1 IPA space*; L0 decides where each 4KB page really is
(``backing``) and which of those pages its stage 2 maps right now (``l0_mapped``; the rest
are holes: not faulted in, or swapped out).  The shadow stage 2 maps L2 IPA pages straight to
PA pages and may be incomplete or empty at any moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from atlab.errors import AtlabError, clip
from atlab.features import FeatureSet
from atlab.memory import AccessKind, MemAccess, PhysMem
from atlab.nv.routing import Context
from atlab.scenario import OpSpec, _parse_op, read_file
from atlab.sysregs import SysRegs, parse_int

PAGE = 12
#: Where L0 keeps the stage 2 tables it gives the hardware (its own memory, bit 47 set).
L0_TABLES_BASE = 0x8000_0000_0000
#: The IPA size of the stage 2 tables L0 builds (its own for L1, and the shadow).
SHADOW_IPA_BITS = 48
#: VTCR_EL2 for L0's hardware stage 2 tables: 4KB granule, T0SZ=16, SL0=2 (start level 0),
#: PS=48 bits, Inner Shareable WB walks, RES1 bit 31.
L0_VTCR = 0x8005_3590
#: S2 page descriptor bits: AF, SH=ISH, S2AP=RW, MemAttr=0b1111 (Normal WB), page.
_S2_PAGE_BITS = 0x7FF
#: The stage 2 leaf attribute bits a shadow entry carries from L1's stage 2 (MemAttr[5:2],
#: S2AP[7:6], SH[9:8], XN[54:53]): the shadow grants no more than L1's stage 2 does.
S2_ATTR_BITS = 0x0060_0000_0000_03FC


#: Bit 0 of a shadow entry: its attribute bits are given (even if all zero: no access,
#: Device-nGnRnE); without it the entry is read/write Normal Write-Back memory.
SHADOW_ATTRS_GIVEN = 1


def shadow_attrs(entry: int) -> int:
    """The stage 2 attribute bits of a shadow entry (:data:`S2_ATTR_BITS`)."""
    if entry & SHADOW_ATTRS_GIVEN or entry & S2_ATTR_BITS:
        return entry & S2_ATTR_BITS
    return _S2_PAGE_BITS & S2_ATTR_BITS


def shadow_desc(entry: int) -> int:
    """The hardware descriptor for a shadow entry (``PA page | attributes``, see
    :func:`shadow_attrs`)."""
    return page_of(entry & ~S2_ATTR_BITS) | shadow_attrs(entry) | (1 << 10) | 0b11


def page_of(addr: int) -> int:
    return addr >> PAGE << PAGE


@dataclass(frozen=True, slots=True)
class L0Event:
    """Something L0 did that L1 never sees."""

    what: str


class NvSystem:
    """A nested-virtualization machine.  Mutable on purpose: L0 changes its stage 2 and the
    shadow stage 2 as it runs.  ``vregs`` are L1's virtual registers named as the real ones
    (``HCR_EL2`` is vHCR_EL2, ``TCR_EL1`` is L2's TCR_EL1 ...)."""

    def __init__(
        self,
        *,
        vregs: SysRegs,
        l1_memory: Mapping[int, int],
        backing: Mapping[int, int] | None = None,
        pa_offset: int = 0x1_0000_0000,
        holes: Iterable[int] = (),
        shadow: Mapping[int, int] | None = None,
        context: Context = Context.L1_VEL2,
        features: FeatureSet | None = None,
        pan: int = 0,
        shadow_mmu: bool = True,
    ) -> None:
        self.vregs = vregs
        #: Whether L0 finds a shadow stage 2 MMU for L1's current VTTBR_EL2 (KVM's
        #: ``lookup_s2_mmu()``); without one KVM's fast path for AT S1E0*/S1E1* gives up.
        self.shadow_mmu = shadow_mmu
        self.features = features if features is not None else FeatureSet.all()
        if self.features.pa_max < 48:
            # L0 keeps its own tables at PA bit 47 and places L1's memory above 4GB.
            raise AtlabError(f"the NV model needs a PE with PAMax >= 48 (L0's memory layout), "
                             f"not {self.features.pa_max}")
        self.context = context
        self.pan = pan
        self.backing: dict[int, int] = dict(backing or {})
        for ipa in l1_memory:
            self.backing.setdefault(page_of(ipa), page_of(ipa) + pa_offset)
        for page in self.backing.values():
            if page >= L0_TABLES_BASE:
                raise AtlabError(f"backing page {page:#x} collides with L0's own tables")
        # No access log: the emulated ATs report their walks in their traces, and a log of a
        # long-lived system would only grow.
        self.mem = PhysMem(logging=False)
        for ipa, value in l1_memory.items():
            self.mem.poke(self.backing[page_of(ipa)] | (ipa & 0xFFF), value)
        hole_pages = {page_of(h) for h in holes}
        self.l0_mapped: set[int] = set(self.backing) - hole_pages
        self.shadow: dict[int, int] = dict(shadow or {})
        #: The level of L1's stage 2 mapping each shadow entry came from (default 3).
        self.shadow_level: dict[int, int] = {}
        self.events: list[L0Event] = []
        self._materialized: dict[int, tuple[tuple[int, int], ...]] = {}
        #: Register snapshots L0 loaded recently (reused while unchanged).
        self.loaded: list[SysRegs] = []
        self._next_free = max([*self.backing.values(), pa_offset], default=pa_offset) + 0x1000

    # --- L0's memory management -----------------------------------------------------------
    def backed_pa(self, ipa: int) -> int | None:
        """Where L1 IPA ``ipa`` really is (``None``: never allocated), with no side effect:
        what the host's own mapping of L1's memory gives (``kvm_read_guest()``)."""
        pa_page = self.backing.get(page_of(ipa))
        return None if pa_page is None else pa_page | (ipa & 0xFFF)

    def allocate_backing(self, page: int) -> int:
        """The PA page backing L1 IPA page ``page`` in the host, allocated if needed (L0's
        stage 2 for L1 is not changed)."""
        pa_page = self.backing.get(page)
        if pa_page is None:
            pa_page = self._next_free
            self._next_free += 0x1000
            self.backing[page] = pa_page
            self.events.append(L0Event(f"L0 allocates PA {pa_page:#x} for L1 IPA {page:#x}"))
        return pa_page

    def l1_ipa_to_pa(self, ipa: int, *, allocate: bool) -> int | None:
        """Where L1 IPA ``ipa`` really is, after L1 itself accessed it: a hole takes a stage 2
        fault to L0, which faults the page into its stage 2 (invisible to L1).  Unbacked pages
        read as zero (``None``) unless ``allocate``."""
        page = page_of(ipa)
        if page not in self.backing and not allocate:
            return None
        pa_page = self.allocate_backing(page)
        if page not in self.l0_mapped:
            self.l0_mapped.add(page)
            self.events.append(L0Event(f"L0 faults in L1 IPA {page:#x} -> PA {pa_page:#x} "
                                       "(a hole in its stage 2)"))
        return pa_page | (ipa & 0xFFF)

    def l1_access(self, ipa: int) -> int:
        """L1 loads from its IPA ``ipa`` (e.g. it reads its own page table): a hole in L0's
        stage 2 is a stage 2 fault that L0 handles by mapping the page.  This, not an emulated
        AT, is what fills L0's stage 2 (KVM's software walker reads through the host mapping).
        Returns the PA."""
        pa = self.l1_ipa_to_pa(ipa, allocate=True)
        assert pa is not None
        return pa

    def add_shadow(self, l2_ipa: int, l1_ipa: int, l1_desc: int, level: int = 3) -> int:
        """L0 backs L1 IPA ``l1_ipa`` (what L1's stage 2 gave for ``l2_ipa``, from its leaf
        ``l1_desc`` at ``level``) and maps the L2 IPA page to it in the shadow stage 2, with
        L1's stage 2 attribute bits; the entry is tagged with the level of L1's mapping (KVM's
        ``KVM_NV_GUEST_MAP_SZ``, read back when a TLBI comes without a TTL hint).  Returns the
        PA page."""
        if l2_ipa >> SHADOW_IPA_BITS:
            raise AtlabError(f"L2 IPA {l2_ipa:#x} is beyond the {SHADOW_IPA_BITS}-bit shadow "
                             "stage 2 L0 builds (KVM 6.12 has no 52-bit IPA for nested "
                             "guests): not modelled")
        pa = self.l1_ipa_to_pa(l1_ipa, allocate=True)
        assert pa is not None
        self.shadow[page_of(l2_ipa)] = page_of(pa) | (l1_desc & S2_ATTR_BITS) \
            | SHADOW_ATTRS_GIVEN
        self.shadow_level[page_of(l2_ipa)] = level
        return page_of(pa)

    def l1_view(self) -> IpaSpace:
        """L1's IPA space as memory, through L0's stage 2 (used by the software walker)."""
        return IpaSpace(self)

    def flat_l1_memory(self) -> PhysMem:
        """L1's IPA space as if it were physical memory: the reference machine's memory."""
        out = PhysMem()
        reverse = {pa: ipa for ipa, pa in self.backing.items()}
        for pa, value in self.mem:
            ipa_page = reverse.get(page_of(pa))
            if ipa_page is not None:
                out.poke(ipa_page | (pa & 0xFFF), value)
        return out

    # --- hardware stage 2 tables L0 builds --------------------------------------------------
    def materialize_s2(self, pages: Mapping[int, int], slot: int) -> int:
        """Write 4KB-granule, 4-level stage 2 tables mapping ``pages`` (IPA page -> PA page)
        into L0's memory; return the VTTBR_EL2 value.  ``slot`` picks a table area."""
        base = L0_TABLES_BASE + slot * 0x100_0000
        wanted = tuple(sorted(pages.items()))
        if self._materialized.get(slot) == wanted:
            return base  # the tables in memory already say exactly this
        for pa in [w for w, _ in self.mem.iter_range(base, base + 0x100_0000)]:
            self.mem.poke(pa, 0)
        self._materialized[slot] = wanted
        nxt = base + 0x1000
        tables: dict[tuple[int, int], int] = {}
        for ipa_page, pa_page in sorted(pages.items()):  # PA page | optional attribute bits
            table = base
            for level in range(4):
                index = (ipa_page >> (39 - 9 * level)) & 0x1FF
                if level == 3:
                    self.mem.poke(table + 8 * index, shadow_desc(pa_page))
                    break
                key = (level, ipa_page >> (39 - 9 * level))
                if key not in tables:
                    tables[key] = nxt
                    nxt += 0x1000
                self.mem.poke(table + 8 * index, tables[key] | 0b11)
                table = tables[key]
        return base

    def l0_stage2_pages(self) -> dict[int, int]:
        return {ipa: pa for ipa, pa in self.backing.items() if ipa in self.l0_mapped}

    def describe(self) -> str:
        holes = sorted(set(self.backing) - self.l0_mapped)
        return (f"{self.context.value}; L0 stage 2 maps {len(self.l0_mapped)} L1 IPA pages"
                f" ({len(holes)} holes); shadow stage 2 has {len(self.shadow)} entries")


class IpaSpace(PhysMem):
    """L1's IPA space as L0's software walker sees it: through the host's own mapping of L1's
    memory (``kvm_read_guest()``), so a hole in L0's stage 2 for L1 stays a hole.  Reads of
    never-allocated pages give 0; a write (a hardware Access flag update by the architectural
    walker) allocates the page in the host, still without mapping it in L0's stage 2."""

    __slots__ = ("system",)

    def __init__(self, system: NvSystem, *, logging: bool = False) -> None:
        super().__init__(logging=logging)
        self.system = system

    def read64(self, pa: int, *, big_endian: bool = False, purpose: str = "") -> int:
        real = self.system.backed_pa(pa)
        value = 0 if real is None else self.system.mem.read64(real, big_endian=big_endian,
                                                               purpose=purpose)
        if self.logging:
            self.log.append(MemAccess(pa, value, AccessKind.READ,
                                      f"{purpose} (L1 IPA {pa:#x} -> PA "
                                      f"{'-' if real is None else hex(real)})"))
        return value

    def write64(self, pa: int, value: int, *, big_endian: bool = False, purpose: str = "") -> None:
        real = self.system.allocate_backing(page_of(pa)) | (pa & 0xFFF)
        self.system.mem.write64(real, value, big_endian=big_endian, purpose=purpose)

    def peek(self, pa: int) -> int:
        real = self.system.backed_pa(pa)
        return 0 if real is None else self.system.mem.peek(real)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.system.flat_l1_memory())


# --- NV scenario files -------------------------------------------------------------------

_CONTEXTS = {"L1": Context.L1_VEL2, "L1-vEL2": Context.L1_VEL2, "L2-EL1": Context.L2_EL1,
             "L2-EL0": Context.L2_EL0}


@dataclass(frozen=True, slots=True)
class NvScenario:
    name: str
    context: Context
    vregs: SysRegs
    l1_memory: tuple[tuple[int, int], ...]
    pa_offset: int
    holes: tuple[int, ...]
    shadow: tuple[tuple[int, int], ...]
    ops: tuple[OpSpec, ...]
    features: FeatureSet
    kvm_behaviour: bool = False
    comment: str = ""

    def system(self) -> NvSystem:
        return NvSystem(vregs=self.vregs, l1_memory=dict(self.l1_memory),
                        pa_offset=self.pa_offset, holes=self.holes, shadow=dict(self.shadow),
                        context=self.context, features=self.features,
                        pan=self.vregs.field("PSTATE_PAN", "PAN"))


def parse_nv_scenario(obj: object, *, source: str = "<nv scenario>") -> NvScenario:
    """Parse one NV scenario::

        {"name": "...", "context": "L1" | "L2-EL1" | "L2-EL0",
         "vsysregs": {"HCR_EL2": "...", "TCR_EL2": "...", "VTCR_EL2": "...", "TCR_EL1": "..."},
         "l1_memory": [{"ipa": "0x40200000", "u64": "0x..."}],
         "l0_stage2": {"pa_offset": "0x100000000", "holes": ["0x40201000"]},
         "shadow_s2": [{"l2_ipa": "0x...", "pa": "0x..."}],
         "features": {...}, "kvm_behaviour": false,
         "ops": [{"op": "S1E2R", "va": "0x..."}]}
    """
    from atlab.scenario import _parse_memory

    if not isinstance(obj, Mapping):
        raise AtlabError(f"{source}: an NV scenario must be a mapping")
    name = str(obj.get("name", "nv"))
    try:
        ctx_name = str(obj.get("context", "L1"))
        if ctx_name not in _CONTEXTS:
            raise AtlabError(f"'context' must be one of {', '.join(_CONTEXTS)}, "
                             f"not {clip(ctx_name)}")
        raw_regs = obj.get("vsysregs", {})
        if not isinstance(raw_regs, Mapping):
            raise AtlabError("'vsysregs' must be a mapping")
        vregs = SysRegs.from_mapping({str(k): v for k, v in raw_regs.items()})
        raw_mem = obj.get("l1_memory", [])
        if not isinstance(raw_mem, list):
            raise AtlabError("'l1_memory' must be a list of {\"ipa\": ..., \"u64\": ...}")
        memory = _parse_memory([{"pa": e.get("ipa"), "u64": e.get("u64")}
                                if isinstance(e, Mapping) else e for e in raw_mem])
        l0 = obj.get("l0_stage2", {}) or {}
        if not isinstance(l0, Mapping):
            raise AtlabError("'l0_stage2' must be a mapping")
        pa_offset = parse_int(l0.get("pa_offset", 0x1_0000_0000), what="l0_stage2.pa_offset")
        if pa_offset & 0xFFF:
            raise AtlabError("l0_stage2.pa_offset must be 4KB aligned")
        holes_raw = l0.get("holes", [])
        if not isinstance(holes_raw, list):
            raise AtlabError("l0_stage2.holes must be a list of L1 IPAs")
        holes = tuple(page_of(parse_int(h, what="hole")) for h in holes_raw)
        shadow_raw = obj.get("shadow_s2", [])
        if not isinstance(shadow_raw, list):
            raise AtlabError("'shadow_s2' must be a list")
        shadow = [_parse_shadow_entry(i, e) for i, e in enumerate(shadow_raw)]
        feats = obj.get("features", {}) or {}
        if not isinstance(feats, Mapping):
            raise AtlabError("'features' must be a mapping")
        features = FeatureSet.from_mapping({str(k): v for k, v in feats.items()})
        raw_ops = obj.get("ops", [])
        if not isinstance(raw_ops, list):
            raise AtlabError("'ops' must be a list")
        ops = tuple(_parse_op(o, i) for i, o in enumerate(raw_ops))
        kvm = obj.get("kvm_behaviour", False)
        if not isinstance(kvm, bool):
            raise AtlabError("'kvm_behaviour' must be true or false")
    except AtlabError as exc:
        raise AtlabError(f"{source}: {clip(name)}: {exc}") from None
    return NvScenario(name, _CONTEXTS[ctx_name], vregs, memory, pa_offset, holes,
                      tuple(shadow), ops, features, kvm, str(obj.get("comment", "") or ""))


_S2AP = {"none": 0b00, "ro": 0b01, "wo": 0b10, "rw": 0b11}


def _parse_shadow_entry(i: int, e: object) -> tuple[int, int]:
    """``{"l2_ipa": ..., "pa": ..., "s2ap": "rw"|"ro"|"wo"|"none", "memattr": 0..15,
    "sh": 0..3, "xn": 0..3}``: without the optional keys the entry is read/write Normal
    Write-Back Inner Shareable (what L0 installs for a read/write Normal L1 mapping)."""
    if not isinstance(e, Mapping) or "l2_ipa" not in e or "pa" not in e:
        raise AtlabError(f"shadow_s2 entry {i} must have 'l2_ipa' and 'pa'")
    unknown = set(e) - {"l2_ipa", "pa", "s2ap", "memattr", "sh", "xn"}
    if unknown:
        raise AtlabError(f"shadow_s2 entry {i}: unknown key {sorted(map(str, unknown))[0]!r} "
                         "(known: l2_ipa, pa, s2ap, memattr, sh, xn)")
    l2_ipa = parse_int(e["l2_ipa"], what=f"shadow_s2[{i}].l2_ipa")
    pa = parse_int(e["pa"], what=f"shadow_s2[{i}].pa")
    if l2_ipa >> SHADOW_IPA_BITS or pa >> 52:
        raise AtlabError(f"shadow_s2 entry {i}: l2_ipa must be below 2^{SHADOW_IPA_BITS} "
                         "and pa below 2^52")
    if not {"s2ap", "memattr", "sh", "xn"} & set(e):
        return page_of(l2_ipa), page_of(pa)
    ap = e.get("s2ap", "rw")
    if ap not in _S2AP:
        raise AtlabError(f"shadow_s2 entry {i}: s2ap must be one of {', '.join(_S2AP)}")
    fields = {}
    for key, width in (("memattr", 4), ("sh", 2), ("xn", 2)):
        raw = e.get(key, {"memattr": 0b1111, "sh": 0b11, "xn": 0}[key])
        fields[key] = parse_int(raw, what=f"shadow_s2[{i}].{key}")
        if fields[key] >> width:
            raise AtlabError(f"shadow_s2 entry {i}: {key} is a {width}-bit field")
    attrs = (fields["memattr"] << 2) | (_S2AP[str(ap)] << 6) | (fields["sh"] << 8) \
        | (fields["xn"] << 53)
    return page_of(l2_ipa), page_of(pa) | attrs | SHADOW_ATTRS_GIVEN


def load_nv_scenarios(path: str) -> list[NvScenario]:
    doc = read_file(path)
    if isinstance(doc, list):
        return [parse_nv_scenario(d, source=f"{path}[{i}]") for i, d in enumerate(doc)]
    return [parse_nv_scenario(doc, source=path)]
