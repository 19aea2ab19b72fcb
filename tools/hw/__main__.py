"""``python -m tools.hw FILE...``: run scenario files on QEMU and print the results as JSON.

Each FILE (JSON, or YAML when it ends in .yaml/.yml) holds one scenario or a list of them.
The output is one JSON list entry per scenario: the list of its ops' PAR_EL1 values
(``"0x%016x"``, or null when the op took an exception or QEMU crashed).  ``--full`` prints
objects with the exceptions, register read-backs and warnings instead.  ``--check`` compares
every op with its ``expected_par``/``expected_exception``, prints each mismatch on stderr and
exits 1 if there is any.  Exit status 2 means the harness could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.hw.driver import (
    DEFAULT_TIMEOUT,
    HarnessError,
    OpResult,
    ScenarioResult,
    check_scenario,
    run_scenarios,
)


def _hex(value: int) -> str:
    return f"0x{value:016x}"


def load_scenarios(path: Path) -> list[Mapping[str, Any]]:
    """The scenarios in one JSON or YAML file (a mapping or a list of mappings)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise HarnessError(f"{path}: {err.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data: Any = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ValueError as err:  # json.JSONDecodeError and yaml.YAMLError are ValueErrors
        raise HarnessError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {err}"
        ) from None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, Mapping) for item in items):
        raise HarnessError(f"{path}: expected a scenario mapping or a list of them")
    return items


def op_json(result: OpResult) -> dict[str, Any]:
    """One op in ``--full`` form."""
    exc = result.exception
    return {
        "par": None if result.par is None else _hex(result.par),
        "exception": None
        if exc is None
        else {
            "taken_to_el": exc.taken_to_el,
            "esr": _hex(exc.esr),
            "far": _hex(exc.far),
            "hpfar": _hex(exc.hpfar),
            "elr": _hex(exc.elr),
        },
        "crashed": result.crashed,
    }


def scenario_json(result: ScenarioResult, *, full: bool) -> Any:
    """One scenario's output entry."""
    if not full:
        return [None if op.par is None else _hex(op.par) for op in result.ops]
    return {
        "name": result.name,
        "ops": [op_json(op) for op in result.ops],
        "readbacks": {reg: _hex(value) for reg, value in result.readbacks.items()},
        "warnings": list(result.warnings),
        "crash": result.crash,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.hw", description="Run atlab scenarios' AT ops on QEMU."
    )
    parser.add_argument("files", metavar="FILE", nargs="+", type=Path)
    parser.add_argument("--full", action="store_true", help="exceptions, read-backs, warnings")
    parser.add_argument("--check", action="store_true", help="compare with expected_* values")
    parser.add_argument(
        "--qemu",
        default="qemu-system-aarch64",
        help="QEMU binary (>= 10), or 10 / 11 (QEMU 11.1 in the chroot of install-system-deps.sh)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds without progress before a boot counts as hung (default %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        scenarios = [scenario for path in args.files for scenario in load_scenarios(path)]
        results = run_scenarios(scenarios, qemu=args.qemu, timeout=args.timeout)
    except HarnessError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps([scenario_json(r, full=args.full) for r in results], indent=1))
    if not args.check:
        return 0
    mismatches = [
        line for s, r in zip(scenarios, results, strict=True) for line in check_scenario(s, r)
    ]
    for line in mismatches:
        print(f"MISMATCH {line}", file=sys.stderr)
    n_ops = sum(len(r.ops) for r in results)
    print(
        f"checked {n_ops} ops of {len(results)} scenarios: {len(mismatches)} mismatches",
        file=sys.stderr,
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
