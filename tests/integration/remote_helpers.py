"""Shared by the integration tests: a live server process, raw protocol access, torch comparisons."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile

import grpc
import pytest
from remote_autograd.protos import autograd_pb2 as pb
from remote_autograd.protos import autograd_pb2_grpc as pb_grpc

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


class ServerProcess:
    """``python -m remote_autograd.server --port 0 ...`` in a subprocess; stderr goes to a temp log."""

    def __init__(self, *args: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="remote-autograd-", suffix=".log", delete=False)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "remote_autograd.server", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self._read_listening_line()
        m = re.fullmatch(r"listening on (\S+):(\d+)", line.strip())
        assert m, f"unexpected first line from the server: {line!r}\n{self.read_log()}"
        self.address = f"{m.group(1)}:{m.group(2)}"

    def _read_listening_line(self) -> str:
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(STARTUP_TIMEOUT):
            self.proc.kill()
            raise AssertionError(f"the server printed nothing in {STARTUP_TIMEOUT} s\n{self.read_log()}")
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            raise AssertionError(f"the server exited with {self.proc.returncode}\n{self.read_log()}")
        return line

    def read_log(self) -> str:
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def stop(self) -> int:
        """SIGTERM, as an operator stops it; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"the server ignored SIGTERM for {STOP_TIMEOUT} s\n{self.read_log()}") from None
        self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


@contextlib.contextmanager
def running_server(*args: str):
    """A server for one test (a limit flag, a process to kill): stopped cleanly afterwards."""
    server = ServerProcess(*args)
    try:
        yield server
    finally:
        rc = server.stop()
        log = server.read_log()
        server.cleanup()
        assert rc == 0, f"the server exited with {rc} on SIGTERM\n{log}"
        assert "Traceback" not in log, log[log.index("Traceback") - 200:][:6000]


# ---------------------------------------------------------------- raw protocol access

class RawStub:
    """The generated stub, with a session's metadata: what a non-Python client would send."""

    def __init__(self, address: str, session_id: str = "", token: str = "") -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.RemoteAutogradStub(self.channel)
        self.md = (("x-session-id", session_id), ("x-session-token", token))

    def execute(self, *commands: pb.Command, release=()) -> pb.BatchResult:
        return self.stub.Execute(pb.Batch(commands=commands, release=release), metadata=self.md, timeout=10)

    def close(self) -> None:
        self.channel.close()


def fetch_command(tid: int) -> pb.Command:
    cmd = pb.Command(kind=pb.Kind.FETCH)
    cmd.args.add().ref = tid
    return cmd


def rpc_error(fn, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------- comparing with torch

ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]+")


def norm(text: str) -> str:
    """Object addresses differ between any two runs; nothing else may."""
    return ADDRESS_RE.sub("0x?", text)


# ---------------------------------------------------------------- one program, remote and on torch

class RecordingSession:
    """A session whose rand/randn results are remembered, so torch can be fed the same values."""

    RANDOM = ("rand", "randn", "randint", "randperm", "rand_like", "randn_like")

    def __init__(self, session) -> None:
        self._session = session
        self.values: list = []

    def __getattr__(self, name):
        attr = getattr(self._session, name)
        if name not in self.RANDOM:
            return attr

        def record(*args, **kwargs):
            out = attr(*args, **kwargs)
            self.values.append((out.tolist(), out.dtype.name))
            return out
        return record


class ReplayTorch:
    """The torch module, except that random factories return the values the remote session drew."""

    def __init__(self, values: list) -> None:
        import torch
        self._torch = torch
        self._values = list(values)

    def __getattr__(self, name):
        if name not in RecordingSession.RANDOM:
            return getattr(self._torch, name)

        def replay(*args, requires_grad: bool = False, **kwargs):
            values, dtype = self._values.pop(0)
            return self._torch.tensor(values, dtype=getattr(self._torch, dtype), requires_grad=requires_grad)
        return replay


