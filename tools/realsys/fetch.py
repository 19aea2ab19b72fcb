"""``fetch``: Debian's arm64 kernel and busybox-static as packages, without touching the
system's apt configuration.

apt-get runs with the arm64 architecture and private lists, cache and status under
``build/realsys/apt``, reusing the mirror URI configured in
``/etc/apt/sources.list.d/debian.sources`` (read at run time: no host name is written into the
repository).  The package is chosen by a name pattern from the apt metadata (the newest
version that matches).  The private lists (whose file names contain the mirror host) are
deleted afterwards.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tools.realsys import RealsysError

BUILD = Path("build/realsys")
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")

#: kernel flavour -> (suite, package name pattern)
KERNELS: dict[str, tuple[str, str]] = {
    "6.1": ("bookworm", r"linux-image-6\.1\.0-[0-9]+-cloud-arm64"),
    "6.12": ("bookworm-backports", r"linux-image-6\.12\.[0-9]+\+bpo-cloud-arm64|"
                                   r"linux-image-6\.12\.[0-9.]+\+deb12-cloud-arm64"),
}
BUSYBOX = "busybox-static"


@dataclass(frozen=True)
class Fetched:
    kernel: Path  # the raw arm64 Image (vmlinuz-*)
    kernel_package: str
    busybox: Path
    busybox_package: str


def mirror_uri() -> str:
    """The Debian mirror URI the system already uses (never written into the repository)."""
    try:
        text = SOURCES.read_text(encoding="utf-8")
    except OSError as exc:
        raise RealsysError(f"{SOURCES}: cannot read ({exc.strerror})") from None
    for m in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
        if "security" not in m.group(1):
            return m.group(1)
    raise RealsysError(f"{SOURCES}: no Debian mirror URI found")


def _apt_options(root: Path) -> list[str]:
    return ["-o", "APT::Architecture=arm64", "-o", "APT::Architectures=arm64",
            "-o", f"Dir::State::Lists={root / 'lists'}",
            "-o", f"Dir::Cache={root / 'cache'}",
            "-o", f"Dir::State::status={root / 'status'}",
            "-o", f"Dir::Etc::SourceList={root / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={root / 'sources.list.d'}",
            "-o", "Debug::NoLocking=1", "-q"]


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RealsysError(f"{what}: {exc}") from None
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RealsysError(f"{what} failed: {last}")
    return proc.stdout


def _newest(names: list[str], pattern: str) -> str:
    rx = re.compile(pattern)
    found = [n for n in names if rx.fullmatch(n)]
    if not found:
        raise RealsysError(f"no package in the apt metadata matches {pattern!r}")

    def key(name: str) -> list[int]:
        return [int(x) for x in re.findall(r"\d+", name)]

    return max(found, key=key)


def fetch(kernel: str = "6.1", build: Path = BUILD) -> Fetched:
    """Download and unpack the kernel of ``kernel`` (a key of :data:`KERNELS`) and busybox."""
    if kernel not in KERNELS:
        raise RealsysError(f"unknown kernel {kernel!r}; one of {', '.join(KERNELS)}")
    suite, pattern = KERNELS[kernel]
    debs = build / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = _unpacked(kernel, build)
    if found is not None:
        return found
    root = (build / "apt").resolve()
    try:
        for sub in ("lists/partial", "cache/archives/partial", "sources.list.d"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "status").touch()
        (root / "sources.list").write_text("", encoding="utf-8")
        (root / "sources.list.d" / "atlab.sources").write_text(
            f"Types: deb\nURIs: {mirror_uri()}\nSuites: bookworm bookworm-backports\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n", encoding="utf-8")
        opts = _apt_options(root)
        _run(["apt-get", *opts, "update"], "apt-get update (arm64, private lists)")
        names = _run(["apt-cache", *opts, "pkgnames", "linux-image-"], "apt-cache pkgnames")
        kpkg = _newest(names.split(), pattern)
        for pkg in (kpkg, BUSYBOX):
            target = f"{pkg}/{suite}" if pkg == kpkg else pkg
            _run(["apt-get", *opts, "download", target], f"apt-get download {pkg}",
                 cwd=debs.resolve())
    finally:
        shutil.rmtree(root, ignore_errors=True)  # the lists' file names name the mirror host
    for deb in debs.glob("*.deb"):
        out = build / "pkg" / deb.name.split("_")[0]
        if not out.exists():
            out.mkdir(parents=True)
            _run(["dpkg-deb", "-x", str(deb), str(out)], f"dpkg-deb -x {deb.name}")
    found = _unpacked(kernel, build)
    if found is None:
        raise RealsysError(f"{build}: the unpacked packages hold no vmlinuz or busybox")
    return found


def _unpacked(kernel: str, build: Path) -> Fetched | None:
    rx = re.compile(KERNELS[kernel][1])
    kdirs = sorted(p for p in (build / "pkg").glob("linux-image-*") if rx.fullmatch(p.name))
    busybox = build / "pkg" / BUSYBOX / "bin" / "busybox"
    if not kdirs or not busybox.exists():
        return None
    images = sorted((kdirs[-1] / "boot").glob("vmlinuz-*"))
    if not images:
        return None
    return Fetched(images[-1], kdirs[-1].name, busybox, BUSYBOX)
