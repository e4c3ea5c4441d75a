"""Run actions the way real Ascent runs Python extracts, without Ascent.

* the published data reaches the extract as a conduit-shaped multi-domain node
  (``child(i)``, ``number_of_children()``, ``child_names()``, ``has_path``,
  path access ``node["fields/e/values"]`` returning numpy arrays): the
  embedded runtime's own :class:`~insitu.runtime.conduit_node.DataNode`, which
  it now hands every extract too;
* the source runs in one fresh ``__main__``-like namespace of this runtime
  (not the process-wide one of the embedded runtime) that persists across
  executes, with ``def ascent_mpi_comm_id(): return <fortran handle>``
  prepended to it and ``ascent_data`` bound there and in module ``ascent_extract``.

Everything else (validation, order, queries, triggers) is the embedded runtime's.
"""
from __future__ import annotations

import sys
import types

from insitu.runtime import Runtime
from insitu.runtime.conduit_node import DataNode, multi_domain
from insitu.runtime.embedded import extract_error

ConduitLikeNode = DataNode  # the name tests used before the runtime had its own


class AscentLikeRuntime(Runtime):
    """The embedded runtime, but Python extracts run in a namespace of their own, as in a fresh Ascent process."""

    def __init__(self):
        super().__init__()
        self.namespace = {"__name__": "__main__"}

    def _run_python_extract(self, name, source):
        node = multi_domain(self.published)
        mod = types.ModuleType("ascent_extract")
        mod.ascent_data = lambda: node
        sys.modules["ascent_extract"] = mod
        self.namespace["ascent_data"] = mod.ascent_data
        handle = self.comm.py2f() if self.comm is not None else 0
        try:
            exec(f"def ascent_mpi_comm_id():\n    return {handle}\n{source}", self.namespace)
        except Exception as exc:
            return extract_error(name, exc)
        return None
