"""Factories and dtypes, each call made on the engine and on torch 2.13 side by side.

``same`` runs a function of the library on both and asserts equal outcomes: tensors by repr,
dtype, shape, requires_grad and is_leaf; errors by type and message; warnings by message. Random
factories are compared on everything but their values; their reproducibility under
``manual_seed`` and the isolation of a session's generator are checked on the engine itself.
"""
from __future__ import annotations

import contextvars
import re
import warnings

import numpy as np
import pytest
import remote_autograd.engine as E
import torch

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def describe(x):
    if isinstance(x, (E.Tensor, torch.Tensor)):
        return ("tensor", repr(x), str(x.dtype), str(x.shape), x.requires_grad, x.is_leaf)
    if isinstance(x, (list, tuple)) and type(x) in (list, tuple):
        return [describe(v) for v in x]
    if isinstance(x, (bool, int, float, str, type(None))):
        return (type(x).__name__, x)
    return _ADDRESS.sub("0x?", repr(x))


def outcome(fn, lib):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("returned", describe(fn(lib)))
        except Exception as e:  # noqa: BLE001  (the error is what is compared)
            result = ("raised", type(e).__name__, str(e))
    return result, [str(w.message).split(" (Triggered internally")[0] for w in caught]


def same(fn, raises: type | None = None):
    """Assert the engine and torch agree on ``fn``; both must return, or both raise ``raises``."""
    engine, on_torch = outcome(fn, E), outcome(fn, torch)
    assert engine == on_torch, f"\nengine: {engine}\ntorch:  {on_torch}"
    if raises is None:
        assert engine[0][0] == "returned", f"both raised: {engine[0]}"
    else:
        assert engine[0][:2] == ("raised", raises.__name__), engine[0]
    return engine


def case(expr: str):
    return lambda t: eval(expr, {"t": t, "np": np})


def meta(x):
    """A random tensor without its values."""
    return (str(x.dtype), str(x.shape), x.requires_grad, x.is_leaf)


# ====================================================================== tensor(): inference and copies

TENSOR_DATA = [
    "3", "3.5", "True", "-0.0", "[]", "[[]]", "[[], []]", "[[], [1]]", "[1, 2]", "[1., 2]", "[True, False]",
    "[True, 1]", "[True, 2.5]", "[[1, 2], [3., 4]]", "[[True], [0]]", "(1, 2)", "[(1, 2), (3, 4)]", "range(3)",
    "[range(2), range(2)]", "[[[1], [2]], [[3], [4]]]", "[t.tensor(1.), t.tensor(2.)]", "[t.tensor(1), 2]",
    "[t.tensor(1, dtype=t.int32), 2]", "[t.tensor(1., dtype=t.float64), 2.]", "[1, t.tensor([2.5])]",
    "[[1, 2], t.tensor([3, 4])]", "[t.tensor([1]), t.tensor([2])]", "[np.float64(2.5)]", "[np.int32(3)]",
    "[1, np.float64(2.)]", "np.float64(2.5)", "np.array([1, 2], dtype=np.int32)", "np.ones((2, 2))",
    "np.array(3.5, dtype=np.float32)", "[np.array([1., 2.]), np.array([3., 4.])]", "[1e40]", "[-1e40, 1e-50]",
    "[2**63 - 1, -2**63]", "[float('nan'), float('inf')]", "[[1, 2.5], [True, 4]]", "[[0.5] * 40] * 30",
    "[list(range(50))] * 3", "[[True, False]] * 4", "[[1, 2], [3, True]]",
]


@pytest.mark.parametrize("data", TENSOR_DATA)
def test_tensor_infers_dtype(data):
    same(lambda t: t.tensor(eval(data, {"t": t, "np": np})))


TENSOR_WITH_DTYPE = [
    "[1, 2], dtype=t.float64", "[1.7, -2.7], dtype=t.int32", "[1, 2], dtype=t.bool", "[1.5, 0.], dtype=t.bool",
    "[[1, 2], [3, 4]], dtype=t.bool", "[1, 2], dtype=t.float16", "[-1, -255], dtype=t.uint8", "[1, 2], dtype=float",
    "[1., 2.], dtype=int", "[0, 1], dtype=bool", "[2.0**63], dtype=t.int64", "3, dtype=t.int8",
    "t.tensor([1, 2]), dtype=t.float32", "np.ones(2), dtype=t.float32", "[2**63], dtype=t.float32",
    "[[-1, 255], [0, 1]], dtype=t.uint8", "[[1, 2], [3, 4]], dtype=t.float16", "[[True, 2]], dtype=t.int16",
    "[2**70, 1], dtype=t.float64", "[1, 2**70, -2**70], dtype=t.bool",
]


