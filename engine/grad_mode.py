"""Grad mode per session/thread (a contextvar), with torch's no_grad, enable_grad and set_grad_enabled."""
from __future__ import annotations

import contextvars
import functools

_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("grad_enabled", default=True)


def is_grad_enabled() -> bool:
    return _enabled.get()


class _GradModeContext:
    """Context manager and decorator, as torch's grad-mode classes are."""

    _mode: bool

    def __enter__(self) -> None:
        self._prev = _enabled.get()
        _enabled.set(self._mode)

    def __exit__(self, *exc) -> None:
        _enabled.set(self._prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradModeContext):  # noqa: N801
    _mode = False


class enable_grad(_GradModeContext):  # noqa: N801
    _mode = True


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """Takes effect at once (a plain call works), and restores the previous mode on exit."""

    def __init__(self, mode: bool) -> None:
        self._prev = _enabled.get()
        self._mode = bool(mode)
        _enabled.set(self._mode)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        _enabled.set(self._prev)

    def __call__(self, fn):
        _enabled.set(self._prev)  # used as a decorator: undo the eager switch

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self._mode):
                return fn(*args, **kwargs)
        return wrapper

    def __repr__(self) -> str:
        return f"<torch.autograd.grad_mode.set_grad_enabled object at {hex(id(self))}>"
