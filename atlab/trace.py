"""Walk traces: every step of a walk as data, with text and HTML renderings.

Pictures and widgets consume these objects, never the walkers' internals.  A stage 1 step of
a walk that runs under stage 2 carries the stage 2 walk of its table address (``s2``), which
makes the trace two-dimensional.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Protocol


class DescDecoder(Protocol):
    """Walk inputs that can say what a descriptor of their walk means (``S1WalkInfo``,
    ``S2WalkInfo``)."""

    def describe_desc(self, desc: int, kind: str, level: int) -> str:
        """One line: the decoded meaning of ``desc``, a ``kind`` descriptor at ``level``."""
        ...


@dataclass(frozen=True, slots=True)
class WalkStep:
    """One descriptor access of a walk.

    ``ia_hi:ia_lo`` are the input-address bits that formed ``index`` into the table at
    :attr:`table_base`; ``desc_addr`` is the
    address of the descriptor in the walk's own address space (an IPA for a stage 1 walk
    under stage 2) and ``desc_pa`` where it really is.  ``perms`` is the permission state
    accumulated so far.  ``s2`` is the stage 2 walk that translated ``desc_addr``.

    :attr:`meaning` is ``note`` when given, else the descriptor decoded by the walk inputs
    ``decoder`` when it is read (a walk records its steps without formatting them)."""

    stage: int
    level: int
    index: int
    ia_hi: int
    ia_lo: int
    desc_addr: int
    desc_pa: int
    raw: int
    kind: str
    note: str = ""
    perms: str = ""
    s2: tuple[WalkStep, ...] = ()
    is_write: bool = False
    decoder: DescDecoder | None = field(default=None, repr=False)

    @property
    def table_base(self) -> int:
        """The base address of the table read (0 for a descriptor write)."""
        return 0 if self.is_write else self.desc_addr - (self.index << 3)

    @property
    def meaning(self) -> str:
        """The decoded meaning of the descriptor (or what happened instead of a read)."""
        if self.note or self.decoder is None:
            return self.note
        return self.decoder.describe_desc(self.raw, self.kind, self.level)

    def __str__(self) -> str:
        where = f"{self.desc_addr:#x}"
        if self.desc_pa != self.desc_addr:
            where += f" (PA {self.desc_pa:#x})"
        ia = "VA" if self.stage == 1 else "IPA"
        op = "write" if self.is_write else f"[{self.index}] {ia}[{self.ia_hi}:{self.ia_lo}]"
        text = (f"S{self.stage} L{self.level} {op} @ {where} = {self.raw:#018x}"
                f"  {self.kind}: {self.meaning}")
        if self.perms:
            text += f"  | {self.perms}"
        return text


@dataclass(frozen=True, slots=True)
class Trace:
    """A whole translation: stage 1 steps (each with its stage 2 walk), the stage 2 walk of
    the final IPA, and the rule that ended the translation."""

    steps: tuple[WalkStep, ...] = ()
    final_s2: tuple[WalkStep, ...] = ()
    ended: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def s1_accesses(self) -> int:
        return sum(1 for s in self.steps if not s.is_write and s.kind != "not read")

    @property
    def s2_accesses(self) -> int:
        return sum(len(s.s2) for s in self.steps) + len(self.final_s2)

    @property
    def total_accesses(self) -> int:
        """Descriptor reads of the whole translation: (n+1)(m+1)-1 for a full nested walk."""
        return self.s1_accesses + self.s2_accesses

    def lines(self) -> list[str]:
        out = list(self.notes)
        for step in self.steps:
            for s2 in step.s2:
                out.append("    " + str(s2))
            out.append(str(step))
        if self.final_s2:
            out.append("final IPA through stage 2:")
            out.extend("    " + str(s) for s in self.final_s2)
        if self.ended:
            out.append(f"=> {self.ended}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        rows = []
        for step in self.steps:
            for s2 in step.s2:
                rows.append(_row(s2, indent=True))
            rows.append(_row(step, indent=False))
        for s2 in self.final_s2:
            rows.append(_row(s2, indent=True))
        head = ("<tr><th>stage</th><th>level</th><th>index (VA bits)</th><th>descriptor at</th>"
                "<th>value</th><th>meaning</th><th>permissions</th></tr>")
        notes = "".join(f"<div>{html.escape(n)}</div>" for n in self.notes)
        end = f"<div><b>{html.escape(self.ended)}</b></div>" if self.ended else ""
        return f"{notes}<table>{head}{''.join(rows)}</table>{end}"


def _row(step: WalkStep, *, indent: bool) -> str:
    pad = "&nbsp;&nbsp;&nbsp;&nbsp;" if indent else ""
    where = f"{step.desc_addr:#x}"
    if step.desc_pa != step.desc_addr:
        where += f" (PA {step.desc_pa:#x})"
    idx = "write" if step.is_write else f"{step.index} [{step.ia_hi}:{step.ia_lo}]"
    cells = [f"{pad}S{step.stage}", f"L{step.level}", idx, where, f"{step.raw:#018x}",
             f"{step.kind}: {step.meaning}", step.perms]
    return "<tr>" + "".join(f"<td>{html.escape(c) if i else c}</td>"
                            for i, c in enumerate(cells)) + "</tr>"
