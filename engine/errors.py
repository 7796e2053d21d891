"""Error texts shared by the engine, worded as torch words them."""
from __future__ import annotations

from .dtypes import dtype as _dtype

_LEGACY = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
           "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
           "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}

_SCALAR_NAME = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
                "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def legacy_type(dt: _dtype, shape) -> str:
    """torch's ``[torch.FloatTensor [3, 4]]`` spelling of a tensor in error messages."""
    return f"[torch.{_LEGACY[dt.name]} [{', '.join(str(d) for d in shape)}]]"


def scalar_name(dt: _dtype) -> str:
    return _SCALAR_NAME[dt.name]


SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")

LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."

ANOMALY_HINT = (" Hint: enable anomaly detection to find the operation that failed to compute "
                "its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")
