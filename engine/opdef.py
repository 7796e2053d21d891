"""The shape of one op-table row: name, node name, forward on arrays, one VJP per input."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# A VJP slot that is not an autograd input at all (an index, a condition): it gets no
# entry in next_functions, as in torch.
NOT_DIFF = "not-differentiable"


@dataclass(frozen=True)
class OpDef:
    name: str
    node: str | None                  # torch's grad_fn name; None: never differentiable
    forward: Callable                 # (*arrays_or_scalars, **params) -> array | tuple of arrays
    vjps: tuple = ()                  # per input: vjp(g, inputs, out, params) -> Tensor, None, or NOT_DIFF
    save: tuple[int, ...] = ()        # inputs whose values the VJPs read (version-checked)
    save_output: bool = False         # the VJPs read the output
    save_tail: int | None = None      # also save every input from this position on (index tensors)
    # (input, inputs whose VJPs read it) pairs: such an input is saved, and version-checked, only
    # when one of those inputs takes part in autograd (torch saves self for mul only if other
    # requires grad)
    saved_by: tuple = ()
    num_outputs: int = 1
    differentiable_outputs: tuple[bool, ...] = (True,)
    view: bool = False                # output shares storage and version counter with input 0
    variadic: bool = False            # inputs are a list; vjps[0] returns one gradient per input
    # per differentiable input, the same VJP on arrays: a backward that records nothing runs these
    # (ops.py array_vjps); None: the op has none
    array_vjps: tuple | None = None
    diff_vjps: tuple = field(init=False, repr=False)
    diff_inputs: tuple[int, ...] = field(init=False, repr=False)
    # saved_by as a recorded node reads it: input -> positions in its edges (diff_inputs order)
    read_by: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.variadic:
            assert not self.saved_by, self.name
            object.__setattr__(self, "diff_inputs", None)
            object.__setattr__(self, "diff_vjps", self.vjps)
            object.__setattr__(self, "read_by", {})
            return
        diff = tuple(i for i, v in enumerate(self.vjps) if v is not NOT_DIFF)
        object.__setattr__(self, "diff_inputs", diff)
        object.__setattr__(self, "diff_vjps", tuple(self.vjps[i] for i in diff))
        object.__setattr__(self, "read_by", {i: tuple(diff.index(r) for r in readers)
                                             for i, readers in self.saved_by})
