"""The lazy client: the same results as eager mode, errors at the right line, few round trips.

Lazy mode queues commands and sends them at the next sync point; eager mode
(``ra.connect(addr, eager=True)``) sends each at once. A user must see no difference but speed,
and the place where an error only the server can detect is raised.
"""
from __future__ import annotations

import inspect
import struct
import subprocess
import sys
import time

import grpc
import pytest
import remote_autograd as ra
import torch
from remote_autograd.command_queue import MAX_IN_FLIGHT
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.transport import Observer
from remote_helpers import RawStub, fetch_command, rpc_error, run_program, running_server


class StubSpy(Observer):
    """What a session sends, in the order it does: ("Execute", batch) for every batch it sends (on
    its batch stream, or unary), ("answer", None) for every batch answer it reads, and (method
    name, request) for every other call."""

    def __init__(self, session) -> None:
        self.calls: list = []
        session.wire.observe(self)

    def sent(self, batch) -> None:
        self.calls.append(("Execute", batch))

    def answered(self, reply) -> None:
        self.calls.append(("answer", None))

    def called(self, method: str, request) -> None:
        self.calls.append((method, request))

    def batches(self) -> list[int]:
        """The number of commands of each batch sent so far, each prepared call of a CALLS
        command counted as one (as the client queued them)."""
        return [sum(_calls(c) if c.kind == pb.Kind.CALLS else 1 for c in request.commands)
                for name, request in self.calls if name == "Execute"]

    def prepares(self) -> int:
        """PREPARE commands sent so far."""
        return sum(c.kind == pb.Kind.PREPARE for name, request in self.calls if name == "Execute"
                   for c in request.commands)

    def answers_before_the_last_batch(self) -> int:
        """Answers the client read before it sent its last batch: each one a wait mid-program."""
        last = max(i for i, (name, _) in enumerate(self.calls) if name == "Execute")
        return sum(1 for name, _ in self.calls[:last] if name == "answer")


def _calls(cmd) -> int:
    # a call's length is not on the wire (one id per tensor it takes): the programs counted here
    # prepare calls of one tensor each (y + 1, y * 1.01), four ids per call
    return len(cmd.calls) // 4


def spy_on(session) -> StubSpy:
    """Spy on a session's calls from now on."""
    session.synchronize()
    return StubSpy(session)


@pytest.fixture
def lazy(address):
    with ra.connect(address, eager=False) as session:
        yield session


@pytest.fixture
def eager(address):
    with ra.connect(address, eager=True) as session:
        yield session


# ---------------------------------------------------------------- (a) the same programs, the same results

def notebook(th):
    th.manual_seed(0)
    a = th.randn(3, 4, requires_grad=True)
    b = th.zeros(3, 4).requires_grad_()
    c = a * 2 + b
    print(c)
    d = c.mean()
    print(d, d.grad_fn, d.grad_fn.next_functions)
    d.backward()
    print(a.grad, b.grad, c.grad)  # c.grad warns: not a leaf
    with th.no_grad():
        e = a * 3
    print(e.requires_grad, th.is_grad_enabled(), c.shape, c[0, 1:].stride())
    return a, b, c, d, e, a.grad, c.grad_fn, c.grad_fn.next_functions


def mlp_steps(th):
    th.manual_seed(1)
    F = th.nn.functional  # noqa: N806  (as users spell it)
    w1, b1 = th.randn(8, 4, requires_grad=True), th.zeros(8, requires_grad=True)
    w2 = th.randn(3, 8, requires_grad=True)
    x, y = th.randn(16, 4), th.randint(0, 3, (16,))
    losses = []
    for _ in range(3):
        logits = F.linear(F.relu(F.linear(x, w1, b1)), w2)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        with th.no_grad():
            for p in (w1, b1, w2):
                p -= 0.1 * p.grad
                p.grad.zero_()
        losses.append(loss.item())
    print(loss, logits)
    return losses, w1, b1, w2, w2.grad, logits.grad_fn


