"""Exercise 05: stage 1 permissions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from atlab.checks.core import Case, CheckResult, Exercise, Mistake, _case, check
from atlab.perms import S1PermBits, compute_s1_permissions


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
    # most instructive first: AP[2:1] and XN alone (PAN=0, WXN=0) for EL1 then EL0, then PAN, then
    # WXN
    group_order=(
        "EL1 PAN=0 WXN=0",
        "EL0 PAN=0 WXN=0",
        "EL1 PAN=1 WXN=0",
        "EL0 PAN=1 WXN=0",
        "EL1 PAN=0 WXN=1",
        "EL0 PAN=0 WXN=1",
    ),
)


def check_s1_permissions(fn: Callable[[S1PermBits, int, bool, bool], tuple[bool, bool, bool]],
                         *, quiet: bool = False, file: TextIO | None = None) -> CheckResult:
    """Check ``s1_permissions(p, el, pan, wxn) -> (r, w, x)``."""
    return check(PERMS, fn, quiet=quiet, file=file)
