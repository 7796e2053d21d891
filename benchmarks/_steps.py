"""The median chain and MLP step of a session, after a warm-up: what ab.py's and tls_cost.py's clients time."""
from __future__ import annotations

import statistics
import time

from engine_vs_torch import make_chain, make_mlp

WARM_UP = 20


def median_steps(connect, steps: int) -> dict:
    """{"chain": seconds, "mlp": seconds, "wire": what the batches travelled on}; ``connect()`` opens a session."""
    out = {}
    for name, make in (("chain", make_chain), ("mlp", make_mlp)):
        with connect() as t:
            step = make(t)
            for _ in range(WARM_UP):
                step()
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            times.sort()
            out[name] = times[len(times) // 2]
            out["wire"] = t.wire.kind if hasattr(t, "wire") else None
    return out


def report(runs: dict, base: str, other: str) -> None:
    """Per workload: each side's median step, and the median and range of the per-round ratio other / base."""
    for w in ("chain", "mlp"):
        ratios = sorted(o[w] / b[w] for o, b in zip(runs[other], runs[base]))
        b_ms = statistics.median(r[w] for r in runs[base]) * 1e3
        o_ms = statistics.median(r[w] for r in runs[other]) * 1e3
        print(f"  {w:5s} {base} {b_ms:.3f} ms, {other} {o_ms:.3f} ms; {other}/{base} per round: median "
              f"{statistics.median(ratios):.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f}")
