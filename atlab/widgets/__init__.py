"""ipywidgets explorers built on atlab's traces and pictures.

Each explorer is a widget object (an ``ipywidgets.VBox`` subclass) that a notebook shows by
making it the value of a cell; nothing here calls ``display()``.  Every control validates its
input and reports errors on an inline error line (``.error.message``), never as a traceback.

- :class:`RegimeExplorer`: HCR_EL2.{E2H,TGE}, EL, op -> regime, registers, PAR.
- :class:`WalkStepper`: Step / Back / Play through a stage 1, stage 2 or nested walk.
- :class:`Decoder`: a PAR_EL1, descriptor or register value, field by field.
- :class:`NvExplorer`: an AT emulated under nested virtualization: route, fast path, fallback.
- :class:`PageTableBuilder`: map/unmap with attributes; ptdump, registers, scenario export.
- :class:`PermissionViews`: one page under several register settings (AP bits, PIE, POE).
- :class:`TlbExplorer`: remap a page, pick (or forget) the TLBI, DSB and ISB, step the
  program and watch the TLB: a stale entry answers, or the walk reads the new descriptor.
"""

from atlab.widgets.builder import PageTableBuilder, make_page_table_builder
from atlab.widgets.decoder import Decoder, make_decoder
from atlab.widgets.nv import NvExplorer, make_nv_explorer
from atlab.widgets.perms import PermissionViews, make_permission_views
from atlab.widgets.regime import RegimeExplorer, make_regime_explorer, regime_registers
from atlab.widgets.stepper import WalkStepper, make_walk_stepper
from atlab.widgets.tlb import TlbExplorer, make_tlb_explorer

__all__ = [
    "Decoder",
    "NvExplorer",
    "PageTableBuilder",
    "PermissionViews",
    "RegimeExplorer",
    "TlbExplorer",
    "WalkStepper",
    "make_decoder",
    "make_nv_explorer",
    "make_page_table_builder",
    "make_permission_views",
    "make_regime_explorer",
    "make_tlb_explorer",
    "make_walk_stepper",
    "regime_registers",
]
