"""Argument forms of F.* and Tensor methods a training program meets, against torch: values,
dtypes, grad_fn graphs, gradients (and float64 finite differences), and torch's errors."""
# ruff: noqa: N803  (T: the library under test, torch or the engine)
from __future__ import annotations

import warnings

import numpy as np
import pytest
import remote_autograd.engine as E
import torch
from oracle import check, gradcheck, gradgradcheck, raises_same

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

REDUCTIONS = ["mean", "sum", "none"]


def F(lib):  # noqa: N802  (torch.nn.functional as F)
    return lib.nn.functional


def _logits(rng, shape, dtype="float64"):
    return rng.standard_normal(shape).astype(dtype)


def _probs(rng, shape, class_dim, dtype="float64"):
    p = rng.random(shape) + 0.1
    return (p / p.sum(axis=class_dim, keepdims=True)).astype(dtype)


def _classes(rng, shape, n_classes, ignore=None):
    y = rng.integers(0, n_classes, shape)
    if ignore is not None and y.size > 1:
        y.reshape(-1)[1] = ignore
    return y


# (input shape, class dim): an unbatched input, a batch, and K-dimensional batches
SHAPES = [((4,), 0), ((3, 4), 1), ((2, 3, 4), 1), ((2, 3, 2, 3), 1), ((2, 3, 2, 1, 2), 1)]
SHAPE_IDS = ["1d", "2d", "3d", "4d", "5d"]


# ==================================================================== cross_entropy, class probabilities

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape,class_dim", SHAPES, ids=SHAPE_IDS)
def test_cross_entropy_probabilities(shape, class_dim, weighted, label_smoothing, reduction):
    """A float target of the input's shape: torch's prob-target composite (DivBackward1 over
    NegBackward0 for 'mean'), the target and a weight that requires grad both get gradients."""
    rng = np.random.default_rng(len(shape))
    n = shape[class_dim]
    x, p, w = _logits(rng, shape), _probs(rng, shape, class_dim), rng.random(n) + 0.5
    if weighted:
        def fn(T, a, b, c):
            return F(T).cross_entropy(a, b, weight=c, reduction=reduction, label_smoothing=label_smoothing)
        arrays = [x, p, w]
    else:
        def fn(T, a, b):
            return F(T).cross_entropy(a, b, reduction=reduction, label_smoothing=label_smoothing)
        arrays = [x, p]
    check(fn, arrays, graph_depth=6)
    check(fn, [a.astype("float32") for a in arrays], graph_depth=6)
    gradcheck(fn, arrays)


def test_cross_entropy_probabilities_mixed_dtypes_and_empty():
    rng = np.random.default_rng(1)
    x, p = _logits(rng, (3, 4), "float32"), _probs(rng, (3, 4), 1)
    # a float64 target: a float64 loss, from a float32 log_softmax
    check(lambda T, a, b: F(T).cross_entropy(a, b), [x, p], tol=(1e-4, 1e-5))
    check(lambda T, a, b, c: F(T).cross_entropy(a, b, weight=c), [x, p.astype("float32"), np.ones(4)],
          tol=(1e-4, 1e-5))
    # no samples: torch fills the 'mean' with nan (NegBackward0 over FillBackward2)
    check(lambda T, a, b: F(T).cross_entropy(a, b), [np.zeros((0, 4), "float32"), np.zeros((0, 4), "float32")])
    check(lambda T, a, b: F(T).cross_entropy(a, b, reduction="sum"),
          [np.zeros((0, 4), "float32"), np.zeros((0, 4), "float32")])
    # ignore_index below 0 is allowed with probabilities (it is not used)
    check(lambda T, a, b: F(T).cross_entropy(a, b, ignore_index=-1), [x, p.astype("float32")])


# ==================================================================== cross_entropy, class indices

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape,class_dim", SHAPES, ids=SHAPE_IDS)
def test_cross_entropy_indices(shape, class_dim, weighted, label_smoothing, reduction):
    """Class indices with weight=, label_smoothing and ignored targets, on unbatched and K-d
    inputs: NllLossBackward0 / NllLoss2DBackward0 (a view around it for 3-d and 5-d inputs),
    and AddBackward0 of two MulBackward1 with label smoothing."""
    rng = np.random.default_rng(len(shape) + 10)
    n = shape[class_dim]
    target_shape = shape[:class_dim] + shape[class_dim + 1:]
    x, w = _logits(rng, shape), rng.random(n) + 0.5
    for ignore in (-100, 2):
        y = _classes(rng, target_shape, n, ignore=ignore)
        kw = {"reduction": reduction, "label_smoothing": label_smoothing, "ignore_index": ignore}
        if weighted:
            def fn(T, a, b, c, kw=kw):
                return F(T).cross_entropy(a, b, weight=c, **kw)
            arrays, rg = [x, y, w], [True, False, False]
        else:
            def fn(T, a, b, kw=kw):
                return F(T).cross_entropy(a, b, **kw)
            arrays, rg = [x, y], [True, False]
        check(fn, arrays, requires_grad=rg, graph_depth=6)
        check(fn, [x.astype("float32")] + arrays[1:], requires_grad=rg, graph_depth=6)
        gradcheck(fn, arrays, diff=rg)


