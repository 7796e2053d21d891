"""A client's batches that run while a backward waits for its hook leave the waiting batch's context as it was."""
from __future__ import annotations

import threading

import numpy
from batch_helpers import Ref, call, command, new_session, run, upload
from remote_autograd.protos.codec import KIND as K

HOOK = 7
MUL = 3  # a prepared call: mul of two tensors given per call


def _with_hook(s, outer):
    """Run ``outer`` while a client answers the hook on tensor 1: from inside the hook it runs a
    batch of its own (describing nothing, releasing nothing, counting no calls), then it leaves
    the session at its tensor limit and answers. Returns the outer batch's answer and the inner's."""
    events = s.subscribe(controller=True)
    inner: list = []

    def client():
        event = events.get(timeout=10)
        inner.append(run(s, command(K.FACTORY, "zeros", (2,), outputs=(30,)), call("neg", 30, out=31)))
        s.limits.max_tensors = len(s.tensors)  # full: what the outer batch binds needs its releases
        s.answer(event.hook.call_id, None, None)

    answering = threading.Thread(target=client)
    answering.start()
    reply = run(s, *outer, release=(2,))
    answering.join(10)
    assert not answering.is_alive()
    assert not inner[0].HasField("error"), inner[0].error
    return reply


def _session():
    s = new_session()
    reply = run(s, upload(1, numpy.arange(3.0), requires_grad=True), upload(2, numpy.ones(3)),
                command(K.PREPARE, "mul", (Ref(0), Ref(0)), outputs=(MUL,)),
                call("sum", 1, out=4), command(K.REGISTER_HOOK, args=(Ref(1),), kwargs={"hook": HOOK}))
    assert not reply.HasField("error"), reply.error
    return s


def _grad(out: int):
    return command(K.GRAD, args=((Ref(4),), (Ref(1),), None), kwargs={"retain_graph": True}, outputs=(out,),
                   describe=True)


def test_the_waiting_command_still_describes_and_binds_through_its_batchs_releases():
    reply = _with_hook(s := _session(), [_grad(5)])
    assert not reply.HasField("error"), reply.error
    assert [m.id for m in reply.results[0].outputs] == [5]
    assert 5 in s.tensors and 2 not in s.tensors


def test_a_failure_after_the_callback_counts_the_calls_before_it():
    calls = command(K.CALLS, calls=[MUL, 10, 0, 1, 1, MUL, 11, 0, 10, 1])
    reply = _with_hook(_session(), [calls, _grad(5), call("neg", 99, out=6)])
    assert (reply.error.code, reply.error.index) == ("NOT_FOUND", 3)  # calls 0-1, grad 2, then 3
