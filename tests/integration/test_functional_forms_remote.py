"""The loss forms of tests/engine/test_functional_forms.py through a remote session: values, dtypes,
shapes, grad_fn names and gradients identical to the engine's (the server runs it), the client's
inferred metadata right, and torch's errors for the forms torch refuses."""
from __future__ import annotations

import numpy as np
import pytest
import remote_autograd.engine as engine
import torch
from test_ops_remote import arr, assert_same_result, assert_same_tensor, backward_both, f64, graph_names, ints, run


def F(th):  # noqa: N802
    return th.nn.functional


def _probs(*shape, class_dim=1, dtype=np.float32):
    p = np.abs(arr(*shape, name="p")) + 0.1
    return (p / p.sum(axis=class_dim, keepdims=True)).astype(dtype)


W4 = (np.abs(arr(4, name="w")) + 0.5).astype(np.float32)
W3 = W4[:3].copy()

# case -> (program(th, *inputs), inputs, node names the results' graph must hold); floats require grad
CASES = {
    "ce_probs": (lambda th, x, p: tuple(F(th).cross_entropy(x, p, reduction=r) for r in ("mean", "sum", "none")),
                 [arr(3, 4), _probs(3, 4)], {"DivBackward1", "NegBackward0", "LogSoftmaxBackward0"}),
    "ce_probs_weight_smoothing": (
        lambda th, x, p, w: F(th).cross_entropy(x, p, weight=w, label_smoothing=0.2),
        [arr(3, 4), _probs(3, 4), W4], {"DivBackward1", "MulBackward1", "AddBackward1", "ViewBackward0"}),
    "ce_probs_4d": (lambda th, x, p: F(th).cross_entropy(x, p, reduction="none"),
                    [arr(2, 3, 2, 2), _probs(2, 3, 2, 2)], {"SumBackward1"}),
    "ce_probs_1d_float64": (lambda th, x, p: F(th).cross_entropy(x, p, label_smoothing=0.1),
                            [f64(4), _probs(4, class_dim=0, dtype=np.float64)], {"DivBackward1"}),
    "ce_probs_empty": (lambda th, x, p: F(th).cross_entropy(x, p),
                       [np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32)], {"FillBackward2"}),
    "ce_smoothing": (lambda th, x, y: tuple(F(th).cross_entropy(x, y, label_smoothing=0.1, reduction=r)
                                            for r in ("mean", "sum", "none")),
                     [arr(3, 4), ints(0, 3, 1)], {"AddBackward0", "MulBackward1", "NllLossBackward0"}),
    "ce_smoothing_weight_ignore": (
        lambda th, x, y, w: F(th).cross_entropy(x, y, weight=w.detach(), ignore_index=1, label_smoothing=0.3),
        [arr(3, 4), ints(0, 1, 3), W4], {"DivBackward0", "MaskedFillBackward0", "NllLossBackward0"}),
    "ce_smoothing_1d": (lambda th, x, y: F(th).cross_entropy(x, y, label_smoothing=0.1, reduction="none"),
                        [arr(4), np.asarray(2, dtype=np.int64)], {"MulBackward1"}),
    "ce_weight_4d": (lambda th, x, y, w: F(th).cross_entropy(x, y, weight=w.detach()),
                     [arr(2, 3, 2, 2), ints(0, 2, 1, 1, 2, 0, 1, 2).reshape(2, 2, 2), W3], {"NllLoss2DBackward0"}),
    "ce_3d_smoothing": (lambda th, x, y: F(th).cross_entropy(x, y, reduction="none", label_smoothing=0.2),
                        [arr(2, 3, 4), ints(0, 2, 1, 1, 2, 0, 1, -100).reshape(2, 4)],
                        {"ViewBackward0", "NllLoss2DBackward0"}),
    "nll_5d_weight": (lambda th, x, y, w: F(th).nll_loss(x.log_softmax(1), y, weight=w.detach(), reduction="sum"),
                      [arr(2, 3, 2, 1, 2), ints(0, 2, 1, 1, 2, 0, 1, 2).reshape(2, 2, 1, 2), W3],
                      {"NllLoss2DBackward0", "ViewBackward0"}),
    "nll_legacy_reduce": (lambda th, x, y: F(th).nll_loss(x, y, reduce=False), [arr(3, 4), ints(0, 3, 1)],
                          {"NllLossBackward0"}),
    "bce_weights": (lambda th, x, y, w, pw: F(th).binary_cross_entropy_with_logits(
        x, y.sigmoid().detach(), weight=w.detach(), pos_weight=pw.detach(), reduction="none"),
        [arr(3, 4), arr(3, 4, name="y"), W4, W4 * 2], {"BinaryCrossEntropyWithLogitsBackward0"}),
    "bce_pos_weight": (lambda th, x, y, pw: F(th).binary_cross_entropy_with_logits(x, y.sigmoid().detach(),
                                                                                    pos_weight=pw.detach()),
                       [arr(3, 4), arr(3, 4, name="y"), W4], {"BinaryCrossEntropyWithLogitsBackward0"}),
    "mse_l1_weight": (lambda th, x, y, w: (F(th).mse_loss(x, y, weight=w), F(th).l1_loss(x, y[0], weight=w,
                                                                                         reduction="none")),
                      [arr(3, 4), arr(3, 4, name="y"), np.abs(arr(3, 4, name="w"))],
                      {"PowBackward0", "AbsBackward0", "DivBackward0", "ExpandBackward0"}),
    # the sweep's forms of other calls
    "sum_mean_dim_none": (lambda th, x: (x.sum(dim=None, keepdim=True), x.mean(None),
                                         th.sum(x, None, dtype=th.float64)),
                          [arr(2, 3, 4)], {"SumBackward1", "MeanBackward1"}),
    "softmax_dtype_implicit_dim": (lambda th, x: (x.softmax(-1, dtype=th.float64), F(th).log_softmax(x),
                                                  th.softmax(x, 0, th.float64)),
                                   [arr(3, 4)], {"SoftmaxBackward0", "LogSoftmaxBackward0", "ToCopyBackward0"}),
    "where_one_argument": (lambda th, x: (x[th.where(x > 0)], th.where(x > 0)[1], x.nonzero(as_tuple=True)[0]),
                           [arr(3, 4)], {"IndexBackward0"}),
    "clamp_tensor_bounds": (lambda th, x, lo, hi: (x.clamp(lo, hi), x.clamp_min(lo), (x * 1).clamp_(max=hi)),
                            [arr(3, 4), arr(4, name="lo"), arr(3, 1, name="hi")],
                            {"ClampBackward0", "ClampMinBackward1"}),
    "pointwise_in_place": (lambda th, x: ((x.abs() + 1).sqrt_(), (x * 1).tanh_(), (x.abs() + 1).log_(),
                                          (x * 1).square_(), (x * 1).round_(decimals=1)),
                           [arr(3, 4)], {"SqrtBackward0", "TanhBackward0", "LogBackward0", "PowBackward0",
                                         "RoundBackward1"}),
    "keyword_spellings": (lambda th, x: (x.reshape(shape=(4, 3)), x.view(size=(2, 6)), x.flip(dims=[1]),
                                         x[:1].expand(size=(2, 4)), x.repeat(repeats=(1, 2)),
                                         th.split(x, split_size_or_sections=[1, 2]), x.new_zeros(size=(2,)),
                                         th.relu_(x * 1), F(th).relu_(x * 1), th.sigmoid_(x * 1)),
                          [arr(3, 4)], {"ViewBackward0", "FlipBackward0", "ExpandBackward0", "RepeatBackward0",
                                        "SplitWithSizesBackward0", "ReluBackward0", "SigmoidBackward0"}),
    "activations_in_place": (lambda th, x: (F(th).silu(x * 1, inplace=True), F(th).elu(x * 1, inplace=True),
                                            F(th).leaky_relu(x.permute(dims=(1, 0)) * 1, 0.2, True)),
                             [arr(3, 4)], {"SiluBackward0", "EluBackward1", "LeakyReluBackward1"}),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_form_remote_matches_engine(t, case):
    program, arrays, nodes = CASES[case]
    r_in, r_out = run(t, program, arrays)
    e_in, e_out = run(engine, program, arrays)
    assert_same_result(r_out, e_out)  # shapes and dtypes as the client inferred them, then values
    names = graph_names(r_out, depth=9)
    assert nodes <= names, f"{case}: the graph {sorted(names)} lacks {sorted(nodes - names)}"
    assert backward_both(t, r_out, e_out, case)
    for k, (r, e) in enumerate(zip(r_in, e_in, strict=True)):
        if e.grad is None:
            assert r.grad is None, f"{case}: input {k} has a grad remotely only"
        else:
            assert r.grad is not None, f"{case}: input {k} has no grad remotely"
            if e.grad.numel() == 0:
                # (a remote empty gradient reports strides (0, 0), not contiguous: a known gap of
                # the client's strides for empty tensors, apart from these forms)
                assert (tuple(r.grad.shape), r.grad.dtype) == (tuple(e.grad.shape), e.grad.dtype)
                continue
            assert_same_tensor(r.grad, e.grad, f"{case}: input {k} grad")