def test_cross_entropy_second_order():
    rng = np.random.default_rng(3)
    x, p, y, w = _logits(rng, (3, 4)), _probs(rng, (3, 4), 1), np.array([0, 3, 1]), rng.random(4) + 0.5
    gradgradcheck(lambda T, a, b: F(T).cross_entropy(a, b, label_smoothing=0.2), [x, p])
    gradgradcheck(lambda T, a, b, c: F(T).cross_entropy(a, b, weight=c, label_smoothing=0.2), [x, y, w],
                  diff=[True, False, False])
    gradgradcheck(lambda T, a, b: F(T).cross_entropy(a, b, reduction="none"), [_logits(rng, (2, 3, 2, 2)),
                                                                               rng.integers(0, 3, (2, 2, 2))],
                  diff=[True, False])


def test_cross_entropy_all_ignored_and_uint8_targets():
    rng = np.random.default_rng(4)
    x, w = _logits(rng, (3, 4), "float32"), (rng.random(4) + 0.5).astype("float32")
    ignored = np.full(3, -100)
    check(lambda T, a, b: F(T).cross_entropy(a, b, label_smoothing=0.1), [x, ignored], [True, False])
    check(lambda T, a, b, c: F(T).cross_entropy(a, b, weight=c, label_smoothing=0.1), [x, ignored, w],
          [True, False, False])
    check(lambda T, a, b, c: F(T).nll_loss(a, b, weight=c), [x, ignored, w], [True, False, False])
    check(lambda T, a, b: F(T).cross_entropy(a, b), [x, np.array([0, 3, 1], np.uint8)], [True, False])
    check(lambda T, a, b: F(T).cross_entropy(a, b, label_smoothing=True), [x, np.array([0, 3, 1])], [True, False])


# ==================================================================== nll_loss

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,class_dim", SHAPES, ids=SHAPE_IDS)
def test_nll_loss_weights_and_k_dims(shape, class_dim, reduction):
    rng = np.random.default_rng(len(shape) + 20)
    n = shape[class_dim]
    target_shape = shape[:class_dim] + shape[class_dim + 1:]
    x, w, y = _logits(rng, shape), rng.random(n) + 0.5, _classes(rng, target_shape, n, ignore=1)
    for ignore in (-100, 1):
        def fn(T, a, b, c, ignore=ignore):
            return F(T).nll_loss(a, b, weight=c, reduction=reduction, ignore_index=ignore)
        check(fn, [x, y, w], [True, False, False], graph_depth=4)
        check(fn, [x.astype("float32"), y, w.astype("float32")], [True, False, False], graph_depth=4)
        gradcheck(fn, [x, y, w], diff=[True, False, False])
        check(lambda T, a, b: F(T).nll_loss(a, b, reduction=reduction), [x, y], [True, False], graph_depth=4)


def test_nll_loss_k_dims_non_contiguous_and_empty():
    rng = np.random.default_rng(5)
    x = _logits(rng, (2, 2, 3, 3))
    y = rng.integers(0, 3, (2, 2, 2))
    # a permuted input: torch's contiguous() copy (CloneBackward0) before the view
    check(lambda T, a, b: F(T).nll_loss(a.permute(0, 3, 1, 2)[..., 0], b), [x, y], [True, False], graph_depth=5)
    check(lambda T, a, b: F(T).nll_loss(a, b), [np.zeros((0, 3, 4)), np.zeros((0, 4), np.int64)], [True, False])
    check(lambda T, a, b: F(T).nll_loss(a, b, reduction="none"), [np.zeros((0, 3, 4)),
                                                                   np.zeros((0, 4), np.int64)], [True, False])
    # (torch's own backward of this one raises a size mismatch: forward only)
    check(lambda T, a, b: F(T).nll_loss(a, b, reduction="none"), [_logits(rng, (4,)), np.array([2])],
          [True, False], backward=False)
    check(lambda T, a, b: F(T).nll_loss(a, b), [_logits(rng, (4,)), np.array([2])], [True, False], backward=False)