@pytest.mark.parametrize("args", TENSOR_WITH_DTYPE)
def test_tensor_with_dtype(args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tensor(tensor) warns on both sides; compared elsewhere
        same(case(f"t.tensor({args})"))


TENSOR_ERRORS = {
    "ragged": ("[[1, 2], [3]]", ValueError), "ragged deep": ("[[[1], [2]], [[3], [4, 5]]]", ValueError),
    "longer later": ("[[1, 2], [3, 4, 5]]", ValueError), "scalar among lists": ("[[1, 2], 3]", TypeError),
    "list among scalars": ("[1, [2, 3]]", TypeError), "list among floats": ("[1., [2, 3]]", TypeError),
    "list among bools": ("[True, [True]]", TypeError), "tuple among ints": ("[1, (2,)]", TypeError),
    "tensor among ints": ("[1, t.tensor([2, 3])]", TypeError),
    "tensors of two": ("[t.tensor([1., 2.]), t.tensor([3., 4.])]", ValueError),
    "str": ("'a'", TypeError), "str in list": ("[1, 'a']", TypeError), "None": ("None", RuntimeError),
    "None in list": ("[1, None]", RuntimeError), "dict": ("{1: 2}", RuntimeError),
    "int overflow": ("2**63", ValueError), "int overflow in list": ("[1, 2**64]", ValueError),
    "bool and huge int": ("[True, 2**70]", ValueError),
}


@pytest.mark.parametrize("data, error", TENSOR_ERRORS.values(), ids=TENSOR_ERRORS.keys())
def test_tensor_errors(data, error):
    same(case(f"t.tensor({data})"), raises=error)


@pytest.mark.parametrize("value", [-256.5, -129.0, -128.5, -128.0, -1.0, -0.9, -0.0, 127.0, 127.4, 128.0, 255.0,
                                   255.5, 256.0, 2.0**63, -2.0**63, 1e30])
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "bool"])
def test_tensor_float_data_into_integer_dtype(value, dtype):
    def f(t):
        try:
            return t.tensor([value], dtype=getattr(t, dtype))
        except RuntimeError as e:
            return str(e)
    same(f)


@pytest.mark.parametrize("args, error", [
    ("['a'], dtype=t.float32", ValueError), ("[None], dtype=t.float32", TypeError),
    ("[200], dtype=t.int8", RuntimeError), ("[300], dtype=t.uint8", RuntimeError),
    ("[-256], dtype=t.uint8", RuntimeError), ("[float('nan')], dtype=t.int64", RuntimeError),
    ("[float('inf')], dtype=t.int32", RuntimeError), ("[1, [2]], dtype=t.bool", TypeError),
    ("[[1, 2], [3, 2**64]], dtype=t.int64", ValueError),
    ("[[1, 2], [3, 128]], dtype=t.int8", RuntimeError),
])
def test_tensor_errors_with_dtype(args, error):
    same(case(f"t.tensor({args})"), raises=error)


def test_tensor_requires_grad():
    same(lambda t: [t.tensor([1., 2.], requires_grad=True), t.tensor(3., dtype=t.float64, requires_grad=True),
                    t.tensor([1, 2], dtype=t.float16, requires_grad=True)])
    same(case("t.tensor([1, 2], requires_grad=True)"), raises=RuntimeError)


def test_tensor_copies_its_data():
    def f(t):
        src = t.tensor([1., 2.])
        array = np.array([3., 4.])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = t.tensor(src)
        b = t.tensor(array)
        src.add_(1)
        array[0] = 0
        return a, b, src
    same(f)


def test_tensor_of_a_tensor_warns_and_detaches():
    def f(t):
        src = t.tensor([1., 2.], requires_grad=True) * 2
        return t.tensor(src), t.tensor(src, requires_grad=True)
    (_, caught) = same(f)
    assert caught and caught[0].startswith("To copy construct from a tensor, it is recommended to use "
                                           "sourceTensor.detach().clone()")