def test_cross_entropy_forms_in_a_training_loop(t):
    """A few SGD steps with a label-smoothed, class-weighted loss and one with soft targets: the
    same weights as torch's after the steps."""
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    y0, cw = rng.integers(0, 4, 6), (rng.random(4) + 0.5).astype(np.float32)
    soft = rng.random((6, 4)).astype(np.float32)
    soft /= soft.sum(1, keepdims=True)

    def train(th):
        w = th.tensor(w0, requires_grad=True)
        x, y, c, p = th.tensor(x0), th.tensor(y0), th.tensor(cw), th.tensor(soft)
        losses = []
        for _ in range(3):
            logits = F(th).linear(x, w)
            loss = F(th).cross_entropy(logits, y, weight=c, label_smoothing=0.1) + F(th).cross_entropy(logits, p)
            loss.backward()
            with th.no_grad():
                w -= 0.5 * w.grad
                w.grad.zero_()
            losses.append(loss.item())
        return losses, np.asarray(w.tolist(), dtype=np.float32)

    r_losses, r_w = train(t)
    t_losses, t_w = train(torch)
    np.testing.assert_allclose(r_losses, t_losses, rtol=1e-5)
    np.testing.assert_allclose(r_w, t_w, rtol=1e-5, atol=1e-6)


