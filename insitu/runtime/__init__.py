"""Runtimes that run Ascent actions: the embedded one (no Ascent needed) and the bridge to real Ascent.

``connect(comm, prefer="auto"|"embedded"|"ascent")`` is what simulations call; actions files are parsed
by :mod:`.actions`, expressions (queries, triggers) evaluated by :mod:`.expressions`, scenes rendered by
:mod:`.scenes`, and :mod:`.ascent_bridge` opens real Ascent when its Python module imports.
"""
from insitu.runtime.embedded import (EXCEPTION_MODES, SUPPORTED_ACTIONS, SUPPORTED_EXTRACTS, Runtime,
                                     RuntimeActionError, connect, reset_process_state)

__all__ = ["EXCEPTION_MODES", "SUPPORTED_ACTIONS", "SUPPORTED_EXTRACTS", "Runtime", "RuntimeActionError", "connect",
           "reset_process_state"]
