#!/bin/sh
# Install the system packages atlab's tests need on Debian 12 (bookworm):
#   - qemu-system-arm 10.x from bookworm-backports (bookworm's QEMU 7.2 has AT bugs,
#     see README "Validation against QEMU"),
#   - binutils-aarch64-linux-gnu (assembler/linker for the bare-metal harness),
#   - chromium (browser tests of the widgets),
#   - gdb-multiarch (tools/realsys reads a booted Linux's registers and memory through QEMU's
#     gdbstub with it, driven by pygdbmi) and gcc-aarch64-linux-gnu (the tiny static KVM
#     guest program tools/realsys/kvmguest.c),
#   - linux-source-6.12 (bookworm-security: /usr/src/linux-source-6.12.tar.xz, the kernel tree
#     tools/kvm builds KVM's AT emulation from) and what that build needs: gcc, tar, xz-utils,
#     mawk.
#   - QEMU 11.1 (the second hardware judge, for TCR2/S1PIE/S2PIE/AIE/ATS1A): a Debian 13
#     (trixie) chroot made with debootstrap at $ATLAB_QEMU11_CHROOT (default
#     /var/lib/atlab/qemu11-chroot), with qemu-system-arm from trixie-backports inside it
#     (Debian 12 cannot install QEMU 11: it needs Debian 13's libc). tools/hw runs it as
#     `chroot DIR /usr/bin/qemu-system-aarch64` (python -m tools.difftest --qemu 11). Needs
#     root; set ATLAB_NO_QEMU11=1 to skip it.
#   - node-configurable-http-proxy (the proxy of the workshop hub, `make hub`; pulls Debian's
#     nodejs). `sh tools/install-system-deps.sh hub` installs only that.
# The backports suites reuse the mirror URI already configured for bookworm; no host
# name is written here. Idempotent; does nothing for packages already present.
set -eu

# ---- the workshop hub's proxy ---------------------------------------------------------------
hub_proxy() {
    command -v configurable-http-proxy >/dev/null 2>&1 && return 0
    echo "install-system-deps: installing node-configurable-http-proxy (the hub's proxy)"
    s=""; [ "$(id -u)" -eq 0 ] || s="sudo"
    DEBIAN_FRONTEND=noninteractive $s apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq --no-install-recommends \
        node-configurable-http-proxy >/dev/null
}
if [ "${1:-}" = hub ]; then
    hub_proxy
    exit 0
fi
hub_proxy

# ---- QEMU 11.1 in a Debian 13 chroot -----------------------------------------------------
qemu11_chroot() {
    dir=${ATLAB_QEMU11_CHROOT:-/var/lib/atlab/qemu11-chroot}
    if [ -x "$dir/usr/bin/qemu-system-aarch64" ]; then
        return 0
    fi
    if [ "${ATLAB_NO_QEMU11:-0}" = 1 ]; then
        echo "install-system-deps: ATLAB_NO_QEMU11=1: not making the QEMU 11 chroot" >&2
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-system-deps: QEMU 11 chroot ($dir) needs root: run this script as root" \
             "(the QEMU 11 tests skip without it)" >&2
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    src=/etc/apt/sources.list.d/debian.sources
    uri=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' "$src" | grep -v security | head -n1)
    if [ -z "$uri" ]; then
        echo "install-system-deps: cannot read the Debian mirror URI from $src" >&2
        exit 1
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        echo "install-system-deps: installing debootstrap (for the QEMU 11 chroot)"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    if [ ! -x "$dir/usr/bin/apt-get" ]; then
        echo "install-system-deps: making a Debian 13 chroot at $dir (debootstrap, ~80 s)"
        rm -rf "$dir"
        mkdir -p "$dir"
        debootstrap --variant=minbase trixie "$dir" "$uri" >"$dir.debootstrap.log" 2>&1 || {
            echo "install-system-deps: debootstrap failed; see $dir.debootstrap.log" >&2
            exit 1
        }
    fi
    echo "install-system-deps: installing qemu-system-arm from trixie-backports in $dir"
    printf 'deb %s trixie-backports main\n' "$uri" >"$dir/etc/apt/sources.list.d/atlab-trixie-backports.list"
    # (apt-get in a chroot without /dev/pts prints a harmless "Can not write log" line)
    if ! chroot "$dir" apt-get update -qq >"$dir.apt-update.log" 2>&1; then
        echo "install-system-deps: apt-get update failed in $dir; see $dir.apt-update.log" >&2
        exit 1
    fi
    chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends -t trixie-backports qemu-system-arm >/dev/null 2>&1 || {
        echo "install-system-deps: apt-get install qemu-system-arm failed in $dir" >&2
        exit 1
    }
    chroot "$dir" apt-get clean
    mkdir -p "$dir/atlab"
    chroot "$dir" /usr/bin/qemu-system-aarch64 --version | head -n1
}
qemu11_chroot

need_qemu=1
if command -v qemu-system-aarch64 >/dev/null 2>&1; then
    major=$(qemu-system-aarch64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
    [ "${major:-0}" -ge 10 ] && need_qemu=0
fi
need_as=1; command -v aarch64-linux-gnu-as >/dev/null 2>&1 && need_as=0
need_chromium=1; command -v chromium >/dev/null 2>&1 && need_chromium=0
need_gdb=1; command -v gdb-multiarch >/dev/null 2>&1 && command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && need_gdb=0
need_ksrc=1; [ -f /usr/src/linux-source-6.12.tar.xz ] && need_ksrc=0
need_cc=0
for tool in gcc tar xz mawk; do command -v "$tool" >/dev/null 2>&1 || need_cc=1; done
if [ "$need_qemu$need_as$need_chromium$need_ksrc$need_cc$need_gdb" = "000000" ]; then
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

src=/etc/apt/sources.list.d/debian.sources
bpo=/etc/apt/sources.list.d/atlab-bookworm-backports.sources
if [ "$need_qemu" = 1 ] && [ ! -f "$bpo" ]; then
    uri=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' "$src" | grep -v security | head -n1)
    if [ -z "$uri" ]; then
        echo "install-system-deps: cannot read the Debian mirror URI from $src" >&2
        exit 1
    fi
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
        | $SUDO tee "$bpo" >/dev/null
fi
$SUDO apt-get update -qq
pkgs=""
[ "$need_as" = 1 ] && pkgs="$pkgs binutils-aarch64-linux-gnu"
[ "$need_chromium" = 1 ] && pkgs="$pkgs chromium"
[ "$need_gdb" = 1 ] && pkgs="$pkgs gdb-multiarch gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
[ "$need_ksrc" = 1 ] && pkgs="$pkgs linux-source-6.12"
[ "$need_cc" = 1 ] && pkgs="$pkgs gcc tar xz-utils mawk"
if [ -n "$pkgs" ]; then
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
if [ "$need_qemu" = 1 ]; then
    $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-arm >/dev/null
fi
qemu-system-aarch64 --version | head -n1
