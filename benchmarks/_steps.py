"""The median chain and MLP step of a session, after a warm-up: what ab.py's and tls_cost.py's clients time."""
from __future__ import annotations

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
