"""The server's limits and hardening against well-formed hostile requests, on the data plane (no gRPC)."""
from __future__ import annotations

import threading
import time

import numpy
from batch_helpers import call, new_session, run, upload


def test_a_numbered_batch_far_ahead_is_refused_at_once():
    s = new_session(seq_window=8)
    t0 = time.monotonic()
    refused = run(s, call("neg", 1, out=2), seq=10).error
    assert time.monotonic() - t0 < 1
    assert refused.code == "RESOURCE_EXHAUSTED"
    assert "batch 10 is 9 ahead of batch 1" in refused.message and "(--seq-window) is 8" in refused.message
    assert not run(s, upload(1, numpy.ones(2)), seq=1).HasField("error")  # nothing broke the session
    assert not run(s, call("neg", 1, out=2), seq=2).HasField("error")


def test_waiting_numbered_batches_are_bounded_per_session_and_wait_a_configured_time():
    s = new_session(seq_window=4, seq_wait=1.0)
    answers: list = []
    waiting = [threading.Thread(target=lambda k=k: answers.append(run(s, upload(10 + k, numpy.ones(1)), seq=2 + k)))
               for k in range(4)]
    for w in waiting:
        w.start()
    time.sleep(0.3)
    refused = run(s, upload(20, numpy.ones(1)), seq=3).error
    assert refused.code == "RESOURCE_EXHAUSTED"
    assert "4 batches of this session wait" in refused.message and "(--seq-window) is 4" in refused.message
    t0 = time.monotonic()
    for w in waiting:
        w.join(5)
    assert time.monotonic() - t0 < 2  # --seq-wait 1 s, not a minute
    errors = [a.error for a in answers]
    assert len(errors) == 4 and any("waited 1 s (--seq-wait) for batch 1" in e.message for e in errors)
