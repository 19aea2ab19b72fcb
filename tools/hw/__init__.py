"""The QEMU hardware harness: AT instructions run on ``qemu-system-aarch64 -cpu max``.

``run_scenarios`` takes atlab scenario dicts and returns, per op, PAR_EL1 or the exception
the op took; ``python -m tools.hw FILE...`` does the same from the command line.
"""

from tools.hw.driver import (
    HarnessError,
    HwException,
    OpResult,
    ScenarioResult,
    check_environment,
    check_op,
    check_scenario,
    run_scenarios,
)

__all__ = [
    "HarnessError",
    "HwException",
    "OpResult",
    "ScenarioResult",
    "check_environment",
    "check_op",
    "check_scenario",
    "run_scenarios",
]
