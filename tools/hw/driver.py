"""Run atlab scenarios' AT instructions on QEMU and return PAR_EL1 or the exception taken.

The hardware side is ``harness.S``: a bare-metal image that QEMU (``-M virt,virtualization=on,
secure=on -cpu max``) starts at EL3.  This module validates the scenarios, assembles the image
once (cached by source hash), writes the job table, boots QEMU, and decodes the result records
that the harness streams to a host file through semihosting.

Guest physical memory map (RAM is 0x4000_0000-0x7fff_ffff with ``-m 1G``):

=========================  =================================================================
0x4000_0000-0x400f_ffff    zeroed by the harness at boot (QEMU's device tree); free to use
0x4010_0000-0x4011_ffff    **reserved**: harness code, vectors and EL3 scratch
                           (a scenario whose op EL has its MMU on must map this range)
0x4012_0000-0x7bff_ffff    free for scenario memory
0x7c00_0000-0x7fff_ffff    **reserved**: the job table (loaded with ``-device loader``)
=========================  =================================================================

Job table (u64 words, little-endian) at :data:`JOB_BASE`: a 512-byte header ``[magic
"ATLABJOB", number of scenarios, NREG, output path length, output path...]``, then per scenario
``[el, n_mem, n_ops, 0, NREG register values (order of REGISTERS), n_mem x (pa, value),
n_ops x (op index in OPS, va, pan)]``.

What the harness fixes for every scenario (see harness.S for the reasons):

* SCR_EL3 = NS | HCE | RW (0x501): lower ELs Non-secure, AArch64, EL2 enabled, SMC enabled.
* Every register of :data:`REGISTERS` is written for every scenario (0 when not given) and read
  back; SCTLR_EL3 is in force only while an ``el=3`` op runs (EL3's MMU is otherwise off).
* All TLBs are invalidated before every op; FAR_EL1/2/3 and HPFAR_EL2 are zeroed before every
  op, so an exception that does not write them reports 0.
* Every RAM word a scenario does not list reads as 0 (outside the reserved ranges, where its
  tables must not be: a walk with TCR.HA/HD=1 would write into them).
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

__all__ = [
    "HARNESS_BASE",
    "HARNESS_END",
    "JOB_BASE",
    "JOB_END",
    "OPS",
    "RAM_BASE",
    "RAM_END",
    "REGISTERS",
    "REGISTERS_V94",
    "V94_REGISTERS",
    "HarnessError",
    "HwException",
    "OpResult",
    "QemuTarget",
    "ScenarioResult",
    "build_harness",
    "check_environment",
    "check_op",
    "check_scenario",
    "qemu11_chroot",
    "qemu_target",
    "qemu_version",
    "run_scenarios",
]

# ---- memory map, shared with harness.S through --defsym -------------------------------------
RAM_BASE = 0x4000_0000
RAM_END = 0x8000_0000  # -m 1G
HARNESS_BASE = 0x4010_0000
HARNESS_END = 0x4012_0000
JOB_BASE = 0x7C00_0000
JOB_END = RAM_END
_RESERVED = (
    (HARNESS_BASE, HARNESS_END, "the harness code and scratch"),
    (JOB_BASE, JOB_END, "the job table"),
)

# The harness's register table (reg_table in harness.S), in order.
REGISTERS: tuple[str, ...] = (
    "HCR_EL2", "TCR_EL1", "TCR_EL2", "TCR_EL3",
    "TTBR0_EL1", "TTBR1_EL1", "TTBR0_EL2", "TTBR1_EL2", "TTBR0_EL3",
    "MAIR_EL1", "MAIR_EL2", "MAIR_EL3", "VTCR_EL2", "VTTBR_EL2",
    "SCTLR_EL1", "SCTLR_EL2", "SCTLR_EL3",
)  # fmt: skip
# The register table of the harness built for QEMU >= 11 (harness.S with V94=1): the Armv8.9
# translation registers QEMU 11.1 -cpu max implements (FEAT_TCR2, S1PIE, S2PIE, AIE) go
# before the SCTLRs.  QEMU 10 has none of them (an MSR to one is UNDEFINED).
V94_REGISTERS: tuple[str, ...] = (
    "HCRX_EL2", "TCR2_EL1", "TCR2_EL2", "PIR_EL1", "PIRE0_EL1", "PIR_EL2", "PIRE0_EL2",
    "S2PIR_EL2", "MAIR2_EL1", "MAIR2_EL2", "PIR_EL3", "MAIR2_EL3",
)  # fmt: skip
REGISTERS_V94: tuple[str, ...] = REGISTERS[:14] + V94_REGISTERS + REGISTERS[14:]
# The harness's AT stubs (at_table in harness.S), in order, then its TLBI stubs ("TLBI <op>",
# in atlab.tlb.TlbiOp order; the op's "va" is the Xt operand, and only an exception counts).
AT_OPS: tuple[str, ...] = (
    "S1E1R", "S1E1W", "S1E0R", "S1E0W", "S1E1RP", "S1E1WP", "S1E1A",
    "S1E2R", "S1E2W", "S1E2A", "S12E1R", "S12E1W", "S12E0R", "S12E0W", "S1E3R", "S1E3W",
)  # fmt: skip
TLBI_OPS: tuple[str, ...] = (
    "VMALLE1", "VMALLE1IS", "VAE1", "VAE1IS", "ASIDE1", "ASIDE1IS", "VAAE1", "VAAE1IS",
    "VALE1", "VALE1IS", "VAALE1", "VAALE1IS", "IPAS2E1IS", "IPAS2LE1IS", "IPAS2E1",
    "IPAS2LE1", "ALLE2IS", "VAE2IS", "ALLE1IS", "VALE2IS", "VMALLS12E1IS", "ALLE2", "VAE2",
    "ALLE1", "VALE2", "VMALLS12E1",
)  # fmt: skip
# AT ops added after the TLBI stubs (so the earlier indices stay): AT S1E3A (FEAT_ATS1A).
LATE_AT_OPS: tuple[str, ...] = ("S1E3A",)
OPS: tuple[str, ...] = (
    AT_OPS + tuple(f"TLBI {name}" for name in TLBI_OPS) + LATE_AT_OPS
)

QEMU_ARGS: tuple[str, ...] = (
    "-M", "virt,virtualization=on,secure=on", "-cpu", "max", "-m", "1G",
    "-nographic", "-semihosting", "-nic", "none",
)  # fmt: skip
MIN_QEMU = (10, 0)
V94_QEMU = (11, 0)  # from this version on the harness is built with V94=1
#: Where tools/install-system-deps.sh makes the Debian 13 chroot holding QEMU 11.1
#: (``ATLAB_QEMU11_CHROOT`` overrides it).
QEMU11_CHROOT = "/var/lib/atlab/qemu11-chroot"
AS = "aarch64-linux-gnu-as"
LD = "aarch64-linux-gnu-ld"
DEFAULT_TIMEOUT = 10.0

_U64 = (1 << 64) - 1
_JOB_MAGIC = int.from_bytes(b"ATLABJOB", "little")
_JOB_HEADER_SIZE = 512
_JOB_PATH_MAX = _JOB_HEADER_SIZE - 32 - 1
_REC_START, _REC_SCEN, _REC_OP, _REC_FATAL, _REC_END = 1, 2, 3, 4, 5


def _rec_words(nreg: int) -> dict[int, int]:
    return {_REC_START: 4, _REC_SCEN: 3 + nreg, _REC_OP: 8, _REC_FATAL: 8, _REC_END: 4}


_EXIT_REASONS = {  # harness.S's exit codes that mean the set-up, not a scenario, is broken
    65: "the harness could not open its output file",
    66: "the harness rejected the job table",
    68: "the harness could not write its output file",
}
# Bits of a successful PAR (F=0) left out of comparisons: 11:10 IMPLEMENTATION DEFINED, 9 NS.
PAR_SUCCESS_IGNORED = 0xE00


@dataclass(frozen=True, slots=True)
class QemuTarget:
    """One QEMU to run: the command that starts it and, for a chroot, the directory QEMU sees
    as ``/`` (every file it reads or writes must be under it)."""

    argv: tuple[str, ...]
    root: Path | None = None

    def guest_path(self, path: Path) -> str:
        """``path`` as QEMU sees it."""
        if self.root is None:
            return str(path)
        return "/" + str(path.resolve().relative_to(self.root.resolve()))


def qemu11_chroot() -> Path:
    """The Debian 13 chroot holding QEMU 11.1 (``$ATLAB_QEMU11_CHROOT`` or the default)."""
    return Path(os.environ.get("ATLAB_QEMU11_CHROOT") or QEMU11_CHROOT)


def qemu_target(spec: str | QemuTarget) -> QemuTarget:
    """``"10"``: the system's ``qemu-system-aarch64``; ``"11"``: QEMU 11.1 in the chroot
    :func:`qemu11_chroot` (``chroot DIR /usr/bin/qemu-system-aarch64``); anything else: the
    QEMU binary to run."""
    if isinstance(spec, QemuTarget):
        return spec
    if spec == "10":
        return QemuTarget(("qemu-system-aarch64",))
    if spec == "11":
        root = qemu11_chroot()
        if not (root / "usr/bin/qemu-system-aarch64").exists():
            raise HarnessError(
                f"no QEMU 11 chroot at {root} (run tools/install-system-deps.sh as root, or "
                "set ATLAB_QEMU11_CHROOT)"
            )
        if os.geteuid() != 0:
            raise HarnessError(f"running QEMU 11 in the chroot {root} needs root")
        return QemuTarget(("chroot", str(root), "/usr/bin/qemu-system-aarch64"), root)
    return QemuTarget((spec,))


class HarnessError(Exception):
    """The harness cannot run (tools missing or too old) or a scenario is malformed."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True, slots=True)
