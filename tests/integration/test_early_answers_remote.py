"""Early answers (``ra.connect(..., early_answers=True)``; by default on where the server runs on
another machine): a value read after a step's backward and update is answered once the server has
it, and the commands after it run while the program goes on, where none of them can fail but for
the server's own faults. Values are torch's; errors before the cut are raised at the read."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import remote_autograd as ra
import remote_autograd.session as client_session
import torch
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.transport import Observer
from remote_helpers import running_server

K = pb.Kind


def _connect(address, **kw):
    """A lazy session (nothing sent ahead) whose sent batches are recorded in ``t.sent``."""
    t = ra.connect(address, eager=False, send_ahead=0, **kw)
    t.sent = []

    class Recording(Observer):
        def sent(self, batch):
            t.sent.append(batch)
    t.wire.observe(Recording())
    return t


def _kinds(batch) -> set:
    return {c.kind for c in batch.commands}


def _line() -> int:
    return sys._getframe(1).f_lineno


def _mlp_steps(lib, steps: int = 4):
    """A small MLP's SGD steps with momentum, the loss read with item() after the update."""
    rng = np.random.default_rng(3)
    X = lib.tensor(rng.standard_normal((8, 5), dtype=np.float32))
    Y = lib.tensor(rng.standard_normal((8, 3), dtype=np.float32))
    W1 = lib.tensor(rng.standard_normal((5, 6), dtype=np.float32) * 0.5, requires_grad=True)
    W2 = lib.tensor(rng.standard_normal((6, 3), dtype=np.float32) * 0.5, requires_grad=True)
    bufs = [lib.zeros(5, 6), lib.zeros(6, 3)]
    losses = []
    for _ in range(steps):
        loss = lib.nn.functional.mse_loss((X @ W1).tanh() @ W2, Y)
        loss.backward()
        with lib.no_grad():
            for w, b in zip((W1, W2), bufs):
                b.mul_(0.9).add_(w.grad)
                w.sub_(0.1 * b)
                w.grad.zero_()
        losses.append(loss.item())
    return losses, W1, W2


@pytest.mark.parametrize("direct", [True, False], ids=["lane", "grpc"])
def test_a_step_reads_its_loss_before_its_backward_and_update_run(address, direct):
    expected, tW1, tW2 = _mlp_steps(torch)
    with _connect(address, direct=direct, early_answers=True) as t:
        losses, W1, W2 = _mlp_steps(t)
        np.testing.assert_allclose(losses, expected, rtol=1e-6)
        # each read: its batch, then the rest
        waited = [i for i, b in enumerate(t.sent) if b.awaited]
        assert len(waited) == 4 and all(i + 1 < len(t.sent) for i in waited)
        for i in waited:
            assert K.BACKWARD not in _kinds(t.sent[i])  # the forward, the read
            rest = _kinds(t.sent[i + 1])  # the backward, the update (in-place calls, prepared ones too)
            assert K.BACKWARD in rest and rest & {K.CALL_INPLACE, K.CALLS}
            assert not t.sent[i + 1].awaited
        assert t.wire.in_flight == 1  # the last step's rest: answered at the next sync point
        np.testing.assert_allclose(W1.tolist(), tW1.tolist(), rtol=1e-5)
        assert not t.wire.in_flight
        np.testing.assert_allclose(W2.tolist(), tW2.tolist(), rtol=1e-5)
        assert W1.grad.abs().sum().item() == 0.0


def test_they_are_off_on_the_servers_machine_and_on_from_another(address, monkeypatch):
    monkeypatch.delenv("REMOTE_AUTOGRAD_EARLY_ANSWERS", raising=False)
    with _connect(address) as t:
        assert not t.wire.early_answers  # this test's server runs here
        _mlp_steps(t, 3)
        assert not any(b.awaited for b in t.sent) and not t.wire.in_flight
    monkeypatch.setattr(client_session, "host_digest", lambda: "another machine")
    with _connect(address) as t:
        assert t.wire.early_answers
        _mlp_steps(t, 3)
        assert sum(b.awaited for b in t.sent) == 3
    with _connect(address, early_answers=False) as t:
        assert not t.wire.early_answers
    monkeypatch.setenv("REMOTE_AUTOGRAD_EARLY_ANSWERS", "0")
    with _connect(address) as t:
        assert not t.wire.early_answers
    monkeypatch.undo()
    monkeypatch.setenv("REMOTE_AUTOGRAD_EARLY_ANSWERS", "1")
    with _connect(address) as t:
        assert t.wire.early_answers
    with _connect(address, early_answers=False) as t:
        assert not t.wire.early_answers  # the argument over the environment


