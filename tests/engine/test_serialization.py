"""t.save and t.load: tensors and nested state dicts round-trip without pickle; other files are refused."""
from __future__ import annotations

import io
from collections import OrderedDict

import numpy as np
import pytest
import remote_autograd.engine as E
import torch


def roundtrip(t, obj, path=None):
    if path is None:
        buf = io.BytesIO()
        t.save(obj, buf)
        buf.seek(0)
        return t.load(buf)
    t.save(obj, path)
    return t.load(path)


def test_tensors_of_every_dtype_and_nested_containers_round_trip(tmp_path):
    obj = {"f32": E.tensor([[1.5, -2.0]]), "i64": E.tensor([1, 2, 3]), "b": E.tensor([True, False]),
           "f64": E.tensor(2.5, dtype=E.float64), "w": E.ones(2, requires_grad=True), "empty": E.zeros(0, 3),
           "nested": [1, (2.5, "x"), {"k": None, 3: float("nan")}], "ordered": OrderedDict(a=1, b=2)}
    for path in (None, tmp_path / "obj.ra"):
        back = roundtrip(E, obj, path)
        for k in ("f32", "i64", "b", "f64", "w", "empty"):
            assert back[k].dtype == obj[k].dtype and back[k].shape == obj[k].shape
            np.testing.assert_array_equal(back[k].detach().numpy(), obj[k].detach().numpy())
        assert back["w"].requires_grad and back["w"].is_leaf and not back["f32"].requires_grad
        assert back["nested"][0] == 1 and back["nested"][1] == (2.5, "x") and back["nested"][2]["k"] is None
        assert np.isnan(back["nested"][2][3]) and isinstance(back["ordered"], OrderedDict)


def test_a_model_and_its_optimizer_resume_from_a_checkpoint(tmp_path):
    def make(t):
        m = t.nn.Sequential(t.nn.Linear(3, 4), t.nn.Tanh(), t.nn.Linear(4, 1))
        return m, t.optim.Adam(m.parameters(), lr=0.01)
    m, opt = make(E)
    x, y = E.ones(5, 3), E.zeros(5, 1)
    for _ in range(2):
        opt.zero_grad()
        E.nn.functional.mse_loss(m(x), y).backward()
        opt.step()
    E.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}, tmp_path / "ckpt")
    m2, opt2 = make(E)
    ckpt = E.load(tmp_path / "ckpt")
    m2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    losses = []
    for model, o in ((m, opt), (m2, opt2)):
        o.zero_grad()
        loss = E.nn.functional.mse_loss(model(x), y)
        loss.backward()
        o.step()
        losses.append(loss.item())
    assert losses[0] == losses[1] and ckpt["epoch"] == 2


def test_a_torch_save_pickle_and_other_files_are_refused(tmp_path):
    pickled = tmp_path / "torch.pt"
    torch.save({"a": torch.ones(2)}, pickled)
    with pytest.raises(RuntimeError, match="not a file t.save wrote .* nothing is unpickled"):
        E.load(pickled)
    with pytest.raises(RuntimeError, match="not a zip file"):
        E.load(io.BytesIO(b"not a checkpoint"))
    with pytest.raises(TypeError, match="cannot be saved"):
        E.save({"f": object()}, io.BytesIO())
    if not E.cuda.is_available():
        with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
            E.load(io.BytesIO(), map_location="cuda")
