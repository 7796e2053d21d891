"""torch's checks on plain metadata (shapes as tuples, dtypes), raised by the engine and by the client SDK alike."""
from __future__ import annotations

from . import errors
from .dtypes import dtype as _dtype
from .dtypes import from_any


def _as_dtype(dt) -> _dtype:
    # an engine dtype, or what the arrays carry (a numpy dtype)
    return dt if dt.__class__ is _dtype else from_any(dt)


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    if len(shape) > len(target):
        return False
    return all(s == t or s == 1 for s, t in zip(reversed(shape), reversed(target)))


def check_inplace_result(target_shape: tuple, target_dtype, result_shape: tuple, result_dtype) -> None:
    """An in-place op's result must broadcast to its target's shape and not outrank its dtype's category
    (bool < integer < float); dtypes are engine or numpy dtypes. Raises RuntimeError in torch's words."""
    if result_shape != target_shape and not _broadcasts_to(tuple(result_shape), tuple(target_shape)):
        raise RuntimeError(f"output with shape {list(target_shape)} doesn't match the broadcast shape "
                           f"{list(result_shape)}")
    if result_dtype is not target_dtype:
        src, dst = _as_dtype(result_dtype), _as_dtype(target_dtype)
        if src._category > dst._category:
            raise RuntimeError(f"result type {errors.scalar_name(src)} can't be cast to the desired "
                               f"output type {errors.scalar_name(dst)}")


def check_grad_assignment(value, value_shape: tuple | None, value_dtype, shape: tuple, dtype,
                          is_tensor: bool) -> None:
    """``t.grad = value`` on a tensor of ``shape`` and ``dtype``: None, or a tensor (``is_tensor``; only
    then are ``value_shape`` and ``value_dtype`` read) of that dtype and size. TypeError, else RuntimeError."""
    if value is None:
        return
    if not is_tensor:
        raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}")
    if value_dtype is not dtype:  # torch checks the dtype before the size
        got, want = _as_dtype(value_dtype), _as_dtype(dtype)
        if got is not want:
            raise RuntimeError(errors.grad_dtype_message(got, want))
    if tuple(value_shape) != tuple(shape):
        raise RuntimeError(f"attempting to assign a gradient of size '{list(value_shape)}' to a tensor of size "
                           f"'{list(shape)}'. Please ensure that the gradient and the tensor are the same size")


def check_requires_grad(is_leaf: bool, flag: bool, dtype, setter: bool = False) -> bool:
    """``t.requires_grad = flag`` (``setter``) or ``t.requires_grad_(flag)``: whether to store ``flag``
    (False: requires_grad_(True) on a non-leaf, a no-op). RuntimeError, worded apart for the two, as torch does."""
    if not is_leaf:
        if flag and not setter:
            return False
        raise RuntimeError("you can only change requires_grad flags of leaf variables." if flag
                           else errors.NON_LEAF_REQUIRES_GRAD)
    if flag and not _as_dtype(dtype).is_floating_point:
        raise RuntimeError(errors.INTEGER_REQUIRES_GRAD if setter else errors.INTEGER_REQUIRES_GRAD_)
    return True


def check_factory_requires_grad(requires_grad: bool, dtype) -> None:
    """A factory's ``requires_grad=True`` (torch.tensor, torch.zeros, ...) needs a floating point dtype."""
    if requires_grad and not _as_dtype(dtype).is_floating_point:
        raise RuntimeError(errors.FACTORY_REQUIRES_GRAD)


def check_data_assignment(value, is_tensor: bool) -> None:
    """``t.data = value``: a tensor (TypeError in torch's words otherwise)."""
    if not is_tensor:
        raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")


def check_retain_grad(requires_grad: bool) -> None:
    """``retain_grad()`` on a tensor that does not require grad is an error."""
    if not requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")


def check_register_hook(requires_grad: bool) -> None:
    """``register_hook()`` on a tensor that does not require grad is an error."""
    if not requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")


def check_item(numel: int) -> None:
    """``item()`` reads a tensor of exactly one element."""
    if numel != 1:
        raise RuntimeError(f"a Tensor with {numel} elements cannot be converted to Scalar")


def check_numpy(requires_grad: bool, force: bool = False) -> None:
    """``numpy()`` of a tensor that requires grad needs ``force=True`` (or a ``detach()`` first)."""
    if requires_grad and not force:
        raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")


def check_legacy_new_kwargs(kwargs: dict) -> None:
    """``torch.Tensor(...)`` (the legacy constructor) takes no keyword but ``device``; raises TypeError."""
    extra = sorted(k for k in kwargs if k != "device")
    if extra:
        raise TypeError(f"new() received an invalid combination of arguments - got unexpected keyword "
                        f"arguments {extra}")
