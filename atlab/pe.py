"""PEs running short maintenance programs: descriptor stores, MSR, TLBI, DSB, ISB and AT,
each PE with its own TLB (:mod:`atlab.tlb`), the memory shared.

When a TLBI takes effect is the point of the exercise.  The architecture says a TLBI "can
complete at any time after it is issued" (R_YNJCP) and is only *guaranteed* complete:

- on the other PEs of its domain once the issuing PE executes a DSB (R_YNJCP, R_DCJQM);
- on the issuing PE once that DSB is followed by a Context synchronization event, such as
  an ISB (R_BLDZX, without FEAT_ETS2: later instructions may have been translated already).

atlab takes the latest completion the rules allow, so a program that forgets a step sees the
stale entry: a TLBI is *pending* until the DSB (other PEs) or the DSB and then an ISB (the
issuing PE).  A register write (MSR) likewise takes effect at the next ISB.  A descriptor
store is seen by the next walk at once (the walker reads memory; only the TLB is stale).

>>> from atlab import AtOp, PhysMem, SysRegs
>>> from atlab.tlb import TlbiOp
>>> regs = SysRegs.from_mapping({"HCR_EL2": "0x80000000", "SCTLR_EL1": "0x30d00801",
...     "TCR_EL1": "0x500803510", "TTBR0_EL1": "0x40200000", "MAIR_EL1": "0xff"})
>>> mem = PhysMem({0x40200120: 0x40201003, 0x40201688: 0x40202003,
...                0x40202598: 0x40203003, 0x40203C48: 0x45678703})
>>> m = Machine(regs, mem)
>>> hex(m.at(AtOp.S1E1R, 0x123456789000).par.pa)
'0x45678000'
>>> m.store(0x40203C48, 0x4ABCD703)
>>> m.tlbi(TlbiOp.VAE1, va=0x123456789000)
>>> m.dsb()
>>> hex(m.at(AtOp.S1E1R, 0x123456789000).par.pa)  # not complete on this PE before the ISB
'0x45678000'
>>> m.isb()
>>> hex(m.at(AtOp.S1E1R, 0x123456789000).par.pa)
'0x4abcd000'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from atlab.errors import AtlabError, clip
from atlab.features import FeatureSet
from atlab.memory import PA_LIMIT, PhysMem
from atlab.par import Par
from atlab.regime import AtOp
from atlab.scenario import MISSING, Scenario, parse_scenario, read_file
from atlab.sysregs import SysRegs, parse_int
from atlab.tlb import (
    Replacement,
    Tlb,
    TlbEntry,
    TlbiOp,
    TlbiRoute,
    TlbLookup,
    TlbPolicy,
    tlbi_route,
)

__all__ = ["DSB_DOMAINS", "STEP_KINDS", "Machine", "PeEvent", "Step", "TlbProgram",
           "load_tlb_programs", "parse_tlb_program"]


#: The DSB domains (the barrier's option): Inner Shareable, Full system, Outer Shareable,
#: Non-shareable.
DSB_DOMAINS = ("ISH", "SY", "OSH", "NSH")


@dataclass(frozen=True, slots=True)
class PeEvent:
    """One instruction a PE executed: its text, what it did, the entries that left the TLBs
    at that step (``removed``: (PE, entry) pairs), and every PE's TLB after it."""

    pe: int
    kind: str  # "at", "tlbi", "dsb", "isb", "msr", "store"
    text: str
    note: str = ""
    lookup: TlbLookup | None = None
    route: TlbiRoute | None = None  # how a TLBI executed (trapped, UNDEFINED, broadcast)
    removed: tuple[tuple[int, TlbEntry], ...] = ()
    tlbs: tuple[Tlb, ...] = ()

    def __str__(self) -> str:
        head = f"PE{self.pe}: {self.text}"
        return f"{head:<44} {self.note}" if self.note else head


@dataclass(slots=True)
class _Pending:
    """A TLBI issued and not yet complete everywhere."""

    op: TlbiOp
    regs: SysRegs
    operands: dict[str, int | None]
    cur_el: int
    issuer: int
    targets: tuple[int, ...]
    synced: bool = False  # the issuer executed a DSB after it
    done: set[int] = field(default_factory=set)


