"""Reproduce PyTorch 2.13's default ``repr(tensor)`` text for numpy arrays."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# torch's default print options; only the defaults are supported.
PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80

_PREFIX = "tensor("

_DTYPE_NAMES: dict[np.dtype, str] = {
    np.dtype(np.float16): "torch.float16",
    np.dtype(np.float32): "torch.float32",
    np.dtype(np.float64): "torch.float64",
    np.dtype(np.int8): "torch.int8",
    np.dtype(np.int16): "torch.int16",
    np.dtype(np.int32): "torch.int32",
    np.dtype(np.int64): "torch.int64",
    np.dtype(np.uint8): "torch.uint8",
    np.dtype(np.bool_): "torch.bool",
}

# torch omits the dtype suffix for these (default float dtype, int64, bool).
_DEFAULT_DTYPES = (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_))


class _Formatter:
    """Chooses one width/notation for every element, as torch does per tensor."""

    def __init__(self, values: np.ndarray) -> None:
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)

        if not self.floating:
            for value in flat.tolist():
                self.max_width = max(self.max_width, len(str(value)))
            return

        # Widen to float64 first: torch measures in double so float16 cannot
        # overflow, and Python's formatting of the double is what torch prints.
        wide = flat.astype(np.float64)
        nonzero_finite = wide[np.isfinite(wide) & (wide != 0)]
        if nonzero_finite.size == 0:
            return

        magnitudes = np.abs(nonzero_finite)
        lo = float(magnitudes.min())
        hi = float(magnitudes.max())
        self.int_mode = bool(np.all(nonzero_finite == np.ceil(nonzero_finite)))
        self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4

        items = nonzero_finite.tolist()
        if self.sci_mode:
            self.max_width = max(len(f"{v:.{PRECISION}e}") for v in items)
        elif self.int_mode:
            # +1 leaves room for the trailing '.' marking a float dtype.
            self.max_width = max(len(f"{v:.0f}") + 1 for v in items)
        else:
            self.max_width = max(len(f"{v:.{PRECISION}f}") for v in items)

    def format(self, value: float) -> str:
        if not self.floating:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:{self.max_width}.{PRECISION}e}"
        elif self.int_mode:
            text = f"{value:.0f}"
            if not (math.isinf(value) or math.isnan(value)):
                text += "."
        else:
            text = f"{value:.{PRECISION}f}"
        # Never truncates: nan/inf may be wider than max_width, torch keeps them.
        return " " * (self.max_width - len(text)) + text


def _summarized(values: np.ndarray) -> np.ndarray:
    """The elements torch actually displays when summarizing (edges only)."""
    if values.ndim == 0:
        return values
    if values.ndim == 1:
        if values.shape[0] > 2 * EDGEITEMS:
            return np.concatenate((values[:EDGEITEMS], values[-EDGEITEMS:]))
        return values
    if values.shape[0] > 2 * EDGEITEMS:
        rows = [*range(EDGEITEMS), *range(values.shape[0] - EDGEITEMS, values.shape[0])]
    else:
        rows = list(range(values.shape[0]))
    return np.stack([_summarized(values[i]) for i in rows])


def _vector_str(
    values: np.ndarray, indent: int, summarize: bool, fmt: _Formatter
) -> str:
    # Each element costs its width plus ", ".
    per_line = max(1, math.floor((LINEWIDTH - indent) / (fmt.max_width + 2)))
    if summarize and values.shape[0] > 2 * EDGEITEMS:
        data = (
            [fmt.format(v) for v in values[:EDGEITEMS].tolist()]
            + [" ..."]
            + [fmt.format(v) for v in values[-EDGEITEMS:].tolist()]
        )
    else:
        data = [fmt.format(v) for v in values.tolist()]
    lines = [", ".join(data[i : i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(
    values: np.ndarray, indent: int, summarize: bool, fmt: _Formatter
) -> str:
    ndim = values.ndim
    if ndim == 0:
        return fmt.format(values.item())
    if ndim == 1:
        return _vector_str(values, indent, summarize, fmt)
    count = values.shape[0]
    if summarize and count > 2 * EDGEITEMS:
        slices = (
            [
                _nested_str(values[i], indent + 1, summarize, fmt)
                for i in range(EDGEITEMS)
            ]
            + ["..."]
            + [
                _nested_str(values[i], indent + 1, summarize, fmt)
                for i in range(count - EDGEITEMS, count)
            ]
        )
    else:
        slices = [
            _nested_str(values[i], indent + 1, summarize, fmt) for i in range(count)
        ]
    # Deeper blocks are separated by (ndim - 1) newlines, i.e. blank lines for 3-d+.
    return "[" + ("," + "\n" * (ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def _data_str(values: np.ndarray, indent: int) -> str:
    if values.size == 0:
        return "[]"
    summarize = values.size > THRESHOLD
    fmt = _Formatter(_summarized(values) if summarize else values)
    return _nested_str(values, indent, summarize, fmt)


def _add_suffixes(text: str, suffixes: Sequence[str], indent: int) -> str:
    parts = [text]
    # torch's arithmetic counts 2 more than the real last-line length when the
    # text has no newline (rfind gives -1); kept so wrapping decisions agree.
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def format_tensor(array: np.ndarray, suffixes: tuple[str, ...] = ()) -> str:
    """Return torch's repr for a tensor holding `array`.

    `suffixes` are extra 'key=value' strings torch appends after size/dtype,
    e.g. ('requires_grad=True',) or ('grad_fn=<AddBackward0>',).
    """
    values = np.asarray(array)
    if values.dtype not in _DTYPE_NAMES:
        raise TypeError(f"unsupported dtype for printing: {values.dtype}")
    dtype_name = _DTYPE_NAMES[values.dtype]
    indent = len(_PREFIX)
    extra: list[str] = []
    if values.size == 0:
        # numpy-style: the shape is only implicit for 1-d empties.
        if values.ndim != 1:
            extra.append("size=" + str(tuple(values.shape)))
        # With no elements the kind cannot be inferred, so only float32 is implicit.
        if values.dtype != np.float32:
            extra.append("dtype=" + dtype_name)
        body = "[]"
    else:
        if values.dtype not in _DEFAULT_DTYPES:
            extra.append("dtype=" + dtype_name)
        body = _data_str(values, indent)
    return _add_suffixes(_PREFIX + body, [*extra, *suffixes], indent)
