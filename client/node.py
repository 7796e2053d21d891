"""Proxies of the server's graph nodes: name(), next_functions and torch's repr."""
from __future__ import annotations

_classes: dict[str, type] = {}


class Node:
    """A remote grad_fn; its class is named as torch names the node's class."""

    # _edges: for nodes the client named, what each input was (a node, a leaf Tensor, or None):
    # next_functions and the leaves a backward reaches are then known here, without a round trip
    # _saves/_spent: whether the server's node keeps saved values, and whether a backward freed them
    # _born: the session's count of in-place writes when the node was made, -1 where its op may fail
    # in backward (client/early.py)
    # _saved: (version counter, version) of each tensor the server's node saved, as the client knows
    # them: a backward that would meet one modified since is sent at once, so it raises at its line
    __slots__ = ("_session", "_id", "_name", "_next", "_edges", "_retained", "_saves", "_spent", "_born",
                 "_saved", "__weakref__")

    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"

    @property
    def next_functions(self) -> tuple:
        if self._next is None:
            edges = getattr(self, "_edges", None)
            if edges is not None:
                self._next = tuple((self._session._edge_node(target), nr) if target is not None else (None, 0)
                                   for target, nr in edges)
            else:
                # the structure of a node never changes, so one round trip per node is enough
                self._next = self._session._next_functions(self._id)
        return self._next

    def __call__(self, *grads):
        """Run this node's backward on the server (``grad_fn(g)`` in torch)."""
        return self._session._node_apply(self._id, grads)

    apply = __call__

    def __eq__(self, other) -> bool:
        return isinstance(other, Node) and other._session is self._session and other._id == self._id

    def __hash__(self) -> int:
        return hash((id(self._session), self._id))


def node_class(type_name: str) -> type:
    cls = _classes.get(type_name)
    if cls is None:
        cls = type(type_name, (Node,), {"__slots__": (), "__module__": "torch.autograd"})
        _classes[type_name] = cls
    return cls


def make_node(session, ref) -> Node:
    return new_node(session, ref.id, ref.name, ref.type)


def new_node(session, node_id: int, name: str, type_name: str, edges=None, saves: bool = False,
             born: int = -1, saved: tuple = ()) -> Node:
    cls = node_class(type_name)
    node = cls.__new__(cls)
    node._session = session
    node._id = node_id
    node._name = name
    node._next = None
    node._edges = edges
    node._retained = None
    node._saves = saves
    node._spent = False
    node._born = born
    node._saved = saved
    return node


def short_name(name: str) -> str:
    """The class name torch gives a node: ``torch::autograd::CopySlices`` -> ``CopySlices``."""
    return name.rsplit("::", 1)[-1]