# ====================================================================== Tensor(): the legacy constructor

@pytest.mark.parametrize("args", ["[1, 2]", "(1, 2)", "[[1, 2], [3, 4]]", "[True, False]", "[2.5]", "[]", "",
                                  "t.tensor([1, 2])", "t.tensor([1., 2.], dtype=t.float64)", "np.array([1, 2])"])
def test_legacy_tensor_from_data(args):
    same(case(f"t.Tensor({args})"))


@pytest.mark.parametrize("args", ["2, 3", "3", "0", "t.Size([2, 3])", "2, 0, 4"])
def test_legacy_tensor_of_a_shape(args):
    same(lambda t: meta(t.Tensor(*eval(f"({args},)", {"t": t}))))  # values are uninitialised in torch


@pytest.mark.parametrize("args, error", [("-1", RuntimeError), ("[1, 'a']", TypeError), ("2, 'a'", TypeError)])
def test_legacy_tensor_errors(args, error):
    same(case(f"t.Tensor({args})"), raises=error)


def test_legacy_tensor_is_not_tracked_and_shares_a_tensor_argument():
    def f(t):
        a = t.ones(2)
        b = t.Tensor(a)
        b.add_(1)
        return a, b, t.Tensor([1., 2.]).requires_grad, t.Tensor([1., 2.]).is_leaf
    same(f)


# ====================================================================== shaped factories

SHAPES = ["2, 3", "(2, 3)", "[2, 3]", "t.Size([2, 3])", "()", "[]", "0", "2, 0", "size=(2, 3)", "size=[4]",
          "np.int64(3)", "t.tensor(3)", "(t.tensor(2), 3)", "(2, True)"]


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
@pytest.mark.parametrize("shape", SHAPES)
def test_shape_arguments(name, shape):
    same(lambda t: meta(eval(f"t.{name}({shape})", {"t": t, "np": np})))


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
@pytest.mark.parametrize("shape, error", [("-1", RuntimeError), ("2, -1", RuntimeError), ("(2, -1)", RuntimeError),
                                          ("2.5", TypeError), ("True", TypeError), ("2, None", TypeError),
                                          ("[2, 2.0]", TypeError), ("'a'", TypeError), ("None", TypeError),
                                          ("(2.5,)", TypeError)])
def test_shape_argument_errors(name, shape, error):
    same(case(f"t.{name}({shape})"), raises=error)


@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_missing_shape(name):
    same(case(f"t.{name}()"), raises=TypeError)


@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
@pytest.mark.parametrize("dtype", ["t.float16", "t.float32", "t.float64", "t.int8", "t.int16", "t.int32", "t.int64",
                                   "t.uint8", "t.bool", "float", "int", "bool"])
def test_dtype_argument(name, dtype):
    same(lambda t: meta(eval(f"t.{name}(2, 3, dtype={dtype})", {"t": t})))
    if name != "empty":
        same(case(f"t.{name}(2, 3, dtype={dtype})"))


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
@pytest.mark.parametrize("dtype", ["t.float32", "t.float64", "t.float16"])
def test_requires_grad_argument(name, dtype):
    same(lambda t: meta(eval(f"t.{name}((2, 3), dtype={dtype}, requires_grad=True)", {"t": t})))


@pytest.mark.parametrize("call", ["t.zeros(2, dtype=t.int64, requires_grad=True)",
                                  "t.ones(2, dtype=t.bool, requires_grad=True)",
                                  "t.full((2,), 1, requires_grad=True)", "t.arange(5, requires_grad=True)",
                                  "t.randint(5, (3,), requires_grad=True)",
                                  "t.eye(2, dtype=t.int32, requires_grad=True)",
                                  "t.zeros_like(t.ones(2, dtype=t.int64), requires_grad=True)"])
def test_integer_factories_cannot_require_grad(call):
    same(case(call), raises=RuntimeError)


@pytest.mark.parametrize("call", ["t.rand(2, dtype=t.int64)", "t.randn(2, dtype=t.int32)",
                                  "t.rand_like(t.ones(2, dtype=t.int64))", "t.randn(2, dtype=t.bool)"])
def test_random_float_factories_reject_integer_dtypes(call):
    same(case(call), raises=NotImplementedError)