class Machine:
    """``pes`` PEs sharing ``mem``, each starting with ``regs`` and an empty TLB.

    Mutable on purpose, like a CPU running a program: every instruction appends a
    :class:`PeEvent` to :attr:`history` (what the TLB pictures and widgets consume)."""

    def __init__(self, regs: SysRegs, mem: PhysMem, *, pes: int = 1,
                 policy: TlbPolicy | None = None, features: FeatureSet | None = None,
                 cur_el: int = 2) -> None:
        if pes < 1:
            raise AtlabError(f"a machine needs at least one PE, not {pes}")
        self.mem = mem
        self.features = features if features is not None else FeatureSet.all()
        self.cur_el = cur_el
        self.regs = [regs] * pes
        self.tlbs = [Tlb(policy=policy or TlbPolicy())] * pes
        self.history: list[PeEvent] = []
        self._msr: list[dict[str, int]] = [{} for _ in range(pes)]
        self._pending: list[_Pending] = []

    @property
    def pes(self) -> int:
        return len(self.tlbs)

    def _check(self, pe: int) -> None:
        if not 0 <= pe < self.pes:
            raise AtlabError(f"no PE{pe}: the machine has {self.pes}")

    def _log(self, pe: int, kind: str, text: str, note: str = "", **kw: object) -> None:
        self.history.append(PeEvent(pe, kind, text, note, tlbs=tuple(self.tlbs),
                                    **kw))  # type: ignore[arg-type]

    # --- instructions ------------------------------------------------------------------------
    def at(self, op: AtOp, va: int, *, pe: int = 0, pan: int | None = None) -> TlbLookup:
        """``AT <op>`` on ``pe``, looked up in its TLB (R_NPZWX: IMPLEMENTATION DEFINED
        whether an AT may be answered by a TLB; atlab's TLB model says it may)."""
        self._check(pe)
        look = self.tlbs[pe].translate(op, va, regs=self.regs[pe], mem=self.mem,
                                       features=self.features, cur_el=self.cur_el, pan=pan)
        self.tlbs[pe] = look.tlb
        what = "hit" if look.hit else "miss"
        self._log(pe, "at", f"AT {op.name}, {va:#x}", f"TLB {what}: {look.result.par}",
                  lookup=look)
        return look

    def store(self, pa: int, value: int, *, pe: int = 0) -> None:
        """A 64-bit store to memory (a descriptor update): walks see it at once."""
        self._check(pe)
        self.mem.write64(pa, value, purpose="STR")
        self._log(pe, "store", f"STR {value:#018x} -> [{pa:#x}]")

    def msr(self, name: str, value: int, *, pe: int = 0) -> None:
        """A system register write, in effect from the next ISB on ``pe``."""
        self._check(pe)
        self.regs[pe].replace(**{name: value})  # validates the name and value now
        self._msr[pe][name] = value
        self._log(pe, "msr", f"MSR {name}, {value:#x}", "takes effect at the next ISB")

    def tlbi(self, op: TlbiOp, *, pe: int = 0, va: int | None = None, asid: int | None = None,
             ipa: int | None = None) -> None:
        """Issue ``TLBI <op>`` on ``pe``: pending until the DSB (and, on ``pe`` itself, the
        ISB after it).  A trapped or UNDEFINED TLBI is logged with its exception."""
        self._check(pe)
        regs = self.regs[pe]
        op.check_operands(va=va, asid=asid, ipa=ipa)
        res = tlbi_route(op, regs=regs, cur_el=self.cur_el)  # nothing is removed yet
        args = ", ".join(f"{k}={v:#x}" for k, v in (("va", va), ("asid", asid), ("ipa", ipa))
                         if v is not None)
        text = f"{op}" + (f" ({args})" if args else "")
        if res.exception is not None:
            self._log(pe, "tlbi", text, f"{res.why}: {res.exception}", route=res)
            return
        targets = tuple(range(self.pes)) if res.broadcast else (pe,)
        self._pending.append(_Pending(op, regs, {"va": va, "asid": asid, "ipa": ipa},
                                      self.cur_el, pe, targets))
        note = (f"broadcast: complete on the other PEs at the DSB, on PE{pe} after DSB + ISB"
                if res.broadcast else f"for PE{pe}: complete after DSB + ISB")
        self._log(pe, "tlbi", text, note, route=res)

    def dsb(self, *, pe: int = 0, domain: str = "ISH") -> None:
        """DSB <domain>: the TLBIs ``pe`` issued complete on the other PEs (R_YNJCP) — when
        the domain covers them: ``NSH`` completes them on ``pe`` only (R_PSMWS: a DSB NSH is
        enough for a local TLBI, not for a broadcast one)."""
        self._check(pe)
        dom = domain.upper()
        if dom not in DSB_DOMAINS:
            raise AtlabError(f"DSB {domain}: the domain is one of {', '.join(DSB_DOMAINS)}")
        removed: list[tuple[int, TlbEntry]] = []
        for p in self._pending:
            if p.issuer == pe:
                p.synced = True
                if dom != "NSH":
                    removed += self._complete(p, [t for t in p.targets if t != pe])
        self._gc()
        self._log(pe, "dsb", f"DSB {dom}", _removed_note(removed, "completes"),
                  removed=tuple(removed))

    def isb(self, *, pe: int = 0) -> None:
        """ISB: a Context synchronization event on ``pe``: its register writes take effect,
        and its TLBIs already followed by a DSB complete on ``pe`` itself (R_BLDZX)."""
        self._check(pe)
        if self._msr[pe]:
            self.regs[pe] = self.regs[pe].replace(**self._msr[pe])
            self._msr[pe] = {}
        removed: list[tuple[int, TlbEntry]] = []
        for p in self._pending:
            if p.issuer == pe and p.synced and pe in p.targets:
                removed += self._complete(p, [pe])
        self._gc()
        self._log(pe, "isb", "ISB", _removed_note(removed, "completes"),
                  removed=tuple(removed))

    def pending(self) -> list[str]:
        """The TLBIs issued and not complete everywhere yet."""
        return [f"{p.op} from PE{p.issuer}" for p in self._pending]

    # --- helpers -----------------------------------------------------------------------------
    def _complete(self, p: _Pending, pes: list[int]) -> list[tuple[int, TlbEntry]]:
        out: list[tuple[int, TlbEntry]] = []
        for t in pes:
            if t in p.done:
                continue
            res = self.tlbs[t].tlbi(p.op, regs=p.regs, features=self.features,
                                    cur_el=p.cur_el, **p.operands)  # type: ignore[arg-type]
            self.tlbs[t] = res.tlb
            out += [(t, e) for e in res.removed]
            p.done.add(t)
        return out

    def _gc(self) -> None:
        # A TLBI stays pending while some target has not completed it.  After a DSB NSH the
        # other PEs may never complete it; it then stays pending until a DSB ISH/SY.
        self._pending = [p for p in self._pending if set(p.targets) - p.done]

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.history)