_x23 = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
ERRORS = {
    "probs_int_target": lambda th: F(th).cross_entropy(th.tensor(_x23), th.zeros(2, 3, dtype=th.long)),
    "probs_ignore_index": lambda th: F(th).cross_entropy(th.tensor(_x23), th.ones(2, 3) / 3, ignore_index=0),
    "probs_weight_shape": lambda th: F(th).cross_entropy(th.tensor(_x23), th.ones(2, 3) / 3, weight=th.ones(2)),
    "smoothing_too_big": lambda th: F(th).cross_entropy(th.tensor(_x23), th.tensor([0, 1]), label_smoothing=1.5),
    "smoothing_target_range": lambda th: F(th).cross_entropy(th.tensor(_x23), th.tensor([0, 3]), label_smoothing=0.1),
    "weight_shape": lambda th: F(th).cross_entropy(th.tensor(_x23), th.tensor([0, 1]), weight=th.ones(2)),
    "weight_dtype": lambda th: F(th).nll_loss(th.tensor(_x23), th.tensor([0, 1]), weight=th.ones(3, dtype=th.float64)),
    "weight_requires_grad": lambda th: F(th).cross_entropy(th.tensor(_x23, requires_grad=True), th.tensor([0, 1]),
                                                           weight=th.ones(3, requires_grad=True)),
    "target_2d": lambda th: F(th).nll_loss(th.tensor(_x23), th.zeros(2, 1, dtype=th.long)),
    "target_float": lambda th: F(th).nll_loss(th.tensor(_x23), th.zeros(2)),
    "nll2d_target_range": lambda th: F(th).cross_entropy(th.ones(2, 3, 1, 1), th.full((2, 1, 1), 3)),
    "nll2d_size": lambda th: F(th).cross_entropy(th.ones(2, 3, 2, 2), th.zeros(2, 2, 1, dtype=th.long)),
    "nll3d_size": lambda th: F(th).cross_entropy(th.ones(2, 3, 2), th.zeros(2, 3, dtype=th.long)),
    "bce_weight_shape": lambda th: F(th).binary_cross_entropy_with_logits(th.tensor(_x23), th.ones(2, 3),
                                                                          weight=th.ones(2)),
    "bce_pos_weight_bigger": lambda th: F(th).binary_cross_entropy_with_logits(th.tensor(_x23), th.ones(2, 3),
                                                                               pos_weight=th.ones(2, 2, 3)),
    "bad_reduction": lambda th: F(th).cross_entropy(th.tensor(_x23), th.tensor([0, 1]), reduction="avg"),
    "clamp_tensor_shape": lambda th: th.tensor(_x23).clamp(th.zeros(4)),
    "clamp_inplace_bigger": lambda th: th.tensor(_x23).clamp_(min=th.zeros(2, 2, 3)),
    "dim_twice": lambda th: th.tensor(_x23).sum((1, -1)),
    "maximum_number": lambda th: th.maximum(th.tensor(_x23), 0.0),
    "round_decimals_int": lambda th: th.tensor([15, 25]).round(decimals=-1),
    "sum_float_dim": lambda th: th.tensor(_x23).sum(1.5),
    "max_keepdim_without_dim": lambda th: th.tensor(_x23).max(keepdim=True),
    "elu_inplace_leaf": lambda th: F(th).elu(th.tensor(_x23, requires_grad=True), inplace=True),
}


