#!/bin/sh
# Download a newer Debian kernel source package (default linux-source-7.3, from
# trixie-backports) without touching the system's apt configuration, and unpack its
# /usr/src/linux-source-*.tar.xz into build/kvm/newer/. Then:
#   python -m tools.kvm build --kernel-src build/kvm/newer/usr/src/linux-source-7.3.tar.xz
# The suite reuses the mirror URI already configured for bookworm; no host name is written
# here. Idempotent: does nothing when the tarball is already there.
set -eu

pkg=${1:-linux-source-7.3}
suite=${SUITE:-trixie-backports}
here=$(cd "$(dirname "$0")/../.." && pwd)
out="$here/build/kvm/newer"
ver=${pkg#linux-source-}
if [ -f "$out/usr/src/linux-source-$ver.tar.xz" ]; then
    echo "$out/usr/src/linux-source-$ver.tar.xz"
    exit 0
fi
src=/etc/apt/sources.list.d/debian.sources
uri=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' "$src" | grep -v security | head -n1)
if [ -z "$uri" ]; then
    echo "fetch-newer-source: cannot read the Debian mirror URI from $src" >&2
    exit 1
fi
apt="$out/apt"
mkdir -p "$apt/etc" "$apt/lists/partial" "$apt/cache/archives/partial"
printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" "$suite" > "$apt/etc/newer.sources"
touch "$apt/status"
set -- -o APT::Sandbox::User=root -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/etc" \
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Dir::State::status=$apt/status"
apt-get "$@" -qq update
(cd "$apt" && apt-get "$@" -qq download "$pkg")
dpkg-deb -x "$apt"/"$pkg"_*.deb "$out"
# the private lists name the mirror: do not keep them
rm -rf "$apt"
echo "$out/usr/src/linux-source-$ver.tar.xz"
