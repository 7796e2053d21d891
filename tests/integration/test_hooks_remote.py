"""Tensor hooks run in the client while the server's backward waits: order, replacement, removal,
nested calls, exceptions, and watchers that see the gradients live."""
from __future__ import annotations

import threading

import pytest
import remote_autograd as ra
from remote_helpers import RecordingSession, ReplayTorch


def run_both(program, t):
    """``program(th, log)`` remotely and on torch fed the same random values; both logs and results."""
    recording = RecordingSession(t)
    remote_log: list = []
    remote = program(recording, remote_log)
    torch_log: list = []
    expected = program(ReplayTorch(recording.values), torch_log)
    return (remote_log, remote), (torch_log, expected)


def values(x):
    return None if x is None else x.tolist()


def recorder(log, name):
    def hook(grad):
        log.append((name, grad.tolist()))  # a round trip of its own while the backward waits
    return hook


def test_hook_order_matches_torch(t):
    def program(th, log):
        x = th.rand(3, requires_grad=True)
        w = th.rand(3, requires_grad=True)
        x.register_hook(recorder(log, "x first"))
        x.register_hook(recorder(log, "x second"))
        w.register_hook(recorder(log, "w"))
        y = x * w
        y.register_hook(recorder(log, "y"))
        a = y.exp()
        b = y * 2
        a.register_hook(recorder(log, "a"))
        b.register_hook(recorder(log, "b"))
        z = (a + b + x).sum()
        z.register_hook(recorder(log, "z"))
        y.retain_grad()
        z.backward()
        return values(x.grad), values(w.grad), values(y.grad)

    (r_log, r_out), (e_log, e_out) = run_both(program, t)
    assert [name for name, _ in r_log] == [name for name, _ in e_log]
    assert len(r_log) == 7
    for (name, got), (_, want) in zip(r_log, e_log, strict=True):
        assert got == pytest.approx(want, rel=1e-6), name
    for got, want in zip(r_out, e_out, strict=True):
        assert got == pytest.approx(want, rel=1e-6)


def test_hook_replaces_the_gradient(t):
    def program(th, log):
        x = th.rand(3, requires_grad=True)
        y = x * 3
        y.register_hook(lambda g: g * 10)  # replaces what flows on to x
        x.register_hook(lambda g: g + 1)  # replaces what accumulates into x.grad
        h = y.register_hook(recorder(log, "after replacement"))
        y.sum().backward()
        h.remove()
        return values(x.grad)

    (r_log, r_out), (e_log, e_out) = run_both(program, t)
    assert r_out == e_out == [31.0, 31.0, 31.0]
    assert r_log == e_log == [("after replacement", [10.0, 10.0, 10.0])]


def test_removed_hook_is_not_called(t):
    def program(th, log):
        x = th.ones(2, requires_grad=True)
        handle = x.register_hook(recorder(log, "removed"))
        kept = x.register_hook(recorder(log, "kept"))
        (x * 2).sum().backward()
        handle.remove()
        handle.remove()  # a second remove is harmless, as in torch
        (x * 3).sum().backward()
        kept.remove()
        (x * 4).sum().backward()
        return values(x.grad)

    (r_log, r_out), (e_log, e_out) = run_both(program, t)
    assert r_log == e_log == [("removed", [2.0, 2.0]), ("kept", [2.0, 2.0]), ("kept", [3.0, 3.0])]
    assert r_out == e_out == [9.0, 9.0]


def test_hook_runs_ops_on_the_gradient(t, capsys):
    def program(th, log):
        x = th.rand(4, requires_grad=True)
        w = th.rand(4, requires_grad=True)

        def normalise(g):
            # several round trips while the backward waits: reductions, item(), a new tensor
            norm = g.norm()
            log.append(round(norm.item(), 5))
            print("grad norm", f"{norm.item():.4f}")
            return g / norm + th.zeros(4)

        y = x * w
        y.register_hook(normalise)
        (y * y).sum().backward()
        return values(x.grad), values(w.grad)

    (r_log, r_out), (e_log, e_out) = run_both(program, t)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and printed[0] == printed[1]
    assert r_log == pytest.approx(e_log, rel=1e-5)
    for got, want in zip(r_out, e_out, strict=True):
        assert got == pytest.approx(want, rel=1e-5)


def test_hook_on_an_autograd_grad_call(t):
    def program(th, log):
        x = th.rand(3, requires_grad=True)
        y = x**2
        y.register_hook(recorder(log, "y"))
        (g,) = th.autograd.grad(y.sum(), x)
        return values(g)

    (r_log, r_out), (e_log, e_out) = run_both(program, t)
    assert [n for n, _ in r_log] == [n for n, _ in e_log] == ["y"]
    assert r_out == pytest.approx(e_out, rel=1e-6)


class HookError(Exception):
    pass