def hooks(th):
    th.manual_seed(2)
    seen = []
    x = th.randn(3, requires_grad=True)
    y = x * 2
    y.retain_grad()
    h = y.register_hook(lambda g: g * 10)
    x.register_hook(lambda g: seen.append(repr(g)))
    removed = x.register_hook(lambda g: seen.append("removed"))
    removed.remove()
    z = (y**2).sum()
    z.backward(retain_graph=True)
    h.remove()
    z.backward()
    print(seen)
    return x.grad, y.grad, y.retains_grad, z


@pytest.mark.parametrize("program", [notebook, mlp_steps, hooks], ids=lambda p: p.__name__)
def test_lazy_and_eager_give_the_same_results(lazy, eager, capsys, program):
    lazy_spy, eager_spy = spy_on(lazy), spy_on(eager)
    got = run_program(program, lazy, capsys)
    want = run_program(program, eager, capsys)
    assert got[0] == want[0]  # reprs, values (bit for bit: one server, one seed), autograd state
    assert got[1] == want[1], f"printed output differs:\nlazy:\n{got[1]}\neager:\n{want[1]}"
    assert got[2] == want[2]  # warnings, each attributed alike
    assert "Raised" not in repr(got[0])
    # lazy mode really batched: fewer round trips than eager mode's one per command
    assert len(lazy_spy.batches()) < len(eager_spy.batches()), (lazy_spy.batches(), eager_spy.batches())


# ---------------------------------------------------------------- (b) errors the client can tell: at their line

# name -> (program(th, a, b), whether the client's meta rules tell it without a round trip; the
# others the client hands to the server at once, still at the line, for the engine's wording)
CLIENT_ERRORS = {
    "add_shapes": (lambda th, a, b: a + b, True),
    "view_size": (lambda th, a, b: a.view(4), True),
    "expand_size": (lambda th, a, b: a.expand(3, 3), True),
    "inplace_broadcast": (lambda th, a, b: a.add_(b), True),
    "inplace_dtype": (lambda th, a, b: a.long().add_(b.t()), True),
    "leaf_in_place": (lambda th, a, b: a.requires_grad_().mul_(2), True),
    "integer_requires_grad": (lambda th, a, b: a.long().requires_grad_(), True),
    "dim_out_of_range": (lambda th, a, b: a.transpose(0, 5), True),
    "matmul_shapes": (lambda th, a, b: a @ a, False),
    "cat_sizes": (lambda th, a, b: th.cat([a, b], 1), False),
}


@pytest.mark.parametrize("name", sorted(CLIENT_ERRORS))
def test_a_shape_error_raises_at_its_line_in_lazy_mode(lazy, name):
    program, local = CLIENT_ERRORS[name]

    def raised(th):
        a, b = th.ones(2, 3), th.ones(3, 2)
        with pytest.raises(Exception) as info:  # noqa: B017, PT011  (compared with torch's below)
            program(th, a, b)  # this line raises: no sync point is needed
        return info.value, a

    expected, _ = raised(torch)
    spy = spy_on(lazy)
    got, a = raised(lazy)
    assert (type(got), str(got)) == (type(expected), str(expected))
    assert not getattr(got, "__notes__", None)  # raised by its own line: no note pointing elsewhere
    if local:
        assert spy.calls == []  # told without a round trip: nothing was even sent
    # what was queued is unharmed, and the session goes on
    assert a.tolist() == [[1.0] * 3] * 2
    x = lazy.ones(2, requires_grad=True)
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


# ---------------------------------------------------------------- (c) a server error: at the next sync point

def _torch_nll_error() -> IndexError:
    with pytest.raises(IndexError) as info:
        torch.nn.functional.nll_loss(torch.ones(2, 3), torch.tensor([0, 5]))
    return info.value


