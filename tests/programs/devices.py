"""What a device program gave, as comparable values: the same on torch, the engine and a session."""
from __future__ import annotations


def outcome(fn):
    try:
        out = fn()
    except Exception as e:  # noqa: BLE001  (the exception is the observation)
        return ("raised", type(e).__name__, str(e))
    return ("ok", repr(out) if not hasattr(out, "shape") else (str(out.dtype), str(out.device)))
