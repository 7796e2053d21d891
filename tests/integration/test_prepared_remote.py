"""Prepared calls (Kind PREPARE and CALLS): what a client of any language may send, what the server
answers, and how the Python client uses them."""
from __future__ import annotations

import json
import math
import os

import grpc
import numpy as np
import pytest
import remote_autograd as ra
import remote_helpers as rh
import torch
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos.codec import encode_array
from remote_helpers import RawStub, as_older_server, fetch_command, record_batches, rpc_error

K = pb.Kind


@pytest.fixture
def raw_session(address):
    with ra.connect(address) as t:
        stub = RawStub(address, t.session_id, t.token)
        try:
            yield stub
        finally:
            stub.close()


def _factory(name: str, tid: int, *args: pb.Value, **kwargs: pb.Value) -> pb.Command:
    cmd = pb.Command(kind=K.FACTORY, name=name, outputs=[tid])
    for a in args:
        cmd.args.add().CopyFrom(a)
    for k, v in kwargs.items():
        cmd.kwargs[k].CopyFrom(v)
    return cmd


def _shape(*dims: int) -> pb.Value:
    v = pb.Value()
    v.list.SetInParent()
    for d in dims:
        v.list.items.add().i = d
    return v


def _prepare(pid: int, name: str, *args, **kwargs) -> pb.Command:
    """args: None for a tensor (ref 0), a float, or a Value."""
    cmd = pb.Command(kind=K.PREPARE, name=name, outputs=[pid])
    for a in args:
        if a is None:
            cmd.args.add().ref = 0
        elif isinstance(a, float):
            cmd.args.add().f = a
        else:
            cmd.args.add().CopyFrom(a)
    for k, v in kwargs.items():
        cmd.kwargs[k].CopyFrom(v)
    return cmd


def _calls(*calls) -> pb.Command:
    return pb.Command(kind=K.CALLS, calls=[i for call in calls for i in call])


def _values(stub, tid: int) -> list:
    data = stub.execute(fetch_command(tid)).results[0].value.tensor
    return np.frombuffer(data.data, dtype=np.dtype(data.dtype)).reshape(tuple(data.shape)).tolist()


def test_prepared_calls_compute_what_calls_do_and_name_their_nodes(raw_session):
    x = _factory("full", 10, _shape(3), pb.Value(f=2.0), requires_grad=pb.Value(b=True))
    answer = raw_session.execute(
        x, _prepare(1, "mul", None, 1.5), _prepare(2, "add", None, None),
        # y = x * 1.5 (node 21); z = y + x (node 22); w = z * 1.5 (no node named)
        _calls((1, 11, 21, 10), (2, 12, 22, 11, 10), (1, 13, 0, 12)))
    assert len(answer.results) == 4  # one result per command, the run of calls one
    assert _values(raw_session, 11) == [3.0] * 3
    assert _values(raw_session, 12) == [5.0] * 3
    assert _values(raw_session, 13) == [7.5] * 3
    # the nodes are the graph's, under the ids the calls named
    nxt = pb.Command(kind=K.NEXT_FUNCTIONS)
    nxt.kwargs["node"].i = 22
    pairs = raw_session.execute(nxt).results[0].value.list.items
    assert [p.list.items[0].node.id for p in pairs][0] == 21
    assert [p.list.items[0].node.name for p in pairs] == ["MulBackward0", "torch::autograd::AccumulateGrad"]