def outcome(fn):
    """What a call gave: its result, or the exception it raised (type and message), for comparison."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001  (the exception is the observation)
        return Raised(type(e).__name__, str(e))


class Raised:
    def __init__(self, kind: str, message: str) -> None:
        self.kind, self.message = kind, message

    def __repr__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __eq__(self, other) -> bool:
        return isinstance(other, Raised) and (self.kind, self.message) == (other.kind, other.message)


TRIGGERED = re.compile(r" \(Triggered internally at [^)]*\)")


def run_program(program, t, capsys):
    """Run ``program(t)``: what it returned, printed and warned, as plain comparable values."""
    import warnings
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = outcome(lambda: program(t))
    printed = norm(capsys.readouterr().out)
    warned = [(w.category.__name__, TRIGGERED.sub("", str(w.message))) for w in caught]
    return observe(result), printed, warned


def observe(x):
    """A result in comparable form: reprs with addresses normalised, and per tensor its autograd state."""
    if isinstance(x, (Raised, dict)):  # already observed (a snapshot taken mid-program)
        return x
    if hasattr(x, "grad_fn") and hasattr(x, "is_leaf"):  # a torch or a remote Tensor
        fn = x.grad_fn
        return {"repr": norm(repr(x)), "dtype": str(x.dtype), "shape": tuple(x.shape),
                "requires_grad": x.requires_grad, "is_leaf": x.is_leaf,
                "grad_fn": None if fn is None else fn.name(), "values": x.tolist()}
    if hasattr(x, "next_functions"):  # a graph node
        return {"node": type(x).__name__, "name": x.name(), "repr": norm(repr(x))}
    if isinstance(x, (tuple, list)) and type(x).__name__ != "Size":
        return [observe(v) for v in x]
    if isinstance(x, (bool, int, float, str, type(None))):
        return x
    return norm(repr(x))


def assert_same_observation(remote, torch_, where: str = "result") -> None:
    """Equal, except float values that may differ in the last bits (different kernels)."""
    import numpy as np
    if isinstance(torch_, dict) and "values" in torch_:
        assert isinstance(remote, dict) and "values" in remote, f"{where}: torch gave a tensor, remote {remote!r}"
        for key in ("repr", "dtype", "shape", "requires_grad", "is_leaf", "grad_fn"):
            assert remote[key] == torch_[key], f"{where}: {key} remote {remote[key]!r} != torch {torch_[key]!r}"
        np.testing.assert_allclose(np.asarray(remote["values"], dtype=float), np.asarray(torch_["values"], dtype=float),
                                   rtol=1e-5, atol=1e-6, err_msg=where)
    elif isinstance(torch_, list):
        assert isinstance(remote, list) and len(remote) == len(torch_), f"{where}: remote {remote!r} != {torch_!r}"
        for i, (r, w) in enumerate(zip(remote, torch_, strict=True)):
            assert_same_observation(r, w, f"{where}[{i}]")
    else:
        assert remote == torch_, f"{where}: remote {remote!r} != torch {torch_!r}"


def assert_same_as_torch(program, session, capsys):
    """``program(t)`` on the remote session and on torch fed its random values: the same in every way."""
    recording = RecordingSession(session)
    remote = run_program(program, recording, capsys)
    expected = run_program(program, ReplayTorch(recording.values), capsys)
    assert_same_observation(remote[0], expected[0])
    assert remote[1] == expected[1], f"printed output differs:\nremote:\n{remote[1]}\ntorch:\n{expected[1]}"
    assert remote[2] == expected[2], f"warnings differ:\nremote: {remote[2]}\ntorch: {expected[2]}"
    return remote


def record_batches(session) -> list:
    """The batches ``session`` sends from now on, in order (through its transport's observer)."""
    from remote_autograd.transport import Observer
    sent: list = []

    class Recording(Observer):
        def sent(self, batch) -> None:  # noqa: PLR6301
            sent.append(batch)
    session.wire.observe(Recording())
    return sent


def as_older_server(monkeypatch, **unset) -> None:
    """Sessions created from now on see a SessionInfo with these capability flags off, as an older
    server's (one that does not know them) says."""
    from remote_autograd.transport import Transport
    create = Transport.create_session

    def older(self, client):
        info = create(self, client)
        for name in unset:
            setattr(info, name, False)
        return info
    monkeypatch.setattr(Transport, "create_session", older)
