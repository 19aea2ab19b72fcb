"""atlab: AArch64 address translation and nested virtualization, executable.

A small, typed model of the VMSAv8-64 stage 1 and stage 2 walks and of the AT instructions,
with exact PAR_EL1 values checked against QEMU.  The public API:

>>> regs = SysRegs.from_mapping({"HCR_EL2": "0x80000000", "TCR_EL1": "0x500803510",
...                              "MAIR_EL1": "0xff", "TTBR0_EL1": "0x40200000",
...                              "SCTLR_EL1": "0x30d00801"})
>>> mem = PhysMem({0x40200120: 0x40201003, 0x40201688: 0x40202003,
...                0x40202598: 0x40203003, 0x40203c48: 0x45678703})
>>> print(run_at(AtOp.S1E1R, 0x123456789ABC, regs=regs, mem=mem).par)
PAR_EL1=0xff00000045678b80 F=0 PA=0x45678000 ATTR=0xff SH=ISH NS=1
"""

from atlab.at import AtResult, run_at
from atlab.builder import S1Attrs, S1Builder, S2Attrs, S2Builder, TableAllocator, scenario_dict
from atlab.errors import AtlabError
from atlab.faults import Fault, FaultKind
from atlab.features import Feature, FeatureSet
from atlab.granule import Granule
from atlab.memory import PhysMem
from atlab.par import Par
from atlab.ptdump import MappedRange, PtDump, ptdump, ptdump_s2
from atlab.regime import AtOp, Regime, at_disposition, compute_translation_regime
from atlab.scenario import OpSpec, Scenario, load_scenarios, parse_scenario, save_scenarios
from atlab.syndrome import TakenException
from atlab.sysregs import SysRegs
from atlab.trace import Trace, WalkStep

__all__ = [
    "AtOp",
    "AtResult",
    "AtlabError",
    "Fault",
    "FaultKind",
    "Feature",
    "FeatureSet",
    "Granule",
    "MappedRange",
    "OpSpec",
    "Par",
    "PhysMem",
    "PtDump",
    "Regime",
    "S1Attrs",
    "S1Builder",
    "S2Attrs",
    "S2Builder",
    "Scenario",
    "SysRegs",
    "TableAllocator",
    "TakenException",
    "Trace",
    "WalkStep",
    "at_disposition",
    "compute_translation_regime",
    "load_scenarios",
    "parse_scenario",
    "ptdump",
    "ptdump_s2",
    "run_at",
    "save_scenarios",
    "scenario_dict",
]
__version__ = "0.1.0"
