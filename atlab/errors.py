"""The one user-facing error class.

Architectural faults are *values* (see :mod:`atlab.faults`); :class:`AtlabError` is raised only
for misuse and bad input: unknown register names, reserved encodings that make a walk
meaningless, malformed scenario files, bad hex.  Its message is one line a person can read:
values echoed from the input go through :func:`clip`, and the whole line is capped at
:data:`MAX_MESSAGE` characters.
"""

from __future__ import annotations

#: Longest echo of an input value in a message (:func:`clip`).
MAX_ECHO = 60
#: Longest error message; anything longer is cut with an ellipsis.
MAX_MESSAGE = 500


def clip(value: object, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters with an ellipsis.

    A container is not ``repr``-ed whole (it may be huge or shared many times over): only its
    type and size are shown when its ``repr`` would be long.

    >>> clip("TG0")
    "'TG0'"
    >>> clip("x" * 100, 12)
    "'xxxxxxxxxx…"
    >>> clip(list(range(1000)))
    'a list of 1000 items'
    >>> clip(1 << 300)
    '0x100000000000000000000000000000000000000000000000000000000…'
    """
    if isinstance(value, list | tuple | dict | set | frozenset):
        if len(value) > 8:
            return f"a {type(value).__name__} of {len(value)} items"
        text = _short_repr(value, limit)
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        text = hex(value)  # repr() of a big int is quadratic and has a digit limit
    else:
        text = _short_repr(value, limit)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_repr(value: object, limit: int) -> str:
    if isinstance(value, str | bytes) and len(value) > 4 * limit:
        value = value[: 4 * limit]
    try:
        return repr(value)
    except (ValueError, RecursionError):  # an int beyond the digit limit, a nested container
        return f"a {type(value).__name__}"


class AtlabError(Exception):
    """Misuse of atlab or bad input; the message is one clear line."""

    def __init__(self, message: str) -> None:
        text = " ".join(message.split())
        if len(text) > MAX_MESSAGE:
            text = text[: MAX_MESSAGE - 1] + "…"
        super().__init__(text)
