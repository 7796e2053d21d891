"""torch.device, and where a tensor may live: ``cpu``, and ``cuda`` where the backend computes on a GPU."""
from __future__ import annotations

_TYPES = ("cpu, cuda, ipu, xpu, mkldnn, opengl, opencl, ideep, hip, ve, fpga, maia, xla, lazy, vulkan, mps, "
          "meta, hpu, mtia, privateuseone")


class device:  # noqa: N801  (torch's name)
    """``t.device("cpu")``, ``t.device("cuda:0")``, ``t.device("cuda", 0)``: torch's parsing, repr and equality."""

    __slots__ = ("type", "index")

    def __init__(self, spec, index: int | None = None) -> None:
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if isinstance(spec, int) and not isinstance(spec, bool):
            self.type, self.index = "cuda", spec
            return
        if not isinstance(spec, str):
            raise TypeError(f"device() received an invalid combination of arguments - got ({type(spec).__name__})")
        kind, _, number = spec.partition(":")
        if kind not in ("cpu", "cuda", "meta", "mps", "xpu"):
            raise RuntimeError(f"Expected one of {_TYPES} device type at start of device string: {spec}")
        if number:
            if index is not None or not number.isdigit():
                raise RuntimeError(f"Invalid device string: '{spec}'")
            index = int(number)
        self.type, self.index = kind, index

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self):
        raise TypeError("devices are not pickled here")


CPU = device("cpu")
CUDA = device("cuda", 0)
NOT_COMPILED = "Torch not compiled with CUDA enabled"


def place(spec, cuda_available: bool) -> device | None:
    """The device a ``device=`` argument or ``.to(...)`` names, checked as torch checks it on a host
    that has CUDA or not (AssertionError where it has not); None for no device given."""
    if spec is None:
        return None
    d = device(spec)
    if d.type == "cuda":
        if not cuda_available:
            raise AssertionError(NOT_COMPILED)
        if d.index not in (None, 0):
            raise RuntimeError(f"CUDA error: invalid device ordinal (device {d.index} of 1)")
    elif d.type != "cpu":
        raise RuntimeError(f"{d.type} device is not offered by this server: only cpu"
                           + (" and cuda" if cuda_available else ""))
    return d


def is_device_spec(value) -> bool:
    """Whether a positional argument of ``.to(...)`` names a device (not a dtype or a tensor)."""
    return isinstance(value, (str, device)) or (isinstance(value, int) and not isinstance(value, bool))


class Cuda:
    """``t.cuda`` for a host whose backend is ``backend`` ("cupy": one GPU, as a session sees it)."""

    def __init__(self, backend) -> None:
        self._backend = backend  # a callable: the backend's name now

    def is_available(self) -> bool:
        return self._backend() == "cupy"

    def device_count(self) -> int:
        return 1 if self.is_available() else 0

    def current_device(self) -> int:
        if not self.is_available():
            raise AssertionError(NOT_COMPILED)
        return 0

    def synchronize(self, device=None) -> None:
        """Every queued computation has finished (the engine computes as it is called)."""


def _engine_backend() -> str:
    from .backend import BACKEND
    return BACKEND


cuda = Cuda(_engine_backend)
