"""The regime explorer: HCR_EL2.{E2H,TGE}, the EL and the AT op -> the translation regime, the
registers it uses, and the PAR on a loaded scenario."""

from __future__ import annotations

import html

import ipywidgets as w

from atlab.at import AtResult, run_at
from atlab.bits import bit, set_bits
from atlab.errors import AtlabError
from atlab.features import FeatureSet
from atlab.regime import (
    AtOp,
    Disposition,
    Regime,
    RegimeChoice,
    at_disposition,
    compute_translation_regime,
)
from atlab.scenario import Scenario
from atlab.sysregs import SysRegs
from atlab.widgets._common import ErrorLine, guarded, parse_hex

HCR_E2H_BIT = 34
HCR_TGE_BIT = 27
HCR_VM_BIT = 0

#: The rows of the {E2H,TGE} x op table: a representative op and the ops it stands for.
OP_GROUPS: tuple[tuple[AtOp, str], ...] = (
    (AtOp.S1E0R, "S1E0R/W"),
    (AtOp.S1E1R, "S1E1R/W, S1E1RP/WP, S1E1A"),
    (AtOp.S1E2R, "S1E2R/W, S1E2A"),
    (AtOp.S12E1R, "S12E0R/W, S12E1R/W"),
    (AtOp.S1E3R, "S1E3R/W, S1E3A"),
)
COLUMNS = ((0, 0), (0, 1), (1, 0), (1, 1))


def group_of(op: AtOp) -> int:
    """The row of ``op`` in :data:`OP_GROUPS`."""
    info = op.info
    if info.stages == 12:
        return 3
    return {0: 0, 1: 1, 2: 2, 3: 4}[info.el]


def with_e2h_tge(regs: SysRegs, e2h: int, tge: int) -> SysRegs:
    hcr = set_bits(set_bits(regs["HCR_EL2"], HCR_E2H_BIT, HCR_E2H_BIT, e2h), HCR_TGE_BIT,
                   HCR_TGE_BIT, tge)
    return regs.replace(HCR_EL2=hcr)


def regime_registers(choice: RegimeChoice, va: int, regs: SysRegs) -> list[str]:
    """The registers a translation in ``choice`` reads: its TTBR (TTBR0 or TTBR1 by VA bit 55
    for a two-range regime), TCR, SCTLR and MAIR, plus VTTBR_EL2/VTCR_EL2 when an AT S12E*
    has stage 2 enabled (HCR_EL2.VM=1).

    >>> c = compute_translation_regime(AtOp.S1E1R, SysRegs({"HCR_EL2": 0x488000000}),
    ...                                FeatureSet.all())
    >>> regime_registers(c, 0x1000, SysRegs())
    ['TTBR0_EL2', 'TCR_EL2', 'SCTLR_EL2', 'MAIR_EL2']
    """
    regime = choice.regime
    suffix = regime.suffix
    if regime.has_unprivileged:
        ttbr = f"TTBR{bit(va, 55)}_{suffix}"
    else:
        ttbr = f"TTBR0_{suffix}"
    out = [ttbr, f"TCR_{suffix}", f"SCTLR_{suffix}", f"MAIR_{suffix}"]
    if choice.stage2 and bit(regs["HCR_EL2"], HCR_VM_BIT):
        out += ["VTTBR_EL2", "VTCR_EL2"]
    return out


def cell_text(op: AtOp, regs: SysRegs, features: FeatureSet) -> str:
    """What one cell of the {E2H,TGE} x op table says: the regime, the EL whose permissions
    apply, and '+ S2' / 'S1 off' where that is the story."""
    c = compute_translation_regime(op, regs, features)
    text = f"{c.regime}, EL{c.el}"
    if c.stage2:
        text += " + S2"
    if c.regime is Regime.EL10 and regs.field("HCR_EL2", "TGE"):
        text += " (S1 off: TGE=1)"
    return text


