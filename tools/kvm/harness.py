"""Build and drive ``kvm-at``: KVM's own AT emulation (``arch/arm64/kvm/at.c`` and the stage 2
walker of ``arch/arm64/kvm/nested.c``) compiled unchanged as a userspace program against the
shim in ``tools/kvm/csrc``.

Kernel code is GPL-2.0 and is never committed: :func:`build` copies it from a kernel tree
given at build time (a directory or a ``.tar.xz``; default Debian's ``linux-source-6.12``)
into the ignored ``build/kvm`` directory and compiles it there.  The driver's input/output
contract is described in ``tools/kvm/README.md``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from atlab.errors import AtlabError
from atlab.features import FeatureSet
from atlab.nv.model import NvScenario
from atlab.regime import AtOp
from atlab.syndrome import trapped_sys

ROOT = Path(__file__).resolve().parents[2]
CSRC = Path(__file__).resolve().parent / "csrc"
BUILD = ROOT / "build" / "kvm"
BINARY = BUILD / "kvm-at"
DEFAULT_KERNEL_SRC = "/usr/src/linux-source-6.12.tar.xz"

#: What the build needs from a kernel tree (paths below its top directory).
_MEMBERS = (
    "Makefile",
    "arch/arm64/kvm/at.c",
    "arch/arm64/kvm/nested.c",
    "arch/arm64/kvm/sys_regs.c",
    "arch/arm64/kvm/hyp/vhe/switch.c",
    "arch/arm64/include",
    "arch/arm64/tools",
    "include",
)

#: Bumped when the build recipe itself changes (forces a rebuild of old build/ trees).
_RECIPE = "2"


class KvmBuildError(AtlabError):
    """The harness could not be built (one line: what is missing, or where the log is)."""


# ---- the kernel tree -------------------------------------------------------------------------

def kernel_source(kernel_src: str | None = None) -> str:
    """The kernel tree to build from: the argument, else ``$KERNEL_SRC``, else the Debian
    tarball."""
    return kernel_src or os.environ.get("KERNEL_SRC") or DEFAULT_KERNEL_SRC


def _tree_root(src: str) -> Path:
    """The top directory of a kernel tree (a directory, or extracted from a tarball into
    ``build/kvm/src``)."""
    path = Path(src)
    if not path.exists():
        hint = (" (install it with tools/install-system-deps.sh, package linux-source-6.12)"
                if src == DEFAULT_KERNEL_SRC else "")
        raise KvmBuildError(f"no kernel tree at {src}{hint}")
    if path.is_dir():
        if not (path / "arch/arm64/kvm/at.c").is_file():
            raise KvmBuildError(f"{src} is not a kernel tree with arch/arm64/kvm/at.c "
                                "(KVM's AT emulation is in Linux 6.12 and later)")
        return path
    return _extract(path)


def _extract(tarball: Path) -> Path:
    st = tarball.stat()
    stamp_text = f"{tarball.resolve()} {st.st_size} {st.st_mtime_ns} {','.join(_MEMBERS)}"
    dest = BUILD / "src"
    stamp = dest / ".extracted"
    if stamp.is_file():
        old = stamp.read_text().split("\n", 1)
        if len(old) == 2 and old[1] == stamp_text and (dest / old[0]).is_dir():
            return dest / old[0]
    if shutil.which("tar") is None:
        raise KvmBuildError("tar is not installed (needed to extract the kernel tree)")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(tarball, "r:*") as tf:  # only to learn the top directory's name
        first = tf.next()
        if first is None:
            raise KvmBuildError(f"{tarball} is an empty archive")
        top = first.name.split("/", 1)[0]
    members = [f"{top}/{m}" for m in _MEMBERS]
    proc = subprocess.run(["tar", "-xf", str(tarball), "-C", str(dest), *members],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not (dest / top / "arch/arm64/kvm/at.c").is_file():
        why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "tar failed"
        raise KvmBuildError(f"could not extract the kernel tree from {tarball}: {why}")
    stamp.write_text(f"{top}\n{stamp_text}")
    return dest / top


def _version_from_makefile(text: str) -> str:
    fields = {}
    for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL"):
        m = re.search(rf"^{key}\s*=\s*(\S*)\s*$", text, re.M)
        fields[key] = m.group(1) if m else ""
    if not fields["VERSION"]:
        return "unknown"
    return ".".join(fields[k] or "0" for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL"))


def kernel_version(kernel_src: str | None = None) -> str:
    """``VERSION.PATCHLEVEL.SUBLEVEL`` from the tree's top Makefile (``unknown`` when the
    tree has none)."""
    root = _tree_root(kernel_source(kernel_src))
    makefile = root / "Makefile"
    if not makefile.is_file():
        return "unknown"
    return _version_from_makefile(makefile.read_text(errors="replace"))


# ---- generated sources -------------------------------------------------------------------------

def _cut_nested_s2(text: str) -> str:
    """nested.c from ``struct s2_walk_info {`` to the closing brace of kvm_walk_nested_s2(),
    with a #line so that line numbers stay nested.c's."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("struct s2_walk_info {")), None)
    fn = next((i for i, ln in enumerate(lines)
               if re.match(r"^int kvm_walk_nested_s2\(", ln)), None)
    if start is None or fn is None or fn < start:
        raise KvmBuildError("nested.c: cannot find struct s2_walk_info ... kvm_walk_nested_s2()")
    end = next((i for i in range(fn, len(lines)) if lines[i] == "}"), None)
    if end is None:
        raise KvmBuildError("nested.c: cannot find the end of kvm_walk_nested_s2()")
    out = f'#line {start + 1} "nested.c"\n' + "\n".join(lines[start:end + 1]) + "\n"
    # newer trees: at.c also calls get_asid_by_regime(), defined elsewhere in nested.c
    fn2 = next((i for i, ln in enumerate(lines) if ln.startswith("u16 get_asid_by_regime(")), None)
    if fn2 is not None and not start <= fn2 <= end:
        end2 = next((i for i in range(fn2, len(lines)) if lines[i] == "}"), None)
        if end2 is None:
            raise KvmBuildError("nested.c: cannot find the end of get_asid_by_regime()")
        out += f'#line {fn2 + 1} "nested.c"\n' + "\n".join(lines[fn2:end2 + 1]) + "\n"
    return out


def _cut_compute_hcr(text: str) -> str:
    """vhe/switch.c from ``#define NV_HCR_GUEST_EXCLUDE`` to the end of __compute_hcr(), made
    non-static (the driver calls it); a tree without it gives a file that says so."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("#define NV_HCR_GUEST_EXCLUDE")),
                 None)
    fn = next((i for i, ln in enumerate(lines) if ln.startswith("static u64 __compute_hcr(")),
              None)
    if start is None or fn is None or fn < start:
        return "#define KVMAT_NO_COMPUTE_HCR 1\n"
    end = next((i for i in range(fn, len(lines)) if lines[i] == "}"), None)
    if end is None:
        return "#define KVMAT_NO_COMPUTE_HCR 1\n"
    body = lines[start:end + 1]
    body[fn - start] = body[fn - start].replace("static u64 __compute_hcr(", "u64 __compute_hcr(")
    return f'#line {start + 1} "switch.c"\n' + "\n".join(body) + "\n"


def _cut_tlb_inval(text: str) -> str:
    """nested.c from ttl_to_size() to the end of compute_tlb_inval_range() (the size L0
    unmaps for an L1 TLBI IPAS2E1 without TTL); a tree without them gives a file that says so."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines)
                  if ln.startswith("static unsigned int ttl_to_size(")), None)
    fn = next((i for i, ln in enumerate(lines)
               if ln.startswith("unsigned long compute_tlb_inval_range(")), None)
    if start is None or fn is None or fn < start:
        return "#define KVMAT_NO_TLB_INVAL 1\n"
    end = next((i for i in range(fn, len(lines)) if lines[i] == "}"), None)
    if end is None:
        return "#define KVMAT_NO_TLB_INVAL 1\n"
    return f'#line {start + 1} "nested.c"\n' + "\n".join(lines[start:end + 1]) + "\n"


