"""The meta rules (what a client infers without a round trip) agree with what the engine computes."""

from __future__ import annotations

import numpy as np
import pytest
import remote_autograd.engine as E
from remote_autograd.engine.meta import RULES, SERVER_ONLY, Meta, ValueDependentError, infer
from remote_autograd.engine.ops import OPS
from remote_autograd.engine.tensor import Tensor, dispatch


def _meta(x):
    if isinstance(x, Tensor):
        return Meta(tuple(x.shape), x.detach().numpy().dtype, x.stride())
    return x


def _check(name, inputs, params):
    expected = dispatch(OPS[name], inputs, params)
    got = infer(name, tuple(_meta(x) for x in inputs), params)
    outs = expected if isinstance(expected, tuple) else (expected,)
    metas = got if isinstance(got, tuple) else (got,)
    assert len(outs) == len(metas)
    for t, m in zip(outs, metas):
        assert m.shape == tuple(t.shape), (name, params)
        assert m.dtype == t.detach().numpy().dtype, (name, params)
        if OPS[name].view and t.numel() > 1:
            # strides matter where sizes are > 1 (they decide later views)
            real = t.stride()
            for size, a, b in zip(t.shape, m.strides, real):
                if size > 1:
                    assert a == b, (name, params, m.strides, real)


rng = np.random.default_rng(0)


def T(*shape, dtype="float32"):
    if dtype == "bool":
        return E.tensor(rng.random(shape) > 0.5)
    if dtype == "int64":
        return E.tensor(rng.integers(0, 3, shape))
    return E.tensor(rng.standard_normal(shape).astype(dtype))


CASES = [
    ("add", (T(3, 4), T(4)), {}),
    ("add", (T(3, 1), T(1, 5, dtype="float64")), {}),
    ("add", (T(2), 2), {}),
    ("add", (T(2, dtype="int64"), 2.5), {}),
    ("add", (T(2, dtype="int64"), T(dtype="float64")), {}),
    ("sub", (T(2, 3), T(3)), {"alpha": 2}),
    ("mul", (T(2, dtype="bool"), T(2, dtype="bool")), {}),
    ("div", (T(3, dtype="int64"), T(3, dtype="int64")), {}),
    ("div", (T(3, dtype="int64"), 2), {"rounding_mode": "floor"}),
    ("rsub", (T(3),), {"other": 2}),
    ("pow", (T(3),), {"exponent": 2}),
    ("pow", (T(3, dtype="int64"),), {"exponent": 0.5}),
    ("pow_tensor", (T(3), T(2, 1)), {}),
    ("pow_scalar_base", (T(3),), {"base": 2.0}),
    ("reciprocal", (T(3, dtype="int64"),), {}),
    ("neg", (T(2),), {}),
    ("where", (T(3, dtype="bool"), T(2, 3), 0.0), {}),
    ("abs", (T(2),), {}),
    ("sign", (T(2),), {}),
    ("exp", (T(2, dtype="int64"),), {}),
    ("log", (T(2),), {}),
    ("sqrt", (T(2),), {}),
    ("sin", (T(2),), {}),
    ("cos", (T(2),), {}),
    ("tanh", (T(2),), {}),
    ("sigmoid", (T(2, dtype="float64"),), {}),
    ("relu", (T(2),), {}),
    ("clamp", (T(2),), {"min": 0.0}),
    ("eq", (T(2), T(2)), {}),
    ("lt", (T(2), 0), {}),
    ("isclose", (T(2), T(2)), {}),
    ("logical_not", (T(2, dtype="bool"),), {}),
    ("logical_and", (T(2, dtype="bool"), T(2, dtype="bool")), {}),
    ("all", (T(2, 3, dtype="bool"),), {}),
    ("any", (T(2, 3, dtype="bool"),), {"dim": 1, "keepdim": True}),
    ("argmax", (T(2, 3),), {"dim": 1}),
    ("argmax", (T(2, 3),), {}),
    ("sum", (T(2, 3),), {}),
    ("sum", (T(2, 3, dtype="bool"),), {}),
    ("sum_dim", (T(2, 3, 4),), {"dim": (0, 2), "keepdim": True}),
    ("mean", (T(2, 3),), {}),
    ("mean_dim", (T(2, 3),), {"dim": (-1,), "keepdim": False}),
    ("var", (T(2, 3),), {"dim": (1,), "correction": 1, "keepdim": False}),
    ("std", (T(4),), {"dim": None, "correction": 0, "keepdim": False}),
    ("max", (T(2, 3),), {}),
    ("max_dim", (T(2, 3),), {"dim": 1, "keepdim": False}),
    ("min_dim", (T(2, 3),), {"dim": 0, "keepdim": True}),
    ("maximum", (T(2, 3), T(3)), {}),
    ("prod", (T(3, dtype="int64"),), {}),
    ("prod_dim", (T(2, 3),), {"dim": 1, "keepdim": True}),
    ("norm", (T(2, 3),), {"ord": 2, "dim": None, "keepdim": False}),
    ("norm", (T(2, 3),), {"ord": 1, "dim": (1,), "keepdim": True}),
    ("mm", (T(2, 3), T(3, 4)), {}),
    ("bmm", (T(2, 3, 4), T(2, 4, 5)), {}),
    ("dot", (T(3), T(3)), {}),
    ("mv", (T(2, 3), T(3)), {}),
    ("t", (T(2, 3),), {}),
    ("transpose", (T(2, 3, 4),), {"dim0": 0, "dim1": 2}),
    ("permute", (T(2, 3, 4),), {"dims": (2, 0, 1)}),
    ("view", (T(2, 3, 4),), {"shape": (6, -1)}),
    ("_unsafe_view", (T(2, 3),), {"shape": (3, 2)}),
    ("squeeze", (T(1, 3, 1),), {}),
    ("squeeze_dim", (T(1, 3, 1),), {"dim": 2}),
    ("squeeze_dims", (T(1, 3, 1),), {"dim": (0, 2)}),
    ("unsqueeze", (T(2, 3),), {"dim": 1}),
    ("unsqueeze", (T(2, 3),), {"dim": -1}),
    ("expand", (T(3, 1),), {"shape": (2, 3, 4)}),
    ("clone", (T(2),), {}),
    ("to_dtype", (T(2),), {"dtype": E.float64}),
    ("cat", (T(2, 3), T(1, 3)), {"dim": 0}),
    ("stack", (T(2, 3), T(2, 3)), {"dim": 1}),
    ("unbind", (T(3, 2),), {"dim": 1}),
    ("select", (T(3, 4),), {"dim": 1, "index": -1}),
    ("slice", (T(5, 4),), {"dim": 0, "start": 1, "stop": None, "step": 2}),
    ("index", (T(4, 5), E.tensor([0, 2])), {"key": (("s", None, None, 1), ("t", 0))}),
    (
        "index",
        (T(4, 5, 6), E.tensor([[0], [1]]), E.tensor([1, 2])),
        {"key": (("t", 0), ("s", None, None, 1), ("t", 1))},
    ),
    ("softmax", (T(2, 3),), {"dim": 1}),
    ("log_softmax", (T(2, 3, dtype="float64"),), {"dim": 0}),
    ("mse_loss", (T(2, 3), T(2, 3)), {"reduction": "mean"}),
    ("mse_loss", (T(2, 3), T(2, 3)), {"reduction": "none"}),
    ("binary_cross_entropy_with_logits", (T(4), T(4)), {"reduction": "sum"}),
    ("nll_loss", (T(3, 4), E.tensor([0, 1, 3])), {"reduction": "none"}),
    ("erf", (T(2, 3),), {}),
    ("erf", (T(3, dtype="int64"),), {}),
    ("gelu", (T(2, 3, dtype="float64"),), {"approximate": "none"}),
    ("gelu", (T(2, 3),), {"approximate": "tanh"}),
    ("layer_norm", (T(2, 3, 4), T(3, 4), T(3, 4)), {"normalized_shape": (3, 4), "eps": 1e-5}),
    ("layer_norm", (T(2, 4, dtype="float64"), None, None), {"normalized_shape": (4,)}),
    ("embedding", (T(5, 3), E.tensor([[1, 0, 4], [2, 2, 3]])), {"padding_idx": -1}),
    ("embedding", (T(5, 3, dtype="float64"), E.tensor(2)), {"padding_idx": 2}),
    ("embedding", (T(5, 3), E.tensor([1, 0, 4]).int()), {"padding_idx": -1}),
    ("cumprod", (T(2, 3),), {"dim": 1, "dtype": None}),
    ("cumprod", (T(4, dtype="int64"),), {"dim": 0, "dtype": None}),
    ("cumprod", (T(2, 3),), {"dim": -1, "dtype": E.float64}),
    ("roll", (T(2, 3),), {"shifts": (1,), "dims": ()}),
    ("roll", (T(2, 3, 4),), {"shifts": (1, -2), "dims": (0, 2)}),
    ("constant_pad_nd", (T(2, 3),), {"pad": (1, 2), "value": 0}),
    ("constant_pad_nd", (T(2, 3, 4),), {"pad": (-1, 0, 2, -1, 1, 1), "value": 1.5}),
    ("constant_pad_nd", (T(2, 3, dtype="int64"),), {"pad": (-3, 0), "value": 0}),
]


