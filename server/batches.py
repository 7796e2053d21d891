"""The data plane: runs a session's batch of commands, whichever transport brought it (gRPC, the lane)."""
from __future__ import annotations

import time
from collections.abc import Callable

from ..engine.backend import errstate
from ..protos import autograd_pb2 as pb
from ..protos.codec import KIND as K
from . import relay
from .commands import HANDLERS
from .errors import Cancelled, CommandError, ResourceExhausted, Unauthenticated, failure_of
from .session import Session

# commands between two looks at whether the batch's call was cancelled
CANCEL_CHECK_EVERY = 256


class BatchContext:
    """What one running batch tells its commands. Each batch has its own: a client's batch that runs
    while a backward waits for the client's hook leaves the waiting batch's untouched."""

    __slots__ = ("want_meta", "extra_index", "releasing", "cancelled")

    def __init__(self, releasing: frozenset = frozenset(), cancelled: Callable[[], bool] | None = None) -> None:
        self.want_meta = True  # per command (Command.describe): describe the tensors it creates
        # how many more commands than its position the batch's CALLS commands counted as so far
        # (a CALLS counts as one command per call in an error's index: commands.calls)
        self.extra_index = 0
        # ids the batch releases after its commands: they do not count against the tensor limit
        self.releasing = releasing
        # whether the call that brought the batch was cancelled (or its deadline passed): a long
        # batch whose client gave up stops (None: never)
        self.cancelled = cancelled


def answer(session: Session, request: pb.Batch, cancelled: Callable[[], bool] | None = None) -> pb.BatchResult:
    """A batch's answer: its results, or its failure as the answer's error (never raises).
    ``cancelled()``: whether the call that brought it gave up (the batch stops if so)."""
    try:
        if session.closed:
            raise Unauthenticated("unknown session or bad token")
        session.last_used = time.monotonic()
        return execute(session, request, cancelled)
    except Exception as e:  # noqa: BLE001  (the batch's answer carries it)
        return pb.BatchResult(error=failure_of(e))


def execute(session: Session, request: pb.Batch, cancelled: Callable[[], bool] | None = None) -> pb.BatchResult:
    """Run a batch in its turn, under the session's lock, grad mode and generator; raises its failure
    (a CommandError names the failing command)."""
    reply = pb.BatchResult()
    # numpy's error state is per thread, and torch warns of no nan or inf: none here either
    with session.turn(request.seq, request.resume), relay.collect() as warned, session.lock, \
            session.active(), errstate(all="ignore"):
        session.dirty = True
        try:
            check_size(session, request)
            _run(session, request, reply, cancelled)
        finally:
            # after the commands: a queued command may use an id the client dropped since
            session.release(request.release)
    for category, message in warned:
        reply.warnings.add(category=category, message=message)
    return reply


def check_size(session: Session, request: pb.Batch) -> None:
    """Refuse a batch of more commands than the limit before any runs (in its turn: a refused
    numbered batch is a failed one)."""
    limit = session.limits.max_commands
    count = len(request.commands)
    if count <= limit:
        # a CALLS command counts one per call: at most one per 3 ids (a call of no tensors)
        bound = count + sum(len(cmd.calls) // 3 - 1 for cmd in request.commands if cmd.kind == K.CALLS)
        if bound <= limit:
            return
        count = _count_calls(session, request)
    if count > limit:
        raise ResourceExhausted(f"a batch of {count} commands (a CALLS command counts one per call); the "
                                f"limit (--max-commands) is {limit}: send them in smaller batches")


def _count_calls(session: Session, request: pb.Batch) -> int:
    count, prepared = 0, session.prepared
    for cmd in request.commands:
        if cmd.kind != K.CALLS:
            count += 1
            continue
        ids = cmd.calls
        p, n = 0, len(ids)
        while p < n:
            call = prepared.get(ids[p])
            if call is None:  # prepared in this batch, or unknown: the bound for the rest
                count += max(1, (n - p) // 3)
                break
            p += 3 + len(call.slots)
            count += 1
    return count


def _run(session: Session, request: pb.Batch, reply: pb.BatchResult,
         cancelled: Callable[[], bool] | None = None) -> None:
    """Run the batch in order; the first failing command stops it (later ones do not run)."""
    results = reply.results
    ctx = BatchContext(frozenset(request.release), cancelled)
    for i, cmd in enumerate(request.commands):
        if cancelled is not None and not i % CANCEL_CHECK_EVERY and i and cancelled():
            raise CommandError(i + ctx.extra_index, Cancelled(
                f"the call that brought this batch was cancelled (or its deadline passed) after {i} of "
                f"its {len(request.commands)} commands ran"))
        try:
            ctx.want_meta = cmd.describe
            HANDLERS[cmd.kind](session, ctx, cmd, results.add())
        except KeyError as missing:
            # (no local name for the new error: a frame holding it, and its traceback holding the
            # frame, made a cycle that kept the batch's arrays alive until a full collection)
            raise CommandError(i + ctx.extra_index, ValueError(
                f"command {pb.Kind.Name(cmd.kind)}{' ' + cmd.name if cmd.name else ''}: {missing} is a "
                "missing argument or an unknown name") if cmd.kind in HANDLERS else NotImplementedError(
                f"command kind {cmd.kind} is unknown to this server (a client newer than the server?)")) from None
        except AttributeError as e:
            # a tensor where the op wants a number or the other way round, deep in the engine
            raise CommandError(i + ctx.extra_index, TypeError(
                f"command {pb.Kind.Name(cmd.kind)}{' ' + cmd.name if cmd.name else ''}: an argument of the "
                f"wrong type ({e})")) from None
        except Exception as e:  # noqa: BLE001  (re-raised with the command's index)
            raise CommandError(i + ctx.extra_index, e) from e
    if session.released_functions:
        reply.released_functions.extend(session.released_functions)
        session.released_functions.clear()
    if session.freed_functions:
        reply.freed_functions.extend(session.freed_functions)
        session.freed_functions.clear()
