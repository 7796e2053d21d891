"""``python -m remote_autograd.server`` and the ``remote-autograd`` command."""
from __future__ import annotations

from .app import main

if __name__ == "__main__":
    main()
