"""torch.optim's SGD, Adam, AdamW and RMSprop over a torch-like namespace (``self._t``): torch's single-tensor
(foreach=False) arithmetic, op for op, in place and under no_grad."""
from __future__ import annotations

import copy
import itertools
import math
import struct
from collections import defaultdict

from .nn_module import is_tensor, typename, zero_grads


class _RequiredParameter:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Parameter groups, per-parameter state, zero_grad, state_dict and load_state_dict."""

    _t = None  # the torch-like namespace; a namespace's own Optimizer subclass sets it

    def __init__(self, params, defaults: dict) -> None:
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if is_tensor(params):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {typename(params)}")
        param_groups = list(params)
        if not param_groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if is_tensor(params):
            param_group["params"] = [params]
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not is_tensor(p):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is " + typename(p))
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):
        self._opt_called = True  # what a learning-rate scheduler checks before its first step
        loss = None
        if closure is not None:
            with self._t.enable_grad():
                loss = closure()
        with self._t.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        state = self.state.get(p, {})
                        self._update(p, p.grad, state, group)
                        if state:  # (SGD without momentum keeps none, as torch's)
                            self.state[p] = state
        return loss

    def _update(self, param, grad, state: dict, group: dict) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        mapping: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                mapping.setdefault(id(p), len(mapping))
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            groups.append(packed)
        t = self._t
        # the step count lives on the host as a float (a remote step needs no round trip); torch's is a tensor
        state = {mapping[id(p)]: {k: (t.tensor(float(v)) if k == "step" else v) for k, v in s.items()}
                 for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of optimizer's "
                             "group")
        id_map = dict(zip(itertools.chain.from_iterable(g["params"] for g in saved_groups),
                          itertools.chain.from_iterable(g["params"] for g in groups)))
        self.state = defaultdict(dict)
        for k, values in state_dict["state"].items():
            if k not in id_map:
                continue
            param = id_map[k]
            self.state[param] = {key: self._load_value(param, key, v) for key, v in values.items()}
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            group.clear()
            group.update(saved)

    def _load_value(self, param, key: str, value):
        if key == "step":
            return float(value.item()) if is_tensor(value) else float(value)
        if not is_tensor(value):
            return value
        if getattr(value, "_session", None) is not getattr(param, "_session", None):
            value = param._as_tensor(value.tolist()).to(value.dtype)  # from another session
        with self._t.no_grad():
            return value.to(param.dtype if param.dtype.is_floating_point else value.dtype).clone()

    def __repr__(self) -> str:
        s = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += "\n" + f"Parameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"


def _check(value, what: str, low: float = 0.0) -> None:
    if not low <= value:
        raise ValueError(f"Invalid {what}: {value}")


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0, weight_decay: float = 0,
                 nesterov: bool = False, *, maximize: bool = False, foreach=None, differentiable: bool = False,
                 fused=None) -> None:
        _check(lr, "learning rate")
        _check(momentum, "momentum value")
        _check(weight_decay, "weight_decay value")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def _update(self, param, grad, state, group) -> None:
        grad = grad if not group["maximize"] else -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
        param.add_(grad, alpha=-group["lr"])


def _check_adam(lr, eps, betas, weight_decay) -> None:
    _check(lr, "learning rate")
    _check(eps, "epsilon value")
    for i in (0, 1):
        if not 0.0 <= betas[i] < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
    _check(weight_decay, "weight_decay value")


class Adam(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 amsgrad: bool = False, *, foreach=None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused=None, decoupled_weight_decay: bool = False) -> None:
        _check_adam(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update(self, param, grad, state, group) -> None:
        t = self._t
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = t.zeros_like(param)
            state["exp_avg_sq"] = t.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = t.zeros_like(param)
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        grad = grad if not group["maximize"] else -grad
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # torch counts in a float32 tensor: its value, read back, is what the bias corrections use
        state["step"] = step = float(_f32(state["step"] + 1))
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        if group["amsgrad"]:
            state["max_exp_avg_sq"].copy_(state["max_exp_avg_sq"].maximum(exp_avg_sq))
            denom = (state["max_exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(eps)
        else:
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-step_size)


class AdamW(Adam):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False, foreach=None, capturable: bool = False,
                 differentiable: bool = False, fused=None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


class RMSprop(Optimizer):
    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, capturable: bool = False, foreach=None,
                 maximize: bool = False, differentiable: bool = False) -> None:
        _check(lr, "learning rate")
        _check(eps, "epsilon value")
        _check(momentum, "momentum value")
        _check(weight_decay, "weight_decay value")
        _check(alpha, "alpha value")
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _update(self, param, grad, state, group) -> None:
        t = self._t
        if not state:
            state["step"] = 0.0
            state["square_avg"] = t.zeros_like(param)
            if group["momentum"] > 0:
                state["momentum_buffer"] = t.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = t.zeros_like(param)
        grad = grad if not group["maximize"] else -grad
        state["step"] = float(_f32(state["step"] + 1))
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        alpha, square_avg = group["alpha"], state["square_avg"]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(grad, 1 - alpha)
            avg = square_avg.clone().addcmul_(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).addcdiv_(grad, avg)
            param.add_(buf, alpha=-group["lr"])
        else:
            param.addcdiv_(grad, avg, value=-group["lr"])


def _f32(x: float) -> float:
    """x rounded to float32, as torch's float32 step counter holds it (exact below 2**24)."""
    return struct.unpack("f", struct.pack("f", x))[0] if math.isfinite(x) else x


OPTIMIZERS = (SGD, Adam, AdamW, RMSprop)
