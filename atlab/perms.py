"""Stage 1 permissions (``AArch64.S1DirectBasePermissions()``, ``AArch64.S1CheckPermissions()``).

The walk accumulates the hierarchical controls (APTable, UXNTable/PXNTable or XNTable) and
returns the leaf's AP, UXN/PXN or XN; this module turns them into read/write/execute rights
for the EL of the access and checks the access.
"""

from __future__ import annotations

from dataclasses import dataclass

from atlab.regime import Access


@dataclass(frozen=True, slots=True)
class S1PermBits:
    """The permission inputs gathered by a stage 1 walk (``Permissions`` in the pseudocode).

    ``ap`` is AP[2:1] as effective for the regime (the EL2/EL3 regimes and NV1 use AP[2]
    only, AP[1] reads as ``ap1_fixed``); ``ap_table`` is the OR of the APTable bits seen."""

    ap: int = 0
    ap_table: int = 0
    uxn: int = 0
    pxn: int = 0
    xn: int = 0
    uxn_table: int = 0
    pxn_table: int = 0
    xn_table: int = 0
    dbm: int = 0

    def __str__(self) -> str:
        return (f"AP={self.ap:02b} APTable={self.ap_table:02b} UXN={self.uxn | self.uxn_table}"
                f" PXN={self.pxn | self.pxn_table} XN={self.xn | self.xn_table}")


@dataclass(frozen=True, slots=True)
class S1Perms:
    """Effective stage 1 rights for the EL of the access (after PAN and WXN)."""

    r: bool
    w: bool
    x: bool
    pan_applied: bool = False
    wxn_applied: bool = False

    def __str__(self) -> str:
        s = ("R" if self.r else "-") + ("W" if self.w else "-") + ("X" if self.x else "-")
        if self.pan_applied:
            s += " (PAN)"
        if self.wxn_applied:
            s += " (WXN)"
        return s


def compute_s1_permissions(
    p: S1PermBits,
    *,
    has_unprivileged: bool,
    nv1: bool,
    el: int,
    pan: bool,
    epan: bool,
    wxn: bool,
    hd: bool,
) -> S1Perms:
    """``AArch64.S1DirectBasePermissions()`` and ``AArch64.S1ComputePermissions()``.

    ``pan`` is ``accdesc.pan AND PSTATE.PAN`` with FEAT_PAN (true only for AT S1E1RP/WP with
    PSTATE.PAN=1); ``epan`` is SCTLR_ELx.EPAN with FEAT_PAN3.
    """
    ap2 = (p.ap >> 1) & 1
    if p.dbm and hd:
        ap2 = 0  # DBM with hardware dirty state: the descriptor is writable-clean
    pan_applied = False
    if has_unprivileged and not nv1:
        ap21 = (ap2 << 1) | (p.ap & 1)
        # Leaf AP[2:1] (R_?): 00 EL1 RW, 01 EL1 RW / EL0 RW, 10 EL1 RO, 11 EL1 RO / EL0 RO.
        pr, pw, ur, uw = {0: (1, 1, 0, 0), 1: (1, 1, 1, 1), 2: (1, 0, 0, 0), 3: (1, 0, 1, 0)}[ap21]
        # APTable: 01 no EL0 access, 1x no write access, 11 neither.
        if p.ap_table & 1:
            ur = uw = 0
        if p.ap_table & 2:
            pw = uw = 0
        # Locations writable at EL0 are PXN for privileged execution.
        px = not (p.pxn or p.pxn_table or uw)
        ux = not (p.uxn or p.uxn_table)
        if pan:
            # FEAT_PAN, FEAT_PAN3 (EPAN): PAN denies privileged data access to EL0-accessible
            # memory (and, with EPAN, to EL0-executable memory).
            pan_hit = bool(ur or uw or (epan and ux))
            if pan_hit:
                pr = pw = 0
                pan_applied = True
        r, w, x = (ur, uw, ux) if el == 0 else (pr, pw, px)
    elif has_unprivileged:  # EL1&0 with HCR_EL2.{NV,NV1}={1,1}: EL2-style descriptors
        pr, pw = (1, 0) if ap2 else (1, 1)
        if p.ap_table & 2:
            pw = 0
        px = not (p.pxn or p.pxn_table)
        ur = uw = 0
        ux = not (p.uxn or p.uxn_table)
        r, w, x = (ur, uw, ux) if el == 0 else (pr, pw, px)
    else:  # EL2, EL3: AP[1] is RES1, one XN bit
        pr, pw = (1, 0) if ap2 else (1, 1)
        if p.ap_table & 2:
            pw = 0
        px = not (p.xn or p.xn_table)
        r, w, x = pr, pw, px
    wxn_applied = bool(wxn and w and x)
    if wxn_applied:
        x = False
    return S1Perms(bool(r), bool(w), bool(x), pan_applied, wxn_applied)


def s1_access_allowed(perms: S1Perms, access: Access) -> bool:
    """The data-access branch of ``AArch64.S1CheckPermissions()`` for an AT access."""
    if access is Access.READ:
        return perms.r
    if access is Access.WRITE:
        return perms.w
    return True  # ATAccess_Any (FEAT_ATS1A): no permission check
