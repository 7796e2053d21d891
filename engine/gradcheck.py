"""gradcheck, gradgradcheck and torch.autograd.functional, written over a torch-like namespace.

Every function takes ``ns`` (the engine module, or a remote session) so that the same code
checks local and remote tensors: values are compared on the host, in float64. The code follows
torch/autograd/gradcheck.py (slow mode) and torch/autograd/functional.py step by step, so that
results, errors and their messages are torch's.
"""
from __future__ import annotations

import contextlib
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

def _as_checked_tuple(ns, inp, arg_name: str, fn_name: str):
    """(was it a tuple, the tuple of Tensors), with torch's TypeError for anything else."""
    is_tuple = isinstance(inp, tuple)
    tupled = inp if is_tuple else (inp,)
    for i, el in enumerate(tupled):
        if not _is_tensor(ns, el):
            if is_tuple:
                raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors "
                                f"but the value at index {i} has type {type(el)}.")
            raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but "
                            f"the given {arg_name} has type {type(el)}.")
    return is_tuple, tupled


def _tuple_postprocess(res, to_unpack):
    if isinstance(to_unpack, tuple):
        if not to_unpack[1]:
            res = tuple(el[0] for el in res)
        if not to_unpack[0]:
            res = res[0]
    elif not to_unpack:
        res = res[0]
    return res


def _grad_preprocess(inputs, create_graph: bool, need_graph: bool) -> tuple:
    # always new Tensor objects: inputs given as arguments stay apart from the same tensors
    # captured by the user's function (pytorch/pytorch#32576)
    res = []
    for inp in inputs:
        if create_graph and inp.requires_grad:
            res.append(inp.view_as(inp))
        else:
            d = inp.detach()
            res.append(d.requires_grad_(True) if need_graph else d)
    return tuple(res)


def _grad_postprocess(ns, inputs, create_graph: bool):
    if _is_tensor(ns, inputs[0]):
        return inputs if create_graph else tuple(inp.detach() for inp in inputs)
    return tuple(_grad_postprocess(ns, inp, create_graph) for inp in inputs)