def test_a_failure_after_the_cut_is_raised_at_the_next_sync_point_naming_its_op_and_line():
    """Only the server's own faults can fail a command after the cut; a session's tensor limit is
    one. The read returns its value, and the next sync point raises the failure, as a sent-ahead
    batch's, naming the op and the user's line; the session goes on. Without early answers the
    read itself raises it (the contrast)."""
    with running_server("--max-tensors", "8") as server:
        for early in (True, False):
            with _connect(server.address, early_answers=early) as t:
                x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
                loss = (x * 2.0).sum()
                loss.backward()
                with t.no_grad():
                    g = x.grad
                    kept = [g * float(k) for k in range(4)]  # x, x * 2, loss, g and these: 8 tensors
                    kept += [g * float(k) for k in range(4, 10)]; line = _line()  # noqa: E702
                if not early:
                    with pytest.raises(ra.RemoteError, match="RESOURCE_EXHAUSTED") as info:
                        loss.item()
                else:
                    assert loss.item() == 12.0
                    assert t.wire.in_flight == 1
                    with pytest.raises(ra.RemoteError, match="RESOURCE_EXHAUSTED") as info:
                        t.synchronize()
                assert any("'mul'" in n and f"{__file__}:{line}" in n for n in info.value.__notes__)
                del kept, g
                assert (x * 3.0).sum().item() == 18.0  # the session goes on


def test_an_error_before_the_cut_is_raised_at_the_read_and_the_rest_does_not_run(address):
    with _connect(address, early_answers=True) as t:
        w = t.tensor([1.0, 2.0], requires_grad=True)
        for bad in (False, True):
            index = t.tensor([0, 7 if bad else 1])  # 7: out of range, only the server can tell
            loss = w.index_select(0, index).sum()
            loss.backward()
            with t.no_grad():
                w.sub_(0.5 * w.grad)
                w.grad.zero_()
            if not bad:
                assert loss.item() == 3.0
                continue
            with pytest.raises(IndexError) as info:
                loss.item()
            assert any("'index_select'" in n for n in info.value.__notes__)
            assert not t.wire.in_flight
        with pytest.raises(RuntimeError, match="index_select"):
            w.tolist()  # the update after the failure did not run: w is poisoned, as in lazy mode
        assert (t.ones(2) * 2).tolist() == [2.0, 2.0]


def test_a_backward_that_meets_a_modified_saved_value_raises_at_its_line(address):
    """A backward whose graph saved a value written in place since: the client's version counters
    see it, so the backward is sent at once and raises torch's error at its own line, early answers
    or not. (A backward the mirror cannot vouch for stays before the cut: tests/client.)"""
    with _connect(address, early_answers=True) as t:
        x = t.tensor([1.0, 2.0], requires_grad=True)
        w = t.tensor([3.0, 4.0])
        y = x * w  # saves w
        with t.no_grad():
            w.add_(1.0)
        loss = y.sum()
        with pytest.raises(RuntimeError, match="modified by an inplace operation") as info:
            loss.backward()
        assert not getattr(info.value, "__notes__", None)  # its own line's error, not a queued command's
        assert K.BACKWARD in _kinds(t.sent[-1]) and not t.sent[-1].awaited
        assert loss.item() == 11.0  # the session goes on


def _program_op_backward(lib):
    """pow's backward is not among those that cannot fail: it runs before the answer."""
    x = lib.tensor([1.0, -2.0, 0.5], requires_grad=True)
    out = []
    for _ in range(3):
        loss = (x ** 3).sum()
        loss.backward()
        with lib.no_grad():
            x.sub_(0.01 * x.grad)
            x.grad.zero_()
        out.append(loss.item())
    return out + x.tolist()


def test_a_backward_through_an_op_outside_the_list_runs_before_the_answer(address):
    with _connect(address, early_answers=True) as t:
        np.testing.assert_allclose(_program_op_backward(t), _program_op_backward(torch), rtol=1e-6)
        waited = [i for i, b in enumerate(t.sent) if b.awaited]
        assert waited
        for i in waited:
            assert K.BACKWARD in _kinds(t.sent[i]) and K.BACKWARD not in _kinds(t.sent[i + 1])


def _writes_the_value_after(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    out = []
    a = (x * 2.0).sum()
    a.backward()
    with lib.no_grad():
        a.mul_(10.0)  # the value read is written after it is made
    out.append(a.item())
    b = (x * 3.0).sum()
    v = b.view(1)
    with lib.no_grad():
        v.add_(1.0)  # ... or through a view of it
    out.append(b.item())
    c = x.sum() * 1.0
    with lib.no_grad():
        x.mul_(x ** 2)  # pow: an op outside the list after the value
    out.append(c.item())
    d = x.view(2)  # a value that is a view
    with lib.no_grad():
        x.add_(1.0)
    out.append(d.tolist())
    f = x.detach()  # a value that shares x's storage
    with lib.no_grad():
        x.add_(1.0)
    out.append(f.tolist())
    e = d.sum()  # a fresh value, and an update after it that cannot fail: answered early
    with lib.no_grad():
        x.add_(1.0)
    out.append(e.item())
    return out + [x.tolist()]


def test_nothing_after_the_cut_changes_the_value_read(address):
    with _connect(address, early_answers=True) as t:
        assert _writes_the_value_after(t) == _writes_the_value_after(torch)
        assert [b.awaited for b in t.sent][-3:] == [True, False, False]  # e's read, the rest; x's
