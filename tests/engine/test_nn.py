"""torch.nn on the engine against torch 2.13: modules, layers, losses, init, clip_grad_norm_, and their errors."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import remote_autograd.engine as E
import torch
from programs.nn import copy_in


def twin(make, seed=0):
    """The same module built by torch and by the engine, the engine's holding torch's initial values."""
    torch.manual_seed(seed)
    tm = make(torch)
    em = make(E)
    copy_in(E, em, {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return tm, em


def host(x) -> np.ndarray:
    return np.array(x.tolist(), dtype=np.float64) if not isinstance(x, torch.Tensor) else x.detach().double().numpy()


def assert_close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(host(a), host(b), rtol=rtol, atol=atol)


def raises_like(torch_fn, engine_fn):
    """Both raise the same exception type with the same message."""
    with pytest.raises(Exception) as te:
        torch_fn()
    with pytest.raises(type(te.value)) as ee:
        engine_fn()
    assert str(ee.value) == str(te.value)


# ---------------------------------------------------------------- repr

REPR_MODELS = [
    lambda ns: ns.nn.Sequential(ns.nn.Linear(2, 3), ns.nn.ReLU()),
    lambda ns: ns.nn.Sequential(ns.nn.Linear(2, 3, bias=False), ns.nn.Tanh(), ns.nn.Sigmoid(), ns.nn.Identity(),
                                ns.nn.Flatten(), ns.nn.Dropout(0.25), ns.nn.Softmax(dim=1), ns.nn.SiLU(inplace=True),
                                ns.nn.ReLU(inplace=True), ns.nn.Flatten(0, 2), ns.nn.Softmax()),
    lambda ns: ns.nn.Sequential(OrderedDict([("enc", ns.nn.Sequential(ns.nn.Linear(4, 4), ns.nn.ReLU())),
                                             ("head", ns.nn.Linear(4, 1))])),
    lambda ns: ns.nn.ModuleList([ns.nn.Linear(2, 2), ns.nn.Linear(2, 2), ns.nn.Linear(2, 2), ns.nn.ReLU(),
                                 ns.nn.Linear(2, 2)]),
    lambda ns: ns.nn.ModuleList(),
    lambda ns: ns.nn.ModuleDict({"a": ns.nn.Linear(1, 2), "b": ns.nn.Dropout()}),
    lambda ns: ns.nn.MSELoss(),
    lambda ns: ns.nn.L1Loss(reduction="sum"),
    lambda ns: ns.nn.CrossEntropyLoss(label_smoothing=0.1),
    lambda ns: ns.nn.NLLLoss(),
    lambda ns: ns.nn.BCEWithLogitsLoss(),
    lambda ns: ns.nn.Sequential(),
]


@pytest.mark.parametrize("make", REPR_MODELS)
def test_repr_is_torchs(make):
    assert repr(make(E)) == repr(make(torch))


def test_the_repr_of_the_brief():
    assert repr(E.nn.Sequential(E.nn.Linear(2, 3), E.nn.ReLU())) == (
        "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): ReLU()\n)")


def test_custom_module_repr_and_extra_repr():
    def make(ns):
        class Block(ns.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = ns.nn.Linear(3, 3)
                self.act = ns.nn.ModuleList([ns.nn.ReLU(), ns.nn.Tanh()])

            def extra_repr(self):
                return "width=3"
        return Block()
    assert repr(make(E)) == repr(make(torch))


# ---------------------------------------------------------------- Parameter

def test_parameter_is_a_leaf_that_requires_grad_with_torchs_repr():
    tp, ep = torch.nn.Parameter(torch.tensor([1.0, 2.0])), E.nn.Parameter(E.tensor([1.0, 2.0]))
    assert repr(ep) == repr(tp) and str(ep) == str(tp)
    assert isinstance(ep, E.nn.Parameter) and isinstance(ep, E.Tensor)
    assert ep.requires_grad and ep.is_leaf and ep.grad_fn is None
    y = ep * 2  # an op on a Parameter makes a plain tensor
    assert not isinstance(y, E.nn.Parameter) and type(y) is E.Tensor
    assert y.grad_fn.name() == (tp * 2).grad_fn.name()
    y.sum().backward()
    assert ep.grad.tolist() == [2.0, 2.0] and type(ep.grad) is E.Tensor
    frozen = E.nn.Parameter(E.ones(2), requires_grad=False)
    assert repr(frozen) == repr(torch.nn.Parameter(torch.ones(2), requires_grad=False))
    assert not frozen.requires_grad
    assert tuple(E.nn.Parameter().shape) == tuple(torch.nn.Parameter().shape) == (0,)


def test_parameter_shares_its_datas_storage():
    data = E.zeros(3)
    p = E.nn.Parameter(data)
    with E.no_grad():
        p.add_(1)
    assert data.tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------- layers: values, nodes, grads

LAYERS = [
    ("linear", lambda ns: ns.nn.Linear(4, 3), (5, 4)),
    ("linear_3d", lambda ns: ns.nn.Linear(4, 3), (2, 5, 4)),
    ("linear_no_bias", lambda ns: ns.nn.Linear(4, 3, bias=False), (5, 4)),
    ("linear_1d", lambda ns: ns.nn.Linear(4, 2), (4,)),
    ("relu", lambda ns: ns.nn.ReLU(), (3, 4)),
    ("tanh", lambda ns: ns.nn.Tanh(), (3, 4)),
    ("sigmoid", lambda ns: ns.nn.Sigmoid(), (3, 4)),
    ("identity", lambda ns: ns.nn.Sequential(ns.nn.Identity(54, unused=1), ns.nn.Tanh()), (3, 4)),
    ("flatten", lambda ns: ns.nn.Sequential(ns.nn.Flatten(), ns.nn.Linear(12, 2)), (2, 3, 4)),
    ("flatten_dims", lambda ns: ns.nn.Flatten(0, 1), (2, 3, 4)),
    ("softmax", lambda ns: ns.nn.Softmax(dim=1), (3, 4)),
    ("softmax_last", lambda ns: ns.nn.Softmax(dim=-1), (2, 3, 4)),
    ("silu", lambda ns: ns.nn.SiLU(), (3, 4)),
    ("dropout_p0", lambda ns: ns.nn.Sequential(ns.nn.Linear(4, 4), ns.nn.Dropout(0.0)), (3, 4)),
    ("mlp", lambda ns: ns.nn.Sequential(ns.nn.Linear(4, 8), ns.nn.ReLU(), ns.nn.Linear(8, 2), ns.nn.Sigmoid()),
     (6, 4)),
]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[x[0] for x in LAYERS])
def test_layer_values_nodes_and_grads_are_torchs(name, make, shape):
    tm, em = twin(make)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    tx, ex = torch.tensor(x, requires_grad=True), E.tensor(x, requires_grad=True)
    ty, ey = tm(tx), em(ex)
    assert tuple(ey.shape) == tuple(ty.shape) and ey.dtype.name == str(ty.dtype).split(".")[1]
    assert_close(ey, ty)
    assert ey.grad_fn.name() == ty.grad_fn.name()
    g = np.random.default_rng(2).standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(g))
    ey.backward(E.tensor(g))
    assert_close(ex.grad, tx.grad)
    for (tn, tp), (en, ep) in zip(tm.named_parameters(), em.named_parameters(), strict=True):
        assert tn == en
        assert_close(ep.grad, tp.grad)


def test_inplace_activations_write_their_input():
    for make in (lambda ns: ns.nn.ReLU(inplace=True), lambda ns: ns.nn.SiLU(inplace=True)):
        tx, ex = torch.tensor([-1.0, 0.5, 2.0]), E.tensor([-1.0, 0.5, 2.0])
        make(torch)(tx)
        make(E)(ex)
        assert_close(ex, tx)


LOSSES = [
    ("mse", lambda ns: ns.nn.MSELoss(), "float"),
    ("mse_sum", lambda ns: ns.nn.MSELoss(reduction="sum"), "float"),
    ("mse_none", lambda ns: ns.nn.MSELoss(reduction="none"), "float"),
    ("l1", lambda ns: ns.nn.L1Loss(), "float"),
    ("l1_none", lambda ns: ns.nn.L1Loss(reduction="none"), "float"),
    ("cross_entropy", lambda ns: ns.nn.CrossEntropyLoss(), "class"),
    ("cross_entropy_sum", lambda ns: ns.nn.CrossEntropyLoss(reduction="sum"), "class"),
    ("cross_entropy_weight", lambda ns: ns.nn.CrossEntropyLoss(weight=ns.tensor([0.2, 1.0, 3.0, 0.5])), "class"),
    ("cross_entropy_smooth", lambda ns: ns.nn.CrossEntropyLoss(label_smoothing=0.2, ignore_index=1), "class"),
    ("cross_entropy_probs", lambda ns: ns.nn.CrossEntropyLoss(), "probs"),
    ("nll", lambda ns: ns.nn.NLLLoss(), "class"),
    ("nll_none_weight", lambda ns: ns.nn.NLLLoss(weight=ns.tensor([1.0, 2.0, 0.5, 1.0]), reduction="none"),
     "class"),
    ("bce_logits", lambda ns: ns.nn.BCEWithLogitsLoss(), "binary"),
    ("bce_logits_pos_weight", lambda ns: ns.nn.BCEWithLogitsLoss(pos_weight=ns.tensor([1.0, 2.0, 0.5, 3.0])),
     "binary"),
    ("bce_logits_weight_sum", lambda ns: ns.nn.BCEWithLogitsLoss(weight=ns.tensor([0.5, 1.0, 2.0, 1.0]),
                                                                  reduction="sum"), "binary"),
]


def _target(kind, rng):
    if kind == "class":
        return rng.integers(0, 4, 5).astype(np.int64)
    if kind == "probs":
        p = rng.random((5, 4)).astype(np.float32)
        return p / p.sum(1, keepdims=True)
    if kind == "binary":
        return (rng.random((5, 4)) > 0.5).astype(np.float32)
    return rng.standard_normal((5, 4)).astype(np.float32)


@pytest.mark.parametrize("name,make,kind", LOSSES, ids=[x[0] for x in LOSSES])
def test_loss_values_nodes_and_grads_are_torchs(name, make, kind):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    if kind == "class":
        x = x.copy()  # nll_loss takes log-probabilities or anything: both sides see the same
    target = _target(kind, rng)
    tx, ex = torch.tensor(x, requires_grad=True), E.tensor(x, requires_grad=True)
    tl, el = make(torch)(tx, torch.tensor(target)), make(E)(ex, E.tensor(target))
    assert_close(el, tl)
    assert el.grad_fn.name() == tl.grad_fn.name()
    (tl.sum() if tl.dim() else tl).backward()
    (el.sum() if el.dim() else el).backward()
    assert_close(ex.grad, tx.grad)


def test_loss_module_buffers_are_in_state_dict_as_torch_has_them():
    for make in (lambda ns: ns.nn.CrossEntropyLoss(weight=ns.ones(3)),
                 lambda ns: ns.nn.BCEWithLogitsLoss(pos_weight=ns.ones(2)), lambda ns: ns.nn.MSELoss()):
        assert list(make(E).state_dict()) == list(make(torch).state_dict())


def test_legacy_reduction_arguments_warn_and_choose_as_torchs():
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        loss = E.nn.MSELoss(size_average=False)
    with pytest.warns(UserWarning):
        assert loss.reduction == "sum" == torch.nn.MSELoss(size_average=False).reduction


def test_loss_shape_errors_are_torchs():
    raises_like(lambda: torch.nn.BCEWithLogitsLoss()(torch.zeros(3, 2), torch.zeros(3)),
                lambda: E.nn.BCEWithLogitsLoss()(E.zeros(3, 2), E.zeros(3)))
    raises_like(lambda: torch.nn.CrossEntropyLoss()(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long)),
                lambda: E.nn.CrossEntropyLoss()(E.zeros(3, 2), E.zeros(4, dtype=E.long)))
    raises_like(lambda: torch.nn.MSELoss(reduction="avg")(torch.zeros(2), torch.zeros(2)),
                lambda: E.nn.MSELoss(reduction="avg")(E.zeros(2), E.zeros(2)))


def test_linear_shape_error_is_a_runtime_error_naming_the_shapes():
    tm, em = twin(lambda ns: ns.nn.Linear(4, 3))
    with pytest.raises(RuntimeError) as te:
        tm(torch.zeros(2, 5))
    with pytest.raises(RuntimeError) as ee:
        em(E.zeros(2, 5))
    assert str(ee.value) == str(te.value)


# ---------------------------------------------------------------- Dropout and train/eval

def test_dropout_respects_training():
    drop = E.nn.Dropout(0.5)
    x = E.ones(2000)
    y = drop(x)
    values = set(y.tolist())
    assert values <= {0.0, 2.0} and 0.4 < y.tolist().count(0.0) / 2000 < 0.6
    assert y.grad_fn is None and drop.training
    drop.eval()
    assert not drop.training
    assert drop(x) is x or drop(x).tolist() == x.tolist()
    xr = E.ones(10, requires_grad=True)
    assert drop.train()(xr).grad_fn.name() == torch.nn.Dropout(0.5)(torch.ones(10, requires_grad=True)).grad_fn.name()


def test_dropout_argument_error_is_torchs():
    raises_like(lambda: torch.nn.Dropout(1.5), lambda: E.nn.Dropout(1.5))


def test_train_and_eval_reach_every_submodule():
    model = E.nn.Sequential(E.nn.Linear(2, 2), E.nn.Sequential(E.nn.Dropout(), E.nn.ReLU()))
    assert model.eval() is model
    assert [m.training for m in model.modules()] == [False] * 5
    model.train()
    assert all(m.training for m in model.modules())
    raises_like(lambda: torch.nn.ReLU().train("yes"), lambda: E.nn.ReLU().train("yes"))


# ---------------------------------------------------------------- the module tree

def _tree(ns):
    class Net(ns.nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = ns.nn.Linear(2, 2)
            self.body = ns.nn.Sequential(self.shared, ns.nn.ReLU(), ns.nn.Linear(2, 1, bias=False))
            self.heads = ns.nn.ModuleDict({"a": ns.nn.Linear(1, 1)})
            self.scale = ns.nn.Parameter(ns.ones(1))
            self.register_buffer("running", ns.zeros(2))
            self.register_buffer("scratch", ns.zeros(3), persistent=False)
            self.nothing = None
    return Net()


def test_walking_the_tree_is_torchs():
    tm, em = _tree(torch), _tree(E)
    assert [n for n, _ in em.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in em.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert [n for n, _ in em.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [n for n, _ in em.named_children()] == [n for n, _ in tm.named_children()]
    assert len(list(em.parameters())) == len(list(tm.parameters()))
    assert len(list(em.children())) == len(list(tm.children()))
    assert len(list(em.modules())) == len(list(tm.modules()))
    assert [n for n, _ in em.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in em.named_parameters(prefix="m")] == [n for n, _ in tm.named_parameters(prefix="m")]
    assert em.get_submodule("body.2") is em.body[2]


def test_state_dict_keys_and_shapes_are_torchs():
    tm, em = _tree(torch), _tree(E)
    tsd, esd = tm.state_dict(), em.state_dict()
    assert list(esd) == list(tsd)
    assert [tuple(v.shape) for v in esd.values()] == [tuple(v.shape) for v in tsd.values()]
    assert all(not v.requires_grad and not isinstance(v, E.nn.Parameter) for v in esd.values())
    assert all(isinstance(v, E.nn.Parameter) for k, v in em.state_dict(keep_vars=True).items() if k != "running")
    assert isinstance(esd, OrderedDict)


def test_state_dict_round_trip_copies_values_in_place():
    tm, em = twin(_tree)
    weight = em.shared.weight
    other = _tree(E)
    result = other.load_state_dict(em.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == repr(tm.load_state_dict(tm.state_dict()))
    for (k, a), b in zip(other.state_dict().items(), em.state_dict().values()):
        assert a.tolist() == b.tolist(), k
    assert em.shared.weight is weight and other.shared.weight.requires_grad


def test_load_state_dict_errors_are_torchs():
    tm, em = _tree(torch), _tree(E)

    def edit(sd, ns):
        sd = dict(sd)
        del sd["body.0.bias"]
        sd["extra"] = ns.zeros(1)
        sd["heads.b.weight"] = ns.zeros(1)
        sd["body.2.weight"] = ns.zeros(3, 3)
        return sd
    raises_like(lambda: tm.load_state_dict(edit(tm.state_dict(), torch)),
                lambda: em.load_state_dict(edit(em.state_dict(), E)))
    tr = tm.load_state_dict({k: v for k, v in tm.state_dict().items() if k != "scale"} | {"x": torch.ones(1)},
                            strict=False)
    er = em.load_state_dict({k: v for k, v in em.state_dict().items() if k != "scale"} | {"x": E.ones(1)},
                            strict=False)
    assert er == tr
    raises_like(lambda: tm.load_state_dict({"scale": 1.0}, strict=False),
                lambda: em.load_state_dict({"scale": 1.0}, strict=False))


def test_registration_errors_are_torchs():
    def cases(ns):
        m = ns.nn.Linear(2, 2)
        return [
            lambda: setattr(m, "weight", ns.ones(2, 2)),
            lambda: m.register_parameter("w.x", ns.nn.Parameter(ns.ones(1))),
            lambda: m.register_parameter("", None),
            lambda: m.register_parameter("in_features", None),
            lambda: m.register_parameter("p", ns.ones(1)),
            lambda: m.register_parameter(3, None),
            lambda: m.register_buffer("b", 3),
            lambda: m.register_buffer("a.b", None),
            lambda: setattr(ns.nn.Sequential(ns.nn.ReLU()), "0", 5),
            lambda: ns.nn.Sequential().add_module("x", 5),
            lambda: m.missing,
            lambda: m(ns.ones(2), 3),
            lambda: ns.nn.Module()(1),
            lambda: ns.nn.Sequential(ns.nn.ReLU())[3],
        ]
    for tcase, ecase in zip(cases(torch), cases(E), strict=True):
        raises_like(tcase, ecase)

    class Early(E.nn.Module):
        def __init__(self):
            self.w = E.nn.Parameter(E.ones(1))
    with pytest.raises(AttributeError, match="cannot assign parameters before Module.__init__"):
        Early()


def test_assignment_registers_and_replaces_as_torch_does():
    m = E.nn.Module()
    m.p = E.nn.Parameter(E.ones(1))
    m.child = E.nn.ReLU()
    m.register_buffer("b", E.zeros(1))
    m.b = E.ones(1)  # stays a buffer
    m.p = None
    assert list(m._parameters) == ["p"] and m.p is None
    assert list(m.state_dict()) == ["b"] and m.b.tolist() == [1.0]
    del m.child
    assert list(m.children()) == []
    m.plain = 3
    assert m.plain == 3 and "plain" not in m._buffers
    assert "b" in dir(m)


def test_zero_grad_apply_and_requires_grad_():
    tm, em = twin(lambda ns: ns.nn.Sequential(ns.nn.Linear(3, 2), ns.nn.Tanh()))
    em(E.ones(4, 3)).sum().backward()
    em.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in em.parameters())
    em.zero_grad()
    assert all(p.grad is None for p in em.parameters())
    seen = []
    assert em.apply(lambda m: seen.append(type(m).__name__)) is em
    assert seen == ["Linear", "Tanh", "Sequential"]
    em.requires_grad_(False)
    assert not any(p.requires_grad for p in em.parameters())


def test_containers_index_slice_and_grow_as_torchs():
    seq = E.nn.Sequential(E.nn.Linear(1, 2), E.nn.ReLU(), E.nn.Linear(2, 1))
    assert isinstance(seq[1], E.nn.ReLU) and seq[-1] is seq[2] and len(seq) == 3
    assert type(seq[1:]) is E.nn.Sequential and repr(seq[1:]) == repr(torch.nn.Sequential(
        OrderedDict([("1", torch.nn.ReLU()), ("2", torch.nn.Linear(2, 1))])))
    seq.append(E.nn.Tanh())
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    layers = E.nn.ModuleList([E.nn.ReLU()])
    layers.append(E.nn.Tanh()).extend([E.nn.Sigmoid()])
    layers.insert(1, E.nn.Identity())
    assert [type(m).__name__ for m in layers] == ["ReLU", "Identity", "Tanh", "Sigmoid"]
    layers += [E.nn.SiLU()]
    assert len(layers) == 5 and isinstance(layers[-1], E.nn.SiLU) and len(layers[1:3]) == 2
    heads = E.nn.ModuleDict([("a", E.nn.ReLU())])
    heads["b"] = E.nn.Tanh()
    heads.update({"c": E.nn.Sigmoid()})
    assert list(heads) == list(heads.keys()) == ["a", "b", "c"] and "b" in heads
    assert isinstance(heads.pop("a"), E.nn.ReLU) and len(heads) == 2
    assert isinstance(seq, E.nn.Module) and isinstance(heads, E.nn.Module)


def test_module_to_dtype_and_devices():
    m = E.nn.Linear(2, 2)
    assert m.to("cpu") is m and m.cpu() is m
    m.double()
    assert m.weight.dtype is E.float64 and isinstance(m.weight, E.nn.Parameter) and m.weight.requires_grad
    assert m(E.ones(1, 2, dtype=E.float64)).dtype is E.float64
    m.to(E.float32)
    assert m.bias.dtype is E.float32


# ---------------------------------------------------------------- init

def test_default_linear_init_is_torchs_distribution():
    m = E.nn.Linear(50, 40)
    bound = 1 / math.sqrt(50)
    w, b = np.array(m.weight.tolist()), np.array(m.bias.tolist())
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound  # uniform(-bound, bound)
    assert m.weight.requires_grad and m.weight.is_leaf and m.weight.grad_fn is None


@pytest.mark.parametrize("shape", [(3, 4), (5, 2, 3), (4, 3, 2, 2)])
def test_fan_in_and_fan_out_are_torchs(shape):
    assert E.nn.init._calculate_fan_in_and_fan_out(E.empty(shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_init_errors_and_gains_are_torchs():
    raises_like(lambda: torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(3)),
                lambda: E.nn.init._calculate_fan_in_and_fan_out(E.empty(3)))
    raises_like(lambda: torch.nn.init.kaiming_uniform_(torch.empty(2, 2), mode="fan"),
                lambda: E.nn.init.kaiming_uniform_(E.empty(2, 2), mode="fan"))
    raises_like(lambda: torch.nn.init.calculate_gain("swish"), lambda: E.nn.init.calculate_gain("swish"))
    for args in (("linear",), ("tanh",), ("relu",), ("leaky_relu",), ("leaky_relu", 0.2), ("selu",), ("sigmoid",)):
        assert E.nn.init.calculate_gain(*args) == torch.nn.init.calculate_gain(*args)


@pytest.mark.parametrize("fn,kwargs,bound", [
    ("uniform_", {"a": -0.3, "b": 0.7}, (-0.3, 0.7)),
    ("kaiming_uniform_", {"a": math.sqrt(5)}, (-1 / math.sqrt(20), 1 / math.sqrt(20))),
    ("kaiming_uniform_", {"nonlinearity": "relu", "mode": "fan_out"}, (-math.sqrt(6 / 10), math.sqrt(6 / 10))),
    ("xavier_uniform_", {"gain": 2.0}, (-2 * math.sqrt(6 / 30), 2 * math.sqrt(6 / 30))),
])
def test_uniform_initialisers_draw_in_torchs_bounds(fn, kwargs, bound):
    w = E.empty(10, 20, requires_grad=True)
    assert getattr(E.nn.init, fn)(w, **kwargs) is w
    values = np.array(w.tolist())
    assert bound[0] <= values.min() and values.max() <= bound[1]
    assert values.max() - values.min() > 0.8 * (bound[1] - bound[0])
    assert w.is_leaf and w.requires_grad


def test_constant_initialisers_and_normal():
    w = E.nn.Parameter(E.empty(200, 50))
    assert E.nn.init.zeros_(w) is w and not w.any()
    assert set(E.nn.init.ones_(w).flatten().tolist()) == {1.0}
    assert set(E.nn.init.constant_(w, 0.25).flatten().tolist()) == {0.25}
    values = np.array(E.nn.init.normal_(w, 1.0, 0.5).tolist())
    assert abs(values.mean() - 1.0) < 0.02 and abs(values.std() - 0.5) < 0.02
    values = np.array(E.nn.init.kaiming_normal_(w, nonlinearity="relu").tolist())
    assert abs(values.std() - math.sqrt(2 / 50)) < 0.01
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        E.nn.init.kaiming_uniform_(E.empty(0, 3))


# ---------------------------------------------------------------- clip_grad_norm_

@pytest.mark.parametrize("max_norm,norm_type", [(0.5, 2.0), (100.0, 2.0), (0.1, math.inf), (1.0, 1.0), (0.3, 3)])
def test_clip_grad_norm_is_torchs(max_norm, norm_type):
    tm, em = twin(lambda ns: ns.nn.Sequential(ns.nn.Linear(3, 4), ns.nn.Tanh(), ns.nn.Linear(4, 2)))
    x = np.random.default_rng(5).standard_normal((6, 3)).astype(np.float32)
    tm(torch.tensor(x)).pow(2).sum().backward()
    em(E.tensor(x)).pow(2).sum().backward()
    tn = torch.nn.utils.clip_grad_norm_(tm.parameters(), max_norm, norm_type)
    en = E.nn.utils.clip_grad_norm_(em.parameters(), max_norm, norm_type)
    assert_close(en, tn)
    for tp, ep in zip(tm.parameters(), em.parameters()):
        assert_close(ep.grad, tp.grad)


def test_clip_grad_norm_without_grads_and_nonfinite():
    assert E.nn.utils.clip_grad_norm_([E.nn.Parameter(E.ones(2))], 1.0).item() == 0.0
    p = E.nn.Parameter(E.ones(2))
    p.grad = E.tensor([math.inf, 1.0])
    tp = torch.nn.Parameter(torch.ones(2))
    tp.grad = torch.tensor([math.inf, 1.0])
    raises_like(lambda: torch.nn.utils.clip_grad_norm_(tp, 1.0, error_if_nonfinite=True),
                lambda: E.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True))
