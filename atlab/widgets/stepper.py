"""The walk stepper: Step / Back / Play through a walk — stage 1, stage 2 or the nested 2-D
walk — with the current access highlighted, its descriptor decoded, the permission state and,
at the end, why the walk ended."""

from __future__ import annotations

import html

import ipywidgets as w

from atlab.at import AtResult
from atlab.descriptors import decode_descriptor
from atlab.errors import AtlabError
from atlab.explain import leaf_selections
from atlab.granule import Granule
from atlab.trace import Trace, WalkStep
from atlab.viz import Access, nested_grid, walk_accesses, walk_chain
from atlab.widgets._common import ErrorLine, guarded, html_table, image, png_of

MODES = ("stage 1", "stage 2", "nested 2-D")


def granule_of(step: WalkStep) -> Granule:
    """The granule a step was walked with, from the VA bits its index came from: at level L
    the lowest index bit is (3 - L) * (pgshift - 3) + pgshift."""
    pgshift, rem = divmod(step.ia_lo + 3 * (3 - step.level), 4 - step.level)
    for g in Granule:
        if g.pgshift == pgshift and not rem:
            return g
    return Granule.K4


class WalkStepper(w.VBox):  # type: ignore[misc]
    """Step through the descriptor accesses of ``source`` (an :class:`AtResult` or a
    :class:`Trace`).  ``position`` (an IntSlider, also driven by Play) is the current access;
    :attr:`current` is that :class:`~atlab.viz.Access`."""

    def __init__(self, source: AtResult | Trace, *, mode: str | None = None,
                 theme: str = "light", interval_ms: int = 800) -> None:
        if isinstance(source, AtResult):
            self.result: AtResult | None = source
            self.trace = source.trace
        else:
            self.result = None
            self.trace = source
        self.theme = theme
        tr = self.trace
        nested = bool(tr.final_s2) or any(s.s2 for s in tr.steps)
        available = [m for m, ok in zip(MODES, (bool(tr.steps), bool(tr.final_s2), nested),
                                        strict=True) if ok]
        if not available:
            available = ["stage 1"]
        if mode is None:
            mode = "nested 2-D" if nested else available[0]
        if mode not in available:
            raise AtlabError(f"mode {mode!r} is not available for this walk "
                             f"(available: {', '.join(available)})")
        self._frames: dict[tuple[str, int], bytes] = {}
        self.mode = w.ToggleButtons(options=available, value=mode, description="walk",
                                    style={"button_width": "90px"})
        self.mode.add_class("atlab-stepper-mode")
        self.back_button = w.Button(description="◀ Back", layout=w.Layout(width="90px"))
        self.back_button.add_class("atlab-stepper-back")
        self.step_button = w.Button(description="Step ▶", layout=w.Layout(width="90px"))
        self.step_button.add_class("atlab-stepper-step")
        self.position = w.IntSlider(value=0, min=0, max=0, description="access",
                                    continuous_update=True)
        self.position.add_class("atlab-stepper-position")
        self.play = w.Play(value=0, min=0, max=0, interval=interval_ms, description="Play")
        self.play.add_class("atlab-stepper-play")
        w.jslink((self.play, "value"), (self.position, "value"))
        self.picture = image()
        self.picture.add_class("atlab-stepper-picture")
        self.counter = w.HTML()
        self.counter.add_class("atlab-stepper-counter")
        self.descriptor_html = w.HTML()
        self.descriptor_html.add_class("atlab-stepper-descriptor")
        self.perms_html = w.HTML()
        self.perms_html.add_class("atlab-stepper-perms")
        self.ended_html = w.HTML()
        self.ended_html.add_class("atlab-stepper-ended")
        self.error = ErrorLine()
        self.accesses: list[Access] = []
        self.current: Access | None = None
        super().__init__([
            w.HTML("<b>Walk stepper</b>"), self.mode,
            w.HBox([self.back_button, self.step_button, self.play, self.position]),
            self.error, self.counter, self.picture,
            w.HBox([self.descriptor_html, w.VBox([self.perms_html, self.ended_html])]),
        ])
        self.add_class("atlab-walk-stepper")
        self.back_button.on_click(lambda _b: self.back())
        self.step_button.on_click(lambda _b: self.step())
        self.position.observe(lambda _c: self.update(), names="value")
        self.mode.observe(lambda _c: self._set_mode(), names="value")
        self._set_mode()

    # --- the sequence for the chosen mode ------------------------------------------------------
    def _sequence(self) -> list[Access]:
        tr = self.trace
        mode = self.mode.value
        if mode == "nested 2-D":
            return walk_accesses(tr)
        if mode == "stage 2":
            return [Access(i + 1, s, 0, f"S2 L{s.level} for the final IPA")
                    for i, s in enumerate(tr.final_s2)]
        # Only the descriptors stage 1 read: a table access whose stage 2 walk faulted
        # ("not read") shows in the ended line and in the nested 2-D mode.
        s1 = [s for s in tr.steps if not s.is_write and s.kind != "not read"]
        return [Access(i + 1, s, i, f"S1 L{s.level} descriptor read") for i, s in enumerate(s1)]

    @guarded
    def _set_mode(self) -> None:
        self.accesses = self._sequence()
        last = max(len(self.accesses) - 1, 0)
        self.play.max = last
        self.position.max = last
        if self.position.value == 0:
            self.update()
        else:
            self.position.value = 0  # observe -> update

    def step(self) -> None:
        """One access forward (stays on the last)."""
        self.position.value = min(self.position.value + 1, self.position.max)

    def back(self) -> None:
        """One access back (stays on the first)."""
        self.position.value = max(self.position.value - 1, 0)

    @property
    def at_end(self) -> bool:
        return int(self.position.value) >= len(self.accesses) - 1

    def _fault(self) -> bool:
        if self.result is not None:
            return self.result.par is None or bool(self.result.par.f)
        return "fault" in self.trace.ended

    def _frame(self, mode: str, k: int) -> bytes:
        key = (mode, k)
        png = self._frames.get(key)
        if png is None:
            fault = self._fault()
            if mode == "nested 2-D":
                fig = nested_grid(self.trace, current=k, fault=fault, theme=self.theme)
            elif mode == "stage 2":
                fig = walk_chain(self.trace.final_s2, current=k, fault=fault,
                                 title="stage 2 walk of the final IPA", theme=self.theme)
            else:
                s2_fault = fault and bool(self.trace.final_s2)
                fig = walk_chain(self.trace, current=k, fault=fault and not s2_fault,
                                 theme=self.theme)
            png = png_of(fig)
            self._frames[key] = png
        return png

    @guarded
    def update(self) -> None:
        k = int(self.position.value)
        mode = str(self.mode.value)
        if not self.accesses:
            self.current = None
            self.counter.value = "<b>no descriptor was read</b>"
            self.picture.value = self._frame(mode, 0)
            self.descriptor_html.value = ""
            self.perms_html.value = ""
            self.ended_html.value = self._ended_text()
            return
        acc = self.accesses[k]
        self.current = acc
        self.picture.value = self._frame(mode, k)
        s = acc.step
        counter = (f"<b>access <span class='atlab-stepper-index'>{k + 1}</span> / "
                              f"{len(self.accesses)}</b>: {html.escape(acc.purpose)} — "
                              f"<code>{s.desc_addr:#x}</code>")
        self.descriptor_html.value = self._descriptor(s)
        self.perms_html.value = self._perms(k)
        self.ended_html.value = self._ended_text() if self.at_end else ""
        # last: the browser test times an interaction until the counter changes
        self.counter.value = counter

    def _descriptor(self, s: WalkStep) -> str:
        head = (f"<b>S{s.stage} L{s.level} descriptor</b> [{s.index}] = VA[{s.ia_hi}:{s.ia_lo}]"
                f" <code>{s.raw:#018x}</code>")
        if s.is_write or s.kind not in ("invalid", "table", "block", "page", "reserved"):
            return head + f"<div>{html.escape(s.kind)}: {html.escape(s.meaning)}</div>"
        # the walk's Effective TCR_ELx.DS/VTCR_EL2.DS: the OA bits and SH of its descriptors
        ds = bool(getattr(s.decoder, "ds", s.level == -1))
        fields = decode_descriptor(s.raw, level=s.level, granule=granule_of(s), stage=s.stage,
                                   ds=ds)
        rows = [(k, f"{v:#x}" if isinstance(v, int) and k in ("OA", "next_table") else str(v))
                for k, v in fields.items() if k != "value"]
        out = head + html_table(rows, ("field", "value"))
        selects = leaf_selections(s)
        if selects:
            # FEAT_S1PIE/S2PIE, S1POE, AIE: which register entry each index field selects
            note = ""
            if any(name == "PIIndex" for name, _t in selects):
                note = ("<div><small>permission indirection: bits 54, 53, 51 and 6 (read "
                        "above as UXN/XN, PXN, DBM, AP) form the PIIndex"
                        + (", bit 7 is nDirty" if s.stage == 1 else ", bit 7 is Dirty")
                        + "</small></div>")
            out += ("<div class='atlab-stepper-selects'><b>what the leaf selects</b>" + note
                    + html_table(selects, ("field", "register entry")) + "</div>")
        return out

    def _perms(self, k: int) -> str:
        """Hierarchical (table) permissions met so far, and the final rights at the end."""
        seen = [a.step for a in self.accesses[: k + 1] if a.step.stage == 1 and a.step.perms]
        lines = [f"S1 L{s.level}: {s.perms}" for s in seen]
        # An indirect permission (or overlay) is explained at its leaf: "PIIndex 0b0101 ->
        # PIR_EL1[23:20] = 0b0101 (RW)".
        cur = self.accesses[k].step
        lines += [f"S{cur.stage} L{cur.level}: {text}" for name, text in leaf_selections(cur)
                  if name.startswith(("PIIndex", "PIRE0", "POIndex"))]
        if not lines:
            lines = ["no table limits so far"]
        if self.at_end and self.result is not None and self.result.perms is not None:
            lines.append(f"effective stage 1 rights: {self.result.perms}")
        return ("<b>permission state</b><ul>" +
                "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>")

    def _ended_text(self) -> str:
        text = self.trace.ended or "(no reason recorded)"
        colour = "#D55E00" if self._fault() else "#009E73"
        out = (f"<b>why the walk ended:</b> <span style='color:{colour}' "
               f"class='atlab-stepper-why'>{html.escape(text)}</span>")
        unread = next((s for s in self.trace.steps if s.kind == "not read"), None)
        if unread is not None and self.mode.value == "stage 1":
            out += (f"<div class='atlab-stepper-unread'>stage 1 never read its L{unread.level} "
                    "descriptor: the stage 2 walk of that table's address faulted first (the "
                    "nested 2-D mode shows it)</div>")
        if self.result is not None:
            res = self.result.par if self.result.par is not None else self.result.exception
            out += f"<div><code>{html.escape(str(res))}</code></div>"
        return out


def make_walk_stepper(source: AtResult | Trace, *, mode: str | None = None,
                      theme: str = "light") -> WalkStepper:
    return WalkStepper(source, mode=mode, theme=theme)
