"""User errors come back as torch raises them (type and message) with a meaningful gRPC status,
and the session goes on working after each one."""
from __future__ import annotations

import grpc
import pytest
import remote_autograd as ra
import torch
from remote_autograd.protos import autograd_pb2 as pb
from remote_helpers import RawStub, fetch_command, rpc_error, running_server


def _second_backward(th):
    x = th.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


def _modified_after_save(th):
    x = th.ones(3, requires_grad=True)
    y = x * 2
    z = y * y  # saves y
    y.add_(1)
    z.sum().backward()


# name -> program(th): each raises in torch; the remote session must raise the same
USER_ERRORS = {
    "shape_mismatch": lambda th: th.ones(2, 3) + th.ones(3, 2),
    "sub_two_bools": lambda th: th.ones(2, dtype=th.bool) - th.zeros(2, dtype=th.bool),
    "rsub_bool_tensor": lambda th: 1 - th.ones(2, dtype=th.bool),
    "sub_inplace_python_bool": lambda th: th.ones(2).sub_(True),
    "add_int_float_alpha": lambda th: th.add(th.ones(2, dtype=th.long), th.ones(2, dtype=th.long), alpha=1.0),
    "rsub_number_input": lambda th: th.rsub(2.0, th.ones(2)),
    "matmul_shapes": lambda th: th.ones(2, 3) @ th.ones(2, 3),
    "cat_sizes": lambda th: th.cat([th.ones(2, 3), th.ones(2, 4)]),
    "view_size": lambda th: th.ones(2, 3).view(4),
    "expand_size": lambda th: th.ones(2, 3).expand(3, 3),
    "index_out_of_range": lambda th: th.ones(3)[5],
    "index_dim1_out_of_range": lambda th: th.ones(2, 3)[:, 7],
    "too_many_indices": lambda th: th.ones(3)[0, 0],
    "float_index_tensor": lambda th: th.ones(3)[th.tensor([0.0])],
    "dim_out_of_range": lambda th: th.ones(2, 3).transpose(0, 5),
    "nll_target_out_of_bounds": lambda th: th.nn.functional.nll_loss(th.ones(2, 3), th.tensor([0, 5])),
    "size_of_wrong_type": lambda th: th.ones("a"),
    "ragged_data": lambda th: th.tensor([[1, 2], [3]]),
    "len_of_0d": lambda th: len(th.tensor(1.0)),
    "float_of_many": lambda th: float(th.ones(2)),
    "grad_of_wrong_type": lambda th: setattr(th.ones(2, requires_grad=True), "grad", 3),
    "item_of_many": lambda th: th.ones(2).item(),
    "bool_of_many": lambda th: bool(th.ones(2)),
    "integer_requires_grad_": lambda th: th.ones(2, dtype=th.long).requires_grad_(),
    "integer_requires_grad_setter": lambda th: setattr(th.ones(2, dtype=th.long), "requires_grad", True),
    "integer_factory_requires_grad": lambda th: th.zeros(2, dtype=th.int64, requires_grad=True),
    "integer_tensor_requires_grad": lambda th: th.tensor([1, 2], requires_grad=True),
    "non_leaf_requires_grad": lambda th: setattr(th.ones(2, requires_grad=True) * 2, "requires_grad", False),
    "leaf_in_place": lambda th: th.ones(2, requires_grad=True).add_(1),
    "second_backward": _second_backward,
    "modified_after_save": _modified_after_save,
    "backward_non_scalar": lambda th: (th.ones(2, requires_grad=True) * 2).backward(),
    "backward_without_grad": lambda th: th.ones(2).sum().backward(),
    "grad_of_unused_input": lambda th: th.autograd.grad((th.ones(2, requires_grad=True) * 2).sum(),
                                                        th.ones(2, requires_grad=True)),
    "grad_of_wrong_size": lambda th: setattr(th.ones(2, requires_grad=True), "grad", th.ones(3)),
    "retain_grad_without_grad": lambda th: th.ones(2).retain_grad(),
    "hook_without_grad": lambda th: th.ones(2).register_hook(lambda g: g),
    "numpy_of_requires_grad": lambda th: th.ones(2, requires_grad=True).numpy(),
    "rounding_mode": lambda th: th.ones(2).div(th.ones(2), rounding_mode="round"),
    "arange_zero_step": lambda th: th.arange(0, 5, 0),
}


def raised(program, th):
    with pytest.raises(Exception) as info:  # noqa: B017, PT011  (any type: compared with torch's below)
        program(th)
        if isinstance(th, ra.Session) and not th.eager:
            th.synchronize()  # an error only the server detects surfaces at the next sync point
    return info.value


def assert_usable(t):
    x = t.ones(2, requires_grad=True)
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(USER_ERRORS))
def test_user_error_is_torchs(t, name):
    expected = raised(USER_ERRORS[name], torch)
    got = raised(USER_ERRORS[name], t)
    assert type(got) is type(expected), f"{name}: remote raised {type(got).__name__}: {got}"
    assert str(got) == str(expected)
    assert_usable(t)


# ---------------------------------------------------------------- the status codes on the wire

IDS = iter(range(1 << 40, 1 << 41))  # ids a raw client names, far from the SDK's


def factory_command(name: str, *args, dtype: str | None = None, requires_grad: bool = False):
    tid = next(IDS)
    cmd = pb.Command(kind=pb.Kind.FACTORY, name=name, outputs=[tid])
    for a in args:
        if isinstance(a, tuple):
            v = cmd.args.add()
            v.list.SetInParent()
            for d in a:
                v.list.items.add().i = d
        else:
            cmd.args.add().i = a
    if dtype:
        cmd.kwargs["dtype"].dtype = dtype
    if requires_grad:
        cmd.kwargs["requires_grad"].b = True
    return tid, cmd


