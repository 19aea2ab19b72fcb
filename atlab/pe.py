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

from dataclasses import dataclass, field

from atlab.errors import AtlabError
from atlab.features import FeatureSet
from atlab.memory import PhysMem
from atlab.regime import AtOp
from atlab.sysregs import SysRegs
from atlab.tlb import Tlb, TlbEntry, TlbiOp, TlbiResult, TlbLookup, TlbPolicy

__all__ = ["Machine", "PeEvent"]


@dataclass(frozen=True, slots=True)
class PeEvent:
    """One instruction a PE executed: its text, what it did, the entries that left the TLBs
    at that step (``removed``: (PE, entry) pairs), and every PE's TLB after it."""

    pe: int
    kind: str  # "at", "tlbi", "dsb", "isb", "msr", "store"
    text: str
    note: str = ""
    lookup: TlbLookup | None = None
    tlbi: TlbiResult | None = None
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
        # Validate the operands and find out how it executes, without removing anything yet.
        res = self.tlbs[pe].tlbi(op, regs=regs, va=va, asid=asid, ipa=ipa,
                                 features=self.features, cur_el=self.cur_el)
        args = ", ".join(f"{k}={v:#x}" for k, v in (("va", va), ("asid", asid), ("ipa", ipa))
                         if v is not None)
        text = f"{op}" + (f" ({args})" if args else "")
        if res.exception is not None:
            self._log(pe, "tlbi", text, f"{res.why}: {res.exception}", tlbi=res)
            return
        targets = tuple(range(self.pes)) if res.broadcast else (pe,)
        self._pending.append(_Pending(op, regs, {"va": va, "asid": asid, "ipa": ipa},
                                      self.cur_el, pe, targets))
        where = "every PE" if res.broadcast else f"PE{pe}"
        self._log(pe, "tlbi", text, f"issued for {where}; complete after DSB" +
                  (" + ISB" if pe in targets else ""), tlbi=res)

    def dsb(self, *, pe: int = 0) -> None:
        """DSB: the TLBIs ``pe`` issued complete on the other PEs (R_YNJCP)."""
        self._check(pe)
        removed: list[tuple[int, TlbEntry]] = []
        for p in self._pending:
            if p.issuer == pe:
                p.synced = True
                removed += self._complete(p, [t for t in p.targets if t != pe])
        self._gc()
        self._log(pe, "dsb", "DSB ISH", _removed_note(removed, "completes"),
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
        self._pending = [p for p in self._pending if set(p.targets) - p.done]

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.history)


def _removed_note(removed: list[tuple[int, TlbEntry]], verb: str) -> str:
    if not removed:
        return ""
    return f"{verb} the TLBI: " + ", ".join(f"PE{pe} #{e.seq}" for pe, e in removed) + " gone"