# ==================================================================== binary_cross_entropy_with_logits

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (4,), (3, 1), (3, 4)])
@pytest.mark.parametrize("pos_weight_shape", [None, (4,), (3, 4)])
def test_bce_with_logits_weights(pos_weight_shape, weight_shape, reduction):
    rng = np.random.default_rng(6)
    x, y = _logits(rng, (3, 4)), rng.random((3, 4))
    w = None if weight_shape is None else rng.random(weight_shape) + 0.5
    pw = None if pos_weight_shape is None else rng.random(pos_weight_shape) * 3

    def fn(T, a, b, c, d):
        return F(T).binary_cross_entropy_with_logits(a, b, weight=c, pos_weight=d, reduction=reduction)
    rg = [True, True, False, False]
    check(fn, [x, y, w, pw], rg)
    check(fn, [x.astype("float32"), y.astype("float32"), w, pw], rg)  # float64 weights: a float32 loss
    gradcheck(fn, [x, y, w, pw], diff=rg)
    gradgradcheck(fn, [x, y, w, pw], diff=rg)


# ==================================================================== reduction arguments

@pytest.mark.parametrize("loss", ["mse", "l1", "bce", "nll", "ce"])
def test_reduction_legacy_and_deprecated_names(loss):
    rng = np.random.default_rng(7)
    x, t, y = _logits(rng, (3, 4)), rng.random((3, 4)), np.array([0, 3, 1])
    fns = {
        "mse": (lambda T, a, **kw: F(T).mse_loss(a, T.tensor(t), **kw)),
        "l1": (lambda T, a, **kw: F(T).l1_loss(a, T.tensor(t), **kw)),
        "bce": (lambda T, a, **kw: F(T).binary_cross_entropy_with_logits(a, T.tensor(t), **kw)),
        "nll": (lambda T, a, **kw: F(T).nll_loss(a, T.tensor(y), **kw)),
        "ce": (lambda T, a, **kw: F(T).cross_entropy(a, T.tensor(y), **kw)),
    }
    fn = fns[loss]
    for kw in ({"size_average": False}, {"reduce": False}, {"size_average": True, "reduce": True},
               {"reduction": "elementwise_mean"}):
        check(lambda T, a, kw=kw: fn(T, a, **kw), [x])
        with warnings.catch_warnings(record=True) as t_warn:
            warnings.simplefilter("always")
            fn(torch, torch.tensor(x), **kw)
        with warnings.catch_warnings(record=True) as e_warn:
            warnings.simplefilter("always")
            fn(E, E.tensor(x), **kw)
        assert [str(w.message) for w in e_warn] == [str(w.message) for w in t_warn]
    raises_same(lambda T, a: fn(T, a, reduction="average"), x)


# ==================================================================== errors

