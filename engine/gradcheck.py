"""gradcheck and gradgradcheck, written over a torch-like namespace (torch.autograd.functional: autograd_functional.py).

Every function takes ``ns`` (the engine module, or a remote session) so that the same code
checks local and remote tensors: values are compared on the host, in float64. The code follows
torch/autograd/gradcheck.py (slow mode) step by step, so that
results, errors and their messages are torch's.
"""
from __future__ import annotations

import warnings

import numpy

from .printing import format_tensor


class GradcheckError(RuntimeError):
    """Error raised by gradcheck and gradgradcheck (torch.autograd.gradcheck.GradcheckError)."""


# a traceback names it as torch does
GradcheckError.__module__ = "torch.autograd.gradcheck"

FAILED_NONDET_MSG = """\n
NOTE: If your op relies on non-deterministic operations i.e., it is listed here:
https://pytorch.org/docs/stable/generated/torch.use_deterministic_algorithms.html
this failure might be expected.

If you are adding a new operator, please file an issue and then use one of the
workarounds. The workaround depends on how your test invokes gradcheck/gradgradcheck.
If the test
- manually invokes gradcheck/gradgradcheck, then call gradcheck/gradgradcheck
  with `nondet_tol=<tol>` as a keyword argument.
- is OpInfo-based (e.g., in test_ops_gradients.py), then modify the OpInfo for the test
  to have `gradcheck_nondet_tol=<tol>`.
- is a Module test (e.g., in common_nn.py), then modify the corresponding
  module_test entry to have `gradcheck_nondet_tol=<tol>`
"""


def _as_tuple(x):
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _is_tensor(ns, x) -> bool:
    return hasattr(x, "_dispatch")  # an engine Tensor or a remote one


def _host(t) -> numpy.ndarray:
    return numpy.asarray(t, dtype=numpy.float64).reshape(tuple(t.shape))


def _np_dtype(t):
    return numpy.dtype(t.dtype.name) if t.dtype.name in ("float16", "float32", "float64") else numpy.float64


def _describe(array: numpy.ndarray, like) -> str:
    """A Jacobian as torch prints it in gradcheck's messages (a tensor of ``like``'s dtype)."""
    return format_tensor(array.astype(_np_dtype(like)))


def _differentiable(ns, outputs) -> tuple:
    return tuple(o for o in outputs if _is_tensor(ns, o) and o.requires_grad)


# ---------------------------------------------------------------- gradcheck

def _numerical(ns, func, inputs, eps):
    """Central differences: jac[i][j] is d out_j / d in_i, an (in numel, out numel) array, for every
    input i that requires grad (in order) and every tensor output j."""
    jac = []
    for i, x in enumerate(inputs):
        if not (_is_tensor(ns, x) and x.requires_grad):
            continue
        flat = _host(x).reshape(-1)
        columns = None
        for k in range(flat.size):
            results = []
            for sign in (-1.0, 1.0):  # torch evaluates orig - eps first, then orig + eps
                values = flat.copy()
                values[k] += sign * eps
                moved = ns.tensor(values.reshape(tuple(x.shape)).tolist(), dtype=x.dtype, requires_grad=True)
                outs = [o for o in _as_tuple(func(*(inputs[:i] + (moved,) + inputs[i + 1:]))) if _is_tensor(ns, o)]
                results.append([_host(o).reshape(-1) for o in outs])
            if columns is None:
                columns = [numpy.zeros((flat.size, r.size)) for r in results[0]]
            for j, (a, b) in enumerate(zip(*results)):
                columns[j][k] = (b - a) / (2 * eps)
        jac.append(columns if columns is not None else [])
    return jac


def _analytical_once(ns, output, diff_inputs):
    """Rows e_k^T J of one output, by backward with one-hot grad_outputs; None where a grad is None."""
    rows = [[] for _ in diff_inputs]
    numel = output.numel()
    for k in range(numel):
        onehot = numpy.zeros(numel)
        onehot[k] = 1.0
        v = ns.tensor(onehot.reshape(tuple(output.shape)).tolist(), dtype=output.dtype)
        grads = ns.autograd.grad((output,), diff_inputs, (v,), retain_graph=True, allow_unused=True)
        for i, g in enumerate(grads):
            rows[i].append(g)
    return rows