def _raised(program, th):
    with pytest.raises(Exception) as info:  # noqa: B017, PT011  (compared with torch's below)
        out = program(th)
        out.tolist()  # a sync point: an error only the server sees surfaces here
    return info.value


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_loss_form_errors_are_torchs(t, name):
    expected = _raised(ERRORS[name], torch)
    got = _raised(ERRORS[name], t)
    assert type(got) is type(expected), f"{name}: remote raised {type(got).__name__}: {got}"
    if not isinstance(expected, TypeError):  # (torch's argument parser words its own)
        assert str(got) == str(expected)
    x = t.ones(2, requires_grad=True)  # the session goes on
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_repeated_losses_with_optional_inputs_are_prepared_as_torch(t):
    """A loss called every step is prepared on the server after its first use: the optional
    inputs (BCE's weight None beside a pos_weight, nll_loss's class weights) ride along."""
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((4, 3)).astype(np.float32)
    y0 = (rng.random((4, 3)) > 0.5).astype(np.float32)
    pw, cw = np.array([1.0, 2.0, 0.5], np.float32), np.array([0.5, 1.0, 2.0], np.float32)
    labels = np.array([0, 2, 1, 2])

    def steps(th):
        w = th.tensor(x0, requires_grad=True)
        out = []
        for _ in range(4):
            loss = (F(th).binary_cross_entropy_with_logits(w, th.tensor(y0), pos_weight=th.tensor(pw))
                    + F(th).nll_loss(w.log_softmax(1), th.tensor(labels), weight=th.tensor(cw))
                    + F(th).cross_entropy(w.view(2, 2, 3).transpose(1, 2), th.tensor(labels).view(2, 2),
                                          label_smoothing=0.2))
            loss.backward()
            with th.no_grad():
                w -= 0.1 * w.grad
                w.grad.zero_()
            out.append(loss.item())
        return out, np.asarray(w.tolist(), dtype=np.float32)

    r_losses, r_w = steps(t)
    t_losses, t_w = steps(torch)
    np.testing.assert_allclose(r_losses, t_losses, rtol=1e-5)
    np.testing.assert_allclose(r_w, t_w, rtol=1e-5, atol=1e-6)
