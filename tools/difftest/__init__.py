"""The QEMU differential test: generated scenarios through QEMU and atlab, compared.

``python -m tools.difftest`` (what ``make difftest`` runs); see ``--help``.
"""
