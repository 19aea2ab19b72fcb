"""``boot``: Linux under ``qemu-system-aarch64 -M virt,virtualization=on -cpu max`` (TCG),
its serial console on a pipe, a shell driven by :meth:`Guest.shell`, the gdbstub on a
localhost TCP port with TCP_NODELAY (``-chardev socket,...,nodelay=on -gdb chardev:...``).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tools.realsys import RealsysError
from tools.realsys.initrd import PROMPT, READY

QEMU = "qemu-system-aarch64"
_ESC = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BootConfig:
    kernel: Path
    initrd: Path
    virtualization: bool = True
    cpu: str = "max"
    memory: str = "256M"
    append: str = ""
    timeout: float = 180.0
    gdb_port: int = field(default_factory=free_port)

    def command(self) -> list[str]:
        machine = "virt,virtualization=" + ("on" if self.virtualization else "off")
        cmdline = " ".join(["console=ttyAMA0", "panic=-1", self.append]).strip()
        return ["nice", "-n", "10", QEMU, "-M", machine, "-cpu", self.cpu, "-m", self.memory,
                "-smp", "1", "-nic", "none", "-display", "none", "-monitor", "none",
                "-serial", "stdio", "-no-reboot",
                "-chardev", f"socket,id=atlabgdb,host=127.0.0.1,port={self.gdb_port},"
                            "server=on,wait=off,nodelay=on",
                "-gdb", "chardev:atlabgdb",
                "-kernel", str(self.kernel), "-initrd", str(self.initrd), "-append", cmdline]


class Guest:
    """A booted guest; use as a context manager (QEMU is killed on exit)."""

    def __init__(self, config: BootConfig) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.console = ""  # everything the serial console printed
        self._seq = 0
        self.boot_seconds = 0.0

    def __enter__(self) -> Guest:
        self.boot()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def boot(self) -> None:
        if shutil.which(QEMU) is None:
            raise RealsysError(f"{QEMU} is not installed (tools/install-system-deps.sh)")
        for p in (self.config.kernel, self.config.initrd):
            if not Path(p).is_file():
                raise RealsysError(f"{p}: no such file (run 'python -m tools.realsys fetch')")
        start = time.monotonic()
        self.proc = subprocess.Popen(self.config.command(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.wait_for(READY, self.config.timeout, what="the guest's init")
        self.wait_for(PROMPT, 30, what="the shell prompt")
        self.boot_seconds = time.monotonic() - start

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def _read(self, deadline: float) -> bool:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(0.0, min(0.5, deadline - time.monotonic())))
        if not ready:
            if self.proc.poll() is not None:
                raise RealsysError(f"QEMU exited (status {self.proc.returncode}); last console "
                                   f"line: {self.last_line()!r}")
            return False
        chunk = os.read(fd, 65536)
        if not chunk:
            raise RealsysError(f"QEMU closed its console; last line: {self.last_line()!r}")
        self.console += _ESC.sub("", chunk.decode("utf-8", "replace")).replace("\r", "")
        return True

    def last_line(self) -> str:
        lines = [ln for ln in self.console.splitlines() if ln.strip()]
        return lines[-1][:160] if lines else ""

    def wait_for(self, text: str, timeout: float, *, what: str, since: int = 0) -> int:
        """Wait until ``text`` appears in the console after offset ``since``; its end offset."""
        deadline = time.monotonic() + timeout
        while True:
            at = self.console.find(text, since)
            if at >= 0:
                return at + len(text)
            if time.monotonic() >= deadline:
                raise RealsysError(f"timed out after {timeout:.0f} s waiting for {what}; last "
                                   f"console line: {self.last_line()!r}")
            self._read(deadline)

    def shell(self, command: str, timeout: float = 60.0) -> str:
        """Run one shell command on the console; its output (the lines it printed)."""
        assert self.proc is not None and self.proc.stdin is not None
        self._seq += 1
        begin, end = f"ATLAB-BEGIN-{self._seq}\n", f"ATLAB-END-{self._seq}\n"
        start = len(self.console)
        # The markers are spelled in two halves so that the echoed command line (which the
        # console may wrap anywhere) never contains them; the output is what lies between.
        line = (f"echo ATLAB-BEGIN-''{self._seq}; {command}; "
                f"echo ATLAB-END-''{self._seq}\n")
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()
        what = f"the command {command[:40]!r}"
        first = self.wait_for(begin, timeout, what=what, since=start)
        stop = self.wait_for(end, timeout, what=what, since=first)
        return self.console[first:stop - len(end)].strip("\n")
