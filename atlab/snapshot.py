"""Real tables: a live guest's memory read on demand, and snapshots of its translation state.

:class:`LiveMem` is a :class:`~atlab.memory.PhysMem` whose words come from a running guest
(QEMU's gdbstub, :mod:`atlab.gdbstub`): the first read of a word fetches its 4KB page, so a
walk or a ptdump reads only the pages holding the descriptors it looks at.

A *snapshot* is a gzipped JSON file holding the translation registers of a stopped guest,
the ID registers (from which the feature set is derived) and exactly the table pages
reachable from its TTBRs (and VTTBR_EL2 when stage 2 is set), plus metadata (kernel, QEMU
command line, recorded QEMU translations, symbols).  ``atlab run``, ``atlab ptdump`` and
:func:`atlab.scenario.load_scenarios` load it as an ordinary scenario::

    {"format": "atlab-snapshot", "version": 1, "name": "...", "comment": "...", "el": 2,
     "sysregs": {"TTBR1_EL2": "0x...", ...}, "id_registers": {"ID_AA64MMFR0_EL1": "0x..."},
     "pages": [{"pa": "0x41234000", "data": "<base64 of 4096 little-endian bytes>"}],
     "ops": [{"op": "S1E2R", "va": "0x..."}], "meta": {...}}

>>> regs = {**dict.fromkeys(required_registers(2, 1 << 34), 0), "HCR_EL2": 1 << 34}
>>> doc = make_snapshot("t", 2, regs, {}, {0x40000000: (0x40001003).to_bytes(8, "little")
...                                        + bytes(4088)})
>>> sc = snapshot_to_scenario(doc, "<doc>")
>>> sc["memory"], sc["el"]
([{'pa': 1073741824, 'u64': 1073745923}], 2)
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from atlab.bits import bits
from atlab.errors import AtlabError, clip
from atlab.features import Feature, FeatureSet
from atlab.granule import PS_BITS
from atlab.memory import PA_LIMIT, PhysMem
from atlab.scenario import json_int
from atlab.sysregs import WRITABLE, SysRegs, decode, parse_int

if TYPE_CHECKING:
    from atlab.scenario import Scenario

__all__ = ["COURSE_SNAPSHOT", "FORMAT", "Capture", "GuestStub", "LiveMem", "Snapshot", "capture",
           "course_snapshot", "features_from_id_registers", "is_snapshot", "load_snapshot",
           "make_snapshot", "read_snapshot_bytes", "required_registers", "save_snapshot",
           "snapshot_to_scenario", "table_pages", "translate_va"]

FORMAT = "atlab-snapshot"
VERSION = 1
PAGE = 4096
#: A snapshot expands to at most this many bytes and holds at most this many pages.
MAX_JSON_BYTES = 64 << 20
MAX_PAGES = 2048  # a 1 GiB guest needs ~530; the worst case loads in ~4 s
ID_REGISTERS = ("ID_AA64MMFR0_EL1", "ID_AA64MMFR1_EL1", "ID_AA64MMFR2_EL1",
                "ID_AA64MMFR3_EL1", "ID_AA64ISAR2_EL1")


def required_registers(el: int, hcr_el2: int) -> tuple[str, ...]:
    """The registers a snapshot taken at ``el`` must hold: the stage 1 regime that EL uses
    (EL2&0 when HCR_EL2.E2H=1 at EL2, else EL2 or EL1&0) and HCR_EL2."""
    if el == 2:
        regs = ("TCR_EL2", "TTBR0_EL2", "MAIR_EL2", "SCTLR_EL2")
        return ("HCR_EL2", *regs, "TTBR1_EL2") if bits(hcr_el2, 34, 34) else ("HCR_EL2", *regs)
    return ("HCR_EL2", "TCR_EL1", "TTBR0_EL1", "TTBR1_EL1", "MAIR_EL1", "SCTLR_EL1")


def features_from_id_registers(idregs: Mapping[str, int]) -> FeatureSet:
    """The feature set the ID registers advertise (the inverse of
    :func:`atlab.sysregs.id_registers`, for the features atlab models).

    >>> from atlab.sysregs import id_registers
    >>> fs = FeatureSet.all().without(Feature.TCR2, Feature.S1PIE, Feature.ATS1A)
    >>> features_from_id_registers(id_registers(fs)) == fs
    True
    """
    f0 = decode("ID_AA64MMFR0_EL1", idregs.get("ID_AA64MMFR0_EL1", 0))
    f1 = decode("ID_AA64MMFR1_EL1", idregs.get("ID_AA64MMFR1_EL1", 0))
    f2 = decode("ID_AA64MMFR2_EL1", idregs.get("ID_AA64MMFR2_EL1", 0))
    f3 = decode("ID_AA64MMFR3_EL1", idregs.get("ID_AA64MMFR3_EL1", 0))
    i2 = decode("ID_AA64ISAR2_EL1", idregs.get("ID_AA64ISAR2_EL1", 0))
    pa_max = PS_BITS[f0["PARange"]] if f0["PARange"] <= 6 else 52
    # TGran4: 0 supported, 1 supported with 52-bit (LPA2), 0xF not supported.
    has = {
        Feature.TGRAN4: f0["TGran4"] != 0xF,
        Feature.TGRAN16: f0["TGran16"] != 0,
        Feature.TGRAN64: f0["TGran64"] != 0xF,
        Feature.LPA2: f0["TGran4"] == 1 or f0["TGran16"] == 2,
        Feature.LPA: f0["PARange"] == 6,
        Feature.HAFDBS: f1["HAFDBS"] >= 1,
        Feature.VHE: f1["VH"] >= 1,
        Feature.HPDS: f1["HPDS"] >= 1,
        Feature.HPDS2: f1["HPDS"] >= 2,
        Feature.PAN: f1["PAN"] >= 1,
        Feature.PAN2: f1["PAN"] >= 2,
        Feature.PAN3: f1["PAN"] >= 3,
        Feature.XNX: f1["XNX"] >= 1,
        Feature.LVA: f2["VARange"] >= 1,
        Feature.NV: f2["NV"] >= 1,
        Feature.NV2: f2["NV"] >= 2,
        Feature.TTST: f2["ST"] >= 1,
        Feature.S2FWB: f2["FWB"] >= 1,
        Feature.E0PD: f2["E0PD"] >= 1,
        Feature.TCR2: f3["TCRX"] >= 1,
        Feature.SCTLR2: f3["SCTLRX"] >= 1,
        Feature.S1PIE: f3["S1PIE"] >= 1,
        Feature.S2PIE: f3["S2PIE"] >= 1,
        Feature.AIE: f3["AIE"] >= 1,
        Feature.S1POE: f3["S1POE"] >= 1,
        Feature.S2POE: f3["S2POE"] >= 1,
        Feature.ATS1A: i2["ATS1A"] >= 1,
    }
    return FeatureSet(frozenset(f for f, on in has.items() if on), pa_max)


class LiveMem(PhysMem):
    """Physical memory read from a live guest one 4KB page at a time, on first use.

    ``read_page(pa)`` returns the 4096 bytes at the page-aligned ``pa``.  Writes (hardware
    Access-flag updates made by a modelled walk) change only the local copy, never the guest.

    >>> backing = {0x1000: (7).to_bytes(8, "little") + bytes(4088)}
    >>> m = LiveMem(lambda pa: backing.get(pa, bytes(PAGE)))
    >>> m.read64(0x1000), m.read64(0x5008), sorted(m.pages)
    (7, 0, [4096, 20480])
    """

    __slots__ = ("_read_page", "pages")

    def __init__(self, read_page: Callable[[int], bytes], *, logging: bool = False) -> None:
        super().__init__(logging=logging)
        self._read_page = read_page
        #: The pages fetched so far: page address -> the bytes read from the guest.
        self.pages: dict[int, bytes] = {}

    def _load(self, pa: int) -> None:
        page = pa & ~(PAGE - 1)
        if page in self.pages:
            return
        if not 0 <= page < PA_LIMIT:
            raise AtlabError(f"physical address {pa:#x} is not below 2^56")
        data = self._read_page(page)
        if len(data) != PAGE:
            raise AtlabError(f"the guest returned {len(data)} bytes for the page at {page:#x}")
        self.pages[page] = data
        for i in range(0, PAGE, 8):
            value = int.from_bytes(data[i:i + 8], "little")
            if value:
                self._words[page + i] = value

    def peek(self, pa: int) -> int:
        self._load(pa)
        return super().peek(pa)

    def read64(self, pa: int, *, big_endian: bool = False, purpose: str = "") -> int:
        self._check(pa)
        self._load(pa)
        return super().read64(pa, big_endian=big_endian, purpose=purpose)

    def write64(self, pa: int, value: int, *, big_endian: bool = False, purpose: str = "") -> None:
        self._check(pa)
        self._load(pa)
        super().write64(pa, value, big_endian=big_endian, purpose=purpose)

    def iter_range(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        if end - start > 16 * PAGE:
            raise AtlabError(f"a live guest is read one table at a time, not {end - start:#x} "
                             "bytes")
        for page in range(start & ~(PAGE - 1), end, PAGE):
            self._load(page)
        return super().iter_range(start, end)


def table_pages(regs: SysRegs, mem: PhysMem, *, el: int, features: FeatureSet
                ) -> tuple[list[str], int]:
    """Visit every table reachable from the TTBRs of the regime ``el`` uses (and VTTBR_EL2 when
    stage 2 is on) with :func:`atlab.ptdump.ptdump`, so a :class:`LiveMem` fetches exactly
    those pages.  Returns the dump titles and the number of leaf entries seen."""
    from atlab.ptdump import ptdump, ptdump_s2
    from atlab.regime import Regime
    from atlab.walk_s2 import stage2_enabled

    e2h = bits(regs["HCR_EL2"], 34, 34)
    dumps = []
    if not bits(regs["SCTLR_EL2" if el == 2 else "SCTLR_EL1"], 0, 0):
        pass  # stage 1 off (SCTLR_ELx.M=0): no stage 1 tables (e.g. a bare KVM guest)
    elif el == 2:
        dumps = ([ptdump(regs, mem, regime=Regime.EL20, ttbr=t, features=features)
                  for t in (0, 1)] if e2h else
                 [ptdump(regs, mem, regime=Regime.EL2, features=features)])
    else:
        dumps = [ptdump(regs, mem, regime=Regime.EL10, ttbr=t, features=features)
                 for t in (0, 1)]
    if stage2_enabled(regs) or bits(regs["VTTBR_EL2"], 47, 1):
        dumps.append(ptdump_s2(regs, mem, features=features))
    return [d.title for d in dumps], sum(d.entries for d in dumps)


def translate_va(regs: SysRegs, mem: PhysMem, va: int, *, el: int,
                 features: FeatureSet | None = None) -> tuple[int | None, str]:
    """The PA the stage 1 tables of the regime ``el`` uses give ``va`` (AT S1E2R at EL2, or
    AT S1E1R at EL1), permissions aside (as QEMU's ``gva2gpa``), or None with the fault.

    >>> snap = course_snapshot()
    >>> init_task = snap.symbols["init_task"]
    >>> pa, why = translate_va(snap.scenario.regs, snap.scenario.fresh_memory(), init_task, el=2)
    >>> hex(pa), why
    ('0x420994c0', '')
    """
    from atlab.at import run_at
    from atlab.faults import FaultKind
    from atlab.regime import AtOp

    op = AtOp.S1E2R if el == 2 else AtOp.S1E1R
    res = run_at(op, va, regs=regs, mem=mem, features=features, cur_el=el, trace=False)
    if res.fault is None or res.fault.kind is FaultKind.PERMISSION:
        if res.ipa is None:
            return None, "no output address"
        return res.ipa, "" if res.fault is None else "permission fault"
    return None, str(res.fault.kind.value)


def _hex(value: int) -> str:
    return f"{value:#x}"


def make_snapshot(name: str, el: int, sysregs: Mapping[str, object],
                  id_registers: Mapping[str, int], pages: Mapping[int, bytes], *,
                  comment: str = "", ops: Sequence[Mapping[str, object]] = (),
                  meta: Mapping[str, object] | None = None) -> dict[str, object]:
    """The JSON document of a snapshot (see the module docstring)."""
    return {
        "format": FORMAT, "version": VERSION, "name": name, "comment": comment, "el": el,
        "sysregs": {k: (v if isinstance(v, str) else _hex(int(v)))  # type: ignore[call-overload]
                    for k, v in sorted(sysregs.items())},
        "id_registers": {k: _hex(v) for k, v in sorted(id_registers.items())},
        "pages": [{"pa": _hex(pa), "data": base64.b64encode(data).decode("ascii")}
                  for pa, data in sorted(pages.items())],
        "ops": [dict(o) for o in ops],
        "meta": dict(meta or {}),
    }


def save_snapshot(path: str | Path, doc: Mapping[str, object]) -> int:
    """Write ``doc`` gzipped (deterministic bytes); the number of bytes written."""
    data = gzip.compress(json.dumps(doc, indent=None, separators=(",", ":")).encode(), 9,
                         mtime=0)
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise AtlabError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return len(data)


def is_snapshot(doc: object) -> bool:
    return isinstance(doc, Mapping) and doc.get("format") == FORMAT


def read_snapshot_bytes(data: bytes, source: str) -> object:
    """The JSON document in gzipped ``data`` (at most :data:`MAX_JSON_BYTES` once expanded)."""
    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        raw = d.decompress(data, MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES:
            raise AtlabError(f"{source}: corrupt snapshot (expands to more than "
                             f"{MAX_JSON_BYTES >> 20} MB)")
        if not d.eof:
            raise AtlabError(f"{source}: corrupt snapshot (the gzip data is cut short)")
    except zlib.error as exc:
        raise AtlabError(f"{source}: corrupt snapshot (gzip: {exc})") from None
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_int=json_int)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise AtlabError(f"{source}: corrupt snapshot (not JSON: {why})") from None


def _mapping(doc: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise AtlabError(f"'{key}' must be a mapping, not {clip(value)}")
    return value


def _pages(raw: object) -> dict[int, bytes]:
    if not isinstance(raw, list):
        raise AtlabError("'pages' must be a list of {\"pa\": ..., \"data\": ...}")
    if len(raw) > MAX_PAGES:
        raise AtlabError(f"{len(raw)} pages is too many (at most {MAX_PAGES})")
    pages: dict[int, bytes] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or "pa" not in entry or "data" not in entry:
            raise AtlabError(f"page {i} must have 'pa' and 'data'")
        pa = parse_int(entry["pa"], what=f"page {i} pa")
        if pa % PAGE or pa >= PA_LIMIT:
            raise AtlabError(f"page {i}: pa {pa:#x} must be 4KB aligned and below 2^56")
        if not isinstance(entry["data"], str):
            raise AtlabError(f"page {i}: 'data' must be base64 text")
        try:
            data = base64.b64decode(entry["data"], validate=True)
        except (binascii.Error, ValueError):
            raise AtlabError(f"page {i}: 'data' is not base64") from None
        if len(data) != PAGE:
            raise AtlabError(f"page {i}: {len(data)} bytes, not {PAGE}")
        if pa in pages:
            raise AtlabError(f"page {i}: pa {pa:#x} is given twice")
        pages[pa] = data
    return pages


def snapshot_to_scenario(doc: object, source: str) -> dict[str, object]:
    """The scenario (as :func:`atlab.scenario.parse_scenario` reads it) that a snapshot
    document describes; a one-line :class:`AtlabError` for anything malformed."""
    return _scenario_of(_parse_snapshot(doc, source))


@dataclass(frozen=True)
class _Parsed:
    """A snapshot document, checked and decoded once."""

    name: str
    comment: str
    el: int
    sysregs: dict[str, object]
    ids: dict[str, int]
    features: FeatureSet
    pages: dict[int, bytes]
    ops: list[object]


def _parse_snapshot(doc: object, source: str) -> _Parsed:
    try:
        if not is_snapshot(doc):
            raise AtlabError(f"not an atlab snapshot ('format' must be {FORMAT!r})")
        assert isinstance(doc, Mapping)
        if doc.get("version") != VERSION:
            raise AtlabError(f"snapshot version {clip(doc.get('version'))} is not supported "
                             f"(this atlab reads version {VERSION})")
        el = doc.get("el")
        if el not in (1, 2) or isinstance(el, bool):
            raise AtlabError(f"'el' must be 1 or 2, not {clip(el)}")
        sysregs = {str(k): v for k, v in _mapping(doc, "sysregs").items()}
        regs = SysRegs.from_mapping(sysregs)
        assert isinstance(el, int)
        missing = [n for n in required_registers(el, regs["HCR_EL2"]) if n not in sysregs]
        if missing:
            raise AtlabError(f"missing register(s) {', '.join(missing)} for a snapshot taken "
                             f"at EL{el}")
        ids = {str(k): parse_int(v, what=str(k))
               for k, v in _mapping(doc, "id_registers").items()}
        unknown = sorted(set(ids) - set(ID_REGISTERS))
        if unknown:
            raise AtlabError(f"unknown ID register {clip(unknown[0])}")
        features = features_from_id_registers(ids) if ids else FeatureSet.all()
        pages = _pages(doc.get("pages", []))
        ops = doc.get("ops", [])
        if not isinstance(ops, list):
            raise AtlabError("'ops' must be a list")
        return _Parsed(str(doc.get("name", "snapshot")), str(doc.get("comment", "")), el,
                       sysregs, ids, features, pages, ops)
    except AtlabError as exc:
        raise AtlabError(f"{source}: corrupt snapshot: {exc}") from None


def _scenario_of(p: _Parsed) -> dict[str, object]:
    memory = []
    for pa, data in sorted(p.pages.items()):
        for i in range(0, PAGE, 8):
            value = int.from_bytes(data[i:i + 8], "little")
            if value:
                memory.append({"pa": pa + i, "u64": value})  # ints: no hex to parse back
    missing_feats = sorted(f.value for f in FeatureSet.all().features - p.features.features)
    feats: dict[str, object] = {name: False for name in missing_feats}
    if p.features.pa_max != 52:
        feats["PAMax"] = p.features.pa_max
    return {"name": p.name, "comment": p.comment, "tags": ["snapshot"], "el": p.el,
            "features": feats,
            "sysregs": {k: v for k, v in p.sysregs.items() if k in WRITABLE},
            "memory": memory, "ops": p.ops}


@dataclass(frozen=True)
class Snapshot:
    """A loaded snapshot: the scenario it is, its pages and its metadata."""

    path: str
    scenario: Scenario
    pages: Mapping[int, bytes]
    id_registers: Mapping[str, int]
    meta: Mapping[str, object]

    @property
    def symbols(self) -> dict[str, int]:
        """The kernel symbols recorded from /proc/kallsyms (name -> VA); {} if none."""
        raw = self.meta.get("symbols")
        if not isinstance(raw, Mapping):
            return {}
        return {str(k): parse_int(v, what=f"symbol {k}") for k, v in raw.items()}


#: The snapshot the course ships (notebook 11, exercise 17): Debian's linux-image-6.12 cloud
#: kernel booted as a VHE host under QEMU 10 (``-cpu max,lpa2=off``, 48-bit VA, 256 MiB).
COURSE_SNAPSHOT = (Path(__file__).resolve().parent.parent / "notebooks" / "data"
                   / "linux-6.12-vhe-snapshot.json.gz")


def course_snapshot() -> Snapshot:
    """The committed snapshot of :data:`COURSE_SNAPSHOT` (from a source checkout)."""
    if not COURSE_SNAPSHOT.is_file():
        raise AtlabError(f"{COURSE_SNAPSHOT}: not found (the course snapshot comes with a "
                         "source checkout of atlab)")
    return load_snapshot(COURSE_SNAPSHOT)


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a snapshot file (gzipped JSON) with its metadata."""
    from atlab.scenario import _read_bytes, parse_scenario

    source = str(path)
    doc = read_snapshot_bytes(_read_bytes(path), source)
    parsed = _parse_snapshot(doc, source)
    sc = parse_scenario(_scenario_of(parsed), source=source)
    assert isinstance(doc, Mapping)
    meta = doc.get("meta", {})
    return Snapshot(source, sc, parsed.pages, parsed.ids,
                    meta if isinstance(meta, Mapping) else {})


class GuestStub(Protocol):
    """What a snapshot needs from a stopped guest (:class:`atlab.gdbstub.GdbStub`)."""

    def registers(self, names: Iterable[str]) -> dict[str, int]: ...

    def read(self, addr: int, size: int, *, physical: bool = True) -> bytes: ...


#: The gdbstub's spelling of a register, where it is not the Arm ARM's (QEMU 10 names
#: SCTLR_EL1 ``SCTLR``).
GDB_ALIASES = {"SCTLR_EL1": ("SCTLR_EL1", "SCTLR")}
#: Translation registers a snapshot records when the guest has them (EL3's are left out: the
#: guest runs at EL2 or EL1).
TRANSLATION_REGISTERS = tuple(sorted(n for n in WRITABLE if not n.endswith("_EL3")
                                     and n != "PSTATE_PAN"))


@dataclass(frozen=True)
class Capture:
    """What :func:`capture` read: the snapshot document and the live memory it used."""

    doc: dict[str, object]
    mem: LiveMem
    regs: SysRegs
    el: int
    features: FeatureSet
    cpu: Mapping[str, int]  # pc, cpsr, SP_EL0 of the stopped CPU


def capture(stub: GuestStub, *, name: str, comment: str = "",
            meta: Mapping[str, object] | None = None) -> Capture:
    """Read a stopped guest's translation registers and every table page reachable from them.

    The regime is the one the stopped CPU's EL uses: EL2&0 when it is at EL2 with
    HCR_EL2.E2H=1 (or at EL0 with {E2H, TGE} = {1, 1}), else EL1&0 (or EL2 with E2H=0).
    """
    wanted = [alias for n in TRANSLATION_REGISTERS for alias in GDB_ALIASES.get(n, (n,))]
    raw = stub.registers([*wanted, *ID_REGISTERS, "cpsr", "pc", "SP_EL0"])
    if "cpsr" not in raw:
        raise AtlabError("the guest's gdbstub gives no cpsr: is it an AArch64 QEMU guest?")
    sysregs: dict[str, int] = {}
    for n in TRANSLATION_REGISTERS:
        for alias in GDB_ALIASES.get(n, (n,)):
            if alias in raw:
                sysregs[n] = raw[alias]
                break
    if "HCR_EL2" not in raw and "TTBR0_EL2" not in raw:  # a PE without EL2 (virtualization=off)
        sysregs["HCR_EL2"] = 0  # atlab's model has EL2: HCR_EL2=0 leaves EL1&0 alone
    hcr = sysregs.get("HCR_EL2", 0)
    cur_el = bits(raw["cpsr"], 3, 2)
    e2h, tge = bits(hcr, 34, 34), bits(hcr, 27, 27)
    el = 2 if cur_el == 2 or (cur_el == 0 and e2h and tge) else 1
    missing = [n for n in required_registers(el, hcr) if n not in sysregs]
    if missing:
        raise AtlabError(f"the guest's gdbstub lacks register(s) {', '.join(missing)}")
    sysregs["PSTATE_PAN"] = bits(raw["cpsr"], 22, 22)
    ids = {n: raw[n] for n in ID_REGISTERS if n in raw}
    features = features_from_id_registers(ids) if ids else FeatureSet.all()
    regs = SysRegs(sysregs)
    mem = LiveMem(lambda pa: stub.read(pa, PAGE))
    titles, entries = table_pages(regs, mem, el=el, features=features)
    cpu: dict[str, int] = {k: raw[k] for k in ("pc", "cpsr", "SP_EL0") if k in raw}
    info = {"stopped_at_el": cur_el, "regimes": titles, "leaf_entries": entries,
            "cpu": {k: _hex(v) for k, v in cpu.items()}, **(meta or {})}
    doc = make_snapshot(name, el, {k: _hex(v) for k, v in sysregs.items()}, ids, mem.pages,
                        comment=comment, meta=info)
    return Capture(doc, mem, regs, el, features, cpu)
