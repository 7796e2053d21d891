"""engine's modules import one another without a large circle (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
PACKAGES = ("remote_autograd.engine", "engine")  # how engine may name itself in an absolute import
MAX_CYCLE = 3


def _target(name: str, modules: set[str]) -> str:
    """The engine module that ``name`` (a dotted path below the package, or "" for it) lives in."""
    head = name.split(".", 1)[0]
    return head if head in modules else "__init__"


def import_graph(root: Path = ENGINE) -> dict[str, set[str]]:
    """Module -> the engine modules it imports, from every import statement in its source."""
    modules = {p.stem for p in root.glob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        tree = ast.parse((root / f"{module}.py").read_text(), filename=f"{module}.py")
        edges = graph[module]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    base = node.module or ""
                elif node.level == 0 and node.module is not None:
                    package = next((p for p in PACKAGES if node.module == p or node.module.startswith(p + ".")),
                                   None)
                    if package is None:
                        continue
                    base = node.module[len(package) + 1:]
                else:
                    continue  # above the package: not engine
                if base:
                    edges.add(_target(base, modules))
                else:  # `from . import x`: x is a module, or a name the package's __init__ defines
                    edges.update(_target(alias.name, modules) for alias in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    for p in PACKAGES:
                        if alias.name.startswith(p + "."):
                            edges.add(_target(alias.name[len(p) + 1:], modules))
        edges.discard(module)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.add(w)
                        if w == v:
                            break
                    components.append(component)
    return components


def test_graph_sees_imports_inside_functions(tmp_path):
    (tmp_path / "a.py").write_text("from .b import f\n")
    (tmp_path / "b.py").write_text("def f():\n    from . import a\n    from .c import g\n")
    (tmp_path / "c.py").write_text("import remote_autograd.engine.a\n")
    (tmp_path / "__init__.py").write_text("")
    graph = import_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"a", "c"}, "c": {"a"}, "__init__": set()}
    assert max(strongly_connected(graph), key=len) == {"a", "b", "c"}


def test_largest_import_cycle_is_small():
    largest = max(strongly_connected(import_graph()), key=len)
    assert len(largest) <= MAX_CYCLE, (
        f"engine's largest import cycle has {len(largest)} modules: {sorted(largest)}")
