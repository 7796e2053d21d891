"""``t.nn``: torch.nn's classes and functions bound to a torch-like namespace ``t`` (the engine or a session)."""
from __future__ import annotations

import functools
import types

from . import lr_scheduler
from .nn_containers import ModuleDict, ModuleList, Sequential
from .nn_init import init_namespace
from .nn_layers import LAYERS
from .nn_module import Module, parameter_class
from .nn_utils import clip_grad_norm_
from .optim import OPTIMIZERS, Optimizer


def _bound(cls, base):
    """cls for this namespace: a subclass of it and of the namespace's Module, so that isinstance(m, t.nn.Module)."""
    return type(cls.__name__, (cls, base), {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                            "__doc__": cls.__doc__})


def nn_namespace(t, functional) -> types.SimpleNamespace:
    base = type("Module", (Module,), {"_t": t, "__module__": "torch.nn.modules.module", "__doc__": Module.__doc__})
    parameter = parameter_class(t.Tensor)
    parameter._t = t
    ns = types.SimpleNamespace(functional=functional, Module=base, Parameter=parameter, init=init_namespace(t),
                               utils=types.SimpleNamespace(clip_grad_norm_=functools.partial(clip_grad_norm_, t)))
    for cls in (Sequential, ModuleList, ModuleDict) + LAYERS:
        setattr(ns, cls.__name__, _bound(cls, base))
    ns.modules = types.SimpleNamespace(Module=base)
    ns.parameter = types.SimpleNamespace(Parameter=parameter)
    return ns


def optim_namespace(t) -> types.SimpleNamespace:
    """``t.optim``: the optimizers bound to ``t`` (they make their state with it), and lr_scheduler."""
    base = type("Optimizer", (Optimizer,), {"_t": t, "__module__": "torch.optim.optimizer"})
    ns = types.SimpleNamespace(Optimizer=base, lr_scheduler=types.SimpleNamespace(
        LRScheduler=lr_scheduler.LRScheduler, StepLR=lr_scheduler.StepLR,
        CosineAnnealingLR=lr_scheduler.CosineAnnealingLR))
    for cls in OPTIMIZERS:
        setattr(ns, cls.__name__, _bound(cls, base))
    return ns