_x23 = np.ones((2, 3), "float32")
ERRORS = {
    "ce_prob_int_target": (lambda T, a, b: F(T).cross_entropy(a, b), [_x23, np.zeros((2, 3), np.int64)]),
    "ce_prob_0d": (lambda T, a, b: F(T).cross_entropy(a, b), [np.float32(1.0), np.int64(0)]),
    "ce_prob_0d_float": (lambda T, a, b: F(T).cross_entropy(a, b), [np.float32(1.0), np.float32(0.5)]),
    "ce_prob_ignore_index": (lambda T, a, b: F(T).cross_entropy(a, b, ignore_index=1), [_x23, _x23 / 3]),
    "ce_prob_smoothing_too_big": (lambda T, a, b: F(T).cross_entropy(a, b, label_smoothing=1.5), [_x23, _x23 / 3]),
    "ce_prob_weight_shape": (lambda T, a, b: F(T).cross_entropy(a, b, weight=T.ones(2)), [_x23, _x23 / 3]),
    "ce_prob_batch": (lambda T, a, b: F(T).cross_entropy(a, b), [_x23, np.ones((1, 3), "float32")]),
    "ce_smoothing_too_big": (lambda T, a, b: F(T).cross_entropy(a, b, label_smoothing=2.0),
                             [_x23, np.array([0, 1])]),
    "ce_smoothing_weight_shape": (lambda T, a, b: F(T).cross_entropy(a, b, weight=T.ones(2), label_smoothing=0.1),
                                  [_x23, np.array([0, 1])]),
    "ce_smoothing_target_range": (lambda T, a, b: F(T).cross_entropy(a, b, label_smoothing=0.1),
                                  [_x23, np.array([0, 7])]),
    "ce_float_target_shape": (lambda T, a, b: F(T).cross_entropy(a, b), [_x23, np.zeros(2, "float32")]),
    "ce_weight_dtype": (lambda T, a, b: F(T).cross_entropy(a, b, weight=T.ones(3, dtype=T.float64)),
                        [_x23, np.array([0, 1])]),
    "ce_int_input": (lambda T, a, b: F(T).cross_entropy(a, b), [np.ones((2, 3), np.int64), np.array([0, 1])]),
    "ce_4d_target_shape": (lambda T, a, b: F(T).cross_entropy(a, b),
                           [np.ones((2, 3, 4, 5), "float32"), np.zeros((2, 2, 5), np.int64)]),
    "nll_0d": (lambda T, a, b: F(T).nll_loss(a, b), [np.float32(1.0), np.array([0])]),
    "nll_1d_target_size": (lambda T, a, b: F(T).nll_loss(a, b), [np.ones(3, "float32"), np.array([0, 1])]),
    "nll_0d_target": (lambda T, a, b: F(T).nll_loss(a, b), [_x23, np.int64(0)]),
    "nll_2d_target": (lambda T, a, b: F(T).nll_loss(a, b), [_x23, np.zeros((2, 1), np.int64)]),
    "nll_int32_target": (lambda T, a, b: F(T).nll_loss(a, b), [_x23, np.zeros(2, np.int32)]),
    "nll_weight_shape": (lambda T, a, b: F(T).nll_loss(a, b, weight=T.ones(2, 2)), [_x23, np.array([0, 1])]),
    "nll_weight_int": (lambda T, a, b: F(T).nll_loss(a, b, weight=T.ones(3, dtype=T.int64)),
                       [_x23, np.array([0, 1])]),
    "nll_target_dtype_before_weight": (lambda T, a, b: F(T).nll_loss(a, b, weight=T.ones(2)),
                                       [_x23, np.zeros(2, "float32")]),
    "nll_target_first_bad": (lambda T, a, b: F(T).nll_loss(a, b), [_x23, np.array([-3, 9])]),
    "nll_int_input": (lambda T, a, b: F(T).nll_loss(a, b), [np.ones((2, 3), np.int64), np.array([0, 1])]),
    "nll_4d_int_input": (lambda T, a, b: F(T).nll_loss(a, b), [np.ones((2, 3, 1, 1), np.int64),
                                                               np.zeros((2, 1, 1), np.int64)]),
    "nll_4d_target_dims": (lambda T, a, b: F(T).nll_loss(a, b), [np.ones((2, 3, 4, 5), "float32"),
                                                                 np.zeros((2, 4, 5, 1), np.int64)]),
    "nll_4d_weight": (lambda T, a, b: F(T).nll_loss(a, b, weight=T.ones(2)), [np.ones((2, 3, 4, 5), "float32"),
                                                                            np.zeros((2, 4, 4), np.int64)]),
    "nll_4d_size": (lambda T, a, b: F(T).nll_loss(a, b), [np.ones((2, 3, 4, 5), "float32"),
                                                          np.zeros((2, 4, 4), np.int64)]),
    "nll_4d_target_range": (lambda T, a, b: F(T).nll_loss(a, b), [np.ones((2, 3, 1, 2), "float32"),
                                                                  np.array([[[0, 5]], [[1, 1]]])]),
    "nll_3d_target_size": (lambda T, a, b: F(T).nll_loss(a, b), [np.ones((2, 3, 4), "float32"),
                                                                 np.zeros((2, 5), np.int64)]),
    "nll_5d_target_size": (lambda T, a, b: F(T).nll_loss(a, b), [np.ones((2, 3, 4, 1, 1), "float32"),
                                                                 np.zeros((2, 4, 1), np.int64)]),
    "bce_weight_shape": (lambda T, a, b: F(T).binary_cross_entropy_with_logits(a, b, weight=T.ones(2)),
                         [_x23, _x23 / 2]),
    "bce_pos_weight_shape": (lambda T, a, b: F(T).binary_cross_entropy_with_logits(a, b, pos_weight=T.ones(2)),
                             [_x23, _x23 / 2]),
    "bce_weight_broadcast_bigger": (lambda T, a, b: F(T).binary_cross_entropy_with_logits(
        a, b, weight=T.ones(2, 2, 3), reduction="none"), [_x23, _x23 / 2]),
    "bce_pos_weight_broadcast_bigger": (lambda T, a, b: F(T).binary_cross_entropy_with_logits(
        a, b, pos_weight=T.ones(2, 2, 3)), [_x23, _x23 / 2]),
}


@pytest.mark.parametrize("name", ERRORS)
def test_errors(name):
    fn, arrays = ERRORS[name]
    raises_same(fn, *arrays)


