"""Exercise checkers: compare a learner's function with atlab's reference over many cases.

Each exercise in ``exercises/`` asks for one function with a fixed, typed signature; its
checker, ``check_<exercise>(fn)``, calls ``fn`` on a table of cases (edge cases included),
computes the expected answer *with the library* (the walkers, :func:`~atlab.at.run_at`,
:mod:`atlab.nv` ...), and prints

- one ``✓``/``✗`` line per group of cases,
- for the first failing case: the input, the expected and the actual answer, and a hint
  (a specific one when the answer matches a known typical mistake),
- a summary line.

An untouched stub — a function that raises :class:`NotImplementedError`, or returns
:data:`TODO` — is reported as "not attempted"; nothing the learner's function does makes the
checker raise.  Each checker returns a :class:`CheckResult` (status and counts) so that tests
can assert on it.  There is no global state: every call builds its cases afresh, and each case
gets fresh memory.

>>> def stub(desc: int, level: int, granule: Granule) -> DescFields:
...     raise NotImplementedError
>>> r = check_decode_s1_descriptor(stub)
○ decode_s1_descriptor: not attempted (the stub is untouched).
Write the function body, then run this cell again.
>>> r.status, r.passed
(<Status.NOT_ATTEMPTED: 'not attempted'>, 0)
>>> r = check_decode_s1_descriptor(reference_decode_descriptor, quiet=True)
>>> r.status.value, r.failed
('passed', 0)

The typical mistakes each checker recognises are listed in :data:`EXERCISES` (field
``mistakes``); ``tests/test_checks.py`` checks that every checker rejects each of them.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from atlab.at import AtResult, run_at
from atlab.attrs import combine_s1_s2, decode_mair_attr, par_shareability, s2_memattr_to_attr
from atlab.bits import bit, bits, mask
from atlab.descriptors import decode_descriptor
from atlab.errors import AtlabError
from atlab.faults import Fault, FaultKind
from atlab.features import FeatureSet
from atlab.memory import PhysMem
from atlab.nv.emulate import _accept_fast
from atlab.nv.routing import Context, RouteKind, route_at
from atlab.par import Par
from atlab.perms import S1PermBits, compute_s1_permissions
from atlab.regime import AtDisposition, AtOp, Disposition, Regime, compute_translation_regime
from atlab.sysregs import SysRegs, encode, layout
from atlab.walk_s1 import Granule, decode_tg0, decode_tg1, level_lsb, setup_s1_walk, start_level
from atlab.walk_s2 import setup_s2_walk

__all__ = [
    "EXERCISES",
    "NV_PATHS",
    "TABLES_OP",
    "TABLES_REGS",
    "TLB_VA_GLOBAL",
    "TLB_VA_NG",
    "TLB_VA_OTHER",
    "TODO",
    "CheckResult",
    "DescFields",
    "Exercise",
    "Failure",
    "Mistake",
    "Status",
    "TableChange",
    "WalkOutcome",
    "check",
    "check_at_target",
    "check_combine_attrs",
    "check_decode_s1_descriptor",
    "check_encode_par",
    "check_execute_only_el0",
    "check_make_tcr_el1",
    "check_nv_at_path",
    "check_s1_permissions",
    "check_s1e1r_in_el20",
    "check_s2_fault_during_s1",
    "check_s2_start",
    "check_tables_for_par",
    "check_tlb_maintenance",
    "check_translate",
    "check_va_range",
    "check_walk_geometry",
    "tlb_changes",
    "tlb_lab",
]


class _Todo:
    """The sentinel an unfinished exercise function may return instead of raising."""

    def __repr__(self) -> str:
        return "TODO"


#: Return this from an exercise function to mark it unfinished ("not attempted").
TODO: Any = _Todo()


# --- results ---------------------------------------------------------------------------------


class Status(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"


@dataclass(frozen=True, slots=True)
class Failure:
    """The first failing case: its input, what atlab expects, what the function gave."""

    case: str
    expected: str
    got: str
    hint: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a checker found: the status and how many cases passed and failed."""

    exercise: str
    status: Status
    passed: int = 0
    failed: int = 0
    first_failure: Failure | None = None

    @property
    def total(self) -> int:
        return self.passed + self.failed

    @property
    def ok(self) -> bool:
        return self.status is Status.PASSED

    def __str__(self) -> str:
        if self.status is Status.NOT_ATTEMPTED:
            return f"{self.exercise}: not attempted"
        return f"{self.exercise}: {self.status.value} ({self.passed}/{self.total} cases)"


# --- exercises as data -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One input: ``make()`` builds the arguments (fresh objects for each call)."""

    label: str
    group: str
    make: Callable[[], tuple[Any, ...]]
    hint: str = ""


def _case(label: str, group: str, *args: Any, hint: str = "") -> Case:
    return Case(label, group, lambda: args, hint)


@dataclass(frozen=True, slots=True)
class Mistake:
    """A typical wrong answer, as a function with the exercise's signature, and its hint."""

    name: str
    fn: Callable[..., Any]
    hint: str


def _identity(args: tuple[Any, ...], got: Any) -> Any:
    return got


@dataclass(frozen=True, slots=True)
class Exercise:
    """One exercise: the learner's function name, the cases, the reference answer (from the
    library), how to read the learner's answer, and the typical mistakes."""

    name: str
    title: str
    cases: Callable[[], list[Case]]
    reference: Callable[..., Any]  # the expected answer, comparable form
    show: Callable[[Any], str] = repr
    interpret: Callable[[tuple[Any, ...], Any], Any] = _identity  # learner's answer, same form
    mistakes: tuple[Mistake, ...] = ()
    hint: str = ""
    solution: Callable[..., Any] | None = None  # a function with the learner's signature


def _describe(value: Any, show: Callable[[Any], str]) -> str:
    try:
        return show(value)
    except Exception:  # the learner's value may be anything
        return repr(value)


def _run(ex: Exercise, fn: Callable[..., Any], case: Case) -> tuple[bool, Any, Any, str]:
    """(ok, expected, got, error text); raises NotImplementedError through."""
    expected = ex.reference(*case.make())
    args = case.make()
    raw = fn(*args)
    if raw is TODO:
        raise NotImplementedError
    try:
        got = ex.interpret(args, raw)
    except Exception as exc:
        return False, expected, raw, f"{type(exc).__name__}: {exc}"
    return got == expected, expected, got, ""


def _mistake_hint(ex: Exercise, case: Case, got: Any) -> str:
    for m in ex.mistakes:
        try:
            args = case.make()
            wrong = ex.interpret(args, m.fn(*args))
        except Exception:
            continue
        if wrong == got:
            return m.hint
    return ""


def check(ex: Exercise, fn: Callable[..., Any], *, quiet: bool = False,
          file: TextIO | None = None) -> CheckResult:
    """Run ``fn`` on every case of ``ex``; print ✓/✗ per group and the first failure."""
    out = file if file is not None else sys.stdout

    def say(text: str) -> None:
        if not quiet:
            print(text, file=out)

    cases = ex.cases()
    groups: dict[str, list[int]] = {}
    first: Failure | None = None
    passed = failed = 0
    for index, case in enumerate(cases):
        tally = groups.setdefault(case.group, [0, 0])
        try:
            ok, expected, got, error = _run(ex, fn, case)
        except NotImplementedError:
            if index == 0:
                say(f"○ {ex.name}: not attempted (the stub is untouched). "
                    "Write the function body, then run this cell again.")
                return CheckResult(ex.name, Status.NOT_ATTEMPTED)
            ok, expected, got, error = (False, ex.reference(*case.make()), None,
                                        "NotImplementedError (this case is not handled yet)")
        except Exception as exc:  # the learner's code may raise anything
            ok, expected, got = False, ex.reference(*case.make()), None
            error = f"{type(exc).__name__}: {exc}"
        tally[0 if ok else 1] += 1
        if ok:
            passed += 1
            continue
        failed += 1
        if first is None:
            hint = "" if error else _mistake_hint(ex, case, got)
            if error and got is None:
                got_text = f"raised {error}"
            elif error:
                got_text = f"{_describe(got, repr)} ({error})"
            else:
                got_text = _describe(got, ex.show)
            first = Failure(case.label, _describe(expected, ex.show), got_text,
                            hint or case.hint or ex.hint)
    say(f"Checking {ex.name} against atlab ({len(cases)} cases)")
    for group, (good, bad) in groups.items():
        mark = "✓" if not bad else "✗"
        say(f"{mark} {group}: {good}/{good + bad}")
    if first is not None:
        say(f"✗ first failing case: {first.case}")
        say(f"    expected: {first.expected}")
        say(f"    got:      {first.got}")
        say(f"    hint: {first.hint}")
    status = Status.PASSED if failed == 0 else Status.FAILED
    verdict = "all cases pass" if failed == 0 else f"{passed}/{passed + failed} cases pass"
    say(f"{'✓' if failed == 0 else '✗'} {ex.name}: {verdict}")
    return CheckResult(ex.name, status, passed, failed, first)


# --- shared helpers --------------------------------------------------------------------------

_FEATS = FeatureSet.all()
#: A PE with 48-bit physical addresses (no 52-bit OA in 64KB descriptors).
_FEATS_48 = FeatureSet.all(pa_max=48)
_RW = 1 << 31  # HCR_EL2.RW
_E2H = 1 << 34
_TGE = 1 << 27
_GRANULES = (Granule.K4, Granule.K16, Granule.K64)


def _hex(value: Any) -> str:
    return f"{value:#x}" if isinstance(value, int) else repr(value)


def _par_text(value: Any) -> str:
    return str(Par(value)) if isinstance(value, int) else repr(value)


class _Tables:
    """Writes translation tables (any granule) into a dict of words, allocating tables from
    ``next_free``.  Stage 1 and stage 2 tables have the same shape."""

    def __init__(self, granule: Granule, ia_bits: int, root: int, next_free: int,
                 words: dict[int, int] | None = None, *, sl: int | None = None) -> None:
        self.granule = granule
        self.ia_bits = ia_bits
        self.root = root
        self.next_free = next_free
        self.sl = start_level(ia_bits, granule) if sl is None else sl
        self.words: dict[int, int] = words if words is not None else {}

    def entry(self, va: int, level: int, *, create: bool = True) -> int | None:
        """The address of the level ``level`` entry for ``va`` (tables created on the way)."""
        g = self.granule
        table = self.root
        for lvl in range(self.sl, level + 1):
            lsb = level_lsb(lvl, g)
            hi = self.ia_bits - 1 if lvl == self.sl else lsb + g.stride - 1
            addr = table + 8 * bits(va, hi, lsb)
            if lvl == level:
                return addr
            desc = self.words.get(addr)
            if desc is not None and desc & 3 != 3:
                raise AtlabError(f"level {lvl} entry at {addr:#x} is not a table")
            if desc is None:
                if not create:
                    return None
                table = self.next_free
                self.next_free += 1 << g.pgshift
                self.words[addr] = table | 3
            else:
                table = desc & mask(47, g.pgshift)
        raise AtlabError(f"level {level} is above the start level {self.sl}")  # pragma: no cover

    def map(self, va: int, level: int, desc: int) -> None:
        addr = self.entry(va, level)
        assert addr is not None
        if addr in self.words:
            raise AtlabError(f"level {level} entry at {addr:#x} is already in use")
        self.words[addr] = desc


# =============================================================================================
# 01 decode a stage 1 descriptor
# =============================================================================================


