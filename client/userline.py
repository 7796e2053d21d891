"""The user's line: where a command was issued (outside this package), for errors and warnings raised later."""
from __future__ import annotations

import sys
import warnings

_INSIDE: dict = {}  # code object -> whether it is this package's (a frame's module, remembered)


def user_line(frame):
    """Where the user issued a command: the first frame outside this package from ``frame`` out,
    as (code, line); made text only when an error names it (most commands never fail)."""
    while frame is not None:
        code = frame.f_code
        inside = _INSIDE.get(code)
        if inside is None:
            inside = _INSIDE[code] = frame.f_globals.get("__name__", "").startswith("remote_autograd")
        if not inside:
            return code, frame.f_lineno
        frame = frame.f_back
    return None


def line_text(where) -> str:
    return "<unknown>" if where is None else f"{where[0].co_filename}:{where[1]}"


def warn_at_user_line(message: str, category: type) -> None:
    """Warn as torch does: attributed to the user's line (so the default filter dedups per line)."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is our caller, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("remote_autograd"):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