def test_a_server_error_surfaces_at_the_next_sync_point(lazy):
    t = lazy
    F = t.nn.functional  # noqa: N806
    x = t.ones(2, 3, requires_grad=True)
    before = x * 3
    line = inspect.currentframe().f_lineno + 1
    loss = F.nll_loss(x.log_softmax(1), t.tensor([0, 5]))  # target 5 of 3 classes: only the server sees it
    after = loss * 2
    later = t.ones(2)
    assert loss.shape == () and loss.grad_fn.name() == "NllLossBackward0"  # described without the server
    with pytest.raises(IndexError) as info:
        t.synchronize()
    assert str(info.value) == str(_torch_nll_error())
    assert info.value.__notes__ == [f"(raised by 'nll_loss', issued at {__file__}:{line})"]
    # what was issued before it ran; it and what came after did not
    assert before.tolist() == [[3.0] * 3] * 2
    never = rf"this tensor was never computed: 'nll_loss' issued at {__file__}:{line} failed: Target 5 is out of"
    for poisoned in (loss, after, later):
        with pytest.raises(RuntimeError, match=never):
            poisoned.tolist()
    with pytest.raises(RuntimeError, match=never):
        after + 1  # using a poisoned tensor: raised by the op itself, nothing sent
    with pytest.raises(RuntimeError, match=never):
        after.backward()
    # the session is consistent and usable: the same program, fixed, runs
    loss = F.nll_loss(x.log_softmax(1), t.tensor([0, 2]))
    loss.backward()
    expected = torch.ones(2, 3, requires_grad=True)
    torch.nn.functional.nll_loss(expected.log_softmax(1), torch.tensor([0, 2])).backward()
    assert loss.item() == pytest.approx(float(torch.log(torch.tensor(3.0))))
    assert x.grad.flatten().tolist() == pytest.approx(expected.grad.flatten().tolist())


def test_state_changes_queued_after_a_failure_still_hold(lazy):
    """Commands after the failed one did not run; what the client already believes (grad mode,
    requires_grad, hooks, retained grads, the seed) must hold on the server too."""
    t = lazy
    x = t.ones(3, requires_grad=True)
    w = t.ones(3)
    v = t.ones(3)
    t.synchronize()
    with t.no_grad():
        t.nn.functional.nll_loss(t.ones(2, 3), t.tensor([0, 5]))  # fails on the server
        y = x * 2
    w.requires_grad_()
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    dropped = x.register_hook(lambda g: seen.append("removed"))
    dropped.remove()
    u = x * 1
    u.retain_grad()
    t.manual_seed(7)
    v.add_(1)  # an in-place op that did not run: v's new value was never computed
    with pytest.raises(IndexError):
        t.synchronize()
    for poisoned in (y, u, v):
        with pytest.raises(RuntimeError, match="never computed"):
            poisoned.tolist()
    assert t.is_grad_enabled()
    drawn = t.rand(2).tolist()
    t.manual_seed(7)
    assert t.rand(2).tolist() == drawn  # the seed was set where the client set it
    z = x * w
    assert z.requires_grad and z.grad_fn.name() == "MulBackward0"
    z.sum().backward()
    assert x.grad.tolist() == [1.0] * 3 and w.grad.tolist() == [1.0] * 3
    assert seen == [[1.0] * 3]


def test_a_server_error_before_a_queued_backward_surfaces_at_the_next_sync(lazy):
    t = lazy
    x = t.ones(2, 3, requires_grad=True)
    line = inspect.currentframe().f_lineno + 1
    loss = t.nn.functional.nll_loss(x, t.tensor([0, 5]))
    loss.backward()  # no hook or Function of the client's runs in it: it is queued with the nll_loss
    with pytest.raises(IndexError) as info:
        t.synchronize()  # the nll_loss fails first; the backward after it never runs
    assert info.value.__notes__ == [f"(raised by 'nll_loss', issued at {__file__}:{line})"]
    assert x.grad is None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [[2.0] * 3] * 2


def _torch_index_put_error() -> IndexError:
    with pytest.raises(IndexError) as info:
        torch.zeros(3)[torch.tensor([5])] = 1.0
    return info.value