def _validate_v(v, other, is_other_tuple: bool) -> None:
    if len(other) != len(v):
        if is_other_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(other)} but got {len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for idx, (el_v, el_other) in enumerate(zip(v, other)):
        if tuple(el_v.shape) != tuple(el_other.shape):
            prepend = f"Entry {idx} in " if is_other_tuple else ""
            raise RuntimeError(f"{prepend}v has invalid size: should be {el_other.shape} but got {el_v.shape}.")


def _check_requires_grad(inputs, input_type: str, strict: bool) -> None:
    if not strict:
        return
    for i, inp in enumerate(inputs):
        if inp is None:
            raise RuntimeError(f"The output of the user-provided function is independent of input {i}. This is not "
                               "allowed in strict mode.")
        if not inp.requires_grad:
            if input_type == "hessian":
                raise RuntimeError(f"The hessian of the user-provided function with respect to input {i} is "
                                   "independent of the input. This is not allowed in strict mode. You should ensure "
                                   "that your function is thrice differentiable and that the hessian depends on the "
                                   "inputs.")
            if input_type == "jacobian":
                raise RuntimeError("While computing the hessian, found that the jacobian of the user-provided "
                                   f"function with respect to input {i} is independent of the input. This is not "
                                   "allowed in strict mode. You should ensure that your function is twice "
                                   "differentiable and that the jacobian depends on the inputs (this would be "
                                   "violated by a linear function for example).")
            if input_type == "grad_inputs":
                raise RuntimeError(f"The gradient with respect to input {i} is independent of the inputs of the "
                                   "user-provided function. This is not allowed in strict mode.")
            raise RuntimeError(f"Output {i} of the user-provided function does not require gradients. The outputs "
                               "must be computed in a differentiable manner from the input when running in strict "
                               "mode.")


def _autograd_grad(ns, outputs, inputs, grad_outputs=None, create_graph: bool = False, retain_graph=None):
    """autograd.grad that skips outputs which are None or do not require grad (all skipped: all None)."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    new_outputs, new_grad_outputs = [], []
    for out, grad_out in zip(outputs, grad_outputs):
        if out is not None and out.requires_grad:
            new_outputs.append(out)
            new_grad_outputs.append(grad_out)
    if not new_outputs:
        return (None,) * len(inputs)
    return ns.autograd.grad(tuple(new_outputs), inputs, tuple(new_grad_outputs), allow_unused=True,
                            create_graph=create_graph, retain_graph=retain_graph)


_STRICT_NONE = {
    "back": "The output of the user-provided function is independent of input {i}. This is not allowed in "
            "strict mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the grad_outputs when "
                  "using the double backward trick to compute forward mode gradients. This is not allowed in "
                  "strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. This is not allowed "
                   "in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry {i} in the "
                         "grad_jacobian. This is not allowed in strict mode as it prevents from using the double "
                         "backward trick to replace forward mode AD.",
}


def _fill_in_zeros(ns, grads, refs, strict: bool, create_graph: bool, stage: str) -> tuple:
    res = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(_STRICT_NONE[stage].format(i=i))
            g = ns.zeros_like(refs[i])
        elif strict and create_graph and not g.requires_grad:
            what = "jacobian" if "double" not in stage else "hessian"
            raise RuntimeError(f"The {what} of the user-provided function is independent of input {i}. This is not "
                               "allowed in strict mode when create_graph=True.")
        res.append(g)
    return tuple(res)


def vjp(ns, func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """torch.autograd.functional.vjp: (func(inputs), v^T J)."""
    with ns.enable_grad():
        is_inputs_tuple, inputs = _as_checked_tuple(ns, inputs, "inputs", "vjp")
        inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_checked_tuple(ns, outputs, "outputs of the user-provided function", "vjp")
        _check_requires_grad(outputs, "outputs", strict)
        if v is not None:
            _, v = _as_checked_tuple(ns, v, "v", "vjp")
            v = _grad_preprocess(v, create_graph, need_graph=False)
            _validate_v(v, outputs, is_outputs_tuple)
        elif len(outputs) != 1 or outputs[0].nelement() != 1:
            raise RuntimeError("The vector v can only be None if the user-provided function returns a single "
                               "Tensor with a single element.")
    with ns.set_grad_enabled(True if create_graph else ns.is_grad_enabled()):
        grad_res = _autograd_grad(ns, outputs, inputs, v, create_graph=create_graph)
        result = _fill_in_zeros(ns, grad_res, inputs, strict, create_graph, "back")
    outputs = _grad_postprocess(ns, outputs, create_graph)
    result = _grad_postprocess(ns, result, create_graph)
    return _tuple_postprocess(outputs, is_outputs_tuple), _tuple_postprocess(result, is_inputs_tuple)


def jvp(ns, func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """torch.autograd.functional.jvp: (func(inputs), J v), by the double-backward trick as torch computes it."""
    with ns.enable_grad():
        is_inputs_tuple, inputs = _as_checked_tuple(ns, inputs, "inputs", "jvp")
        inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
        if v is not None:
            _, v = _as_checked_tuple(ns, v, "v", "jvp")
            v = _grad_preprocess(v, create_graph, need_graph=False)
            _validate_v(v, inputs, is_inputs_tuple)
        elif len(inputs) != 1 or inputs[0].nelement() != 1:
            raise RuntimeError("The vector v can only be None if the input to the user-provided function is a "
                               "single Tensor with a single element.")
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_checked_tuple(ns, outputs, "outputs of the user-provided function", "jvp")
        _check_requires_grad(outputs, "outputs", strict)
        # backward is linear in grad_outputs: their values do not matter (zeros: no inf or nan)
        grad_outputs = tuple(ns.zeros_like(out, requires_grad=True) for out in outputs)
        grad_inputs = _autograd_grad(ns, outputs, inputs, grad_outputs, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict)
    with ns.enable_grad() if create_graph else contextlib.nullcontext():
        grad_res = _autograd_grad(ns, grad_inputs, grad_outputs, v, create_graph=create_graph)
        result = _fill_in_zeros(ns, grad_res, outputs, strict, create_graph, "back_trick")
    outputs = _grad_postprocess(ns, outputs, create_graph)
    result = _grad_postprocess(ns, result, create_graph)
    return _tuple_postprocess(outputs, is_outputs_tuple), _tuple_postprocess(result, is_outputs_tuple)


def jacobian(ns, func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """torch.autograd.functional.jacobian, one backward per output element.

    vectorize=True (and strategy="forward-mode", which needs it) give the same values, computed this way.
    """
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                             'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                             'Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError("torch.autograd.functional.jacobian: `create_graph=True` and "
                                      '`strategy="forward-mode"` are not supported together (yet). Please either '
                                      'set `create_graph=False` or `strategy="reverse-mode"`.')
        if strict:
            raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `strategy=\"forward-mode\"` "
                               "are not supported together (yet). Please either set `strict=False` or "
                               "`strategy=\"reverse-mode\"`.")
        if not vectorize:
            raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian is only "
                                      "implemented for `vectorize=True`.")
    with ns.enable_grad():
        is_inputs_tuple, inputs = _as_checked_tuple(ns, inputs, "inputs", "jacobian")
        inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_checked_tuple(ns, outputs, "outputs of the user-provided function",
                                                      "jacobian")
        _check_requires_grad(outputs, "outputs", strict)
        if vectorize and strict:
            raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                               "supported together. Please either set `strict=False` or `vectorize=False`.")
        table = []
        for i, out in enumerate(outputs):
            per_input = [[] for _ in inputs]
            for j in range(out.nelement()):
                vj = _autograd_grad(ns, (out.reshape(-1)[j],), inputs, retain_graph=True, create_graph=create_graph)
                for el_idx, (rows, g, inp) in enumerate(zip(per_input, vj, inputs)):
                    if g is not None:
                        if strict and create_graph and not g.requires_grad:
                            raise RuntimeError(f"The jacobian of the user-provided function is independent of "
                                               f"input {i}. This is not allowed in strict mode when "
                                               "create_graph=True.")
                        rows.append(g)
                    else:
                        if strict:
                            raise RuntimeError(f"Output {i} of the user-provided function is independent of input "
                                               f"{el_idx}. This is not allowed in strict mode.")
                        rows.append(ns.zeros_like(inp))
            table.append(tuple(ns.stack(rows, dim=0).view(tuple(out.shape) + tuple(inputs[el_idx].shape))
                               for el_idx, rows in enumerate(per_input)))
        result = _grad_postprocess(ns, tuple(table), create_graph)
        return _tuple_postprocess(result, (is_outputs_tuple, is_inputs_tuple))


def hessian(ns, func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """torch.autograd.functional.hessian: the jacobian of the gradient of a single-element function."""
    is_inputs_tuple, inputs = _as_checked_tuple(ns, inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def ensure_single_output_function(*inp):
        out = func(*inp)
        is_out_tuple, t_out = _as_checked_tuple(ns, out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(t_out, "outputs", strict)
        if is_out_tuple or not _is_tensor(ns, out):
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.nelement() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a single element")
        return out.squeeze()

    def jac_func(*inp):
        if outer_jacobian_strategy == "forward-mode":
            inp = tuple(t.requires_grad_(True) for t in inp)
        jac = jacobian(ns, ensure_single_output_function, inp, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        return jac

    res = jacobian(ns, jac_func, inputs, create_graph=create_graph, strict=strict, vectorize=vectorize,
                   strategy=outer_jacobian_strategy)
    return _tuple_postprocess(res, (is_inputs_tuple, is_inputs_tuple))
