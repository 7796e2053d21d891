"""Session snapshots in a state dir, so a restarted replica brings its sessions back.

A snapshot keeps each tensor's values, requires_grad and grad as .npy files (never pickled)
and the session's token hash. Graph history is not kept: tensors come back as leaves.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import tempfile

import numpy
from google.protobuf.message import DecodeError

from ..engine.backend import from_numpy, to_numpy
from ..engine.tensor import Tensor
from ..protos import autograd_pb2 as pb
from . import commands
from .session import SESSION_ID_FORMAT, Session

log = logging.getLogger("remote_autograd.server")
FORMAT = 1


def save(session: Session, state_dir: str) -> None:
    """Write the session atomically (a temp dir renamed over the old snapshot)."""
    final = os.path.join(state_dir, session.id)
    tmp = tempfile.mkdtemp(prefix=f".{session.id}.", dir=state_dir)
    try:
        entries = []
        for tid, t in list(session.tensors.items()):
            entry = {"id": tid, "requires_grad": bool(t._requires_grad or t.grad_fn is not None)}
            numpy.save(os.path.join(tmp, f"{tid}.npy"), to_numpy(t._data), allow_pickle=False)
            if t._grad is not None:  # the slot: a non-leaf's .grad would warn as in torch
                numpy.save(os.path.join(tmp, f"{tid}.grad.npy"), to_numpy(t._grad._data), allow_pickle=False)
                entry["grad"] = True
            entries.append(entry)
        # prepared calls as the PREPARE commands that made them (protobuf, base64): prepared again
        # on load, through the same checks
        prepared = [base64.b64encode(call.raw).decode() for call in session.prepared.values()]
        manifest = {"format": FORMAT, "id": session.id, "token_sha256": session.token_hash.hex(),
                    "grad_mode": session.grad_mode, "tensors": entries, "prepared": prepared,
                    "tenant": session.tenant}
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        old = final + ".old"
        if os.path.exists(final):
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove(session_id: str, state_dir: str) -> None:
    shutil.rmtree(os.path.join(state_dir, session_id), ignore_errors=True)


def load_all(state_dir: str, limits) -> list[Session]:
    """The sessions snapshotted in ``state_dir``, least recently saved first."""
    found = []
    for name in os.listdir(state_dir):
        path = os.path.join(state_dir, name)
        if name.startswith(".") or not os.path.isdir(path):
            continue
        if name.endswith(".old"):
            continue
        if not SESSION_ID_FORMAT.fullmatch(name):
            log.warning("skipping %s: not a session's snapshot (its name is no session id)", path)
            continue
        try:
            found.append((os.path.getmtime(os.path.join(path, "manifest.json")), name))
        except OSError as e:
            log.warning("skipping unreadable session snapshot %s: %s", path, e)
    sessions = []
    for _, name in sorted(found):
        path = os.path.join(state_dir, name)
        try:
            sessions.append(_load(path, limits))
        except (OSError, ValueError, KeyError, TypeError, NotImplementedError, DecodeError) as e:
            log.warning("skipping unreadable session snapshot %s: %s", path, e)
    return sessions


def _load(path: str, limits) -> Session:
    with open(os.path.join(path, "manifest.json")) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"unknown snapshot format {manifest.get('format')!r}")
    # the id names the directory a later snapshot is written to: only a session id, and its own
    if manifest["id"] != os.path.basename(path):
        raise ValueError(f"its manifest names session {str(manifest['id'])[:80]!r}, not its directory's")
    session = Session(limits, manifest["id"], bytes.fromhex(manifest["token_sha256"]))
    session.next_seq = 0  # the client numbered on past the snapshot: its next batch runs whatever its number
    session.grad_mode = bool(manifest.get("grad_mode", True))
    tenant = manifest.get("tenant")
    session.tenant = tenant if isinstance(tenant, str) else None  # it counts against its tenant's limit again
    for entry in manifest["tensors"]:
        tid = int(entry["id"])
        t = Tensor._make(from_numpy(numpy.load(os.path.join(path, f"{tid}.npy"), allow_pickle=False)))
        if entry.get("requires_grad"):
            t.requires_grad = True
        if entry.get("grad"):
            t.grad = Tensor._make(from_numpy(numpy.load(os.path.join(path, f"{tid}.grad.npy"), allow_pickle=False)))
        session.tensors[tid] = t
    for raw in manifest.get("prepared", ()):
        commands.prepare(session, None, pb.Command.FromString(base64.b64decode(raw)), None)  # (no batch)
    session.dirty = False
    return session
