"""Test programs written once and run on torch, on the engine and on a remote session alike.

Importable from any test folder as ``programs`` (pyproject.toml's pytest ``pythonpath``)."""
