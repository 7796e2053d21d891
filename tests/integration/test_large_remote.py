"""A tensor of 1 GiB goes up and comes back exactly (through the chunked streams)."""
from __future__ import annotations

import numpy as np
import remote_autograd as ra


def test_one_gib_tensor_round_trip(address):
    # once, not per mode: both modes move large tensors the same way, at once
    host = (np.arange(1 << 30, dtype=np.uint32) * 2654435761 >> 24).astype(np.uint8)  # 1 GiB, not constant
    with ra.connect(address) as t:
        x = t.tensor(host)
        assert tuple(x.shape) == (1 << 30,) and repr(x.dtype) == "torch.uint8"
        back = x.numpy()
        assert back.nbytes == 1 << 30
        assert np.array_equal(back, host)