@pytest.mark.parametrize("call", [
    lambda T, x, w: F(T).nll_loss(x, T.tensor([0, 1]), weight=w),
    lambda T, x, w: F(T).nll_loss(x.reshape(2, 3, 1, 1), T.tensor([0, 1]).reshape(2, 1, 1), weight=w),
    lambda T, x, w: F(T).cross_entropy(x, T.tensor([0, 1]), weight=w),
    lambda T, x, w: F(T).cross_entropy(x, T.tensor([0, 1]), weight=w, label_smoothing=0.1),
    lambda T, x, w: F(T).binary_cross_entropy_with_logits(x, x.detach(), weight=w),
    lambda T, x, w: F(T).binary_cross_entropy_with_logits(x, x.detach(), pos_weight=w),
], ids=["nll", "nll2d", "ce", "ce_smoothing", "bce_weight", "bce_pos_weight"])
def test_weights_that_require_grad(call):
    """torch refuses class weights that require grad where it has no derivative for them (and
    takes them under no_grad); cross_entropy with probabilities differentiates them."""
    def run(T):
        x = T.ones(2, 3, requires_grad=True)
        w = T.ones(3, requires_grad=True)
        return call(T, x, w)
    raises_same(lambda T: run(T))
    for T in (torch, E):
        with T.no_grad():
            assert run(T).requires_grad is False


# ==================================================================== the sweep: forms of other calls

