"""Start a local server process for a benchmark, as a user would, and stop it afterwards."""
from __future__ import annotations

import contextlib
import subprocess
import sys


@contextlib.contextmanager
def server_process(*command: str):
    """``python *command --port 0 --log-level WARNING`` (a server): its process and address."""
    proc = subprocess.Popen([sys.executable, *command, "--port", "0", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("listening on"):
            raise RuntimeError(f"server did not start: {line!r}")
        yield proc, line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(30)


@contextlib.contextmanager
def local_server(*extra: str):
    """The server, as ``remote-autograd serve`` runs it, with ``extra`` options: its address."""
    with server_process("-m", "remote_autograd.server", *extra) as (_, address):
        yield address