def test_hook_that_raises_reraises_that_exception_from_backward(t):
    raised = []

    def bad_hook(grad):
        err = HookError(f"bad gradient of shape {tuple(grad.shape)}")
        raised.append(err)
        raise err

    x = t.ones(3, requires_grad=True)
    y = x * 2
    y.register_hook(bad_hook)
    with pytest.raises(HookError) as info:
        y.sum().backward()
    assert info.value is raised[0]  # the very object the hook raised, not a copy
    assert str(info.value) == "bad gradient of shape (3,)"
    assert x.grad is None  # the backward stopped at the hook, as torch's does

    # the session goes on: other graphs, and even hooks again
    seen = []
    z = t.ones(2, requires_grad=True)
    (z * 5).register_hook(recorder(seen, "z"))
    w = z * 5
    w.register_hook(recorder(seen, "w"))
    w.sum().backward()
    assert seen == [("w", [1.0, 1.0])] and z.grad.tolist() == [5.0, 5.0]


def test_hook_returning_a_non_tensor_is_a_type_error(t):
    x = t.ones(2, requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: "not a tensor")
    with pytest.raises(TypeError, match="expected Variable, but hook returned 'str'"):  # torch's words
        y.sum().backward()
    assert (x * 1).sum().item() == 2.0


def test_watcher_sees_gradients_live(t, address):
    events = []
    watcher = ra.watch(address, t.session_id, t.token)  # subscribed once it returns
    done = threading.Event()
    first_event = threading.Event()

    def consume():
        for event in watcher:
            events.append(event)
            first_event.set()
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()

    seen = []
    live = []
    x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.register_hook(lambda g: live.append(first_event.wait(10)))  # the watcher has it while backward waits
    y.register_hook(recorder(seen, "y"))
    x.register_hook(recorder(seen, "x"))
    y.sum().backward()
    assert live == [True]
    # a gradient larger than gRPC's default 4 MiB message reaches the watcher whole
    big = t.ones(1024, 2048, requires_grad=True)
    big.register_hook(lambda g: None)
    (big * 3).sum().backward()

    t.close()  # ends the watch stream
    assert done.wait(10), "the watcher did not end when the session closed"
    thread.join(5)
    # one event per hook call: y's two hooks, x's, big's
    assert [e.grad.tolist() for e in events[1:3]] == [g for _, g in seen] == [[1.0, 1.0, 1.0], [2.0, 4.0, 6.0]]
    assert events[0].grad.tolist() == [1.0, 1.0, 1.0]
    assert len(events) == 4 and len({e.hook for e in events}) == 4
    assert events[3].grad.shape == (1024, 2048) and (events[3].grad == 3).all()


def test_watcher_with_a_bad_token_is_refused(t, address):
    with pytest.raises(ra.SessionLost):
        ra.watch(address, t.session_id, "not the token")


@pytest.mark.filterwarnings(r"ignore:Using backward\(\) with create_graph=True")
def test_hooks_run_in_the_backward_grad_mode(t):
    def program(th, log):
        x = th.ones(2, requires_grad=True)
        w = th.ones(2, requires_grad=True)

        def hook(g):
            with th.no_grad():
                log.append(("no_grad", (g * 2).requires_grad))
            log.append(("backward mode", (g * w).requires_grad, th.is_grad_enabled()))
            with th.enable_grad():
                log.append(("enable_grad", (g * w).requires_grad))

        y = x * w
        y.register_hook(hook)
        (y * y).sum().backward()
        plain = (x.grad.requires_grad, x.grad.grad_fn is None, th.is_grad_enabled())
        x.grad = None
        y = x * w
        y.register_hook(hook)
        (y * y).sum().backward(create_graph=True)
        return plain, (x.grad.requires_grad, th.is_grad_enabled())

    (r_log, r_out), (e_log, e_out) = run_both(program, t)
    assert r_log == e_log
    assert r_log[1] == ("backward mode", False, False) and r_log[4] == ("backward mode", True, True)
    assert r_out == e_out == ((False, True, True), (True, True))


def test_replacement_gradients_survive_their_proxies(t):
    # each hook's result is a temporary: its proxy dies (and its id is released) right after the
    # answer, while the server's backward still has to pick the replacement up
    x = t.ones(3, requires_grad=True)
    for i in range(20):
        y = x * 1
        z = y * 1
        z.register_hook(lambda g: g * 2)
        y.register_hook(lambda g: g + 1)
        x.register_hook(lambda g: (g * 1).sum() * 0 + g) if i == 0 else None
        z.sum().backward()
    assert x.grad.tolist() == [60.0, 60.0, 60.0]


def test_hook_runs_a_backward_of_its_own(t):
    def program(th, log):
        a = th.ones(2, requires_grad=True)
        x = th.ones(2, requires_grad=True)

        def hook(g):
            with th.enable_grad():  # hooks run with grad off (no create_graph), as in torch
                b = a * 3
                b.register_hook(lambda gb: log.append(("inner", gb.tolist())))
                b.sum().backward()  # a reentrant backward, its own hook answered while the outer one waits
            log.append(("outer", g.tolist(), a.grad.tolist()))

        y = x * 2
        y.register_hook(hook)
        y.sum().backward()
        return x.grad.tolist(), a.grad.tolist()

    (r_log, r_out), (e_log, e_out) = run_both(program, t)
    assert r_log == e_log == [("inner", [1.0, 1.0]), ("outer", [1.0, 1.0], [3.0, 3.0])]
    assert r_out == e_out
