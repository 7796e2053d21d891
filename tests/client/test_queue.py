"""The command queue, prepared calls and the mirror, on a fake transport: what is sent, when, what a failure does."""
from __future__ import annotations

import sys

import pytest
import remote_autograd as ra
from fakes import FakeTransport, commands, failing_at
from remote_autograd.command_queue import MAX_IN_FLIGHT
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos.codec import KIND as K


def session(respond=None, **kw) -> tuple[ra.Session, FakeTransport]:
    transport = FakeTransport(respond, stream=kw.pop("stream", True))
    kw.setdefault("eager", False)
    kw.setdefault("send_ahead", 0)
    kw.setdefault("early_answers", False)
    return ra.Session("fake:0", transport=transport, **kw), transport


def kinds(batch) -> list[str]:
    return [pb.Kind.Name(c.kind) for c in batch.commands]


def test_commands_wait_for_a_sync_point_and_go_in_one_batch():
    t, wire = session()
    x = t.ones(3, requires_grad=True)
    y = (x * 2).exp().sum()
    assert wire.sent == [] and t.wire.queued == 4
    assert y.shape == () and y.grad_fn.name() == "SumBackward0"  # inferred here, nothing asked
    y.backward()
    assert wire.sent == []  # the mirror shows nothing of the client's runs in it: queued too
    t.synchronize()
    assert [kinds(b) for b in wire.sent] == [["FACTORY", "CALL", "CALL", "CALL", "BACKWARD"]]
    assert t.wire.queued == 0 and t.wire.in_flight == 0


def test_eager_mode_sends_each_command_by_itself():
    t, wire = session(eager=True)
    x = t.ones(3)
    x * 2
    assert [kinds(b) for b in wire.sent] == [["FACTORY"], ["CALL"]]


def test_batches_sent_ahead_are_numbered_and_never_more_than_the_bound_unanswered():
    t, wire = session(send_ahead=2)
    unanswered = []

    class Count(ra.transport.Observer):
        def sent(self, batch):
            unanswered.append(t.wire.in_flight)
    t.wire.observe(Count())
    y = t.ones(2)
    for _ in range(4 * MAX_IN_FLIGHT):
        y = y + 1
    assert max(unanswered) == MAX_IN_FLIGHT - 1
    assert len(wire.answered) < len(wire.sent)  # some still unanswered: nothing waited for them
    t.synchronize()
    seqs = [b.seq for b in wire.sent]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(wire.answered) == len(wire.sent)


def test_a_failure_names_the_op_and_the_users_line_and_poisons_what_came_after():
    # the batch fails at its second command: the mul
    t, wire = session(failing_at(1, "IndexError", "index 5 is out of bounds"))
    x = t.ones(3)
    y = x * 2; line = sys._getframe().f_lineno  # noqa: E702
    z = y + 1
    t.set_grad_enabled(False)  # a state change after the failure: sent again, so the server agrees
    with pytest.raises(IndexError, match="index 5 is out of bounds") as info:
        t.synchronize()
    assert f"(raised by 'mul', issued at {__file__}:{line})" in info.value.__notes__
    for dropped in (y, z):
        with pytest.raises(RuntimeError, match="this tensor was never computed: 'mul' issued at"):
            dropped + 1
    wire.respond = wire.ok
    x + 1
    t.synchronize()
    last = wire.sent[-1]
    assert last.resume  # the server hears that the failure was seen
    assert "SET_GRAD_MODE" in kinds(last)


def test_released_tensors_ride_the_next_batch():
    t, wire = session()
    x = t.ones(3)
    y = x * 2
    t.synchronize()
    tid = y._id
    del y
    (x + 1)
    t.synchronize()
    assert tid in wire.sent[-1].release


def test_a_repeated_call_is_prepared_at_its_second_use_and_then_sent_as_ids():
    t, wire = session()
    x = t.ones(3)
    for _ in range(3):
        x = x * 1.5
    t.synchronize()
    cmds = commands(wire.sent)
    assert [pb.Kind.Name(c.kind) for c in cmds] == ["FACTORY", "CALL", "PREPARE", "CALLS"]
    prepare, calls = cmds[2], cmds[3]
    assert prepare.name == "mul" and prepare.args[0].ref == 0 and prepare.args[1].f == 1.5
    pid = prepare.outputs[0]
    assert list(calls.calls)[0::4] == [pid, pid]  # (id, output, node, tensor) per call


