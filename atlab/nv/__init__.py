"""Nested virtualization: how a host hypervisor (L0) emulates AT for a guest hypervisor (L1).

L1's EL2 is virtual: L0 runs it at EL1 with HCR_EL2.NV=1, keeps L1's EL2 registers in memory
(the *virtual* registers), and never makes L1's stage 2 resident: the hardware only ever sees
a *shadow* stage 2 (L2 IPA -> PA) that L0 builds lazily.  Every AT L1 executes therefore traps
to L0, which tries the hardware AT on a loaded context (the fast path) and falls back to a
software walk that reads L1's (or L2's) tables through the stages L0 knows about.

- :mod:`atlab.nv.model`: the three levels as data (:class:`NvSystem`).
- :mod:`atlab.nv.routing`: where an AT goes (:func:`route_at`).
- :mod:`atlab.nv.emulate`: the emulation (:func:`emulate_at`) and its reference.
- :mod:`atlab.nv.shadow`: the shadow stage 2 as L0's TLB of L1's stage 2: trapped TLBIs.
"""

from atlab.nv.emulate import KvmBehaviour, NvAtResult, emulate_at, reference_at
from atlab.nv.model import NvSystem, load_nv_scenarios, parse_nv_scenario
from atlab.nv.routing import Context, LoadedHcr, Route, RouteKind, loaded_hcr_el2, route_at
from atlab.nv.shadow import (
    L1Tlbi,
    L2Access,
    ShadowCheck,
    l0_handle_tlbi,
    l1_tlbi,
    l2_access,
    shadow_check,
)

__all__ = [
    "Context",
    "KvmBehaviour",
    "L1Tlbi",
    "L2Access",
    "LoadedHcr",
    "NvAtResult",
    "NvSystem",
    "Route",
    "RouteKind",
    "ShadowCheck",
    "emulate_at",
    "l0_handle_tlbi",
    "l1_tlbi",
    "l2_access",
    "load_nv_scenarios",
    "loaded_hcr_el2",
    "parse_nv_scenario",
    "reference_at",
    "route_at",
    "shadow_check",
]
