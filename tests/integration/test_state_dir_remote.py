"""A replica started with --state-dir brings its sessions back after a restart (SIGTERM or a crash)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import remote_autograd as ra
import remote_helpers as rh


@pytest.mark.parametrize("stop", ["sigterm", "crash-after-snapshot"])
def test_sessions_come_back_from_the_state_dir(tmp_path, stop):
    state = str(tmp_path / "state")
    first = rh.ServerProcess("--state-dir", state, "--snapshot-interval", "0.3")
    port = first.address.rsplit(":", 1)[1]
    t = ra.connect(first.address)
    try:
        w = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        (w * w).sum().backward()
        kept = t.tensor([[5, 6], [7, 8]])
        assert w.grad.tolist() == [2.0, 4.0, 6.0]  # a sync point: the server has run it all
        if stop == "sigterm":
            assert first.stop() == 0  # the last snapshot is written on the way out
        else:
            time.sleep(1.2)  # a periodic snapshot has happened
            first.proc.kill()
            first.proc.wait(10)
            first.stop()
        with pytest.raises(ra.ServerUnavailable):
            w.tolist()
        second = rh.ServerProcess("--port", port, "--state-dir", state)
        try:
            # the channel finds the restarted server within its reconnect backoff (a few seconds)
            deadline = time.monotonic() + 15
            while True:
                try:
                    values = w.tolist()
                    break
                except ra.ServerUnavailable:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            # the same session, token and tensor ids: values, requires_grad and gradients are back
            assert values == [1.0, 2.0, 3.0] and w.requires_grad and w.is_leaf
            assert w.grad.tolist() == [2.0, 4.0, 6.0]
            assert np.array_equal(kept.numpy(), [[5, 6], [7, 8]]) and repr(kept.dtype) == "torch.int64"
            # and it keeps working: gradients accumulate onto the restored ones
            (w * 3).sum().backward()
            assert w.grad.tolist() == [5.0, 7.0, 9.0]
            # a wrong token still gets nothing
            raw = rh.RawStub(second.address, t.session_id, "not-the-token")
            with pytest.raises(Exception) as e:  # noqa: B017, PT011  (the status is checked next)
                raw.execute()
            assert "UNAUTHENTICATED" in str(e.value.code())
            raw.close()
        finally:
            t.close()
            assert second.stop() == 0
            second.cleanup()
    finally:
        first.cleanup()


def test_a_closed_session_leaves_nothing_in_the_state_dir(tmp_path):
    state = tmp_path / "state"
    with rh.running_server("--state-dir", str(state), "--snapshot-interval", "0.2") as server:
        t = ra.connect(server.address)
        t.ones(3).tolist()
        time.sleep(0.6)
        assert any(p.is_dir() and not p.name.startswith(".") for p in state.iterdir())
        t.close()
        assert not any(p.is_dir() and not p.name.startswith(".") for p in state.iterdir())
