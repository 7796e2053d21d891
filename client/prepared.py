"""Prepared calls: an op the program repeats is named to the server once, and its calls travel as ids."""
from __future__ import annotations

from .command_queue import SLOT
from .protos.codec import KIND as K
from .protos.codec import MAX_PREPARED
from .tensor import Tensor

SEEN = -2  # a plan's ``prepared`` once used once, as a CALL: prepared if it is used again


def preparable(inputs, params) -> bool:
    """Whether a call's constants name it exactly in a plan's key: a zero float does not (0.0 and
    -0.0 are one key, and a prepared call would compute with the first one's sign)."""
    for v in (*inputs, *(params.values() if params else ())):
        for x in (v if isinstance(v, tuple) else (v,)):
            if x.__class__ is float and x == 0.0:
                return False
    return True


class PreparedCalls:
    """The plans whose calls are prepared on the server (id = index + 1, up to MAX_PREPARED; past
    that the oldest ids are taken back). A plan's ``prepared`` is 0 (not used yet), SEEN, -1 (never
    prepared: CALL commands) or its id."""

    def __init__(self, queue, cls: type, can_prepare: bool, can_prepare_inplace: bool) -> None:
        self._queue = queue
        self._cls = cls
        self.can_prepare = can_prepare
        self.can_prepare_inplace = can_prepare_inplace
        self.plans: list = []
        self._recycled = 0  # ids taken back from older plans, once all were given

    def queue_call(self, op, inputs, params, plan, tid: int, node_id: int, named: int, where,
                   inplace: bool = False) -> bool:
        """Queue this application of ``plan`` as a prepared call: (its id, output id, node id,
        tensor ids), sent in a CALLS command. False where it goes as a command instead: the plan's
        first use, a plan not prepared, or a poisoned or another session's tensor among the inputs
        (the command's encoding raises the error). ``named``: the tensor a failure before it
        poisons (the output, or an in-place call's target); ``where``: user_line's."""
        pid = plan.prepared
        if pid == 0:  # a plan's first use goes as a command: one that repeats is prepared
            plan.prepared = SEEN
            return False
        if pid == SEEN:
            pid = self._prepare(op, inputs, params, plan, inplace, where)
        if pid < 0:
            return False
        entry, cls, poisoned = [pid, tid, node_id], self._cls, self._queue.poisoned
        for x in inputs:
            if x.__class__ is cls and x._id not in poisoned:
                entry.append(x._id)
            elif isinstance(x, Tensor):
                return False
        self._queue.queue_at(tuple(entry), op.name, (named,), where)
        return True

    def _prepare(self, op, inputs, params, plan, inplace: bool, where) -> int:
        """Name this plan's call on the server once it repeats (a PREPARE command, queued before its
        second use), so that its repetitions travel as ids; its id, or -1 where it is not prepared.
        (A call made once, a notebook's line, a constant that changes every step, is not worth a
        PREPARE.)"""
        plan.prepared = -1
        if not (self.can_prepare_inplace if inplace else self.can_prepare) or not preparable(inputs, params):
            return -1
        if len(self.plans) < MAX_PREPARED:
            self.plans.append(plan)
            pid = len(self.plans)
        else:
            # all ids taken: the oldest is taken back, its plan prepared again if it is used again.
            # Calls queued before this PREPARE still run with the call it replaces (in order).
            pid = self._recycled % MAX_PREPARED + 1
            self._recycled += 1
            self.plans[pid - 1].prepared = 0
            self.plans[pid - 1] = plan
        plan.prepared = pid
        args = tuple(SLOT if isinstance(x, Tensor) else x for x in inputs)
        # outputs[0] is the prepared call's id, no tensor's: the command's info names no output
        cmd = self._queue.build(K.PREPARE, op.name, args, params, (pid,), 0)
        cmd.inplace = inplace
        self._queue.queue_at(cmd, f"prepare {op.name}", (), where)
        return pid

    def forget(self) -> None:
        """The server holds none of this client's prepared calls (a replica restored from a snapshot
        older than them): plans prepare them again as they are used."""
        for plan in self.plans:
            plan.prepared = 0
        self.plans = []
        self._recycled = 0