def test_prepared_inplace_calls_write_their_first_tensor_and_name_its_node(raw_session):
    x = _factory("full", 60, _shape(3), pb.Value(f=2.0), requires_grad=pb.Value(b=True))
    double = pb.Command(kind=K.CALL, name="mul", outputs=[61], args=[pb.Value(ref=60), pb.Value(f=2.0)])
    sub = _prepare(4, "sub", None, None)
    sub.inplace = True
    zero = _prepare(5, "zero_", None)
    zero.inplace = True
    z = _factory("ones", 62, _shape(3))
    # y = x * 2 (4s); y -= x twice (node 71, then 72); z.zero_()
    raw_session.execute(x, double, z, sub, zero, _calls((4, 0, 71, 61, 60), (4, 0, 72, 61, 60), (5, 0, 0, 62)))
    assert _values(raw_session, 61) == [0.0] * 3
    assert _values(raw_session, 62) == [0.0] * 3
    nxt = pb.Command(kind=K.NEXT_FUNCTIONS)
    nxt.kwargs["node"].i = 72  # the second sub_'s node: after the first's
    pairs = raw_session.execute(nxt).results[0].value.list.items
    assert [(p.list.items[0].node.id, p.list.items[0].node.name) for p in pairs][0] == (71, "SubBackward0")
    # an in-place call names no output; its first argument is the tensor it writes
    error = rpc_error(raw_session.execute, _calls((4, 63, 0, 61, 60)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "names no output" in error.details()
    bad = _prepare(6, "sub", 1.0, None)
    bad.inplace = True
    error = rpc_error(raw_session.execute, bad)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "first argument" in error.details()
    assert _values(raw_session, 61) == [0.0] * 3  # nothing written by the refused call


def test_a_failing_call_is_named_by_its_place_and_the_calls_after_it_do_not_run(raw_session):
    scores = _factory("zeros", 30, _shape(2, 3))
    good = pb.Command(kind=K.UPLOAD, outputs=[31])
    encode_array(np.array([0, 2]), good.args.add().tensor)
    bad = pb.Command(kind=K.UPLOAD, outputs=[32])
    encode_array(np.array([0, 5]), bad.args.add().tensor)
    raw_session.execute(scores, good, bad)
    loss = _prepare(3, "nll_loss", None, None)
    error = rpc_error(raw_session.execute, loss, _calls((3, 40, 0, 30, 31), (3, 41, 0, 30, 32), (3, 42, 0, 30, 31)))
    md = dict(error.trailing_metadata())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and md["x-error-type"] == "IndexError"
    assert "Target 5 is out of bounds" in error.details()
    assert md["x-error-index"] == "2"  # the PREPARE, then the run's second call
    assert _values(raw_session, 40) == pytest.approx(-0.0)  # the first call ran
    assert rpc_error(raw_session.execute, fetch_command(42)).code() == grpc.StatusCode.NOT_FOUND  # the third did not


def _tensor_value() -> pb.Value:
    v = pb.Value()
    encode_array(np.ones(3, dtype=np.float32), v.tensor)
    return v


def test_bad_prepares_and_calls_are_refused_and_the_session_goes_on(raw_session):
    raw_session.execute(_factory("ones", 50, _shape(2)), _prepare(1, "neg", None))
    cases = [
        (_calls((9, 51, 0, 50)), grpc.StatusCode.NOT_FOUND, "prepared call 9 is not held"),
        (_calls((1, 51, 0)), grpc.StatusCode.INVALID_ARGUMENT, "ends in the middle of a call"),
        (_calls((1, 51, 0, 999)), grpc.StatusCode.NOT_FOUND, "tensor id 999"),
        (_prepare(2, "mul", pb.Value(ref=50), 2.0), grpc.StatusCode.INVALID_ARGUMENT, "not ref"),
        (_prepare(2, "mul", None, _tensor_value()), grpc.StatusCode.INVALID_ARGUMENT, "not tensor"),
        (_prepare(2, "sort", None), grpc.StatusCode.INVALID_ARGUMENT, "one output"),
        (_prepare(0, "neg", None), grpc.StatusCode.INVALID_ARGUMENT, "not 0"),
        (_prepare(2, "no_such_op", None), grpc.StatusCode.UNIMPLEMENTED, "no_such_op"),
        (_prepare(2, "sum", None, dim=pb.Value(ref=50)), grpc.StatusCode.INVALID_ARGUMENT, "not ref"),
    ]
    for cmd, code, words in cases:
        error = rpc_error(raw_session.execute, cmd)
        assert error.code() == code and words in error.details(), (cmd, error.details())
    raw_session.execute(_calls((1, 51, 0, 50)))
    assert _values(raw_session, 51) == [-1.0, -1.0]


def test_a_session_holds_at_most_4096_prepared_calls(raw_session):
    raw_session.execute(*[_prepare(pid, "neg", None) for pid in range(1, 4097)])
    error = rpc_error(raw_session.execute, _prepare(4097, "neg", None))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    raw_session.execute(_prepare(4096, "exp", None), _factory("zeros", 60, _shape(1)),
                        _calls((4096, 61, 0, 60)))  # an id held may be prepared again
    assert _values(raw_session, 61) == [1.0]


# ---------------------------------------------------------------- the Python client

def _sign_program(th):
    x = th.tensor([1.0, -2.0, 3.0])
    return [x * 0.0, x * -0.0, x + -0.0, x * 2.0, x * 2.0]


def test_calls_with_zero_constants_keep_their_sign(t):
    # 0.0 and -0.0 are one plan key; a call prepared with one must not compute the other
    for got, want in zip(_sign_program(t), _sign_program(torch), strict=True):
        assert [math.copysign(1, v) for v in got.tolist()] == [math.copysign(1, v) for v in want.tolist()]
        assert got.tolist() == want.tolist()


def test_a_repeated_op_is_prepared_at_its_second_use_and_then_sent_as_ids(address):
    with ra.connect(address) as t:
        sent = record_batches(t)
        x = t.ones(4, requires_grad=True)
        y = x
        for _ in range(50):
            y = y * 1.5
        assert y.sum().item() == pytest.approx(4 * 1.5 ** 50, rel=1e-5)
        commands = [c for b in sent for c in b.commands]
        assert [c.name for c in commands if c.kind == K.PREPARE] == ["mul"]
        assert [c.name for c in commands if c.kind == K.CALL] == ["mul", "sum"]  # used once so far
        assert sum(len(c.calls) for c in commands if c.kind == K.CALLS) == 49 * 4
        assert y.grad_fn.name() == "MulBackward0" and y.grad_fn.next_functions[0][0].name() == "MulBackward0"


def _inplace_steps(th):
    w = th.tensor([1.0, -2.0, 0.5], requires_grad=True)
    m = th.zeros(3)
    out = []
    for _ in range(4):
        y = w * 1.0
        y.mul_(w)  # in place, recorded (a node of its own)
        y.add_(1.0)
        y.sum().backward()
        with th.no_grad():
            m.mul_(0.5).add_(w.grad)
            w.sub_(0.1 * m)
            w.grad.zero_()
        out.append((y.grad_fn.name(), y.grad_fn.next_functions[0][0].name(), y.tolist(), w.tolist(), m.tolist()))
    return out


def test_a_repeated_inplace_op_is_prepared_too(address):
    with ra.connect(address) as t:
        sent = record_batches(t)
        assert _inplace_steps(t) == _inplace_steps(torch)
        commands = [c for b in sent for c in b.commands]
        prepared = {c.name for c in commands if c.kind == K.PREPARE and c.inplace}
        assert prepared == {"mul", "add", "sub", "zero_"}
        # each in-place op went once as a command: the first step's
        assert sorted(c.name for c in commands if c.kind == K.CALL_INPLACE) == ["add", "add", "mul", "mul", "sub",
                                                                                 "zero_"]


def test_a_server_without_prepared_inplace_calls_gets_commands(address, monkeypatch):
    as_older_server(monkeypatch, prepared_inplace_calls=False)  # one that prepares calls, not in-place ones
    with ra.connect(address) as t:
        sent = record_batches(t)
        assert _inplace_steps(t) == _inplace_steps(torch)
        commands = [c for b in sent for c in b.commands]
        assert not any(c.inplace for c in commands) and sum(c.kind == K.CALL_INPLACE for c in commands) == 4 * 6


def test_a_prepared_inplace_call_after_a_failure_leaves_its_target_poisoned(address):
    with ra.connect(address) as t:
        w = t.ones(2)
        for bad in (False, False, True):  # the third sub_ goes as a prepared call
            picked = t.ones(2).index_select(0, t.tensor([0, 9 if bad else 1]))
            w.sub_(picked)
        with pytest.raises(IndexError):
            t.synchronize()
        with pytest.raises(RuntimeError, match="never computed"):
            w.tolist()
        assert t.wire.queued == 0


def _many_ops(th):
    x = th.tensor([0.5, 1.5, -2.0], requires_grad=True)
    y = x
    for _ in range(3):
        for c in (1.5, 2.5, 3.5):
            y = y * c + c
    y.sum().backward()
    return y, x.grad


def test_once_every_id_is_given_the_oldest_is_prepared_anew(t, monkeypatch):
    monkeypatch.setattr(ra.prepared, "MAX_PREPARED", 2)  # six distinct calls through two ids
    sent = record_batches(t)
    for got, want in zip(_many_ops(t), _many_ops(torch), strict=True):
        assert got.tolist() == pytest.approx(want.tolist(), rel=1e-6)
    prepares = [c for b in sent for c in b.commands if c.kind == K.PREPARE]
    assert {c.outputs[0] for c in prepares} == {1, 2} and len(prepares) > 2  # ids taken back and given again


def test_a_backward_that_fails_after_its_hook_ran_ops_is_named_by_its_line(address):
    # the hook's own batch runs while the backward's waits: the backward's failure must still
    # be counted from its own batch's calls
    with ra.connect(address) as t:
        x = t.ones(3, requires_grad=True)
        y = x
        for _ in range(5):
            y = y * 1.5  # a run of prepared calls, in the backward's batch

        def hook(g):
            assert (g * 2.5).tolist() == [2.5] * 3  # a prepared call of the client's, meanwhile
            return t.ones(2)  # the wrong size: the server's backward raises
        y.register_hook(hook)
        with pytest.raises(RuntimeError, match="changed the size") as info:
            y.sum().backward()  # sent at once (a hook): its error is this line's own
        assert getattr(info.value, "__notes__", []) == []  # not pinned on one of the queued calls
        assert (x * 2.5).tolist() == [2.5] * 3


def test_a_call_whose_constant_changes_every_time_is_never_prepared(address):
    # each is a plan of its own, used once (a NaN too: no two NaN objects are one key)
    with ra.connect(address) as t:
        sent = record_batches(t)
        x = t.ones(2)
        for i in range(5):
            y = x * float("nan")
            z = x * (1.5 + i)
        assert all(math.isnan(v) for v in y.tolist()) and z.tolist() == [5.5, 5.5]
        assert not any(c.kind == K.PREPARE for b in sent for c in b.commands)


def test_a_server_that_does_not_offer_prepared_calls_gets_calls(address, monkeypatch):
    as_older_server(monkeypatch, prepared_calls=False, prepared_inplace_calls=False)
    with ra.connect(address) as t:
        sent = record_batches(t)
        x = t.ones(2)
        for _ in range(3):  # repeated: it would be prepared at its second use
            y = x * 3
        assert y.tolist() == [3.0, 3.0]
        assert {c.kind for b in sent for c in b.commands} == {K.FACTORY, K.CALL, K.FETCH}


def test_a_poisoned_or_foreign_tensor_in_a_prepared_call_raises_at_its_line(address):
    with ra.connect(address) as t, ra.connect(address) as other:
        x = t.ones(2)
        (x * 2).tolist()  # mul(tensor, 2.0) is prepared
        with pytest.raises(RuntimeError, match="another session"):
            other.ones(2) * 2.0 * x
        bad = t.nn.functional.nll_loss(t.ones(2, 3), t.tensor([0, 5]))
        with pytest.raises(IndexError):
            t.synchronize()
        with pytest.raises(RuntimeError, match="never computed"):
            bad * 2
        assert (x * 2).tolist() == [2.0, 2.0]


def test_prepared_calls_come_back_with_a_restored_session_or_are_prepared_again(tmp_path):
    state = str(tmp_path / "state")
    first = rh.ServerProcess("--state-dir", state)
    port = first.address.rsplit(":", 1)[1]
    t = ra.connect(first.address)
    second = None
    try:
        w = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        for _ in range(2):
            assert (w * 2.5).sum().item() == 15.0  # mul and sum prepared at their second use
        assert first.stop() == 0  # the snapshot keeps the prepared calls
        manifest = os.path.join(state, t.session_id, "manifest.json")
        with open(manifest) as f:
            assert len(json.load(f)["prepared"]) == 2
        with pytest.raises(ra.ServerUnavailable):
            w.tolist()
        second = rh.ServerProcess("--port", port, "--state-dir", state)
        assert _eventually(lambda: (w * 2.5).sum().item()) == 15.0
        assert second.stop() == 0
        with open(manifest) as f:  # a snapshot older than the prepared calls: the client prepares again
            snapshot = json.load(f)
        snapshot["prepared"] = []
        with open(manifest, "w") as f:
            json.dump(snapshot, f)
        with pytest.raises(ra.ServerUnavailable):
            w.tolist()
        second.cleanup()
        second = rh.ServerProcess("--port", port, "--state-dir", state)
        sent = record_batches(t)
        assert _eventually(lambda: (w * 2.5).sum().item()) == 15.0
        assert (w * 2.5).sum().item() == 15.0  # prepared again
        assert {c.name for b in sent for c in b.commands if c.kind == K.PREPARE} == {"mul", "sum"}
        ((w * 2.5).sum()).backward()
        assert w.grad.tolist() == [2.5] * 3
    finally:
        t.close()
        if second is not None:
            second.stop()
            second.cleanup()
        first.cleanup()


def _eventually(fn, seconds: float = 15.0):
    """fn() once the restarted server answers (the channel reconnects within its backoff)."""
    import time
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except ra.ServerUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
