"""Shared pieces of the widgets: the inline error line, hex input parsing, figure images."""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ipywidgets as w
from matplotlib.figure import Figure

from atlab.errors import AtlabError
from atlab.sysregs import parse_int
from atlab.viz import to_png

F = TypeVar("F", bound=Callable[..., Any])

#: Widget images are small PNGs: a frame renders in tens of milliseconds.
IMAGE_DPI = 72


def parse_hex(text: str, what: str, *, bits: int = 64) -> int:
    """A user-typed number (hex with 0x, binary with 0b, or decimal) that fits in ``bits``."""
    if not text.strip():
        raise AtlabError(f"{what}: type a value, e.g. 0x1234")
    value = parse_int(text, what=what)
    if value >> bits:
        raise AtlabError(f"{what}: {value:#x} does not fit in {bits} bits")
    return value


class ErrorLine(w.HTML):  # type: ignore[misc]
    """One HTML line under a widget's controls: empty, or the error of the last interaction."""

    def __init__(self) -> None:
        super().__init__("")
        self.add_class("atlab-error")
        self.message = ""

    def show(self, message: str) -> None:
        self.message = message
        self.value = (f'<span style="color:#D55E00;font-weight:bold">&#9888; '
                      f"{html.escape(message)}</span>")

    def clear(self) -> None:
        self.message = ""
        self.value = ""


def guarded(method: F) -> F:
    """Wrap a widget callback: any error becomes the widget's inline error line, never a
    traceback in the output area.  The instance must have an ``error`` :class:`ErrorLine`."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except AtlabError as exc:
            self.error.show(str(exc))
            return None
        except Exception as exc:  # a widget must never show a traceback
            self.error.show(f"internal error ({type(exc).__name__}): {exc}")
            return None
        self.error.clear()
        return result

    return wrapper  # type: ignore[return-value]


def png_of(fig: Figure) -> bytes:
    return to_png(fig, dpi=IMAGE_DPI)


def image() -> w.Image:
    return w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))


def html_table(rows: Sequence[Sequence[str]], head: Sequence[str]) -> str:
    th = "".join(f"<th style='text-align:left;padding:0 8px'>{html.escape(h)}</th>"
                 for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:0 8px'><code>{html.escape(c)}</code></td>"
                         for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"
