"""Remote sessions against local torch and raw gRPC, side by side in one run (issue: local speed).

    python benchmarks/remote_vs_local.py [--quick]

Starts a server process on this machine, then measures:
  chain     100 tiny elementwise ops + backward + read the grad: remote (lazy) / local torch,
            steps back to back as a loop runs them, on the direct lane (the default where the
            server offers it) and on the gRPC stream, and the 10 steps right after a pause
  mlp       SGD step X 256x512, W1 512x512, relu, W2 512x10, mse, loss.item(): remote / local torch,
            steps as a training loop runs them (5 untimed after each pause), and the 3 steps right
            after a pause (the first measure of earlier runs)
  transfer  upload + download of a 64 MiB float32 tensor: throughput / raw gRPC bytes echo
  eager     one tiny op in eager mode / raw gRPC unary ping
  scaling   1, 4 and 16 client processes running the MLP step on one server: aggregate steps/s
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import grpc
import numpy as np
import remote_autograd as ra
import torch
from _server import local_server
from engine_vs_torch import make_chain as chain_program
from engine_vs_torch import make_mlp as mlp_program
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos import autograd_pb2_grpc as pb_grpc


def _scaling_worker(address, steps, ready, done):
    with ra.connect(address) as t:
        step = mlp_program(t)
        step()
        ready.wait()  # every client is connected and warm: start together
        for _ in range(steps):
            step()
        done.wait()


def scaling(address, clients: int, steps: int) -> float:
    """Aggregate MLP steps per second of ``clients`` processes sharing one server."""
    ctx = mp.get_context("spawn")
    ready, done = ctx.Barrier(clients + 1), ctx.Barrier(clients + 1)
    procs = [ctx.Process(target=_scaling_worker, args=(address, steps, ready, done)) for _ in range(clients)]
    for p in procs:
        p.start()
    ready.wait()
    t0 = time.perf_counter()
    done.wait()
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return clients * steps / wall


SETTLE = 0.3  # seconds: longer than OpenBLAS's and libgomp's spin-wait after a call


def paired(base, remote, rounds: int, inner: int, warm: int = 1, settle: float = SETTLE) -> tuple[float, float]:
    """Median seconds per call of each side, measured in alternating rounds: this machine's speed
    drifts over seconds, and interleaving keeps both sides under the same conditions. Each sample
    starts after a pause: BLAS and OpenMP worker threads spin for a while after their last call,
    and those of one side must not eat the cores the other side is measured on. ``warm`` calls
    after the pause are not timed: a training loop's steps follow one another, and the first
    steps after an idle pause (threads asleep, caches cold) are not what it runs at. ``settle=0``
    runs the blocks back to back, as a loop runs its steps, where neither side's threads spin
    (the chain: no BLAS call on either side)."""
    for _ in range(3):
        base()
        remote()
    b, r = [], []
    for _ in range(rounds):
        for fn, out in ((base, b), (remote, r)):
            time.sleep(settle)
            for _ in range(warm):
                fn()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            out.append((time.perf_counter() - t0) / inner)
    return statistics.median(b), statistics.median(r)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="fewer repetitions, no 16-client run")
    args = p.parse_args()
    rounds = 7 if args.quick else 21
    rows = []
    # the transfer baseline echoes 64 MiB in one message: more than a server echoes by default
    with local_server("--max-echo-bytes", str(64 << 20)) as address:
        channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 1 << 30),
                                                          ("grpc.max_send_message_length", 1 << 30)])
        stub = pb_grpc.RemoteAutogradStub(channel)
        with ra.connect(address) as t, ra.connect(address, direct=False) as on_grpc:
            rows.append(("chain: 100 ops + backward + grad",
                         *paired(chain_program(torch), chain_program(t), rounds, 10, warm=5, settle=0),
                         "remote / torch", "<= 3x"))
            rows.append(("  the same on the gRPC stream",
                         *paired(chain_program(torch), chain_program(on_grpc), rounds, 10, warm=5, settle=0),
                         "remote / torch", ""))
            rows.append(("  10 steps right after a pause",
                         *paired(chain_program(torch), chain_program(t), rounds, 10), "remote / torch", ""))
            rows.append(("mlp: SGD step, loss.item()",
                         *paired(mlp_program(torch), mlp_program(t), rounds, 10, warm=5), "remote / torch",
                         "<= 1.3x"))
            rows.append(("  the same on the gRPC stream",
                         *paired(mlp_program(torch), mlp_program(on_grpc), rounds, 10, warm=5), "remote / torch",
                         ""))
            rows.append(("  3 steps right after a pause",
                         *paired(mlp_program(torch), mlp_program(t), rounds, 3), "remote / torch", ""))
            host = np.random.default_rng(1).standard_normal(16 << 20, dtype=np.float32)  # 64 MiB
            blob = pb.Blob(data=host.tobytes())

            def roundtrip():
                x = t.tensor(host)
                x.numpy()
            echo, ours = paired(lambda: stub.Echo(blob), roundtrip, max(3, rounds // 3), 1)
            rows.append(("transfer: 64 MiB up + down", echo, ours, "echo throughput / ours", ">= 0.7x"))
        with ra.connect(address, eager=True) as te:
            a = te.ones(4, requires_grad=True)
            rows.append(("eager: one tiny op", *paired(lambda: stub.Ping(pb.Empty()), lambda: a * 2.0, rounds, 200),
                         "op / ping", "<= 1.3x"))
        counts = (1, 4) if args.quick else (1, 4, 16)
        rates = [(n, scaling(address, n, 10 if args.quick else 20)) for n in counts]
        channel.close()
    print(f"{'workload':36s} {'baseline':>11s} {'remote':>11s} {'ratio':>7s}  target")
    for name, base, remote, what, target in rows:
        ratio = remote / base if not what.startswith("echo") else base / remote
        print(f"{name:36s} {base * 1e3:9.3f}ms {remote * 1e3:9.3f}ms {ratio:6.2f}x  {target} ({what})")
    print("scaling (MLP step, one server):",
          ", ".join(f"{n} client{'s' if n > 1 else ''}: {r:.1f} steps/s" for n, r in rates))
    print(f"(torch threads: {torch.get_num_threads()}; cores: {mp.cpu_count()})")


if __name__ == "__main__":
    main()
