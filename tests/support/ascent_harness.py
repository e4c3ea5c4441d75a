"""Run actions the way real Ascent runs Python extracts, without Ascent.

* the published data reaches the extract as a conduit-shaped node
  (``child(i)``, ``number_of_children()``, ``child_names()``, ``has_path``,
  path access ``node["fields/e/values"]`` returning numpy arrays);
* the source runs in one fresh ``__main__``-like namespace that persists
  across executes, with ``def ascent_mpi_comm_id(): return <fortran handle>``
  prepended to it and ``ascent_data`` bound there and in module ``ascent_extract``.

Everything else (queries, triggers) is the embedded runtime's.
"""
from __future__ import annotations

import sys
import types

import numpy as np

from insitu.runtime import Runtime


class ConduitLikeNode:
    """A read-only conduit.Node look-alike over a dict/list tree."""

    def __init__(self, tree):
        self._tree = tree

    def _items(self):
        if isinstance(self._tree, dict):
            return list(self._tree.items())
        if isinstance(self._tree, list):
            return [("", v) for v in self._tree]
        return []

    def number_of_children(self):
        return len(self._items())

    def child(self, i):
        return ConduitLikeNode(self._items()[i][1])

    def child_names(self):
        return [k for k, _ in self._items()]

    def _walk(self, path):
        cur = self._tree
        for part in path.split("/"):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                raise KeyError(path)
        return cur

    def has_path(self, path):
        try:
            self._walk(path)
            return True
        except KeyError:
            return False

    def __getitem__(self, path):
        v = self._walk(path)
        if isinstance(v, (dict, list)):
            return ConduitLikeNode(v)
        if isinstance(v, str):
            return v
        return np.asarray(v)


class AscentLikeRuntime(Runtime):
    """The embedded runtime, but Python extracts see data and namespace as real Ascent gives them."""

    def __init__(self):
        super().__init__()
        self.namespace = {"__name__": "__main__"}

    def _run_python_extract(self, name, params, errors):
        try:
            source = self._extract_source(name, params)
        except Exception as exc:
            self._fail(errors, f"extract '{name}': {exc}")
            return
        node = ConduitLikeNode(self.published)
        mod = types.ModuleType("ascent_extract")
        mod.ascent_data = lambda: node
        sys.modules["ascent_extract"] = mod
        self.namespace["ascent_data"] = mod.ascent_data
        handle = self.comm.py2f() if self.comm is not None else 0
        try:
            exec(f"def ascent_mpi_comm_id():\n    return {handle}\n{source}", self.namespace)
        except Exception as exc:
            self._fail(errors, f"extract '{name}': {type(exc).__name__}: {exc}")