def _cut_sysreg_enum(text: str) -> tuple[str, list[str]]:
    """``enum vcpu_sysreg { ... };`` from asm/kvm_host.h, and the register names in it."""
    m = re.search(r"^enum vcpu_sysreg \{\n(.*?)^\};", text, re.M | re.S)
    if m is None:
        raise KvmBuildError("asm/kvm_host.h: cannot find enum vcpu_sysreg")
    body = m.group(1)
    names: list[str] = []
    for ln in re.sub(r"/\*.*?\*/", "", body, flags=re.S).splitlines():
        mm = re.match(r"\s*(?:VNCR\(|MARKER\()?([A-Za-z_][A-Za-z0-9_]*)", ln)
        if mm and not mm.group(1).startswith("__") and mm.group(1) != "NR_SYS_REGS":
            names.append(mm.group(1))
    return "enum vcpu_sysreg {\n" + body + "};\n", names


#: Newer at.c defines __kvm_at_swap_desc() (inline-assembly compare-and-swap on the user
#: mapping of guest RAM); its definition is renamed to an unused static function and the
#: shim provides one over the driver's guest RAM.  6.12's at.c has none: it stays unchanged.
_SWAP_DESC = "int __kvm_at_swap_desc("
_SWAP_DESC_RENAMED = "static __maybe_unused int kvmat_kernel_swap_desc_unused("