def test_a_failed_in_place_write_poisons_its_target_in_lazy_mode(lazy):
    x = lazy.ones(3, requires_grad=True)
    y = x * 2
    y[lazy.tensor([5])] = 1.0  # index 5 of 3: only the server sees the value
    assert y.grad_fn.name() == "IndexPutBackward0"  # the client recorded the write...
    y.sum().backward()  # queued behind the write
    with pytest.raises(IndexError) as info:
        lazy.synchronize()
    assert str(info.value) == str(_torch_index_put_error())
    with pytest.raises(RuntimeError, match="never computed: 'index_put' issued at .* failed: index 5"):
        y.tolist()  # ...which never happened: y's value is unknown, not silently stale
    assert x.grad is None and x.tolist() == [1.0] * 3


def test_a_failed_in_place_write_leaves_its_target_in_eager_mode(eager):
    x = eager.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(IndexError) as info:
        y[eager.tensor([5])] = 1.0  # raised by this line: y is as it was, on both sides
    assert str(info.value) == str(_torch_index_put_error())
    assert y.grad_fn.name() == "MulBackward0" and y.tolist() == [2.0] * 3
    y.sum().backward()
    assert x.grad.tolist() == [2.0] * 3


def _backward_stopped_by_a_hook(th):
    w = th.ones(2, requires_grad=True)
    x = th.ones(2, requires_grad=True)
    z = w * 3
    y = x * 2  # recorded later: torch's backward reaches x before w

    def boom(grad):
        raise ValueError("boom")

    w.register_hook(boom)
    with pytest.raises(ValueError, match="boom"):
        (z.sum() + y.sum()).backward()
    return x.grad, w.grad


def test_gradients_accumulated_before_a_failed_backward_are_seen(t):
    # the client predicts .grad from its mirror of the graph; a backward stopped midway must not
    # leave it predicting "no gradient" for a leaf the server did accumulate
    got = [None if g is None else g.tolist() for g in _backward_stopped_by_a_hook(t)]
    want = [None if g is None else g.tolist() for g in _backward_stopped_by_a_hook(torch)]
    assert got == want == [[2.0, 2.0], None]


# ---------------------------------------------------------------- (d) the queue bound

def test_the_queue_bound_is_respected(address, raw):
    with ra.connect(address, max_queue=8) as t:
        (t.ones(2) + 1) + 1  # (y + 1's call prepared, as a repeated call is, before the count)
        spy = spy_on(t)
        stub = raw(t)
        y = t.ones(2)  # command 1
        ids = [y.remote_id]
        for _ in range(7):  # commands 2..8: the 8th fills the queue, which is sent
            y = y + 1
            ids.append(y.remote_id)
        assert spy.batches() == [8]
        y = y + 1  # command 9: queued
        ids.append(y.remote_id)
        assert stub.execute(fetch_command(ids[7])).results[0].value.tensor.shape == [2]  # the 8th ran
        assert rpc_error(stub.execute, fetch_command(ids[8])).code() == grpc.StatusCode.NOT_FOUND  # not the 9th
        for _ in range(41):  # 50 commands in all, no sync point
            y = y + 1
        assert spy.batches() == [8] * 6 and t.wire.queued == 2
        assert y.tolist() == [50.0, 50.0]
        assert all(n <= 8 for n in spy.batches()) and sum(spy.batches()) == 51  # 50 and the fetch
        assert spy.prepares() == 0


def test_a_full_queue_is_a_sync_point(address):
    with ra.connect(address, max_queue=4) as t:
        x = t.ones(2)
        t.synchronize()
        line = inspect.currentframe().f_lineno + 1
        t.nn.functional.nll_loss(t.ones(2, 3), t.tensor([0, 5]))  # commands 1 to 3; fails on the server
        with pytest.raises(IndexError) as info:
            x.requires_grad_()  # command 4 fills the queue: the batch is sent, and this line raises
        assert info.value.__notes__ == [f"(raised by 'nll_loss', issued at {__file__}:{line})"]
        # the line raised, so x is as it was, here and on the server
        assert not x.requires_grad
        y = x * 2
        assert not y.requires_grad and y.grad_fn is None and y.tolist() == [2.0, 2.0]
        with pytest.raises(RuntimeError, match="does not require grad"):
            y.sum().backward()  # the server agrees: x does not require grad
        x.requires_grad_()
        (x * 3).sum().backward()
        assert x.grad.tolist() == [3.0, 3.0]


