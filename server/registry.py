"""The server's sessions by id and its limits: creation, lookup by token, expiry, snapshots, open streams."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from ..protos.protocol import SESSION_ID
from . import snapshot
from .errors import ResourceExhausted, Unauthenticated
from .session import SESSION_ID_FORMAT, Session

log = logging.getLogger("remote_autograd.server")



@dataclass
class Limits:
    max_sessions: int = 1000
    max_tensors: int = 1_000_000
    session_ttl: float = 3600.0
    callback_timeout: float = 60.0
    state_dir: str | None = None
    # ExecuteStream holds a worker thread for as long as it is open: past this many open streams
    # a new one is refused and its client uses Execute (unary) instead
    max_streams: int = 32
    # Subscribe streams hold a worker thread each too: all sessions' together, and one session's
    # watchers (its controller is one at most: a new one ends the old)
    max_event_streams: int = 16
    max_watchers: int = 4
    # numbered batches: how far ahead of the next to run a batch's number may be (and how many of
    # a session's batches may wait for their turn at once), and how long one waits
    seq_window: int = 64
    seq_wait: float = 10.0
    # commands in one batch (a CALLS command counts one per call), elements in one tensor a
    # request creates (an upload, a factory), bytes in one message (gRPC's and the lane's)
    max_commands: int = 100_000
    max_elements: int = 1 << 31
    max_message_bytes: int = 256 << 20
    # bytes an Echo (which needs no session) carries
    max_echo_bytes: int = 4 << 20


class Registry:
    """Live sessions by id; idle ones expire unless a client keeps a stream open. An open stream is
    any handle with ``cancel()`` (a gRPC call's context, a direct lane's connection)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
        self.streams: dict = {}  # open batch streams: handle -> session
        self.events: dict = {}  # open event streams (Subscribe): handle -> (session, controller)
        if limits.state_dir:
            os.makedirs(limits.state_dir, exist_ok=True)
            restored = snapshot.load_all(limits.state_dir, limits)
            if len(restored) > limits.max_sessions:  # the most recently used ones come back
                log.warning("the state dir holds %d sessions; the limit (--max-sessions) is %d: the %d "
                            "least recently saved stay on disk, not restored", len(restored),
                            limits.max_sessions, len(restored) - limits.max_sessions)
                restored = restored[-limits.max_sessions:] if limits.max_sessions > 0 else []
            for s in restored:
                self.sessions[s.id] = s
            if self.sessions:
                log.info("restored %d sessions from %s", len(self.sessions), limits.state_dir)

    def create(self, proposed: str | None = None, tenant=None) -> Session:
        """A new session (of ``tenant``, an api_keys.Tenant, where the server has keys)."""
        if proposed is not None and not SESSION_ID_FORMAT.fullmatch(proposed):
            raise ValueError(f"{SESSION_ID} on CreateSession must be 32 lowercase hex digits")
        with self.lock:
            if len(self.sessions) >= self.limits.max_sessions:
                raise ResourceExhausted(f"the server holds {len(self.sessions)} sessions, its limit")
            if tenant is not None and tenant.max_sessions is not None:
                held = sum(1 for s in self.sessions.values() if s.tenant == tenant.name)
                if held >= tenant.max_sessions:
                    raise ResourceExhausted(f"tenant {tenant.name} holds {held} sessions, its limit is "
                                            f"{tenant.max_sessions}")
            if proposed in self.sessions:
                raise ValueError("that session id is taken; propose another")
            s = Session(self.limits, proposed)
            s.tenant = tenant.name if tenant is not None else None
            self.sessions[s.id] = s
        return s

    def get(self, session_id: str, token: str) -> Session:
        """The open session with that id, if the token is its own; marks it used."""
        s = self.sessions.get(session_id)
        if s is None or s.closed:
            raise Unauthenticated("unknown session or bad token")
        s.check_token(token)
        s.last_used = time.monotonic()
        return s

    def close(self, s: Session, reason: str = "closed") -> None:
        with self.lock:
            self.sessions.pop(s.id, None)
            streams = [handle for handle, owner in self.streams.items() if owner is s]
        for handle in streams:  # an expired session's stream frees its worker thread
            handle.cancel()
        s.close(reason)
        if self.limits.state_dir:
            snapshot.remove(s.id, self.limits.state_dir)

    def snapshot(self) -> int:
        """Save every session changed since its last snapshot; returns how many were saved."""
        if not self.limits.state_dir:
            return 0
        saved = 0
        for s in list(self.sessions.values()):
            if not s.dirty or s.closed:
                continue
            with s.lock:
                s.dirty = False
                try:
                    snapshot.save(s, self.limits.state_dir)
                    saved += 1
                except OSError as e:
                    s.dirty = True
                    log.error("could not snapshot session %s: %s", s.id, e)
        return saved

    def end_streams(self) -> None:
        """Stopping: end every session's event and batch streams (the sessions themselves stay, for a
        snapshot). A batch running on a stream completes; only its answer is lost."""
        for s in list(self.sessions.values()):
            s.end_streams()
        with self.lock:
            streams = list(self.streams)
        for handle in streams:
            handle.cancel()

    def open_stream(self, handle, session) -> bool:
        with self.lock:
            if len(self.streams) >= self.limits.max_streams:
                return False
            self.streams[handle] = session
            return True

    def close_stream(self, handle) -> None:
        with self.lock:
            self.streams.pop(handle, None)

    def open_events(self, handle, session, controller: bool) -> None:
        """Count an event stream (Subscribe) against the limits, or refuse it: each holds a worker
        thread for as long as it is open, and without a bound one session's watchers took them all."""
        limits = self.limits
        with self.lock:
            if len(self.events) >= limits.max_event_streams:
                raise ResourceExhausted(f"the server has {len(self.events)} open event streams, the limit "
                                        f"(--max-event-streams) is {limits.max_event_streams}")
            if not controller:
                watching = sum(1 for s, ctl in self.events.values() if s is session and not ctl)
                if watching >= limits.max_watchers:
                    raise ResourceExhausted(f"this session has {watching} open watch streams, the limit "
                                            f"(--max-watchers) is {limits.max_watchers}")
            self.events[handle] = (session, controller)

    def close_events(self, handle) -> None:
        with self.lock:
            self.events.pop(handle, None)

    def reap(self) -> None:
        now = time.monotonic()
        for s in list(self.sessions.values()):
            if s.controller is None and now - s.last_used > self.limits.session_ttl:
                log.info("session %s expired after %.0f s idle", s.id, now - s.last_used)
                self.close(s, "expired")
