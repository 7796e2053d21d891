"""Devices as torch spells them, on a session: a program written for `cuda if available else cpu` runs
unchanged on a numpy server, and asks for cuda get torch's errors there."""
from __future__ import annotations

import pytest
import torch
from programs.devices import expected, outcome

PROGRAMS = {
    "a tensor's device": lambda t: t.ones(2).device,
    "is_cuda": lambda t: t.ones(2).is_cuda,
    "to a device and a dtype": lambda t: t.ones(2).to(t.device("cpu"), t.float64),
    "to cuda": lambda t: t.ones(2).to("cuda"),
    "cuda()": lambda t: t.ones(2).cuda(),
    "a factory on a device": lambda t: t.zeros(2, device=t.device("cpu")),
    "a factory on cuda": lambda t: t.ones(2, device="cuda"),
    "tensor on cuda": lambda t: t.tensor([1.0], device="cuda"),
    "a bad device": lambda t: t.ones(2, device="gpu"),
    "is_available": lambda t: t.cuda.is_available(),
    "device_count": lambda t: t.cuda.device_count(),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_devices_as_torch_on_a_cpu_server(t, name):
    assert outcome(lambda: PROGRAMS[name](t)) == expected(PROGRAMS[name], torch)


def test_a_training_program_written_for_either_device_runs_unchanged(t):
    def program(lib):
        device = "cuda" if lib.cuda.is_available() else "cpu"
        model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 1)).to(device)
        with lib.no_grad():
            for p in model.parameters():
                p.fill_(0.1)
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        x = lib.ones(5, 3).to(device)
        y = lib.zeros(5, 1, device=device)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = lib.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, str(next(model.parameters()).device)
    mine, theirs = program(t), program(torch)
    assert mine[1] == theirs[1] == "cpu"
    assert mine[0] == pytest.approx(theirs[0], rel=1e-6)


def test_save_and_load_on_a_session(t, tmp_path):
    import io
    model = t.nn.Linear(3, 2)
    buf = io.BytesIO()
    t.save({"model": model.state_dict(), "x": t.arange(4.0)}, buf)
    buf.seek(0)
    back = t.load(buf)
    assert back["x"].tolist() == [0.0, 1.0, 2.0, 3.0]
    other = t.nn.Linear(3, 2)
    other.load_state_dict(back["model"])
    assert other.weight.tolist() == model.weight.tolist() and other.bias.tolist() == model.bias.tolist()
    import remote_autograd.engine as E  # the same file reads on the engine, and the other way round
    buf.seek(0)
    assert E.load(buf)["x"].tolist() == [0.0, 1.0, 2.0, 3.0]