@dataclass(frozen=True, slots=True)
class DescFields:
    """A decoded stage 1 descriptor.  ``kind`` is ``"invalid"``, ``"table"``, ``"block"``,
    ``"page"`` or ``"reserved"``; ``oa`` is the next-level table address (table) or the output
    address (block, page).  The leaf fields are 0 for the other kinds."""

    kind: str
    oa: int = 0
    attr_index: int = 0
    ap: int = 0
    sh: int = 0
    af: int = 0
    pxn: int = 0
    uxn: int = 0

    def __str__(self) -> str:
        if self.kind in ("block", "page"):
            return (f"{self.kind} OA={self.oa:#x} AttrIndx={self.attr_index} AP={self.ap:02b} "
                    f"SH={self.sh:02b} AF={self.af} PXN={self.pxn} UXN={self.uxn}")
        if self.kind == "table":
            return f"table next={self.oa:#x}"
        return self.kind


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def reference_decode_descriptor(desc: int, level: int, granule: Granule) -> DescFields:
    """atlab's answer (:func:`atlab.descriptors.decode_descriptor`), EL1&0, 48-bit PA."""
    d = decode_descriptor(desc, level=level, granule=granule, features=_FEATS_48)
    kind = str(d["kind"])
    if kind == "table":
        return DescFields("table", _int(d["next_table"]))
    if kind in ("block", "page"):
        return DescFields(kind, _int(d["OA"]), _int(d["AttrIndx"]), _int(d["AP"]),
                          _int(d["SH"]), _int(d["AF"]), _int(d["PXN"]), _int(d["UXN"]))
    return DescFields(kind)


def _norm_desc(args: tuple[Any, ...], got: Any) -> DescFields:
    if not isinstance(got, DescFields):
        raise TypeError(f"return a DescFields, not {type(got).__name__}")
    if got.kind in ("block", "page"):
        return got
    if got.kind == "table":
        return DescFields("table", got.oa)
    return DescFields(got.kind)


def _decode_cases() -> list[Case]:
    out: list[Case] = []
    leaf_attrs = [
        # AttrIndx, AP, SH, AF, nG, PXN, UXN
        (0, 0b00, 0b11, 1, 0, 0, 0), (1, 0b01, 0b10, 1, 1, 1, 0), (2, 0b10, 0b00, 0, 0, 0, 1),
        (7, 0b11, 0b11, 1, 1, 1, 1), (4, 0b01, 0b11, 0, 0, 1, 1),
    ]
    for g in _GRANULES:
        gname = str(g)
        levels = (1, 2, 3) if g is Granule.K64 else (0, 1, 2, 3)
        block_levels = {Granule.K4: (1, 2), Granule.K16: (2,), Granule.K64: (2,)}[g]
        for level in levels:
            out.append(_case(f"desc=0x0 at level {level}, {gname}", f"{gname} invalid", 0x0,
                             level, g))
            out.append(_case(f"desc=0x40000002 at level {level}, {gname}", f"{gname} invalid",
                             0x4000_0002, level, g, hint="bit[0] is the valid bit"))
            if level < 3:
                base = 0x8_1234_0000 & mask(47, g.pgshift)
                for extra in (0, 1 << 61 | 1 << 59, 0xFFC | (0x3000 if g is not Granule.K4
                                                               else 0)):
                    desc = base | 3 | extra
                    out.append(_case(f"desc={desc:#x} at level {level}, {gname}",
                                     f"{gname} table", desc, level, g,
                                     hint="a table descriptor's next-level address is bits "
                                     f"[47:{g.pgshift}]"))
        for level in block_levels:
            size = level_lsb(level, g)
            for i, (idx, ap, sh, af, ng, pxn, uxn) in enumerate(leaf_attrs[:3]):
                oa = (0x12_3456_789A_B000 >> 8 << size) & mask(47, size)
                junk = (0x1F000 if i == 1 else 0) & mask(size - 1, 12)
                desc = (oa | junk | 0b01 | idx << 2 | ap << 6 | sh << 8 | af << 10 | ng << 11
                        | pxn << 53 | uxn << 54)
                out.append(_case(f"desc={desc:#x} at level {level}, {gname}", f"{gname} block",
                                 desc, level, g,
                                 hint=f"a level {level} block maps 2^{size} bytes: its OA is "
                                 f"bits [47:{size}]"))
        for idx, ap, sh, af, ng, pxn, uxn in leaf_attrs:
            oa = 0x0000_8765_4321_0000 & mask(47, g.pgshift)
            junk = 0x3000 if g is not Granule.K4 and ng else 0
            desc = (oa | junk | 0b11 | idx << 2 | ap << 6 | sh << 8 | af << 10 | ng << 11
                    | pxn << 53 | uxn << 54)
            out.append(_case(f"desc={desc:#x} at level 3, {gname}", f"{gname} page", desc, 3, g,
                             hint=f"a {gname} page's OA is bits [47:{g.pgshift}]"))
        out.append(_case(f"desc=0x40000401 at level 3, {gname}", f"{gname} reserved",
                         0x4000_0401, 3, g, hint="at level 3, 0b01 is reserved, not a block"))
        no_block = {Granule.K4: 0, Granule.K16: 1, Granule.K64: 1}[g]
        out.append(_case(f"desc=0x40000401 at level {no_block}, {gname}", f"{gname} reserved",
                         0x4000_0401, no_block, g,
                         hint=f"{gname} has no level {no_block} blocks without 52-bit "
                         "addresses: the encoding is reserved"))
    return out


def _wrong_decode_l3_block(desc: int, level: int, granule: Granule) -> DescFields:
    if level == 3 and desc & 3 == 1:
        size = level_lsb(level, granule)
        return DescFields("block", desc & mask(47, size), bits(desc, 4, 2), bits(desc, 7, 6),
                          bits(desc, 9, 8), bit(desc, 10), bit(desc, 53), bit(desc, 54))
    return reference_decode_descriptor(desc, level, granule)


def _wrong_decode_page_mask(desc: int, level: int, granule: Granule) -> DescFields:
    ref = reference_decode_descriptor(desc, level, granule)
    if ref.kind == "block":
        return DescFields("block", desc & mask(47, granule.pgshift), ref.attr_index, ref.ap,
                          ref.sh, ref.af, ref.pxn, ref.uxn)
    return ref


def _wrong_decode_4k_mask(desc: int, level: int, granule: Granule) -> DescFields:
    ref = reference_decode_descriptor(desc, level, granule)
    if ref.kind in ("table", "page"):
        return DescFields(ref.kind, desc & mask(47, 12), ref.attr_index, ref.ap, ref.sh, ref.af,
                          ref.pxn, ref.uxn)
    return ref


DECODE = Exercise(
    "decode_s1_descriptor", "Decode a stage 1 descriptor", _decode_cases,
    reference_decode_descriptor, str, _norm_desc,
    (Mistake("level 3 0b01 read as a block", _wrong_decode_l3_block,
             "at level 3, bits[1:0]=0b01 is reserved (a Translation fault), not a block"),
     Mistake("block OA masked at the page size", _wrong_decode_page_mask,
             "a block's OA keeps only the bits above the block size: mask bits "
             "[47:level_lsb(level)], not [47:pgshift]"),
     Mistake("4KB masks for every granule", _wrong_decode_4k_mask,
             "with 16KB and 64KB granules, table and page addresses start at bit 14 or 16, "
             "not 12")),
    "compare with atlab.descriptors.decode_descriptor(desc, level=..., granule=...)",
    reference_decode_descriptor,
)


