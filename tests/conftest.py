"""Shared pytest set-up for atlab's tests, doctests and notebooks."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

# Set before anything imports matplotlib or starts a notebook kernel (kernels inherit it).
os.environ.setdefault("MPLBACKEND", "Agg")
# Silences jupyter_core's platformdirs deprecation warning in kernels and servers.
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    pass
else:
    # Same examples on every CI run; a modest number keeps the suite inside CI's time budget.
    settings.register_profile(
        "ci",
        derandomize=True,
        max_examples=50,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile("dev", max_examples=100)
    in_ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    settings.load_profile("ci" if in_ci else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright drives Debian's Chromium: Playwright's own browser build is not used."""
    args = [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS]
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": args}


@pytest.fixture(scope="session")
def kvm_at() -> Any:
    """KVM's AT emulation built in userspace (tools/kvm) from the Debian kernel tree, cached in
    build/kvm.  Skipped only when the tree is absent outside CI; with CI=true a missing tree or
    a failed build fails the tests."""
    from pathlib import Path

    from tools.kvm import harness

    src = harness.kernel_source()
    if not Path(src).exists() and os.environ.get("CI") != "true":
        pytest.skip(f"no kernel tree at {src}: install linux-source-6.12 "
                    "(tools/install-system-deps.sh) or set KERNEL_SRC")
    return harness.build()
