"""Programs on custom autograd Functions, gradcheck and autograd.functional, written once over a
torch-like namespace ``ns`` (torch, the engine, or a remote session) and compared between them.

A program returns what a user can observe: tensors (values, dtype, shape, requires_grad, is_leaf,
grad_fn name), graph nodes (class name, name(), module, repr), logs of what forward and backward saw,
and exceptions (type and message). ``observe`` turns that into plain values; ``assert_same``
compares two observations, float values to a tolerance, everything else exactly.
"""
from __future__ import annotations

import re
import types

import numpy as np

ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


# ---------------------------------------------------------------- observing

class Raised:
    """An exception as a user sees it: its type's name and its message."""

    def __init__(self, error: BaseException) -> None:
        self.kind, self.message = type(error).__name__, str(error)

    def __repr__(self) -> str:
        return f"Raised({self.kind}: {self.message})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Raised) and (self.kind, self.message) == (other.kind, other.message)


def outcome(fn):
    """fn(), or the exception it raised."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001  (the exception is the observation)
        return Raised(e)


def node(n):
    """A graph node as a user sees it (None for a missing edge)."""
    if n is None:
        return None
    return {"class": type(n).__name__, "name": n.name(), "repr": ADDRESS.sub("0x?", repr(n))}


def observe(x):
    if isinstance(x, Raised):
        return x
    if hasattr(x, "grad_fn") and hasattr(x, "is_leaf"):
        return {"tensor": np.asarray(x.tolist(), dtype=float).tolist() if x.dtype.is_floating_point else x.tolist(),
                "dtype": repr(x.dtype), "shape": tuple(x.shape), "requires_grad": x.requires_grad,
                "is_leaf": x.is_leaf, "grad_fn": None if x.grad_fn is None else x.grad_fn.name()}
    if isinstance(x, (tuple, list)):
        return [observe(v) for v in x]
    if isinstance(x, dict):
        return {k: observe(v) for k, v in x.items()}
    return x


def assert_same(got, want, where: str = "result") -> None:
    """``got`` (ours) equals ``want`` (torch's): float values to 1e-6 relative, the rest exactly."""
    if isinstance(want, dict) and "tensor" in want:
        assert isinstance(got, dict) and "tensor" in got, f"{where}: torch gave a tensor, we gave {got!r}"
        for key in ("dtype", "shape", "requires_grad", "is_leaf", "grad_fn"):
            assert got[key] == want[key], f"{where}: {key} {got[key]!r} != torch's {want[key]!r}"
        np.testing.assert_allclose(np.asarray(got["tensor"], dtype=float), np.asarray(want["tensor"], dtype=float),
                                   rtol=1e-6, atol=1e-9, err_msg=where)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: {got!r} != torch's {want!r}"
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != torch's {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert isinstance(got, float) and np.isclose(got, want, rtol=1e-6), f"{where}: {got!r} != torch's {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != torch's {want!r}"


# ---------------------------------------------------------------- the Functions, for one namespace

def functions(ns):
    """The custom Functions of these programs, defined on ``ns``'s autograd.Function."""
    F = ns.autograd.Function

    class MultiplyAdd(F):  # the tutorial's
        @staticmethod
        def forward(ctx, w, x, b):
            ctx.save_for_backward(w, x)
            return w * x + b

        @staticmethod
        def backward(ctx, grad_output):
            w, x = ctx.saved_tensors
            return grad_output * x, grad_output * w, grad_output

    class Sigmoid(F):
        @staticmethod
        def forward(ctx, x):
            out = 1 / (1 + (-x).exp())
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, grad_output):
            out, = ctx.saved_tensors
            return grad_output * out * (1 - out)

    class Cube(F):  # its backward is differentiable: second derivatives go through it
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad_output):
            x, = ctx.saved_tensors
            return grad_output * 3 * x ** 2

    class WrongSquare(F):  # claims d(x*x)/dx = 3
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * 3

    class DetachedCube(F):  # right first derivative, but not differentiable itself
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad_output):
            x, = ctx.saved_tensors
            return grad_output * 3 * x.detach() ** 2

    class StraightThrough(F):  # forward rounds (half away from zero), backward passes the gradient on
        @staticmethod
        def forward(ctx, x):
            return (x + 0.5 * x.sign()).int().to(x.dtype)

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output

    class Identity(F):  # returns its input as is
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * 5

    return types.SimpleNamespace(**{c.__name__: c for c in (MultiplyAdd, Sigmoid, Cube, WrongSquare, DetachedCube,
                                                             StraightThrough, Identity)})