FULL = ["(2, 2), 3", "(2, 2), 3.", "(2, 2), True", "[2], 1, dtype=t.float32", "(2,), 1.5, requires_grad=True",
        "(), 2", "[], 2.", "(2,), t.tensor(1.5)", "(2,), 2.5, dtype=t.int64", "(2,), 1, dtype=t.bool",
        "t.Size([2, 1]), -1"]


@pytest.mark.parametrize("args", FULL)
def test_full(args):
    same(case(f"t.full({args})"))


@pytest.mark.parametrize("args, error", [("2, 1.", TypeError), ("(2.5,), 1.", TypeError), ("[2, None], 1", TypeError),
                                         ("True, 1.", TypeError), ("(-1,), 2.", RuntimeError)])
def test_full_errors(args, error):
    same(case(f"t.full({args})"), raises=error)


ARANGE = ["5", "1, 4", "0, 1, 0.25", "5.", "5, dtype=t.float64", "0, 3, dtype=t.float32, requires_grad=True",
          "-2, 4, dtype=t.float32, requires_grad=True", "5, 0, -1", "t.tensor(3)", "0, 10, 3", "1, 2.5, 0.5",
          "0.5, 3", "10, dtype=t.int32", "0, 5, 1.5", "0., 1., 0.3", "-1, -5, -1.5", "0, 0"]


@pytest.mark.parametrize("args", ARANGE)
def test_arange(args):
    same(case(f"t.arange({args})"))


@pytest.mark.parametrize("args", ["0, 5, 0", "5, 0", "0, 5, -1", "float('inf')", "0, float('nan')"])
def test_arange_errors(args):
    same(case(f"t.arange({args})"), raises=RuntimeError)


LINSPACE = ["0, 1, 5", "0, 1, 1", "0, 1, 0", "-1, 1, 4, dtype=t.float64", "0, 10, 5, dtype=t.int64",
            "0, 1, 3, requires_grad=True", "3, -3, 7"]


@pytest.mark.parametrize("args", LINSPACE)
def test_linspace(args):
    same(case(f"t.linspace({args})"))


def test_linspace_negative_steps():
    same(case("t.linspace(0, 1, -1)"), raises=RuntimeError)


@pytest.mark.parametrize("args", ["3", "2, 3", "3, 2", "2, dtype=t.int64", "2, requires_grad=True", "0",
                                  "2, 3, dtype=t.bool", "1, dtype=t.float64"])
def test_eye(args):
    same(case(f"t.eye({args})"))


@pytest.mark.parametrize("args", ["-1", "2, -1"])
def test_eye_errors(args):
    same(case(f"t.eye({args})"), raises=RuntimeError)


# ====================================================================== *_like

LIKE = ["t.zeros_like(t.ones(2, 3, dtype=t.int32))", "t.ones_like(t.ones(2), dtype=t.float64)",
        "t.full_like(t.ones(2), 7)", "t.full_like(t.ones(2, dtype=t.int64), 2.7)",
        "t.zeros_like(t.ones(2, requires_grad=True))", "t.ones_like(t.ones(2), requires_grad=True)",
        "t.zeros_like(t.ones(2), dtype=t.int64)", "t.full_like(t.ones(2), 1, requires_grad=True)",
        "t.ones_like(t.ones(2, 3) * t.ones(3, requires_grad=True))", "t.zeros_like(t.tensor(3.))"]


@pytest.mark.parametrize("call", LIKE)
def test_like(call):
    same(case(call))


@pytest.mark.parametrize("call", ["t.empty_like(t.ones(2, 3))", "t.empty_like(t.ones(2), dtype=t.int64)",
                                  "t.rand_like(t.ones(2, dtype=t.float64))", "t.randn_like(t.ones(2, 3))",
                                  "t.rand_like(t.ones(2), requires_grad=True)",
                                  "t.randn_like(t.ones(2), dtype=t.float16, requires_grad=True)"])
def test_random_and_empty_like(call):
    same(lambda t: meta(eval(call, {"t": t})))


# ====================================================================== randint

RANDINT = ["5, (3,)", "2, 5, (3,)", "5, (3,), dtype=t.float32", "5, size=(2,)", "low=1, high=5, size=(2,)",
           "3, 5, (2, 2), dtype=t.float32, requires_grad=True", "0, 5, [2, 2]", "-3, 3, t.Size([4])"]


