"""torch.optim on the engine against torch 2.13: every optimizer step for step, state_dicts, errors, schedulers,
and whole training programs (torch's initial parameters copied in)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import remote_autograd.engine as E
import torch
from programs.nn import (
    close,
    dropout_net,
    init_of,
    make_dropout_net,
    mlp_classifier,
    mlp_model,
    poly_model,
    polynomial_fit,
)
from test_nn import assert_close, raises_like, twin

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "amsgrad": True}),
    ("Adam", {"lr": 0.02, "maximize": True}),
    ("AdamW", {"lr": 0.02}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.005, "alpha": 0.9, "momentum": 0.5, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.005, "centered": True, "momentum": 0.2}),
]


def _model(ns):
    return ns.nn.Sequential(ns.nn.Linear(3, 5), ns.nn.Tanh(), ns.nn.Linear(5, 2))


def _train(ns, model, opt, x, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model(x).sub(0.5).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_optimizer_steps_are_torchs(name, kwargs):
    tm, em = twin(_model)
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    topt = getattr(torch.optim, name)(tm.parameters(), **kwargs)
    eopt = getattr(E.optim, name)(em.parameters(), **kwargs)
    tl, el = _train(torch, tm, topt, torch.tensor(x), 12), _train(E, em, eopt, E.tensor(x), 12)
    assert close(el, tl, rtol=1e-5, atol=1e-6), (el, tl)
    for tp, ep in zip(tm.parameters(), em.parameters()):
        assert_close(ep, tp, rtol=1e-5, atol=1e-6)
    # the state: same keys, shapes and values; the step count as torch's float32 tensor
    tsd, esd = topt.state_dict(), eopt.state_dict()
    assert esd["param_groups"] == tsd["param_groups"]
    assert list(esd["state"]) == list(tsd["state"])
    for i in tsd["state"]:
        assert list(esd["state"][i]) == list(tsd["state"][i])
        for key, tv in tsd["state"][i].items():
            ev = esd["state"][i][key]
            assert tuple(ev.shape) == tuple(tv.shape) and ev.dtype.name == str(tv.dtype).split(".")[1], key
            # (torch's vectorised lerp fuses its multiply-add: centered RMSprop's state drifts by float32 roundings)
            assert_close(ev, tv, rtol=1e-4, atol=1e-5)
    assert repr(eopt) == repr(topt)


@pytest.mark.parametrize("name,kwargs", [c for c in CONFIGS if c[1]][:1] + [("Adam", {"lr": 0.02, "amsgrad": True}),
                                                                         ("RMSprop", {"centered": True})])
def test_state_dict_resumes_training_where_it_stopped(name, kwargs):
    _, em = twin(_model)
    x = E.tensor(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32))
    opt = getattr(E.optim, name)(em.parameters(), **kwargs)
    _train(E, em, opt, x, 3)
    saved_model, saved_opt = em.state_dict(), opt.state_dict()
    saved_model = {k: v.clone() for k, v in saved_model.items()}
    saved_opt = {"state": {i: {k: (v.clone() if hasattr(v, "clone") else v) for k, v in s.items()}
                           for i, s in saved_opt["state"].items()}, "param_groups": saved_opt["param_groups"]}
    straight = _train(E, em, opt, x, 3)
    resumed_model = _model(E)
    resumed_model.load_state_dict(saved_model)
    resumed_opt = getattr(E.optim, name)(resumed_model.parameters(), **kwargs)
    resumed_opt.load_state_dict(saved_opt)
    assert _train(E, resumed_model, resumed_opt, x, 3) == straight


def test_param_groups_take_their_own_options():
    tm, em = twin(_model)

    def groups(m, ns):
        return ns.optim.SGD([{"params": m[0].parameters()}, {"params": m[2].parameters(), "lr": 0.5}], lr=0.1,
                            momentum=0.9)
    x = np.ones((2, 3), dtype=np.float32)
    topt, eopt = groups(tm, torch), groups(em, E)
    assert close(_train(E, em, eopt, E.tensor(x), 4), _train(torch, tm, topt, torch.tensor(x), 4))
    assert eopt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    eopt.add_param_group({"params": [E.nn.Parameter(E.ones(1))], "lr": 1.0})
    assert [g["lr"] for g in eopt.param_groups] == [0.1, 0.5, 1.0] and eopt.param_groups[2]["momentum"] == 0.9


def test_step_closure_returns_the_loss_and_zero_grad_set_to_none():
    p = E.nn.Parameter(E.tensor([1.0, -2.0]))
    opt = E.optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = p.pow(2).sum()
        loss.backward()
        return loss
    with E.no_grad():  # the closure runs with grad on all the same, as torch's does
        loss = opt.step(closure)
    assert loss.item() == 5.0 and p.tolist() == pytest.approx([0.8, -1.6])
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None
    assert opt.step() is None and p.tolist() == pytest.approx([0.8, -1.6])  # no grad: no update


def test_optimizer_errors_are_torchs():
    def cases(ns):
        p = ns.nn.Parameter(ns.ones(2))
        return [
            lambda: ns.optim.SGD([p], lr=-1),
            lambda: ns.optim.SGD([p], lr=0.1, momentum=-0.5),
            lambda: ns.optim.SGD([p], lr=0.1, nesterov=True),
            lambda: ns.optim.SGD([p], lr=0.1, weight_decay=-1),
            lambda: ns.optim.Adam([p], betas=(1.0, 0.9)),
            lambda: ns.optim.Adam([p], betas=(0.9, -0.1)),
            lambda: ns.optim.Adam([p], eps=-1.0),
            lambda: ns.optim.AdamW([p], lr=-0.1),
            lambda: ns.optim.RMSprop([p], alpha=-0.1),
            lambda: ns.optim.RMSprop([p], momentum=-0.1),
            lambda: ns.optim.SGD([], lr=0.1),
            lambda: ns.optim.SGD(p, lr=0.1),
            lambda: ns.optim.SGD([p, 3], lr=0.1),
            lambda: ns.optim.SGD([p * 2], lr=0.1),
            lambda: ns.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1),
            lambda: ns.optim.SGD([p], lr=0.1).load_state_dict({"state": {}, "param_groups": []}),
            lambda: ns.optim.SGD([p], lr=0.1).load_state_dict({"state": {}, "param_groups": [{"params": [0, 1]}]}),
        ]
    for tcase, ecase in zip(cases(torch), cases(E), strict=True):
        raises_like(tcase, ecase)


def _schedule(ns, make, steps=12):
    opt = ns.optim.SGD([ns.nn.Parameter(ns.ones(1))], lr=0.1)
    sched = make(ns, opt)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs, sched, opt


@pytest.mark.parametrize("make", [
    lambda ns, opt: ns.optim.lr_scheduler.StepLR(opt, step_size=3),
    lambda ns, opt: ns.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    lambda ns, opt: ns.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5),
    lambda ns, opt: ns.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.01),
])
def test_schedulers_are_torchs(make):
    tl, ts, topt = _schedule(torch, make)
    el, es, eopt = _schedule(E, make)
    assert close(el, tl, rtol=1e-12, atol=1e-15)
    assert es.state_dict().keys() == ts.state_dict().keys()
    assert {k: v for k, v in es.state_dict().items() if k != "_last_lr"} == \
        {k: v for k, v in ts.state_dict().items() if k != "_last_lr"}
    assert eopt.param_groups[0]["initial_lr"] == 0.1


def test_scheduler_warnings_and_errors_are_torchs():
    opt = E.optim.SGD([E.nn.Parameter(E.ones(1))], lr=0.1)
    sched = E.optim.lr_scheduler.StepLR(opt, 2)
    with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        sched.step()
    with pytest.warns(UserWarning, match="please use `get_last_lr"):
        sched.get_lr()
    raises_like(lambda: torch.optim.lr_scheduler.StepLR(object(), 2), lambda: E.optim.lr_scheduler.StepLR(object(), 2))


# ---------------------------------------------------------------- whole programs

def test_polynomial_fit_with_sequential_mse_and_sgd_momentum_is_torchs():
    init = init_of(torch, poly_model)
    tl, tparams = polynomial_fit(torch, init)
    el, eparams = polynomial_fit(E, init)
    assert close(el, tl) and el[-1] < el[0] / 4
    for k in tparams:
        np.testing.assert_allclose(eparams[k], tparams[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer,kwargs", [("Adam", {"lr": 0.01}), ("AdamW", {"lr": 0.01, "weight_decay": 0.05}),
                                              ("RMSprop", {"lr": 0.005})])
def test_mlp_classifier_with_cross_entropy_is_torchs(optimizer, kwargs):
    init = init_of(torch, mlp_model)
    tl, tacc = mlp_classifier(torch, init, optimizer=optimizer, **kwargs)
    el, eacc = mlp_classifier(E, init, optimizer=optimizer, **kwargs)
    assert close(el, tl) and el[-1] < el[0] and eacc == tacc and eacc > 0.9


def test_custom_module_with_dropout_agrees_in_eval_mode():
    init = init_of(torch, make_dropout_net)
    tbefore, _, _, _ = dropout_net(torch, init)
    ebefore, differs, eafter, training = dropout_net(E, init)
    np.testing.assert_allclose(ebefore, tbefore, rtol=1e-5, atol=1e-6)
    assert differs and not training and not np.allclose(eafter, ebefore)
    # trained with dropout on, the draws are the engine's own: the eval-mode outputs of the same
    # parameters agree with torch's
    net_e, net_t = make_dropout_net(E), make_dropout_net(torch)
    net_t.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    net_e.load_state_dict({k: E.tensor(v) for k, v in init.items()})
    x = np.random.default_rng(9).standard_normal((5, 4)).astype(np.float32)
    assert_close(net_e.eval()(E.tensor(x)), net_t.eval()(torch.tensor(x)))
    assert math.isfinite(float(eafter.sum()))
