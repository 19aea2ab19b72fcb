"""``initrd``: a newc cpio initramfs written in Python (the ``cpio`` tool is not needed).

It holds the static busybox, ``/dev/console`` and an ``/init`` script that mounts proc, sysfs,
devtmpfs and debugfs and starts a shell on the console with the prompt :data:`PROMPT`.  The
"tiny user process" whose pages the comparison walks is ``/bin/spin``: a busybox shell loop
(``while :; do :; done``) started in the background from that shell, so it is the task running
on the CPU when QEMU is stopped.
"""

from __future__ import annotations

import gzip
import stat
from pathlib import Path

PROMPT = "atlab# "
READY = "ATLAB-INIT-READY"

INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo 0 > /proc/sys/kernel/kptr_restrict
export PS1='{PROMPT}'
echo {READY}
exec sh
"""

SPIN = """#!/bin/busybox sh
while :; do :; done
"""


def _entry(name: str, mode: int, data: bytes = b"", ino: int = 0,
           rdev: tuple[int, int] = (0, 0)) -> bytes:
    namez = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(namez), 0]
    head = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
    out = head + namez
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def make_cpio(files: dict[str, tuple[int, bytes]], devices: dict[str, tuple[int, int]]) -> bytes:
    """A newc archive of directories (data ``b""`` and a directory mode), regular files and
    character devices."""
    out = b""
    ino = 1
    for name, (mode, data) in files.items():
        out += _entry(name, mode, data, ino)
        ino += 1
    for name, rdev in devices.items():
        out += _entry(name, stat.S_IFCHR | 0o600, b"", ino, rdev)
        ino += 1
    return out + _entry("TRAILER!!!", 0)


def build_initrd(busybox: Path, out: Path, extra: dict[str, Path] | None = None) -> Path:
    """Write ``out`` (a gzipped newc cpio) from the busybox binary at ``busybox``, with the
    ``extra`` executables (``{"bin/name": path}``)."""
    d = stat.S_IFDIR | 0o755
    x = stat.S_IFREG | 0o755
    files: dict[str, tuple[int, bytes]] = {
        "bin": (d, b""), "sbin": (d, b""), "usr": (d, b""), "usr/bin": (d, b""),
        "usr/sbin": (d, b""), "proc": (d, b""), "sys": (d, b""), "dev": (d, b""),
        "tmp": (d, b""),
        "bin/busybox": (x, busybox.read_bytes()),
        "bin/spin": (x, SPIN.encode()),
        "init": (x, INIT.encode()),
    }
    for name, path in (extra or {}).items():
        files[name] = (x, path.read_bytes())
    data = make_cpio(files, {"dev/console": (5, 1), "dev/null": (1, 3)})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(data, 6, mtime=0))
    return out
