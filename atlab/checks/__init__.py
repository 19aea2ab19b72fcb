"""Exercise checkers: compare a learner's function with atlab's reference over many cases.

Each exercise in ``exercises/`` asks for one function with a fixed, typed signature; its
checker, ``check_<exercise>(fn)``, calls ``fn`` on a table of cases (edge cases included),
computes the expected answer *with the library* (the walkers, :func:`~atlab.at.run_at`,
:mod:`atlab.nv` ...), and prints

- one ``✓``/``✗`` line per group of cases,
- one failing case per failing group, most instructive first (the groups the exercise names
  in ``group_order``, then answers that match a known typical mistake): the input, the
  expected and the actual answer, and its own hint (a specific one when the answer matches a
  typical mistake; a hint already printed is referred to, not repeated),
- a summary line.

The package reads like the exercise list: ``atlab.checks.e07_at_regime_and_ttbr`` holds
exercise 07's checker; :mod:`atlab.checks.core` the machinery (cases, groups, hints, report).

An untouched stub — a function that raises :class:`NotImplementedError`, or returns
:data:`TODO` — is reported as "not attempted"; nothing the learner's function does makes the
checker raise.  Each checker returns a :class:`CheckResult` (status, counts, failures) so that tests
can assert on it.  There is no global state: every call builds its cases afresh, and each case
gets fresh memory.

>>> def stub(desc: int, level: int, granule: Granule) -> DescFields:
...     raise NotImplementedError
>>> r = check_decode_s1_descriptor(stub)
○ decode_s1_descriptor: not attempted (the stub is untouched).
Write the function body, then run this cell again.
>>> r.status, r.passed
(<Status.NOT_ATTEMPTED: 'not attempted'>, 0)
>>> r = check_decode_s1_descriptor(reference_decode_descriptor, quiet=True)
>>> r.status.value, r.failed
('passed', 0)

The typical mistakes each checker recognises are listed in :data:`EXERCISES` (field
``mistakes``); ``tests/test_checks.py`` checks that every checker rejects each of them.
"""

from __future__ import annotations

from atlab.checks.core import (
    TODO,
    Case,
    CheckResult,
    Exercise,
    Failure,
    Mistake,
    Status,
    check,
)
from atlab.checks.e01_decode_descriptor import (
    DECODE,
    DescFields,
    check_decode_s1_descriptor,
    reference_decode_descriptor,
)
from atlab.checks.e02_walk_geometry import (
    GEOMETRY,
    check_walk_geometry,
    reference_walk_geometry,
)
from atlab.checks.e03_va_range_and_tbi import (
    VA_RANGE,
    check_va_range,
    reference_va_range,
)
from atlab.checks.e04_translate_by_hand import (
    TRANSLATE,
    check_translate,
    reference_translate,
)
from atlab.checks.e05_permissions import (
    PERMS,
    check_s1_permissions,
    reference_s1_permissions,
)
from atlab.checks.e06_fix_tcr import (
    MAKE_TCR,
    check_make_tcr_el1,
    reference_make_tcr_el1,
)
from atlab.checks.e07_at_regime_and_ttbr import (
    AT_TARGET,
    check_at_target,
    reference_at_target,
)
from atlab.checks.e08_s1e1r_in_el20 import (
    S1E1R_EL20,
    check_s1e1r_in_el20,
    reference_s1e1r_in_el20,
)
from atlab.checks.e09_predict_par import (
    PREDICT_PAR,
    WalkOutcome,
    check_encode_par,
    reference_encode_par,
)
from atlab.checks.e10_tables_for_a_par import (
    TABLES_FOR_PAR,
    TABLES_OP,
    TABLES_REGS,
    check_tables_for_par,
    reference_tables_for_par,
)
from atlab.checks.e11_stage2_start_level import (
    S2_START,
    check_s2_start,
    reference_s2_start,
)
from atlab.checks.e12_stage2_fault_during_s1 import (
    S2_FAULT,
    check_s2_fault_during_s1,
    reference_s2_fault_during_s1,
)
from atlab.checks.e13_combined_attributes import (
    COMBINE_ATTRS,
    check_combine_attrs,
    reference_combine_attrs,
)
from atlab.checks.e14_emulate_at_for_a_guest import (
    NV_PATH,
    NV_PATHS,
    NV_S12_SPLIT,
    check_nv_at_path,
    reference_nv_at_path,
)
from atlab.checks.e15_tlb_maintenance import (
    TLB_MAINTENANCE,
    TLB_VA_GLOBAL,
    TLB_VA_NG,
    TLB_VA_OTHER,
    TableChange,
    check_tlb_maintenance,
    reference_tlb_maintenance,
    tlb_changes,
    tlb_lab,
)
from atlab.checks.e16_execute_only_el0 import (
    EXECUTE_ONLY_EL0,
    check_execute_only_el0,
    reference_execute_only_el0,
)
from atlab.checks.e17_pa_from_a_snapshot import (
    PA_FROM_SNAPSHOT,
    check_snapshot_pa,
    reference_snapshot_pa,
)