def check_decode_s1_descriptor(fn: Callable[[int, int, Granule], DescFields], *,
                            quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``decode_s1_descriptor(desc, level, granule) -> DescFields``."""
    return check(DECODE, fn, quiet=quiet, file=file)


# =============================================================================================
# 02 start level and per-level indices
# =============================================================================================


def reference_walk_geometry(granule: Granule, txsz: int, va: int) -> tuple[int, list[int]]:
    """Start level (``AArch64.S1StartLevel()``) and the table index used at each level."""
    ia_bits = 64 - txsz
    sl = start_level(ia_bits, granule)
    indices = []
    for level in range(sl, 4):
        lsb = level_lsb(level, granule)
        hi = ia_bits - 1 if level == sl else lsb + granule.stride - 1
        indices.append(bits(va, hi, lsb))
    return sl, indices


def _norm_geometry(args: tuple[Any, ...], got: Any) -> tuple[int, tuple[int, ...]]:
    sl, indices = got
    return int(sl), tuple(int(i) for i in indices)


def _ref_geometry_cmp(granule: Granule, txsz: int, va: int) -> tuple[int, tuple[int, ...]]:
    sl, indices = reference_walk_geometry(granule, txsz, va)
    return sl, tuple(indices)


def _geometry_cases() -> list[Case]:
    out = []
    for g in _GRANULES:
        for txsz in (16, 17, 20, 22, 24, 25, 27, 28, 30, 33, 34, 36, 37, 39, 42, 44, 47, 48):
            if g is Granule.K64 and txsz == 48:
                continue
            ia = 64 - txsz
            vas = [0x0000_7ABC_DEF1_2345 & mask(ia - 1, 0),
                   0x0000_1234_5678_9ABC & mask(ia - 1, 0),
                   mask(63, ia) | (0x0000_5A5A_5A5A_5A5A & mask(ia - 1, 0))]
            for va in vas:
                rng = "TTBR1 VA" if va >> 63 else "TTBR0 VA"
                out.append(_case(f"{g} granule, TxSZ={txsz}, VA={va:#x}", f"{g} granule",
                                 g, txsz, va,
                                 hint=f"{ia}-bit range; the start level resolves the bits left "
                                 f"over above the lower levels ({rng})"))
    return out


def _show_geometry(v: Any) -> str:
    sl, idx = v
    return f"start level {sl}, indices {list(idx)}"


def _wrong_stride9(granule: Granule, txsz: int, va: int) -> tuple[int, list[int]]:
    ia_bits = 64 - txsz
    pg = granule.pgshift
    sl = 3 - (ia_bits - 1 - pg) // 9
    out = []
    for level in range(sl, 4):
        lsb = (3 - level) * 9 + pg
        hi = ia_bits - 1 if level == sl else lsb + 8
        out.append(bits(va, hi, lsb))
    return sl, out


def _wrong_start_no_minus1(granule: Granule, txsz: int, va: int) -> tuple[int, list[int]]:
    ia_bits = 64 - txsz
    sl = max(-1, 3 - (ia_bits - granule.pgshift) // granule.stride)
    out = []
    for level in range(sl, 4):
        lsb = level_lsb(level, granule)
        hi = ia_bits - 1 if level == sl else lsb + granule.stride - 1
        out.append(bits(va, hi, lsb))
    return sl, out


def _wrong_full_stride_at_start(granule: Granule, txsz: int, va: int) -> tuple[int, list[int]]:
    sl, _ = reference_walk_geometry(granule, txsz, va)
    out = []
    for level in range(sl, 4):
        lsb = level_lsb(level, granule)
        out.append(bits(va, lsb + granule.stride - 1, lsb))
    return sl, out


GEOMETRY = Exercise(
    "walk_geometry", "Start level and per-level indices", _geometry_cases, _ref_geometry_cmp,
    _show_geometry, _norm_geometry,
    (Mistake("wrong stride (9 bits for every granule)", _wrong_stride9,
             "each level resolves granule bits - 3 bits: 9 (4KB), 11 (16KB), 13 (64KB)"),
     Mistake("start level without the -1", _wrong_start_no_minus1,
             "AArch64.S1StartLevel(): 3 - ((iasize - 1 - pgshift) DIV stride); the -1 matters "
             "when the range is an exact number of levels"),
     Mistake("full stride at the start level", _wrong_full_stride_at_start,
             "the start-level index uses VA bits [iasize-1:lsb] only, fewer than a full "
             "stride; the bits above the range are not part of it (they are all ones for TTBR1)")),
    "indices come from VA[hi:lsb] with lsb = (3 - level) * stride + pgshift",
    reference_walk_geometry,
)


def check_walk_geometry(fn: Callable[[Granule, int, int], tuple[int, list[int]]], *,
                        quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``walk_geometry(granule, txsz, va) -> (start_level, indices)``."""
    return check(GEOMETRY, fn, quiet=quiet, file=file)


# =============================================================================================
# 03 VA range and TBI
# =============================================================================================


def _tcr_el1(*, t0sz: int = 16, t1sz: int = 16, tg0: int = 0b00, tg1: int = 0b10,
             tbi0: int = 0, tbi1: int = 0, ips: int = 5, epd1: int = 0, **extra: int) -> int:
    return encode("TCR_EL1", T0SZ=t0sz, T1SZ=t1sz, TG0=tg0, TG1=tg1, TBI0=tbi0, TBI1=tbi1,
                  IPS=ips, EPD1=epd1, SH0=3, SH1=3, **extra)


def reference_va_range(tcr_el1: int, va: int) -> str | None:
    """``"TTBR0"``, ``"TTBR1"``, or None when the VA is outside both ranges (a level 0
    Translation fault), from :func:`atlab.walk_s1.setup_s1_walk` for an EL1 access."""
    regs = SysRegs({"TCR_EL1": tcr_el1})
    wi = setup_s1_walk(regs, _FEATS, Regime.EL10, 1, va)
    if isinstance(wi, Fault):
        return None
    return "TTBR1" if wi.upper else "TTBR0"


def _va_range_cases() -> list[Case]:
    out = []
    for t0sz, t1sz in ((16, 16), (25, 25), (39, 16), (20, 33)):
        for tbi0, tbi1 in ((0, 0), (1, 0), (0, 1), (1, 1)):
            tcr = _tcr_el1(t0sz=t0sz, t1sz=t1sz, tbi0=tbi0, tbi1=tbi1)
            ia0, ia1 = 64 - t0sz, 64 - t1sz
            vas = {
                "low": 0x1000,
                "top of TTBR0 range": mask(ia0 - 1, 12),
                "just above TTBR0 range": 1 << ia0,
                "tagged TTBR0 pointer": 0x5A << 56 | 0x1000,
                "TTBR1 range": mask(63, 12),
                "bottom of TTBR1 range": mask(63, ia1),
                "just below TTBR1 range": mask(63, ia1) - 0x1000,
                "tagged TTBR1 pointer": 0x5A << 56 | mask(55, 12),
                "bit 55 set, bit 63 clear": mask(62, 12) & ~(0xFF << 56) | 1 << 55,
                "bit 63 set, bit 55 clear": 1 << 63 | 0x1000,
            }
            for what, va in vas.items():
                group = f"T0SZ={t0sz} T1SZ={t1sz} TBI0={tbi0} TBI1={tbi1}"
                out.append(_case(f"TCR_EL1 {group}, VA={va:#x} ({what})", group, tcr, va))
    return out


def _wrong_tbi_ignored(tcr_el1: int, va: int) -> str | None:
    return reference_va_range(tcr_el1 & ~(3 << 37), va)


def _wrong_bit63(tcr_el1: int, va: int) -> str | None:
    # The range chosen by bit 63, the check against that range's size, TBI honoured.
    upper = bit(va, 63)
    ia = 64 - (bits(tcr_el1, 21, 16) if upper else bits(tcr_el1, 5, 0))
    tbi = bit(tcr_el1, 38 if upper else 37)
    top = bits(va, 55 if tbi else 63, ia)
    want = mask(55 if tbi else 63, ia) >> ia if upper else 0
    if top != want:
        return None
    return "TTBR1" if upper else "TTBR0"


def _wrong_tbi0_for_both(tcr_el1: int, va: int) -> str | None:
    tbi0 = bit(tcr_el1, 37)
    return reference_va_range((tcr_el1 & ~(3 << 37)) | tbi0 << 37 | tbi0 << 38, va)


VA_RANGE = Exercise(
    "va_range", "VA ranges and TBI", _va_range_cases, reference_va_range, repr, _identity,
    (Mistake("TBI ignored", _wrong_tbi_ignored,
             "with TCR_EL1.TBIn=1 the top byte (bits [63:56]) is ignored: only bits "
             "[55:iasize] must equal bit 55"),
     Mistake("range selected by bit 63", _wrong_bit63,
             "AArch64.GetVARange(): bit 55 selects TTBR0 or TTBR1, so that a tag in the top "
             "byte does not change the range"),
     Mistake("TBI0 used for both ranges", _wrong_tbi0_for_both,
             "each range has its own control: TBI0 for TTBR0, TBI1 for TTBR1")),
    "bit 55 selects the range; bits [addrtop:iasize] must all equal bit 55, with addrtop 55 "
    "when TBI applies and 63 otherwise",
    reference_va_range,
)


def check_va_range(fn: Callable[[int, int], str | None], *, quiet: bool = False,
                   file: TextIO | None = None) -> CheckResult:
    """Check ``va_range(tcr_el1, va) -> "TTBR0" | "TTBR1" | None``."""
    return check(VA_RANGE, fn, quiet=quiet, file=file)


# =============================================================================================
# 04 translate a VA by hand
# =============================================================================================

_TG0_ENC = {Granule.K4: 0b00, Granule.K16: 0b10, Granule.K64: 0b01}
_TG1_ENC = {Granule.K4: 0b10, Granule.K16: 0b01, Granule.K64: 0b11}
_WALK_BASE_REGS = {"HCR_EL2": _RW, "SCTLR_EL1": 1, "MAIR_EL1": 0xFF}


def _page(oa: int, *, af: int = 1, ap: int = 0) -> int:
    return oa | 0b11 | 3 << 8 | af << 10 | ap << 6


def _block(oa: int, *, af: int = 1, ap: int = 0) -> int:
    return oa | 0b01 | 3 << 8 | af << 10 | ap << 6


@dataclass(frozen=True, slots=True)
class _WalkConfig:
    name: str
    regs: SysRegs
    words: dict[int, int]
    queries: tuple[tuple[str, int], ...]


def _walk_configs() -> list[_WalkConfig]:
    out = []
    specs = [  # granule, T0SZ, T1SZ, TBI0, TBI1
        (Granule.K4, 16, 25, 1, 0),
        (Granule.K4, 25, 16, 0, 1),
        (Granule.K16, 17, 17, 0, 1),
        (Granule.K64, 22, 22, 1, 1),
        (Granule.K64, 16, 34, 0, 0),
    ]
    for n, (g, t0sz, t1sz, tbi0, tbi1) in enumerate(specs):
        ia0, ia1 = 64 - t0sz, 64 - t1sz
        root0, root1 = 0x4000_0000 + n * 0x100_0000, 0x4080_0000 + n * 0x100_0000
        words: dict[int, int] = {}
        t0 = _Tables(g, ia0, root0, root0 + 0x10_0000, words)
        t1 = _Tables(g, ia1, root1, root1 + 0x10_0000, words)
        page = 1 << g.pgshift
        block = 1 << level_lsb(2, g)
        va_page = 0x0000_1234_5678_0000 & mask(ia0 - 1, g.pgshift)
        va_block = 0x0000_0ABC_0000_0000 & mask(ia0 - 1, level_lsb(2, g)) | block
        va_noaf = va_page + 2 * page
        va_hole = va_page + 5 * page
        t0.map(va_page, 3, _page(0x8_7654_0000 & mask(47, g.pgshift)))
        t0.map(va_page + page, 3, _page(0x9_0000_0000 + 7 * page))
        t0.map(va_block, 2, _block(0x2_0000_0000 & mask(47, level_lsb(2, g))))
        t0.map(va_noaf, 3, _page(0x5_5555_0000 & mask(47, g.pgshift), af=0))
        entry = t0.entry(va_hole, 3)
        assert entry is not None
        va_up = mask(63, ia1) | (0x0000_0000_3456_0000 & mask(ia1 - 2, g.pgshift))
        t1.map(va_up, 3, _page(0x6_0000_0000 + 3 * page))
        queries: list[tuple[str, int]] = [
            ("page", va_page | 0x123),
            ("next page", va_page + page + 0x8),
            ("block", va_block | (block // 2 + 0x1238)),
            ("page with AF=0", va_noaf + 0x10),
            ("invalid level 3 entry", va_hole),
            ("unmapped upper table", va_page ^ (1 << (ia0 - 1))),
            ("TTBR1 page", va_up | 0x77),
            ("tagged TTBR0 pointer", 0x3C << 56 | va_page | 0x40),
            ("tagged TTBR1 pointer", (0x3C << 56) | (va_up & mask(55, 0)) | 0x40),
            ("just above TTBR0 range", (1 << ia0) | 0x1000),
        ]
        tcr = _tcr_el1(t0sz=t0sz, t1sz=t1sz, tg0=_TG0_ENC[g], tg1=_TG1_ENC[g], tbi0=tbi0,
                       tbi1=tbi1)
        regs = SysRegs({**_WALK_BASE_REGS, "TCR_EL1": tcr, "TTBR0_EL1": root0,
                        "TTBR1_EL1": root1})
        name = f"{g} T0SZ={t0sz} T1SZ={t1sz} TBI0={tbi0} TBI1={tbi1}"
        out.append(_WalkConfig(name, regs, words, tuple(queries)))
    return out


def reference_translate(regs: SysRegs, mem: PhysMem, va: int) -> int | None:
    """The PA an EL1 access to ``va`` reaches in the EL1&0 regime, or None on any fault:
    ``AT S1E1A`` (no permission check) run by :func:`atlab.at.run_at` at EL2."""
    res = run_at(AtOp.S1E1A, va, regs=regs, mem=mem, cur_el=2, trace=False)
    if res.par is None or res.par.f:
        return None
    return res.par.pa | (va & 0xFFF)


def _translate_cases() -> list[Case]:
    out = []
    for cfg in _walk_configs():
        for what, va in cfg.queries:
            def make(cfg: _WalkConfig = cfg, va: int = va) -> tuple[Any, ...]:
                return cfg.regs, PhysMem(cfg.words), va
            out.append(Case(f"{cfg.name}, VA={va:#x} ({what})", cfg.name, make))
    return out


def _hand_translate(regs: SysRegs, mem: PhysMem, va: int, *, tbi: bool = True,
                    stride9: bool = False, ttbr1: bool = True,
                    block_offset_page: bool = False) -> int | None:
    """A hand walker with switchable mistakes (for the checker's hints and the tests)."""
    tcr = regs["TCR_EL1"]
    upper = bool(bit(va, 55)) and ttbr1
    if upper:
        txsz, g = bits(tcr, 21, 16), decode_tg1(bits(tcr, 31, 30), "TCR_EL1")
        use_tbi, ttbr = bit(tcr, 38) and tbi, regs["TTBR1_EL1"]
    else:
        txsz, g = bits(tcr, 5, 0), decode_tg0(bits(tcr, 15, 14), "TCR_EL1")
        use_tbi, ttbr = bit(tcr, 37) and tbi, regs["TTBR0_EL1"]
    ia = 64 - txsz
    top = 55 if use_tbi else 63
    if bits(va, top, ia) != (mask(top, ia) >> ia if upper else 0):
        return None
    stride = 9 if stride9 else g.stride
    pg = g.pgshift
    level = 3 - (ia - 1 - pg) // stride
    table = ttbr & mask(47, 1)
    first = True
    while True:
        lsb = (3 - level) * stride + pg
        hi = ia - 1 if first else lsb + stride - 1
        first = False
        desc = mem.read64(table + 8 * bits(va, hi, lsb))
        if not desc & 1:
            return None
        if level < 3 and desc & 2:
            table = desc & mask(47, pg)
            level += 1
            continue
        if level == 3 and not desc & 2:
            return None
        if not bit(desc, 10):
            return None
        size = pg if block_offset_page else lsb
        return (desc & mask(47, size)) | (va & mask(size - 1, 0))


TRANSLATE = Exercise(
    "translate", "Translate a VA by hand", _translate_cases, reference_translate, _hex,
    _identity,
    (Mistake("TBI ignored", lambda r, m, v: _hand_translate(r, m, v, tbi=False),
             "TCR_EL1.TBI0/TBI1=1: the top byte is a tag, ignored by the range check"),
     Mistake("wrong stride", lambda r, m, v: _hand_translate(r, m, v, stride9=True),
             "a level resolves granule bits - 3 VA bits: 11 for 16KB, 13 for 64KB"),
     Mistake("TTBR1 ignored", lambda r, m, v: _hand_translate(r, m, v, ttbr1=False),
             "VA bit 55 = 1 selects TTBR1_EL1, with T1SZ and TG1 (TG1 has its own encoding)"),
     Mistake("block offset at the page size",
             lambda r, m, v: _hand_translate(r, m, v, block_offset_page=True),
             "a block at level L keeps VA bits [level_lsb(L)-1:0] as the offset")),
    "walk from TTBRn_EL1: check the VA range, index each level, follow tables, stop at a "
    "block or page (AF must be 1)",
    reference_translate,
)


def check_translate(fn: Callable[[SysRegs, PhysMem, int], int | None], *, quiet: bool = False,
                    file: TextIO | None = None) -> CheckResult:
    """Check ``translate(regs, mem, va) -> PA | None``."""
    return check(TRANSLATE, fn, quiet=quiet, file=file)


# =============================================================================================
# 05 stage 1 permissions
# =============================================================================================


def reference_s1_permissions(p: S1PermBits, el: int, pan: bool,
                             wxn: bool) -> tuple[bool, bool, bool]:
    """(read, write, execute) for ``el`` in EL1&0 (:func:`atlab.perms.compute_s1_permissions`;
    no EPAN, no hardware dirty state)."""
    perms = compute_s1_permissions(p, has_unprivileged=True, nv1=False, el=el, pan=pan,
                                   epan=False, wxn=wxn, hd=False)
    return perms.r, perms.w, perms.x


def _norm_rwx(args: tuple[Any, ...], got: Any) -> tuple[bool, bool, bool]:
    r, w, x = got
    return bool(r), bool(w), bool(x)


def _show_rwx(v: Any) -> str:
    r, w, x = v
    return ("R" if r else "-") + ("W" if w else "-") + ("X" if x else "-")


def _perm_cases() -> list[Case]:
    out = []
    for el in (0, 1):
        for pan in (False, True):
            for wxn in (False, True):
                group = f"EL{el} PAN={int(pan)} WXN={int(wxn)}"
                for ap in range(4):
                    for ap_table in range(4):
                        for uxn, pxn in ((0, 0), (1, 0), (0, 1)):
                            for xn_table in (0, 1):
                                p = S1PermBits(ap=ap, ap_table=ap_table, uxn=uxn, pxn=pxn,
                                               uxn_table=xn_table, pxn_table=0)
                                out.append(_case(
                                    f"{group}, AP={ap:02b} APTable={ap_table:02b} UXN={uxn} "
                                    f"PXN={pxn} UXNTable={xn_table}", group, p, el, pan, wxn))
    return out


def _perms_model(p: S1PermBits, el: int, pan: bool, wxn: bool, *, use_pan: bool = True,
                 el0w_pxn: bool = True, use_aptable: bool = True,
                 use_wxn: bool = True) -> tuple[bool, bool, bool]:
    pr, pw, ur, uw = {0: (1, 1, 0, 0), 1: (1, 1, 1, 1), 2: (1, 0, 0, 0), 3: (1, 0, 1, 0)}[p.ap]
    if use_aptable:
        if p.ap_table & 1:
            ur = uw = 0
        if p.ap_table & 2:
            pw = uw = 0
    px = not (p.pxn or p.pxn_table or (uw and el0w_pxn))
    ux = not (p.uxn or p.uxn_table)
    if pan and use_pan and (ur or uw):
        pr = pw = 0
    r, w, x = (ur, uw, ux) if el == 0 else (pr, pw, px)
    if wxn and use_wxn and w:
        x = False
    return bool(r), bool(w), bool(x)


PERMS = Exercise(
    "s1_permissions", "Stage 1 permissions", _perm_cases, reference_s1_permissions, _show_rwx,
    _norm_rwx,
    (Mistake("PAN ignored", lambda p, e, pan, w: _perms_model(p, e, pan, w, use_pan=False),
             "PSTATE.PAN=1: EL1 gets no data access to memory EL0 can read or write"),
     Mistake("EL0-writable not PXN",
             lambda p, e, pan, w: _perms_model(p, e, pan, w, el0w_pxn=False),
             "memory writable at EL0 is never executable at EL1 (AP=01 implies PXN)"),
     Mistake("APTable ignored",
             lambda p, e, pan, w: _perms_model(p, e, pan, w, use_aptable=False),
             "APTable[0]=1 removes EL0 access, APTable[1]=1 removes write access, below "
             "that table"),
     Mistake("WXN ignored", lambda p, e, pan, w: _perms_model(p, e, pan, w, use_wxn=False),
             "SCTLR_EL1.WXN=1: writable memory is execute-never")),
    "AP[2:1]: 00 EL1 RW, 01 EL1+EL0 RW, 10 EL1 RO, 11 EL1+EL0 RO; then APTable, XN, PAN, WXN",
    reference_s1_permissions,
)


def check_s1_permissions(fn: Callable[[S1PermBits, int, bool, bool], tuple[bool, bool, bool]],
                         *, quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``s1_permissions(p, el, pan, wxn) -> (r, w, x)``."""
    return check(PERMS, fn, quiet=quiet, file=file)


# =============================================================================================
# 06 fix a broken TCR: encode TCR_EL1
# =============================================================================================


def _tg_encoding(decode: Callable[[int, str], Granule], granule: Granule) -> int:
    for enc in range(4):
        try:
            if decode(enc, "TCR_EL1") is granule:
                return enc
        except AtlabError:
            continue
    raise AtlabError(f"no encoding for {granule}")  # pragma: no cover


def _ips_bits(ips: int) -> int:
    text = layout("TCR_EL1")[[f.name for f in layout("TCR_EL1")].index("IPS")].values[ips]
    return int(text.split()[0])


_TcrView = tuple[int, int, str, str, int, int, int]


def _tcr_view(tcr: int) -> _TcrView:
    def gran(decode: Callable[[int, str], Granule], enc: int) -> str:
        try:
            return str(decode(enc, "TCR_EL1"))
        except AtlabError:
            return "reserved"
    return (bits(tcr, 5, 0), bits(tcr, 21, 16), gran(decode_tg0, bits(tcr, 15, 14)),
            gran(decode_tg1, bits(tcr, 31, 30)), _ips_bits(bits(tcr, 34, 32)), bit(tcr, 7),
            bit(tcr, 23))


def reference_make_tcr_el1(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule,
                           ips_bits: int) -> int:
    """TCR_EL1 with both ranges walked (:func:`atlab.sysregs.encode`; the TGn encodings found
    by asking :func:`atlab.walk_s1.decode_tg0`/``decode_tg1``)."""
    ips = next(v for v in range(8) if _ips_bits(v) == ips_bits)
    return encode("TCR_EL1", T0SZ=t0sz, T1SZ=t1sz, TG0=_tg_encoding(decode_tg0, tg0),
                  TG1=_tg_encoding(decode_tg1, tg1), IPS=ips)


def _ref_tcr_cmp(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule, ips_bits: int) -> _TcrView:
    return _tcr_view(reference_make_tcr_el1(t0sz, t1sz, tg0, tg1, ips_bits))


def _norm_tcr(args: tuple[Any, ...], got: Any) -> _TcrView:
    if not isinstance(got, int) or not 0 <= got < 1 << 64:
        raise TypeError(f"return a 64-bit int, not {got!r}")
    return _tcr_view(got)


def _show_tcr(v: Any) -> str:
    t0, t1, g0, g1, ips, e0, e1 = v
    return f"T0SZ={t0} T1SZ={t1} TG0={g0} TG1={g1} IPS={ips} bits EPD0={e0} EPD1={e1}"


def _tcr_cases() -> list[Case]:
    out = []
    for g0 in _GRANULES:
        for g1 in _GRANULES:
            for t0sz, t1sz, ips in ((16, 16, 48), (25, 25, 40), (33, 20, 32), (22, 39, 44),
                                    (28, 28, 36), (24, 17, 42)):
                out.append(_case(f"T0SZ={t0sz} T1SZ={t1sz} TG0={g0} TG1={g1} IPS={ips} bits",
                                 f"TG0={g0} TG1={g1}", t0sz, t1sz, g0, g1, ips))
    return out


def _wrong_tg1_like_tg0(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule, ips: int) -> int:
    v = reference_make_tcr_el1(t0sz, t1sz, tg0, tg1, ips)
    return (v & ~(3 << 30)) | _TG0_ENC[tg1] << 30


def _wrong_tg_swapped(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule, ips: int) -> int:
    v = reference_make_tcr_el1(t0sz, t1sz, tg0, tg1, ips) & ~(3 << 30) & ~(3 << 14)
    return v | _TG1_ENC[tg0] << 14 | _TG0_ENC[tg1] << 30


def _wrong_ips_raw(t0sz: int, t1sz: int, tg0: Granule, tg1: Granule, ips: int) -> int:
    v = reference_make_tcr_el1(t0sz, t1sz, tg0, tg1, ips) & ~(7 << 32)
    return v | (ips & 7) << 32


MAKE_TCR = Exercise(
    "make_tcr_el1", "Fix a broken TCR_EL1", _tcr_cases, _ref_tcr_cmp, _show_tcr, _norm_tcr,
    (Mistake("TG1 encoded like TG0", _wrong_tg1_like_tg0,
             "TG1 has its own encoding: 0b10=4KB, 0b01=16KB, 0b11=64KB (0b00 is reserved); "
             "TG0 is 0b00=4KB, 0b10=16KB, 0b01=64KB"),
     Mistake("TG0 and TG1 encodings swapped", _wrong_tg_swapped,
             "TG0 (bits [15:14]) uses 0b00=4KB, 0b10=16KB, 0b01=64KB; TG1 (bits [31:30]) "
             "uses 0b10=4KB, 0b01=16KB, 0b11=64KB"),
     Mistake("IPS written as a number of bits", _wrong_ips_raw,
             "IPS is an encoding: 0b000=32, 0b001=36, 0b010=40, 0b011=42, 0b100=44, "
             "0b101=48 bits")),
    "print(atlab.sysregs.format_fields('TCR_EL1', value, all_fields=True)) shows what you built",
    reference_make_tcr_el1,
)


def check_make_tcr_el1(fn: Callable[[int, int, Granule, Granule, int], int], *,
                       quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``make_tcr_el1(t0sz, t1sz, tg0, tg1, ips_bits) -> TCR_EL1``."""
    return check(MAKE_TCR, fn, quiet=quiet, file=file)


# =============================================================================================
# 07 which regime and which TTBR does an AT use?
# =============================================================================================

_TTBRS = {"TTBR0_EL1": 0x1000_0000, "TTBR1_EL1": 0x1100_0000, "TTBR0_EL2": 0x1200_0000,
          "TTBR1_EL2": 0x1300_0000}
_BY_BASE = {v: k for k, v in _TTBRS.items()}
# Valid in both TCR_EL2 layouts: T0SZ=16, 4KB; with E2H=1 also T1SZ=16, TG1=4KB.
_TCR_BOTH = encode("TCR_EL1", T0SZ=16, T1SZ=16, TG1=0b10)
_TARGET_OPS = (AtOp.S1E0R, AtOp.S1E1R, AtOp.S1E1WP, AtOp.S1E1A, AtOp.S1E2R, AtOp.S1E2W,
               AtOp.S12E1R, AtOp.S12E0W)


def reference_at_target(op: AtOp, hcr_el2: int, va: int) -> tuple[Regime, str]:
    """The regime ``op`` (executed at EL2) translates in, and the TTBR whose table its walk
    reads first (``"none"``: stage 1 disabled, or VA outside every range): run by
    :func:`atlab.at.run_at` on registers where each TTBR points at a different table."""
    regs = SysRegs({"HCR_EL2": hcr_el2, "SCTLR_EL1": 1, "SCTLR_EL2": 1, "TCR_EL1": _TCR_BOTH,
                    "TCR_EL2": _TCR_BOTH, **_TTBRS})
    res = run_at(op, va, regs=regs, mem=PhysMem(), cur_el=2)
    assert res.regime is not None
    steps = res.trace.steps
    return res.regime.regime, _BY_BASE[steps[0].table_base] if steps else "none"


def _norm_target(args: tuple[Any, ...], got: Any) -> tuple[Regime, str]:
    regime, ttbr = got
    if not isinstance(regime, Regime):
        raise TypeError(f"the first element must be a Regime, not {regime!r}")
    return regime, str(ttbr).upper() if str(ttbr).lower() != "none" else "none"


def _show_target(v: Any) -> str:
    regime, ttbr = v
    return f"{regime}, {ttbr}"


def _target_cases() -> list[Case]:
    out = []
    for e2h in (0, 1):
        for tge in (0, 1):
            hcr = _RW | e2h << 34 | tge << 27
            group = f"HCR_EL2.{{E2H,TGE}}={{{e2h},{tge}}}"
            for op in _TARGET_OPS:
                for va in (0x4000, 0xFFFF_0000_1234_5000):
                    out.append(_case(f"{op} VA={va:#x} at EL2 with {group}", group, op, hcr, va))
    return out


def _target_model(op: AtOp, hcr_el2: int, va: int, *, e2h_alone: bool = False,
                  tge_alone: bool = False, tge_keeps_s1: bool = False,
                  el2_ttbr1: bool = False) -> tuple[Regime, str]:
    e2h, tge = bit(hcr_el2, 34), bit(hcr_el2, 27)
    host = (e2h and tge) or (e2h and e2h_alone) or (tge and tge_alone)
    info = op.info
    if info.stages == 12:
        regime = Regime.EL20 if host else Regime.EL10
    elif info.el == 2:
        regime = Regime.EL20 if e2h else Regime.EL2
    else:
        regime = Regime.EL20 if host else Regime.EL10
    if regime is Regime.EL10 and tge and not tge_keeps_s1:
        return regime, "none"
    upper = bit(va, 55)
    if regime.has_unprivileged or (upper and el2_ttbr1):
        return regime, f"TTBR{upper}_{regime.suffix}"
    return regime, "none" if upper else "TTBR0_EL2"


AT_TARGET = Exercise(
    "at_target", "Which regime and TTBR does an AT use?", _target_cases, reference_at_target,
    _show_target, _norm_target,
    (Mistake("E2H=1 alone taken for the host", lambda o, h, v: _target_model(o, h, v,
                                                                             e2h_alone=True),
             "AT S1E0*/S1E1* use EL2&0 only when HCR_EL2.{E2H,TGE} = {1,1} (ELIsInHost(EL0)); "
             "E2H=1 with TGE=0 is a VHE host running a guest: EL1&0"),
     Mistake("TGE=1 alone taken for the host", lambda o, h, v: _target_model(o, h, v,
                                                                             tge_alone=True),
             "TGE=1 with E2H=0 does not create EL2&0: it disables the EL1&0 stage 1 (flat map)"),
     Mistake("TGE=1 does not disable the EL1&0 stage 1",
             lambda o, h, v: _target_model(o, h, v, tge_keeps_s1=True),
             "AArch64.S1Enabled(): the EL1&0 stage 1 is off when HCR_EL2.TGE=1, so the walk "
             "reads no table"),
     Mistake("the EL2 regime has a TTBR1", lambda o, h, v: _target_model(o, h, v,
                                                                         el2_ttbr1=True),
             "with E2H=0 the EL2 regime has one range (TTBR0_EL2); an upper VA is out of "
             "range")),
    "the regime comes from the op and HCR_EL2.{E2H,TGE}; bit 55 of the VA picks TTBR0/TTBR1 "
    "in the regimes with two ranges (EL1&0, EL2&0)",
    reference_at_target,
)


def check_at_target(fn: Callable[[AtOp, int, int], tuple[Regime, str]], *, quiet: bool = False,
                    file: TextIO | None = None) -> CheckResult:
    """Check ``at_target(op, hcr_el2, va) -> (Regime, ttbr_name | "none")``."""
    return check(AT_TARGET, fn, quiet=quiet, file=file)


# =============================================================================================
# 08 make AT S1E1R use EL2&0
# =============================================================================================


def _el20_view(hcr_before: int, hcr_after: int) -> tuple[str, str]:
    regime = compute_translation_regime(AtOp.S1E1R, SysRegs({"HCR_EL2": hcr_after}), _FEATS)
    changed = (hcr_before ^ hcr_after) & ~(_E2H | _TGE)
    kept = "other bits kept" if not changed else f"other bits changed: {changed:#x}"
    return str(regime.regime), kept


def reference_s1e1r_in_el20(hcr_el2: int) -> int:
    """HCR_EL2 with E2H and TGE set (:func:`atlab.sysregs.encode`), everything else kept."""
    return hcr_el2 | encode("HCR_EL2", E2H=1, TGE=1)


def _ref_el20_cmp(hcr_el2: int) -> tuple[str, str]:
    return _el20_view(hcr_el2, reference_s1e1r_in_el20(hcr_el2))


def _norm_el20(args: tuple[Any, ...], got: Any) -> tuple[str, str]:
    if not isinstance(got, int) or not 0 <= got < 1 << 64:
        raise TypeError(f"return a 64-bit int, not {got!r}")
    return _el20_view(args[0], got)


def _el20_cases() -> list[Case]:
    values = [_RW, _RW | 1, _RW | _E2H, _RW | _TGE, _RW | 1 << 42 | 1 << 43 | 1 << 44,
              _RW | 1 | 1 << 2 | 1 << 12, 0x8000_0000 | 1 << 46, _RW | 0x7F << 3,
              (1 << 64) - 1 - _E2H - _TGE, _RW | _E2H | _TGE, _RW | 1 << 26 | 1 << 30]
    return [_case(f"HCR_EL2={v:#x}", "HCR_EL2 values", v) for v in values]


def _show_el20(v: Any) -> str:
    regime, kept = v
    return f"AT S1E1R uses {regime}, {kept}"


S1E1R_EL20 = Exercise(
    "s1e1r_in_el20", "Make AT S1E1R use EL2&0", _el20_cases, _ref_el20_cmp, _show_el20,
    _norm_el20,
    (Mistake("E2H only", lambda h: h | _E2H,
             "E2H=1 alone puts EL2 in EL2&0, but AT S1E1R still translates for the guest "
             "(EL1&0): TGE=1 is needed too"),
     Mistake("TGE only", lambda h: h | _TGE,
             "TGE=1 alone disables the EL1&0 stage 1; EL2&0 needs E2H=1 as well"),
     Mistake("other bits clobbered", lambda h: _E2H | _TGE,
             "set the two bits with |, keep the rest of HCR_EL2 (RW, VM ...)")),
    "AT S1E1R uses EL2&0 when HCR_EL2.{E2H,TGE} = {1,1}",
    reference_s1e1r_in_el20,
)


def check_s1e1r_in_el20(fn: Callable[[int], int], *, quiet: bool = False,
                        file: TextIO | None = None) -> CheckResult:
    """Check ``s1e1r_in_el20(hcr_el2) -> hcr_el2'``."""
    return check(S1E1R_EL20, fn, quiet=quiet, file=file)


# =============================================================================================
# 09 predict a PAR
# =============================================================================================


@dataclass(frozen=True, slots=True)
class WalkOutcome:
    """How an AT ended: a fault, or a translation to ``pa`` with the MAIR attribute byte
    ``attr`` and the descriptor's shareability ``sh`` (SH[1:0])."""

    fault: Fault | None = None
    pa: int = 0
    attr: int = 0
    sh: int = 0

    def __str__(self) -> str:
        if self.fault is not None:
            return f"fault: {self.fault}"
        return f"PA={self.pa:#x} attr={self.attr:#04x} SH={self.sh:02b}"


def reference_encode_par(outcome: WalkOutcome) -> int:
    """PAR_EL1 for ``outcome``: :meth:`atlab.par.Par.from_fault` or :meth:`Par.success` with
    :func:`atlab.attrs.par_shareability`."""
    if outcome.fault is not None:
        return Par.from_fault(outcome.fault).value
    sh = par_shareability(decode_mair_attr(outcome.attr), outcome.sh)
    return Par.success(outcome.pa, outcome.attr, sh).value


def _ref_par_cmp(outcome: WalkOutcome) -> int:
    return Par(reference_encode_par(outcome)).masked()


def _norm_par(args: tuple[Any, ...], got: Any) -> int:
    if not isinstance(got, int) or not 0 <= got < 1 << 64:
        raise TypeError(f"return a 64-bit int, not {got!r}")
    return Par(got).masked()


def _par_cases() -> list[Case]:
    out = []
    for kind in FaultKind:
        for level in (-1, 0, 1, 2, 3):
            for stage, ptw in ((1, False), (2, False), (2, True)):
                f = Fault(kind, level, stage, ptw)
                try:
                    _ = f.fst
                except AtlabError:
                    continue
                group = f"faults at level {level}" if level == -1 else f"{kind.value} faults"
                out.append(_case(f"{f}", group, WalkOutcome(f),
                                 hint="PAR_EL1.F=1: FST in bits [6:1], PTW bit 8, S bit 9, "
                                 "bit 11 RES1"))
    for attr in (0xFF, 0x44, 0x04, 0x00, 0x0C, 0xBB, 0x4F, 0xF4, 0xAA):
        for sh in (0b00, 0b10, 0b11):
            for pa in (0x4567_8ABC, 0x000F_FFFF_FFFF_F123):
                o = WalkOutcome(None, pa, attr, sh)
                out.append(_case(str(o), f"success, attr {attr:#04x}", o))
    return out


def _wrong_par_level_m1(o: WalkOutcome) -> int:
    f = o.fault
    if f is not None and f.level == -1:
        base = {FaultKind.ADDRESS_SIZE: 0, FaultKind.TRANSLATION: 4,
                FaultKind.SYNC_EXTERNAL_WALK: 0x14}[f.kind]
        v = 1 | ((base - 1) & 0x3F) << 1 | 1 << 11
        return v | (1 << 9 if f.stage == 2 else 0) | (1 << 8 if f.s1ptw else 0)
    return reference_encode_par(o)


def _wrong_par_sh_copied(o: WalkOutcome) -> int:
    if o.fault is None:
        return Par.success(o.pa, o.attr, o.sh).value
    return reference_encode_par(o)


def _wrong_par_no_s(o: WalkOutcome) -> int:
    return reference_encode_par(o) & ~(3 << 8) if o.fault is not None else \
        reference_encode_par(o)


def _wrong_par_pa_offset(o: WalkOutcome) -> int:
    v = reference_encode_par(o)
    return v | (o.pa & 0xFFF) if o.fault is None else v


PREDICT_PAR = Exercise(
    "encode_par", "Predict a PAR_EL1", _par_cases, _ref_par_cmp, _par_text, _norm_par,
    (Mistake("level -1 FST as base + level", _wrong_par_level_m1,
             "level -1 (FEAT_LPA2) has its own codes: translation 0b101011, address size "
             "0b101001, external abort 0b010011"),
     Mistake("SH copied for Device/Non-cacheable", _wrong_par_sh_copied,
             "PAR_EL1.SH is 0b10 (Outer Shareable) for any Device memory and for Normal "
             "Inner+Outer Non-cacheable memory"),
     Mistake("S and PTW not set", _wrong_par_no_s,
             "a stage 2 fault sets PAR.S (bit 9); during the stage 1 walk also PAR.PTW "
             "(bit 8)"),
     Mistake("PA offset bits kept", _wrong_par_pa_offset,
             "PAR_EL1.PA is PA[55:12]: the page offset is not reported")),
    "bits that may differ between implementations (NS, bit 10, bit 11 of a success, [63:48] "
    "of a fault) are ignored by this checker",
    reference_encode_par,
)


def check_encode_par(fn: Callable[[WalkOutcome], int], *, quiet: bool = False,
                     file: TextIO | None = None) -> CheckResult:
    """Check ``encode_par(outcome) -> PAR_EL1``."""
    return check(PREDICT_PAR, fn, quiet=quiet, file=file)


# =============================================================================================
# 10 build tables that give a required PAR
# =============================================================================================

#: The registers of the "build tables" exercise: EL1&0, 4KB granule, T0SZ=25 (39-bit VA,
#: start level 1), TTBR1 walks disabled, 48-bit IPS; MAIR Attr0=Normal WB, Attr1=Normal NC,
#: Attr2=Device-nGnRE.  The op is AT S1E1W executed at EL2.
TABLES_REGS = SysRegs({
    "HCR_EL2": _RW, "SCTLR_EL1": 1, "TTBR0_EL1": 0x4000_0000, "MAIR_EL1": 0x04_44_FF,
    "TCR_EL1": encode("TCR_EL1", T0SZ=25, TG0=0, SH0=3, IRGN0=1, ORGN0=1, EPD1=1, IPS=5),
})
TABLES_OP = AtOp.S1E1W


def _tables_par(mem: PhysMem, va: int) -> int:
    res = run_at(TABLES_OP, va, regs=TABLES_REGS, mem=mem, cur_el=2, trace=False)
    assert res.par is not None
    return res.par.masked()


def _ref_tables_cmp(va: int, want: Par) -> int:
    return want.masked()


def _norm_tables(args: tuple[Any, ...], got: Any) -> int:
    if not isinstance(got, PhysMem):
        raise TypeError(f"return a PhysMem, not {type(got).__name__}")
    return _tables_par(got, args[0])


def _tables_cases() -> list[Case]:
    wants = [
        (0x12_3456_7ABC, Par.success(0x8765_4000, 0xFF, 0b11)),
        (0x00_0020_1000, Par.success(0x4100_0000, 0xFF, 0b10)),
        (0x00_4000_0000, Par.success(0x6000_3000, 0xFF, 0b00)),
        (0x7F_0000_1000, Par.success(0x0900_0000, 0x04, 0b10)),
        (0x10_0000_0000, Par.success(0x5000_0000, 0x44, 0b10)),
        (0x01_0000_0000, Par.from_fault(Fault(FaultKind.TRANSLATION, 1))),
        (0x01_0000_0000, Par.from_fault(Fault(FaultKind.TRANSLATION, 2))),
        (0x01_0000_0000, Par.from_fault(Fault(FaultKind.TRANSLATION, 3))),
        (0x02_0020_0000, Par.from_fault(Fault(FaultKind.ACCESS_FLAG, 3))),
        (0x02_0040_0000, Par.from_fault(Fault(FaultKind.ACCESS_FLAG, 2))),
        (0x03_0000_5000, Par.from_fault(Fault(FaultKind.PERMISSION, 3))),
        (0x03_0060_0000, Par.from_fault(Fault(FaultKind.PERMISSION, 2))),
    ]
    out = []
    for va, want in wants:
        group = "faults" if want.f else "translations"
        out.append(_case(f"AT S1E1W VA={va:#x} must give {want}", group, va, want))
    return out


def _tables_model(va: int, want: Par, *, l3_block: bool = False,
                  forget_af: bool = False) -> PhysMem:
    t = _Tables(Granule.K4, 39, TABLES_REGS["TTBR0_EL1"], 0x4010_0000)
    af = 0 if forget_af else 1
    leaf3 = 0b01 if l3_block else 0b11
    if not want.f:
        mair = TABLES_REGS["MAIR_EL1"]
        idx = next(i for i in range(8) if bits(mair, 8 * i + 7, 8 * i) == want.attr)
        t.map(va, 3, want.pa | idx << 2 | want.sh << 8 | af << 10 | leaf3)
        return PhysMem(t.words)
    fault = Fault.from_fst(want.fault_status)
    if fault.kind is FaultKind.TRANSLATION:
        if fault.level > 1:
            t.entry(va, fault.level)  # the tables above exist, the entry stays invalid
    elif fault.kind is FaultKind.ACCESS_FLAG:
        lvl = fault.level
        t.map(va, lvl, 0x7000_0000 | (leaf3 if lvl == 3 else 0b01) | 3 << 8)
    else:
        lvl = fault.level
        t.map(va, lvl, 0x7000_0000 | (leaf3 if lvl == 3 else 0b01) | 0b10 << 6 | 3 << 8
              | af << 10)
    return PhysMem(t.words)


def reference_tables_for_par(va: int, want: Par) -> PhysMem:
    """Tables (4KB, levels 1-3) for :data:`TABLES_REGS` whose ``AT S1E1W`` of ``va`` gives
    ``want``: a page, or the leaf or missing entry that faults as ``want`` says."""
    return _tables_model(va, want)


TABLES_FOR_PAR = Exercise(
    "tables_for_par", "Build tables that give a required PAR", _tables_cases, _ref_tables_cmp,
    _par_text, _norm_tables,
    (Mistake("page written with the block encoding", lambda v, w: _tables_model(v, w,
                                                                                l3_block=True),
             "a level 3 page descriptor ends in 0b11; 0b01 at level 3 is reserved (Translation "
             "fault)"),
     Mistake("AF forgotten", lambda v, w: _tables_model(v, w, forget_af=True),
             "TCR_EL1.HA=0: a leaf with AF=0 (bit 10) gives an Access flag fault")),
    "run atlab.run_at(TABLES_OP, va, regs=TABLES_REGS, mem=your_mem, cur_el=2) and read its "
    "trace",
    reference_tables_for_par,
)


def check_tables_for_par(fn: Callable[[int, Par], PhysMem], *, quiet: bool = False,
                         file: TextIO | None = None) -> CheckResult:
    """Check ``tables_for_par(va, want) -> PhysMem`` (AT S1E1W with :data:`TABLES_REGS`)."""
    return check(TABLES_FOR_PAR, fn, quiet=quiet, file=file)


# =============================================================================================
# 11 stage 2 start level and concatenated tables
# =============================================================================================


def reference_s2_start(vtcr_el2: int) -> tuple[int, int] | None:
    """(start level, number of concatenated start tables) from
    :func:`atlab.walk_s2.setup_s2_walk`, or None for a configuration that faults
    (``AArch64.S2InvalidSL()``, ``AArch64.S2InconsistentSL()``, TxSZ out of range)."""
    wi = setup_s2_walk(SysRegs({"VTCR_EL2": vtcr_el2}), _FEATS)
    if isinstance(wi, Fault):
        return None
    return wi.sl, wi.concat


def _norm_s2_start(args: tuple[Any, ...], got: Any) -> tuple[int, int] | None:
    if got is None:
        return None
    sl, concat = got
    return int(sl), int(concat)


def _show_s2_start(v: Any) -> str:
    if v is None:
        return "None (level 0 Translation fault)"
    sl, concat = v
    return f"start level {sl}, {concat} concatenated table{'s' if concat > 1 else ''}"


def _s2_start_cases() -> list[Case]:
    out = []
    for g in _GRANULES:
        for t0sz in (16, 20, 24, 25, 26, 28, 30, 32, 34, 36, 39, 42):
            for sl0 in range(4):
                vtcr = encode("VTCR_EL2", T0SZ=t0sz, SL0=sl0, TG0=_TG0_ENC[g], PS=5,
                              RES1_31=1)
                out.append(_case(f"VTCR_EL2={vtcr:#x} ({g}, T0SZ={t0sz}, SL0={sl0:02b})",
                                 f"{g} granule", vtcr))
    return out


def _s2_start_model(vtcr: int, *, stage1_rule: bool = False, sl0_like_16k: bool = False,
                    no_concat: bool = False) -> tuple[int, int] | None:
    g = decode_tg0(bits(vtcr, 15, 14), "VTCR_EL2")
    t0sz, sl0 = bits(vtcr, 5, 0), bits(vtcr, 7, 6)
    ia = 64 - t0sz
    if stage1_rule:
        return start_level(ia, g), 1
    if g is not Granule.K4 and sl0 == 3:
        return None
    if g is Granule.K4 and not sl0_like_16k:
        sl = {0: 2, 1: 1, 2: 0, 3: 3}[sl0]
    else:
        sl = 3 - sl0
    levels = 3 - sl
    lo = levels * g.stride + g.pgshift
    extra = ia - lo - g.stride  # index bits beyond one full table
    if ia <= lo or extra > (0 if no_concat else 4):
        return None
    return sl, 1 << max(0, extra)


S2_START = Exercise(
    "s2_start", "Stage 2 start level and concatenation", _s2_start_cases, reference_s2_start,
    _show_s2_start, _norm_s2_start,
    (Mistake("stage 1 rule used for stage 2", lambda v: _s2_start_model(v, stage1_rule=True),
             "stage 2 does not derive its start level from T0SZ: VTCR_EL2.SL0 chooses it, and "
             "the start level may use up to 16 concatenated tables"),
     Mistake("SL0 decoded like 16KB/64KB for 4KB", lambda v: _s2_start_model(v,
                                                                             sl0_like_16k=True),
             "4KB granule: SL0=0b00 level 2, 0b01 level 1, 0b10 level 0, 0b11 level 3; "
             "16KB/64KB: 0b00 level 3, 0b01 level 2, 0b10 level 1"),
     Mistake("no concatenation", lambda v: _s2_start_model(v, no_concat=True),
             "at stage 2 the start level may resolve up to 4 extra IPA bits with 2..16 "
             "concatenated tables (AArch64.S2InconsistentSL())")),
    "levels = 3 - start level; the start level resolves IPA bits [iasize-1:lsb]; more than "
    "one table's worth of bits means concatenated tables",
    reference_s2_start,
)


def check_s2_start(fn: Callable[[int], tuple[int, int] | None], *, quiet: bool = False,
                   file: TextIO | None = None) -> CheckResult:
    """Check ``s2_start(vtcr_el2) -> (start level, concatenated tables) | None``."""
    return check(S2_START, fn, quiet=quiet, file=file)


# =============================================================================================
# 12 stage 2 fault during the stage 1 walk
# =============================================================================================

_S2_PAGE = 0b11 | 0b1111 << 2 | 0b11 << 6 | 0b11 << 8 | 1 << 10  # Normal WB, RW, ISH, AF
_S2_OFFSET = 0x1_0000_0000  # PA = IPA + offset
_S1_TABLES = {1: 0x4000_0000, 2: 0x8020_0000, 3: 0xC040_0000}  # IPA of the S1 table per level
_S1_DATA = 0x0060_0000


@dataclass(frozen=True, slots=True)
class _S2Config:
    name: str
    vtcr: int
    ia_bits: int
    sl: int


_S2_CONFIGS = (
    _S2Config("VTCR 4KB T0SZ=25 SL0=1 (start level 1)", encode(
        "VTCR_EL2", T0SZ=25, SL0=1, TG0=0, PS=5, SH0=3, RES1_31=1), 39, 1),
    _S2Config("VTCR 4KB T0SZ=16 SL0=2 (start level 0)", encode(
        "VTCR_EL2", T0SZ=16, SL0=2, TG0=0, PS=5, SH0=3, RES1_31=1), 48, 0),
    _S2Config("VTCR 4KB T0SZ=32 SL0=0 (start level 2, 4 tables)", encode(
        "VTCR_EL2", T0SZ=32, SL0=0, TG0=0, PS=5, SH0=3, RES1_31=1), 32, 2),
)


def _s2_fault_scenario(cfg: _S2Config, va: int, hole: tuple[str, int, int] | None
                       ) -> tuple[SysRegs, dict[int, int]]:
    """Stage 1 (4KB, 39-bit, start level 1) tables in IPA space, a stage 2 mapping every page
    the walk needs, and one defect ``(what, ipa, s2_level)``: "invalid", "af", "noread"."""
    words: dict[int, int] = {}
    s2 = _Tables(Granule.K4, cfg.ia_bits, 0x2000_0000, 0x2010_0000, words, sl=cfg.sl)
    root = s2.root
    s1_words: dict[int, int] = {}
    s1 = _Tables(Granule.K4, 39, _S1_TABLES[1], 0, s1_words)
    s1.words[s1.entry(va, 1, create=False) or 0] = _S1_TABLES[2] | 3
    lsb2 = level_lsb(2, Granule.K4)
    s1.words[_S1_TABLES[2] + 8 * bits(va, lsb2 + 8, lsb2)] = _S1_TABLES[3] | 3
    lsb3 = level_lsb(3, Granule.K4)
    s1.words[_S1_TABLES[3] + 8 * bits(va, lsb3 + 8, lsb3)] = _S1_DATA | 0x703
    pages = {*_S1_TABLES.values(), _S1_DATA}
    for ipa in sorted(pages):
        s2.map(ipa, 3, (ipa + _S2_OFFSET) | _S2_PAGE)
    for ipa, value in s1_words.items():
        words[ipa + _S2_OFFSET] = value
    if hole is not None:
        what, ipa, level = hole
        addr = s2.entry(ipa, level, create=False)
        assert addr is not None
        if what == "invalid":
            words[addr] = 0
        elif what == "af":
            words[addr] &= ~(1 << 10)
        else:  # S2AP=0b10: write-only, no read access
            words[addr] = (words[addr] & ~(3 << 6)) | 0b10 << 6
    regs = SysRegs({
        "HCR_EL2": _RW | 1, "SCTLR_EL1": 1, "MAIR_EL1": 0xFF, "TTBR0_EL1": _S1_TABLES[1],
        "TCR_EL1": encode("TCR_EL1", T0SZ=25, TG0=0, SH0=3, EPD1=1, IPS=5),
        "VTCR_EL2": cfg.vtcr, "VTTBR_EL2": root,
    })
    return regs, words


def reference_s2_fault_during_s1(regs: SysRegs, mem: PhysMem, va: int) -> tuple[int, int] | None:
    """(stage 1 level, stage 2 level) of a stage 2 fault on a stage 1 table access, from
    ``AT S12E1R`` at EL2 (:func:`atlab.at.run_at`: the PAR has S=1, PTW=1; the trace names
    the stage 1 level); None when the AT does not fault that way."""
    res = run_at(AtOp.S12E1R, va, regs=regs, mem=mem, cur_el=2)
    f = res.fault
    if f is None or f.stage != 2 or not f.s1ptw:
        return None
    s1_level = [s.level for s in res.trace.steps if s.stage == 1][-1]
    return s1_level, f.level


def _norm_pair(args: tuple[Any, ...], got: Any) -> tuple[int, int] | None:
    if got is None:
        return None
    a, b = got
    return int(a), int(b)


def _show_s2_fault(v: Any) -> str:
    if v is None:
        return "None (no stage 2 fault on the stage 1 walk)"
    s1, s2 = v
    return f"stage 1 level {s1} table access, stage 2 fault at level {s2}"


def _s2_fault_cases() -> list[Case]:
    out = []
    va = 0x12_3456_7000
    for cfg in _S2_CONFIGS:
        defects: list[tuple[str, tuple[str, int, int] | None]] = [("no defect", None)]
        for s1_level, ipa in _S1_TABLES.items():
            for s2_level in range(max(1, cfg.sl), 4):
                defects.append((f"S1 L{s1_level} table IPA {ipa:#x}: S2 L{s2_level} entry "
                                "invalid", ("invalid", ipa, s2_level)))
            defects.append((f"S1 L{s1_level} table IPA {ipa:#x}: S2 L3 AF=0",
                            ("af", ipa, 3)))
            defects.append((f"S1 L{s1_level} table IPA {ipa:#x}: S2 L3 S2AP=10 (no read)",
                            ("noread", ipa, 3)))
        defects.append(("final IPA unmapped at S2 L3", ("invalid", _S1_DATA, 3)))
        for what, hole in defects:
            def make(cfg: _S2Config = cfg, hole: tuple[str, int, int] | None = hole
                     ) -> tuple[Any, ...]:
                regs, words = _s2_fault_scenario(cfg, va, hole)
                return regs, PhysMem(words), va
            out.append(Case(f"{cfg.name}; {what}; AT S12E1R VA={va:#x}", cfg.name, make))
    return out


def _wrong_s2_level_from_s1(regs: SysRegs, mem: PhysMem, va: int) -> tuple[int, int] | None:
    ref = reference_s2_fault_during_s1(regs, mem, va)
    return None if ref is None else (ref[0], ref[0])


def _wrong_final_ipa_counted(regs: SysRegs, mem: PhysMem, va: int) -> tuple[int, int] | None:
    res = run_at(AtOp.S12E1R, va, regs=regs, mem=mem, cur_el=2)
    f = res.fault
    if f is None or f.stage != 2:
        return None
    return [s.level for s in res.trace.steps if s.stage == 1][-1], f.level


S2_FAULT = Exercise(
    "s2_fault_during_s1", "Stage 2 fault during the stage 1 walk", _s2_fault_cases,
    reference_s2_fault_during_s1, _show_s2_fault, _norm_pair,
    (Mistake("stage 1 level reported as the stage 2 level", _wrong_s2_level_from_s1,
             "the PAR/ESR level of a stage 2 fault is the level of the *stage 2* walk that "
             "failed, not the stage 1 level whose table was being read (QEMU 7.2 and KVM once "
             "got this wrong)"),
     Mistake("fault on the final IPA counted as a walk fault", _wrong_final_ipa_counted,
             "a stage 2 fault on the final IPA is not a fault on the stage 1 walk (PTW=0)")),
    "for each stage 1 level, translate the table's IPA through stage 2 "
    "(atlab.walk_s2.walk_s2 with s1ptw=True) before reading the descriptor",
    reference_s2_fault_during_s1,
)


def check_s2_fault_during_s1(fn: Callable[[SysRegs, PhysMem, int], tuple[int, int] | None], *,
                             quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``s2_fault_during_s1(regs, mem, va) -> (s1_level, s2_level) | None``."""
    return check(S2_FAULT, fn, quiet=quiet, file=file)


# =============================================================================================
# 13 combined stage 1 x stage 2 memory attributes
# =============================================================================================


def reference_combine_attrs(s1_attr: int, s2_memattr: int) -> int:
    """``S2CombineS1MemAttrs()`` with HCR_EL2.FWB=0: :func:`atlab.attrs.combine_s1_s2` of the
    MAIR byte and :func:`atlab.attrs.s2_memattr_to_attr` of MemAttr[3:0]."""
    return combine_s1_s2(s1_attr, s2_memattr_to_attr(s2_memattr))


def _attr_name(attr: int) -> str:
    return str(decode_mair_attr(attr))


def _ref_attrs_cmp(s1_attr: int, s2_memattr: int) -> str:
    return _attr_name(reference_combine_attrs(s1_attr, s2_memattr))


def _norm_attrs(args: tuple[Any, ...], got: Any) -> str:
    if not isinstance(got, int) or not 0 <= got <= 0xFF:
        raise TypeError(f"return a MAIR attribute byte, not {got!r}")
    return _attr_name(got)


_S2_MEMATTRS = (0b0000, 0b0001, 0b0010, 0b0011, 0b0101, 0b0110, 0b0111, 0b1001, 0b1010, 0b1011,
                0b1101, 0b1110, 0b1111)


def _attrs_cases() -> list[Case]:
    out = []
    for s1 in (0x00, 0x04, 0x08, 0x0C, 0x44, 0xFF, 0xBB, 0x4F, 0xF4, 0xAA):
        for m in _S2_MEMATTRS:
            out.append(_case(f"stage 1 {s1:#04x} ({_attr_name(s1)}) x stage 2 MemAttr={m:04b}",
                             f"stage 1 {_attr_name(s1)}", s1, m))
    return out


def _wrong_s2_wins(s1: int, m: int) -> int:
    return s2_memattr_to_attr(m)


def _wrong_s1_wins(s1: int, m: int) -> int:
    return s1


def _wrong_device_weaker(s1: int, m: int) -> int:
    s2 = s2_memattr_to_attr(m)
    if s1 >> 4 == 0 and s2 >> 4 == 0:
        return max(bits(s1, 3, 2), bits(s2, 3, 2)) << 2
    return combine_s1_s2(s1, s2)


COMBINE_ATTRS = Exercise(
    "combine_attrs", "Combined stage 1 and stage 2 attributes", _attrs_cases, _ref_attrs_cmp,
    str, _norm_attrs,
    (Mistake("stage 2 overrides stage 1", _wrong_s2_wins,
             "with FWB=0 the stages combine: the more restrictive of the two wins"),
     Mistake("stage 2 ignored", _wrong_s1_wins,
             "stage 2 can make memory more restrictive: Device at either stage gives Device, "
             "Non-cacheable at either stage gives Non-cacheable"),
     Mistake("the less restrictive Device type wins", _wrong_device_weaker,
             "Device at both stages: nGnRnE < nGnRE < nGRE < GRE, the more restrictive wins")),
    "Device beats Normal; Non-cacheable beats Write-Through beats Write-Back, per half",
    reference_combine_attrs,
)


def check_combine_attrs(fn: Callable[[int, int], int], *, quiet: bool = False,
                        file: TextIO | None = None) -> CheckResult:
    """Check ``combine_attrs(s1_attr, s2_memattr) -> attr``."""
    return check(COMBINE_ATTRS, fn, quiet=quiet, file=file)


# =============================================================================================
# 14 emulate one AT for a guest hypervisor: route and path
# =============================================================================================

#: The answers of the NV exercise.
NV_PATHS = ("undefined", "hardware", "forwarded to L1", "fast path", "software walker")


def _accepted_by_fast_path(par_value: int) -> bool:
    """KVM's rule as :func:`atlab.nv.emulate.emulate_at` applies it: keep the hardware PAR on
    success or a stage 1 Permission / Access flag fault."""
    res = AtResult(AtOp.S1E1R, 0, 2, AtDisposition(Disposition.EXECUTE, ""), par=Par(par_value))
    return _accept_fast(res)[0]


def reference_nv_at_path(context: Context, op: AtOp, vhcr_el2: int, fast_path_par: int) -> str:
    """Where an AT executed by ``context`` ends up (:func:`atlab.nv.route_at`), and for a
    trap to L0 whether the fast path's hardware PAR is kept (the rule in
    :func:`atlab.nv.emulate_at`: success or a stage 1 permission/AF fault, never for AT
    S12E*, whose stage 2 L0 must walk in software)."""
    route = route_at(context, op, SysRegs({"HCR_EL2": vhcr_el2}), _FEATS)
    if route.kind is RouteKind.UNDEFINED:
        return "undefined"
    if route.kind is RouteKind.HARDWARE:
        return "hardware"
    if route.kind is RouteKind.FORWARD_L1:
        return "forwarded to L1"
    if _accepted_by_fast_path(fast_path_par) and not op.is_s12:
        return "fast path"
    return "software walker"


_NV_PARS = {
    "success": Par.success(0x4567_8000, 0xFF, 3).value,
    "S1 permission L3": Par.from_fault(Fault(FaultKind.PERMISSION, 3)).value,
    "S1 access flag L2": Par.from_fault(Fault(FaultKind.ACCESS_FLAG, 2)).value,
    "S1 translation L2": Par.from_fault(Fault(FaultKind.TRANSLATION, 2)).value,
    "S2 translation L1 on the S1 walk": Par.from_fault(
        Fault(FaultKind.TRANSLATION, 1, 2, True)).value,
}
_NV_OPS = (AtOp.S1E1R, AtOp.S1E0W, AtOp.S1E1RP, AtOp.S1E2R, AtOp.S1E2W, AtOp.S12E1R,
           AtOp.S12E0W, AtOp.S1E3R)
_NV_HCRS = {"vHCR_EL2=RW": _RW, "vHCR_EL2.AT=1": _RW | 1 << 44,
            "vHCR_EL2.NV=1": _RW | 1 << 42, "vHCR_EL2.{E2H,TGE}={1,1}": _RW | _E2H | _TGE}


def _nv_cases() -> list[Case]:
    out = []
    for ctx in Context:
        for op in _NV_OPS:
            for hname, hcr in _NV_HCRS.items():
                for pname, par in _NV_PARS.items():
                    out.append(_case(f"{ctx.value} executes {op}, {hname}, hardware AT on the "
                                     f"fast path gives {pname}", ctx.value, ctx, op, hcr, par))
    return out


def _nv_model(context: Context, op: AtOp, vhcr: int, par: int, *, l2_ignores_vat: bool = False,
              s12_fast: bool = False, any_fault_ok: bool = False) -> str:
    if l2_ignores_vat and context is Context.L2_EL1 and op.info.el < 2 and op.info.stages == 1:
        return "hardware"
    path = reference_nv_at_path(context, op, vhcr, par)
    if path == "software walker" and s12_fast and _accepted_by_fast_path(par):
        return "fast path"
    if path == "software walker" and any_fault_ok and not op.is_s12:
        return "fast path"
    return path


NV_PATH = Exercise(
    "nv_at_path", "Emulate one AT for a guest hypervisor", _nv_cases, reference_nv_at_path,
    repr, lambda args, got: str(got),
    (Mistake("L1's vHCR_EL2.AT ignored for L2", lambda c, o, h, p: _nv_model(
        c, o, h, p, l2_ignores_vat=True),
        "L0 folds L1's vHCR_EL2.AT into the real HCR_EL2 while L2 runs: with vAT=1, L2's "
        "AT S1E0*/S1E1* trap and L0 forwards them to L1"),
     Mistake("AT S12E* answered by the fast path", lambda c, o, h, p: _nv_model(
         c, o, h, p, s12_fast=True),
        "the hardware never holds L1's stage 2 (only the shadow), so AT S12E* always needs "
        "the software walker for L1's stage 2"),
     Mistake("every fast-path fault accepted", lambda c, o, h, p: _nv_model(
         c, o, h, p, any_fault_ok=True),
        "a translation fault or a stage 2 fault on the fast path may come from L0's view "
        "(holes, shadow), not L1's tables: only success and stage 1 permission/AF faults are "
        "kept")),
    "L1 at vEL2 runs at EL1 with HCR_EL2.NV=1 and AT=1: every AT it executes traps to L0",
    reference_nv_at_path,
)


def check_nv_at_path(fn: Callable[[Context, AtOp, int, int], str], *, quiet: bool = False,
                     file: TextIO | None = None) -> CheckResult:
    """Check ``nv_at_path(context, op, vhcr_el2, fast_path_par) -> one of NV_PATHS``."""
    return check(NV_PATH, fn, quiet=quiet, file=file)


# =============================================================================================
# 15 TLB maintenance after a table change
# =============================================================================================

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
)


def check_tlb_maintenance(fn: Callable[[TableChange], list[tuple[str, int | None]]], *,
                          quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``tlb_maintenance(change) -> [(instruction, Xt or None), ...]``."""
    return check(TLB_MAINTENANCE, fn, quiet=quiet, file=file)


# =============================================================================================
# 16 execute-only for EL0 with permission indirection (FEAT_S1PIE)
# =============================================================================================


def _pie_rights(ppi: int, upi: int, el: int) -> str:
    """The rights ``AArch64.S1IndirectBasePermissions()`` gives EL ``el`` (EL1&0 regime)."""
    p = compute_s1_permissions(S1PermBits(pie=True, ppi=ppi, upi=upi), has_unprivileged=True,
                               nv1=False, el=el, pan=False, epan=False, wxn=False, hd=True)
    return ("R" if p.r else "-") + ("W" if p.w else "-") + ("X" if p.x else "-")


def _pie_view(args: tuple[int, int, int], got: tuple[int, int]) -> tuple[str, str, str]:
    pir, pire0, index = args
    new_pir, new_pire0 = got
    lo = 4 * index
    others = ~(0xF << lo) & mask(63, 0)
    kept = ("other entries kept" if (new_pir & others, new_pire0 & others)
            == (pir & others, pire0 & others) else "other entries changed")
    return (f"EL0 {_pie_rights(new_pir >> lo & 0xF, new_pire0 >> lo & 0xF, 0)}",
            f"EL1 {_pie_rights(new_pir >> lo & 0xF, new_pire0 >> lo & 0xF, 1)}", kept)


def reference_execute_only_el0(pir_el1: int, pire0_el1: int, pi_index: int) -> tuple[int, int]:
    """PIRE0_EL1.Perm<pi_index> = 0b0010 (execute, no read: ``AArch64.S1IndirectBasePermissions()``
    case '0010'); PIR_EL1, which gives EL1's rights, and every other entry unchanged."""
    lo = 4 * pi_index
    return pir_el1, (pire0_el1 & ~(0xF << lo)) | (0b0010 << lo)


def _ref_xo(pir_el1: int, pire0_el1: int, pi_index: int) -> tuple[str, str, str]:
    args = (pir_el1, pire0_el1, pi_index)
    return _pie_view(args, reference_execute_only_el0(*args))


def _norm_xo(args: tuple[Any, ...], got: Any) -> tuple[str, str, str]:
    if (not isinstance(got, tuple) or len(got) != 2
            or not all(isinstance(v, int) and 0 <= v < 1 << 64 for v in got)):
        raise TypeError(f"return (pir_el1, pire0_el1), two 64-bit ints, not {got!r}")
    return _pie_view(args, got)


def _xo_cases() -> list[Case]:
    out = []
    for pir, pire0, index in ((0x5555_5555_5555_5555, 0, 0), (0x5555_5555_5555_5555, 0, 5),
                              (0x0000_0000_0010_0000, 0x0000_0000_0050_0000, 5),
                              (0x5555_5555_5555_5555, 0x1111_1111_1111_1111, 15),
                              (0xC5C5_C5C5_C5C5_C5C5, 0x5555_5555_5555_5555, 3),
                              (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321, 9),
                              (0, 0xFFFF_FFFF_FFFF_FFFF, 7)):
        out.append(_case(f"PIR_EL1={pir:#x} PIRE0_EL1={pire0:#x} PIIndex={index}",
                         "execute-only for EL0", pir, pire0, index))
    for index in (1, 2, 4, 8, 12):
        out.append(_case(f"PIR_EL1=RW everywhere, PIRE0_EL1=RW everywhere, PIIndex={index}",
                         "replace an EL0 RW entry", 0x5555_5555_5555_5555,
                         0x5555_5555_5555_5555, index))
    return out


def _show_xo(v: Any) -> str:
    el0, el1, kept = v
    return f"{el0}, {el1}, {kept}"


def _mistake_pir(pir: int, pire0: int, index: int) -> tuple[int, int]:
    return (pir & ~(0xF << 4 * index)) | (0b0010 << 4 * index), pire0


EXECUTE_ONLY_EL0 = Exercise(
    "execute_only_el0", "Execute-only for EL0 with permission indirection", _xo_cases, _ref_xo,
    _show_xo, _norm_xo,
    (Mistake("PIR_EL1 changed", _mistake_pir,
             "PIR_EL1 gives the privileged (EL1) rights; EL0's come from PIRE0_EL1"),
     Mistake("index not times 4", lambda pir, pire0, i: (pir, (pire0 & ~(0xF << i))
                                                          | (0b0010 << i)),
             "each Perm<m> field is 4 bits wide: Perm<m> is bits [4m+3:4m]"),
     Mistake("RX instead of X", lambda pir, pire0, i: (pir, (pire0 & ~(0xF << 4 * i))
                                                        | (0b0011 << 4 * i)),
             "0b0011 is read and execute: execute-only is 0b0010"),
     Mistake("old entry not cleared", lambda pir, pire0, i: (pir, pire0 | (0b0010 << 4 * i)),
             "OR-ing 0b0010 into an entry that was 0b0101 gives 0b0111 (RWX): clear the four "
             "bits first"),
     Mistake("other entries clobbered", lambda pir, pire0, i: (pir, 0b0010 << 4 * i),
             "keep the other 15 entries of PIRE0_EL1: other pages use them")),
    "EL0's rights come from PIRE0_EL1.Perm<PIIndex>; execute-only is 0b0010",
    reference_execute_only_el0,
)


def check_execute_only_el0(fn: Callable[[int, int, int], tuple[int, int]], *,
                           quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``execute_only_el0(pir_el1, pire0_el1, pi_index) -> (pir_el1', pire0_el1')``."""
    return check(EXECUTE_ONLY_EL0, fn, quiet=quiet, file=file)


# --- the catalogue ---------------------------------------------------------------------------

#: Every exercise by its number in ``exercises/`` (the checker is ``check_<name>``).
EXERCISES: dict[str, Exercise] = {
    "01_decode_descriptor": DECODE,
    "02_walk_geometry": GEOMETRY,
    "03_va_range_and_tbi": VA_RANGE,
    "04_translate_by_hand": TRANSLATE,
    "05_permissions": PERMS,
    "06_fix_tcr": MAKE_TCR,
    "07_at_regime_and_ttbr": AT_TARGET,
    "08_s1e1r_in_el20": S1E1R_EL20,
    "09_predict_par": PREDICT_PAR,
    "10_tables_for_a_par": TABLES_FOR_PAR,
    "11_stage2_start_level": S2_START,
    "12_stage2_fault_during_s1": S2_FAULT,
    "13_combined_attributes": COMBINE_ATTRS,
    "14_emulate_at_for_a_guest": NV_PATH,
    "15_tlb_maintenance": TLB_MAINTENANCE,
    "16_execute_only_el0": EXECUTE_ONLY_EL0,
}