# ---------------------------------------------------------------- (e) eager mode: every error at its line

def test_eager_mode_raises_a_server_error_at_its_line(eager):
    t = eager
    x = t.ones(2, 3, requires_grad=True)
    before = x * 3
    with pytest.raises(IndexError) as info:
        t.nn.functional.nll_loss(x, t.tensor([0, 5]))  # this very line
    assert str(info.value) == str(_torch_nll_error())
    assert before.tolist() == [[3.0] * 3] * 2
    loss = t.nn.functional.nll_loss(x, t.tensor([0, 2]))
    loss.backward()
    assert x.grad.tolist() == [[-0.5, 0.0, 0.0], [0.0, 0.0, -0.5]]


def test_eager_mode_sends_each_command_at_once(eager, raw):
    spy = spy_on(eager)
    x = eager.ones(2)
    assert spy.batches() == [1]
    assert raw(eager).execute(fetch_command(x.remote_id)).results[0].value.tensor.shape == [2]


def test_eager_mode_from_the_environment(address, monkeypatch):
    monkeypatch.setenv("REMOTE_AUTOGRAD_EAGER", "1")
    with ra.connect(address) as t:
        assert t.eager
        with pytest.raises(IndexError):
            t.nn.functional.nll_loss(t.ones(2, 3), t.tensor([0, 5]))
    monkeypatch.setenv("REMOTE_AUTOGRAD_EAGER", "0")
    with ra.connect(address) as t:
        assert not t.eager


# ---------------------------------------------------------------- (f) round trips

@pytest.mark.parametrize("send_ahead", [0, 32])
def test_a_long_chain_costs_one_wait(address, send_ahead):
    with ra.connect(address, send_ahead=send_ahead) as t:
        spy = spy_on(t)
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x
        for i in range(100):
            y = y * 1.01 if i % 2 else y + 0.5
        y.sum().backward()
        grad = x.grad.tolist()
        assert spy.answers_before_the_last_batch() == 0  # one wait, at the grad read
        # 107 commands: the upload, 100 ops (y + 0.5 and y * 1.01 prepared at their second
        # use), sum, backward, the grad and its fetch; sent at the grad read in one batch, or
        # (send_ahead) most of them while the program ran, numbered so that the server ran them
        # in order
        assert spy.batches() == ([107] if not send_ahead else [send_ahead] * 3 + [107 - 3 * send_ahead])
        assert spy.prepares() == 2
        seqs = [request.seq for name, request in spy.calls if name == "Execute"]
        assert seqs == sorted(seqs)
        assert grad == pytest.approx([1.01**50] * 3, rel=1e-5)
        expected = torch.tensor([1.0, 2.0, 3.0])
        for i in range(100):
            expected = expected * 1.01 if i % 2 else expected + 0.5
        assert y.tolist() == pytest.approx(expected.tolist(), rel=1e-5)


def test_a_raw_stub_sees_nothing_before_a_sync_point(lazy, address):
    x = lazy.ones(2)
    stub = RawStub(address, lazy.session_id, lazy.token)
    try:
        assert rpc_error(stub.execute, fetch_command(x.remote_id)).code() == grpc.StatusCode.NOT_FOUND
        lazy.synchronize()
        assert stub.execute(fetch_command(x.remote_id)).results[0].value.tensor.shape == [2]
    finally:
        stub.close()


# ---------------------------------------------------------------- (g) batches sent ahead