class RegimeExplorer(w.VBox):  # type: ignore[misc]
    """Toggle HCR_EL2.E2H and TGE, the EL and the AT op; see the regime, its registers, the PAR
    the op returns on ``scenario`` and the {E2H,TGE} x op table with the current cell lit.

    State after each interaction: :attr:`choice` (a :class:`RegimeChoice`, or None when the
    op is UNDEFINED or trapped at the chosen EL: it translates in no regime there),
    :attr:`result` (the :class:`AtResult`, or None), :attr:`registers`."""

    def __init__(self, scenario: Scenario, *, op: AtOp | None = None,
                 va: int | None = None) -> None:
        self.scenario = scenario
        first = scenario.ops[0] if scenario.ops else None
        op = op or (first.op if first else AtOp.S1E1R)
        va = va if va is not None else (first.va if first else 0)
        regs = scenario.regs
        self.e2h = w.ToggleButtons(options=[("E2H=0", 0), ("E2H=1", 1)],
                                   value=regs.field("HCR_EL2", "E2H"),
                                   description="HCR_EL2", style={"button_width": "70px"})
        self.tge = w.ToggleButtons(options=[("TGE=0", 0), ("TGE=1", 1)],
                                   value=regs.field("HCR_EL2", "TGE"), description="",
                                   style={"button_width": "70px"})
        self.el = w.ToggleButtons(options=[("EL1", 1), ("EL2", 2), ("EL3", 3)],
                                  value=scenario.el, description="runs at",
                                  style={"button_width": "55px"})
        self.op = w.Dropdown(options=[(f"AT {o.name}", o) for o in AtOp], value=op,
                             description="op", layout=w.Layout(width="200px"))
        self.va = w.Text(value=f"{va:#x}", description="VA", continuous_update=False,
                         layout=w.Layout(width="260px"))
        for ctl, cls in ((self.e2h, "atlab-regime-e2h"), (self.tge, "atlab-regime-tge"),
                         (self.el, "atlab-regime-el"), (self.op, "atlab-regime-op"),
                         (self.va, "atlab-regime-va")):
            ctl.add_class(cls)
        self.regime_html = w.HTML()
        self.regime_html.add_class("atlab-regime-out")
        self.registers_html = w.HTML()
        self.registers_html.add_class("atlab-regime-registers")
        self.par_html = w.HTML()
        self.par_html.add_class("atlab-regime-par")
        self.table_html = w.HTML()
        self.table_html.add_class("atlab-regime-table")
        self.error = ErrorLine()
        self.choice: RegimeChoice | None = None
        self.result: AtResult | None = None
        self.registers: list[str] = []
        super().__init__([
            w.HTML(f"<b>Regime explorer</b> — scenario <code>{html.escape(scenario.name)}"
                   "</code>"),
            w.HBox([self.e2h, self.tge]), w.HBox([self.el, self.op, self.va]), self.error,
            self.regime_html, self.registers_html, self.par_html, self.table_html,
        ])
        self.add_class("atlab-regime-explorer")
        for ctl in (self.e2h, self.tge, self.el, self.op, self.va):
            ctl.observe(self._on_change, names="value")
        self.update()

    def _on_change(self, _change: object) -> None:
        self.update()

    def regs(self) -> SysRegs:
        """The scenario's registers with the toggled HCR_EL2.{E2H,TGE}."""
        return with_e2h_tge(self.scenario.regs, int(self.e2h.value), int(self.tge.value))

    @guarded
    def update(self) -> None:
        try:
            problem = self._update()
        except Exception:
            self.choice = None
            self.result = None
            self.registers = []
            self.par_html.value = "<b>result:</b> —"
            raise
        if problem:  # the regime is shown; only the AT cannot run here
            raise AtlabError(problem)

    def _update(self) -> str:
        # The outputs are assigned together at the end, the regime line last (the browser
        # test times an interaction until that line changes).
        regs = self.regs()
        feats = self.scenario.features
        op: AtOp = self.op.value
        table = self._table(regs, op)
        self.table_html.value = table
        va = parse_hex(self.va.value, "VA")
        choice = compute_translation_regime(op, regs, feats)
        registers = regime_registers(choice, va, regs)
        problem = ""
        res: AtResult | None = None
        try:
            res = run_at(op, va, regs=regs, mem=self.scenario.fresh_memory(), features=feats,
                         cur_el=int(self.el.value), trace=False)
            outcome = str(res.par) if res.par is not None else str(res.exception)
        except AtlabError as exc:
            problem = f"cannot execute {op} here: {exc}"
            outcome = "—"
        self.choice, self.result, self.registers = choice, res, registers
        regs_txt = ", ".join(f"{name}={regs[name]:#x}" for name in registers)
        self.registers_html.value = f"<b>registers:</b> <code>{html.escape(regs_txt)}</code>"
        self.par_html.value = (f"<b>result:</b> <code class='atlab-regime-result'>"
                               f"{html.escape(outcome)}</code>")
        try:
            disp = at_disposition(op, int(self.el.value), regs, feats)
        except AtlabError:  # the EL cannot run code here: `problem` says why
            disp = None
        if disp is None or disp.kind is Disposition.EXECUTE:
            self.regime_html.value = (
                f"<b>regime:</b> <span class='atlab-regime-name'>"
                f"{html.escape(str(choice.regime))}</span>"
                f"{' + stage 2' if choice.stage2 else ''}, permissions of "
                f"EL{choice.el} — {html.escape(choice.reason)}")
        else:  # the op translates nothing at this EL: no regime to show
            what = ("UNDEFINED" if disp.kind is Disposition.UNDEFINED
                    else "trapped to EL2")
            self.choice = None
            self.regime_html.value = (
                f"<b>regime:</b> <span class='atlab-regime-name'>none</span> — {op} is "
                f"{what} at EL{int(self.el.value)} — no regime ({html.escape(disp.reason)})")
        return problem

    def _table(self, regs: SysRegs, op: AtOp) -> str:
        feats = self.scenario.features
        cur_row = group_of(op)
        cur_col = COLUMNS.index((int(self.e2h.value), int(self.tge.value)))
        head = "".join(f"<th style='padding:2px 8px'>{{E2H,TGE}}={{{e},{t}}}</th>"
                       for e, t in COLUMNS)
        rows = []
        for r, (rep, label) in enumerate(OP_GROUPS):
            cells = []
            for c, (e, t) in enumerate(COLUMNS):
                text = html.escape(cell_text(rep, with_e2h_tge(regs, e, t), feats))
                if (r, c) == (cur_row, cur_col):
                    cells.append("<td class='atlab-current-cell' style='padding:2px 8px;"
                                 "background:#E69F00;color:#000;font-weight:bold;"
                                 f"outline:2px solid #000'>{text}</td>")
                else:
                    cells.append(f"<td style='padding:2px 8px'>{text}</td>")
            rows.append(f"<tr><th style='text-align:left;padding:2px 8px'>{label}</th>"
                        f"{''.join(cells)}</tr>")
        return f"<table><tr><th>op</th>{head}</tr>{''.join(rows)}</table>"


def make_regime_explorer(scenario: Scenario, *, op: AtOp | None = None,
                         va: int | None = None) -> RegimeExplorer:
    return RegimeExplorer(scenario, op=op, va=va)
