"""The machine a process runs on, as an opaque digest that server and client compare
(SessionInfo.host): processes on one machine, in containers or not, share its cores."""
from __future__ import annotations

import functools
import hashlib
import socket


@functools.cache
def host_digest() -> str:
    """A digest of this machine's kernel boot id (containers on one machine share it), or of its
    host name where there is none; nothing of either can be read back from it."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            ident = "boot:" + f.read().strip()
    except OSError:
        ident = "name:" + socket.gethostname()
    return hashlib.sha256(b"remote-autograd host\0" + ident.encode()).hexdigest()[:32]
