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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from atlab.errors import AtlabError
from atlab.features import Feature, FeatureSet
from atlab.nv.model import NvScenario
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
    "arch/arm64/include",
    "arch/arm64/tools",
    "include",
)

#: Bumped when the build recipe itself changes (forces a rebuild of old build/ trees).
_RECIPE = "1"


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
    stamp_text = f"{tarball.resolve()} {st.st_size} {st.st_mtime_ns}"
    dest = BUILD / "src"
    stamp = dest / ".extracted"
    if stamp.is_file():
        top = stamp.read_text().split("\n", 1)
        if len(top) == 2 and top[1] == stamp_text and (dest / top[0]).is_dir():
            return dest / top[0]
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
        raise KvmBuildError(f"could not extract the kernel tree from {tarball}: "
                            f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'tar failed'}")
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
    return f'#line {start + 1} "nested.c"\n' + "\n".join(lines[start:end + 1]) + "\n"


def _cut_sysreg_enum(text: str) -> tuple[str, list[str]]:
    """``enum vcpu_sysreg { ... };`` from asm/kvm_host.h, and the register names in it."""
    m = re.search(r"^enum vcpu_sysreg \{\n(.*?)^\};", text, re.M | re.S)
    if m is None:
        raise KvmBuildError("asm/kvm_host.h: cannot find enum vcpu_sysreg")
    body = m.group(1)
    names: list[str] = []
    for ln in re.sub(r"/\*.*?\*/", "", body, flags=re.S).splitlines():
        mm = re.match(r"\s*(?:VNCR\(|MARKER\()?([A-Za-z][A-Za-z0-9_]*)", ln)
        if mm and not mm.group(1).startswith("__") and mm.group(1) != "NR_SYS_REGS":
            names.append(mm.group(1))
    return "enum vcpu_sysreg {\n" + body + "};\n", names


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
    _write_if_changed(gen / "at.c", (root / "arch/arm64/kvm/at.c").read_text())
    _write_if_changed(gen / "nested_s2.c",
                      _cut_nested_s2((root / "arch/arm64/kvm/nested.c").read_text()))
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
        # the Debian kernel is built with CONFIG_INIT_STACK_ALL_ZERO: uninitialised locals are 0
        "-ftrivial-auto-var-init=zero",
        "-I", str(CSRC / "include"), "-I", str(gen),
        "-I", str(root / "arch/arm64/include"), "-I", str(root / "arch/arm64/include/uapi"),
        "-I", str(root / "include"), "-I", str(root / "include/uapi"), "-I", str(CSRC),
        "-include", str(root / "include/linux/kconfig.h"),
        "-include", str(root / "include/linux/compiler_types.h"),
    ]
    steps = [
        [gcc, *kflags, "-c", str(CSRC / "at_tu.c"), "-o", str(BUILD / "at_tu.o")],
        [gcc, *kflags, "-c", str(CSRC / "s2_tu.c"), "-o", str(BUILD / "s2_tu.o")],
        [gcc, "-std=gnu11", "-O2", "-g", "-Wall", "-I", str(CSRC),
         f'-DKVMAT_KERNEL_VERSION="{version}"',
         "-c", str(CSRC / "driver.c"), "-o", str(BUILD / "driver.o")],
        [gcc, "-o", str(BUILD / "kvm-at.tmp"), str(BUILD / "driver.o"),
         str(BUILD / "at_tu.o"), str(BUILD / "s2_tu.o")],
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
