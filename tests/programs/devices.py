"""What a device program gave, as comparable values: the same on torch, the engine and a session."""
from __future__ import annotations


def outcome(fn):
    try:
        out = fn()
    except Exception as e:  # noqa: BLE001  (the exception is the observation)
        return ("raised", type(e).__name__, str(e))
    return ("ok", repr(out) if not hasattr(out, "shape") else (str(out.dtype), str(out.device)))


# What the CPU build of torch (the pinned oracle) raises where a program asks for cuda; a CUDA build
# on a host without a GPU words it otherwise ("Found no NVIDIA driver"), and a server without a GPU
# is a CPU build's host.
NO_CUDA = ("raised", "AssertionError", "Torch not compiled with CUDA enabled")


def expected(program, torch) -> tuple:
    """torch's outcome of ``program``, as the CPU build gives it."""
    got = outcome(lambda: program(torch))
    if torch.version.cuda is not None and got[0] == "raised" and "NVIDIA driver" in got[2]:
        return NO_CUDA
    return got
