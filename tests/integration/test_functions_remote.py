"""Custom autograd Functions, gradcheck and autograd.functional through a live server, compared with
torch on the same values (the programs of tests/programs/functions.py); and the faults of
Function callbacks: a client too slow to answer, a client killed mid-backward, a backward that raises."""
from __future__ import annotations

import selectors
import subprocess
import sys
import textwrap
import time
import traceback

import pytest
import remote_autograd as ra
import torch
from programs import functions as programs
from remote_autograd.protos import autograd_pb2 as pb
from remote_helpers import RawStub, fetch_command, running_server

REMOTE_GAPS = {
}


def _param(program):
    reason = REMOTE_GAPS.get(program.__name__)
    marks = (pytest.mark.xfail(strict=True, reason=reason),) if reason else ()
    return pytest.param(program, marks=marks, id=program.__name__)


@pytest.mark.parametrize("program", [_param(p) for p in programs.PROGRAMS])
def test_same_as_torch(t, program):
    got = programs.observe(program(t))
    want = programs.observe(program(torch))
    programs.assert_same(got, want, program.__name__)


def test_node_is_named_and_printed_as_torchs(t):
    F = programs.functions(t)
    z = F.MultiplyAdd.apply(*(t.ones(2, requires_grad=True) for _ in range(3)))
    assert type(z.grad_fn).__name__ == z.grad_fn.name() == "MultiplyAddBackward"
    assert type(z.grad_fn).__module__ == "torch.autograd.function"
    assert repr(z.grad_fn).startswith("<torch.autograd.function.MultiplyAddBackward object at 0x")
    assert repr(z).endswith("grad_fn=<MultiplyAddBackward>)")


# ---------------------------------------------------------------- a backward that raises

class RefusedError(Exception):
    """A user's own exception class."""


def _raising(ns, raised: list):
    class Raising(ns.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            error = RefusedError("no gradient today")
            raised.append(error)
            raise error
    return Raising


def test_a_backward_that_raises_reraises_that_very_exception(t):
    for ns in (torch, t):  # torch does so too
        raised: list = []
        x = ns.tensor([1.0, 2.0], requires_grad=True)
        y = _raising(ns, raised).apply(x)
        with pytest.raises(RefusedError) as info:
            (y * 3).sum().backward()
        assert info.value is raised[0]
        last = traceback.extract_tb(info.value.__traceback__)[-1]
        assert (last.filename, last.name) == (__file__, "backward")  # raised in the user's backward
        # the session goes on: new ops, and a backward through another custom Function
        F = programs.functions(ns)
        z = F.Sigmoid.apply(x * 2)
        z.sum().backward()
        s = torch.sigmoid(torch.tensor([2.0, 4.0]))
        assert x.grad.tolist() == pytest.approx((2 * s * (1 - s)).tolist())


# ---------------------------------------------------------------- a client that does not answer in time

def test_a_client_that_does_not_answer_in_time(session_mode, request):
    with running_server("--callback-timeout", "1") as server:
        t = ra.connect(server.address)
        try:
            class Slow(t.autograd.Function):
                @staticmethod
                def forward(ctx, x):
                    return x * 2

                @staticmethod
                def backward(ctx, g):
                    time.sleep(2.5)
                    return g * 2

            x = t.tensor([1.0, 2.0], requires_grad=True)
            with pytest.raises(RuntimeError, match=r"did not answer the backward of SlowBackward .* within 1 s"):
                Slow.apply(x).sum().backward()
            # the session is usable: new ops, and a new backward through a Function that answers in time
            y = programs.functions(t).Cube.apply(x * 3)
            assert y.tolist() == [27.0, 216.0]
            y.sum().backward()
            assert x.grad.tolist() == [81.0, 324.0]
        finally:
            t.close()


# ---------------------------------------------------------------- a client killed mid-backward

HANGING_CLIENT = textwrap.dedent("""
    import sys, time
    import remote_autograd as ra

    t = ra.connect(sys.argv[1])

    class Hang(t.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            print("in backward", flush=True)
            time.sleep(120)
            return g

    x = t.tensor([1.0, 2.0], requires_grad=True)
    y = Hang.apply(x)
    print(t.session_id, t.token, x.remote_id, flush=True)
    y.sum().backward()
""")


def _line_of(proc, timeout: float = 30.0) -> str:
    ready = selectors.DefaultSelector()
    ready.register(proc.stdout, selectors.EVENT_READ)
    assert ready.select(timeout), f"the client printed nothing in {timeout} s"
    return proc.stdout.readline().strip()


def test_a_client_killed_during_its_backward_frees_the_server(session_mode):
    # Three RPC threads: a client's backward through a Function needs all three at once (its event
    # stream, the Execute waiting for the callback, the Reply). A thread still waiting for the dead
    # client (for the 30 s deadline) would leave two, and the next client's backward would hang.
    with running_server("--workers", "3", "--callback-timeout", "30") as server:
        child = subprocess.Popen([sys.executable, "-c", HANGING_CLIENT, server.address], stdout=subprocess.PIPE,
                                 text=True)
        try:
            session_id, token, x_id = _line_of(child).split()
            assert _line_of(child) == "in backward"
        finally:
            child.kill()
            child.wait(10)
        # the session of the dead client answers again
        raw = RawStub(server.address, session_id, token)
        try:
            result = raw.stub.Execute(pb.Batch(commands=[fetch_command(int(x_id))]), metadata=raw.md, timeout=10)
            assert len(result.results) == 1
        finally:
            raw.close()
        # and another client's backward through a Function is served, well before that deadline
        t = ra.connect(server.address, timeout=10)
        try:
            F = programs.functions(t)
            w, x = (t.tensor(v, dtype=t.float64, requires_grad=True) for v in ([1.0, 2.0], [3.0, -1.0]))
            F.MultiplyAdd.apply(w, x, x.detach()).sum().backward()
            assert (w.grad.tolist(), x.grad.tolist()) == ([3.0, -1.0], [1.0, 2.0])
        finally:
            t.close()


# ---------------------------------------------------------------- once_differentiable

def test_once_differentiable_backward_records_no_graph(t):
    for ns in (torch, t):
        once = ns.autograd.function.once_differentiable
        class Square(ns.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @once
            def backward(ctx, g, ns=ns):
                x, = ctx.saved_tensors
                assert not ns.is_grad_enabled()
                return 2 * x * g

        x = ns.tensor([1.0, 3.0], requires_grad=True)
        g, = ns.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
        assert (g.tolist(), g.requires_grad, g.grad_fn) == ([2.0, 6.0], False, None)
