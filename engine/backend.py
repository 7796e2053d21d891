"""The one place the engine reaches its array library: numpy, or CuPy when asked for."""
from __future__ import annotations

import contextlib
import os
import warnings

import numpy

_requested = os.environ.get("REMOTE_AUTOGRAD_BACKEND", "numpy").strip().lower()

if _requested == "cupy":
    import cupy as xp  # noqa: F401  (a GPU host asked for it; fail loudly if it is missing)
    BACKEND = "cupy"
elif _requested in ("numpy", ""):
    xp = numpy
    BACKEND = "numpy"
else:
    raise ValueError(f"REMOTE_AUTOGRAD_BACKEND must be 'numpy' or 'cupy', got {_requested!r}")

ndarray = xp.ndarray

# torch computes log(-1), 1/0 or an overflow silently (nan, inf); numpy warns of each, and its
# warnings would reach a torch user who never sees such a thing. Its error state is per thread
# (the server sets it around each batch: server/batches.py), so the engine's in-process users
# are spared by a filter on the engine's own modules instead.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"remote_autograd\.engine\.")


def writeable(array) -> bool:
    """Whether writing into ``array`` is safe: not read-only, and no element shared (a broadcast)."""
    if BACKEND == "cupy":  # CuPy has no read-only flag; a broadcast shows as a zero stride
        return array.size <= 1 or 0 not in array.strides
    return bool(array.flags.writeable)


def errstate(**kwargs):
    """numpy's floating-point error state; CuPy raises no such warnings, so there it is a no-op."""
    if BACKEND == "cupy":
        return contextlib.nullcontext()
    return numpy.errstate(**kwargs)


def to_numpy(array) -> numpy.ndarray:
    """Host copy of a backend array (a no-op view for numpy)."""
    if BACKEND == "cupy":
        return xp.asnumpy(array)
    return array


def from_numpy(array: numpy.ndarray):
    """Backend array from a host array (no copy for numpy)."""
    if BACKEND == "cupy":  # a raw copy of the bytes (CuPy's asarray of a 0-d array loses -0.0's sign)
        out = xp.empty(array.shape, dtype=array.dtype)
        if array.size:
            out.set(numpy.asarray(array, order="C"))  # (ascontiguousarray would make a 0-d array 1-d)
        return out
    return array
