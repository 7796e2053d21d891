"""The data plane without a transport: batches written by hand, run by batches.answer, checked against torch."""
from __future__ import annotations

import threading
import time

import numpy
import torch
from batch_helpers import Ref, call, command, new_session, run, upload, value
from remote_autograd.protos.codec import KIND as K


def test_a_batch_computes_what_torch_computes():
    rng = numpy.random.default_rng(0)
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    s = new_session()
    reply = run(s, upload(1, x, requires_grad=True), upload(2, w), call("mm", 1, 2, out=3),
                call("tanh", 3, out=4), call("sum", 4, out=5),
                command(K.BACKWARD, args=((Ref(5),), None, None)),
                command(K.GET_GRAD, args=(Ref(1),), outputs=(6,)))
    assert not reply.HasField("error"), reply.error
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.tanh(tx @ torch.tensor(w))
    ty.sum().backward()
    numpy.testing.assert_allclose(value(s, 4), ty.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(value(s, 6), tx.grad.numpy(), rtol=1e-12)


def test_a_failing_command_stops_its_batch_and_names_itself():
    s = new_session()
    reply = run(s, upload(1, numpy.ones((2, 3))), upload(2, numpy.ones((4, 5))),
                call("add", 1, 2, out=3), call("neg", 1, out=4))
    assert (reply.error.code, reply.error.type) == ("FAILED_PRECONDITION", "RuntimeError")
    assert reply.error.has_index and reply.error.index == 2
    assert "(3) must match the size of tensor b (5)" in reply.error.message
    assert len(reply.results) == 0 and 3 not in s.tensors and 4 not in s.tensors
    assert 2 in s.tensors  # the commands before it ran


def test_an_unknown_tensor_and_an_unknown_command_kind():
    s = new_session()
    reply = run(s, call("neg", 99, out=1))
    assert (reply.error.code, reply.error.type, reply.error.index) == ("NOT_FOUND", "RuntimeError", 0)
    reply = run(s, upload(1, numpy.ones(2)), command(999))
    assert (reply.error.code, reply.error.type, reply.error.index) == ("UNIMPLEMENTED", "NotImplementedError", 1)


def test_numbered_batches_run_in_order_and_stop_after_a_failure_until_resume():
    s = new_session()
    second: list = []
    waiting = threading.Thread(target=lambda: second.append(run(s, call("neg", 1, out=2), seq=2)))
    waiting.start()
    time.sleep(0.2)
    assert waiting.is_alive()  # batch 2 waits for batch 1, which makes the tensor it reads
    assert not run(s, upload(1, numpy.arange(3.0)), seq=1).HasField("error")
    waiting.join(10)
    assert not second[0].HasField("error")
    numpy.testing.assert_array_equal(value(s, 2), -numpy.arange(3.0))

    assert run(s, call("neg", 99, out=3), seq=3).error.code == "NOT_FOUND"
    refused = run(s, call("neg", 1, out=4), seq=4).error
    assert (refused.code, refused.type, refused.has_index) == ("ABORTED", "", False)
    assert 4 not in s.tensors
    assert not run(s, call("neg", 1, out=5), seq=5, resume=True).HasField("error")
    assert 5 in s.tensors
    assert run(s, call("neg", 1, out=6), seq=4).error.code == "INVALID_ARGUMENT"  # a late one: refused


def test_releases_come_after_the_batch_and_do_not_count_against_the_limit():
    s = new_session(max_tensors=2)
    run(s, upload(1, numpy.ones(2)), upload(2, numpy.ones(2)))
    reply = run(s, call("neg", 2, out=3), release=(2,))  # uses 2, then lets it go
    assert not reply.HasField("error"), reply.error
    assert sorted(s.tensors) == [1, 3]
    full = run(s, call("neg", 1, out=4)).error
    assert (full.code, full.type, full.index) == ("RESOURCE_EXHAUSTED", "", 0)


def test_each_command_describes_its_tensors_only_if_it_asks():
    s = new_session()
    reply = run(s, command(K.FACTORY, "zeros", (2, 3), outputs=(1,), describe=True),
                command(K.FACTORY, "zeros", (4,), outputs=(2,)),
                command(K.SET_REQUIRES_GRAD, args=(Ref(1), True), describe=True),
                command(K.SET_REQUIRES_GRAD, args=(Ref(2), True)))
    described, silent, flagged, unflagged = reply.results
    assert (described.outputs[0].id, list(described.outputs[0].shape), described.outputs[0].dtype) == \
        (1, [2, 3], "float32")
    assert len(silent.outputs) == 0 and len(unflagged.outputs) == 0
    assert flagged.outputs[0].requires_grad


def test_a_gradient_that_is_none_keeps_its_place_among_the_described():
    s = new_session()
    run(s, upload(1, numpy.ones(3), requires_grad=True), upload(2, numpy.ones(3), requires_grad=True),
        call("sum", 1, out=3))
    reply = run(s, command(K.GRAD, args=((Ref(3),), (Ref(1), Ref(2)), None), kwargs={"allow_unused": True},
                           outputs=(4, 5), describe=True))
    assert [m.id for m in reply.results[0].outputs] == [4, 0]
    assert 5 not in s.tensors
