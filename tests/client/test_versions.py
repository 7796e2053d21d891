"""The mirror's version counters, known without a server: the same ``_version``s as torch's, and a
backward that would meet a modified saved tensor sent at once (so the server raises at its line)."""
from __future__ import annotations

import remote_autograd as ra
import torch
from fakes import FakeTransport


def versions(t):
    """A program's tensors' ``_version`` after each step."""
    seen = []
    a = t.ones(2, 3)
    v = a[0]  # a view: shares a's counter
    d = a.detach()  # shares it too
    data = a.data  # does not
    seen.append((a._version, v._version, d._version, data._version))
    a.add_(1)
    seen.append((a._version, v._version, d._version, data._version))
    v.mul_(2)
    seen.append((a._version, v._version, d._version, data._version))
    a[1] = 5.0  # indexed assignment writes a
    seen.append((a._version, v._version, d._version, data._version))
    d.copy_(t.zeros(2, 3))
    seen.append((a._version, v._version, d._version, data._version))
    data.zero_()
    seen.append((a._version, v._version, d._version, data._version))
    b = a.t().reshape(6)  # not a view here (a copy): a counter of its own
    b.add_(1)
    w = a.view(3, 2)
    w.sub_(1)
    seen.append((a._version, b._version, w._version))
    return seen


def session() -> tuple[ra.Session, FakeTransport]:
    wire = FakeTransport()
    return ra.Session("fake:0", transport=wire, eager=False, send_ahead=0, early_answers=False), wire


def test_version_counters_are_torchs():
    t, _ = session()
    assert versions(t) == versions(torch)


def test_a_backward_meeting_a_modified_saved_tensor_is_sent_at_once():
    t, wire = session()
    a = t.ones(3, requires_grad=True)
    c = a.exp()  # saves its output
    loss = c.sum()
    loss.backward(retain_graph=True)
    assert wire.sent == []  # queued: nothing it saved was written
    c.add_(1)
    c.sum().backward()  # ExpBackward0's saved output is at version 1 now
    assert [b.commands[-1].kind for b in wire.sent] == [ra.protos.autograd_pb2.Kind.BACKWARD]


def test_only_a_write_to_what_the_backward_meets_sends_it_at_once():
    t, wire = session()
    a = t.ones(3, requires_grad=True)
    x = t.ones(3)
    h = a * 2  # mul by a number saves nothing of a
    h.relu_()  # an in-place activation saves its own output, after its write
    loss = (h * x).sum()  # mul saves h and x
    other = t.ones(3)
    other.mul_(3)  # a write elsewhere
    (a * 3).sum().backward()
    assert wire.sent == []  # its graph saves nothing that was written
    x.add_(1)  # x was saved by loss's mul
    loss.backward()
    assert len(wire.sent) == 1  # sent at once: the server raises torch's error at this line