@pytest.mark.parametrize("args", RANDINT)
def test_randint(args):
    same(lambda t: meta(eval(f"t.randint({args})", {"t": t})))


@pytest.mark.parametrize("args, error", [("5, 5, (3,)", RuntimeError), ("5, 2, (3,)", RuntimeError),
                                         ("5, (-1,)", RuntimeError), ("5, (2.5,)", TypeError), ("5, 3", TypeError),
                                         ("0, 5, (2, None)", TypeError)])
def test_randint_errors(args, error):
    same(case(f"t.randint({args})"), raises=error)


def test_random_value_ranges():
    E.manual_seed(3)
    u, n, i = E.rand(1000), E.randn(1000, dtype=E.float64), E.randint(-2, 3, (1000,))
    assert 0.0 <= u.min().item() and u.max().item() < 1.0
    assert abs(n.mean().item()) < 0.2 and 0.8 < n.std().item() < 1.2
    assert set(i.tolist()) == {-2, -1, 0, 1, 2}


# ====================================================================== manual_seed


def test_manual_seed_reproduces():
    def draw():
        return E.rand(3).tolist(), E.randn(2, 2).tolist(), E.randint(0, 100, (4,)).tolist(), E.randperm(5).tolist()

    E.manual_seed(1234)
    first = draw()
    E.manual_seed(1234)
    assert draw() == first
    E.manual_seed(1235)
    assert draw() != first


def test_manual_seed_accepts_torch_seeds():
    same(lambda t: t.manual_seed(-1) is not None)
    same(lambda t: t.manual_seed(2**64 - 1) is not None)
    same(lambda t: t.manual_seed(2**64), raises=ValueError)
    E.manual_seed(-1)
    a = E.rand(2).tolist()
    E.manual_seed(2**64 - 1)
    assert E.rand(2).tolist() == a  # torch keeps the seed as a uint64: -1 is 2**64 - 1


def test_manual_seed_is_per_context():
    """A session seeds and draws in its own contextvars context without moving another's stream."""
    E.manual_seed(7)
    expected = [E.rand(2).tolist() for _ in range(3)]
    E.manual_seed(7)
    got = [E.rand(2).tolist()]
    session = contextvars.copy_context()
    inner = session.run(lambda: (E.manual_seed(99), E.rand(2).tolist())[1])
    got.append(E.rand(2).tolist())
    assert session.run(lambda: E.rand(2).tolist()) != inner  # the session's own stream goes on
    got.append(E.rand(2).tolist())
    assert got == expected
    E.manual_seed(99)
    assert E.rand(2).tolist() == inner


def test_two_contexts_interleaved_each_reproduce_their_seed():
    def stream(seed):
        E.manual_seed(seed)
        return [E.randn(3).tolist() for _ in range(3)]

    alone = {seed: contextvars.copy_context().run(stream, seed) for seed in (1, 2)}
    contexts = {seed: contextvars.copy_context() for seed in (1, 2)}
    for seed, ctx in contexts.items():
        ctx.run(E.manual_seed, seed)
    drawn = {1: [], 2: []}
    for _ in range(3):
        for seed, ctx in contexts.items():
            drawn[seed].append(ctx.run(lambda: E.randn(3).tolist()))
    assert drawn == alone


# ====================================================================== dtypes


def test_dtype_objects():
    same(lambda t: [(repr(d), str(d), d.is_floating_point, d.itemsize)
                    for d in (t.float16, t.float32, t.float64, t.int8, t.int16, t.int32, t.int64, t.uint8, t.bool)])
    same(lambda t: (t.float is t.float32, t.double is t.float64, t.half is t.float16, t.long is t.int64,
                    t.int is t.int32, t.short is t.int16, t.float32 == t.float, t.float32 != t.float64))


@pytest.mark.parametrize("a", ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"])
def test_promote_types(a):
    same(lambda t: [t.promote_types(getattr(t, a), getattr(t, b)) for b in
                    ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")])


def test_dtype_of_results():
    same(lambda t: [t.ones(2).dtype, t.tensor([1, 2]).dtype, (t.ones(2) > 0).dtype, t.arange(3).dtype,
                    t.arange(3.).dtype, t.ones(2, dtype=t.float64).sum().dtype])