class HwException:
    """An exception an op took instead of writing PAR_EL1 (HPFAR is 0 unless taken to EL2)."""

    taken_to_el: int
    esr: int
    far: int
    hpfar: int
    elr: int

    @property
    def ec(self) -> int:
        """ESR_ELx.EC, the exception class."""
        return (self.esr >> 26) & 0x3F


@dataclass(frozen=True, slots=True)
class OpResult:
    """One op: PAR_EL1 after it, or the exception it took, or ``crashed`` (QEMU died first)."""

    par: int | None
    exception: HwException | None = None
    crashed: bool = False


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """One scenario: per-op results, register read-backs and warnings.

    ``crash`` says why the ops marked ``crashed`` did not run (QEMU aborted or hung).
    """

    name: str
    ops: tuple[OpResult, ...]
    readbacks: Mapping[str, int]
    warnings: tuple[str, ...]
    crash: str | None = None


@dataclass(frozen=True, slots=True)
class _Job:
    """A validated scenario in the harness's terms."""

    name: str
    el: int
    regs: tuple[int, ...]
    memory: tuple[tuple[int, int], ...]
    ops: tuple[tuple[int, int, int], ...]

    def encode(self) -> bytes:
        words = [self.el, len(self.memory), len(self.ops), 0, *self.regs]
        for pa, value in self.memory:
            words += (pa, value)
        for op, va, pan in self.ops:
            words += (op, va, pan)
        return struct.pack(f"<{len(words)}Q", *words)


