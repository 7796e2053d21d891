"""Warnings the engine raises while a call runs: collected per call and sent back to its client."""
from __future__ import annotations

import contextlib
import contextvars
import warnings

_sink: contextvars.ContextVar[list | None] = contextvars.ContextVar("remote_autograd_warnings", default=None)
_installed = False


def install() -> None:
    """Route warnings raised inside ``collect()`` to its list; others reach the log as before."""
    global _installed
    if _installed:
        return
    _installed = True
    original = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        sink = _sink.get()
        if sink is None:
            return original(message, category, filename, lineno, file, line)
        sink.append((category.__name__, str(message)))

    warnings.showwarning = showwarning
    # every session must see its own warnings: the "once per code location" registry of the
    # default filter would show each one to the first session only
    warnings.filterwarnings("always", module=r"remote_autograd\.")


@contextlib.contextmanager
def collect():
    sink: list = []
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)
