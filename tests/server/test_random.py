"""Issue 16: a session's generator is numpy's whatever the array backend, as engine/random.py expects."""
from __future__ import annotations

import types

import numpy
from batch_helpers import command, new_session, run, value
from remote_autograd.protos.codec import KIND as K
from remote_autograd.server import session as session_module


def _randn(s, tid: int):
    reply = run(s, command(K.FACTORY, "randn", (3, 4), outputs=(tid,)))
    assert not reply.HasField("error"), reply.error
    return value(s, tid)


def test_a_session_draws_from_numpy_even_where_the_backend_has_a_generator_of_its_own(monkeypatch):
    # a CuPy server's backend module (xp) makes CuPy generators: a session must not take one
    cupy_like = types.SimpleNamespace(random=types.SimpleNamespace(default_rng=lambda *a: object()))
    monkeypatch.setattr(session_module, "xp", cupy_like, raising=False)
    s = new_session()
    assert isinstance(s.generator, numpy.random.Generator)
    drawn = _randn(s, 1)  # no manual_seed: the session's own generator
    assert drawn.shape == (3, 4) and drawn.dtype == numpy.float32 and numpy.unique(drawn).size == 12


def test_a_seed_is_the_sessions_own():
    seeded, other, again = new_session(), new_session(), new_session()
    for s in (seeded, again):
        run(s, command(K.MANUAL_SEED, args=(5,)))
    first = _randn(seeded, 1)
    assert not numpy.array_equal(first, _randn(other, 1))
    numpy.testing.assert_array_equal(first, _randn(again, 1))
