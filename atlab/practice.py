"""Seeded practice problems, OSTEP style: "give me a random walk to do by hand".

Each generator takes a seed and returns a :class:`Problem`: a question, the registers and the
memory words that state it, and the AT operations to answer. The same seed always gives the
same problem. The answer is *not* stored in the problem: :meth:`Problem.answer` runs atlab's
walker (:func:`atlab.run_at`) on the problem when asked, so it can never disagree with the
model, and :meth:`Problem.widget` hides it behind a "show answer" button.

=======================  =======  =====================================================
generator                chapter  the problem
=======================  =======  =====================================================
:func:`walk_problem`     02       one stage 1 walk: the descriptors read, and PAR_EL1
:func:`permission_problem` 03     one page, five ATs: which succeed, which fault where
:func:`stage2_problem`   07       a two-stage walk: PA or fault (stage, level, PTW), reads
=======================  =======  =====================================================

>>> p = walk_problem(7)
>>> p == walk_problem(7) and p.kind == "walk"
True
>>> walk_problem("7")
Traceback (most recent call last):
...
atlab.errors.AtlabError: seed must be a non-negative int, not '7'
"""

from __future__ import annotations

import html
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atlab.at import AtResult, run_at
from atlab.builder import S1Builder, S2Builder, scenario_dict
from atlab.errors import AtlabError, clip
from atlab.granule import Granule, level_lsb
from atlab.memory import PhysMem
from atlab.regime import AtOp, Regime
from atlab.scenario import parse_scenario
from atlab.sysregs import SysRegs, format_fields

if TYPE_CHECKING:
    import ipywidgets

#: Where the generated tables live (a small, hand-friendly physical range).
TABLES = (0x4020_0000, 0x4040_0000)
#: The registers each problem prints, in this order (those the walk reads).
SHOWN = ("HCR_EL2", "SCTLR_EL1", "TCR_EL1", "TTBR0_EL1", "MAIR_EL1", "VTCR_EL2", "VTTBR_EL2")
_HCR_RW = 1 << 31


@dataclass(frozen=True, slots=True)
class Answer:
    """What atlab's walker says for each AT of a problem."""

    results: tuple[AtResult, ...]

    def text(self) -> str:
        """Per AT: PAR_EL1 (or the exception), then the descriptors read, one per line."""
        out = []
        for r in self.results:
            head = f"AT {r.op.name} {r.va:#x}: "
            head += str(r.par) if r.par is not None else str(r.exception)
            out.append(head)
            out.extend(f"    {line}" for line in str(r.trace).splitlines())
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True, slots=True)
class Problem:
    """A practice problem: everything needed to work it by hand, and nothing of the answer.

    ``words`` is the memory (physical address, 64-bit word) -- every word not listed reads
    as 0; ``ops`` the ATs to answer, executed at ``cur_el`` with PSTATE.PAN = ``pan``."""

    kind: str
    seed: int
    title: str
    question: str
    regs: SysRegs
    words: tuple[tuple[int, int], ...]
    ops: tuple[tuple[AtOp, int], ...]
    cur_el: int = 2
    pan: int = 0

    def memory(self) -> PhysMem:
        """A fresh copy of the problem's memory."""
        return PhysMem(dict(self.words))

    def answer(self) -> Answer:
        """The answer, computed now by :func:`atlab.run_at` on the problem as stated."""
        return Answer(tuple(run_at(op, va, regs=self.regs, mem=self.memory(),
                                   cur_el=self.cur_el, pan=self.pan) for op, va in self.ops))

    def text(self) -> str:
        """The problem as plain text: question, registers (value and fields), memory, ATs."""
        lines = [f"{self.title} (seed {self.seed})", "", self.question, "", "Registers:"]
        for name in SHOWN:
            if name in self.regs:
                lines.append(f"  {name} = {self.regs[name]:#x}")
                lines.append(f"      {format_fields(name, self.regs[name])}")
        lines += ["", "Memory (64-bit words; every other word reads as 0):"]
        lines += [f"  {pa:#012x}: {value:#018x}" for pa, value in self.words]
        lines += ["", f"Execute at EL{self.cur_el}, PSTATE.PAN={self.pan}:"]
        lines += [f"  AT {op.name}, VA {va:#x}" for op, va in self.ops]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def _repr_markdown_(self) -> str:
        return "```\n" + self.text() + "\n```"

    def widget(self) -> ipywidgets.VBox:
        """The problem with a "show answer" button (needs ipywidgets); never displays itself."""
        import ipywidgets as w

        problem = w.HTML(f"<pre>{html.escape(self.text())}</pre>")
        shown = w.HTML("")
        shown.add_class("atlab-practice-answer")
        button = w.Button(description="show answer")
        button.add_class("atlab-practice-show")

        def reveal(_: object = None) -> None:
            shown.value = f"<pre>{html.escape(self.answer().text())}</pre>"
            button.disabled = True

        button.on_click(reveal)
        box = w.VBox([problem, button, shown])
        box.add_class("atlab-practice")
        box.reveal = reveal
        box.answer_html = shown
        return box