def test_an_error_in_a_batch_sent_ahead_surfaces_at_the_next_sync_point(address):
    with ra.connect(address, send_ahead=2) as t:
        x = t.ones(2, 3, requires_grad=True)
        before = (x * 3).sum(1)
        w = t.ones(2)
        line = inspect.currentframe().f_lineno + 1
        loss = t.nn.functional.nll_loss(x.log_softmax(1), t.tensor([0, 5]))  # fails on the server
        after = [loss * k for k in range(6)]  # several more batches go ahead meanwhile
        w.requires_grad_()  # a state change the client has made: it must hold on the server too
        assert t.wire.in_flight >= 4  # sent ahead; nothing waited for, nothing raised yet
        with pytest.raises(IndexError) as info:
            t.synchronize()
        assert str(info.value) == str(_torch_nll_error())
        assert info.value.__notes__ == [f"(raised by 'nll_loss', issued at {__file__}:{line})"]
        assert before.tolist() == [9.0, 9.0]  # sent ahead before the failure: it ran
        for poisoned in (loss, *after):
            with pytest.raises(RuntimeError, match="never computed: 'nll_loss' issued at"):
                poisoned.tolist()
        (w * 2).sum().backward()  # the server agrees that w requires grad
        assert w.grad.tolist() == [2.0, 2.0]
        loss = t.nn.functional.nll_loss(x.log_softmax(1), t.tensor([0, 2]))
        loss.backward()
        assert loss.item() == pytest.approx(float(torch.log(torch.tensor(3.0))))


def test_a_full_pipeline_waits_for_its_oldest_batch(address):
    with ra.connect(address, send_ahead=1) as t:
        ((t.ones(3) + 1) + 1).tolist()  # (y + 1's call prepared, as a repeated call is, before the count)
        unanswered = []  # at each batch sent, how many sent before it were unanswered

        class Counting(Observer):
            def sent(self, batch):
                unanswered.append(t.wire.in_flight)
        t.wire.observe(Counting())
        y = t.ones(3)
        for _ in range(3 * MAX_IN_FLIGHT):
            y = y + 1
        # every command went ahead at once, and the client never let more than the bound go unanswered
        assert len(unanswered) == 3 * MAX_IN_FLIGHT + 1
        assert max(unanswered) == MAX_IN_FLIGHT - 1
        assert y.tolist() == [25.0] * 3


def _numbered(*commands, seq, resume=False):
    return pb.Batch(commands=commands, seq=seq, resume=resume)


def test_numbered_batches_run_in_their_order_whatever_order_they_arrive_in(address, raw):
    with ra.connect(address) as t:
        stub = raw(t)
        make = pb.Command(kind=pb.Kind.FACTORY, name="ones", outputs=[7])
        make.args.add().list.items.add().i = 2
        double = pb.Command(kind=pb.Kind.CALL, name="mul", outputs=[8])
        double.args.add().ref = 7
        double.args.add().f = 2.0
        second = stub.stub.Execute.future(_numbered(double, fetch_command(8), seq=2), metadata=stub.md, timeout=10)
        time.sleep(0.2)  # batch 2 is at the server first, and waits for batch 1
        assert not second.done()
        stub.stub.Execute(_numbered(make, seq=1), metadata=stub.md, timeout=10)
        assert second.result().results[1].value.tensor.data == struct.pack("<2f", 2.0, 2.0)


def test_after_a_failed_batch_later_ones_are_refused_until_the_client_resumes(address, raw):
    with ra.connect(address) as t:
        stub = raw(t)
        bad = pb.Command(kind=pb.Kind.CALL, name="no_such_op", outputs=[5])
        make = pb.Command(kind=pb.Kind.FACTORY, name="zeros", outputs=[6])
        make.args.add().list.items.add().i = 1

        def send(batch):
            return stub.stub.Execute(batch, metadata=stub.md, timeout=10)
        assert rpc_error(send, _numbered(bad, seq=1)).code() == grpc.StatusCode.UNIMPLEMENTED
        error = rpc_error(send, _numbered(make, seq=2))
        assert error.code() == grpc.StatusCode.ABORTED and "earlier batch" in error.details()
        assert rpc_error(stub.execute, fetch_command(6)).code() == grpc.StatusCode.NOT_FOUND  # nothing of it ran
        assert rpc_error(send, _numbered(make, seq=2)).code() == grpc.StatusCode.INVALID_ARGUMENT  # no replays
        send(_numbered(make, seq=3, resume=True))
        assert stub.execute(fetch_command(6)).results[0].value.tensor.shape == [1]


