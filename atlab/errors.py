"""The one user-facing error class.

Architectural faults are *values* (see :mod:`atlab.faults`); :class:`AtlabError` is raised only
for misuse and bad input: unknown register names, reserved encodings that make a walk
meaningless, malformed scenario files, bad hex.  Its message is one line.
"""

from __future__ import annotations


class AtlabError(Exception):
    """Misuse of atlab or bad input; the message is one clear line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