def _rng(seed: object) -> random.Random:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise AtlabError(f"seed must be a non-negative int, not {clip(seed)}")
    return random.Random(seed)


def _words(mem: PhysMem) -> tuple[tuple[int, int], ...]:
    return tuple(sorted((pa, value) for pa, value in mem if value))


_VA_BITS = {Granule.K4: (39, 42, 48), Granule.K16: (36, 40, 47), Granule.K64: (42, 48)}


def walk_problem(seed: int) -> Problem:
    """Chapter 02: one stage 1 walk (EL1&0, stage 1 only) to do by hand. The granule, the VA
    size, a page or a block, and the outcome (success, unmapped VA, Access flag clear, output
    address too large for TCR_EL1.IPS) all come from ``seed``."""
    rng = _rng(seed)
    granule = rng.choice((Granule.K4, Granule.K4, Granule.K16, Granule.K64))
    va_bits = rng.choice(_VA_BITS[granule])
    block = rng.random() < 0.3
    size = 1 << (level_lsb(2, granule) if block else granule.pgshift)
    outcome = rng.choice(("success", "success", "unmapped", "access flag", "address size"))
    va = rng.randrange(0, 1 << va_bits) & ~(size - 1)
    pa_top = 1 << 40 if outcome == "address size" else 1 << 32
    pa = rng.randrange(1 << 32 if outcome == "address size" else 1 << 31, pa_top) & ~(size - 1)
    b = S1Builder(Regime.EL10, granule=granule, va_bits=va_bits, tables=TABLES)
    b.map(va, pa, size, ap="EL1 RW / EL0 RW", af=outcome != "access flag")
    regs = b.regs().replace(HCR_EL2=_HCR_RW)
    if outcome == "address size":  # TCR_EL1.IPS = 0b000: a 32-bit output address size
        regs = regs.replace(TCR_EL1=regs["TCR_EL1"] & ~(0b111 << 32))
    ask = va + rng.randrange(size)
    if outcome == "unmapped":  # the neighbouring page or block, in the same last table
        ask ^= size
    what = "block" if block else "page"
    return Problem("walk", seed, "Practice: a stage 1 walk by hand",
                   f"The {granule} EL1&0 tables map one {what}. Walk AT S1E1R by hand: for each "
                   "level, the VA bits that index the table, the descriptor's address and value, "
                   "and what it means; then the PAR_EL1 value (F, PA or FST and level).",
                   regs, _words(b.memory()), ((AtOp.S1E1R, ask),))


_APS = ("EL1 RW", "EL1 RW / EL0 RW", "EL1 RO", "EL1 RO / EL0 RO")