__all__ = [
    "EXERCISES",
    "NV_PATHS",
    "NV_S12_SPLIT",
    "TABLES_OP",
    "TABLES_REGS",
    "TLB_VA_GLOBAL",
    "TLB_VA_NG",
    "TLB_VA_OTHER",
    "TODO",
    "Case",
    "CheckResult",
    "DescFields",
    "Exercise",
    "Failure",
    "Mistake",
    "Status",
    "TableChange",
    "WalkOutcome",
    "check",
    "check_at_target",
    "check_combine_attrs",
    "check_decode_s1_descriptor",
    "check_encode_par",
    "check_execute_only_el0",
    "check_make_tcr_el1",
    "check_nv_at_path",
    "check_s1_permissions",
    "check_s1e1r_in_el20",
    "check_s2_fault_during_s1",
    "check_s2_start",
    "check_snapshot_pa",
    "check_tables_for_par",
    "check_tlb_maintenance",
    "check_translate",
    "check_va_range",
    "check_walk_geometry",
    "reference_at_target",
    "reference_combine_attrs",
    "reference_decode_descriptor",
    "reference_encode_par",
    "reference_execute_only_el0",
    "reference_make_tcr_el1",
    "reference_nv_at_path",
    "reference_s1_permissions",
    "reference_s1e1r_in_el20",
    "reference_s2_fault_during_s1",
    "reference_s2_start",
    "reference_snapshot_pa",
    "reference_tables_for_par",
    "reference_tlb_maintenance",
    "reference_translate",
    "reference_va_range",
    "reference_walk_geometry",
    "tlb_changes",
    "tlb_lab",
]

# --- the catalogue ---------------------------------------------------------------------------

#: Every exercise by its number in ``exercises/`` (the checker is ``check_<name>``).
EXERCISES: dict[str, Exercise] = {
    "01_decode_descriptor": DECODE,
    "02_walk_geometry": GEOMETRY,
    "03_va_range_and_tbi": VA_RANGE,
    "04_translate_by_hand": TRANSLATE,
    "05_permissions": PERMS,
    "06_fix_tcr": MAKE_TCR,
    "07_at_regime_and_ttbr": AT_TARGET,
    "08_s1e1r_in_el20": S1E1R_EL20,
    "09_predict_par": PREDICT_PAR,
    "10_tables_for_a_par": TABLES_FOR_PAR,
    "11_stage2_start_level": S2_START,
    "12_stage2_fault_during_s1": S2_FAULT,
    "13_combined_attributes": COMBINE_ATTRS,
    "14_emulate_at_for_a_guest": NV_PATH,
    "15_tlb_maintenance": TLB_MAINTENANCE,
    "16_execute_only_el0": EXECUTE_ONLY_EL0,
    "17_pa_from_a_snapshot": PA_FROM_SNAPSHOT,
}
