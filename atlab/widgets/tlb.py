"""The TLB explorer: a scripted stale-translation lab.

One PE (:class:`atlab.pe.Machine`) runs a short maintenance program on a page the built-in
tables map (:func:`stale_lab`)::

    AT S1E1R, VA          the walk fills the TLB (the leaf says PA old_pa)
    STR new, [leaf]       the page is remapped: the leaf descriptor now says new_pa
    TLBI <op>             invalidate (pending until the DSB and the ISB)
    DSB ISH               the TLBI completes on the other PEs (R_YNJCP)
    ISB                   ... and on this one (R_BLDZX)
    AT S1E1R, VA          the old PA (a stale entry answered) or the new one

Pick the TLBI (a wrong VA or ASID, the wrong regime ...), forget the TLBI, the DSB or the ISB,
and Step: the picture is :func:`atlab.viz_tlb.tlb_table` of each step with the page tables
beside it, and the last AT says whether the TLB still held the old translation.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as w

from atlab.at import run_at
from atlab.builder import S1Builder, scenario_dict
from atlab.errors import AtlabError
from atlab.pe import Machine, PeEvent
from atlab.regime import AtOp, Regime
from atlab.scenario import Scenario, parse_scenario
from atlab.tlb import TlbiOp
from atlab.trace import Trace
from atlab.viz import figure_meta
from atlab.viz_tlb import tlb_table
from atlab.widgets._common import ErrorLine, guarded, image, parse_hex, png_of

__all__ = ["TLBI_CHOICES", "LabPage", "TlbExplorer", "TlbiChoice", "make_tlb_explorer",
           "stale_lab"]


@dataclass(frozen=True, slots=True)
class LabPage:
    """The built-in lab: a non-global 4KB page of the EL1&0 regime (ASID ``asid``, VMID
    ``vmid``), VA ``va`` -> PA ``old_pa``, and the PA of its level 3 descriptor."""

    scenario: Scenario
    va: int
    old_pa: int
    leaf_pa: int
    leaf: int
    asid: int
    vmid: int
    trace: Trace = field(repr=False)


def stale_lab(*, va: int = 0x1000_0000, old_pa: int = 0x4100_0000, asid: int = 5,
              vmid: int = 3) -> LabPage:
    """The lab's tables, built with :class:`atlab.builder.S1Builder` (4KB granule, 48-bit
    VA, tables at 0x40200000), and a walk of ``va`` (what the picture lists)."""
    b = S1Builder(Regime.EL10, tables=(0x4020_0000, 0x4030_0000), asid=asid)
    b.map(va, old_pa, 0x1000, ap="EL1 RW / EL0 RW", ng=True)
    sc = parse_scenario(scenario_dict(name="stale-tlb-lab", s1=[b],
                                      sysregs={"VTTBR_EL2": vmid << 48}))
    walk = run_at(AtOp.S1E1R, va, regs=sc.regs, mem=sc.fresh_memory())
    leaf = walk.trace.steps[-1]
    if leaf.kind != "page":
        raise AtlabError(f"the lab's walk of VA {va:#x} did not end at a page: {leaf.kind}")
    return LabPage(sc, va, old_pa, leaf.desc_pa, leaf.raw, asid, vmid, walk.trace)


@dataclass(frozen=True, slots=True)
class TlbiChoice:
    """A TLBI of the dropdown: the op and the operands it is issued with (``va``/``asid``
    relative to the lab page: ``va_offset`` added to its VA, ``asid_delta`` to its ASID)."""

    op_name: str
    va: bool = False
    asid: bool = False
    va_offset: int = 0
    asid_delta: int = 0

    def operands(self, page: LabPage) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.va:
            out["va"] = page.va + self.va_offset
        if self.asid:
            out["asid"] = page.asid + self.asid_delta
        return out


#: The dropdown's TLBIs, by label: the right ones, then the classic mistakes.
TLBI_CHOICES: dict[str, TlbiChoice] = {
    "TLBI VAE1, VA (ASID 5)": TlbiChoice("VAE1", va=True, asid=True),
    "TLBI VALE1, VA (ASID 5)": TlbiChoice("VALE1", va=True, asid=True),
    "TLBI VAAE1, VA (any ASID)": TlbiChoice("VAAE1", va=True),
    "TLBI ASIDE1 (ASID 5)": TlbiChoice("ASIDE1", asid=True),
    "TLBI VMALLE1": TlbiChoice("VMALLE1"),
    "TLBI VAE1, wrong VA (the next page)": TlbiChoice("VAE1", va=True, asid=True,
                                                      va_offset=0x1000),
    "TLBI VAE1, VA, wrong ASID (6)": TlbiChoice("VAE1", va=True, asid=True, asid_delta=1),
    "TLBI VAE2, VA (the EL2 regime)": TlbiChoice("VAE2", va=True),
}


@dataclass(frozen=True, slots=True)
class _Instr:
    kind: str  # "at", "store", "tlbi", "dsb", "isb"
    text: str
    skipped: bool = False


class TlbExplorer(w.VBox):  # type: ignore[misc]
    """The stale-translation lab.  Step runs the next instruction of :attr:`program` on
    :attr:`machine` (skipping the forgotten ones); Reset (or changing a control) starts
    again with a fresh machine and memory.  :attr:`events` are the steps run so far,
    :attr:`final_pa` the PA the last AT returned once the program has ended, :attr:`meta`
    the :func:`~atlab.viz.figure_meta` of the picture shown."""

    def __init__(self, *, tlbi: str = "TLBI VAE1, VA (ASID 5)", new_pa: int = 0x4A00_0000,
                 theme: str = "light") -> None:
        if tlbi not in TLBI_CHOICES:
            raise AtlabError(f"unknown TLBI choice {tlbi!r}; pick one of: "
                             f"{', '.join(TLBI_CHOICES)}")
        self.page = stale_lab()
        self.theme = theme
        self.tlbi_op = w.Dropdown(options=list(TLBI_CHOICES), value=tlbi, description="TLBI",
                                  layout=w.Layout(width="360px"))
        self.tlbi_op.add_class("atlab-tlb-op")
        self.new_pa = w.Text(value=f"{new_pa:#x}", description="new PA",
                             continuous_update=False, layout=w.Layout(width="220px"))
        self.new_pa.add_class("atlab-tlb-new-pa")
        self.forget_tlbi = w.Checkbox(value=False, description="forget the TLBI", indent=False,
                                      layout=w.Layout(width="140px"))
        self.forget_tlbi.add_class("atlab-tlb-forget-tlbi")
        self.forget_dsb = w.Checkbox(value=False, description="forget the DSB", indent=False,
                                     layout=w.Layout(width="140px"))
        self.forget_dsb.add_class("atlab-tlb-forget-dsb")
        self.forget_isb = w.Checkbox(value=False, description="forget the ISB", indent=False,
                                     layout=w.Layout(width="140px"))
        self.forget_isb.add_class("atlab-tlb-forget-isb")
        self.step_button = w.Button(description="Step ▶", layout=w.Layout(width="90px"))
        self.step_button.add_class("atlab-tlb-step")
        self.run_button = w.Button(description="Run all ▶▶", layout=w.Layout(width="100px"))
        self.run_button.add_class("atlab-tlb-run")
        self.reset_button = w.Button(description="Reset", layout=w.Layout(width="80px"))
        self.reset_button.add_class("atlab-tlb-reset")
        self.tlbi_help = w.HTML()
        self.tlbi_help.add_class("atlab-tlb-help")
        self.listing_html = w.HTML()
        self.listing_html.add_class("atlab-tlb-listing")
        self.verdict_html = w.HTML()
        self.verdict_html.add_class("atlab-tlb-verdict")
        self.picture = image()
        self.picture.add_class("atlab-tlb-picture")
        self.error = ErrorLine()
        self.program: list[_Instr] = []
        self.machine: Machine | None = None
        self.position = 0  # instructions of the program run (or skipped) so far
        self.new_pa_value: int | None = None
        self.final_pa: int | None = None
        self.verdict = ""
        self.meta: dict[str, Any] = {}  # figure_meta() of the picture shown
        p = self.page
        super().__init__([
            w.HTML(f"<b>TLB explorer</b> — a stale translation: VA <code>{p.va:#x}</code> "
                   f"(ASID {p.asid}, VMID {p.vmid}) maps PA <code>{p.old_pa:#x}</code>; the "
                   f"program remaps it and invalidates the TLB"),
            w.HBox([self.tlbi_op, self.new_pa]), self.tlbi_help,
            w.HBox([self.forget_tlbi, self.forget_dsb, self.forget_isb]),
            w.HBox([self.step_button, self.run_button, self.reset_button]), self.error,
            w.HBox([self.listing_html, self.verdict_html]), self.picture,
        ])
        self.add_class("atlab-tlb-explorer")
        for ctl in (self.tlbi_op, self.new_pa, self.forget_tlbi, self.forget_dsb,
                    self.forget_isb):
            ctl.observe(lambda _c: self.reset(), names="value")
        self.step_button.on_click(lambda _b: self.step())
        self.run_button.on_click(lambda _b: self.run_all())
        self.reset_button.on_click(lambda _b: self.reset())
        self.reset()

    # --- the program -----------------------------------------------------------------------
    @property
    def choice(self) -> TlbiChoice:
        return TLBI_CHOICES[str(self.tlbi_op.value)]

    def _parse_new_pa(self) -> int:
        pa = parse_hex(str(self.new_pa.value), "new PA", bits=48)
        if pa & 0xFFF:
            raise AtlabError(f"new PA {pa:#x} is not 4KB aligned (the page is 4KB)")
        if pa == self.page.old_pa:
            raise AtlabError(f"new PA {pa:#x} is the page's PA already: pick another one")
        return pa

    def _new_leaf(self, pa: int) -> int:
        return (self.page.leaf & ~0xFFFF_FFFF_F000) | pa  # OA = descriptor bits [47:12]

    def _build_program(self, pa: int) -> list[_Instr]:
        c = self.choice
        args = ", ".join(f"{k}={v:#x}" for k, v in c.operands(self.page).items())
        va = self.page.va
        return [
            _Instr("at", f"AT S1E1R, {va:#x}"),
            _Instr("store", f"STR {self._new_leaf(pa):#018x} -> [{self.page.leaf_pa:#x}]"
                   "  // remap the page"),
            _Instr("tlbi", f"TLBI {c.op_name}" + (f" ({args})" if args else ""),
                   skipped=bool(self.forget_tlbi.value)),
            _Instr("dsb", "DSB ISH", skipped=bool(self.forget_dsb.value)),
            _Instr("isb", "ISB", skipped=bool(self.forget_isb.value)),
            _Instr("at", f"AT S1E1R, {va:#x}"),
        ]

    @property
    def done(self) -> bool:
        """The program has run to its end (False while the input is invalid)."""
        return self.machine is not None and self.position >= len(self.program)

    @property
    def events(self) -> list[PeEvent]:
        return [] if self.machine is None else list(self.machine.history)

    @property
    def stale(self) -> bool | None:
        """After the program: the last AT returned the old PA (None before the end)."""
        return None if self.final_pa is None else self.final_pa == self.page.old_pa

    # --- controls --------------------------------------------------------------------------
    @guarded
    def reset(self) -> None:
        """Start again: a fresh machine and memory, the program built from the controls."""
        self.machine = None
        self.program = []
        self.position = 0
        self.final_pa = None
        self.new_pa_value = None
        self.tlbi_help.value = ""
        try:
            pa = self._parse_new_pa()
        except AtlabError:
            self.listing_html.value = ""
            self.verdict_html.value = "<b>verdict:</b> —"
            raise
        self.tlbi_help.value = (f"<i>{html.escape(str(TlbiOp[self.choice.op_name]))}: "
                                f"{html.escape(TlbiOp[self.choice.op_name].describe())}</i>")
        self.new_pa_value = pa
        self.program = self._build_program(pa)
        self.machine = Machine(self.page.scenario.regs, self.page.scenario.fresh_memory())
        self._show(None, "Press Step: the program runs one instruction at a time.")

    @guarded
    def step(self) -> None:
        """Run the next instruction that is not forgotten (nothing at the end)."""
        self._step()

    @guarded
    def run_all(self) -> None:
        """Run the rest of the program."""
        self._ready()
        while not self.done:
            self._step()

    def _ready(self) -> None:
        if self.machine is None or self.new_pa_value is None:
            self._parse_new_pa()  # raises what is wrong with it
            raise AtlabError("press Reset first (the program is not set up)")

    def _step(self) -> None:
        self._ready()
        assert self.machine is not None and self.new_pa_value is not None
        while not self.done and self.program[self.position].skipped:
            self.position += 1
        if self.done:
            return
        m, ins, page = self.machine, self.program[self.position], self.page
        if ins.kind == "at":
            m.at(AtOp.S1E1R, page.va)
        elif ins.kind == "store":
            m.store(page.leaf_pa, self._new_leaf(self.new_pa_value))
        elif ins.kind == "tlbi":
            m.tlbi(TlbiOp[self.choice.op_name], **self.choice.operands(page))
        elif ins.kind == "dsb":
            m.dsb()
        else:
            m.isb()
        self.position += 1
        while not self.done and self.program[self.position].skipped:
            self.position += 1
        event = m.history[-1]
        self._show(event, self._verdict(event))

    # --- output ----------------------------------------------------------------------------
    def _verdict(self, event: PeEvent) -> str:
        page, new = self.page, self.new_pa_value
        look = event.lookup
        if event.kind == "at" and look is not None:
            par = look.par
            pa = None if par is None or par.f else par.pa
            if self.done:
                self.final_pa = pa
            if pa == page.old_pa and len(self.events) > 1:
                seq = f" #{look.entry.seq}" if look.entry is not None else ""
                return (f"AT returned the OLD PA {pa:#x}: stale — TLB entry{seq} answered "
                        "(a hit: the tables were not read)")
            if pa == new:
                return (f"AT returned the new PA {pa:#x}: the TLBI removed the entry, the "
                        "walk read the new descriptor")
            if pa == page.old_pa:
                return f"AT filled the TLB: PA {pa:#x} ({len(event.tlbs[0])} entries)"
            return f"AT: {look.result}"
        if event.kind == "store":
            return (f"the descriptor now maps PA {new:#x}; the TLB still holds the old "
                    f"translation to {page.old_pa:#x} until it is invalidated")
        if event.kind == "tlbi" or event.note:
            return f"{event.text}: {event.note}"
        pending = self.machine.pending() if self.machine is not None else []
        if not pending:
            return f"{event.text}: no TLBI is pending, nothing completes"
        if event.kind == "dsb":
            return (f"{event.text}: the TLBI is complete on every other PE; on this one "
                    "(the issuer) it completes at the next ISB (R_BLDZX)")
        return (f"{event.text}: the TLBI is still pending — no DSB since it was issued "
                "(R_YNJCP)")

    def _listing(self) -> str:
        items = []
        last = self._last_run()
        for i, ins in enumerate(self.program):
            text = html.escape(ins.text)
            code = f"<code style='white-space:nowrap'>{text}</code>"
            if ins.skipped:
                items.append(f"<li style='color:#707070'><s>{text}</s> (forgotten)</li>")
            elif i == last:
                items.append(f"<li class='atlab-tlb-current'><b>▶ {code}</b></li>")
            elif i < self.position:
                items.append(f"<li>✓ {code}</li>")
            else:
                items.append(f"<li style='color:#707070'>{code}</li>")
        return "<b>program (PE0)</b><ol style='margin:0'>" + "".join(items) + "</ol>"

    def _last_run(self) -> int:
        """The index of the instruction run last (-1 before the first step)."""
        for i in range(self.position - 1, -1, -1):
            if not self.program[i].skipped:
                return i
        return -1

    def _show(self, event: PeEvent | None, verdict: str) -> None:
        assert self.machine is not None
        source = event if event is not None else self.machine.tlbs[0]
        fig = tlb_table(source, page_tables=self.page.trace, mem=self.machine.mem,
                        theme=self.theme)
        self.meta = figure_meta(fig)
        self.picture.value = png_of(fig)
        self.listing_html.value = self._listing()
        self.verdict = verdict
        colour = "#D55E00" if self.stale else "#009E73" if self.stale is False else "inherit"
        # last: the browser test times an interaction until the verdict changes
        self.verdict_html.value = (f"<b>verdict:</b> <span class='atlab-tlb-verdict-text' "
                                   f"style='color:{colour}'>{html.escape(verdict)}</span>")


def make_tlb_explorer(*, tlbi: str = "TLBI VAE1, VA (ASID 5)", new_pa: int = 0x4A00_0000,
                      theme: str = "light") -> TlbExplorer:
    return TlbExplorer(tlbi=tlbi, new_pa=new_pa, theme=theme)