def _x(rng, *shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("form", [
    lambda T, x: x.sum(dim=None), lambda T, x: x.sum(None, True), lambda T, x: T.sum(x, None),
    lambda T, x: x.sum(dim=None, keepdim=True, dtype=T.float64), lambda T, x: x.mean(dim=None),
    lambda T, x: x.mean(None, True), lambda T, x: x.mean(dim=None, keepdim=True, dtype=T.float64),
    lambda T, x: x.mean(dim=(0, -1), keepdim=True), lambda T, x: T.mean(x, [1]),
    lambda T, x: x.std(dim=None, keepdim=True), lambda T, x: x.var(dim=(0, 2), correction=0, keepdim=True),
    lambda T, x: x.std(1, False, True),
], ids=["sum_none", "sum_none_keepdim", "torch_sum_none", "sum_none_dtype", "mean_none", "mean_none_keepdim",
        "mean_none_dtype", "mean_tuple_keepdim", "torch_mean_list", "std_none_keepdim", "var_correction",
        "std_positional"])
def test_reductions_with_dim_none_and_tuples(form):
    """A dim given as None is torch's dim overload (SumBackward1, MeanBackward1) over every dim,
    keepdim honoured; not the no-dim overload (SumBackward0)."""
    rng = np.random.default_rng(8)
    check(form, [_x(rng, 2, 3, 4).astype("float32")])
    gradcheck(form, [_x(rng, 2, 3, 4)])


@pytest.mark.parametrize("form", [
    lambda T, x: x.softmax(-1, dtype=T.float64), lambda T, x: x.log_softmax(dim=1, dtype=T.float64),
    lambda T, x: T.softmax(x, 1, dtype=T.float64), lambda T, x: T.log_softmax(x, 0, T.float64),
    lambda T, x: F(T).softmax(x, 1, 3, T.float64), lambda T, x: F(T).log_softmax(x, -1, _stacklevel=5),
    lambda T, x: x.softmax(1, dtype=x.dtype), lambda T, x: x.permute(dims=(2, 0, 1)),
    lambda T, x: x.permute([1, 2, 0]),
], ids=["softmax_dtype", "log_softmax_dtype", "torch_softmax_dtype", "torch_log_softmax_dtype",
        "F_softmax_positional_stacklevel", "F_log_softmax_stacklevel", "softmax_same_dtype", "permute_dims_kw",
        "permute_list"])
def test_softmax_dtype_and_permute_forms(form):
    rng = np.random.default_rng(9)
    check(form, [_x(rng, 2, 3, 4).astype("float32")], graph_depth=2)
    gradcheck(form, [_x(rng, 2, 3, 4)])


@pytest.mark.parametrize("name,shape", [("softmax", (2, 3, 4)), ("softmax", (4,)), ("log_softmax", (3, 4)),
                                        ("log_softmax", (2, 2, 3, 4)), ("softmax", ())])
def test_softmax_without_dim_warns_and_picks_torchs_dim(name, shape):
    rng = np.random.default_rng(10)
    x = _x(rng, *shape).astype("float32")
    check(lambda T, a: getattr(F(T), name)(a), [x])
    messages = []
    for T in (torch, E):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            getattr(F(T), name)(T.tensor(x))
        messages.append([(w.category, str(w.message)) for w in caught])
    assert messages[0] == messages[1]


@pytest.mark.parametrize("form", [
    lambda T, x: T.where(x > 0), lambda T, x: (x > 0).nonzero(), lambda T, x: x.nonzero(as_tuple=True),
    lambda T, x: T.nonzero(x > 0.5), lambda T, x: T.where(x > 10), lambda T, x: T.where(x.sum() > 0),
    lambda T, x: (x.sum() > 0).nonzero(), lambda T, x: x[T.where(x > 0)],
], ids=["where_cond", "nonzero", "nonzero_as_tuple", "torch_nonzero", "where_none_true", "where_0d",
        "nonzero_0d", "index_with_where"])
def test_where_with_one_argument_and_nonzero(form):
    """torch.where(cond) is cond.nonzero(as_tuple=True): int64 index tensors whose count depends
    on values; nonzero's (count, ndim) result is column-major, as torch's CPU kernel lays it out."""
    rng = np.random.default_rng(11)
    x = _x(rng, 3, 4)
    t_out, e_out = check(form, [x])
    for t, e in zip(t_out if isinstance(t_out, tuple) else [t_out], e_out if isinstance(e_out, tuple) else [e_out]):
        assert e.is_contiguous() == t.is_contiguous()


CLAMPS = {
    "min_tensor": (lambda T, x, lo, hi: x.clamp(min=lo), (4,), None),
    "max_tensor": (lambda T, x, lo, hi: T.clamp(x, max=hi), None, (3, 1)),
    "both_tensors": (lambda T, x, lo, hi: x.clamp(lo, hi), (4,), (3, 1)),
    "both_crossing": (lambda T, x, lo, hi: T.clamp(x, hi, lo), (4,), (3, 1)),  # min > max in places
    "broadcast_up": (lambda T, x, lo, hi: x.clip(min=lo), (2, 3, 4), None),
    "clamp_min_tensor": (lambda T, x, lo, hi: x.clamp_min(lo), (3, 4), None),
    "clamp_max_tensor": (lambda T, x, lo, hi: T.clamp_max(x, hi), None, (4,)),
    "clamp_min_scalar": (lambda T, x, lo, hi: x.clamp_min(0.1), None, None),
    "clamp_max_scalar": (lambda T, x, lo, hi: T.clamp_max(x, -0.2), None, None),
    "torch_clamp_min": (lambda T, x, lo, hi: T.clamp_min(x, 0.3), None, None),
    "clamp_inplace_tensor": (lambda T, x, lo, hi: (x * 1).clamp_(min=lo, max=hi), (4,), (3, 1)),
    "clamp_min_inplace": (lambda T, x, lo, hi: (x * 1).clamp_min_(lo), (4,), None),
    "clamp_max_inplace_scalar": (lambda T, x, lo, hi: (x * 1).clamp_max_(0.2), None, None),
    "clamp_0d_tensor": (lambda T, x, lo, hi: x.clamp(min=lo), (), None),
}


@pytest.mark.parametrize("name", CLAMPS)
def test_clamp_with_tensor_bounds_and_clamp_min_max(name):
    """clamp(min=Tensor, max=Tensor) is torch's clamp.Tensor (ClampBackward0: the bounds get
    gradients too); clamp_min/clamp_max are ClampMin/MaxBackward0 (a number) or 1 (a tensor)."""
    form, lo_shape, hi_shape = CLAMPS[name]
    rng = np.random.default_rng(12)
    x = _x(rng, 3, 4)
    lo = None if lo_shape is None else rng.standard_normal(lo_shape) * 0.5 - 0.3
    hi = None if hi_shape is None else rng.standard_normal(hi_shape) * 0.5 + 0.3
    check(form, [x, lo, hi])
    check(form, [x.astype("float32"), lo, hi])  # a float64 bound: a float64 result
    gradcheck(form, [x, lo, hi])
    gradgradcheck(form, [x, lo, hi])


@pytest.mark.parametrize("form", [
    lambda T, x: F(T).silu(x * 1, inplace=True), lambda T, x: F(T).leaky_relu(x * 1, 0.2, True),
    lambda T, x: F(T).elu(x * 1, alpha=0.7, inplace=True), lambda T, x: F(T).leaky_relu(x * 1, inplace=True),
], ids=["silu", "leaky_relu", "elu", "leaky_relu_default_slope"])
def test_activations_in_place(form):
    """F.silu/leaky_relu/elu(inplace=True): SiluBackward0, LeakyReluBackward1 and EluBackward1
    (the last two read the result)."""
    rng = np.random.default_rng(13)
    check(form, [_x(rng, 3, 4)])
    gradcheck(form, [_x(rng, 3, 4)])


@pytest.mark.parametrize("name", ["silu", "leaky_relu", "elu"])
def test_activations_in_place_on_a_leaf_are_refused(name):
    raises_same(lambda T: getattr(F(T), name)(T.ones(2, requires_grad=True), inplace=True))


SWEEP_ERRORS = {
    "clamp_tensor_shape": lambda T: T.ones(3, 4).clamp(T.zeros(5)),
    "clamp_inplace_bigger": lambda T: T.ones(3, 4).clamp_(min=T.zeros(2, 3, 4)),
    "clamp_none": lambda T: T.ones(3).clamp(min=None, max=None),
    "clamp_min_tensor_shape": lambda T: T.ones(3, 4).clamp_min(T.zeros(3)),
    "permute_dims_count": lambda T: T.ones(2, 3).permute(dims=(0,)),
}


@pytest.mark.parametrize("name", SWEEP_ERRORS)
def test_sweep_errors(name):
    raises_same(lambda T: SWEEP_ERRORS[name](T))


def test_clamp_mixing_a_tensor_and_a_number_is_a_type_error():
    for T in (torch, E):
        with pytest.raises(TypeError, match="clamp\\(\\) received an invalid combination of arguments"):
            T.ones(3).clamp(min=T.zeros(3), max=0.5)


@pytest.mark.parametrize("call", [
    lambda T, x: x.sum((0, 0)), lambda T, x: x.mean((1, -1)), lambda T, x: x.amax((0, 0)),
    lambda T, x: x.amin(dim=(1, 1)), lambda T, x: x.std((0, -2)), lambda T, x: x.var((1, 1), correction=0),
    lambda T, x: x.logsumexp((0, 0)), lambda T, x: x.norm(dim=(0, 0)), lambda T, x: (x > 0).all((1, 1)),
    lambda T, x: (x > 0).any((0, -2)), lambda T, x: T.tensor(1.0).sum((0, -1)),
], ids=["sum", "mean", "amax", "amin", "std", "var", "logsumexp", "norm", "all", "any", "sum_0d"])
def test_a_dim_named_twice_is_torchs_error(call):
    raises_same(call, np.ones((2, 3), "float32"))


@pytest.mark.parametrize("call", [
    lambda T, x: x.maximum(0.0), lambda T, x: T.maximum(x, 0.0), lambda T, x: T.minimum(x, 1),
    lambda T, x: x.minimum([1.0, 2.0, 3.0]),
], ids=["method_float", "torch_float", "torch_int", "method_list"])
def test_maximum_minimum_take_only_tensors(call):
    raises_same(call, np.ones((2, 3), "float32"))


@pytest.mark.parametrize("form", [
    lambda T, x: x.round(decimals=2), lambda T, x: T.round(x * 10, decimals=-1),
    lambda T, x: (x * 1).round_(decimals=1), lambda T, x: x.round(decimals=0), lambda T, x: (x * 1).round_(),
], ids=["decimals", "negative_decimals", "in_place", "decimals_zero", "in_place_plain"])
def test_round_with_decimals(form):
    """round(decimals=) is torch's round.decimals (RoundBackward1, zero gradient)."""
    rng = np.random.default_rng(14)
    for dtype in ("float32", "float64"):
        check(form, [(rng.standard_normal((3, 4)) * 3).astype(dtype)])
    raises_same(lambda T: T.tensor([1, 25, 35]).round(decimals=-1))


@pytest.mark.parametrize("method", ["abs_", "sqrt_", "rsqrt_", "tanh_", "log_", "log1p_", "expm1_", "reciprocal_",
                                    "sin_", "cos_", "floor_", "ceil_", "trunc_", "square_"])
def test_pointwise_methods_in_place(method):
    rng = np.random.default_rng(15)
    x = np.abs(rng.standard_normal((3, 4))) + 0.5

    def form(T, a):
        return getattr(a * 1, method)()
    check(form, [x])
    check(form, [x.astype("float32")])
    gradcheck(form, [x])
    raises_same(lambda T: getattr(T.ones(2, requires_grad=True), method)())  # a leaf: refused


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss"])
def test_mse_and_l1_with_weight(loss, reduction):
    """torch 2.13's weight= of mse_loss/l1_loss: a Python composite (PowBackward0 or AbsBackward0,
    times the weight; 'mean' divides by the weights' sum), the weight differentiable too."""
    rng = np.random.default_rng(16)
    x, t, w = _x(rng, 3, 4), _x(rng, 3, 4), rng.random((3, 4)) + 0.1

    def fn(T, a, b, c):
        return getattr(F(T), loss)(a, b, reduction=reduction, weight=c)
    check(fn, [x, t, w], graph_depth=5)
    check(fn, [x.astype("float32"), t.astype("float32"), w.astype("float32")], graph_depth=5)
    gradcheck(fn, [x, t, w])
    # a target that broadcasts (torch warns, and expands it), the weight of the input's shape
    check(lambda T, a, b, c: getattr(F(T), loss)(a, b[0], reduction=reduction, weight=c), [x, t, w],
          graph_depth=5)


@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss"])
def test_mse_and_l1_broadcast_graph_and_weight_errors(loss):
    rng = np.random.default_rng(17)
    x, t = _x(rng, 3, 4), _x(rng, 4)
    check(lambda T, a, b: getattr(F(T), loss)(a, b), [x, t], graph_depth=5)  # ExpandBackward0 under it
    check(lambda T, a, b: getattr(F(T), loss)(b, a, reduction="none"), [x, t], graph_depth=5)
    raises_same(lambda T, a, b: getattr(F(T), loss)(a, b, weight=T.ones(4)), x, x)
    raises_same(lambda T, a, b: getattr(F(T), loss)(a, b, weight=T.ones(3, 4), reduction="avg"), x, x)
    raises_same(lambda T, a, b: getattr(F(T), loss)(a, b, weight=T.ones(3, 4), reduction="elementwise_mean"), x, x)
    raises_same(lambda T, a, b: getattr(F(T), loss)(a, b, reduction="avg"), x, x)


@pytest.mark.parametrize("form", [
    lambda T, x: x.reshape(shape=(4, 3)), lambda T, x: x.view(size=(4, 3)), lambda T, x: x[:1].expand(size=(2, 4)),
    lambda T, x: x.repeat(repeats=(2, 1)), lambda T, x: x.flip(dims=[0]), lambda T, x: x.flip(dims=(0, 1)),
    lambda T, x: T.split(x, split_size_or_sections=2), lambda T, x: T.split(x, [1, 3], dim=1),
    lambda T, x: x.new_zeros(size=(2,)), lambda T, x: x.new_ones(size=[2, 1], dtype=T.float64),
    lambda T, x: x.new_empty(size=(0,)), lambda T, x: T.relu_(x * 1), lambda T, x: F(T).relu_(x * 1),
    lambda T, x: T.sigmoid_(x * 1), lambda T, x: T.exp_(x * 1), lambda T, x: T.neg_(x * 1),
    lambda T, x: T.abs_(x * 1), lambda T, x: T.sqrt_(x.abs() + 1), lambda T, x: T.rsqrt_(x.abs() + 1),
    lambda T, x: T.tanh_(x * 1), lambda T, x: T.log_(x.abs() + 1), lambda T, x: T.clamp_(x * 1, min=-0.1),
    lambda T, x: T.clip_(x * 1, -0.2, 0.2),
], ids=["reshape_shape", "view_size", "expand_size", "repeat_repeats", "flip_dims_list", "flip_dims_tuple",
        "torch_split_sections", "torch_split_list", "new_zeros_size", "new_ones_size", "new_empty_size",
        "torch_relu_", "F_relu_", "torch_sigmoid_", "torch_exp_", "torch_neg_", "torch_abs_", "torch_sqrt_",
        "torch_rsqrt_", "torch_tanh_", "torch_log_", "torch_clamp_", "torch_clip_"])
def test_keyword_spellings_and_torch_in_place_functions(form):
    rng = np.random.default_rng(18)
    check(form, [_x(rng, 3, 4).astype("float32")])
    gradcheck(form, [_x(rng, 3, 4)])


@pytest.mark.parametrize("call", [
    lambda T, x: x.max(keepdim=True), lambda T, x: x.min(keepdim=False), lambda T, x: x.max(None),
    lambda T, x: x.prod(None), lambda T, x: x.logsumexp(None), lambda T, x: x.sum(1.5), lambda T, x: x.sum(True),
    lambda T, x: x.mean("a"), lambda T, x: x.std(1.0), lambda T, x: x.amax(1.0), lambda T, x: x.sum(dim=[0.0]),
    lambda T, x: x.mean((0, T.tensor(1.0))),
], ids=["max_keepdim_only", "min_keepdim_only", "max_none", "prod_none", "logsumexp_none", "sum_float_dim",
        "sum_bool_dim", "mean_str_dim", "std_float_dim", "amax_float_dim", "sum_float_list", "mean_float_tensor_dim"])
def test_dims_torch_refuses_are_type_errors(call):
    """Forms torch's argument parser refuses (the engine truncated a float dim, or ignored
    keepdim): a TypeError as in torch (its message is the parser's; the type is what a program sees)."""
    raises_same(call, np.ones((2, 3), "float32"), match_message=False)


def test_dims_torch_takes_as_integers():
    check(lambda T, x: (x.sum(T.tensor(1)), x.mean((0, T.tensor(1))), x.sum(np.int64(1)), x.max(0, keepdim=True)),
          [np.ones((2, 3))])
