"""The layers' dependency direction holds: engine imports no other layer; server and client never import each other."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# folder -> the package it installs as (pyproject's package-dir)
LAYERS = {"engine": "engine", "server": "server", "client": "client", "protos": "protos"}
ALLOWED = {
    "engine": set(),
    "protos": set(),
    "server": {"engine", "protos"},
    "client": {"engine", "protos"},  # the engine's op table, meta rules and printing: numpy only
}


def _imported_layers(folder: str, path: Path) -> set[str]:
    """Which layers a module imports, resolving relative imports by where the folder installs."""
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            # client/ is the top package itself: one dot from it reaches its siblings
            depth = node.level - (0 if folder == "client" else 1)
            target = (node.module or "").split(".")[0]
            if depth == 0 and folder != "client":
                continue  # within the same layer
            if target in LAYERS:
                layers.add(target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                parts = name.split(".")
                if parts[0] == "remote_autograd":
                    layers.add(parts[1] if len(parts) > 1 and parts[1] in LAYERS else "client")
    layers.discard(folder)
    return layers


def test_each_layer_imports_only_what_it_may():
    for folder, allowed in ALLOWED.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.name.endswith("_pb2.py") or path.name.endswith("_pb2_grpc.py"):
                continue
            used = _imported_layers(folder, path)
            assert used <= allowed, f"{folder}/{path.name} imports {sorted(used - allowed)}"


def test_the_engine_reaches_its_array_library_in_one_place():
    for path in sorted((ROOT / "engine").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "cupy" for a in node.names):
                assert path.name == "backend.py", f"engine/{path.name} imports cupy itself"
