"""Byte-for-byte comparison of engine.printing.format_tensor against torch's repr."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _load_printing() -> ModuleType:
    try:
        from remote_autograd.engine import printing
    except ImportError:
        # The package may not be installed yet; load the file straight from the repo.
        path = Path(__file__).resolve().parents[2] / "engine" / "printing.py"
        spec = importlib.util.spec_from_file_location("_engine_printing", path)
        assert spec is not None and spec.loader is not None
        printing = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(printing)
    return printing


format_tensor = _load_printing().format_tensor

NAN = float("nan")
INF = float("inf")


def _suffixes_of(t: torch.Tensor) -> tuple[str, ...]:
    if t.grad_fn is not None:
        return (f"grad_fn=<{type(t.grad_fn).__name__}>",)
    if t.requires_grad:
        return ("requires_grad=True",)
    return ()


def check(t: torch.Tensor) -> None:
    """Assert our text equals torch's for the oracle tensor's own values."""
    expected = repr(t)
    actual = format_tensor(t.detach().numpy(), _suffixes_of(t))
    assert actual == expected, f"\nours:\n{actual}\ntorch:\n{expected}"
    # str() and repr() are the same in torch; make sure that stays our assumption.
    assert str(t) == expected


def with_grad_fn(t: torch.Tensor) -> torch.Tensor:
    """Same values as `t`, but carrying grad_fn=<AddBackward0>."""
    leaf = torch.zeros_like(t, requires_grad=True)
    return leaf + t


# ---------------------------------------------------------------- fixed cases

FIXED: list[tuple[str, torch.Tensor]] = [
    # 0-d
    ("scalar_float", torch.tensor(3.0)),
    ("scalar_frac", torch.tensor(3.25)),
    ("scalar_neg", torch.tensor(-2.5)),
    ("scalar_zero", torch.tensor(0.0)),
    ("scalar_negzero", torch.tensor(-0.0)),
    ("scalar_nan", torch.tensor(NAN)),
    ("scalar_inf", torch.tensor(-INF)),
    ("scalar_sci_big", torch.tensor(1e10)),
    ("scalar_sci_small", torch.tensor(1.5e-7)),
    ("scalar_double", torch.tensor(3.0, dtype=torch.float64)),
    ("scalar_half", torch.tensor(0.1, dtype=torch.float16)),
    ("scalar_int", torch.tensor(7)),
    ("scalar_int32", torch.tensor(-7, dtype=torch.int32)),
    ("scalar_bool", torch.tensor(True)),
    ("scalar_uint8", torch.tensor(200, dtype=torch.uint8)),
    # empty
    ("empty_1d", torch.tensor([])),
    ("empty_2x0", torch.empty(2, 0)),
    ("empty_0x3", torch.empty(0, 3)),
    ("empty_3x0x2", torch.empty(3, 0, 2)),
    ("empty_int64", torch.tensor([], dtype=torch.int64)),
    ("empty_int64_2d", torch.empty(0, 4, dtype=torch.int64)),
    ("empty_double", torch.tensor([], dtype=torch.float64)),
    ("empty_bool", torch.tensor([], dtype=torch.bool)),
    ("empty_half", torch.empty(1, 0, dtype=torch.float16)),
    ("empty_uint8", torch.tensor([], dtype=torch.uint8)),
    # int mode / fixed / sci
    ("int_mode", torch.tensor([1.0, 2.0])),
    ("int_mode_neg", torch.tensor([-1.0, 20.0, 300.0])),
    ("int_mode_wide", torch.tensor([1.0, 1e8])),
    ("int_mode_sci", torch.tensor([1.0, 1e9])),
    ("int_mode_ratio_sci", torch.tensor([1.0, 1001.0])),
    ("int_mode_ratio_ok", torch.tensor([1.0, 1000.0])),
    ("fixed", torch.tensor([0.5, 1.25, -3.0])),
    ("fixed_round", torch.tensor([0.00015, 0.12345678, 0.99999])),
    ("sci_small", torch.tensor([1e-5, 1.0])),
    ("sci_ratio", torch.tensor([0.01, 10.5])),
    ("sci_huge", torch.tensor([1e30, -2.5e-30])),
    ("sci_boundary_min", torch.tensor([1e-4, 0.05])),
    # Exactly 1e-4 and 1e8 in double sit on the sci-mode thresholds (not sci).
    ("fixed_boundary_min64", torch.tensor([1e-4, 0.05], dtype=torch.float64)),
    ("fixed_boundary_max32", torch.tensor([1e8, 2e7 + 4.0])),
    ("fixed_boundary_max", torch.tensor([1e8, 2e7 + 0.5], dtype=torch.float64)),
    ("nan_inf", torch.tensor([NAN, INF, -INF, 1.5])),
    ("nan_inf_int", torch.tensor([NAN, INF, -INF, 1.0, 2.0])),
    ("nan_inf_sci", torch.tensor([NAN, INF, -INF, 1e-9, 2.0])),
    ("all_nan", torch.tensor([NAN, NAN])),
    ("all_inf", torch.tensor([INF, -INF])),
    ("zeros", torch.zeros(3)),
    ("negzero", torch.tensor([-0.0, 0.0, -0.0])),
    ("negzero_frac", torch.tensor([-0.0, 0.5])),
    ("negzero_sci", torch.tensor([-0.0, 1e-7])),
    ("negzero_int", torch.tensor([-0.0, 3.0])),
    ("zeros_nan", torch.tensor([0.0, NAN, -0.0])),
    ("subnormal32", torch.tensor([1e-40, 1.0])),
    ("subnormal64", torch.tensor([5e-324, 1e308], dtype=torch.float64)),
    ("double_big_int", torch.tensor([1e300, 3.0], dtype=torch.float64)),
    ("half_vals", torch.tensor([0.1, 65504.0, -1e-4, 3.0], dtype=torch.float16)),
    ("half_int", torch.tensor([1.0, 2.0, 2048.0], dtype=torch.float16)),
    ("float32_tenth", torch.tensor([0.1, 0.2, 0.3])),
    ("round_half", torch.tensor([0.00005, 0.00015, 0.00025], dtype=torch.float64)),
    # ints and bools
    ("ints", torch.tensor([1, -20, 300])),
    ("int_extremes", torch.tensor([2**63 - 1, -(2**63)])),
    ("int8", torch.tensor([-128, 0, 127], dtype=torch.int8)),
    ("int16", torch.arange(-5, 5, dtype=torch.int16)),
    ("int32_2d", torch.arange(12, dtype=torch.int32).reshape(3, 4)),
    ("uint8", torch.tensor([0, 5, 255], dtype=torch.uint8)),
    ("bools", torch.tensor([True, False, True])),
    ("bools_2d", torch.tensor([[True, False], [False, True]])),
    ("bool_long", torch.arange(40) % 3 == 0),
    # wrapping
    ("wrap_floats", torch.linspace(-1, 1, 37)),
    ("wrap_ints", torch.arange(100)),
    ("wrap_2d", torch.linspace(-5, 5, 60).reshape(3, 20)),
    ("wrap_sci", torch.logspace(-6, 6, 25)),
    ("one_per_line", torch.tensor([1e-30, 1.0, -1e30]).repeat(10)),
    # nesting
    ("nested_2d", torch.arange(6.0).reshape(2, 3)),
    ("nested_3d", torch.arange(24.0).reshape(2, 3, 4)),
    ("nested_4d", torch.arange(48).reshape(2, 2, 3, 4)),
    ("nested_5d", torch.arange(32.0).reshape(2, 2, 2, 2, 2) / 7),
    ("unit_dims", torch.ones(1, 1, 1)),
    ("column", torch.arange(5.0).reshape(5, 1)),
    # summarization
    ("sum_1000_no", torch.arange(1000.0)),
    ("sum_1001", torch.arange(1001.0)),
    ("sum_2000", torch.arange(2000.0)),
    ("sum_2000_int", torch.arange(2000)),
    ("sum_2000_bool", torch.arange(2000) % 2 == 0),
    ("sum_50x50", torch.arange(2500.0).reshape(50, 50) / 3),
    ("sum_3x400", torch.linspace(-1e-3, 5.0, 1200).reshape(3, 400)),
    ("sum_400x3", torch.linspace(-1, 1, 1200).reshape(400, 3)),
    ("sum_7x7x7x7", torch.arange(2401.0).reshape(7, 7, 7, 7)),
    ("sum_2x2x300", torch.arange(1200).reshape(2, 2, 300)),
    ("sum_1001x1", torch.arange(1001.0).reshape(1001, 1)),
    ("sum_1x1001", torch.arange(1001.0).reshape(1, 1001)),
    (
        "sum_hidden_big",
        torch.cat([torch.ones(3), torch.full((1000,), 1e20), torch.ones(3)]),
    ),
    ("sum_half", torch.linspace(0, 100, 1500).to(torch.float16)),
    ("sum_double", torch.linspace(0, 1, 1500, dtype=torch.float64)),
]


@pytest.mark.parametrize("t", [c[1] for c in FIXED], ids=[c[0] for c in FIXED])
def test_fixed(t: torch.Tensor) -> None:
    check(t)


# Only floating tensors can require grad, so only they get suffix variants.
FIXED_FLOAT = [c for c in FIXED if c[1].is_floating_point()]


@pytest.mark.parametrize(
    "t", [c[1] for c in FIXED_FLOAT], ids=[c[0] for c in FIXED_FLOAT]
)
def test_fixed_with_suffix(t: torch.Tensor) -> None:
    check(t.clone().requires_grad_(True))
    check(with_grad_fn(t))


def test_reduction_grad_fn() -> None:
    x = torch.tensor([5.0, 6.0], requires_grad=True)
    check(x.sum())
    assert repr(x.sum()) == "tensor(11., grad_fn=<SumBackward0>)"


def test_known_strings() -> None:
    # Anchor a few outputs literally, so a torch change is noticed, not absorbed.
    cases = {
        "tensor(3.)": np.array(3.0, dtype=np.float32),
        "tensor([])": np.zeros(0, dtype=np.float32),
        "tensor([], size=(2, 0))": np.zeros((2, 0), dtype=np.float32),
        "tensor([1., 2.])": np.array([1.0, 2.0], dtype=np.float32),
        "tensor(1.0000e+10)": np.array(1e10, dtype=np.float32),
        "tensor([1.0000e-05, 1.0000e+00])": np.array([1e-5, 1.0], dtype=np.float32),
        "tensor([1., 2.], dtype=torch.float64)": np.array([1.0, 2.0]),
    }
    for text, array in cases.items():
        assert format_tensor(array) == text
        assert repr(torch.from_numpy(array)) == text


def test_suffix_wrapping_near_linewidth() -> None:
    # Sweep lengths so the last data line lands on every column near 80,
    # exercising torch's off-by-two newline decision for suffixes.
    for n in range(1, 60):
        for scale in (1.0, 1.5, 1e-6, 123.25):
            t = torch.arange(n, dtype=torch.float32) * scale
            for dtype in (torch.float32, torch.float64, torch.float16):
                base = t.to(dtype)
                check(base)
                check(base.clone().requires_grad_(True))
                check(with_grad_fn(base))


def _named_op(name: str) -> type[torch.autograd.Function]:
    """An identity autograd op whose grad_fn is called `name` + 'Backward'."""
    return type(
        name,
        (torch.autograd.Function,),
        {
            "forward": staticmethod(lambda ctx, x: x.clone()),
            "backward": staticmethod(lambda ctx, grad: grad),
        },
    )


def test_long_grad_fn_and_dtype_suffixes() -> None:
    # Real torch oracles with two suffixes (dtype + grad_fn) of many lengths,
    # so the second suffix wraps at every possible column.
    for name_len in range(1, 75, 3):
        op = _named_op("A" * name_len)
        for n in (1, 3, 9, 13, 14, 30):
            for dtype in (torch.float32, torch.float64, torch.float16):
                leaf = torch.arange(n, dtype=dtype).requires_grad_(True)
                check(op.apply(leaf))
                check(op.apply(leaf.sum()))
        check(op.apply(torch.empty(2, 0, dtype=torch.float64, requires_grad=True)))


# ------------------------------------------------------------ property tests


@st.composite
def float_arrays(draw: st.DrawFn) -> np.ndarray:
    ndim = draw(st.integers(0, 4))
    max_side = {0: 1, 1: 1500, 2: 60, 3: 14, 4: 7}[ndim]
    shape = tuple(
        draw(st.lists(st.integers(0, max_side), min_size=ndim, max_size=ndim))
    )
    dtype = draw(st.sampled_from(["float32", "float64", "float16"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = 10.0 ** draw(st.floats(-8, 12))
    kind = draw(
        st.sampled_from(["normal", "uniform", "integral", "spread", "tiny_int"])
    )
    n = int(np.prod(shape, dtype=np.int64))
    if kind == "normal":
        values = rng.standard_normal(n) * scale
    elif kind == "uniform":
        values = rng.uniform(0, scale, n)
    elif kind == "integral":
        values = np.round(rng.standard_normal(n) * scale)
    elif kind == "spread":
        # Magnitudes spanning many decades force sci mode decisions.
        values = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-8, 12, n)
    else:
        values = rng.integers(-9, 10, n).astype(np.float64)
    special = draw(st.sampled_from(["none", "none", "nan", "inf", "negzero", "all"]))
    if n and special != "none":
        picks = {
            "nan": [NAN],
            "inf": [INF, -INF],
            "negzero": [-0.0, 0.0],
            "all": [NAN, INF, -INF, -0.0, 0.0],
        }[special]
        mask = rng.random(n) < draw(st.floats(0.0, 1.0))
        values[mask] = rng.choice(picks, int(mask.sum()))
    with np.errstate(over="ignore"):
        return values.astype(dtype).reshape(shape)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    array=float_arrays(), suffix=st.sampled_from(["none", "requires_grad", "grad_fn"])
)
def test_random_floats(array: np.ndarray, suffix: str) -> None:
    t = torch.from_numpy(array.copy())
    if suffix == "requires_grad":
        t.requires_grad_(True)
    elif suffix == "grad_fn":
        t = with_grad_fn(t)
    check(t)


@st.composite
def int_arrays(draw: st.DrawFn) -> np.ndarray:
    ndim = draw(st.integers(0, 4))
    max_side = {0: 1, 1: 1500, 2: 60, 3: 14, 4: 7}[ndim]
    shape = tuple(
        draw(st.lists(st.integers(0, max_side), min_size=ndim, max_size=ndim))
    )
    dtype = np.dtype(
        draw(st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "bool"]))
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype == np.bool_:
        # np.asarray: 0-d draws come back as numpy scalars, not arrays.
        return np.asarray(rng.random(shape) < 0.5)
    info = np.iinfo(dtype)
    magnitude = draw(st.integers(0, 63))
    hi = min(int(info.max), 2**magnitude)
    lo = max(int(info.min), -(2**magnitude))
    return np.asarray(rng.integers(lo, hi, shape, dtype=dtype, endpoint=True))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(array=int_arrays())
def test_random_ints_and_bools(array: np.ndarray) -> None:
    check(torch.from_numpy(array.copy()))


def test_non_contiguous_input() -> None:
    base = np.arange(24, dtype=np.float64).reshape(4, 6) / 7
    for view in (base.T, base[::2, ::-1], base[:, 1]):
        assert format_tensor(view) == repr(torch.from_numpy(np.ascontiguousarray(view)))
