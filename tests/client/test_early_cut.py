"""The early-answer cut (client/early.py) on plain command lists: where a read may be answered first."""
from __future__ import annotations

from remote_autograd.early import early_cut
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos.codec import KIND as K


def call(name: str, out: int, *refs: int, kind=K.CALL):
    cmd = pb.Command(kind=kind, name=name, outputs=[out] if out else [])
    for r in refs:
        cmd.args.add().ref = r
    return cmd, (name, None, (out,) if out else ())


def other(kind, *refs: int, out: int = 0):
    cmd = pb.Command(kind=kind, outputs=[out] if out else [])
    for r in refs:
        cmd.args.add().ref = r
    return cmd, (pb.Kind.Name(kind), None, (out,) if out else ())


def prepared(name: str, pid: int, out: int, *refs: int):
    return (pid, out, 0, *refs), (name, None, (out,))


def split(*entries):
    return [e[0] for e in entries], [e[1] for e in entries]


def step(loss_op: str = "mse_loss"):
    """A training step as queued: the forward, the loss (id 3), its backward, the update; then the read."""
    return [call("mm", 2, 1, 10), call(loss_op, 3, 2, 11), other(K.BACKWARD, 3),
            other(K.SET_GRAD_MODE), call("sub", 0, 10, 12, kind=K.CALL_INPLACE), other(K.GET_GRAD, 10, out=13),
            call("zero_", 0, 13, kind=K.CALL_INPLACE), other(K.SET_GRAD_MODE)]


def test_a_step_is_cut_after_its_loss():
    cmds, info = split(*step())
    assert early_cut(cmds, info, 3) == 2  # the forward and the loss, then the read's answer


def test_a_loss_outside_the_list_is_not_cut():
    # nll_loss takes class indices: one out of range fails on the server, after the read
    cmds, info = split(*step("nll_loss"))
    assert early_cut(cmds, info, 3) == 0


def test_an_op_after_the_cut_that_can_fail_on_values_keeps_the_queue_whole():
    cmds, info = split(*step(), call("index_select", 20, 1, 14))
    assert early_cut(cmds, info, 3) == 0


def test_a_command_after_the_value_that_reads_it_keeps_the_queue_whole():
    cmds, info = split(*step(), call("mul", 21, 3, 3))
    assert early_cut(cmds, info, 3) == 0
    cmds, info = split(*step(), prepared("mul", 1, 21, 3))
    assert early_cut(cmds, info, 3) == 0


def test_a_fenced_backward_stays_before_the_cut():
    entries = step()
    cmds, info = split(*entries)
    # an in-place write came after the backward's graph: it may fail, so it stays before the cut
    assert early_cut(cmds, info, 3, fenced=3) == 3
    # what comes between the value and a backward that stays before the cut stays too: unchecked
    cmds, info = split(*entries[:2], call("index_select", 20, 1, 14), *entries[2:])
    assert early_cut(cmds, info, 3, fenced=4) == 4
    # what comes after the cut is checked all the same
    cmds, info = split(*entries[:3], call("index_select", 20, 1, 14), *entries[3:])
    assert early_cut(cmds, info, 3, fenced=3) == 0


def test_a_value_not_made_in_the_queue_or_made_last_is_not_cut():
    cmds, info = split(*step())
    assert early_cut(cmds, info, 99) == 0
    cmds, info = split(call("mm", 2, 1, 10), call("mse_loss", 3, 2, 11))
    assert early_cut(cmds, info, 3) == 0  # nothing after it: nothing to answer early
    assert early_cut([], [], 3) == 0


def test_a_value_made_by_a_prepared_call_is_cut_after_it():
    cmds, info = split(call("mm", 2, 1, 10), prepared("mse_loss", 4, 3, 2, 11), other(K.BACKWARD, 3),
                       prepared("sub", 5, 0, 10, 12))
    assert early_cut(cmds, info, 3) == 2
    # a prepared call of an op off the list after it keeps the queue whole
    cmds, info = split(call("mm", 2, 1, 10), prepared("mse_loss", 4, 3, 2, 11), prepared("gather", 6, 7, 1, 9))
    assert early_cut(cmds, info, 3) == 0


def test_a_prepare_of_an_op_off_the_list_keeps_the_queue_whole():
    prep = pb.Command(kind=K.PREPARE, name="index_select", outputs=[7])
    cmds, info = split(*step()[:2], (prep, ("prepare index_select", None, ())))
    assert early_cut(cmds, info, 3) == 0
    prep.name = "mul"
    assert early_cut(cmds, info, 3) == 2
