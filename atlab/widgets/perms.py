"""The permission views: one page, several register settings (AP bits, permission indirection,
overlays), a toggle between them and the rights each gives EL1 and EL0."""

from __future__ import annotations

import html
from collections.abc import Mapping

import ipywidgets as w

from atlab.at import run_at
from atlab.errors import AtlabError
from atlab.explain import leaf_selections
from atlab.memory import PhysMem
from atlab.regime import AtOp
from atlab.sysregs import SysRegs
from atlab.widgets._common import ErrorLine, guarded, html_table

OPS = (AtOp.S1E1R, AtOp.S1E1W, AtOp.S1E0R, AtOp.S1E0W)


class PermissionViews(w.VBox):  # type: ignore[misc]
    """Toggle between named register settings (``views``) for the same page ``va`` in ``mem``;
    :attr:`rows` holds, for the view shown, each op's outcome and the leaf's meaning (with
    PIE: ``PIIndex=... -> PIR_EL1[..]=...``); :attr:`selections` what the leaf's PIIndex,
    POIndex and AttrIndx select (:func:`atlab.explain.leaf_selections`).  Misuse (no view, a
    view that is not a SysRegs, a bad VA) raises :class:`~atlab.errors.AtlabError`."""

    def __init__(self, views: Mapping[str, SysRegs], mem: PhysMem, va: int) -> None:
        if not views:
            raise AtlabError("PermissionViews needs at least one view (a name -> SysRegs)")
        bad = [name for name, regs in views.items() if not isinstance(regs, SysRegs)]
        if bad:
            raise AtlabError(f"PermissionViews: view {bad[0]!r} is not a SysRegs")
        if not isinstance(mem, PhysMem):
            raise AtlabError("PermissionViews: mem must be a PhysMem")
        if not isinstance(va, int) or not 0 <= va < 1 << 64:
            raise AtlabError(f"PermissionViews: VA {va!r} is not a 64-bit address")
        self.views, self.mem, self.va = dict(views), mem, va
        self.view = w.ToggleButtons(options=list(self.views), value=next(iter(self.views)),
                                    description="registers")
        self.view.add_class("atlab-perms-view")
        self.table = w.HTML()
        self.table.add_class("atlab-perms-table")
        self.leaf = w.HTML()
        self.error = ErrorLine()
        self.rows: list[tuple[str, str, str]] = []
        self.selections: list[tuple[str, str]] = []
        super().__init__([w.HTML(f"<b>Permissions of VA {va:#x}</b>"), self.view, self.error,
                          self.table, self.leaf])
        self.add_class("atlab-perms")
        self.view.observe(lambda _c: self.update(), names="value")
        self.update()

    @guarded
    def update(self) -> None:
        regs = self.views[self.view.value]
        rows = []
        leaf = ""
        selects: list[tuple[str, str]] = []
        for op in OPS:
            res = run_at(op, self.va, regs=regs, mem=self.mem.copy())
            outcome = "ok" if res.par is not None and res.par.f == 0 else "fault"
            rows.append((op.name, outcome, "" if res.perms is None else str(res.perms)))
            steps = [s for s in res.trace.steps if s.stage == 1 and not s.is_write]
            if steps and not leaf:
                leaf = steps[-1].meaning
                selects = leaf_selections(steps[-1])
        self.rows = rows
        self.selections = selects
        self.table.value = html_table(rows, ("AT", "outcome", "rights (EL of the op)"))
        # what the leaf's PIIndex / POIndex / AttrIndx select in this view's registers
        items = "".join(f"<li><code>{html.escape(text)}</code></li>" for _n, text in selects
                        if _n != "AttrIndx")
        self.leaf.value = (f"<small><code>{html.escape(leaf)}</code></small>"
                           + (f"<ul class='atlab-perms-selects'>{items}</ul>" if items else ""))


def make_permission_views(views: Mapping[str, SysRegs], mem: PhysMem, va: int
                          ) -> PermissionViews:
    """A :class:`PermissionViews` (show it by making it a cell's value)."""
    return PermissionViews(views, mem, va)
