"""pytest plugin for scripts/gpu-check.sh: every test that uses the suite's server asserts that it
computes with $SERVER_BACKEND (asked once). Load with ``-p server_backend`` with scripts/ on PYTHONPATH."""
import os

import pytest

_checked: list[str] = []


@pytest.fixture(autouse=True)
def _server_computes_with_the_expected_backend(request):
    want = os.environ.get("SERVER_BACKEND")
    if want and "address" in request.fixturenames:
        if not _checked:
            import remote_autograd as ra
            with ra.connect(request.getfixturevalue("address")) as t:
                _checked.append(t.backend)
        assert _checked[0] == want, f"the suite's server computes with {_checked[0]!r}, not {want!r}"
