"""t.save and t.load without pickle: a zip of .npy arrays and a JSON index of the object around them.

The format ("remote-autograd/1"): ``index.json`` holds the saved object as JSON, each tensor replaced
by ``{"tensor": N, "requires_grad": bool}`` and each container tagged (``{"dict": [[key, value],
...], "ordered": bool}``, ``{"list": [...]}``, ``{"tuple": [...]}``); ``tensors/N.npy`` holds tensor
N's values (numpy's format, read with allow_pickle=False). Keys are strings or ints; values are
tensors, containers, numbers, strings, booleans and None. Anything else is refused on save, and a
file that is not of this format (a torch.save pickle among them) is refused on load.
"""
from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections import OrderedDict

import numpy

FORMAT = "remote-autograd/1"
INDEX = "index.json"


def save(t, obj, f) -> None:
    """Write ``obj`` to ``f`` (a path or a binary file); ``t`` is the namespace its tensors belong to."""
    arrays: list = []

    def encode(x):
        if isinstance(x, t.Tensor) or (hasattr(x, "grad_fn") and hasattr(x, "detach")):
            arrays.append(numpy.require(x.detach().numpy(), requirements="C"))  # (0-d stays 0-d)
            return {"tensor": len(arrays) - 1, "requires_grad": bool(x.requires_grad)}
        if x is None or isinstance(x, (bool, int, str)):
            return x
        if isinstance(x, float):
            return x if math.isfinite(x) else {"float": repr(x)}
        if isinstance(x, dict):
            for k in x:
                if not isinstance(k, (str, int)) or isinstance(k, bool):
                    raise TypeError(f"t.save: a dict key of type {type(k).__name__} cannot be saved (str or int)")
            return {"dict": [[k, encode(v)] for k, v in x.items()], "ordered": isinstance(x, OrderedDict)}
        if isinstance(x, list):
            return {"list": [encode(v) for v in x]}
        if isinstance(x, tuple):
            return {"tuple": [encode(v) for v in x]}
        raise TypeError(f"t.save: an object of type {type(x).__name__} cannot be saved: tensors, dicts, lists, "
                        "tuples, numbers, strings and None can (nothing is pickled)")

    index = {"format": FORMAT, "object": encode(obj)}
    with _Opened(f, "wb") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr(INDEX, json.dumps(index))
        for n, array in enumerate(arrays):
            buf = io.BytesIO()
            numpy.save(buf, array, allow_pickle=False)
            z.writestr(f"tensors/{n}.npy", buf.getvalue())


def load(t, f, map_location=None, weights_only=None, **kwargs):
    """Read what ``save`` wrote; its tensors are made in ``t`` (the engine, or a session)."""
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        t.ones(0).to(map_location)  # torch's errors for a device this namespace does not offer
    try:
        with _Opened(f, "rb") as src, zipfile.ZipFile(src) as z:
            names = set(z.namelist())
            if INDEX not in names:
                raise _not_ours(f, "it holds no index.json" + (" (a torch.save pickle: nothing is unpickled here)"
                                                              if any(n.endswith("data.pkl") for n in names) else ""))
            index = json.loads(z.read(INDEX))
            if not isinstance(index, dict) or index.get("format") != FORMAT:
                raise _not_ours(f, f"its format is {index.get('format') if isinstance(index, dict) else None!r}")
            cache: dict = {}

            def tensor(n: int, requires_grad: bool):
                name = f"tensors/{int(n)}.npy"
                if name not in names:
                    raise _not_ours(f, f"it names {name}, which it does not hold")
                array = numpy.load(io.BytesIO(z.read(name)), allow_pickle=False)
                out = t.from_numpy(numpy.array(array, copy=True))
                return out.requires_grad_() if requires_grad else out

            def decode(x):
                if x is None or isinstance(x, (bool, int, float, str)):
                    return x
                if isinstance(x, list) or not isinstance(x, dict):
                    raise _not_ours(f, "its index holds a value of no known form")
                if "tensor" in x:
                    key = int(x["tensor"])
                    if key not in cache:
                        cache[key] = tensor(key, bool(x.get("requires_grad")))
                    return cache[key]
                if "dict" in x:
                    items = [(k, decode(v)) for k, v in x["dict"]]
                    return OrderedDict(items) if x.get("ordered") else dict(items)
                if "list" in x:
                    return [decode(v) for v in x["list"]]
                if "tuple" in x:
                    return tuple(decode(v) for v in x["tuple"])
                if "float" in x:
                    return float(x["float"])
                raise _not_ours(f, "its index holds a value of no known form")
            return decode(index["object"])
    except zipfile.BadZipFile:
        raise _not_ours(f, "it is not a zip file") from None
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise _not_ours(f, f"it cannot be read ({e})") from None


def _not_ours(f, why: str) -> RuntimeError:
    name = f if isinstance(f, (str, os.PathLike)) else "the file"
    return RuntimeError(f"t.load: {name} is not a file t.save wrote ({FORMAT}): {why}")


class _Opened:
    """A path opened (and closed after), or a file object used as it is."""

    def __init__(self, f, mode: str) -> None:
        self._f, self._mode, self._own = f, mode, isinstance(f, (str, os.PathLike))

    def __enter__(self):
        self._file = open(self._f, self._mode) if self._own else self._f  # noqa: SIM115
        return self._file

    def __exit__(self, *exc) -> None:
        if self._own:
            self._file.close()