def returning(ns, result_of_backward, forward=lambda ctx, x, *rest: x * 2, name="Returning"):
    """A Function whose backward returns ``result_of_backward(grad)``: for the checks of what it returned."""
    return type(ns.autograd.Function)(name, (ns.autograd.Function,), {
        "forward": staticmethod(forward),
        "backward": staticmethod(lambda ctx, g: result_of_backward(g))})


def f64(ns, values, requires_grad=True):
    return ns.tensor(values, dtype=ns.float64, requires_grad=requires_grad)


# ---------------------------------------------------------------- programs

def multiply_add_graph(ns):
    F = functions(ns)
    w, x, b = f64(ns, [1.0, 2.0]), f64(ns, [3.0, 4.0]), f64(ns, [0.5, -0.5])
    z = F.MultiplyAdd.apply(w, x, b)
    fn = z.grad_fn
    return {"z": z, "node": node(fn), "module": type(fn).__module__,
            "next": [(node(n), nr) for n, nr in fn.next_functions],
            "apply": fn.apply(ns.ones(2, dtype=ns.float64)),
            "call": outcome(lambda: fn(ns.ones(2, dtype=ns.float64)))}


def multiply_add_backward(ns):
    F = functions(ns)
    w, x, b = f64(ns, [1.0, 2.0]), f64(ns, [3.0, 4.0]), f64(ns, [0.5, -0.5])
    z = F.MultiplyAdd.apply(w, x, b)
    (z * ns.tensor([1.0, -2.0], dtype=ns.float64)).sum().backward()
    return {"grads": [w.grad, x.grad, b.grad], "again": outcome(lambda: z.sum().backward()),
            "saved": outcome(lambda: z.grad_fn.saved_tensors)}


def multiply_add_retain_graph(ns):
    F = functions(ns)
    w, x, b = f64(ns, [1.0, 2.0]), f64(ns, [3.0, 4.0]), f64(ns, [0.5, -0.5])
    z = F.MultiplyAdd.apply(w, x, b)
    z.sum().backward(retain_graph=True)
    z.sum().backward()
    return [w.grad, x.grad, b.grad]


def sigmoid(ns):
    F = functions(ns)
    x = f64(ns, [-1.0, 0.0, 2.0])
    y = F.Sigmoid.apply(x)
    saved = y.grad_fn.saved_tensors[0]
    y.backward(ns.tensor([1.0, 2.0, 3.0], dtype=ns.float64))
    return {"y": y, "saved": saved, "grad": x.grad, "node": node(y.grad_fn)}


def needs_input_grad(ns):
    log = []

    class Scale(ns.autograd.Function):
        @staticmethod
        def forward(ctx, a, k, b):
            log.append(("forward", ctx.needs_input_grad))
            return a * k + b

        @staticmethod
        def backward(ctx, g):
            log.append(("backward", ctx.needs_input_grad))
            return g * 2, None, (g if ctx.needs_input_grad[2] else None)

    a, b = f64(ns, [1.0, 2.0]), f64(ns, [1.0, 2.0], requires_grad=False)
    y = Scale.apply(a, 2.0, b)
    y.sum().backward()
    with ns.no_grad():
        z = Scale.apply(a, 3.0, b)
    return {"log": log, "a.grad": a.grad, "b.grad": b.grad, "y": y, "z": z,
            "next": [node(n) for n, _ in y.grad_fn.next_functions]}


