"""The SDK as an IDE and a user meet it: its version, its type marker, and what an unsupported attribute says."""
from __future__ import annotations

import importlib.resources

import pytest
import remote_autograd as ra
from fakes import FakeTransport


def test_the_package_says_its_version_and_that_it_is_typed():
    assert ra.__version__ != "0+unknown" and ra.__version__[0].isdigit()
    assert importlib.resources.files("remote_autograd").joinpath("py.typed").is_file()


def test_an_attribute_torch_has_and_this_sdk_does_not_says_so():
    t = ra.Session("fake:0", transport=FakeTransport(), eager=False)
    with pytest.raises(AttributeError, match=r"torch.fft is not supported by remote_autograd yet \(README.md"):
        t.fft  # noqa: B018
    assert not hasattr(t, "fft") and hasattr(t, "randn")
    with pytest.raises(AttributeError, match="^_private$"):
        t._private  # noqa: B018
