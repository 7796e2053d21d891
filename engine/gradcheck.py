"""gradcheck, gradgradcheck and torch.autograd.functional, written over a torch-like namespace.

Every function takes ``ns`` (the engine module, or a remote session) so that the same code
checks local and remote tensors: values are compared on the host, in float64.
"""
from __future__ import annotations

import numpy


class GradcheckError(RuntimeError):
    """torch.autograd.gradcheck.GradcheckError."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _is_tensor(ns, x) -> bool:
    return hasattr(x, "_dispatch")


def _host(t) -> numpy.ndarray:
    return numpy.asarray(t.detach().tolist(), dtype=numpy.float64).reshape(tuple(t.shape))


def _outputs(ns, func, inputs):
    return tuple(o for o in _as_tuple(func(*inputs)) if _is_tensor(ns, o))


def _numerical(ns, func, inputs, eps):
    """Central differences: jac[i][j] is d out_j / d in_i as an (in numel, out numel) array."""
    # func runs with grad enabled and inputs that require grad, as torch runs it: a function
    # that differentiates internally (gradgradcheck's) needs that
    base = inputs
    outs = _outputs(ns, func, base)
    jac = []
    for i, x in enumerate(inputs):
        if not (_is_tensor(ns, x) and x.requires_grad):
            jac.append(None)
            continue
        cols = [numpy.zeros((x.numel(), o.numel())) for o in outs]
        flat_vals = _host(x).reshape(-1)
        for k in range(x.numel()):
            results = []
            for sign in (1.0, -1.0):
                values = flat_vals.copy()
                values[k] += sign * eps
                moved = ns.tensor(values.reshape(tuple(x.shape)).tolist(), dtype=x.dtype, requires_grad=True)
                args = base[:i] + (moved,) + base[i + 1:]
                results.append([_host(o).reshape(-1) for o in _outputs(ns, func, args)])
            for j in range(len(outs)):
                cols[j][k] = (results[0][j] - results[1][j]) / (2 * eps)
        jac.append(cols)
    return jac


def _analytical(ns, func, inputs):
    diff = [x for x in inputs if _is_tensor(ns, x) and x.requires_grad]
    outs = _outputs(ns, func, inputs)
    jac = [[numpy.zeros((x.numel(), o.numel())) for o in outs] if _is_tensor(ns, x) and x.requires_grad else None
           for x in inputs]
    index = [i for i, x in enumerate(inputs) if _is_tensor(ns, x) and x.requires_grad]
    for j, o in enumerate(outs):
        if not o.requires_grad:
            continue
        for k in range(o.numel()):
            onehot = numpy.zeros(o.numel())
            onehot[k] = 1.0
            v = ns.tensor(onehot.reshape(tuple(o.shape)).tolist(), dtype=o.dtype)
            grads = ns.autograd.grad((o,), diff, (v,), retain_graph=True, allow_unused=True)
            for i, g in zip(index, grads):
                if g is not None:
                    jac[i][j][:, k] = _host(g).reshape(-1)
    return jac


def gradcheck(ns, func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              fast_mode: bool = False, **ignored) -> bool:
    """Compare analytical gradients with central finite differences, as torch.autograd.gradcheck."""
    inputs = _as_tuple(inputs)
    for x in inputs:
        if _is_tensor(ns, x) and x.requires_grad and x.dtype.name != "float64":
            import warnings
            warnings.warn(f"Input #{inputs.index(x)} requires gradient and is not a double precision floating "
                          "point. This check will likely fail if all the inputs are not of double precision "
                          "floating point. ", UserWarning, stacklevel=2)
    if not any(_is_tensor(ns, x) and x.requires_grad for x in inputs):
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the them "
                         "have requires_grad=True.")
    numerical = _numerical(ns, func, inputs, eps)
    analytical = _analytical(ns, func, inputs)
    for i, (num, ana) in enumerate(zip(numerical, analytical)):
        if num is None:
            continue
        for j, (n, a) in enumerate(zip(num, ana)):
            if not numpy.allclose(a, n, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                raise GradcheckError(f"Jacobian mismatch for output {j} with respect to input {i},\n"
                                     f"numerical:{n!r}\nanalytical:{a!r}\n")
    return True


def gradgradcheck(ns, func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, **ignored) -> bool:
    """gradcheck of the first derivative's VJP, as torch.autograd.gradgradcheck."""
    inputs = _as_tuple(inputs)
    with ns.no_grad():
        outs = _outputs(ns, func, tuple(x.detach() if _is_tensor(ns, x) else x for x in inputs))
    if grad_outputs is None:
        grad_outputs = tuple(ns.randn(*o.shape, dtype=o.dtype, requires_grad=True) for o in outs)
    grad_outputs = _as_tuple(grad_outputs)
    n = len(inputs)

    def first_derivative(*args):
        xs, vs = args[:n], args[n:]
        diff = [x for x in xs if _is_tensor(ns, x) and x.requires_grad]
        outs = _outputs(ns, func, xs)
        grads = ns.autograd.grad(outs, diff, vs, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(ns, first_derivative, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)


# ---------------------------------------------------------------- torch.autograd.functional

def _prepare(ns, inputs, create_graph):
    single = not isinstance(inputs, (tuple, list))
    xs = tuple(x.detach().requires_grad_(True) if not create_graph or not x.requires_grad else x
               for x in _as_tuple(inputs))
    return single, xs


def _grad_or_zeros(ns, grads, xs):
    return tuple(g if g is not None else ns.zeros_like(x) for g, x in zip(grads, xs))


def vjp(ns, func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    single, xs = _prepare(ns, inputs, create_graph)
    with ns.enable_grad():
        out = func(*xs)
        outs = _as_tuple(out)
        vs = _as_tuple(v) if v is not None else tuple(ns.ones_like(o) for o in outs)
        grads = ns.autograd.grad(outs, xs, vs, create_graph=create_graph, allow_unused=True)
    grads = _grad_or_zeros(ns, grads, xs)
    out_r = out if create_graph else (tuple(o.detach() for o in outs) if isinstance(out, tuple) else out.detach())
    return out_r, grads[0] if single else grads


def jvp(ns, func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """Forward-mode product through the double-backward trick: J v = d/du (u^T J) v."""
    single, xs = _prepare(ns, inputs, create_graph)
    vs = _as_tuple(v) if v is not None else tuple(ns.ones_like(x) for x in xs)
    with ns.enable_grad():
        out = func(*xs)
        outs = _as_tuple(out)
        us = tuple(ns.zeros_like(o).requires_grad_(True) for o in outs)
        g = ns.autograd.grad(outs, xs, us, create_graph=True, allow_unused=True)
        g = tuple(gi for gi in g if gi is not None)
        pairs = [(gi, vi) for gi, vi in zip(g, vs)]
        jv = ns.autograd.grad(tuple(p[0] for p in pairs), us, tuple(p[1] for p in pairs),
                              create_graph=create_graph, allow_unused=True)
    jv = _grad_or_zeros(ns, jv, outs)
    out_r = out if create_graph else (tuple(o.detach() for o in outs) if isinstance(out, tuple) else out.detach())
    return out_r, jv[0] if not isinstance(out, tuple) else jv


def jacobian(ns, func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    single_in, xs = _prepare(ns, inputs, create_graph)
    with ns.enable_grad():
        out = func(*xs)
    single_out = not isinstance(out, tuple)
    outs = _as_tuple(out)
    table = []
    for o in outs:
        flat = o.reshape(-1)
        rows = [[] for _ in xs]
        for k in range(flat.numel()):
            grads = ns.autograd.grad((flat[k],), xs, retain_graph=True, create_graph=create_graph, allow_unused=True)
            for i, (g, x) in enumerate(zip(grads, xs)):
                rows[i].append(g if g is not None else ns.zeros_like(x))
        per_input = []
        for i, x in enumerate(xs):
            if rows[i]:
                j = ns.stack(rows[i]).reshape(tuple(o.shape) + tuple(x.shape))
            else:
                j = ns.zeros(*(tuple(o.shape) + tuple(x.shape)), dtype=x.dtype)
            per_input.append(j if create_graph else j.detach())
        table.append(per_input[0] if single_in else tuple(per_input))
    return table[0] if single_out else tuple(table)


def hessian(ns, func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    single, xs = _prepare(ns, inputs, True)

    def gradient(*args):
        out = func(*args)
        if out.numel() != 1:
            raise RuntimeError("The function given to hessian should return a single element Tensor")
        grads = ns.autograd.grad((out.reshape(()) if out.dim() else out,), args, create_graph=True, allow_unused=True)
        g = _grad_or_zeros(ns, grads, args)
        return g[0] if single else g

    return jacobian(ns, gradient, xs[0] if single else xs, create_graph=create_graph)
