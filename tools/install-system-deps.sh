#!/bin/sh
# Install the system packages atlab's tests need on Debian 12 (bookworm):
#   - qemu-system-arm 10.x from bookworm-backports (bookworm's QEMU 7.2 has AT bugs,
#     see README "Validation against QEMU"),
#   - binutils-aarch64-linux-gnu (assembler/linker for the bare-metal harness),
#   - chromium (browser tests of the widgets),
#   - linux-source-6.12 (bookworm-security: /usr/src/linux-source-6.12.tar.xz, the kernel tree
#     tools/kvm builds KVM's AT emulation from) and what that build needs: gcc, tar, xz-utils,
#     mawk.
# The backports suite reuses the mirror URI already configured for bookworm; no host
# name is written here. Idempotent; does nothing for packages already present.
set -eu

need_qemu=1
if command -v qemu-system-aarch64 >/dev/null 2>&1; then
    major=$(qemu-system-aarch64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1)
    [ "${major:-0}" -ge 10 ] && need_qemu=0
fi
need_as=1; command -v aarch64-linux-gnu-as >/dev/null 2>&1 && need_as=0
need_chromium=1; command -v chromium >/dev/null 2>&1 && need_chromium=0
need_ksrc=1; [ -f /usr/src/linux-source-6.12.tar.xz ] && need_ksrc=0
need_cc=0
for tool in gcc tar xz mawk; do command -v "$tool" >/dev/null 2>&1 || need_cc=1; done
if [ "$need_qemu$need_as$need_chromium$need_ksrc$need_cc" = "00000" ]; then
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
