"""The workshop hub's settings: ``HUB_*`` environment variables (``make hub HUB_LEARNERS=20``)
or the launcher's options (``python -m tools.hub --learners 20``), checked here.

Every bad value is one line: ``HUB_LEARNERS='abc' is not a whole number (learners, 1-500)``.

>>> s = parse_settings({"HUB_LEARNERS": "20", "HUB_MEM": "768M"}, root=Path("/r"), cores=2)
>>> s.learners, s.mem_bytes // 2**20, s.cpu, s.spawn_limit, str(s.state_dir)
(20, 768, 1.0, 4, '/r/build/hub')
>>> parse_settings({"HUB_LEARNERS": "abc"}, root=Path("/r"), cores=2)
Traceback (most recent call last):
...
atlab.errors.AtlabError: HUB_LEARNERS='abc' is not a whole number (learners in the room, 1-500)
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from atlab.errors import AtlabError, clip

#: Concurrent spawns per core: a learner's server start costs ~1-2 s of one core (measured in
#: docs/workshop.md, "Sizing"); more at once only makes everyone's start slower.
SPAWNS_PER_CORE = 2

#: name -> (default, help); the option ``--learners`` is ``HUB_LEARNERS``.
VARIABLES: dict[str, tuple[str, str]] = {
    "HUB_LEARNERS": ("10", "learners in the room, 1-500"),
    "HUB_PORT": ("8000", "public port, 1-65535"),
    "HUB_IP": ("0.0.0.0", "address to listen on"),
    "HUB_MEM": ("1G", "memory per learner, e.g. 768M or 1G, 256M-64G"),
    "HUB_CPU": ("1", "cores per learner, 0.1-64"),
    "HUB_CULL_TIMEOUT": ("3600", "seconds of inactivity before a server is stopped, 10-604800"),
    "HUB_SPAWN_LIMIT": ("", "servers starting at once; default 2 per core"),
    "HUB_DIR": ("", "state directory (database, learners' homes); default build/hub"),
    "HUB_PASSWORD": ("", "the shared learner password (8+ characters); default generated"),
    "HUB_SOLUTIONS": ("0", "1 to give learners exercises/solutions/ too"),
    "HUB_LIMITS": ("auto", "how limits are enforced: auto, cgroup-v1 or rlimit"),
}

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True, slots=True)
class HubSettings:
    """One room.  ``mem_bytes``/``cpu`` are per learner; ``state_dir`` holds the hub database,
    cookie secret, generated password and every learner's home (``home/<name>``)."""

    learners: int
    port: int
    ip: str
    mem_bytes: int
    cpu: float
    cull_timeout: int
    spawn_limit: int
    state_dir: Path
    password: str | None
    solutions: bool
    limits: str = "auto"

    def to_json(self) -> str:
        d: dict[str, Any] = asdict(self)
        d["state_dir"] = str(self.state_dir)
        return json.dumps(d, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> HubSettings:
        d = json.loads(text)
        d["state_dir"] = Path(d["state_dir"])
        return HubSettings(**d)


def _bad(name: str, raw: str, what: str) -> AtlabError:
    return AtlabError(f"{name}={clip(raw)} {what} ({VARIABLES[name][1]})")


def _int(values: Mapping[str, str], name: str, lo: int, hi: int) -> int:
    raw = values.get(name) or VARIABLES[name][0]
    text = raw.strip()
    if not re.fullmatch(r"\d{1,9}", text):
        raise _bad(name, raw, "is not a whole number")
    n = int(text)
    if not lo <= n <= hi:
        raise _bad(name, raw, "is out of range")
    return n


def parse_size(name: str, raw: str) -> int:
    """``768M``, ``1G``, ``1.5GiB``, ``1073741824`` -> bytes."""
    m = _SIZE.fullmatch(raw)
    if m is None:
        raise _bad(name, raw, "is not a size like 768M or 1G")
    value = float(m.group(1)) * _UNITS[m.group(2).upper()]
    if not math.isfinite(value):
        raise _bad(name, raw, "is not a size like 768M or 1G")
    return int(value)


def parse_settings(values: Mapping[str, str], *, root: Path, cores: int) -> HubSettings:
    """The settings from ``HUB_*`` values (missing or empty: the default)."""
    unknown = sorted(k for k in values if k.startswith("HUB_") and k not in VARIABLES)
    if unknown:
        raise AtlabError(f"unknown setting {clip(unknown[0])}; known: {', '.join(VARIABLES)}")
    learners = _int(values, "HUB_LEARNERS", 1, 500)
    port = _int(values, "HUB_PORT", 1, 65535)
    ip_raw = values.get("HUB_IP") or VARIABLES["HUB_IP"][0]
    try:
        ip = str(ipaddress.ip_address(ip_raw.strip()))
    except ValueError:
        raise _bad("HUB_IP", ip_raw, "is not an IP address") from None
    mem_raw = values.get("HUB_MEM") or VARIABLES["HUB_MEM"][0]
    mem = parse_size("HUB_MEM", mem_raw)
    if not 256 * 2**20 <= mem <= 64 * 2**30:
        raise _bad("HUB_MEM", mem_raw, "is out of range")
    cpu_raw = values.get("HUB_CPU") or VARIABLES["HUB_CPU"][0]
    if not re.fullmatch(r"\s*\d{1,3}(\.\d{1,3})?\s*", cpu_raw):
        raise _bad("HUB_CPU", cpu_raw, "is not a number of cores")
    cpu = float(cpu_raw)
    if not 0.1 <= cpu <= 64:
        raise _bad("HUB_CPU", cpu_raw, "is out of range")
    cull = _int(values, "HUB_CULL_TIMEOUT", 10, 604800)
    if values.get("HUB_SPAWN_LIMIT"):
        spawn = _int(values, "HUB_SPAWN_LIMIT", 1, 500)
    else:
        spawn = max(1, SPAWNS_PER_CORE * cores)
    dir_raw = values.get("HUB_DIR") or ""
    if "\0" in dir_raw:
        raise _bad("HUB_DIR", dir_raw, "is not a path")
    try:
        state = Path(dir_raw).expanduser() if dir_raw.strip() else root / "build" / "hub"
    except RuntimeError:  # ~user of an unknown user
        raise _bad("HUB_DIR", dir_raw, "names an unknown home directory") from None
    if not state.is_absolute():
        state = root / state
    password = values.get("HUB_PASSWORD") or None
    if password is not None and (len(password) < 8 or not password.isprintable()):
        raise _bad("HUB_PASSWORD", "…", "is shorter than 8 characters or not printable")
    sol_raw = values.get("HUB_SOLUTIONS") or VARIABLES["HUB_SOLUTIONS"][0]
    if sol_raw.strip() not in ("0", "1"):
        raise _bad("HUB_SOLUTIONS", sol_raw, "is not 0 or 1")
    lim_raw = values.get("HUB_LIMITS") or VARIABLES["HUB_LIMITS"][0]
    if lim_raw.strip() not in ("auto", "cgroup-v1", "rlimit"):
        raise _bad("HUB_LIMITS", lim_raw, "is not auto, cgroup-v1 or rlimit")
    return HubSettings(learners=learners, port=port, ip=ip, mem_bytes=mem, cpu=cpu,
                       cull_timeout=cull, spawn_limit=min(spawn, learners), state_dir=state,
                       password=password, solutions=sol_raw.strip() == "1",
                       limits=lim_raw.strip())
