"""Start a local server process for a benchmark, as a user would, and stop it afterwards."""
from __future__ import annotations

import contextlib
import subprocess
import sys


@contextlib.contextmanager
def local_server(*extra: str):
    proc = subprocess.Popen([sys.executable, "-m", "remote_autograd.server", "--port", "0", "--log-level", "WARNING",
                             *extra], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("listening on"):
            raise RuntimeError(f"server did not start: {line!r}")
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(30)
