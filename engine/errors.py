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


def legacy_name(dt: _dtype) -> str:
    """``FloatTensor``: torch's legacy tensor type name of a dtype."""
    return _LEGACY[dt.name]


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

NON_LEAF_REQUIRES_GRAD = (
    "you can only change requires_grad flags of leaf variables. If you want to use a computed "
    "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().")

# the setter, requires_grad_() and the factories' requires_grad= each word it their own way
INTEGER_REQUIRES_GRAD = "only Tensors of floating point and complex dtype can require gradients"
INTEGER_REQUIRES_GRAD_ = "only Tensors of floating point dtype can require gradients"
FACTORY_REQUIRES_GRAD = "Only Tensors of floating point and complex dtype can require gradients"

NON_LEAF_GRAD = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute "
    "won't be populated during autograd.backward(). If you indeed want the .grad field to be populated "
    "for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor "
    "by mistake, make sure you access the leaf Tensor instead. See github.com/pytorch/pytorch/pull/30531 "
    "for more information.")

CREATE_GRAPH_CYCLE = (
    "Using backward() with create_graph=True will create a reference cycle between the parameter and "
    "its gradient which can cause a memory leak. We recommend using autograd.grad when creating the "
    "graph to avoid this. If you have to use this function, make sure to reset the .grad fields of "
    "your parameters to None after use to break the cycle and avoid the leak.")

DETACH_VIEW_INPLACE = ("Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel "
                       "(DDP) for training, and gradient_as_bucket_view is set as True, gradients are views of DDP "
                       "buckets, and hence detach_() cannot be called on these gradients. To fix this error, please "
                       "refer to the Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution.")
LEAF_VIEW_INPLACE = "a view of a leaf Variable that requires grad is being used in an in-place operation."

# C++ type names torch uses in some messages (caffe2 TypeMeta names)
_CPP_NAME = {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int",
             "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
             "bool": "bool"}


def cpp_type_name(dt) -> str:
    """``long int``: the C++ name torch gives a (numpy or torch) dtype in some messages."""
    return _CPP_NAME[dt.name]


def grad_dtype_message(got: _dtype, want: _dtype) -> str:
    return (f"attempting to assign a gradient with dtype '{_CPP_NAME[got.name]}' to a tensor with grad_dtype "
            f"'{scalar_name(want)}'. The gradient must match the tensor's grad_dtype (defaults to the tensor's "
            "dtype). You can set the tensor's grad_dtype attribute with a specific dtype, or None to allow any "
            "dtype. Set grad_dtype with caution. Diverging the dtypes of a tensor and its gradient may break "
            "downstream systems that assume they match.")

COPY_CONSTRUCT = (
    "To copy construct from a tensor, it is recommended to use sourceTensor.detach().clone() or "
    "sourceTensor.detach().clone().requires_grad_(True), rather than torch.tensor(sourceTensor).")

NDARRAY_LIST = (
    "Creating a tensor from a list of numpy.ndarrays is extremely slow. Please consider converting the "
    "list to a single numpy.ndarray with numpy.array() before converting to a tensor.")
