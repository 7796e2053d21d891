"""The ops of issue 18 through a remote session, as a user drives them: torch's values, nodes and
gradients (the engine's, bit for bit), torch's errors, the nn layers over the session."""
from __future__ import annotations

import numpy as np
import pytest
import remote_autograd as ra
import remote_autograd.engine as engine
import torch
from test_ops_remote import assert_same_result, assert_same_tensor, run


def F(th):  # noqa: N802
    return th.nn.functional


def arr(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


PROGRAMS = {
    "erf_gelu_chain": (lambda th, x: F(th).gelu(x.erf() * 2, approximate="tanh") + F(th).gelu(x), [arr(3, 4)]),
    "layer_norm_mlp": (lambda th, x, w, b: F(th).gelu(F(th).layer_norm(x, (4,), w, b)).sum(-1),
                       [arr(2, 3, 4), arr(4, seed=1), arr(4, seed=2)]),
    "embedding_then_layer_norm": (lambda th, w, i: F(th).layer_norm(F(th).embedding(i, w, padding_idx=0), (3,)),
                                  [arr(6, 3), np.array([[0, 5, 2], [2, 2, 0]])]),
    "cumprod_with_zeros": (lambda th, x: x.cumprod(1).sum(0), [np.array([[1.5, 0.0, 2.0], [0.5, -1.0, 0.0]],
                                                                         dtype=np.float32)]),
    "pad_roll_tile": (lambda th, x: F(th).pad(x.roll(1, 0).tile(1, 2), (1, -1, 0, 2), value=0.5).cumsum(1),
                      [arr(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_remote_matches_engine_and_torch(t, name):
    program, arrays = PROGRAMS[name]
    r_in, r_out = run(t, program, arrays)
    e_in, e_out = run(engine, program, arrays)
    assert_same_result(r_out, e_out)
    t_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    t_out = program(torch, *t_in)
    np.testing.assert_allclose(np.array(r_out.tolist()), t_out.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert r_out.grad_fn.name() == t_out.grad_fn.name()
    w = arr(*t_out.shape, seed=9)
    r_out.backward(t.tensor(w))
    e_out.backward(engine.tensor(w))
    t_out.backward(torch.tensor(w))
    for r, e, tt in zip(r_in, e_in, t_in):
        if e.grad is not None:
            assert_same_tensor(r.grad, e.grad, f"{name}: grad")
            np.testing.assert_allclose(np.array(r.grad.tolist()), tt.grad.numpy(), rtol=1e-4, atol=1e-5)


def _raised(th, program):
    with pytest.raises(Exception) as info:  # noqa: B017, PT011  (compared with torch's below)
        program(th)
        if isinstance(th, ra.Session) and not th.eager:
            th.synchronize()  # an error only the server sees (a value) surfaces at the next sync point
    return info.value


ERRORS = {
    "embedding_index_out_of_range": lambda th: F(th).embedding(th.tensor([0, 7]), th.ones(5, 2)).tolist(),
    "embedding_negative_index": lambda th: F(th).embedding(th.tensor([-1]), th.ones(5, 2)),
    "embedding_float_indices": lambda th: F(th).embedding(th.tensor([1.0]), th.ones(5, 2)),
    "embedding_1d_weight": lambda th: F(th).embedding(th.tensor([1]), th.ones(5)),
    "layer_norm_shape": lambda th: F(th).layer_norm(th.ones(2, 3), (2,)),
    "layer_norm_weight_shape": lambda th: F(th).layer_norm(th.ones(2, 3), (3,), th.ones(4)),
    "layer_norm_integer": lambda th: F(th).layer_norm(th.ones(2, 3, dtype=th.long), (3,)),
    "gelu_approximate": lambda th: F(th).gelu(th.ones(2), approximate="exact"),
    "gelu_integer": lambda th: F(th).gelu(th.ones(2, dtype=th.long)),
    "cumprod_dim": lambda th: th.ones(2, 3).cumprod(2),
    "roll_align": lambda th: th.ones(2, 3).roll((1, 2), 0),
    "tile_negative": lambda th: th.ones(2, 3).tile(-1),
    "pad_odd": lambda th: F(th).pad(th.ones(2, 3), (1,)),
    "pad_crop_too_far": lambda th: F(th).pad(th.ones(2, 3), (-2, -2)),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_remote_as_torch(t, name):
    want = _raised(torch, ERRORS[name])
    got = _raised(t, ERRORS[name])
    assert type(got) is type(want) and str(got) == str(want), f"\nremote: {got!r}\ntorch:  {want!r}"
    assert t.ones(2).add(1).tolist() == [2.0, 2.0]  # the session goes on


def test_nn_layers_remote_as_torch(t):
    for make in (lambda nn: nn.LayerNorm((2, 3)), lambda nn: nn.LayerNorm(3, elementwise_affine=False),
                 lambda nn: nn.GELU("tanh"), lambda nn: nn.Embedding(7, 3, padding_idx=2)):
        assert repr(make(t.nn)) == repr(make(torch.nn))
    ln = t.nn.LayerNorm((2, 3))
    assert ln.weight.tolist() == [[1.0] * 3] * 2 and ln.bias.tolist() == [[0.0] * 3] * 2
    emb = t.nn.Embedding(7, 3, padding_idx=2)
    assert emb.weight.tolist()[2] == [0.0, 0.0, 0.0]
    out = ln(emb(t.tensor([[1, 2], [3, 2]])).transpose(1, 2).reshape(2, 2, 3))
    out.pow(2).sum().backward()
    assert emb.weight.grad.tolist()[2] == [0.0, 0.0, 0.0] and emb.weight.grad.abs().sum().item() > 0
    assert ln.weight.grad.shape == (2, 3) and ln.bias.grad.shape == (2, 3)


def test_next_token_model_trains_remotely_as_torch(t):
    from programs.nn import close, init_of
    from programs.tokens import next_token_fit, token_model
    init = init_of(torch, token_model)
    tl, tparams = next_token_fit(torch, init)
    rl, rparams = next_token_fit(t, init)
    assert close(rl, tl)
    for k in tparams:
        np.testing.assert_allclose(rparams[k], tparams[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_embedding_from_pretrained_remote(t):
    w = arr(4, 3)
    emb = t.nn.Embedding.from_pretrained(t.tensor(w), freeze=False, padding_idx=0)
    assert isinstance(emb, t.nn.Module) and repr(emb) == "Embedding(4, 3, padding_idx=0)"
    out = emb(t.tensor([[0, 2], [3, 0]]))
    assert out.grad_fn.name() == "EmbeddingBackward0"
    out.sum().backward()
    assert emb.weight.grad.tolist() == [[0.0] * 3, [0.0] * 3, [1.0] * 3, [1.0] * 3]
