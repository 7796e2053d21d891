"""The command queue: commands queued until a sync point, batches sent ahead, answers settled, failures poisoning."""
from __future__ import annotations

import itertools
import sys

import grpc

from .early import early_cut, refs
from .errors import RemoteError, ServerUnavailable, from_batch_error
from .protos import autograd_pb2 as pb
from .protos.codec import KIND as K
from .protos.codec import encode_value
from .tensor import Tensor
from .userline import line_text, user_line, warn_at_user_line

MAX_IN_FLIGHT = 8  # batches sent and not yet answered; past it the client waits for the oldest
_WARNING_TYPES = {cls.__name__: cls for cls in (UserWarning, RuntimeWarning, DeprecationWarning, FutureWarning)}


class Slot:
    """Where a prepared call takes a tensor per call (``ref: 0`` on the wire)."""

    __slots__ = ()


SLOT = Slot()


class Ref:
    """A bare tensor id, for commands about a tensor that has no proxy yet."""

    __slots__ = ("_id",)

    def __init__(self, tid: int) -> None:
        self._id = tid


class CommandQueue:
    """Commands wait here until the program needs an answer (a sync point), ``max_queue`` are
    queued, or (with ``send_ahead``) enough are queued to send them without waiting. Each batch is
    numbered, so the server runs them in order; an error in one is raised at the next sync point,
    naming the command and the user's line that issued it; the commands after it did not run, and
    the tensors they would have made are poisoned.

    Wired by the session: ``serve(batch)`` runs a batch that may call back (set once events are
    open), ``on_functions(freed, released)`` hears which custom Function nodes the server let go,
    ``on_lost_prepared()`` that the server lost this client's prepared calls."""

    def __init__(self, owner, transport, mirror, cls: type, *, eager: bool, max_queue: int) -> None:
        self._owner = owner  # the session: a tensor of another session is refused
        self._transport = transport
        self._mirror = mirror
        self._cls = cls
        self.eager = eager
        self.max_queue = max_queue
        self.send_ahead = 0
        self.early = False  # early answers (see answer)
        self.commands: list = []
        self.info: list = []  # per command: (what, where, output ids)
        self.poisoned: dict[int, str] = {}
        self.releases: list[int] = []  # ids the program dropped: they ride the next batch
        self.user_errors: list[BaseException] = []  # raised by the user's code in a callback
        self.in_callback = 0  # serving a server's callback: nothing numbered, nothing sent ahead
        self.closed = False
        self._inflight: list = []  # (batch, queued commands, their info) of each unanswered batch, oldest first
        self._settled: list = []  # the last sync point's answered batches, freed at the next (see settle)
        self._answered = None  # the answer of the oldest unanswered batch, when read early
        self._seq = itertools.count(1)
        self._resume = False  # a numbered batch failed: the next one tells the server it was seen
        self._ahead_failed = False
        # the end of the last queued backward that an in-place write since its graph was made may
        # fail: (the command list it is in, its position + 1)
        self._fence: tuple | None = None
        self.serve = None
        self.on_functions = None
        self.on_lost_prepared = _nothing

    @property
    def in_flight(self) -> int:
        """Batches sent and not yet answered."""
        return len(self._inflight)

    # ------------------------------------------------------------ building commands
    def ref_of(self, x):
        if isinstance(x, Ref):
            return x._id
        if isinstance(x, Tensor):
            if x._id in self.poisoned:
                raise RuntimeError(f"this tensor was never computed: {self.poisoned[x._id]}")
            if x._session is not self._owner:
                raise RuntimeError("a tensor of another session was passed to this session; tensors "
                                   "cannot cross sessions (use .tolist() or .numpy() to copy values)")
            return x._id
        return None

    def build(self, kind, name, args, kwargs, outputs, node):
        cmd = pb.Command(kind=kind, name=name, node=node, outputs=outputs)
        add, cls, ref_of, poisoned = cmd.args.add, self._cls, self.ref_of, self.poisoned
        for a in args:
            # the common arguments inline: this session's tensors (not poisoned) and floats
            if a.__class__ is cls and a._id not in poisoned:
                add(ref=a._id)
            elif a.__class__ is float:
                add(f=a)
            elif a is SLOT:
                add(ref=0)
            else:
                encode_value(a, add(), ref_of)
        if kwargs:
            for k, v in kwargs.items():
                encode_value(v, cmd.kwargs[k], ref_of)
        return cmd

    def command(self, kind, name: str = "", args=(), kwargs=None, outputs=(), callbacks: bool = False,
                node: int = 0):
        """A command whose answer is needed now: it goes with everything queued, and is waited for."""
        cmd = self.build(kind, name, args, kwargs, outputs, node)
        cmd.describe = True
        return self.execute([cmd], callbacks)[0]

    def enqueue(self, kind, name: str = "", args=(), kwargs=None, outputs=(), node: int = 0) -> None:
        """A command whose result the client already knows: sent with the next batch."""
        self.queue_at(self.build(kind, name, args, kwargs, outputs, node), name or pb.Kind.Name(kind),
                      tuple(outputs), user_line(sys._getframe(1)))

    def queue_at(self, cmd, what: str, outputs: tuple, where) -> None:
        """Queue a command (or a prepared call's tuple) issued at ``where`` (user_line's answer)."""
        if self.closed:  # known here: raised at the user's line, as in eager mode
            raise RemoteError("this session is closed")
        self.commands.append(cmd)
        self.info.append((what, where, outputs))
        n = len(self.commands)
        if n >= self.send_ahead and self.send_ahead and not (self.eager or self.in_callback) and n < self.max_queue:
            self._maybe_send_ahead()
        elif self.eager or n >= self.max_queue:
            try:
                self.flush()
            except Exception:
                # the user's line raises: what this command does on the client never happens
                # (as in eager mode), so it is neither sent again nor its target poisoned
                if self.commands and self.commands[-1] is cmd:
                    del self.commands[-1], self.info[-1]
                if cmd.__class__ is tuple:
                    if not cmd[1]:  # an in-place prepared call: its target
                        self.poisoned.pop(cmd[3], None)
                elif cmd.kind == K.CALL_INPLACE:
                    self.poisoned.pop(cmd.args[0].ref, None)
                raise

    def fence(self) -> None:
        """The backward just queued may fail on the server (an in-place write since its graph was
        made): an early answer's cut stays after it."""
        self._fence = (self.commands, len(self.commands))

    # ------------------------------------------------------------ sending
    def _maybe_send_ahead(self) -> None:
        """Send the queue without waiting for it. With MAX_IN_FLIGHT batches out, read the oldest
        answer first; once one failed, nothing more is sent ahead (the server would refuse it):
        commands queue until the next sync point, which raises the error."""
        if self._ahead_failed or not self._transport.open_stream(not self._inflight):
            return
        if len(self._inflight) >= MAX_IN_FLIGHT:
            batch = self._inflight[0][0]
            try:
                reply = self._transport.answer(batch)
            except grpc.RpcError as e:  # the stream broke: the next sync point says why
                self._ahead_failed = True
                self._answered = e
                return
            if reply.HasField("error"):
                self._ahead_failed = True
                self._answered = reply  # kept for the next sync point, which raises it
                return
            self._inflight.pop(0)
            self._accept(reply)
        self._send(self._batch(self.commands), self.commands, self.info)
        self.commands, self.info = [], []

    def _batch(self, commands, release: bool = True) -> pb.Batch:
        """The next numbered batch: the commands, and (``release``) the ids released since the last one."""
        batch = pb.Batch(commands=wire(commands), seq=0 if self.in_callback else next(self._seq))
        if self._resume:
            batch.resume, self._resume = True, False
        if release and self.releases:
            released = self.releases[:]
            self.releases.clear()
            batch.release.extend(released)
            self._mirror.released(released)
        return batch

    def _send(self, batch, queued, info) -> None:
        self._transport.send(batch)
        self._inflight.append((batch, queued, info))

    # ------------------------------------------------------------ sync points
    def flush(self) -> None:
        """Wait until every queued command has run; raises the first error one of them met."""
        # queued commands never call back: backward and every command that can are sent at once
        if self.commands or self.releases:
            self.execute([], callbacks=False)
        elif self._inflight:
            error, _ = self.settle()
            if error is not None:
                raise error

    def execute(self, commands, callbacks: bool = False, early: int = 0):
        """Send the queue and ``commands`` and wait for their answer. With ``early`` (a cut of the
        queue: ``answer``), the commands after it go as a batch of their own, sent at once and
        answered later; the answer waited for is that of the batch before it."""
        if self.closed:
            raise RemoteError("this session is closed")
        if callbacks and self._inflight:
            # a batch that calls back is served while it runs: nothing sent before may still be running
            later, later_info = self.commands, self.info
            self.commands, self.info = [], []
            error, _ = self.settle(later, later_info)
            if error is not None:
                raise error
            self.commands, self.info = later, later_info
        queued, info = self.commands, self.info
        self.commands, self.info = [], []
        if early:
            # the commands up to the cut, then ``commands``: the batch waited for. The rest goes
            # after it, with the released ids (its commands may still use them).
            batch = self._batch(queued[:early] + list(commands), release=False)
            batch.awaited = True  # a server that holds answers while batches wait sends it at once
            self._send(batch, queued[:early], info[:early])
            rest, rest_info = queued[early:], info[early:]
            self._send(self._batch(rest), rest, rest_info)
            error, reply = self.settle(keep=1)
        else:
            batch = self._batch(queued + list(commands) if queued else commands)
            if callbacks and self.serve is not None:
                reply = self.serve(batch)
                self._inflight.append((batch, queued, info))
                self._answered = reply
            else:
                self._transport.open_stream(not self._inflight)
                self._send(batch, queued, info)
            error, reply = self.settle()
        if error is None:
            results = reply.results  # (only the answers of ``commands``, the batch's last: a
            # slice would wrap every one; queued prepared calls share results)
            return [results[i] for i in range(len(results) - len(commands), len(results))]
        if self.user_errors:
            # a user's hook raised: re-raise that very exception, with the user's traceback
            user_error = self.user_errors.pop(0)
            self.user_errors.clear()
            raise user_error
        raise error

    def answer(self, t: Tensor, cmd) -> object:
        """Run ``cmd`` (which reads ``t``'s value) at a sync point; with early answers, cut the queue
        where ``early_cut`` allows, so the value comes back before the rest runs."""
        cut = 0
        if self.early and len(self.commands) >= 2 and not (self.in_callback or self.eager) and \
                self._transport.open_stream(not self._inflight):
            # (on unary Execute, a batch runs only once its answer is asked for: no cut)
            fence = self._fence
            fenced = fence[1] if fence is not None and fence[0] is self.commands else 0
            cut = early_cut(self.commands, self.info, t._id, fenced)
        return self.execute([cmd], early=cut)[0]

    def settle(self, later=(), later_info=(), keep: int = 0):
        """Read the answer of every unanswered batch, in order. Returns (error, last answer): the
        first failure gives the error to raise, and the commands after the failing one (in later
        batches and in ``later``) did not run and are dropped. The last ``keep`` batches are left
        unanswered, unless one before them failed."""
        # The batches answered at the last sync point are freed now, while the server works on
        # these, and these are kept until the next: freeing a step's commands costs ~40 us (a
        # hundred messages), which would otherwise stand between its last answer and the user.
        inflight, self._inflight = self._inflight, []
        self._settled = inflight
        kept, self._answered = self._answered, None
        self._ahead_failed = False
        failure, last = None, None
        for i, (batch, sent, info) in enumerate(inflight):
            if keep and i == len(inflight) - keep and failure is None:
                self._inflight = inflight[i:]
                break
            if isinstance(kept, grpc.RpcError):  # the stream broke while the batches went ahead
                self._resume = True
                return self._broken(kept), None
            if kept is not None:
                reply, kept = kept, None
            else:
                try:
                    reply = self._transport.answer(batch)
                except grpc.RpcError as e:  # the stream broke: no more answers will come
                    self._resume = True  # the server may never see some numbers: do not wait for them
                    return (self._broken(e) if failure is None else self._failed_at(failure)), None
            if failure is not None:
                failure[1].extend(sent)
                failure[2].extend(info)
            elif reply.HasField("error"):
                failure = (reply.error, list(sent), list(info))
            else:
                self._accept(reply)
                last = reply
        if failure is None:
            return None, last
        self._resume = True
        failure[1].extend(later)
        failure[2].extend(later_info)
        return self._failed_at(failure), None

    def _broken(self, e: grpc.RpcError) -> Exception:
        # the server may come back from a snapshot older than some prepared calls: they are
        # prepared again as they are used (a repeated PREPARE replaces the server's)
        self.on_lost_prepared()
        return self._transport.broken_stream_error(e)

    def _accept(self, reply) -> None:
        """What a batch's reply tells besides its results: Functions freed, warnings raised."""
        if (reply.freed_functions or reply.released_functions) and self.on_functions is not None:
            self.on_functions(reply.freed_functions, reply.released_functions)
        for w in reply.warnings:
            warn_at_user_line(w.message, _WARNING_TYPES.get(w.category, UserWarning))

    # ------------------------------------------------------------ failures
    def _failed_at(self, failure) -> Exception:
        """The exception for a failed batch's answer; if a queued command failed, say which, and
        where the user issued it. It and the commands after it did not run: they are dropped."""
        answer, queued, info = failure
        error = from_batch_error(answer, self._transport.address)
        if isinstance(error, ServerUnavailable):
            self.on_lost_prepared()  # (as _broken says)
        if answer.has_index and answer.index < len(queued):
            if queued[answer.index].__class__ is tuple and answer.code == "NOT_FOUND" and \
                    answer.message.startswith("prepared call"):
                self.on_lost_prepared()  # the server lost them (a restore): prepared again on use
            what, where, _ = info[answer.index]
            line = line_text(where)
            error.add_note(f"(raised by '{what}', issued at {line})")
            self._drop_failed(queued[answer.index:], info[answer.index:], f"'{what}' issued at {line} failed: {error}")
        return error

    def _drop_failed(self, commands, info, reason: str) -> None:
        """A queued command failed: it and those after it did not run. The tensors they create or
        write are poisoned; the state changes after it that the client has already made (grad mode,
        seed, requires_grad, hooks, retained and assigned grads) are queued again, so that the
        server keeps agreeing with the client."""
        for i, (cmd, (what, line, outputs)) in enumerate(zip(commands, info)):
            if cmd.__class__ is tuple:  # a prepared call: it creates its output (writes its target), nothing else
                for tid in outputs:
                    self.poisoned[tid] = reason
                continue
            if cmd.kind == K.BACKWARD:
                # a backward that did not run: the gradients predicted from it are not there
                self._mirror.grads_unknown()
                continue
            for tid in outputs:
                self.poisoned[tid] = reason
            if cmd.kind == K.CALL_INPLACE:
                self.poisoned[cmd.args[0].ref] = reason
            elif i and not outputs:
                if any(ref in self.poisoned for ref in refs(cmd)):
                    if cmd.kind == K.SET_GRAD:  # a gradient never computed: ask the server what .grad is
                        self._mirror.has_grad.pop(cmd.args[0].ref, None)
                    continue
                self.commands.append(cmd)
                self.info.append((what, line, outputs))

    def close(self) -> None:
        """No more commands; let the batches sent finish (the session is closed after them, not under them)."""
        self.closed = True
        self.commands, self.info = [], []
        if self._inflight:
            try:
                self.settle()
            except Exception:  # noqa: BLE001  (closing: nobody is left to tell)
                pass


def wire(entries) -> list:
    """Queued entries as a batch's commands: each run of prepared calls (tuples) one CALLS command."""
    out, run = [], None
    for e in entries:
        if e.__class__ is tuple:
            if run is None:
                run = []
            run.extend(e)
        else:
            if run is not None:
                out.append(pb.Command(kind=K.CALLS, calls=run))
                run = None
            out.append(e)
    if run is not None:
        out.append(pb.Command(kind=K.CALLS, calls=run))
    return out


def _nothing() -> None:
    pass
