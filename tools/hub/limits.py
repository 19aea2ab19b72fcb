"""Per-learner memory and CPU limits for a local-process spawner (no systemd, no containers).

Two ways, chosen by :func:`detect` from what this machine allows:

- ``cgroup-v1``: the hub can create control groups under ``/sys/fs/cgroup/memory`` and
  ``/sys/fs/cgroup/cpu`` (root on a cgroup v1 host, as the reference machine): each learner
  gets ``atlab-hub/<name>`` in both, with ``memory.limit_in_bytes`` and a CFS quota
  (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``).  The learner's server joins the groups before
  it executes, so it and every kernel it starts count together: a learner over the limit has a
  kernel killed by the kernel's OOM killer ("kernel died, restarting"), the others are
  untouched; CPU beyond the quota is throttled.
- ``rlimit``: otherwise, ``RLIMIT_AS`` (address space: the memory setting plus
  :data:`RLIMIT_AS_SLACK`) per *process* of the learner's server and kernels, a guard against
  one runaway allocation rather than a per-learner budget; CPU is then not limited (say so:
  :func:`describe`).

cgroup v2 (a unified hierarchy with delegated ``memory``/``cpu`` controllers) is not used: the
reference machine has v1; see README, LIMITATIONS.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from atlab.errors import AtlabError

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP = "atlab-hub"
CFS_PERIOD_US = 100_000
#: ``RLIMIT_AS`` counts address space, not memory: an idle kernel here maps ~950 MB (RSS
#: ~55 MB; thread stacks and malloc arenas reserved, not used), so the per-process cap is the
#: memory setting plus this much.
RLIMIT_AS_SLACK = 2**30


@dataclass(frozen=True, slots=True)
class Limits:
    mode: str  # "cgroup-v1" or "rlimit"
    mem_bytes: int
    cpu: float
    cgroup_root: Path = CGROUP_ROOT


def _writable_v1(root: Path) -> bool:
    for controller in ("memory", "cpu"):
        d = root / controller
        if not (d / "cgroup.procs").exists() or not os.access(d, os.W_OK):
            return False
        probe = d / GROUP
        try:
            probe.mkdir(exist_ok=True)
        except OSError:
            return False
    return True


def detect(mem_bytes: int, cpu: float, cgroup_root: Path = CGROUP_ROOT,
           want: str = "auto") -> Limits:
    """cgroup v1 when the hub may create groups, else rlimit; ``want`` forces one (a forced
    cgroup-v1 that is not available is an error)."""
    if want == "rlimit":
        return Limits("rlimit", mem_bytes, cpu, cgroup_root)
    if _writable_v1(cgroup_root):
        return Limits("cgroup-v1", mem_bytes, cpu, cgroup_root)
    if want == "cgroup-v1":
        raise AtlabError(f"HUB_LIMITS=cgroup-v1 but the hub cannot create groups under "
                         f"{cgroup_root}/memory and {cgroup_root}/cpu (needs root on a cgroup "
                         "v1 host): use HUB_LIMITS=auto or rlimit")
    return Limits("rlimit", mem_bytes, cpu, cgroup_root)


def describe(limits: Limits) -> str:
    mib = limits.mem_bytes // 2**20
    if limits.mode == "cgroup-v1":
        return (f"memory {mib} MiB and CPU {limits.cpu:g} core(s) per learner, all their "
                "processes together (cgroup v1)")
    return (f"address space {mib} MiB + {RLIMIT_AS_SLACK >> 20} MiB per process (RLIMIT_AS), "
            "not per learner; CPU not limited (no writable cgroup here)")


def _groups(limits: Limits, name: str) -> list[Path]:
    return [limits.cgroup_root / c / GROUP / name for c in ("memory", "cpu")]


def prepare(limits: Limits, name: str) -> list[Path]:
    """Create the learner's groups with their limits (in the hub); return the files the
    server's process writes its pid to (empty for ``rlimit``)."""
    if limits.mode != "cgroup-v1":
        return []
    mem, cpu = _groups(limits, name)
    for d in (mem, cpu):
        d.mkdir(parents=True, exist_ok=True)
    (mem / "memory.limit_in_bytes").write_text(str(limits.mem_bytes))
    memsw = mem / "memory.memsw.limit_in_bytes"
    if memsw.exists():  # with swap accounting: no escape into swap either
        memsw.write_text(str(limits.mem_bytes))
    (cpu / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
    (cpu / "cpu.cfs_quota_us").write_text(str(max(1000, int(limits.cpu * CFS_PERIOD_US))))
    return [mem / "cgroup.procs", cpu / "cgroup.procs"]


def preexec(limits: Limits, procs: list[Path]) -> Callable[[], None]:
    """The function the spawned server runs between fork and exec."""
    mem = limits.mem_bytes

    def apply() -> None:
        if procs:
            pid = str(os.getpid())
            for path in procs:
                with open(path, "w") as f:
                    f.write(pid)
        else:
            cap = mem + RLIMIT_AS_SLACK
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return apply


def release(limits: Limits, name: str) -> None:
    """Remove the learner's groups once their processes are gone (a group still in use stays:
    the next spawn reuses it)."""
    for d in _groups(limits, name):
        with contextlib.suppress(OSError):
            d.rmdir()


def cgroup_of(pid: int, controller: str) -> str | None:
    """The v1 cgroup path of ``pid`` for ``controller`` (``/atlab-hub/ada``), or None."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None
