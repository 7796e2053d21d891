"""Grad mode per session/thread (a contextvar), with torch's no_grad, enable_grad and set_grad_enabled."""
from __future__ import annotations

import contextvars
import functools
import inspect
import sys

_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("grad_enabled", default=True)


def is_grad_enabled() -> bool:
    return _enabled.get()


def _set(mode: bool) -> None:
    if mode.__class__ is not bool:
        kind = type(mode)
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        raise TypeError(f"set_grad_enabled(): argument 'enabled' (position 1) must be bool, not {name}")
    _enabled.set(mode)


def _wrap_generator(make_ctx, fn):
    """A generator function whose every step runs in the mode (torch's _wrap_generator)."""

    @functools.wraps(fn)
    def generator_context(*args, **kwargs):
        gen = fn(*args, **kwargs)
        try:
            with make_ctx():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with make_ctx():
                        gen.close()
                    raise
                except BaseException:
                    with make_ctx():
                        response = gen.throw(*sys.exc_info())
                else:
                    with make_ctx():
                        response = gen.send(request)
        except StopIteration as e:
            return e.value

    return generator_context


class _GradModeContext:
    """Context manager and decorator, as torch's grad-mode classes are."""

    _mode: bool

    def __new__(cls, orig_func=None):
        # torch's no_grad and enable_grad also decorate without parentheses: @no_grad
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)

    def __enter__(self) -> None:
        self._prev = _enabled.get()
        _enabled.set(self._mode)

    def __exit__(self, *exc) -> None:
        _enabled.set(self._prev)

    def clone(self):
        return self.__class__()

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            return _wrap_generator(self.clone, fn)

        @functools.wraps(fn)
        def decorate_context(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)
        return decorate_context

    def __repr__(self) -> str:
        return f"<torch.autograd.grad_mode.{type(self).__name__} object at {hex(id(self))}>"


class no_grad(_GradModeContext):  # noqa: N801
    _mode = False


class enable_grad(_GradModeContext):  # noqa: N801
    _mode = True


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """Takes effect at once (a plain call works), and restores the previous mode on exit."""

    def __new__(cls, mode: bool):
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        self._prev = _enabled.get()
        self._mode = mode
        _set(mode)

    def __enter__(self) -> None:
        _set(self._mode)

    def __exit__(self, *exc) -> None:
        _enabled.set(self._prev)

    def clone(self):
        return self.__class__(self._mode)

    def __call__(self, fn):
        _enabled.set(self._prev)  # used as a decorator: undo the eager switch
        return super().__call__(fn)

    def __repr__(self) -> str:
        return f"torch.autograd.grad_mode.set_grad_enabled(mode={self._mode})"

    __str__ = __repr__
