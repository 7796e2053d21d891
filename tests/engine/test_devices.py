"""Devices as torch spells them, on a host without a GPU (the engine on numpy; a session on a numpy
server is held to the same in tests/integration/test_devices_remote.py)."""
from __future__ import annotations

import pytest
import remote_autograd.engine as E
import torch
from programs.devices import expected, outcome

# the engine on CuPy is a host with CUDA, where torch's CPU build is the oracle: devices there are
# checked by scripts/gpu-check.sh's sessions
pytestmark = pytest.mark.skipif(E.BACKEND == "cupy", reason="the CPU oracle's devices: a numpy backend's")

PROGRAMS = {
    "repr": lambda t: t.device("cpu"),
    "repr of an index": lambda t: t.device("cuda:1"),
    "repr of a pair": lambda t: t.device("cuda", 0),
    "str": lambda t: str(t.device("cuda:0")),
    "equal": lambda t: t.device("cpu") == t.device("cpu"),
    "not equal to a string": lambda t: t.device("cpu") == "cpu",
    "a bad type": lambda t: t.device("gpu"),
    "a tensor's device": lambda t: t.ones(2).device,
    "is_cuda": lambda t: t.ones(2).is_cuda,
    "to cpu": lambda t: t.ones(2).to("cpu"),
    "to a device and a dtype": lambda t: t.ones(2).to(t.device("cpu"), t.float64),
    "to device=": lambda t: t.ones(2).to(device="cpu", dtype=t.float16),
    "to cuda": lambda t: t.ones(2).to("cuda"),
    "to a bad device": lambda t: t.ones(2).to("gpu"),
    "cpu()": lambda t: t.ones(2).cpu(),
    "cuda()": lambda t: t.ones(2).cuda(),
    "a factory on cpu": lambda t: t.zeros(2, device="cpu"),
    "a factory on a device": lambda t: t.randn(2, device=t.device("cpu")),
    "a factory on cuda": lambda t: t.ones(2, device="cuda"),
    "tensor on cuda": lambda t: t.tensor([1.0], device="cuda"),
    "is_available": lambda t: t.cuda.is_available(),
    "device_count": lambda t: t.cuda.device_count(),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_devices_as_torch(name):
    assert outcome(lambda: PROGRAMS[name](E)) == expected(PROGRAMS[name], torch)


def test_a_program_written_for_either_device_runs_unchanged():
    def program(t):
        device = "cuda" if t.cuda.is_available() else "cpu"
        x = t.ones(3, 2, device=device)
        w = t.ones(2, 1, device=device, requires_grad=True)
        (x.to(device) @ w).sum().backward()
        return w.grad.cpu().tolist(), str(w.device)
    assert program(E) == program(torch)
