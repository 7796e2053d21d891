"""Prepared calls through the data plane: PREPARE once, CALLS by ids; an error's index counts each call."""
from __future__ import annotations

import numpy
from batch_helpers import Ref, call, command, new_session, run, upload, value
from remote_autograd.protos.codec import KIND as K

MUL = 7  # the prepared call's id: mul of two tensors given per call


def _prepared_session():
    s = new_session()
    reply = run(s, upload(1, numpy.array([1.0, 2.0, 3.0])),
                command(K.PREPARE, "mul", (Ref(0), Ref(0)), outputs=(MUL,)))
    assert not reply.HasField("error"), reply.error
    return s


def _calls(*calls):
    """CALLS of MUL: each call is (output id, first input, second input), no node named."""
    return command(K.CALLS, calls=[n for out, a, b in calls for n in (MUL, out, 0, a, b)])


def test_calls_run_in_order_each_on_the_last_ones_outputs():
    s = _prepared_session()
    reply = run(s, _calls((10, 1, 1), (11, 10, 1)))
    assert not reply.HasField("error"), reply.error
    numpy.testing.assert_array_equal(value(s, 11), [1.0, 8.0, 27.0])


def test_a_failing_call_is_named_by_its_place_counting_each_call():
    s = _prepared_session()
    reply = run(s, call("neg", 1, out=2), _calls((10, 1, 1), (11, 99, 1), (12, 1, 1)), call("neg", 1, out=13))
    assert (reply.error.code, reply.error.index) == ("NOT_FOUND", 2)  # command 1's second call
    assert 10 in s.tensors and 12 not in s.tensors and 13 not in s.tensors


def test_commands_after_calls_are_counted_past_every_call():
    s = _prepared_session()
    reply = run(s, _calls((10, 1, 1), (11, 10, 1)), call("neg", 99, out=12))
    assert reply.error.index == 2  # the CALLS' two calls count as commands 0 and 1


def test_an_unknown_prepared_call_and_a_call_cut_short():
    s = _prepared_session()
    assert run(s, command(K.CALLS, calls=[8, 10, 0, 1, 1])).error.code == "NOT_FOUND"
    cut = run(s, command(K.CALLS, calls=[MUL, 10, 0, 1])).error
    assert (cut.code, cut.type, cut.index) == ("INVALID_ARGUMENT", "ValueError", 0)