def _stack(rows, diff_inputs, numel_out):
    """(in numel, out numel) arrays per input, and whether every gradient had its input's size and dtype."""
    jacobians, sizes_ok, types_ok = [], True, True
    for inp, column_list in zip(diff_inputs, rows):
        jac = numpy.zeros((inp.numel(), numel_out))
        for k, g in enumerate(column_list):
            if g is None:
                continue
            if tuple(g.shape) != tuple(inp.shape):
                sizes_ok = False
            elif g.dtype != inp.dtype:
                types_ok = False
            jac[:, k] = _host(g).reshape(-1)
        jacobians.append(jac)
    return jacobians, sizes_ok, types_ok


def _analytical(ns, output, diff_inputs, nondet_tol, check_grad_dtypes):
    # computed twice, as torch does, to catch a backward that is not reentrant
    first, sizes_ok, types_ok = _stack(_analytical_once(ns, output, diff_inputs), diff_inputs, output.numel())
    second = _stack(_analytical_once(ns, output, diff_inputs), diff_inputs, output.numel())[0]
    reentrant = all(a.size == 0 or numpy.abs(a - b).max() <= nondet_tol for a, b in zip(first, second))
    if not types_ok and check_grad_dtypes:
        raise GradcheckError("Gradient has dtype mismatch")
    if not sizes_ok:
        raise GradcheckError("Analytical gradient has incorrect size")
    if not reentrant:
        raise GradcheckError("Backward is not reentrant, i.e., running backward with same input and grad_output "
                             "multiple times gives different values, although analytical gradient matches "
                             f"numerical gradient.The tolerance for nondeterminism was {nondet_tol}."
                             + FAILED_NONDET_MSG)
    return first


def _check_inputs(ns, inputs) -> None:
    any_requires_grad = False
    for idx, x in enumerate(inputs):
        if _is_tensor(ns, x) and x.requires_grad:
            if x.dtype.name != "float64":
                warnings.warn(f"Input #{idx} requires gradient and is not a double precision floating point or "
                              "complex. This check will likely fail if all the inputs are not of double precision "
                              "floating point or complex. ", UserWarning, stacklevel=4)
            any_requires_grad = True
    if not any_requires_grad:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of them "
                         "have requires_grad=True.")


def _slow_gradcheck(ns, func, func_out, inputs, outputs, eps, rtol, atol, nondet_tol, check_grad_dtypes):
    numerical = _numerical(ns, func, inputs, eps)
    tensor_outs = [o for o in func_out if _is_tensor(ns, o)]
    if not outputs:
        # no differentiable output: the function must not depend on its inputs at all
        for per_input in numerical:
            for n in per_input:
                if numpy.any(n != 0):
                    raise GradcheckError("Numerical gradient for function expected to be zero")
        return
    keep = [j for j, o in enumerate(tensor_outs) if o.requires_grad]
    diff_inputs = [x for x in inputs if _is_tensor(ns, x) and x.requires_grad]
    for i, o in enumerate(outputs):
        analytical = _analytical(ns, o, diff_inputs, nondet_tol, check_grad_dtypes)
        for j, (a, x) in enumerate(zip(analytical, diff_inputs)):
            n = numerical[j][keep[i]]
            if not numpy.allclose(a, n, rtol=rtol, atol=atol):
                raise GradcheckError(f"Jacobian mismatch for output {i:d} with respect to input {j:d},\n"
                                     f"numerical:{_describe(n, o)}\nanalytical:{_describe(a, x)}\n")


def _test_backward_mul_by_grad_output(ns, outputs, inputs) -> None:
    diff_inputs = [x for x in inputs if _is_tensor(ns, x) and x.requires_grad]
    grads = ns.autograd.grad(outputs, diff_inputs, [ns.zeros_like(o) for o in outputs], allow_unused=True)
    for gi, di in zip(grads, diff_inputs):
        if gi is None:
            continue
        if numpy.any(_host(gi) != 0):
            raise GradcheckError("backward not multiplied by grad_output")
        if gi.dtype != di.dtype:
            raise GradcheckError("grad is incorrect type")
        if tuple(gi.shape) != tuple(di.shape):
            raise GradcheckError("grad is incorrect size")