@dataclass(frozen=True, slots=True)
class _Partial:
    """What one boot reported for one scenario."""

    readbacks: tuple[int, ...] | None
    ops: tuple[OpResult, ...]


@dataclass(frozen=True, slots=True)
class _Boot:
    """One QEMU run over a batch: per-scenario reports (in batch order) and how it ended."""

    partials: tuple[_Partial, ...]
    failure: str | None  # None when the harness ran the whole batch and exited cleanly


# ---- scenario validation --------------------------------------------------------------------


def _u64(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise HarnessError(f"{what}: expected an integer or a hex string, got {value!r}")
    try:
        number = value if isinstance(value, int) else int(value.strip(), 0)
    except ValueError:
        raise HarnessError(f"{what}: not a number: {value!r}") from None
    if not 0 <= number <= _U64:
        raise HarnessError(f"{what}: {value!r} does not fit in 64 bits")
    return number


def _pan(value: object, what: str) -> int:
    number = int(value) if isinstance(value, bool) else _u64(value, what)
    if number not in (0, 1):
        raise HarnessError(f"{what}: PSTATE.PAN must be 0 or 1, got {value!r}")
    return number


def _items(scenario: Mapping[str, object], key: str, where: str) -> list[object]:
    items = scenario.get(key) or []
    if not isinstance(items, list | tuple):
        raise HarnessError(f"{where}: {key} must be a list")
    return list(items)


def _reserved_region(pa: int) -> str | None:
    for lo, hi, what in _RESERVED:
        if lo <= pa < hi:
            return f"{what} ({lo:#x}-{hi - 1:#x})"
    return None


def _prepare(
    scenario: Mapping[str, object], index: int, registers: tuple[str, ...] = REGISTERS
) -> _Job:
    if not isinstance(scenario, Mapping):
        raise HarnessError(f"scenario {index}: expected a mapping, got {type(scenario).__name__}")
    name = str(scenario.get("name", f"#{index}"))
    where = f"scenario {index} ({name})"
    el = scenario.get("el", 2)
    if isinstance(el, bool) or el not in (1, 2, 3):
        raise HarnessError(f"{where}: el must be 1, 2 or 3, got {el!r}")
    assert isinstance(el, int)

    sysregs = scenario.get("sysregs", {}) or {}
    if not isinstance(sysregs, Mapping):
        raise HarnessError(f"{where}: sysregs must be a mapping")
    values = dict.fromkeys(registers, 0)
    pan_default = 0
    for key, raw in sysregs.items():
        reg = str(key).upper()
        if reg == "PSTATE_PAN":
            pan_default = _pan(raw, f"{where}: PSTATE_PAN")
        elif reg in values:
            values[reg] = _u64(raw, f"{where}: {reg}")
        else:
            known = ", ".join((*registers, "PSTATE_PAN"))
            raise HarnessError(f"{where}: unknown register {key!r} (the harness knows {known})")

    memory: list[tuple[int, int]] = []
    for n, word in enumerate(_items(scenario, "memory", where)):
        if not isinstance(word, Mapping) or "pa" not in word or "u64" not in word:
            raise HarnessError(f"{where}: memory[{n}] must be {{'pa': ..., 'u64': ...}}")
        pa = _u64(word["pa"], f"{where}: memory[{n}].pa")
        if pa % 8 or not RAM_BASE <= pa < RAM_END:
            raise HarnessError(
                f"{where}: memory[{n}].pa={pa:#x} must be 8-byte aligned and inside RAM "
                f"({RAM_BASE:#x}-{RAM_END - 1:#x})"
            )
        region = _reserved_region(pa)
        if region is not None:
            raise HarnessError(
                f"{where}: memory[{n}].pa={pa:#x} lies in {region}; scenarios must not use "
                f"{HARNESS_BASE:#x}-{HARNESS_END - 1:#x} or {JOB_BASE:#x}-{JOB_END - 1:#x}"
            )
        memory.append((pa, _u64(word["u64"], f"{where}: memory[{n}].u64")))

    ops: list[tuple[int, int, int]] = []
    for n, op in enumerate(_items(scenario, "ops", where)):
        if not isinstance(op, Mapping) or "op" not in op or "va" not in op:
            raise HarnessError(f"{where}: ops[{n}] must be {{'op': ..., 'va': ...}}")
        op_name = str(op["op"]).upper()
        if op_name not in OPS:
            raise HarnessError(
                f"{where}: ops[{n}]: unknown op {op['op']!r} (known: {', '.join(OPS)})"
            )
        pan = _pan(op["pan"], f"{where}: ops[{n}].pan") if "pan" in op else pan_default
        ops.append((OPS.index(op_name), _u64(op["va"], f"{where}: ops[{n}].va"), pan))

    return _Job(name, el, tuple(values[r] for r in registers), tuple(memory), tuple(ops))


# ---- tools ----------------------------------------------------------------------------------


def _first_line(cmd: Sequence[str], what: str, hint: str) -> str:
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False
        )
    except (FileNotFoundError, PermissionError):
        raise HarnessError(f"{what} not found ({cmd[0]!r}); {hint}") from None
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{' '.join(cmd)} did not answer within 30 s") from None
    lines = (proc.stdout or proc.stderr).splitlines()
    if proc.returncode != 0 or not lines:
        raise HarnessError(f"{' '.join(cmd)} failed (status {proc.returncode})")
    return lines[0].strip()


