"""What ``ascent_data()`` returns in the embedded runtime: a read-only ``conduit.Node`` look-alike.

Real Ascent hands a Python extract the published mesh as a multi-domain
``conduit.Node`` (one child per local domain, even when one domain was
published), so scripts written for it use the Node API::

    mesh = ascent_data().child(0)              # the first local domain
    n = ascent_data().number_of_children()
    e = mesh["fields/energy/values"]           # a flat numpy array (zero copy)
    c = mesh["state/cycle"]                    # a numpy scalar
    mesh.has_path("fields/e"); mesh.fetch_existing("state").child_names()

:class:`DataNode` gives the same over the dict/list tree the simulation
published (or over a real ``conduit.Node``, returned as it is): leaves come
back as Conduit returns them (a 1-D numpy array, a numpy scalar for one
element, ``str`` for strings), inner nodes as :class:`DataNode`. It is
read-only: the published arrays are the simulation's. Integer indexing
(``ascent_data()[0]``) is accepted here but not by Conduit (keys must be
strings there): the first use prints a one-line note saying to use
``child(0)``.
"""
from __future__ import annotations

import sys
from typing import Any, Iterator

import numpy as np

_INT_INDEX_NOTED = [False]


class DataNode:
    """A read-only conduit.Node over a dict/list tree (see the module doc)."""

    __slots__ = ("_tree", "_name", "_path")

    def __init__(self, tree: Any, name: str = "", path: str = "") -> None:
        self._tree = tree
        self._name = name
        self._path = path

    # ---------------------------------------------------------------- structure
    def _items(self) -> list[tuple[str, Any]]:
        if isinstance(self._tree, dict):
            return [(str(k), v) for k, v in self._tree.items()]
        if isinstance(self._tree, (list, tuple)):
            return [("", v) for v in self._tree]
        return []

    def number_of_children(self) -> int:
        return len(self._items())

    def child_names(self) -> list[str]:
        return [k for k, _ in self._items()] if isinstance(self._tree, dict) else []

    def child(self, index: int) -> "DataNode":
        items = self._items()
        if not isinstance(index, (int, np.integer)) or not -len(items) <= int(index) < len(items):
            raise IndexError(f"ascent_data(): node '{self._path or '/'}' has {len(items)} children; "
                             f"no child {index!r}")
        key, value = items[int(index)]
        return DataNode(value, key, self._join(key or str(int(index) % len(items))))

    def children(self) -> Iterator["DataNode"]:
        """The children in order (each with ``name()`` and ``node()``, like Conduit's NodeIterator)."""
        for i in range(self.number_of_children()):
            yield self.child(i)

    def node(self) -> "DataNode":
        return self

    def name(self) -> str:
        return self._name

    def path(self) -> str:
        return self._path

    def dtype(self) -> str:
        """The kind of node: ``object``, ``list``, ``empty`` or the leaf's numpy dtype name."""
        if isinstance(self._tree, dict):
            return "object"
        if isinstance(self._tree, (list, tuple)):
            return "list"
        if self._tree is None:
            return "empty"
        if isinstance(self._tree, (str, bytes)):
            return "char8_str"
        return str(np.asarray(self._tree).dtype)

    def _join(self, part: str) -> str:
        return f"{self._path}/{part}" if self._path else part

    def _walk(self, path: str) -> tuple[Any, str, str]:
        cur, name, full = self._tree, self._name, self._path
        for part in str(path).strip("/").split("/"):
            if part == "":
                continue
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, (list, tuple)) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                where = f"'{full}'" if full else "the root"
                known = [str(k) for k in cur] if isinstance(cur, dict) else \
                    (f"{len(cur)} list children" if isinstance(cur, (list, tuple)) else "none: it is a leaf")
                raise KeyError(f"ascent_data(): no path '{path}' (at {where}; children: {known})")
            name, full = part, f"{full}/{part}" if full else part
        return cur, name, full

    # ---------------------------------------------------------------- access
    def has_path(self, path: str) -> bool:
        try:
            self._walk(path)
            return True
        except KeyError:
            return False

    def has_child(self, name: str) -> bool:
        return isinstance(self._tree, dict) and name in self._tree

    def fetch_existing(self, path: str) -> "DataNode":
        """The node at ``path`` (a :class:`DataNode` even for a leaf, as Conduit's); KeyError when absent."""
        value, name, full = self._walk(path)
        return DataNode(value, name, full)

    fetch = fetch_existing  # read-only: fetching never creates

    def value(self) -> Any:
        """A leaf's value as Conduit returns it (numpy array / numpy scalar / str); a node for others."""
        return _leaf(self._tree) if _is_leaf(self._tree) else self

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not _INT_INDEX_NOTED[0]:
                _INT_INDEX_NOTED[0] = True
                print(f"[insitu runtime] note: ascent_data()[{int(key)}] works in the embedded runtime only; "
                      f"conduit.Node takes string paths: use ascent_data().child({int(key)}) to run in real "
                      "Ascent too", file=sys.stderr, flush=True)
            return self.child(int(key))
        if not isinstance(key, str):
            raise TypeError("Key must be a string (a conduit path such as 'fields/e/values')")
        value, name, full = self._walk(key)
        return _leaf(value) if _is_leaf(value) else DataNode(value, name, full)

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and self.has_path(key)

    # ---------------------------------------------------------------- text
    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(_plain(self._tree), sort_keys=False, default_flow_style=None)

    def to_json(self) -> str:
        import json

        return json.dumps(_plain(self._tree), indent=1)

    def __str__(self) -> str:
        return self.to_yaml()

    def __repr__(self) -> str:
        kind = self.dtype()
        return f"<DataNode {self._path or '/'} ({kind}, {self.number_of_children()} children)>"


def _is_leaf(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple))


def _leaf(value: Any) -> Any:
    """A leaf as Conduit's Python binding returns it."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind in "SU":
        return str(arr.reshape(-1)[0]) if arr.size == 1 else arr.reshape(-1)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.size == 1:
        return arr.reshape(-1)[0]  # a numpy scalar, as Conduit returns one-element leaves
    return arr.reshape(-1)  # flat, a view when the published array is contiguous


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, bytes)) or value is None:
        return value if not isinstance(value, bytes) else value.decode()
    arr = np.asarray(value)
    return arr.reshape(-1)[0].item() if arr.size == 1 else arr.reshape(-1).tolist()


def multi_domain(published: Any) -> Any:
    """``ascent_data()``: the published tree as a multi-domain node (a single domain becomes a list of one)."""
    if published is None:
        return DataNode([])
    if hasattr(published, "number_of_children") and not isinstance(published, (dict, list, tuple, DataNode)):
        # a real conduit.Node: hand it over as Ascent would (a single domain wrapped into a list)
        if published.has_path("coordsets"):
            try:
                import conduit  # type: ignore

                node = conduit.Node()
                node.append().set_external(published)
                return node
            except Exception:
                return published
        return published
    if isinstance(published, DataNode):
        return published
    if isinstance(published, dict) and "coordsets" in published:
        return DataNode([published])
    return DataNode(published)
