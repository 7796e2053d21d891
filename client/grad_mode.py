"""no_grad, enable_grad and set_grad_enabled for one session: context managers and decorators, as torch's."""
from __future__ import annotations

import functools


class GradMode:
    """Switches ``owner``'s grad mode (an object with ``grad_enabled`` and ``set_grad_mode``) for a
    ``with`` block or a decorated function."""

    def __init__(self, owner, mode: bool) -> None:
        self._owner = owner
        self._mode = mode

    def __enter__(self) -> None:
        self._prev = self._owner.grad_enabled
        self._owner.set_grad_mode(self._mode)

    def __exit__(self, *exc) -> None:
        self._owner.set_grad_mode(self._prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with GradMode(self._owner, self._mode):
                return fn(*args, **kwargs)
        return wrapper


class SetGradEnabled(GradMode):
    """Takes effect at once (a plain call works); restores the previous mode when used with ``with``."""

    def __init__(self, owner, mode: bool) -> None:
        super().__init__(owner, bool(mode))
        self._prev = owner.grad_enabled
        owner.set_grad_mode(self._mode)

    def __enter__(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"torch.autograd.grad_mode.set_grad_enabled(mode={self._mode})"
