"""Whether a reshape can be a view, from shape and element strides alone (no arrays needed)."""
from __future__ import annotations


def contiguous_strides(shape) -> tuple:
    strides, acc = [], 1
    for d in reversed(tuple(shape)):
        strides.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(strides))


def is_contiguous(shape, strides) -> bool:
    expected = 1
    for d, s in zip(reversed(tuple(shape)), reversed(tuple(strides))):
        if d == 1:
            continue
        if s != expected:
            return False
        expected *= d
    return True


def view_strides(shape, strides, new_shape):
    """Strides of ``new_shape`` viewing the same memory, or None when a copy is needed (torch's rule)."""
    shape, strides, new_shape = tuple(shape), tuple(strides), tuple(new_shape)
    numel = 1
    for d in shape:
        numel *= d
    if numel == 0:
        return contiguous_strides(new_shape) if shape != new_shape else strides
    if not shape:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    # walk the old dims from the innermost, in chunks of dims that are contiguous with each other
    base = strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base = strides[d - 1]
                tensor_numel = view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)
