"""A real Linux under QEMU: fetch Debian's arm64 kernel and busybox, build an initramfs, boot
it, read its translation registers and table pages through QEMU's gdbstub (gdb-multiarch
driven by pygdbmi), snapshot them and compare atlab's walks with QEMU's own translations.
See tools/realsys/README.md; ``python -m tools.realsys --help``."""


class RealsysError(Exception):
    """A one-line reason why a real-system step could not be done."""
