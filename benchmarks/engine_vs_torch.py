"""Engine vs local torch (CPU), side by side in one run: a chain of tiny ops, and an MLP SGD step.

    python benchmarks/engine_vs_torch.py [--repeat N]

Prints the median time of each workload on both and the ratio engine/torch.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import remote_autograd.engine as E
import torch


def chain(lib, x0):
    x = x0
    for _ in range(25):
        x = x * 1.001
        x = x + 0.5
        x = x.sin()
        x = x - 0.25
    x.sum().backward()
    return x0.grad.sum().item()


def make_chain(lib):
    x0 = lib.tensor(np.linspace(-1, 1, 16).astype(np.float32).tolist(), requires_grad=True)

    def run():
        x0.grad = None
        return chain(lib, x0)
    return run


def make_mlp(lib):
    rng = np.random.default_rng(0)
    X = lib.tensor(rng.standard_normal((256, 512), dtype=np.float32))
    Y = lib.tensor(rng.standard_normal((256, 10), dtype=np.float32))
    W1 = lib.tensor(rng.standard_normal((512, 512), dtype=np.float32) * 0.04, requires_grad=True)
    W2 = lib.tensor(rng.standard_normal((512, 10), dtype=np.float32) * 0.04, requires_grad=True)
    mse = lib.nn.functional.mse_loss

    def step():
        h = (X @ W1).relu()
        loss = mse(h @ W2, Y)
        loss.backward()
        with lib.no_grad():
            W1.sub_(0.01 * W1.grad)
            W2.sub_(0.01 * W2.grad)
            W1.grad.zero_()
            W2.grad.zero_()
        return loss.item()
    return step


def timeit(fn, repeat: int, inner: int = 1) -> float:
    """Median seconds per call over ``repeat`` samples of ``inner`` calls, after warm-up calls."""
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=15)
    args = p.parse_args()
    rows = []
    for name, make, inner in (("chain of 100 tiny ops + backward", make_chain, 20),
                              ("MLP SGD step 256x512x512x10", make_mlp, 3)):
        t_torch = timeit(make(torch), args.repeat, inner)
        t_engine = timeit(make(E), args.repeat, inner)
        rows.append((name, t_torch, t_engine))
    print(f"{'workload':36s} {'torch':>10s} {'engine':>10s} {'ratio':>7s}")
    for name, a, b in rows:
        print(f"{name:36s} {a * 1e3:8.3f}ms {b * 1e3:8.3f}ms {b / a:6.2f}x")
    print(f"(torch threads: {torch.get_num_threads()}; engine backend: {E.BACKEND})")


if __name__ == "__main__":
    main()