def non_differentiable_output(ns):
    seen = []

    class TwoOuts(ns.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            whole = x.int().to(x.dtype)
            ctx.mark_non_differentiable(whole)
            return x * 2, whole

        @staticmethod
        def backward(ctx, g, g_whole):
            seen.append(g_whole)
            return g * 2

    x = f64(ns, [1.5, -2.5])
    y, whole = TwoOuts.apply(x)
    (y * whole).sum().backward()
    return {"y": y, "whole": whole, "grad": x.grad, "seen": seen}


def materialize_grads(ns):
    seen = []

    def two_outputs(materialize: bool):
        class Two(ns.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.set_materialize_grads(materialize)
                return x * 2, x * 3

            @staticmethod
            def backward(ctx, g1, g2):
                seen.append((materialize, g1, g2))
                out = 0
                if g1 is not None:
                    out = out + g1 * 2
                if g2 is not None:
                    out = out + g2 * 3
                return out
        return Two

    grads = []
    for materialize in (True, False):
        x = f64(ns, [1.0, 2.0])
        _, q = two_outputs(materialize).apply(x)
        q.sum().backward()
        grads.append(x.grad)
    return {"seen": seen, "grads": grads}


def several_outputs_and_non_tensors(ns):
    seen = []

    class Mixed(ns.autograd.Function):
        @staticmethod
        def forward(ctx, x, k, y, label):
            ctx.k = k
            ctx.save_for_backward(x, y)
            return x * k, label, x * y

        @staticmethod
        def backward(ctx, g1, g_label, g2):
            x, y = ctx.saved_tensors
            seen.append((g1, g_label, g2))
            return g1 * ctx.k + g2 * y, None, g2 * x, None

    x, y = f64(ns, [1.0, 2.0]), f64(ns, [3.0, -1.0])
    a, label, c = Mixed.apply(x, 4.0, y, "tag")
    (a * 2 + c).sum().backward()
    return {"a": a, "label": label, "c": c, "seen": seen, "grads": [x.grad, y.grad],
            "next": [node(n) for n, _ in a.grad_fn.next_functions]}


def input_returned_as_is(ns):
    F = functions(ns)
    x = f64(ns, [1.0, 2.0])
    y = F.Identity.apply(x)
    h = x * 1
    z = F.Identity.apply(h)
    (y + z).sum().backward()
    with ns.no_grad():
        w = F.Identity.apply(x)
    plain = f64(ns, [1.0], requires_grad=False)
    p = F.Identity.apply(plain)
    return {"y is x": y is x, "y": y, "z is h": z is h, "z": z, "grad": x.grad,
            "no_grad is x": w is x, "no_grad": w, "plain is": p is plain, "plain": p}


def returned_gradients(ns):
    """What a backward returned, checked as torch checks it (each case its own Function)."""
    x = f64(ns, [1.0, 2.0])

    def run(result_of_backward, forward=lambda ctx, x, *rest: x * 2, args=()):
        x.grad = None
        fn = returning(ns, result_of_backward, forward)
        return outcome(lambda: (fn.apply(x, *args).sum().backward(), x.grad)[1])

    two = lambda ctx, x, y: x * y  # noqa: E731
    return {
        "too few": run(lambda g: g, two, (x,)),
        "too many": run(lambda g: (g, g)),
        "extra Nones": run(lambda g: (g * 3, None, None)),
        "not None for a non-tensor": run(lambda g: (g, g), lambda ctx, x, k: x * k, (2.0,)),
        "a float": run(lambda g: 2.0),
        "a bad shape": run(lambda g: g[:1]),
        "a broadcast shape": run(lambda g: g.expand(3, 2)),
        "another dtype": run(lambda g: g.float()),
        "None": run(lambda g: None),
    }


def straight_through(ns):
    F = functions(ns)
    x = f64(ns, [0.3, 1.7, -2.2, -0.4])
    y = F.StraightThrough.apply(x)
    (y * y).sum().backward()
    return {"y": y, "grad": x.grad, "node": node(y.grad_fn)}


def backward_twice_through_a_function_saving_nothing(ns):
    # only reading freed saved tensors fails: a Function that saved nothing can be run through again
    F = functions(ns)
    x = f64(ns, [0.3, 1.7])
    y = F.StraightThrough.apply(x)
    y.sum().backward()
    again = outcome(lambda: y.sum().backward())
    return {"again": again, "grad": x.grad}


def nested(ns):
    """A Function whose backward runs ops, a nested backward through another Function with a hook,
    and (under create_graph) applies another Function to the gradient."""
    log = []

    class Inner(ns.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin()

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            log.append(("inner", g.tolist()))
            return g * x.cos()

    def hook(grad):
        log.append(("hook", grad.tolist()))
        return grad * 3

    class Outer(ns.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            log.append(("outer", g.tolist()))
            with ns.enable_grad():
                xx = x.detach().requires_grad_()
                s = Inner.apply(xx * 2)
                s.register_hook(hook)
                inner_grad, = ns.autograd.grad(s.sum(), xx)
            return g * 2 * x + inner_grad * 0.5

    class Wrapping(ns.autograd.Function):  # its backward applies Inner to the gradient
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return Inner.apply(g * x) * 3

    x = f64(ns, [0.5, 1.0])
    y = Outer.apply(x)
    (y * ns.tensor([1.0, -1.0], dtype=ns.float64)).sum().backward()
    first = x.grad.clone()
    x.grad = None
    g, = ns.autograd.grad(Wrapping.apply(x).sum(), x, create_graph=True)
    g.sum().backward()
    return {"log": log, "first": first, "g": g, "second": x.grad}


def clipping_hook(ns):
    F = functions(ns)
    w = f64(ns, [1.0, -2.0, 3.0])
    h = w * 5
    handle = h.register_hook(lambda g: g.clamp(-1.0, 1.0))
    out = F.Sigmoid.apply(h * 0.1) * 40
    s = F.Cube.apply(w)
    s.register_hook(lambda g: g.clamp(-0.5, 0.5))
    (out.sum() + (s * 10).sum()).backward()
    first = w.grad.clone()
    handle.remove()
    w.grad = None
    (F.Sigmoid.apply(w * 5 * 0.1) * 40).sum().backward()
    return {"clipped": first, "unclipped": w.grad}


def second_derivative(ns):
    F = functions(ns)
    x = f64(ns, [1.0, -2.0, 0.5])
    y = F.Cube.apply(x)
    g, = ns.autograd.grad(y.sum(), x, create_graph=True)
    g2, = ns.autograd.grad((g * g).sum(), x, create_graph=True)
    g3, = ns.autograd.grad(g2.sum(), x)
    s = F.Sigmoid.apply(x)
    gs, = ns.autograd.grad(s.sum(), x, create_graph=True)
    gs.sum().backward()
    return {"g": g, "g2": g2, "g3": g3, "gs": gs, "x.grad": x.grad}


def saved_tensor_modified(ns):
    class SaveInput(ns.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * x

    F = functions(ns)
    x = f64(ns, [1.0, 2.0])
    h = x * 1
    y = SaveInput.apply(h)
    with ns.no_grad():
        h.mul_(2)
    s = F.Sigmoid.apply(x)
    with ns.no_grad():
        s.add_(1)
    return {"input": outcome(lambda: y.sum().backward()), "output": outcome(lambda: s.sum().backward())}


def save_a_non_tensor(ns):
    class SaveInt(ns.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, None, 3)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g

    return outcome(lambda: SaveInt.apply(f64(ns, [1.0])))


def gradchecks(ns):
    F = functions(ns)
    w, x, b = f64(ns, [1.0, 2.0]), f64(ns, [3.0, -4.0]), f64(ns, [0.5, -0.5])
    gc, ggc = ns.autograd.gradcheck, ns.autograd.gradgradcheck
    return {"multiply_add": gc(F.MultiplyAdd.apply, (w, x, b), eps=1e-6),
            "sigmoid": gc(F.Sigmoid.apply, (x,), eps=1e-6),
            "cube": gc(F.Cube.apply, x, eps=1e-6),
            "cube, second order": ggc(F.Cube.apply, (x,)),
            "sigmoid, second order": ggc(F.Sigmoid.apply, (x,)),
            "a non-tensor argument": gc(lambda a, k: a * k, (x, 3.0)),
            "straight through (right for the identity)": gc(lambda a: F.StraightThrough.apply(a) * 0 + a, (x,))}


def gradcheck_failures(ns):
    F = functions(ns)
    x = f64(ns, [1.0, 2.0])
    gc, ggc = ns.autograd.gradcheck, ns.autograd.gradgradcheck

    def error_of(fn):
        try:
            fn()
        except RuntimeError as e:  # GradcheckError is one
            return {"type": type(e).__name__, "module": type(e).__module__, "message": str(e)}
        return "did not raise"

    return {"wrong": error_of(lambda: gc(F.WrongSquare.apply, (x,))),
            "wrong, quiet": gc(F.WrongSquare.apply, (x,), raise_exception=False),
            "second order, quiet": ggc(F.DetachedCube.apply, (x,), raise_exception=False),
            "second order": error_of(lambda: ggc(F.DetachedCube.apply, (x,), ns.ones(2, dtype=ns.float64))),
            "no input requires grad": outcome(lambda: gc(F.Sigmoid.apply, (x.detach(),))),
            # right for one-hot grad_outputs, not zero for a zero one
            "backward not linear": error_of(lambda: gc(returning(ns, lambda g: g * 2 + (1 - g.abs().sum())).apply,
                                                       (x,))),
            "output without grad": error_of(lambda: gc(lambda a: (a * 2).detach(), (x,)))}


def jacobians(ns):
    J = ns.autograd.functional.jacobian
    x, y = f64(ns, [1.0, 2.0, 3.0], False), f64(ns, [0.5, -1.0, 2.0], False)
    F = functions(ns)
    return {"single": J(lambda a: (a * a).exp() * 0.1, x),
            "tuple": J(lambda a, b: (a * b, a.sin() + b), (x, y)),
            "one-tuple": J(lambda a: (a * 2,), (x,)),
            "scalar output": J(lambda a: (a ** 3).sum(), x),
            "unused input": J(lambda a, b: a * 2, (x, y)),
            "constant output": J(lambda a: (a * 2, ns.ones(2, dtype=ns.float64)), x),
            "custom Function": J(lambda a, b: F.MultiplyAdd.apply(a, b, a), (x, y)),
            "create_graph": J(lambda a: a ** 3, x, create_graph=True),
            "of a leaf requiring grad": J(lambda a: a ** 2, x.clone().requires_grad_()),
            "a list": outcome(lambda: J(lambda a: a, [x])),
            "a float output": outcome(lambda: J(lambda a: 3.0, x)),
            "strict, unused": outcome(lambda: J(lambda a, b: a * 2, (x, y), strict=True)),
            "strict, constant": outcome(lambda: J(lambda a: ns.ones(2, dtype=ns.float64), x, strict=True))}


def jacobian_of_a_matrix(ns):
    # the output of an elementwise op on a transposed tensor keeps its strides: reshape(-1) copies
    m = ns.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=ns.float64)
    return ns.autograd.functional.jacobian(lambda a: a.t() * 2, m)


def hessians(ns):
    H = ns.autograd.functional.hessian
    x, y = f64(ns, [1.0, 2.0, 3.0], False), f64(ns, [0.5, -1.0, 2.0], False)
    F = functions(ns)
    return {"single": H(lambda a: (a ** 3).sum(), x),
            "tuple": H(lambda a, b: (a * a * b).sum(), (x, y)),
            "custom Function": H(lambda a: F.Cube.apply(a).sum(), x),
            "create_graph": H(lambda a: (a ** 3).sum(), x, create_graph=True),
            "not one element": outcome(lambda: H(lambda a: a * 2, x)),
            "a tuple output": outcome(lambda: H(lambda a: (a.sum(), a.sum()), x)),
            "strict, linear": outcome(lambda: H(lambda a: (a * 2).sum(), x, strict=True))}


def vjps(ns):
    V = ns.autograd.functional.vjp
    x, y = f64(ns, [1.0, 2.0, 3.0], False), f64(ns, [0.5, -1.0, 2.0], False)
    F = functions(ns)
    return {"single": V(lambda a: (a * a).exp() * 0.1, x, y),
            "tuple": V(lambda a, b: (a * b, a.sin() + b), (x, y), (y, x)),
            "scalar output, no v": V(lambda a: (a ** 3).sum(), x),
            "unused input": V(lambda a, b: a * 2, (x, y), x),
            "constant output": V(lambda a: (a * 2, ns.ones(2, dtype=ns.float64)), x,
                                 (x, ns.ones(2, dtype=ns.float64))),
            "custom Function": V(lambda a, b: F.MultiplyAdd.apply(a, b, b), (x, y), y),
            "create_graph": V(lambda a: a ** 3, x.clone().requires_grad_(), y, create_graph=True),
            "no v": outcome(lambda: V(lambda a: a * 2, x)),
            "v of a wrong size": outcome(lambda: V(lambda a: a * 2, x, ns.ones(2, dtype=ns.float64))),
            "v of a wrong length": outcome(lambda: V(lambda a, b: (a, b), (x, y), (x,))),
            "strict, unused": outcome(lambda: V(lambda a, b: a * 2, (x, y), x, strict=True))}


def jvps(ns):
    Jv = ns.autograd.functional.jvp
    x, y = f64(ns, [1.0, 2.0, 3.0], False), f64(ns, [0.5, -1.0, 2.0], False)
    F = functions(ns)
    return {"single": Jv(lambda a: (a * a).exp() * 0.1, x, y),
            "tuple": Jv(lambda a, b: (a * b, a.sin() + b), (x, y), (y, x)),
            "unused first input": Jv(lambda a, b: b * 2, (x, y), (x, y)),
            "constant output": Jv(lambda a: (a * 2, ns.ones(2, dtype=ns.float64)), (x,), (x,)),
            "custom Function": Jv(lambda a: F.Sigmoid.apply(a), x, y),
            "create_graph": Jv(lambda a: a ** 3, x.clone().requires_grad_(), y, create_graph=True),
            "no v": outcome(lambda: Jv(lambda a: a * 2, x)),
            "v of a wrong size": outcome(lambda: Jv(lambda a: a * 2, x, ns.ones(2, dtype=ns.float64)))}


def scalar_jvps(ns):
    """jvp of single-element inputs or outputs (v may be left out, scalar outputs get zeros_like)."""
    Jv = ns.autograd.functional.jvp
    x, y = f64(ns, [1.0, 2.0, 3.0], False), f64(ns, [0.5, -1.0, 2.0], False)
    return {"scalar output": Jv(lambda a: (a ** 3).sum(), x, y),
            "one-element input, no v": Jv(lambda a: a * 2, ns.tensor(3.0))}


PROGRAMS = [multiply_add_graph, multiply_add_backward, multiply_add_retain_graph, sigmoid, needs_input_grad,
            non_differentiable_output, materialize_grads, several_outputs_and_non_tensors, input_returned_as_is,
            returned_gradients, straight_through, backward_twice_through_a_function_saving_nothing, nested,
            clipping_hook, second_derivative, saved_tensor_modified,
            save_a_non_tensor, gradchecks, gradcheck_failures, jacobians, jacobian_of_a_matrix,
            hessians, vjps, jvps, scalar_jvps]
