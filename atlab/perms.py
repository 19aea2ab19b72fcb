"""Stage 1 permissions (``AArch64.S1DirectBasePermissions()``,
``AArch64.S1IndirectBasePermissions()``, ``AArch64.S1ComputePermissions()``,
``AArch64.S1CheckPermissions()``).

The walk accumulates the hierarchical controls (APTable, UXNTable/PXNTable or XNTable) and
returns the leaf's AP, UXN/PXN or XN -- or, with FEAT_S1PIE (TCR2_ELx.PIE=1), the PIR_ELx
and PIRE0_ELx entries that the leaf's PIIndex selects; this module turns them into
read/write/execute rights for the EL of the access and checks the access.

Stage 1 permission indirection, PIR_ELx.Perm<m> / PIRE0_ELx.Perm<m>
(``AArch64.S1IndirectBasePermissions()``), as (read, write, execute); 0b0110 is RWX with the
WXN control applied (execute removed), the reserved encodings give no access:

>>> [indirect_rwx(pi) for pi in (0b0001, 0b0101, 0b0110, 0b1111)]
[(True, False, False), (True, True, False), (True, True, True), (False, False, False)]
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
    #: FEAT_S1PIE: the PIR_ELx / PIRE0_ELx entries PIIndex selected, and nDirty (bit 7).
    pie: bool = False
    ppi: int = 0
    upi: int = 0
    ndirty: int = 0
    #: FEAT_S1POE: overlays enabled (privileged, EL0) and the POR_ELx / POR_EL0 entries that
    #: POIndex selected.
    poe: bool = False
    e0poe: bool = False
    ppo: int = 0
    upo: int = 0

    def __str__(self) -> str:
        if self.pie:
            return f"PIE ppi={self.ppi:04b} upi={self.upi:04b} nDirty={self.ndirty}"
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
    #: FEAT_S1PIE without hardware dirty state: the page is clean (nDirty=1), so a write
    #: takes a Permission fault (``AArch64.S1CheckPermissions()``, fault.dirtybit).
    dirty_fault: bool = False
    #: FEAT_S1POE: the overlay applied (e.g. "POR_EL1 Perm=0b0001 R"), or "".
    overlay: str = ""

    def __str__(self) -> str:
        s = ("R" if self.r else "-") + ("W" if self.w else "-") + ("X" if self.x else "-")
        if self.pan_applied:
            s += " (PAN)"
        if self.wxn_applied:
            s += " (WXN)"
        if self.dirty_fault:
            s += " (clean: nDirty=1, no hardware dirty state)"
        if self.overlay:
            s += f" (overlay {self.overlay})"
        return s


# AArch64.S1OverlayPermissions(): POR_ELx.Perm<m> -> (read, write, execute); 1xxx reserved.
_OVERLAY: tuple[tuple[int, int, int], ...] = tuple(
    ((v & 1), (v >> 2 & 1), (v >> 1 & 1)) if v < 8 else (0, 0, 0) for v in range(16)
)


def _apply_overlay(perms: S1Perms, p: S1PermBits, *, el: int) -> S1Perms:
    """The overlay part of ``AArch64.S1ComputePermissions()``: whether the base permissions
    allow an overlay (always with direct permissions; PIR/PIRE0 entries with bit 3 clear),
    whether it is enabled for the EL (``AArch64.S1POEnabled()``,
    ``AArch64.S1E0POEnabled()``), then ``AArch64.S1OverlayPermissions()``; with an overlay
    WXN removes the overlay's write permission instead of execute."""
    if el == 0:
        enabled, value, reg = p.e0poe, p.upo, "POR_EL0"
        allows = not p.pie or not p.upi >> 3 & 1
    else:
        enabled, value, reg = p.poe, p.ppo, "POR"
        allows = not p.pie or not p.ppi >> 3 & 1
    if not (enabled and allows):
        return perms
    o_r, o_w, o_x = _OVERLAY[value]
    x = perms.x
    if perms.wxn_applied:  # WXN was applied to x: with an overlay it removes ow instead
        x = True
        o_w = o_w and not o_x
    text = f"{reg} Perm={value:#06b}"
    return S1Perms(perms.r and bool(o_r), perms.w and bool(o_w), x and bool(o_x),
                   perms.pan_applied, perms.wxn_applied, perms.dirty_fault, text)


