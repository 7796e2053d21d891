"""Where a remote step's time goes: client build, transit, server run, client after the answer.

    python benchmarks/breakdown.py [--steps N]

Runs the chain and the MLP step (the programs of engine_vs_torch.py) against a server whose
batch runs are timed (_timed_server.py), timestamps the client's side of each step, and prints
the median of each part per step, with local torch's whole step beside it for scale.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time

import remote_autograd as ra
import torch
from _server import server_process
from engine_vs_torch import make_chain, make_mlp, timeit
from remote_autograd.transport import Observer

PARTS = ("client builds the batch", "batch reaches the server", "server runs the batch",
         "answer reaches the client", "client after the answer")


def breakdown(make, steps: int, times_file: str, server, address: str) -> dict:
    marks: list = []

    class Timing(Observer):
        def sent(self, batch):
            marks.append(("sent", time.perf_counter()))

        def answered(self, reply):
            marks.append(("answered", time.perf_counter()))

    # one batch per step (nothing sent ahead), so that the parts follow one another
    with ra.connect(address, send_ahead=0) as t:
        step = make(t)
        for _ in range(5):
            step()
        os.kill(server.pid, signal.SIGUSR1)  # forget the warm-up's batches
        time.sleep(0.3)
        stop = t.wire.observe(Timing())
        try:
            bounds = []
            for _ in range(steps):
                marks.clear()
                t0 = time.perf_counter()
                step()
                bounds.append((t0, dict(marks), time.perf_counter()))
        finally:
            stop()
    os.kill(server.pid, signal.SIGUSR1)
    time.sleep(0.3)
    with open(times_file) as f:
        runs = [tuple(map(float, line.split())) for line in f]
    if len(runs) != steps:
        raise RuntimeError(f"expected one batch per step, the server ran {len(runs)} for {steps} steps")
    parts = {p: [] for p in PARTS + ("whole step",)}
    for (t0, m, t1), (s0, s1) in zip(bounds, runs):
        for part, value in zip(PARTS, (m["sent"] - t0, s0 - m["sent"], s1 - s0, m["answered"] - s1,
                                       t1 - m["answered"])):
            parts[part].append(value)
        parts["whole step"].append(t1 - t0)
    return {p: statistics.median(v) for p, v in parts.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100)
    args = p.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        times = os.path.join(tmp, "times")
        with server_process(os.path.join(here, "_timed_server.py"), times) as (server, address):
            for name, make in (("chain: 100 tiny ops + backward + grad read", make_chain),
                               ("MLP SGD step with loss.item()", make_mlp)):
                parts = breakdown(make, args.steps, times, server, address)
                local = timeit(make(torch), 11, 5)
                print(f"{name} (median ms per step)")
                for part, value in parts.items():
                    print(f"  {part:28s} {value * 1e3:7.3f}")
                print(f"  {'local torch, whole step':28s} {local * 1e3:7.3f}")


if __name__ == "__main__":
    main()