def _removed_note(removed: list[tuple[int, TlbEntry]], verb: str) -> str:
    if not removed:
        return ""
    return f"{verb} the TLBI: " + ", ".join(f"PE{pe} #{e.seq}" for pe, e in removed) + " gone"


# --- programs in scenario files -----------------------------------------------------------------

#: How many bits each numeric operand of a program step has: a VA and a stored or written
#: value are 64-bit, an ASID 16-bit, an IPA at most 52-bit, PSTATE.PAN one bit.
_OPERAND_BITS = {"va": 64, "asid": 16, "ipa": 52, "value": 64, "pan": 1}

#: The instruction keys a program step may have (exactly one per step).
STEP_KINDS = ("at", "store", "msr", "tlbi", "dsb", "isb")
_STEP_KEYS = {
    "at": {"va", "pan", "expected_par", "expected_pa", "expected_hit"},
    "store": {"value"},
    "msr": {"value"},
    "tlbi": {"va", "asid", "ipa"},
    "dsb": set(),
    "isb": set(),
}


@dataclass(frozen=True, slots=True)
class Step:
    """One instruction of a program: ``kind`` is a :data:`STEP_KINDS` name; ``arg`` the
    operation (an :class:`AtOp`, a :class:`TlbiOp`, a register name, or the PA stored to)."""

    kind: str
    pe: int
    arg: AtOp | TlbiOp | str | int | None = None
    operands: tuple[tuple[str, int], ...] = ()
    expected_par: int | None = None  # checked when ``check_par``
    check_par: bool = False
    expected_hit: bool | None = None
    expected_pa: int | None = None  # a successful PAR with this PA