# AArch64.S1IndirectBasePermissions(): Perm<m> -> (read, write, execute, gcs).
_INDIRECT: tuple[tuple[int, int, int, int], ...] = (
    (0, 0, 0, 0), (1, 0, 0, 0), (0, 0, 1, 0), (1, 0, 1, 0),  # 0000 none, R, X, RX
    (0, 0, 0, 0), (1, 1, 0, 0), (1, 1, 1, 0), (1, 1, 1, 0),  # 0100 reserved, RW, RWX(WXN), RWX
    (1, 0, 0, 0), (1, 0, 0, 1), (1, 0, 1, 0), (0, 0, 0, 0),  # 1000 R, R+GCS, RX, reserved
    (1, 1, 0, 0), (0, 0, 0, 0), (1, 1, 1, 0), (0, 0, 0, 0),  # 1100 RW, reserved, RWX, reserved
)


def indirect_rwx(pi: int) -> tuple[bool, bool, bool]:
    """The read, write and execute rights of a PIR_ELx/PIRE0_ELx entry (before WXN)."""
    r, w, x, _gcs = _INDIRECT[pi]
    return bool(r), bool(w), bool(x)


def _indirect_permissions(p: S1PermBits, *, has_unprivileged: bool, nv1: bool, el: int,
                          pan: bool, hd: bool) -> S1Perms:
    """``AArch64.S1IndirectBasePermissions()`` with the WXN tail of
    ``AArch64.S1ComputePermissions()`` (no permission overlays: FEAT_S1POE is not modelled).

    Hierarchical permissions do not apply (walkparams.hpd is 1 with PIE); the WXN control
    applies only to Perm 0b0110 (pwxn/uwxn), whatever SCTLR_ELx.WXN says."""
    pr, pw, px, pgcs = _INDIRECT[p.ppi]
    pwxn = p.ppi == 0b0110
    ur = uw = ux = ugcs = 0
    uwxn = False
    pan_applied = False
    if has_unprivileged:
        ur, uw, ux, ugcs = _INDIRECT[p.upi]
        uwxn = p.upi == 0b0110
        # Privileged-executable (or GCS) memory that EL0 may write (or GCS-write): no access
        # at all, for both ELs.
        if (px or pgcs) and (uw or ugcs):
            pr = pw = px = pgcs = ur = uw = ux = ugcs = 0
        # PAN with PIE: any EL0 permission (PIRE0 entry other than 0b0000) removes
        # privileged read and write (the FEAT_PAN3 behaviour: EL0-executable counts too).
        if pan and not nv1 and p.upi != 0b0000:
            pan_applied = bool(pr or pw)
            pr = pw = 0
    if el == 0:
        r, w, x, wxn = ur, uw, ux, uwxn
    else:
        r, w, x, wxn = pr, pw, px, pwxn
    wxn_applied = bool(wxn and x)
    if wxn:
        x = 0
    # AArch64.S1CheckPermissions(): a write to a clean page (nDirty=1) without hardware
    # dirty state management (TCR_ELx.HD=0) is a Permission fault.
    dirty_fault = bool(w and p.ndirty and not hd)
    return S1Perms(bool(r), bool(w), bool(x), pan_applied, wxn_applied, dirty_fault)


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
    PSTATE.PAN=1); ``epan`` is SCTLR_ELx.EPAN with FEAT_PAN3.  With ``p.pie``
    (FEAT_S1PIE), ``AArch64.S1IndirectBasePermissions()`` instead.
    """
    if p.pie:
        perms = _indirect_permissions(p, has_unprivileged=has_unprivileged, nv1=nv1, el=el,
                                      pan=pan, hd=hd)
    else:
        perms = _direct_permissions(p, has_unprivileged=has_unprivileged, nv1=nv1, el=el,
                                    pan=pan, epan=epan, wxn=wxn, hd=hd)
    if p.poe or p.e0poe:
        perms = _apply_overlay(perms, p, el=el)
    return perms


def _direct_permissions(p: S1PermBits, *, has_unprivileged: bool, nv1: bool, el: int,
                        pan: bool, epan: bool, wxn: bool, hd: bool) -> S1Perms:
    """``AArch64.S1DirectBasePermissions()`` and the WXN tail of
    ``AArch64.S1ComputePermissions()``."""
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
        return perms.w and not perms.dirty_fault
    return True  # ATAccess_Any (FEAT_ATS1A): no permission check
