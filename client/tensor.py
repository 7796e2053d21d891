"""The client's Tensor: a proxy of a server tensor with torch's whole Tensor API."""
from __future__ import annotations

import warnings

from .engine import dtypes
from .engine.checks import check_item, check_numpy, check_register_hook, check_retain_grad
from .engine.device import CPU, CUDA
from .engine.errors import NON_LEAF_GRAD
from .engine.meta import Meta
from .engine.methods import TensorMethods
from .engine.printing import format_tensor
from .engine.size import Size
from .engine.strides import is_contiguous, view_strides


class Tensor(TensorMethods):
    """Metadata lives here; values, history and gradients live on the server."""

    # _vc: the version counter, a one-element list shared with the tensor's views and detach()
    # aliases, as torch's is (client/mirror.py)
    # _base: the tensor a view was made from (None: not a view), as the engine's
    __slots__ = ("_session", "_id", "_shape", "_dtype", "_strides", "_requires_grad", "_grad_fn",
                 "_output_nr", "_vc", "_base", "__weakref__")

    # ------------------------------------------------------------ metadata (no round trip)
    @property
    def remote_id(self) -> int:
        """The id this tensor has in its session on the server: what the protocol's commands name
        it by (another language's client, a raw call, a watcher)."""
        return self._id

    @property
    def shape(self) -> Size:
        return Size(self._shape)

    @property
    def dtype(self) -> dtypes.dtype:
        return self._dtype

    @property
    def device(self):
        """Where the server computes this tensor: cuda on a CuPy server, else cpu."""
        return CUDA if self._session.backend == "cupy" else CPU

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self._session._set_requires_grad(self, bool(flag))

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self._session._set_requires_grad(self, bool(requires_grad), setter=False)
        return self

    @property
    def _version(self) -> int:
        """torch's ``_version``: how many in-place writes this tensor's storage has seen through it
        and its views (known here: every write is this client's)."""
        return self._vc[0]

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    @property
    def grad_fn(self):
        return self._grad_fn

    def _known_strides(self) -> tuple:
        return self._strides if self._strides is not None else self._session._resolve_strides(self)

    def stride(self, dim: int | None = None):
        if dim is None:
            return tuple(self._known_strides())
        return self._known_strides()[dim]

    def _meta(self) -> Meta:
        return Meta(self._shape, self._dtype.np, self._strides)

    def is_contiguous(self) -> bool:
        return is_contiguous(self._shape, self._known_strides())

    def _can_view(self, shape) -> bool:
        from .engine.ops import infer_shape
        return view_strides(self._shape, self._known_strides(), infer_shape(shape, self.numel())) is not None

    def _alias_view(self):
        return self._op("view", shape=self._shape)

    @property
    def _factories(self):
        return self._session

    def _as_tensor(self, value, index: bool = False) -> Tensor:
        return self._session.tensor(value)

    # ------------------------------------------------------------ autograd state (server side)
    @property
    def grad(self):
        g = self._session._get_grad(self)
        if g is None and self._grad_fn is not None and not self._session._retains(self):
            warnings.warn(NON_LEAF_GRAD, UserWarning, stacklevel=2)
        return g

    @grad.setter
    def grad(self, value) -> None:
        self._session._set_grad(self, value)

    @property
    def data(self) -> Tensor:
        return self._session._alias(self, "data")

    @data.setter
    def data(self, value: Tensor) -> None:
        # what ``w.data -= lr * w.grad`` ends with: the tensor takes the storage of ``value``
        self._session._set_data(self, value)

    def detach(self) -> Tensor:
        return self._session._alias(self, "detach")

    def detach_(self) -> Tensor:
        self._session._detach_inplace(self)
        return self

    @property
    def retains_grad(self) -> bool:
        return self._grad_fn is not None and self._session._retains(self)

    def retain_grad(self) -> None:
        check_retain_grad(self._requires_grad)
        self._session._retain_grad(self)

    def register_hook(self, hook):
        check_register_hook(self._requires_grad)
        return self._session._register_hook(self, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        self._session.autograd.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    # ------------------------------------------------------------ values (a round trip)
    def _value(self):
        return self._session._fetch(self)

    def item(self):
        check_item(self.numel())
        return self._value().reshape(()).item()

    def tolist(self):
        return self._value().tolist()

    def numpy(self, *, force: bool = False):
        check_numpy(self._requires_grad, force)
        return self._value()

    def __array__(self, dtype=None, copy=None):
        array = self._value()
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        if self._grad_fn is not None:
            suffix = (f"grad_fn=<{type(self._grad_fn).__name__}>",)
        elif self._requires_grad:
            suffix = ("requires_grad=True",)
        else:
            suffix = ()
        return format_tensor(self._value(), suffix)

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("remote tensors cannot be pickled; use .numpy() or .tolist() to take values out")

    # ------------------------------------------------------------ ops go to the session
    def _dispatch(self, op, inputs, params):
        return self._session._call(op, inputs, params)

    def _dispatch_inplace(self, op, inputs, params):
        return self._session._call_inplace(op, inputs, params)

    def __del__(self) -> None:
        session = getattr(self, "_session", None)
        if session is not None:
            session._releases.append(self._id)