@pytest.mark.parametrize("name,inputs,params", CASES, ids=[c[0] for c in CASES])
def test_meta_rule_matches_engine(name, inputs, params):
    _check(name, inputs, params)


def test_view_strides_after_transpose_decide_reshape():
    x = T(3, 4).t()
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.view(12)
    m = infer("t", (_meta(T(3, 4)),), {})
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        infer("view", (m,), {"shape": (12,)})


def test_a_mask_index_is_unknown_until_the_server_runs_it():
    with pytest.raises(ValueDependentError):
        infer("index", (_meta(T(3)), _meta(T(3, dtype="bool"))), {"key": (("t", 0),)})


def test_broadcast_mismatch_is_raised_with_the_engines_message():
    with pytest.raises(RuntimeError) as meta_err:
        infer("add", (_meta(T(2)), _meta(T(3))), {})
    with pytest.raises(RuntimeError) as engine_err:
        T(2) + T(3)
    assert str(meta_err.value) == str(engine_err.value)


def test_every_op_has_a_rule():
    assert set(OPS) - set(RULES) - SERVER_ONLY == set()


def test_layer_norm_shape_errors_are_the_engines():
    for shape in ((2,), (4, 3), ()):
        with pytest.raises(RuntimeError) as meta_err:
            infer("layer_norm", (_meta(T(2, 3)), None, None), {"normalized_shape": shape})
        with pytest.raises(RuntimeError) as engine_err:
            E.nn.functional.layer_norm(T(2, 3), shape)
        assert str(meta_err.value) == str(engine_err.value)


@pytest.mark.parametrize("pad", [(1,), (1, 1, 1, 1, 1, 1), (-2, -2), (4, -8)], ids=str)
def test_pad_errors_are_the_engines(pad):
    with pytest.raises(RuntimeError) as meta_err:
        infer("constant_pad_nd", (_meta(T(2, 3)),), {"pad": pad, "value": 0})
    with pytest.raises(RuntimeError) as engine_err:
        E.nn.functional.pad(T(2, 3), pad)
    assert str(meta_err.value) == str(engine_err.value)