_INSTALL_HINT = "on Debian 12 run tools/install-system-deps.sh"


def qemu_version(qemu: str | QemuTarget = "qemu-system-aarch64") -> tuple[int, ...]:
    """The version of ``qemu`` (a binary, ``"10"``/``"11"`` or a :class:`QemuTarget`)."""
    target = qemu_target(qemu)
    line = _first_line(
        [*target.argv, "--version"], "QEMU", f"need qemu-system-aarch64 >= 10; {_INSTALL_HINT}"
    )
    match = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?", line)
    if match is None:
        raise HarnessError(f"cannot read the QEMU version from {qemu!r}: {line!r}")
    return tuple(int(g) for g in match.groups(default="0"))


def check_environment(qemu: str | QemuTarget = "qemu-system-aarch64") -> str:
    """Check QEMU >= 10 and the AArch64 binutils; return their versions as one line.

    Raises :class:`HarnessError` naming what is missing or too old.
    """
    version = qemu_version(qemu)
    if version[:2] < MIN_QEMU:
        raise HarnessError(
            f"{qemu} is QEMU {'.'.join(map(str, version))}; the harness needs QEMU >= "
            f"{MIN_QEMU[0]} (QEMU 7.2 has AT bugs); {_INSTALL_HINT}"
        )
    hint = f"need binutils-aarch64-linux-gnu; {_INSTALL_HINT}"
    as_line = _first_line([AS, "--version"], "the AArch64 assembler", hint)
    ld_line = _first_line([LD, "--version"], "the AArch64 linker", hint)
    return f"QEMU {'.'.join(map(str, version))}; {as_line}; {ld_line}"