@dataclass(frozen=True, slots=True)
class TlbProgram:
    """A scenario (registers and memory) and a program to run on ``pes`` PEs."""

    scenario: Scenario
    steps: tuple[Step, ...]
    pes: int = 1
    policy: TlbPolicy = field(default_factory=TlbPolicy)

    def machine(self) -> Machine:
        sc = self.scenario
        return Machine(sc.regs, sc.fresh_memory(), pes=self.pes, policy=self.policy,
                       features=sc.features, cur_el=sc.el)

    def run(self) -> tuple[Machine, list[str]]:
        """Run every step; return the machine and the expectation mismatches."""
        m = self.machine()
        problems: list[str] = []
        for n, s in enumerate(self.steps):
            try:
                self._step(m, n, s, problems)
            except AtlabError as exc:
                raise AtlabError(f"program step {n} ({s.kind}): {exc}") from None
        return m, problems

    @staticmethod
    def _step(m: Machine, n: int, s: Step, problems: list[str]) -> None:
        """Execute one step on ``m``; append its expectation mismatches to ``problems``."""
        ops = dict(s.operands)
        if s.kind == "at":
            assert isinstance(s.arg, AtOp)
            look = m.at(s.arg, ops["va"], pe=s.pe, pan=ops.get("pan"))
            got = look.result.par
            if s.check_par and (None if got is None else got.masked()) != (
                    None if s.expected_par is None else Par(s.expected_par).masked()):
                want = "no PAR" if s.expected_par is None else str(Par(s.expected_par))
                problems.append(f"step {n} (AT {s.arg.name}): expected {want}, got "
                                f"{got if got is not None else look.result.exception}")
            if s.expected_pa is not None and (got is None or got.f or got.pa
                                              != s.expected_pa):
                problems.append(f"step {n} (AT {s.arg.name}): expected PA "
                                f"{s.expected_pa:#x}, got "
                                f"{got if got is not None else look.result.exception}")
            if s.expected_hit is not None and look.hit is not s.expected_hit:
                problems.append(f"step {n} (AT {s.arg.name}): expected a TLB "
                                f"{'hit' if s.expected_hit else 'miss'}, got a "
                                f"{'hit' if look.hit else 'miss'}")
        elif s.kind == "store":
            assert isinstance(s.arg, int)
            m.store(s.arg, ops["value"], pe=s.pe)
        elif s.kind == "msr":
            assert isinstance(s.arg, str)
            m.msr(s.arg, ops["value"], pe=s.pe)
        elif s.kind == "tlbi":
            assert isinstance(s.arg, TlbiOp)
            m.tlbi(s.arg, pe=s.pe, **ops)
        elif s.kind == "dsb":
            m.dsb(pe=s.pe, domain=s.arg if isinstance(s.arg, str) else "ISH")
        else:
            m.isb(pe=s.pe)


