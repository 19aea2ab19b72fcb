"""The NV explorer: pick the running context and L1's vHCR_EL2 bits, run an AT, watch the
route (hardware / trap to L0 / forwarded to L1), the fast path and the software fallback."""

from __future__ import annotations

import html

import ipywidgets as w

from atlab.bits import set_bits
from atlab.nv.emulate import NvAtResult, emulate_at
from atlab.nv.model import NvScenario, NvSystem
from atlab.nv.routing import Context
from atlab.regime import AtOp
from atlab.sysregs import SysRegs, layout
from atlab.viz import nv_route
from atlab.widgets._common import ErrorLine, guarded, image, parse_hex, png_of

#: The vHCR_EL2 bits the explorer toggles.
VHCR_BITS = ("E2H", "TGE", "NV", "NV1", "AT", "VM")
_BIT = {f.name: f.lo for f in layout("HCR_EL2")}


class NvExplorer(w.VBox):  # type: ignore[misc]
    """Emulated AT under nested virtualization on an NV scenario.  Changing the context or a
    vHCR_EL2 bit builds a fresh machine and runs the AT; *Run again* reuses the machine
    (:attr:`system`), so what changed it since shows: not the emulated AT itself (its
    software walker fills no hole in L0's stage 2), but e.g. L2's own AT filling the shadow
    stage 2, or ``system.l1_access(ipa)``.  :attr:`result` is the last :class:`NvAtResult`."""

    def __init__(self, scenario: NvScenario, *, op: AtOp | None = None,
                 va: int | None = None) -> None:
        self.scenario = scenario
        first = scenario.ops[0] if scenario.ops else None
        op = op or (first.op if first else AtOp.S1E2R)
        va = va if va is not None else (first.va if first else 0)
        self.context = w.ToggleButtons(options=[(c.value, c) for c in Context],
                                       value=scenario.context, description="running",
                                       style={"button_width": "95px"})
        self.context.add_class("atlab-nv-context")
        vhcr = scenario.vregs["HCR_EL2"]
        self.bits = {name: w.ToggleButton(value=bool(vhcr >> _BIT[name] & 1),
                                          description=f"{name}",
                                          tooltip=f"vHCR_EL2.{name} (bit {_BIT[name]})",
                                          layout=w.Layout(width="60px"))
                     for name in VHCR_BITS}
        for name, b in self.bits.items():
            b.add_class(f"atlab-nv-bit-{name.lower()}")
        self.op = w.Dropdown(options=[(f"AT {o.name}", o) for o in AtOp], value=op,
                             description="op", layout=w.Layout(width="200px"))
        self.op.add_class("atlab-nv-op")
        self.va = w.Text(value=f"{va:#x}", description="VA", continuous_update=False,
                         layout=w.Layout(width="260px"))
        self.va.add_class("atlab-nv-va")
        self.run_button = w.Button(description="Run again", layout=w.Layout(width="100px"))
        self.run_button.add_class("atlab-nv-run")
        self.route_html = w.HTML()
        self.route_html.add_class("atlab-nv-route")
        self.par_html = w.HTML()
        self.par_html.add_class("atlab-nv-par")
        self.narration_html = w.HTML()
        self.narration_html.add_class("atlab-nv-narration")
        self.picture = image()
        self.picture.add_class("atlab-nv-picture")
        self.error = ErrorLine()
        self.system: NvSystem | None = None
        self.result: NvAtResult | None = None
        super().__init__([
            w.HTML(f"<b>NV explorer</b> — scenario <code>{html.escape(scenario.name)}</code>"),
            self.context, w.HBox([w.HTML("L1's vHCR_EL2:&nbsp;"), *self.bits.values()]),
            w.HBox([self.op, self.va, self.run_button]), self.error, self.route_html,
            self.par_html, self.picture, self.narration_html,
        ])
        self.add_class("atlab-nv-explorer")
        for ctl in (self.context, self.op, self.va, *self.bits.values()):
            ctl.observe(lambda _c: self.run(fresh=True), names="value")
        self.run_button.on_click(lambda _b: self.run(fresh=False))
        self.run(fresh=True)

    def vregs(self) -> SysRegs:
        hcr = self.scenario.vregs["HCR_EL2"]
        for name, b in self.bits.items():
            hcr = set_bits(hcr, _BIT[name], _BIT[name], int(b.value))
        return self.scenario.vregs.replace(HCR_EL2=hcr)

    def _fresh_system(self) -> NvSystem:
        sc = self.scenario
        return NvSystem(vregs=self.vregs(), l1_memory=dict(sc.l1_memory),
                        pa_offset=sc.pa_offset, holes=sc.holes, shadow=dict(sc.shadow),
                        context=self.context.value, features=sc.features,
                        pan=sc.vregs.field("PSTATE_PAN", "PAN"))

    @guarded
    def run(self, *, fresh: bool = True) -> None:
        try:
            self._run(fresh)
        except Exception:  # nothing of the previous run stays on screen
            self.result = None
            self.par_html.value = "<b>the guest sees:</b> —"
            self.narration_html.value = ""
            self.picture.layout.display = "none"
            self.route_html.value = "<b>route:</b> —"
            raise

    def _run(self, fresh: bool) -> None:
        va = parse_hex(self.va.value, "VA")
        if fresh or self.system is None:
            self.system = self._fresh_system()
        res = emulate_at(self.system, self.op.value, va)
        self.result = res
        fast = ("—" if res.fast_path_accepted is None else
                "accepted" if res.fast_path_accepted and res.software is None else
                "not enough: software walker" if res.fast_path_accepted else
                "rejected: software walker")
        self.picture.value = png_of(nv_route(res))
        self.picture.layout.display = ""
        if res.par is None and res.exception is not None:
            self.par_html.value = (
                f"<b>outcome:</b> <code class='atlab-nv-outcome'>"
                f"{html.escape(res.outcome())}</code><br><b>received by:</b> "
                f"<span class='atlab-nv-receiver'>"
                f"{html.escape(receiver(res.context, res.exception.target_el))}</span>")
        else:
            self.par_html.value = (f"<b>the guest sees:</b> <code class='atlab-nv-outcome'>"
                                   f"{html.escape(res.outcome())}</code>")
        self.narration_html.value = ("<b>narration</b><ol>" + "".join(
            f"<li><code>{html.escape(line)}</code></li>" for line in res.narration) + "</ol>")
        # last: the browser test times an interaction until the route line changes
        self.route_html.value = (
            f"<b>route:</b> <span class='atlab-nv-route-kind'>"
            f"{html.escape(res.route.kind.value)}</span> — {html.escape(res.route.reason)} "
            f"<i>[{html.escape(res.route.rule)}]</i><br><b>path:</b> "
            f"<span class='atlab-nv-path'>{html.escape(res.path)}</span>; <b>fast path:</b> "
            f"{html.escape(fast)}")


def receiver(context: Context, target_el: int) -> str:
    """Who handles an exception an AT raised in ``context``: EL2 is L1's virtual EL2 (L0
    injects it), never L0 itself; EL1 in an L2 context is L2's own kernel."""
    if target_el == 2:
        if context is Context.L1_VEL2:
            return "L1, at its virtual EL2 (injected by L0)"
        return "L1, at its virtual EL2, injected by L0 (L2 sees nothing until L1 handles it)"
    if context is Context.L1_VEL2:
        return f"L1 (EL{target_el})"
    return f"L2's kernel at EL{target_el}"


def make_nv_explorer(scenario: NvScenario, *, op: AtOp | None = None,
                     va: int | None = None) -> NvExplorer:
    return NvExplorer(scenario, op=op, va=va)
