"""The server, with each batch's execution timed: what benchmarks/breakdown.py starts.

    python benchmarks/_timed_server.py TIMES_FILE [server options]

On SIGUSR1 it writes "start end" (time.perf_counter, the same clock in every process here) of
each batch run since the last signal to TIMES_FILE, then forgets them.
"""
from __future__ import annotations

import signal
import sys
import time

from remote_autograd.server import app, batches

_times: list = []
_run = batches.execute


def _timed(session, request):
    start = time.perf_counter()
    try:
        return _run(session, request)
    finally:
        _times.append((start, time.perf_counter()))


def _dump(signum, frame) -> None:
    with open(sys.argv[1], "w") as f:
        f.writelines(f"{a!r} {b!r}\n" for a, b in _times)
    _times.clear()


if __name__ == "__main__":
    batches.execute = _timed  # the data plane's one entry, which every transport's batch passes
    signal.signal(signal.SIGUSR1, _dump)
    app.main(sys.argv[2:])