def permission_problem(seed: int) -> Problem:
    """Chapter 03: one 4KB page with seeded AP[2:1], UXN/PXN, maybe an APTable on the level 2
    table descriptor and PSTATE.PAN; five ATs to answer (EL0 and EL1, read and write, and the
    PAN-checking S1E1RP)."""
    rng = _rng(seed)
    va = rng.randrange(0, 1 << 39) & ~0xFFF
    pa = rng.randrange(1 << 31, 1 << 32) & ~0xFFF
    b = S1Builder(Regime.EL10, va_bits=39, tables=TABLES)
    b.map(va, pa, 0x1000, ap=rng.choice(_APS), uxn=rng.random() < 0.5,
          pxn=rng.random() < 0.5)
    if rng.random() < 0.4:
        b.set_table_attrs(va, 2, ap_table=rng.choice((0b01, 0b10, 0b11)))
    pan = rng.choice((0, 1))
    ask = va + (rng.randrange(0x1000) & ~0x7)
    ops = tuple((op, ask) for op in (AtOp.S1E0R, AtOp.S1E0W, AtOp.S1E1R, AtOp.S1E1W,
                                     AtOp.S1E1RP))
    return Problem("permissions", seed, "Practice: permissions by hand",
                   "One 4KB page is mapped. Decode its leaf descriptor (AP[2:1], UXN, PXN) and "
                   "the level 2 table descriptor above it (APTable), then say for each AT "
                   "whether it succeeds or takes a Permission fault (and at which level). "
                   "S1E1RP also applies PSTATE.PAN.",
                   b.regs().replace(HCR_EL2=_HCR_RW), _words(b.memory()), ops, pan=pan)


def stage2_problem(seed: int) -> Problem:
    """Chapter 07: a guest VA through both stages (AT S12E1R). The IPA size (so the stage 2
    start level and concatenation), the stage 1 size and the outcome (success, a stage 2 hole
    under one of stage 1's tables, or under the final IPA) come from ``seed``."""
    rng = _rng(seed)
    ipa_bits = rng.choice((32, 36, 39, 40, 42))
    va_bits = rng.choice((39, 48))
    outcome = rng.choice(("success", "success", "hole under a stage 1 table",
                          "hole under the final IPA"))
    va = rng.randrange(0, 1 << va_bits) & ~0xFFF
    ipa = rng.randrange(1 << 31, 1 << min(ipa_bits, 32)) & ~0xFFF  # above stage 1's tables
    pa = rng.randrange(1 << 31, 1 << 32) & ~0xFFF
    s1 = S1Builder(Regime.EL10, va_bits=va_bits, tables=(0x4020_0000, 0x4030_0000))
    s1.map(va, ipa, 0x1000, ap="EL1 RW / EL0 RW")
    s2 = S2Builder(ipa_bits=ipa_bits, tables=(0x4040_0000, 0x4080_0000))
    table_ipas = sorted({step.table_base for step in run_at(
        AtOp.S1E1R, va, regs=s1.regs(), mem=s1.memory()).trace.steps})
    base = 0x5000_0000 + (rng.randrange(0x100) << 16)  # where stage 2 puts stage 1's tables
    for t in table_ipas:
        s2.map(t, base + (t - 0x4020_0000), 0x1000)
    if outcome != "hole under the final IPA":
        s2.map(ipa, pa, 0x1000)
    sc = parse_scenario(scenario_dict(name="practice", s1=[s1], s2=s2))
    words = dict(_words(sc.fresh_memory()))
    if outcome == "hole under a stage 1 table":  # stage 2 forgets one of stage 1's tables
        before = dict(s2.words())
        s2.unmap(rng.choice(table_ipas), 0x1000)
        after = dict(s2.words())
        for addr in before.keys() - after.keys():
            words.pop(addr, None)
        words.update(after)
        words = {addr: value for addr, value in words.items() if value}
    return Problem("stage2", seed, "Practice: a two-stage walk by hand",
                   "The guest's stage 1 tables (TTBR0_EL1) live at IPAs; stage 2 (VTTBR_EL2, "
                   "VTCR_EL2) maps them, and the guest's page. Walk AT S12E1R by hand: the "
                   "IPA, then the PA, or the fault (stage, level, and PTW: was it a stage 1 "
                   "table's address that faulted?); count the descriptor reads.",
                   sc.regs, tuple(sorted(words.items())), ((AtOp.S12E1R, va + (
                       rng.randrange(0x1000) & ~0x7)),))


#: The generators, by chapter notebook.
GENERATORS: dict[str, Callable[[int], Problem]] = {
    "02_stage1_walk": walk_problem,
    "03_permissions_and_faults": permission_problem,
    "07_stage2_2d_walk": stage2_problem,
}


__all__ = ["GENERATORS", "Answer", "Problem", "permission_problem", "stage2_problem",
           "walk_problem"]