def _undefined_grad(ns):
    """torch._C._functions.UndefinedGrad for this namespace: passes values, sends back no gradient."""

    class UndefinedGrad(ns.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return None

    return UndefinedGrad


def _test_undefined_backward_mode(ns, func, outputs, inputs) -> None:
    diff_inputs = [x for x in inputs if _is_tensor(ns, x) and x.requires_grad]
    undefined = _undefined_grad(ns)

    def warn_bc_breaking():
        warnings.warn("Backwards compatibility: New undefined gradient support checking feature is enabled by "
                      "default, but it may break existing callers of this function. If this is true for you, you "
                      "can call this function with \"check_undefined_grad=False\" to disable the feature",
                      UserWarning, stacklevel=4)

    def check(output_to_check):
        try:
            grads = ns.autograd.grad(output_to_check, diff_inputs, [ns.zeros_like(o) for o in output_to_check],
                                     allow_unused=True)
        except RuntimeError as e:
            warn_bc_breaking()
            raise GradcheckError("Expected backward function to handle undefined output grads. Please look at "
                                 "\"Notes about undefined output gradients\" in \"tools/autograd/derivatives.yaml\""
                                 ) from e
        for gi in grads:
            if gi is not None and numpy.any(_host(gi) != 0):
                warn_bc_breaking()
                raise GradcheckError("Expected all input grads to be undefined or zero when all output grads are "
                                     "undefined or zero. Please look at \"Notes about undefined output gradients\" "
                                     "in \"tools/autograd/derivatives.yaml\"")

    to_check = [[undefined.apply(o) for o in _differentiable(ns, _as_tuple(func(*inputs)))]]
    if len(to_check[0]) > 1:
        # with several outputs, each alone may be undefined
        for undef_idx in range(len(outputs)):
            fresh = _differentiable(ns, _as_tuple(func(*inputs)))
            to_check.append([undefined.apply(o) if idx == undef_idx else o for idx, o in enumerate(fresh)])
    for output_to_check in to_check:
        if output_to_check:  # nothing differentiable: torch's backward then returns no gradient at all
            check(output_to_check)


def gradcheck(ns, func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False, **ignored) -> bool:
    """Compare analytical gradients with central finite differences, as torch.autograd.gradcheck.

    fast_mode runs the full (slow-mode) comparison: the same verdict, with slow mode's messages.
    """
    try:
        tupled = _as_tuple(inputs)
        _check_inputs(ns, tupled)
        func_out = _as_tuple(func(*tupled))
        outputs = _differentiable(ns, func_out)
        _slow_gradcheck(ns, func, func_out, tupled, outputs, eps, rtol, atol, nondet_tol, check_grad_dtypes)
        if not check_backward_ad:
            return True
        if not any(_is_tensor(ns, x) and x.requires_grad for x in tupled):
            raise GradcheckError("no Tensors requiring grad found in input")
        if outputs:
            _test_backward_mul_by_grad_output(ns, outputs, tupled)
        if check_undefined_grad:
            _test_undefined_backward_mode(ns, func, outputs, tupled)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(ns, func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False, fast_mode: bool = False,
                  **ignored) -> bool:
    """gradcheck of the first derivative's VJP, as torch.autograd.gradgradcheck."""
    tupled = _as_tuple(inputs)
    if grad_outputs is None:
        # torch.testing.make_tensor(low=-1, high=1): uniform in [-1, 1), requiring grad
        outputs = _differentiable(ns, _as_tuple(func(*tupled)))
        tupled_grad_outputs = tuple(
            (ns.rand(tuple(o.shape), dtype=o.dtype if o.dtype.is_floating_point else ns.float64) * 2 - 1)
            .detach().requires_grad_(True) for o in outputs)
    else:
        tupled_grad_outputs = _as_tuple(grad_outputs)
    num_outputs = len(tupled_grad_outputs)
    diff_input_indices = {i for i, x in enumerate(tupled) if _is_tensor(ns, x) and x.requires_grad}
    diff_grad_output_indices = {i for i, x in enumerate(tupled_grad_outputs) if x.requires_grad}

    def new_func(*args):
        input_args = tuple(x.requires_grad_() if i in diff_input_indices else x
                           for i, x in enumerate(args[:-num_outputs]))
        outputs = _differentiable(ns, _as_tuple(func(*input_args)))
        grad_outputs = tuple(x.requires_grad_() if i in diff_grad_output_indices else x
                             for i, x in enumerate(args[-num_outputs:]))
        diff_input_args = tuple(x for i, x in enumerate(input_args) if i in diff_input_indices)
        grad_inputs = ns.autograd.grad(outputs, diff_input_args, grad_outputs, create_graph=True, allow_unused=True)
        return tuple(g for g in grad_inputs if g is not None)

    return gradcheck(ns, new_func, tupled + tupled_grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol, check_undefined_grad=check_undefined_grad,
                     check_grad_dtypes=check_grad_dtypes, fast_mode=fast_mode)


# ---------------------------------------------------------------- torch.autograd.functional