def test_remembered_metas_tell_apart_what_the_rule_reads(lazy):
    """The client remembers each op's inferred meta per (shapes, dtypes, strides, scalar types and
    values, params): equal-looking scalars of other types, and transposed inputs, are not mixed up."""
    for _ in range(2):  # the second round reads what the first remembered
        for lib in (lazy, torch):
            i = lib.tensor([[1, 2], [3, 4]])
            f = lib.ones(2, 2)
            got = [i * 2, i * 2.0, i * True, f * 2, i.t() + 1, i + 1, f.sum(0), f.sum(1, keepdim=True)]
            if lib is lazy:
                mine = [(str(x.dtype), tuple(x.shape), x.stride()) for x in got]
            else:
                assert mine == [(str(x.dtype), tuple(x.shape), x.stride()) for x in got]


def test_a_server_that_refuses_batch_streams_gets_unary_calls(address):
    """A server at its --max-streams refuses a session's batch stream: the batches sent on it are
    sent again by unary Execute, in order, and the session goes on without a stream."""
    with running_server("--max-streams", "0") as server, ra.connect(server.address, send_ahead=2) as t:
        x = t.ones(3, requires_grad=True)
        y = x
        for _ in range(9):
            y = y * 2  # several batches go out on the stream before its refusal is read
        y.sum().backward()
        assert x.grad.tolist() == [512.0] * 3
        assert t.wire.kind == "unary"
        z = x * 3
        assert z.tolist() == [3.0] * 3
        with pytest.raises(IndexError):
            t.nn.functional.nll_loss(t.ones(2, 3), t.tensor([0, 5])).tolist()
        assert (x + 1).tolist() == [2.0] * 3


@pytest.mark.parametrize("send_ahead", [0, 1])
def test_a_program_that_never_closes_its_session_still_exits(address, send_ahead):
    # its batch stream is ended at exit (and what it queued is sent first), not left holding the process
    program = (f"import remote_autograd as ra\n"
               f"t = ra.connect({address!r}, send_ahead={send_ahead})\n"
               f"x = t.ones(3, requires_grad=True)\n"
               f"print((x * 2).sum().item())\n"
               f"y = x * 3\n"  # queued (or sent ahead) and never synchronized
               f"z = y + 1\n")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "6.0"
    assert time.monotonic() - start < 20


def test_a_resuming_batch_does_not_wait_for_numbers_that_were_lost(address, raw):
    # after a broken stream the client cannot know which numbers reached the server: its next batch
    # says resume, runs at once, and a lost batch arriving late is refused rather than run out of order
    with ra.connect(address) as t:
        stub = raw(t)
        make = pb.Command(kind=pb.Kind.FACTORY, name="ones", outputs=[3])
        make.args.add().list.items.add().i = 2

        def send(batch):
            return stub.stub.Execute(batch, metadata=stub.md, timeout=10)
        send(_numbered(seq=1))
        start = time.monotonic()
        send(_numbered(make, seq=4, resume=True))  # 2 and 3 never came
        assert time.monotonic() - start < 5
        assert stub.execute(fetch_command(3)).results[0].value.tensor.shape == [2]
        assert rpc_error(send, _numbered(seq=2)).code() == grpc.StatusCode.INVALID_ARGUMENT
        send(_numbered(seq=5))


def test_a_session_used_by_a_thread_that_outlives_the_main_one(address):
    program = (f"import threading, time\n"
               f"import remote_autograd as ra\n"
               f"t = ra.connect({address!r})\n"
               f"def work():\n"
               f"    time.sleep(0.5)\n"
               f"    print((t.ones(2) * 5).tolist(), flush=True)\n"
               f"threading.Thread(target=work).start()\n"
               f"print((t.ones(2) * 2).tolist(), flush=True)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[2.0, 2.0]", "[5.0, 5.0]"]