def test_prepared_ids_are_taken_back_oldest_first_past_the_limit(monkeypatch):
    monkeypatch.setattr(ra.prepared, "MAX_PREPARED", 2)
    t, wire = session()
    x = t.ones(3)
    for _ in range(2):
        for c in (1.5, 2.5, 3.5):
            x * c
    t.synchronize()
    prepares = [c for c in commands(wire.sent) if c.kind == K.PREPARE]
    assert [(c.args[1].f, c.outputs[0]) for c in prepares] == [(1.5, 1), (2.5, 2), (3.5, 1)]


def test_a_zero_constant_is_never_prepared():
    t, wire = session()
    x = t.ones(3)
    for _ in range(3):
        x * 0.0
    t.synchronize()
    assert not any(c.kind == K.PREPARE for c in commands(wire.sent))


def test_prepared_calls_the_server_lost_are_prepared_again():
    t, wire = session()
    x = t.ones(3)
    x * 1.5
    x * 1.5
    t.synchronize()
    wire.respond = failing_at(0, "RuntimeError", "prepared call 1 is not held by this session", "NOT_FOUND")
    x * 1.5
    with pytest.raises(RuntimeError, match="prepared call 1"):
        t.synchronize()
    wire.respond = wire.ok
    x * 1.5  # the plan is new again: its first use is a CALL
    x * 1.5
    t.synchronize()
    assert [pb.Kind.Name(c.kind) for c in wire.sent[-1].commands] == ["CALL", "PREPARE", "CALLS"]


def test_the_mirror_answers_grad_questions_without_a_round_trip():
    t, wire = session()
    w = t.ones(3, requires_grad=True)
    c = t.ones(3)
    assert w.grad is None and c.grad is None  # known: nothing sent
    assert wire.sent == []
    (w * 2).sum().backward()
    g = w.grad  # the backward reaches w: its grad exists, named now and bound on the server later
    assert g is not None and g.shape == (3,) and wire.sent == []
    assert c.grad is None
    t.synchronize()
    assert kinds(wire.sent[-1])[-1] == "GET_GRAD"


def test_a_backward_that_frees_buffers_twice_is_sent_at_once():
    t, wire = session()
    w = t.ones(3, requires_grad=True)
    y = (w * w).sum()
    y.backward()
    assert wire.sent == []
    y.backward()  # the mirror sees spent buffers: sent at once, so that its error is this line's
    assert kinds(wire.sent[-1])[-1] == "BACKWARD"


def test_an_early_answer_cuts_the_queue_after_the_value():
    t, wire = session(early_answers=True)
    w = t.ones(3, 3, requires_grad=True)
    x = t.ones(4, 3)
    loss = (x @ w).tanh().sum()
    loss.backward()
    with t.no_grad():
        w.sub_(0.1 * w.grad)
    loss.item()
    awaited = [b for b in wire.sent if b.awaited]
    assert len(awaited) == 1 and kinds(awaited[0])[-1] == "FETCH" and "BACKWARD" not in kinds(awaited[0])
    assert t.wire.in_flight == 1  # the backward and update: answered at the next sync point
    t.synchronize()
    assert t.wire.in_flight == 0


def test_without_a_pipelined_stream_there_is_no_early_answer():
    t, wire = session(early_answers=True, stream=False)
    w = t.ones(3, requires_grad=True)
    loss = (w * 2).sum()
    loss.backward()
    loss.item()
    assert not any(b.awaited for b in wire.sent)


def test_a_closed_session_refuses_commands_at_the_line():
    t, wire = session()
    x = t.ones(2)
    t.close()
    assert wire.closed
    with pytest.raises(ra.RemoteError, match="closed"):
        x * 2


@pytest.mark.parametrize("written", [False, True])
def test_an_in_place_write_after_a_graph_keeps_its_backward_before_the_cut(written):
    # the server alone can tell whether the write changed a value the backward needs: if it did,
    # the backward fails, and that error must be raised at the read, not after it
    t, wire = session(early_answers=True)
    w = t.ones(3, requires_grad=True)
    y = w * 2
    loss = y.exp().sum()
    if written:
        y.mul_(2)
    loss.backward()
    with t.no_grad():
        w.sub_(0.1)
    loss.item()
    (awaited,) = [b for b in wire.sent if b.awaited]
    assert ("BACKWARD" in kinds(awaited)) is written
