"""The early-answer cut: where a queue may be split so a value read is answered before the commands after it run."""
from __future__ import annotations

from .protos.codec import KIND as K

# What may follow the cut. Ops whose every error is one of shape, dtype or grad mode, which the
# client raises at the user's line before queueing them, and whose result is a new tensor (no view,
# no input given back): arithmetic, activations, matrix products, reductions, losses with no index
# argument, as call or in-place. Not here, among others: integer division and remainder (a zero
# divisor), pow (integers to negative powers), indexing and gathering (an index out of range),
# views, casts.
EARLY_OPS = frozenset((
    "abs", "add", "addmm", "bmm", "clamp", "cos", "cosh", "div", "dot", "exp", "expm1", "leaky_relu", "log",
    "log1p", "log_softmax", "logsumexp", "maximum", "mean", "mean_dim", "minimum", "mm", "mse_loss", "mul", "mv",
    "neg", "reciprocal", "relu", "rsqrt", "rsub", "sigmoid", "silu", "sin", "sinh", "softmax", "softplus",
    "sqrt", "sub", "sum", "sum_dim", "tan", "tanh", "zero_", "fill_",
    "binary_cross_entropy_with_logits", "elu",
))
# Commands besides calls that may follow it: their errors, too, are raised by the client before
# they queue (a backward may follow it where its fence allows: see ``early_cut``).
EARLY_KINDS = frozenset((K.SET_GRAD_MODE, K.GET_GRAD, K.SET_GRAD, K.DETACH, K.DATA, K.RETAIN_GRAD,
                         K.SET_REQUIRES_GRAD, K.MANUAL_SEED))


def early_cut(commands: list, info: list, tid: int, fenced: int = 0) -> int:
    """Where ``commands`` may be cut so that tensor ``tid``'s value is answered before the commands
    after the cut run (they go as a batch of their own, answered at the next sync point), or 0.
    A training step reads its loss after its backward and its update: the server answers once the
    loss is known, and runs the rest while the program builds its next step.

    ``commands`` are queued entries (a Command, or a prepared call's tuple: its id, output, node,
    tensor ids), ``info`` their (what, where, outputs); ``fenced``: a backward before this position
    may fail (an in-place write came after its graph was made) and stays before the cut.

    Only where nothing is lost by it: no command after the cut can fail on the server but for its
    own faults (out of memory, a session's tensor limit), since its error would be raised at the
    next sync point, not at this one (EARLY_OPS, EARLY_KINDS, and a backward only where unfenced);
    ``tid`` is a fresh result of such an op made in the queue, and no command after it reads or
    writes ``tid`` (a backward from it excepted), so that nothing after the cut changes its value."""
    n = len(commands)
    if n < 2:
        return 0
    cut = 0  # the position after the last backward that stays before the cut: what follows is checked
    for k in range(n - 1, -1, -1):
        cmd = commands[k]
        what, _, outputs = info[k]
        if cmd.__class__ is tuple:  # a prepared call
            if tid == cmd[1]:  # the command that makes tid
                break
            if (not cut and what not in EARLY_OPS) or tid in cmd[3:]:
                return 0
            continue
        if tid in outputs:
            break
        kind = cmd.kind
        if kind == K.CALL or kind == K.CALL_INPLACE:
            if (not cut and what not in EARLY_OPS) or tid in refs(cmd):
                return 0
        elif kind == K.BACKWARD:
            if k < fenced:
                cut = cut or k + 1
        elif kind == K.PREPARE:
            if not cut and cmd.name not in EARLY_OPS:
                return 0
        elif (not cut and kind not in EARLY_KINDS) or tid in refs(cmd):
            return 0
    else:
        return 0  # tid is not made in the queue
    if what not in EARLY_OPS:
        return 0
    cut = cut or k + 1
    return cut if cut < n else 0


def refs(cmd):
    """The tensor ids a command names."""
    stack = list(cmd.args) + list(cmd.kwargs.values())
    while stack:
        v = stack.pop()
        kind = v.WhichOneof("kind")
        if kind == "ref":
            yield v.ref
        elif kind == "list":
            stack.extend(v.list.items)
