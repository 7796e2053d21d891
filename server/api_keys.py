"""API keys: who may create sessions (and ping or echo), each key naming a tenant with its own limits.

The keys file holds only keys' SHA-256 digests, a line each: ``TENANT SHA256HEX [MAX_SESSIONS]``
(``#`` starts a comment); ``remote-autograd keygen TENANT`` makes a key and prints its line.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_LINE = re.compile(r"^(?P<tenant>[A-Za-z0-9_.@-]{1,64})\s+(?P<digest>[0-9a-f]{64})(?:\s+(?P<sessions>\d+))?$")


@dataclass(frozen=True)
class Tenant:
    name: str
    max_sessions: int | None = None  # None: only the server's --max-sessions


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """The tenants by their keys' digests; a key is checked against every digest in constant time."""

    def __init__(self, entries: list[tuple[bytes, Tenant]]) -> None:
        self._entries = entries

    @classmethod
    def from_file(cls, path: str) -> ApiKeys:
        entries = []
        with open(path) as f:
            for number, raw in enumerate(f, 1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                m = _LINE.match(line)
                if m is None:
                    raise ValueError(f"{path}:{number}: expected 'TENANT SHA256HEX [MAX_SESSIONS]'")
                sessions = m.group("sessions")
                entries.append((bytes.fromhex(m.group("digest")),
                                Tenant(m.group("tenant"), int(sessions) if sessions else None)))
        if not entries:
            raise ValueError(f"{path} names no key: every CreateSession would be refused")
        return cls(entries)

    def tenant(self, key: str | None) -> Tenant | None:
        """The tenant whose key this is, or None."""
        if not key:
            return None
        given = hashlib.sha256(key.encode()).digest()
        found = None
        for stored, tenant in self._entries:  # every entry compared: the time says nothing of which matched
            if hmac.compare_digest(stored, given):
                found = tenant
        return found


def keygen(tenant: str, max_sessions: int | None = None) -> tuple[str, str]:
    """A new key (give it to the tenant) and its line for the keys file (the server keeps only that)."""
    key = "ra_" + secrets.token_urlsafe(32)
    line = f"{tenant} {digest(key)}" + (f" {max_sessions}" if max_sessions else "")
    if not _LINE.match(line):
        raise ValueError(f"a tenant is 1 to 64 of A-Z a-z 0-9 _ . @ -, not {tenant!r}")
    return key, line
