"""Random numbers from a generator per session/thread (a contextvar), seeded by manual_seed.

Drawn on the host with numpy on every backend, so a seed gives the same values on a CPU and a
GPU server (CuPy's generator has other streams and no permutation)."""
from __future__ import annotations

import contextvars

import numpy

_generator: contextvars.ContextVar = contextvars.ContextVar("generator", default=None)


def generator():
    gen = _generator.get()
    if gen is None:
        gen = numpy.random.default_rng()
        _generator.set(gen)
    return gen


def manual_seed(seed: int):
    """Seed this session's generator (other sessions keep theirs)."""
    seed = int(seed)
    if not -(1 << 63) <= seed < (1 << 64):
        raise ValueError("Overflow when unpacking long long")
    seed %= 1 << 64  # torch keeps a uint64: -1 is 2**64 - 1
    gen = numpy.random.default_rng(seed)
    _generator.set(gen)
    return gen


def fresh_generator() -> None:
    """Give the current context a generator of its own (a server does this per session)."""
    _generator.set(numpy.random.default_rng())
