"""A small next-token model (Embedding, LayerNorm, Linear, GELU) trained with Adam, written once over a
torch-like namespace ``ns`` (torch, the engine, or a remote session): the ops of issue 18 as a user meets them."""
from __future__ import annotations

import numpy as np

from programs.nn import copy_in

VOCAB = 11


def token_model(ns):
    return ns.nn.Sequential(ns.nn.Embedding(VOCAB, 8, padding_idx=0), ns.nn.LayerNorm(8), ns.nn.Linear(8, 16),
                            ns.nn.GELU(approximate="tanh"), ns.nn.Linear(16, 16), ns.nn.GELU(),
                            ns.nn.Linear(16, VOCAB))


def next_token_fit(ns, init, steps=6):
    """Sequences padded with F.pad (token 0, ignored), targets by roll: the losses, step for step, and
    the parameters at the end."""
    model = token_model(ns)
    copy_in(ns, model, init)
    rng = np.random.default_rng(0)
    tokens = ns.tensor(rng.integers(1, VOCAB, (4, 5)))
    inputs = ns.nn.functional.pad(tokens, (0, 1))               # (4, 6), a padding token at the end
    targets = inputs.roll(-1, 1)                                # the next token; 0 (ignored) after the last
    opt = ns.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        logits = model(inputs)
        loss = ns.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=0)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, {k: np.array(v.tolist(), dtype=np.float32) for k, v in model.state_dict().items()}