def _defsyms(v94: bool = False) -> dict[str, int]:
    syms = {
        "RAM_BASE": RAM_BASE,
        "HARNESS_BASE": HARNESS_BASE,
        "HARNESS_SIZE": HARNESS_END - HARNESS_BASE,
        "JOB_BASE": JOB_BASE,
    }
    if v94:
        syms["V94"] = 1
    return syms


def _load_extent(elf: Path) -> tuple[int, int]:
    """Lowest and highest address of the image's PT_LOAD segments."""
    data = elf.read_bytes()
    if data[:5] != b"\x7fELF\x02":
        raise HarnessError(f"{elf} is not an ELF64 file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    lo, hi = _U64, 0
    for n in range(phnum):
        p_type, _flags, _off, vaddr, _paddr, _filesz, memsz = struct.unpack_from(
            "<IIQQQQQ", data, phoff + n * phentsize
        )
        if p_type == 1:  # PT_LOAD
            lo, hi = min(lo, vaddr), max(hi, vaddr + memsz)
    return lo, hi


def build_harness(cache_dir: Path | None = None, *, v94: bool = False) -> Path:
    """Assemble and link harness.S once; return the ELF (cached by source and tool versions).

    ``v94``: the build for QEMU >= 11, whose register table is :data:`REGISTERS_V94`.
    """
    source = Path(__file__).with_name("harness.S")
    defsyms = _defsyms(v94)
    tools = _first_line([AS, "--version"], "the AArch64 assembler", _INSTALL_HINT)
    tools += _first_line([LD, "--version"], "the AArch64 linker", _INSTALL_HINT)
    key = hashlib.sha256(source.read_bytes() + repr((defsyms, tools)).encode()).hexdigest()[:16]
    cache = cache_dir or Path(tempfile.gettempdir()) / "atlab-hw-build"
    elf = cache / f"harness-{key}.elf"
    if elf.exists():
        return elf
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        obj, out = Path(tmp, "harness.o"), Path(tmp, "harness.elf")
        syms = [
            arg for name, value in defsyms.items() for arg in ("--defsym", f"{name}={value:#x}")
        ]
        for cmd in (
            [AS, *syms, "-o", str(obj), str(source)],
            [LD, "-N", "--no-warn-rwx-segments", f"-Ttext={HARNESS_BASE:#x}", "-e", "_start",
             "-o", str(out), str(obj)],
        ):  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                detail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                raise HarnessError(f"building the harness failed: {cmd[0]}: {detail}")
        lo, hi = _load_extent(out)
        if lo < HARNESS_BASE or hi > HARNESS_END:
            raise HarnessError(
                f"harness image spans {lo:#x}-{hi:#x}, outside {HARNESS_BASE:#x}-{HARNESS_END:#x}"
            )
        os.replace(out, elf)
    return elf


# ---- one boot -------------------------------------------------------------------------------


def _encode_job(jobs: Sequence[_Job], output: str, nreg: int) -> bytes:
    path = os.fsencode(output)
    if len(path) > _JOB_PATH_MAX:
        raise HarnessError(f"output path too long for the job header: {output}")
    header = struct.pack("<4Q", _JOB_MAGIC, len(jobs), nreg, len(path)) + path
    return header.ljust(_JOB_HEADER_SIZE, b"\0") + b"".join(job.encode() for job in jobs)


def _records(data: bytes, nreg: int) -> Iterator[tuple[int, ...]]:
    words = struct.unpack(f"<{len(data) // 8}Q", data[: len(data) // 8 * 8])
    rec_words = _rec_words(nreg)
    pos = 0
    while pos < len(words):
        size = rec_words.get(words[pos])
        if size is None:
            raise HarnessError(f"corrupt harness output: record tag {words[pos]} at word {pos}")
        if pos + size > len(words):
            return  # cut short by a crash
        yield words[pos : pos + size]
        pos += size


def _no_core_dump() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _run_qemu(cmd: Sequence[str], output: Path, log: Path, timeout: float) -> int | None:
    """Run QEMU until it exits (its status) or ``output`` stops growing for ``timeout`` s (None)."""
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_no_core_dump,  # QEMU's assertion failures abort(): no core files
        )
        size, last_progress = -1, time.monotonic()
        while proc.poll() is None:
            time.sleep(0.005)
            now_size = output.stat().st_size if output.exists() else 0
            if now_size != size:
                size, last_progress = now_size, time.monotonic()
            elif time.monotonic() - last_progress > timeout:
                proc.kill()
                proc.wait()
                return None
    return proc.returncode


def _boot(
    elf: Path,
    jobs: Sequence[_Job],
    qemu: QemuTarget,
    timeout: float,
    tmp: Path,
    registers: tuple[str, ...] = REGISTERS,
) -> _Boot:
    """Run one batch in one QEMU boot and decode what the harness reported."""
    job_file, output, log = tmp / "job.bin", tmp / "out.bin", tmp / "qemu.log"
    job_file.write_bytes(_encode_job(jobs, qemu.guest_path(output), len(registers)))
    output.unlink(missing_ok=True)
    cmd = [
        *qemu.argv, *QEMU_ARGS, "-kernel", qemu.guest_path(elf),
        "-device", f"loader,file={qemu.guest_path(job_file)},addr={JOB_BASE:#x},force-raw=on",
    ]  # fmt: skip
    status = _run_qemu(cmd, output, log, timeout)
    qemu_said = " | ".join(log.read_text(errors="replace").strip().split("\n")[-3:])

    readbacks: dict[int, tuple[int, ...]] = {}
    ops: dict[int, list[OpResult]] = {}
    started = ended = False
    fatal: tuple[int, ...] | None = None
    for rec in _records(output.read_bytes() if output.exists() else b"", len(registers)):
        if rec[0] == _REC_START:
            started = True
            if rec[1] != len(registers):
                raise HarnessError(f"harness has {rec[1]} registers, driver {len(registers)}")
        elif rec[0] == _REC_SCEN:
            readbacks[rec[1]] = rec[3:]
        elif rec[0] == _REC_OP:
            kind, el = rec[3] & 0xFF, (rec[3] >> 8) & 0xFF
            exc = HwException(el, *rec[4:8]) if kind else None
            ops.setdefault(rec[1], []).append(OpResult(None if kind else rec[4], exc))
        elif rec[0] == _REC_FATAL:
            fatal = rec
        elif rec[0] == _REC_END:
            ended = True

    if status in _EXIT_REASONS:
        raise HarnessError(f"{_EXIT_REASONS[status]} (QEMU: {qemu_said or 'no output'})")
    if not started:
        how = "hung" if status is None else f"exit status {status}"
        raise HarnessError(f"QEMU did not start the harness ({how}): {qemu_said or 'no output'}")
    failure: str | None = None
    if status is None:
        failure = f"timeout: QEMU reported nothing for {timeout:g} s and was killed"
    elif fatal is not None:
        failure = (
            f"unexpected exception at EL3 (vector {fatal[3]:#x}, ESR_EL3={fatal[4]:#x}, "
            f"ELR_EL3={fatal[5]:#x}, FAR_EL3={fatal[6]:#x})"
        )
    elif status != 0 or not ended:
        how = f"killed by {signal.Signals(-status).name}" if status < 0 else f"exited with {status}"
        failure = f"QEMU {how}: {qemu_said or 'no output'}"
    partials = tuple(_Partial(readbacks.get(n), tuple(ops.get(n, ()))) for n in range(len(jobs)))
    return _Boot(partials, failure)


# ---- results --------------------------------------------------------------------------------


def _readback_warnings(
    job: _Job, readbacks: tuple[int, ...], registers: tuple[str, ...]
) -> list[str]:
    warnings = []
    for reg, wrote, read in zip(registers, job.regs, readbacks, strict=True):
        if wrote != read:
            text = f"{reg}: wrote {wrote:#x}, read back {read:#x}"
            if dropped := wrote & ~read:
                text += f" (bits {dropped:#x} dropped)"
            if added := read & ~wrote:
                text += f" (bits {added:#x} set)"
            warnings.append(text)
    return warnings


def _result(
    job: _Job,
    partial: _Partial,
    crash: str | None = None,
    notes: Sequence[str] = (),
    registers: tuple[str, ...] = REGISTERS,
) -> ScenarioResult:
    warnings = (
        [] if partial.readbacks is None else _readback_warnings(job, partial.readbacks, registers)
    )
    ops = list(partial.ops)
    if crash is not None:
        if partial.readbacks is None:
            warnings.append(f"QEMU failed while setting up the scenario: {crash}")
        else:
            op, va, _pan = job.ops[len(ops)]
            warnings.append(f"QEMU failed during op {len(ops)} ({OPS[op]} {va:#x}): {crash}")
        ops += [OpResult(None, None, crashed=True)] * (len(job.ops) - len(ops))
    readbacks = MappingProxyType(dict(zip(registers, partial.readbacks or (), strict=False)))
    return ScenarioResult(job.name, tuple(ops), readbacks, (*warnings, *notes), crash)


def _complete(job: _Job, partial: _Partial) -> bool:
    return partial.readbacks is not None and len(partial.ops) == len(job.ops)


def _next_batch(pending: Sequence[int], jobs: Sequence[_Job]) -> list[int]:
    """The longest prefix of ``pending`` whose job table fits below JOB_END."""
    budget = JOB_END - JOB_BASE - _JOB_HEADER_SIZE
    batch: list[int] = []
    for index in pending:
        budget -= len(jobs[index].encode())
        if budget < 0:
            if batch:
                break
            raise HarnessError(f"scenario {index} ({jobs[index].name}) is too big for a job")
        batch.append(index)
    return batch


def _rerun_alone(
    elf: Path,
    job: _Job,
    qemu: QemuTarget,
    timeout: float,
    tmp: Path,
    why: str,
    registers: tuple[str, ...],
) -> ScenarioResult:
    """A scenario during which a batch failed, run in a boot of its own."""
    alone = _boot(elf, [job], qemu, timeout, tmp, registers)
    if alone.failure is not None:
        return _result(job, alone.partials[0], alone.failure, registers=registers)
    note = f"QEMU failed while running this scenario in a batch, but not alone: {why}"
    return _result(job, alone.partials[0], notes=[note], registers=registers)


def run_scenarios(
    scenarios: Sequence[Mapping[str, object]],
    *,
    qemu: str | QemuTarget = "qemu-system-aarch64",
    timeout: float = DEFAULT_TIMEOUT,
) -> list[ScenarioResult]:
    """Run every scenario's ops on QEMU; one :class:`ScenarioResult` per scenario, in order.

    Many scenarios run per boot.  When a boot crashes or hangs (``timeout``: seconds without a
    new result record), the scenarios it finished keep their results, the one it was running
    is re-run alone (if it fails alone too, its remaining ops are reported ``crashed`` and
    ``ScenarioResult.crash`` says why), and the rest go on in a new boot.  Raises
    :class:`HarnessError` for malformed scenarios and missing or too old tools.

    ``qemu``: a QEMU binary, ``"10"``/``"11"`` (:func:`qemu_target`) or a :class:`QemuTarget`.
    From QEMU 11 on the harness also programs :data:`V94_REGISTERS`.
    """
    for n, scenario in enumerate(scenarios):  # malformed scenarios are refused before QEMU
        _prepare(scenario, n, REGISTERS_V94)  # is needed; QEMU 10 then refuses V94_REGISTERS
    target = qemu_target(qemu)
    check_environment(target)
    v94 = qemu_version(target)[:2] >= V94_QEMU
    registers = REGISTERS_V94 if v94 else REGISTERS
    jobs = [_prepare(scenario, n, registers) for n, scenario in enumerate(scenarios)]
    elf = build_harness(v94=v94)
    results: list[ScenarioResult] = []
    tmp_parent = None
    if target.root is not None:  # QEMU in a chroot sees only what is under its root
        tmp_parent = target.root / "atlab"
        tmp_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="atlab-hw-", dir=tmp_parent) as tmp_name:
        tmp = Path(tmp_name)
        if target.root is not None:
            elf = Path(shutil.copy(elf, tmp / elf.name))
        while len(results) < len(jobs):
            batch = _next_batch(range(len(results), len(jobs)), jobs)
            boot = _boot(elf, [jobs[n] for n in batch], target, timeout, tmp, registers)
            for index, partial in zip(batch, boot.partials, strict=True):
                if not _complete(jobs[index], partial):
                    break
                results.append(_result(jobs[index], partial, registers=registers))
            else:
                continue  # the whole batch ran
            index = len(results)
            if boot.failure is None:
                raise HarnessError(f"the harness exited without finishing scenario {index}")
            if len(batch) == 1:
                results.append(
                    _result(jobs[index], boot.partials[0], boot.failure, registers=registers)
                )
            else:  # is it this scenario, or something earlier in the batch left behind?
                results.append(
                    _rerun_alone(
                        elf, jobs[index], target, timeout, tmp, boot.failure, registers
                    )
                )
    return results


# ---- comparison with expectations -----------------------------------------------------------


def _describe(result: OpResult) -> str:
    if result.crashed:
        return "no result (QEMU crashed or hung)"
    if result.exception is not None:
        exc = result.exception
        return (
            f"exception to EL{exc.taken_to_el} ESR={exc.esr:#x} FAR={exc.far:#x} "
            f"HPFAR={exc.hpfar:#x}"
        )
    return f"PAR={result.par:#018x}" if result.par is not None else "nothing"


def check_op(op: Mapping[str, object], result: OpResult) -> str | None:
    """Compare an op's ``expected_par``/``expected_exception`` with ``result``.

    Returns None on a match (or when the op states no expectation), else what differs.  A
    successful PAR (bit 0 = 0) is compared without bits 11:10 (IMPLEMENTATION DEFINED) and 9
    (NS); a fault PAR exactly; an exception on taken_to_el, ESR, FAR and HPFAR (not ELR).
    """
    expected_par = op.get("expected_par")
    expected_exc = op.get("expected_exception")
    if expected_par is not None:
        want = _u64(expected_par, "expected_par")
        ignored = PAR_SUCCESS_IGNORED if want & 1 == 0 else 0
        if result.par is not None and (result.par | ignored) == (want | ignored):
            return None
        return f"expected PAR={want:#018x}, got {_describe(result)}"
    if isinstance(expected_exc, Mapping):
        fields = ("taken_to_el", "esr", "far", "hpfar")
        want_exc = {f: _u64(expected_exc.get(f, 0), f"expected_exception.{f}") for f in fields}
        got = result.exception
        if got is not None and all(getattr(got, f) == want_exc[f] for f in fields):
            return None
        return (
            f"expected exception to EL{want_exc['taken_to_el']} ESR={want_exc['esr']:#x} "
            f"FAR={want_exc['far']:#x} HPFAR={want_exc['hpfar']:#x}, got {_describe(result)}"
        )
    return None


def check_scenario(scenario: Mapping[str, object], result: ScenarioResult) -> list[str]:
    """One line per op of ``scenario`` whose expectation ``result`` does not meet."""
    lines = []
    for n, (op, got) in enumerate(
        zip(_items(scenario, "ops", result.name), result.ops, strict=True)
    ):
        if not isinstance(op, Mapping):
            raise HarnessError(f"{result.name}: ops[{n}] must be a mapping")
        problem = check_op(op, got)
        if problem is not None:
            lines.append(f"{result.name} op {n} ({op.get('op')} {op.get('va')}): {problem}")
    return lines
