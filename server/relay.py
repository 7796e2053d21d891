"""Warnings the engine raises while a call runs: collected per call and sent back to its client."""
from __future__ import annotations

import contextlib
import contextvars
import threading
import warnings

_sink: contextvars.ContextVar[list | None] = contextvars.ContextVar("remote_autograd_warnings", default=None)
_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Route warnings raised inside ``collect()`` to its list; others reach the log as before."""
    global _installed
    with _install_lock:
        if _installed:
            return
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
        _installed = True


@contextlib.contextmanager
def collect():
    """Collect the warnings raised inside into the list it yields (installing the route on first use)."""
    if not _installed:
        install()
    sink: list = []
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)
