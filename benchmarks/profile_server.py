"""The server's side of a step, without the network: batches captured from a real client, run
again in this process, timed and profiled.

    python benchmarks/profile_server.py [chain|mlp] [--steps N]

A client runs the program (engine_vs_torch.py's chain or MLP step) against a server for N steps,
keeping each batch it sends; the batches then run again, in order, on a fresh session here. The
median time per batch is printed, and a profile of the last 40 (pyinstrument if installed,
else cProfile by own time).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy
import remote_autograd as ra
from _server import local_server
from engine_vs_torch import make_chain, make_mlp
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.server.app import tune_gc
from remote_autograd.server.batches import execute
from remote_autograd.server.registry import Limits, Registry
from remote_autograd.transport import Observer

TIMED = 40


def capture(make, steps: int) -> list[bytes]:
    sent: list[bytes] = []

    class Keep(Observer):
        def sent(self, batch):
            sent.append(batch.SerializeToString())

    # one batch per step (nothing sent ahead): a batch's time is a step's server work
    with local_server() as address, ra.connect(address, send_ahead=0) as t:
        t.wire.observe(Keep())
        step = make(t)
        for _ in range(steps):
            step()
    return sent


def replay(batches: list[bytes], profiler=None) -> float:
    """Seconds per batch of the last TIMED batches, run on a fresh session after the others."""
    session = Registry(Limits()).create()
    for raw in batches[:-TIMED]:
        if execute(session, pb.Batch.FromString(raw)).HasField("error"):
            raise RuntimeError("a captured batch failed on replay")
    timed = [pb.Batch.FromString(raw) for raw in batches[-TIMED:]]
    if profiler is not None:
        profiler.enable()
    t0 = time.perf_counter()
    for batch in timed:
        execute(session, batch)
    elapsed = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
    return elapsed / TIMED


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("program", nargs="?", default="chain", choices=["chain", "mlp"])
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args()
    numpy.seterr(all="ignore")  # as the server sets it
    tune_gc()  # and its garbage collector (else a collection's pause lands on whatever allocated)
    batches = capture(make_chain if args.program == "chain" else make_mlp, max(args.steps, TIMED + 1))
    times = [replay(batches) for _ in range(11)]
    print(f"{args.program}: {len(batches)} batches, {len(pb.Batch.FromString(batches[-1]).commands)} commands "
          f"in the last; run again in-process: median {statistics.median(times) * 1e3:.3f} ms per batch "
          f"(min {min(times) * 1e3:.3f})")
    try:
        from pyinstrument import Profiler
    except ImportError:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        replay(batches, prof)
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return

    class _Pyinstrument:  # the enable/disable pair replay() calls
        def __init__(self) -> None:
            self.p = Profiler(interval=0.0001)

        def enable(self) -> None:
            self.p.start()

        def disable(self) -> None:
            self.p.stop()
    prof = _Pyinstrument()
    replay(batches, prof)
    print(prof.p.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()
