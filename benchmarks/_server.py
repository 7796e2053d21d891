"""Start a local server process for a benchmark, as a user would, and stop it afterwards."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys


@contextlib.contextmanager
def server_process(*command: str, env: dict | None = None, cpus: set | None = None):
    """``python *command --port 0 --log-level WARNING`` (a server): its process and address.
    ``env``: its environment; ``cpus``: the only cores it may run on."""
    proc = subprocess.Popen([sys.executable, *command, "--port", "0", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, text=True, env=env,
                            preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus))
    try:
        line = proc.stdout.readline()
        if not line.startswith("listening on"):
            raise RuntimeError(f"server did not start: {line!r}")
        yield proc, line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(30)


@contextlib.contextmanager
def local_server(*extra: str, env: dict | None = None, cpus: set | None = None):
    """The server, as ``remote-autograd serve`` runs it, with ``extra`` options: its address."""
    with server_process("-m", "remote_autograd.server", *extra, env=env, cpus=cpus) as (_, address):
        yield address