def _at_c(text: str) -> str:
    lines = text.split("\n")
    hits = [i for i, ln in enumerate(lines) if ln.startswith(_SWAP_DESC)]
    if len(hits) > 1:
        raise KvmBuildError("at.c: more than one definition of __kvm_at_swap_desc()")
    for i in hits:
        lines[i] = _SWAP_DESC_RENAMED + lines[i][len(_SWAP_DESC):]
    return "\n".join(lines)


def _at_handlers(text: str) -> str:
    """The AT handlers of sys_regs.c's sys_insn_descs, as KVMAT_HANDLER(op, handler) lines."""
    out = [f"KVMAT_HANDLER({op}, {h})" for op, h in
           re.findall(r"SYS_INSN\(AT_(\w+),\s*handle_at_(s1e01|s1e2|s12)\)", text)]
    if not out:
        raise KvmBuildError("sys_regs.c: no SYS_INSN(AT_*, handle_at_*) entries")
    return "\n".join(out) + "\n"


def _awk() -> str:
    for name in ("mawk", "gawk", "awk"):
        if shutil.which(name):
            return name
    raise KvmBuildError("no awk (mawk or gawk) installed: needed for gen-sysreg.awk")


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _generate(root: Path, gen: Path) -> None:
    awk = _awk()
    tools = root / "arch/arm64/tools"
    for script, data, out in (("gen-sysreg.awk", "sysreg", "sysreg-defs.h"),
                              ("gen-cpucaps.awk", "cpucaps", "cpucap-defs.h")):
        proc = subprocess.run([awk, "-f", str(tools / script), str(tools / data)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise KvmBuildError(f"{script} failed: {proc.stderr.strip()[:200]}")
        _write_if_changed(gen / "asm" / out, proc.stdout)
    hwcaps = tools / "gen-kernel-hwcaps.sh"  # newer trees: asm/kernel-hwcap.h
    if hwcaps.is_file():
        proc = subprocess.run(["sh", "-e", str(hwcaps),
                               str(root / "arch/arm64/include/uapi/asm/hwcap.h")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise KvmBuildError(f"gen-kernel-hwcaps.sh failed: {proc.stderr.strip()[:200]}")
        _write_if_changed(gen / "asm" / "kernel-hwcap.h", proc.stdout)
    # asm/*.h that kbuild would generate as wrappers of asm-generic/*.h
    wanted: set[str] = set()
    for kbuild, key in ((root / "include/asm-generic/Kbuild", "mandatory-y"),
                        (root / "arch/arm64/include/asm/Kbuild", "generic-y")):
        if kbuild.is_file():
            wanted |= set(re.findall(rf"^{key}\s*\+=\s*(\S+\.h)", kbuild.read_text(), re.M))
    for h in sorted(wanted):
        if not (root / "arch/arm64/include/asm" / h).exists() and \
                (root / "include/asm-generic" / h).exists():
            _write_if_changed(gen / "asm" / h, f"#include <asm-generic/{h}>\n")
    # at.c unchanged; the stage 2 walker cut from nested.c; the sysreg enum; the AT handlers
    _write_if_changed(gen / "at.c", _at_c((root / "arch/arm64/kvm/at.c").read_text()))
    _write_if_changed(gen / "nested_s2.c",
                      _cut_nested_s2((root / "arch/arm64/kvm/nested.c").read_text()))
    # compute_tlb_inval_range()'s TLBI_TTL_* names come from asm/tlbflush.h, whose inline
    # assembly this build does not take: its #define lines only
    ttl_defs = [ln for ln in (root / "arch/arm64/include/asm/tlbflush.h").read_text()
                .splitlines() if ln.startswith("#define TLBI_TTL")]
    _write_if_changed(gen / "tlb_inval.c", "\n".join(ttl_defs) + "\n"
                      + _cut_tlb_inval((root / "arch/arm64/kvm/nested.c").read_text()))
    switch = root / "arch/arm64/kvm/hyp/vhe/switch.c"
    _write_if_changed(gen / "compute_hcr.c",
                      _cut_compute_hcr(switch.read_text()) if switch.is_file()
                      else "#define KVMAT_NO_COMPUTE_HCR 1\n")
    enum, names = _cut_sysreg_enum((root / "arch/arm64/include/asm/kvm_host.h").read_text())
    _write_if_changed(gen / "vcpu_sysreg_enum.h", enum)
    _write_if_changed(gen / "vcpu_sysreg_names.h",
                      "".join(f'\t{{ "{n}", {n} }},\n' for n in names))
    _write_if_changed(gen / "at_handlers.h",
                      _at_handlers((root / "arch/arm64/kvm/sys_regs.c").read_text()))


# ---- the build ---------------------------------------------------------------------------------

def _fingerprint(src: str, root: Path) -> str:
    h = hashlib.sha256(_RECIPE.encode())
    path = Path(src)
    st = path.stat()
    h.update(f"{path.resolve()} {st.st_size} {st.st_mtime_ns}".encode())
    for f in ("arch/arm64/kvm/at.c", "arch/arm64/kvm/nested.c", "arch/arm64/kvm/sys_regs.c",
              "arch/arm64/include/asm/kvm_host.h", "arch/arm64/tools/sysreg", "Makefile"):
        p = root / f
        h.update(p.read_bytes() if p.is_file() else b"-")
    h.update(Path(__file__).read_bytes())  # the compiler flags live here
    for p in sorted(CSRC.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(CSRC)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def build(kernel_src: str | None = None) -> Path:
    """Build ``build/kvm/kvm-at`` from a kernel tree (a directory or a ``.tar.xz``; default
    ``$KERNEL_SRC`` or Debian's linux-source-6.12 tarball) and return its path.  Idempotent:
    nothing is done when neither the tree nor the shim changed."""
    gcc = os.environ.get("CC", "gcc")
    if shutil.which(gcc) is None:
        raise KvmBuildError(f"no C compiler ({gcc}) installed: run tools/install-system-deps.sh")
    src = kernel_source(kernel_src)
    root = _tree_root(src)
    fp = _fingerprint(src, root)
    stamp = BUILD / ".built"
    if BINARY.is_file() and stamp.is_file() and stamp.read_text() == fp:
        return BINARY
    gen = BUILD / "gen"
    _generate(root, gen)
    version = kernel_version(src)
    log = BUILD / "build.log"
    kflags = [
        "-std=gnu11", "-O2", "-g", "-D__KERNEL__",
        "-fno-strict-aliasing", "-fno-strict-overflow", "-fno-common",
        # CONFIG_INIT_STACK_ALL_ZERO (the kernel's default with gcc 12): uninitialised locals are 0
        "-ftrivial-auto-var-init=zero",
        "-I", str(CSRC / "include"), "-I", str(gen),
        "-I", str(root / "arch/arm64/include"), "-I", str(root / "arch/arm64/include/uapi"),
        "-I", str(root / "include"), "-I", str(root / "include/uapi"), "-I", str(CSRC),
        "-include", str(root / "include/linux/kconfig.h"),
        "-include", str(root / "include/linux/compiler_types.h"),
    ]
    steps = [
        [gcc, *kflags, *(["-DKVMAT_SWAP_DESC_RENAMED"] if _SWAP_DESC_RENAMED in
                         (gen / "at.c").read_text() else []),
         "-c", str(CSRC / "at_tu.c"), "-o", str(BUILD / "at_tu.o")],
        [gcc, *kflags, "-c", str(CSRC / "s2_tu.c"), "-o", str(BUILD / "s2_tu.o")],
        [gcc, *kflags, "-c", str(CSRC / "hcr_tu.c"), "-o", str(BUILD / "hcr_tu.o")],
        [gcc, *kflags, "-c", str(CSRC / "ttl_tu.c"), "-o", str(BUILD / "ttl_tu.o")],
        [gcc, "-std=gnu11", "-O2", "-g", "-Wall", "-I", str(CSRC),
         f'-DKVMAT_KERNEL_VERSION="{version}"',
         "-c", str(CSRC / "driver.c"), "-o", str(BUILD / "driver.o")],
        [gcc, "-o", str(BUILD / "kvm-at.tmp"), str(BUILD / "driver.o"),
         str(BUILD / "at_tu.o"), str(BUILD / "s2_tu.o"), str(BUILD / "hcr_tu.o"),
         str(BUILD / "ttl_tu.o")],
    ]
    with log.open("w") as fh:
        fh.write(f"# kernel tree: {src} ({version})\n")
        for cmd in steps:
            fh.write("$ " + " ".join(cmd) + "\n")
            fh.flush()
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                raise KvmBuildError(f"compiling KVM's AT emulation failed (kernel {version}); "
                                    f"see {log}")
    os.replace(BUILD / "kvm-at.tmp", BINARY)
    stamp.write_text(fp)
    return BINARY


# ---- atlab NV scenarios as kvm-at input --------------------------------------------------------

#: The AT ops a guest hypervisor's AT traps to KVM with (AT S1E3* is UNDEFINED at EL2).
KVM_OPS = ("S1E1R", "S1E1W", "S1E0R", "S1E0W", "S1E1RP", "S1E1WP", "S1E1A",
           "S1E2R", "S1E2W", "S1E2A", "S12E1R", "S12E1W", "S12E0R", "S12E0W")

#: vCPU registers at.c and nested.c read, always present in 6.12's enum vcpu_sysreg.
BASE_REGS = frozenset({
    "HCR_EL2", "SCTLR_EL1", "TCR_EL1", "TTBR0_EL1", "TTBR1_EL1", "MAIR_EL1", "SCTLR_EL2",
    "TCR_EL2", "TTBR0_EL2", "TTBR1_EL2", "MAIR_EL2", "VTCR_EL2", "VTTBR_EL2", "PAR_EL1",
})
#: Newer registers, passed on only when the built tree's enum has them.
NEWER_REGS = frozenset({
    "TCR2_EL1", "TCR2_EL2", "PIR_EL1", "PIR_EL2", "PIRE0_EL1", "PIRE0_EL2", "POR_EL0",
    "POR_EL1", "POR_EL2", "MAIR2_EL1", "MAIR2_EL2", "HCRX_EL2",
})


def tree_registers() -> frozenset[str]:
    """The register names the last build's enum vcpu_sysreg has (``BASE_REGS`` if unbuilt)."""
    names = BUILD / "gen" / "vcpu_sysreg_names.h"
    if not names.is_file():
        return BASE_REGS
    return frozenset(re.findall(r'\{ "(\w+)",', names.read_text()))


def kvm_scenario_name(name: str) -> str:
    """An NV scenario's name as kvm-at prints it (one token: white space becomes ``_``)."""
    return re.sub(r"\s+", "_", name) or "nv"


def trapped_at_esr(op: str) -> int:
    """ESR_EL2 of an AT trapped from vEL2 with Rt=1 (EC 0x18), as atlab.syndrome computes."""
    info = AtOp[op].info
    return trapped_sys(info.op1, 7, info.crm, info.op2, rt=1).esr


def to_kvm_input(scn: NvScenario, *, registers: frozenset[str] | None = None,
                 hw: Mapping[str, int] | None = None) -> str:
    """One ``scenario`` block of kvm-at input for an atlab NV scenario: vsysregs as ``reg``
    lines, the feature set as the ID register fields KVM reads, L1's memory as ``mem`` lines,
    and per op a ``pstate`` (PAN from the op's ``pan`` key, else vsysregs PSTATE_PAN), the
    trapped AT's ``esr`` and the ``at``.  Ops that never reach KVM (AT S1E3*) are left out
    (see :func:`kvm_op_indices`).  KVM emulates ATs trapped from vEL2 only: a scenario whose
    context is not L1 raises :class:`AtlabError`.  ``hw`` gives ``hw`` lines (the hardware
    registers L0 has loaded when the AT traps, for ``hardware`` mode: ``HCR_EL2``,
    ``VTTBR_EL2``, ``SHADOW_VTTBR_EL2``, ...)."""
    from atlab.nv.routing import Context
    from atlab.sysregs import id_registers

    if scn.context is not Context.L1_VEL2:
        raise AtlabError(f"{scn.name}: KVM's AT emulation handles ATs trapped from vEL2 "
                         f"(context L1), not {scn.context.value}")
    from atlab.nv.kvm import kvm_ipa_limit, kvm_sanitise

    # KVM reads L1's VNCR-backed registers through kvm_vcpu_sanitise_vncr_reg(); the shim has
    # no such masking, so the input carries what KVM would hold.
    scn = replace(scn, vregs=kvm_sanitise(scn.vregs, scn.features))
    known = registers if registers is not None else tree_registers()
    name = kvm_scenario_name(scn.name)
    out = [f"scenario {name}"]
    ids = id_registers(scn.features)
    ids.setdefault("ID_AA64PFR2_EL1", 0)
    for reg, val in sorted(ids.items()):
        out.append(f"id {reg} {val:#x}")
    out.append(f"ipa_limit {kvm_ipa_limit(scn.features)}")
    for reg, val in (hw or {}).items():
        out.append(f"hw {reg} {val:#x}")
    for reg in scn.vregs:
        if reg in ("PSTATE_PAN",):
            continue
        if reg not in known:
            if scn.vregs[reg] == 0 or reg not in NEWER_REGS | BASE_REGS:
                continue
            raise AtlabError(f"{scn.name}: {reg} is set but the built kernel tree has no {reg}")
        out.append(f"reg {reg} {scn.vregs[reg]:#x}")
    for ipa, val in scn.l1_memory:
        out.append(f"mem {ipa:#x} {val:#x}")
    default_pan = scn.vregs.field("PSTATE_PAN", "PAN")
    for spec in scn.ops:
        if not reaches_kvm(spec.op, scn.features):
            out.append(f"# {spec.op.name} {spec.va:#x}: UNDEFINED at EL2, never trapped to KVM")
            continue
        pan = spec.pan if spec.pan is not None else default_pan
        out.append(f"pstate {0x9 | (pan << 22):#x}")
        out.append(f"esr {trapped_at_esr(spec.op.name):#x}")
        out.append(f"at {spec.op.name} {spec.va:#x}")
    out.append("end")
    return "\n".join(out) + "\n"


def kvm_op_indices(scn: NvScenario) -> list[int]:
    """Indices into ``scn.ops`` of the ops :func:`to_kvm_input` passes to KVM, in order."""
    return [i for i, spec in enumerate(scn.ops) if reaches_kvm(spec.op, scn.features)]


def reaches_kvm(op: AtOp, features: FeatureSet) -> bool:
    """Whether ``AT <op>`` executed by L1 at vEL2 traps to KVM: AT S1E3* and an AT whose
    feature the PE lacks (AT S1E1RP/WP without FEAT_PAN2, AT S1E1A without FEAT_ATS1A) are
    UNDEFINED in hardware first; AT S1E2A is kept (KVM checks FEAT_ATS1A itself)."""
    if op.name not in KVM_OPS:
        return False
    need = op.info.feature
    return op is AtOp.S1E2A or need is None or features.has(need)


# ---- running kvm-at ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KvmOpResult:
    """One ``result`` line: what KVM did for one trapped AT."""

    scenario: str
    kernel: str
    n: int
    op: str
    va: int
    par: int | None  # PAR_EL1 after the op; None when KVM injected UNDEFINED
    written: bool  # KVM wrote PAR_EL1 (vcpu_write_sys_reg)
    undef: bool
    reads: int  # kvm_read_guest() calls
    hwat: int  # hardware AT executions
    warn: tuple[str, ...]  # file:line of each WARN hit
    bug: str | None  # file:line of a BUG()

    def __str__(self) -> str:
        if self.undef:
            what = "UNDEFINED injected"
        elif not self.written:
            what = "PAR_EL1 not written"
        else:
            what = f"PAR_EL1={self.par:#018x}" if self.par is not None else "?"
        extra = []
        if self.warn:
            extra.append("WARN at " + ",".join(self.warn))
        if self.bug:
            extra.append("BUG at " + self.bug)
        return (f"AT {self.op} {self.va:#x}: {what}" + (" " + " ".join(extra) if extra else "")
                + f" (reads={self.reads} hwat={self.hwat})")


@dataclass(frozen=True, slots=True)
class HwAtRequest:
    """A hardware AT the fast path executes in ``hardware`` mode, with the registers as KVM
    left them."""

    op: str
    va: int
    regs: dict[str, int]
    pan: int
    #: the scenario being run and the index of its op (among the ops sent to KVM) that
    #: issued this hardware AT
    scenario: str = ""
    n: int = 0


_RESULT = re.compile(
    r"result (\d+) (\w+) (0x[0-9a-f]+) par=(-|0x[0-9a-f]{16}) written=([01]) undef=([01]) "
    r"reads=(\d+) hwat=(\d+) warn=(\S+) bug=(\S+)$")


def parse_output(text: str) -> list[KvmOpResult]:
    """The ``result`` lines of kvm-at output (``scenario`` lines give their names)."""
    results: list[KvmOpResult] = []
    scenario, kernel = "", ""
    for line in text.splitlines():
        if line.startswith("scenario "):
            parts = line.split()
            scenario = parts[1]
            kernel = parts[2].removeprefix("kernel=") if len(parts) > 2 else ""
            continue
        if line.startswith("result "):
            results.append(_parse_result(line, scenario, kernel))
    return results


def _parse_result(line: str, scenario: str, kernel: str) -> KvmOpResult:
    m = _RESULT.match(line)
    if m is None:
        raise AtlabError(f"kvm-at: unexpected output line: {line}")
    par = None if m.group(4) == "-" else int(m.group(4), 16)
    return KvmOpResult(
        scenario=scenario, kernel=kernel, n=int(m.group(1)), op=m.group(2),
        va=int(m.group(3), 16), par=par, written=m.group(5) == "1", undef=m.group(6) == "1",
        reads=int(m.group(7)), hwat=int(m.group(8)),
        warn=() if m.group(9) == "-" else tuple(m.group(9).split(",")),
        bug=None if m.group(10) == "-" else m.group(10))


def _parse_hwat(line: str) -> HwAtRequest:
    parts = line.split()
    regs: dict[str, int] = {}
    pan = 0
    for kv in parts[3:]:
        key, _, val = kv.partition("=")
        if key == "PAN":
            pan = int(val)
        else:
            regs[key] = int(val, 16)
    return HwAtRequest(op=parts[1], va=int(parts[2], 16), regs=regs, pan=pan)


def run(text: str, *, mode: str = "fails",
        answer: Callable[[HwAtRequest], int | None] | None = None,
        binary: Path | None = None) -> list[KvmOpResult]:
    """Run kvm-at over ``text`` (any number of scenarios) and return one result per ``at``.
    In ``hardware`` mode ``answer`` is called for each hardware AT: it returns the PAR the AT
    leaves, or None when the AT instruction itself faults.  Input errors raise
    :class:`AtlabError` with kvm-at's message."""
    import tempfile

    if mode not in ("fails", "hardware"):
        raise AtlabError(f"mode must be 'fails' or 'hardware', not {mode!r}")
    exe = _built(binary)
    with tempfile.NamedTemporaryFile("w", suffix=".kvmat", delete=False) as tmp:
        tmp.write(text)
        path = tmp.name
    try:
        if mode == "fails":
            proc = subprocess.run([str(exe), "--mode", "fails", path],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise AtlabError(proc.stderr.strip() or f"kvm-at exited with {proc.returncode}")
            return parse_output(proc.stdout)
        if answer is None:
            raise AtlabError("hardware mode needs an answer callable")
        return _run_hardware(exe, path, answer)
    finally:
        os.unlink(path)


def _run_hardware(exe: Path, path: str,
                  answer: Callable[[HwAtRequest], int | None]) -> list[KvmOpResult]:
    proc = subprocess.Popen([str(exe), "--mode", "hardware", path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    results: list[KvmOpResult] = []
    scenario, kernel = "", ""
    done = 0  # results seen in the current scenario
    for line in proc.stdout:
        line = line.rstrip("\n")
        if line.startswith("hwat "):
            req = replace(_parse_hwat(line), scenario=scenario, n=done)
            par = answer(req)
            proc.stdin.write("fail\n" if par is None else f"par {par:#x}\n")
            proc.stdin.flush()
        elif line.startswith("scenario "):
            parts = line.split()
            scenario = parts[1]
            kernel = parts[2].removeprefix("kernel=") if len(parts) > 2 else ""
            done = 0
        elif line.startswith("result "):
            results.append(_parse_result(line, scenario, kernel))
            done += 1
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise AtlabError(err.strip() or f"kvm-at exited with {proc.returncode}")
    return results


def run_scenarios(scenarios: Iterable[NvScenario], *, mode: str = "fails",
                  answer: Callable[[HwAtRequest], int | None] | None = None,
                  hw: Callable[[NvScenario], Mapping[str, int]] | None = None,
                  ) -> list[list[KvmOpResult]]:
    """Run many NV scenarios in one kvm-at process; per scenario, the results of its KVM ops
    (see :func:`kvm_op_indices`).  ``hw(scn)`` gives each scenario's ``hw`` lines."""
    scns = list(scenarios)
    known = tree_registers()
    text = "".join(to_kvm_input(s, registers=known, hw=hw(s) if hw else None) for s in scns)
    flat = run(text, mode=mode, answer=answer)
    out: list[list[KvmOpResult]] = []
    pos = 0
    for s in scns:
        k = len(kvm_op_indices(s))
        out.append(flat[pos:pos + k])
        pos += k
    return out


def _built(binary: Path | None) -> Path:
    exe = binary or BINARY
    if not exe.is_file():
        raise KvmBuildError(f"{exe} is not built: run `python -m tools.kvm build`")
    return exe


def _printed_values(text: str, command: str, binary: Path | None) -> list[int]:
    """Run kvm-at (fails mode) over ``text`` and return the hex value of each line it printed
    for ``command`` (``compute_hcr 0x...``, ``tlb_inval 0x...``)."""
    proc = subprocess.run([str(_built(binary)), "-"], input=text, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise AtlabError(proc.stderr.strip() or f"kvm-at exited with {proc.returncode}")
    return [int(ln.split()[1], 16) for ln in proc.stdout.splitlines()
            if ln.startswith(command + " ")]


def compute_hcr(vhcrs: Sequence[int], *, base: int, binary: Path | None = None) -> list[int]:
    """KVM's own ``__compute_hcr()`` (vhe/switch.c) for a vCPU at vEL2 whose vHCR_EL2 is each
    of ``vhcrs`` in turn, with KVM's base HCR_EL2 for the guest ``base``: the HCR_EL2 L0 loads
    while L1 runs.  One kvm-at process for all of them."""
    text = "".join(f"scenario h{i}\nreg HCR_EL2 {v:#x}\ncompute_hcr {base:#x}\n"
                   for i, v in enumerate(vhcrs))
    out = _printed_values(text, "compute_hcr", binary)
    if len(out) != len(vhcrs) or any(v == (1 << 64) - 1 for v in out):
        raise AtlabError("this kernel tree has no __compute_hcr() the build could cut")
    return out


def tlb_inval_range(vtcr: int, shadow: Mapping[int, int], ipas: Sequence[int], *,
                    binary: Path | None = None) -> list[int]:
    """KVM's own ``compute_tlb_inval_range()`` (nested.c) for L1's TLBI IPAS2E1 of each of
    ``ipas`` (no TTL hint), with L1's VTCR_EL2 ``vtcr`` and a shadow stage 2 of 4KB leaves
    ``shadow`` (L2 IPA page -> the level of L1's mapping it came from, KVM's
    ``KVM_NV_GUEST_MAP_SZ`` tag): the size of the range L0 unmaps."""
    lines = [f"scenario ttl\nreg VTCR_EL2 {vtcr:#x}\n"]
    lines += [f"shadow_leaf {ipa:#x} {(1 | (level & 3) << 55):#x}\n"
              for ipa, level in shadow.items()]
    lines += [f"tlb_inval {ipa >> 12:#x}\n" for ipa in ipas]
    out = _printed_values("".join(lines), "tlb_inval", binary)
    if len(out) != len(ipas) or 0 in out:
        raise AtlabError("this kernel tree has no compute_tlb_inval_range() the build could cut")
    return out

