"""Whole torch programs (build a model, train it, eval, save), written once over a torch-like namespace.

Each takes ``ns`` (torch, the engine, or a remote session) and ``init`` (a state_dict of numpy arrays, or
None to keep the namespace's own initial parameters) and returns what a user would look at, as numbers.
"""
from __future__ import annotations

import math

import numpy as np


def copy_in(ns, model, init):
    """Load torch's initial parameters (numpy arrays by name) into ``model``; returns them as read back."""
    if init is not None:
        model.load_state_dict({k: ns.tensor(v) for k, v in init.items()})
    return {k: np.array(v.tolist(), dtype=np.float32) for k, v in model.state_dict().items()}


def poly_data(ns, n=64):
    x = ns.tensor(np.linspace(-1, 1, n, dtype=np.float32)).unsqueeze(1)
    features = ns.cat([x, x**2, x**3], 1)
    y = 0.5 - 1.5 * x + 2.0 * x**3
    return features, y


def polynomial_fit(ns, init, steps=25):
    """nn.Sequential + nn.MSELoss + optim.SGD(momentum=0.9): the losses, step for step."""
    model = ns.nn.Sequential(ns.nn.Linear(3, 8), ns.nn.Tanh(), ns.nn.Linear(8, 1))
    copy_in(ns, model, init)
    features, y = poly_data(ns)
    loss_fn = ns.nn.MSELoss()
    opt = ns.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(features), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {k: np.array(v.tolist(), dtype=np.float32) for k, v in model.state_dict().items()}


def blobs(ns, n=48, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.0], [-1.0, 1.5], [-1.0, -1.5]], dtype=np.float32)[:classes]
    labels = rng.integers(0, classes, n)
    points = centers[labels] + 0.6 * rng.standard_normal((n, 2)).astype(np.float32)
    return ns.tensor(points.astype(np.float32)), ns.tensor(labels.astype(np.int64))


def mlp_classifier(ns, init, steps=20, optimizer="Adam", **opt_kwargs):
    """An MLP with CrossEntropyLoss and Adam (or another optimizer): losses, then the accuracy in eval mode."""
    model = ns.nn.Sequential(ns.nn.Linear(2, 16), ns.nn.ReLU(), ns.nn.Linear(16, 16), ns.nn.SiLU(),
                             ns.nn.Linear(16, 3))
    copy_in(ns, model, init)
    x, labels = blobs(ns)
    loss_fn = ns.nn.CrossEntropyLoss()
    opt = getattr(ns.optim, optimizer)(model.parameters(), **(opt_kwargs or {"lr": 0.05}))
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with ns.no_grad():
        accuracy = (model(x).argmax(1) == labels).float().mean().item()
    return losses, accuracy


def make_dropout_net(ns):
    class Net(ns.nn.Module):
        """A custom module: two layers with Dropout between them."""

        def __init__(self):
            super().__init__()
            self.fc1 = ns.nn.Linear(4, 32)
            self.drop = ns.nn.Dropout(0.5)
            self.fc2 = ns.nn.Linear(32, 2)

        def forward(self, x):
            return self.fc2(self.drop(self.fc1(x).relu()))
    return Net()


def dropout_net(ns, init, steps=5):
    """A custom nn.Module with Dropout: trained with dropout on (its draws are the namespace's own), then
    eval() switches it off: the eval-mode outputs of the same parameters agree exactly."""
    net = make_dropout_net(ns)
    copy_in(ns, net, init)
    x = ns.tensor(np.linspace(-2, 2, 24, dtype=np.float32).reshape(6, 4))
    net.eval()
    before = np.array(net(x).tolist(), dtype=np.float32)
    net.train()
    trained_outputs_differ = not np.allclose(np.array(net(x).tolist(), dtype=np.float32), before)
    opt = ns.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()
    net.eval()
    return before, trained_outputs_differ, np.array(net(x).tolist(), dtype=np.float32), net.training


def init_of(torch, model_fn, seed=0):
    """torch's initial parameters of the model a program builds, as numpy arrays by name."""
    torch.manual_seed(seed)
    return {k: v.detach().numpy().copy() for k, v in model_fn(torch).state_dict().items()}


def poly_model(ns):
    return ns.nn.Sequential(ns.nn.Linear(3, 8), ns.nn.Tanh(), ns.nn.Linear(8, 1))


def mlp_model(ns):
    return ns.nn.Sequential(ns.nn.Linear(2, 16), ns.nn.ReLU(), ns.nn.Linear(16, 16), ns.nn.SiLU(), ns.nn.Linear(16, 3))


def close(a, b, rtol=1e-4, atol=1e-5) -> bool:
    return all(math.isclose(x, y, rel_tol=rtol, abs_tol=atol) for x, y in zip(a, b, strict=True))
