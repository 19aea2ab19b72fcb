"""QEMU's gdbstub (a live guest) through gdb-multiarch, driven by pygdbmi (GDB's machine interface).

Why gdb and pygdbmi rather than a hand-written Remote Serial Protocol client: gdb-multiarch is
a Debian package that already speaks every part of the protocol QEMU uses (target
descriptions with the 274 system registers of ``org.qemu.gdb.arm.sys.regs``, packet sizes,
escaping, ``qRcmd`` for monitor commands); pygdbmi is the maintained parser of gdb's MI
output.  What is left here is a few MI commands.

- registers: ``-data-list-register-names`` once, then ``-data-list-register-values x``;
- physical memory: ``maint packet Qqemu.PhyMemMode:1`` then ``-data-read-memory-bytes``;
- QEMU's own translation: ``monitor gva2gpa VA`` (the HMP command, through qRcmd), inside
  :meth:`GdbStub.regime_view`.
"""

from __future__ import annotations

import contextlib
import re
import select
import shutil
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from atlab.errors import AtlabError

GDB = "gdb-multiarch"
_PSTATE_PAN = 1 << 22


class GdbStub:
    """A gdb-multiarch attached to a QEMU gdbstub (the VM stops while attached)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        try:
            from pygdbmi.gdbcontroller import GdbController
        except ImportError:
            raise AtlabError("pygdbmi is not installed (pip install pygdbmi, or "
                             "pip install -e '.[dev]')") from None
        if shutil.which(GDB) is None:
            raise AtlabError(f"{GDB} is not installed (tools/install-system-deps.sh)")
        self.timeout = timeout
        self._token = 0
        self._gdb = GdbController(command=[GDB, "--nx", "--quiet", "--interpreter=mi3"])
        self._names: dict[str, int] = {}
        self.phys = False
        self.cmd("-gdb-set architecture aarch64")
        self.cmd("-gdb-set pagination off")
        self.cmd("-gdb-set tcp auto-retry off")  # no guest: fail at once, not after 15 s
        self.cmd("-gdb-set tcp connect-timeout 5")
        try:
            self.cmd(f"-target-select remote {host}:{port}")
        except AtlabError as exc:
            self._gdb.exit()
            raise AtlabError(f"no guest at the gdbstub {host}:{port} ({exc})") from None

    def __enter__(self) -> GdbStub:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Detach (QEMU resumes the VM) and end gdb."""
        with contextlib.suppress(AtlabError):
            self.cmd("-target-detach")
        self._gdb.exit()

    def cmd(self, command: str) -> tuple[Any, str]:
        """Run one MI command: its result payload and the console/target text it printed."""
        self._token += 1
        token = self._token
        self._gdb.write(f"{token}{command}", read_response=False)
        text: list[str] = []
        deadline = time.monotonic() + self.timeout
        io = self._gdb.io_manager
        while time.monotonic() < deadline:
            # Wait on gdb's output ourselves, then let pygdbmi parse what is there without
            # its own waiting (its polling would add ~50 ms to every command).
            select.select(io.read_list, [], [], max(0.0, deadline - time.monotonic()))
            for rec in self._gdb.get_gdb_response(timeout_sec=0,
                                                  raise_error_on_timeout=False):
                if rec.get("type") in ("console", "target") and rec.get("payload"):
                    text.append(str(rec["payload"]))
                if rec.get("type") == "result" and rec.get("token") == token:
                    if rec.get("message") == "error":
                        msg = (rec.get("payload") or {}).get("msg", "error")
                        raise AtlabError(f"gdb: {command.split()[0]}: {msg}")
                    return rec.get("payload"), "".join(text)
        raise AtlabError(f"gdb: no answer to {command.split()[0]} in {self.timeout:.0f} s")

    def registers(self, names: Iterable[str]) -> dict[str, int]:
        """The named registers that the gdbstub has (names it lacks are left out)."""
        if not self._names:
            payload, _ = self.cmd("-data-list-register-names")
            self._names = {n: i for i, n in enumerate(payload["register-names"]) if n}
        want = {self._names[n]: n for n in names if n in self._names}
        if not want:
            return {}
        payload, _ = self.cmd("-data-list-register-values x " + " ".join(map(str, want)))
        out = {}
        for item in payload["register-values"]:
            out[want[int(item["number"])]] = int(item["value"], 16) & ((1 << 64) - 1)
        return out

    def set_register(self, name: str, value: int) -> None:
        """Write a register of the stopped CPU (e.g. ``cpsr``); read it back to check."""
        self.cmd(f'-interpreter-exec console "set ${name} = {value:#x}"')
        got = self.registers([name]).get(name)
        if got != value:
            raise AtlabError(f"gdb: {name} reads {got!r} after writing {value:#x}")

    def register_names(self) -> list[str]:
        self.registers([])
        return list(self._names)

    def physical(self, on: bool = True) -> None:
        if on != self.phys:
            self.cmd(f'-interpreter-exec console "maint packet Qqemu.PhyMemMode:{int(on)}"')
            self.phys = on

    def read(self, addr: int, size: int, *, physical: bool = True) -> bytes:
        self.physical(physical)
        payload, _ = self.cmd(f"-data-read-memory-bytes {addr:#x} {size}")
        out = b""
        for block in payload["memory"]:
            out += bytes.fromhex(block["contents"])
        if len(out) != size:
            raise AtlabError(f"gdb: read {len(out)} of {size} bytes at {addr:#x}")
        return out

    def monitor(self, command: str) -> str:
        _, text = self.cmd(f'-interpreter-exec console "monitor {command}"')
        return text

    @contextlib.contextmanager
    def regime_view(self, el: int) -> Iterator[None]:
        """QEMU's ``gva2gpa`` translates as the stopped CPU would access memory now: with its
        current EL and PSTATE.PAN (stopped at EL0 it calls kernel pages unmapped; at EL2 with
        PAN=1, user pages).  Inside this context the CPU is at ELx with SP_ELx (EL2h or EL1h)
        and PAN=0; the saved PSTATE is written back (and read back) afterwards."""
        cpsr = self.registers(["cpsr"]).get("cpsr")
        if cpsr is None:
            raise AtlabError("the gdbstub gives no cpsr")
        view = (cpsr & ~(_PSTATE_PAN | 0xF)) | (0b1001 if el == 2 else 0b0101)
        if view != cpsr:
            self.set_register("cpsr", view)
        try:
            yield
        finally:
            if view != cpsr:
                self.set_register("cpsr", cpsr)

    def gva2gpa(self, va: int) -> int | None:
        """QEMU's translation of ``va`` for the current CPU (None: unmapped)."""
        text = self.monitor(f"gva2gpa {va:#x}")
        m = re.search(r"gpa:\s*(0x[0-9a-fA-F]+)", text)
        if m:
            return int(m.group(1), 16)
        if "Unmapped" in text or "unmapped" in text:
            return None
        raise AtlabError(f"gva2gpa {va:#x}: unexpected answer {text.strip()[:80]!r}")
