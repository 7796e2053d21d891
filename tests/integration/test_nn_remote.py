"""torch.nn and torch.optim through a remote session: the engine's one implementation over ``t``, trained step
for step against torch 2.13 (torch's initial parameters copied in), in each client mode."""
from __future__ import annotations

import math

import numpy as np
import pytest
import remote_autograd as ra
import torch
from programs.nn import (  # programs run on torch, the engine and remote alike
    close,
    copy_in,
    dropout_net,
    init_of,
    make_dropout_net,
    mlp_classifier,
    mlp_model,
    poly_model,
    polynomial_fit,
)


def host(x) -> np.ndarray:
    return x.detach().double().numpy() if isinstance(x, torch.Tensor) else np.array(x.tolist(), dtype=np.float64)


def test_polynomial_fit_is_torchs_step_for_step(t):
    init = init_of(torch, poly_model)
    tl, tparams = polynomial_fit(torch, init)
    rl, rparams = polynomial_fit(t, init)
    assert close(rl, tl) and rl[-1] < rl[0] / 4
    for k in tparams:
        np.testing.assert_allclose(rparams[k], tparams[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer,kwargs", [
    ("Adam", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.05, "amsgrad": True}),
    ("RMSprop", {"lr": 0.005, "centered": True, "momentum": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
])
def test_mlp_classifier_is_torchs_step_for_step(t, optimizer, kwargs):
    init = init_of(torch, mlp_model)
    tl, tacc = mlp_classifier(torch, init, steps=10, optimizer=optimizer, **kwargs)
    rl, racc = mlp_classifier(t, init, steps=10, optimizer=optimizer, **kwargs)
    assert close(rl, tl) and racc == tacc


def test_custom_module_with_dropout_agrees_in_eval_mode(t):
    init = init_of(torch, make_dropout_net)
    tbefore, _, _, _ = dropout_net(torch, init)
    rbefore, differs, rafter, training = dropout_net(t, init)
    np.testing.assert_allclose(rbefore, tbefore, rtol=1e-5, atol=1e-6)
    assert differs and not training and not np.allclose(rafter, rbefore)


def test_parameters_are_remote_tensors_that_require_grad(t):
    p = t.nn.Parameter(t.tensor([1.0, 2.0]))
    assert isinstance(p, ra.Tensor) and isinstance(p, t.nn.Parameter) and p._session is t
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    y = p * 3
    assert not isinstance(y, t.nn.Parameter) and y.grad_fn.name() == "MulBackward0"
    y.sum().backward()
    assert p.grad.tolist() == [3.0, 3.0]
    import remote_autograd.engine as engine
    with pytest.raises(TypeError, match="nn.Parameter holds its own tensors"):
        t.nn.Parameter(engine.ones(2))  # an engine tensor is no remote one: it must be copied in
    layer = t.nn.Linear(4, 3)
    assert all(isinstance(q, t.nn.Parameter) and q._session is t for q in layer.parameters())
    bound = 1 / math.sqrt(4)
    assert np.abs(host(layer.weight)).max() <= bound and np.abs(host(layer.bias)).max() <= bound
    assert repr(t.nn.Sequential(t.nn.Linear(2, 3), t.nn.ReLU())) == (
        "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): ReLU()\n)")


def test_state_dicts_save_and_resume_on_the_server(t):
    init = init_of(torch, mlp_model)
    model = mlp_model(t)
    copy_in(t, model, init)
    tmodel = mlp_model(torch)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in tmodel.state_dict().items()]
    x = t.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2))
    labels = t.tensor([0, 1, 2, 0, 1, 2])
    opt = t.optim.Adam(model.parameters(), lr=0.01)

    def train(m, o, steps):
        losses = []
        for _ in range(steps):
            o.zero_grad()
            loss = t.nn.functional.cross_entropy(m(x), labels)
            loss.backward()
            o.step()
            losses.append(loss.item())
        return losses
    train(model, opt, 2)
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    saved_opt = opt.state_dict()
    assert list(saved_opt["state"][0]) == ["step", "exp_avg", "exp_avg_sq"]
    assert saved_opt["state"][0]["step"].item() == 2
    saved_opt = {"state": {i: {k: v.clone() for k, v in s.items()} for i, s in saved_opt["state"].items()},
                 "param_groups": saved_opt["param_groups"]}
    straight = train(model, opt, 2)
    resumed = mlp_model(t)
    assert repr(resumed.load_state_dict(saved_model)) == "<All keys matched successfully>"
    resumed_opt = t.optim.Adam(resumed.parameters(), lr=0.01)
    resumed_opt.load_state_dict(saved_opt)
    assert close(train(resumed, resumed_opt, 2), straight, rtol=1e-6, atol=1e-7)


def test_load_state_dict_errors_are_torchs(t):
    tm, rm = torch.nn.Sequential(torch.nn.Linear(2, 2)), t.nn.Sequential(t.nn.Linear(2, 2))
    with pytest.raises(RuntimeError) as te:
        tm.load_state_dict({"0.weight": torch.zeros(3, 2), "1.bias": torch.zeros(1)})
    with pytest.raises(RuntimeError) as re_:
        rm.load_state_dict({"0.weight": t.zeros(3, 2), "1.bias": t.zeros(1)})
    assert str(re_.value) == str(te.value)


def test_train_eval_clip_grad_norm_and_scheduler(t):
    init = init_of(torch, poly_model)
    tm, rm = poly_model(torch), poly_model(t)
    tm.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    copy_in(t, rm, init)
    assert not rm.eval().training and all(not m.training for m in rm.modules())
    rm.train()
    x = np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3)
    topt, ropt = torch.optim.SGD(tm.parameters(), lr=0.1), t.optim.SGD(rm.parameters(), lr=0.1)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=3)
    rsched = t.optim.lr_scheduler.CosineAnnealingLR(ropt, T_max=3)
    tnorms, rnorms = [], []
    for _ in range(4):
        for m, opt, sched, norms, ns in ((tm, topt, tsched, tnorms, torch), (rm, ropt, rsched, rnorms, t)):
            opt.zero_grad()
            m(ns.tensor(x)).pow(2).sum().backward()
            norms.append(ns.nn.utils.clip_grad_norm_(m.parameters(), 0.5).item())
            opt.step()
            sched.step()
    assert close(rnorms, tnorms) and rsched.get_last_lr() == pytest.approx(tsched.get_last_lr())
    for (k, tv), rv in zip(tm.state_dict().items(), rm.state_dict().values()):
        np.testing.assert_allclose(host(rv), host(tv), rtol=1e-4, atol=1e-5, err_msg=k)
    rm.double()
    assert rm[0].weight.dtype is t.float64 and rm[0].weight.requires_grad
    assert rm(t.ones(1, 3, dtype=t.float64)).dtype is t.float64