def call_command(name: str, *ids: int, n_out: int = 1, **params):
    cmd = pb.Command(kind=pb.Kind.CALL, name=name, outputs=[next(IDS) for _ in range(n_out)])
    for tid in ids:
        cmd.args.add().ref = tid
    for k, v in params.items():
        cmd.kwargs[k].i = v
    return cmd


def trailing(err: grpc.RpcError) -> dict:
    return dict(err.trailing_metadata() or ())


def test_status_codes_on_the_wire(t, raw):
    stub = raw(t)
    a, make_a = factory_command("ones", (2, 3))
    b, make_b = factory_command("ones", (3, 2))
    stub.execute(make_a, make_b)

    # a shape mismatch: torch's RuntimeError, FAILED_PRECONDITION, the failing command's index
    err = rpc_error(stub.execute, call_command("add", a, a), call_command("add", a, b))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert trailing(err)["x-error-type"] == "RuntimeError" and trailing(err)["x-error-index"] == "1"
    assert err.details().startswith("The size of tensor a (3) must match the size of tensor b (2)")

    # an index out of range: IndexError, INVALID_ARGUMENT
    err = rpc_error(stub.execute, call_command("select", a, dim=0, index=9))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and trailing(err)["x-error-type"] == "IndexError"

    # an integer tensor that requires grad: RuntimeError from the factory
    _, make_int = factory_command("zeros", (2,), dtype="int64", requires_grad=True)
    err = rpc_error(stub.execute, make_int)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == "Only Tensors of floating point and complex dtype can require gradients"

    # a size of the wrong type: TypeError, INVALID_ARGUMENT
    bad = pb.Command(kind=pb.Kind.FACTORY, name="ones", outputs=[next(IDS)])
    bad.args.add().s = "a"
    err = rpc_error(stub.execute, bad)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and trailing(err)["x-error-type"] == "TypeError"

    # an op the table does not have: UNIMPLEMENTED
    err = rpc_error(stub.execute, call_command("no_such_op", a))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED

    # an upload stream without its header chunk: INVALID_ARGUMENT
    err = rpc_error(stub.stub.Upload, iter(()), metadata=stub.md, timeout=10)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

    # a command kind this server does not know (a newer client): UNIMPLEMENTED
    err = rpc_error(stub.execute, pb.Command(kind=999))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED and "999" in err.details()

    # a released tensor id: NOT_FOUND. Release rides a batch and applies after its commands (a
    # lazy client's queued commands may still use an id it dropped since), so the batch that
    # releases an id may use it; the next one may not
    assert stub.execute(fetch_command(a), release=[a]).results[0].value.tensor.shape == [2, 3]
    err = rpc_error(stub.execute, fetch_command(a))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert str(a) in err.details()
    assert_usable(t)


def test_second_backward_status_is_failed_precondition(t, raw):
    x = t.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    t.synchronize()  # the raw call below must come after the SDK's backward has run
    stub = raw(t)
    cmd = pb.Command(kind=pb.Kind.BACKWARD)
    refs = cmd.args.add()
    refs.list.SetInParent()
    refs.list.items.add().ref = y.remote_id
    cmd.args.add().none = True
    cmd.args.add().none = True
    err = rpc_error(stub.execute, cmd)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith("Trying to backward through the graph a second time")
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()
        t.synchronize()  # lazy: a backward's server-side error surfaces at the next sync point
    assert x.grad.tolist() == [2.0, 2.0]
    assert_usable(t)


def test_bad_token_is_unauthenticated(t, raw):
    stub = raw(session_id=t.session_id, token=t.token[:-2] + "xx")
    err = rpc_error(stub.execute, factory_command("ones", (2,))[1])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    unknown = raw(session_id="0" * 32, token=t.token)
    assert rpc_error(unknown.execute).code() == grpc.StatusCode.UNAUTHENTICATED
    # the bad calls did nothing to the session itself
    assert_usable(t)


def test_session_tensor_limit_is_resource_exhausted(session_mode):
    with running_server("--max-tensors", "5") as server, ra.connect(server.address) as t:
        kept = [t.ones(1) for _ in range(5)]
        with pytest.raises(ra.RemoteError, match="RESOURCE_EXHAUSTED.*limit is 5") as info:
            t.ones(1)
            t.synchronize()  # lazy: the server meets the limit when the batch runs
        assert "release tensors you no longer need" in str(info.value)
        stub = RawStub(server.address, t.session_id, t.token)
        try:
            err = rpc_error(stub.execute, factory_command("ones", (1,))[1])
        finally:
            stub.close()
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # dropping proxies releases their server tensors: the session works again
        del kept
        x = t.ones(2, requires_grad=True)
        assert (x * 2).sum().tolist() == 4.0


def test_errors_inside_no_grad_keep_grad_mode(t):
    with pytest.raises(RuntimeError), t.no_grad():
        t.ones(2) + t.ones(3)
    assert t.is_grad_enabled()
    x = t.ones(2, requires_grad=True)
    assert (x * 2).grad_fn.name() == "MulBackward0"


def test_sdk_errors_for_transport_problems(t):
    t.close()
    with pytest.raises(ra.RemoteError, match="closed"):
        t.ones(2)
    with pytest.raises(ra.ServerUnavailable):
        ra.connect("127.0.0.1:1", timeout=2)
