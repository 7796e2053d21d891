"""Early answers (``ra.connect(..., early_answers=...)``) with client and server on two machines,
simulated on this one by giving each half of its cores.

    python benchmarks/early_answers.py [--rounds N]

The server runs on the second half of the cores, its BLAS with as many threads; this process,
the client and local torch (with as many threads), on the first half. Measured side by side, in
alternating rounds: the MLP SGD step of engine_vs_torch.py (a loss read with item() after the
backward and the update) in local torch, and remote with early answers off and on. With them on,
the server answers item() once the loss is known and runs the backward and the update while the
client builds the next step. (Where client and server share cores, the default there is off:
benchmarks/RESULTS.md.)
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import remote_autograd as ra
import torch
from _server import local_server
from engine_vs_torch import make_mlp

SETTLE = 0.3  # seconds between rounds: BLAS worker threads stop spinning


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round (after 3 untimed)")
    args = p.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs two cores at least: one for the client, one for the server")
    client_cpus, server_cpus = set(cpus[:len(cpus) // 2]), set(cpus[len(cpus) // 2:])
    threads = str(len(server_cpus))
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    with local_server(env=env, cpus=server_cpus) as address:
        os.sched_setaffinity(0, client_cpus)
        torch.set_num_threads(len(client_cpus))
        with ra.connect(address, early_answers=False) as off, ra.connect(address, early_answers=True) as on:
            steps = {"local torch": make_mlp(torch), "remote, early answers off": make_mlp(off),
                     "remote, early answers on": make_mlp(on)}
            times: dict = {name: [] for name in steps}
            for r in range(args.rounds):
                names = list(steps)
                for name in names[r % 3:] + names[:r % 3]:
                    time.sleep(SETTLE)
                    step = steps[name]
                    for _ in range(3):
                        step()
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        step()
                    times[name].append((time.perf_counter() - t0) / args.steps)
    base = times["local torch"]
    print(f"MLP SGD step; client on cores {sorted(client_cpus)}, server on {sorted(server_cpus)} "
          f"({threads} BLAS threads each side); {args.rounds} rounds of {args.steps} steps")
    print(f"{'':28s} {'median ms':>10s} {'/ torch':>8s} {'/ off':>7s}")
    for name, xs in times.items():
        to_torch = statistics.median(a / b for a, b in zip(xs, base))
        to_off = statistics.median(a / b for a, b in zip(xs, times["remote, early answers off"]))
        print(f"{name:28s} {statistics.median(xs) * 1e3:10.3f} {to_torch:8.3f} {to_off:7.3f}")


if __name__ == "__main__":
    main()