def _parse_step(raw: object, n: int, pes: int) -> Step:
    if not isinstance(raw, Mapping):
        raise AtlabError(f"program step {n} must be a mapping such as {{tlbi: VAE1, va: 0x1000}}")
    kinds = [k for k in STEP_KINDS if k in raw]
    if len(kinds) != 1:
        raise AtlabError(f"program step {n} needs exactly one of {', '.join(STEP_KINDS)}")
    kind = kinds[0]
    extra = set(map(str, raw)) - {kind, "pe"} - _STEP_KEYS[kind]
    if extra:
        raise AtlabError(f"program step {n} ({kind}): unknown key(s) {', '.join(sorted(extra))}")
    pe = raw.get("pe", 0)
    if isinstance(pe, bool) or not isinstance(pe, int) or not 0 <= pe < pes:
        raise AtlabError(f"program step {n}: 'pe' must be 0..{pes - 1}, not {clip(pe)}")
    value = raw[kind]
    ops = {k: parse_int(raw[k], what=f"program step {n} {k}") for k in
           ("va", "asid", "ipa", "value", "pan") if k in raw}
    for k, v in ops.items():
        if v >> _OPERAND_BITS[k]:
            raise AtlabError(f"program step {n} ({kind}): {k} {clip(v)} does not fit in "
                             f"{_OPERAND_BITS[k]} bit{'s' if _OPERAND_BITS[k] > 1 else ''}")
    if kind == "at":
        if "va" not in ops:
            raise AtlabError(f"program step {n} (at): needs 'va'")
        op = AtOp.parse(str(value))
        exp = raw.get("expected_par", MISSING)
        hit = raw.get("expected_hit")
        if hit is not None and not isinstance(hit, bool):
            raise AtlabError(f"program step {n}: 'expected_hit' must be true or false")
        pa = raw.get("expected_pa")
        par = (None if exp is None or exp is MISSING else
               parse_int(exp, what=f"program step {n} expected_par"))
        if par is not None and par >> 64:
            raise AtlabError(f"program step {n} (at): expected_par {clip(par)} does not fit "
                             "in 64 bits")
        want_pa = None if pa is None else parse_int(pa, what=f"program step {n} expected_pa")
        if want_pa is not None and want_pa >= PA_LIMIT:
            raise AtlabError(f"program step {n} (at): expected_pa {clip(want_pa)} is not "
                             "below 2^56")
        return Step(kind, pe, op, tuple(ops.items()), par, exp is not MISSING, hit, want_pa)
    if kind == "tlbi":
        try:
            op_t = TlbiOp.parse(str(value))
            op_t.check_operands(**{k: v for k, v in ops.items() if k in ("va", "asid", "ipa")})
        except AtlabError as exc:
            raise AtlabError(f"program step {n}: {exc}") from None
        return Step(kind, pe, op_t, tuple(ops.items()))
    if kind in ("store", "msr"):
        if "value" not in ops:
            raise AtlabError(f"program step {n} ({kind}): needs 'value'")
        if kind == "store":
            pa = parse_int(value, what=f"program step {n} store address")
            if pa & 7 or pa >= PA_LIMIT:
                raise AtlabError(f"program step {n}: store address {clip(pa)} is not 8-byte "
                                 "aligned and below 2^56")
            return Step(kind, pe, pa, tuple(ops.items()))
        SysRegs().replace(**{str(value): ops["value"]})  # a known register and a fitting value
        return Step(kind, pe, str(value), tuple(ops.items()))
    if kind == "dsb" and isinstance(value, str) and value.upper() in DSB_DOMAINS:
        return Step(kind, pe, value.upper())
    if value is not True and value is not None:
        raise AtlabError(f"program step {n}: {kind} takes true" +
                         (f" or a domain ({', '.join(DSB_DOMAINS)})" if kind == "dsb" else "") +
                         f", not {clip(value)}")
    return Step(kind, pe)


def parse_tlb_program(obj: object, *, source: str = "<program>", index: int | None = None
                      ) -> TlbProgram:
    """A scenario with a ``program`` (a list of steps), ``pes`` and a ``tlb`` policy."""
    sc = parse_scenario(obj, source=source, index=index)
    assert isinstance(obj, Mapping)
    where = f"{source}: {sc.name}"
    try:
        pes = obj.get("pes", 1)
        if isinstance(pes, bool) or not isinstance(pes, int) or not 1 <= pes <= 8:
            raise AtlabError(f"'pes' must be 1..8, not {clip(pes)}")
        raw_policy = obj.get("tlb") or {}
        if not isinstance(raw_policy, Mapping):
            raise AtlabError("'tlb' must be a mapping (capacity, replacement, walk_cache, "
                             "stage2_entries)")
        extra = set(map(str, raw_policy)) - {"capacity", "replacement", "walk_cache",
                                             "stage2_entries"}
        if extra:
            raise AtlabError(f"'tlb': unknown key(s) {', '.join(sorted(extra))}")
        try:
            replacement = Replacement(str(raw_policy.get("replacement", "lru")).lower())
        except ValueError:
            raise AtlabError("'tlb.replacement' must be fifo or lru") from None
        capacity = raw_policy.get("capacity")
        if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int)):
            raise AtlabError(f"'tlb.capacity' must be a number or null, not {clip(capacity)}")
        flags = {}
        for k in ("walk_cache", "stage2_entries"):
            v = raw_policy.get(k, True)
            if not isinstance(v, bool):
                raise AtlabError(f"'tlb.{k}' must be true or false")
            flags[k] = v
        policy = TlbPolicy(capacity, replacement, flags["walk_cache"], flags["stage2_entries"])
        raw = obj.get("program")
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes) or not raw:
            raise AtlabError("'program' must be a non-empty list of steps")
        steps = tuple(_parse_step(s, n, pes) for n, s in enumerate(raw))
    except AtlabError as exc:
        raise AtlabError(f"{where}: {exc}") from None
    return TlbProgram(sc, steps, pes, policy)


def load_tlb_programs(path: str) -> list[TlbProgram]:
    """Every program scenario in a JSON or YAML file (one mapping or a list)."""
    obj = read_file(path)
    items = obj if isinstance(obj, list) else [obj]
    return [parse_tlb_program(o, source=path, index=i if isinstance(obj, list) else None)
            for i, o in enumerate(items)]
