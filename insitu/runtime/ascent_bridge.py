"""Real Ascent behind the same API as the embedded runtime (used when ``import ascent`` works).

Ascent wants ``conduit.Node`` s; simulations here publish dict trees of numpy
arrays, so :class:`AscentRuntime` converts meshes and actions on the way in.
Ascent reads published arrays in place: the converted node is kept until the
next publish.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def ascent_import_error() -> str | None:
    """Why real Ascent cannot be used, or None. The unrelated PyPI ``ascent`` package is refused."""
    try:
        import ascent  # noqa: F401
        import conduit  # noqa: F401
        from ascent import mpi as _  # noqa: F401
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if not hasattr(ascent, "mpi") or not hasattr(conduit, "Node"):
        return "the importable 'ascent' is not LLNL Ascent"
    return None


def from_conduit(node: Any) -> Any:
    """A plain tree (dicts, lists, numbers, strings, arrays) from a conduit.Node (e.g. Ascent's info)."""
    n = node.number_of_children()
    if n == 0:
        value = node.value()
        if isinstance(value, np.ndarray) and value.size == 1:
            return value.reshape(()).item()
        return value
    if node.dtype().is_list():
        return [from_conduit(node.child(i)) for i in range(n)]
    return {name: from_conduit(node.child(i)) for i, name in enumerate(node.child_names())}


def _numbers(value: Any) -> np.ndarray | None:
    """A list of numbers as the array Conduit's own YAML reader makes of it (int64, or float64 if any float)."""
    if not isinstance(value, list) or not value or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    return np.asarray(value, np.float64 if any(isinstance(v, float) for v in value) else np.int64)


def to_conduit(tree: Any, node: Any = None) -> Any:
    """A conduit.Node from a dict/list tree (lists become conduit lists, lists of numbers arrays, as Conduit's
    own YAML reader makes them; an empty value stays an empty node)."""
    import conduit

    node = conduit.Node() if node is None else node
    _fill(node, tree)
    return node


#: trigger firings seen in this process: (trigger name, cycle); Ascent's info does not keep them
_FIRINGS: list[tuple[str, int]] = []
_TWIN = "__insitu_fired"  # suffix of the trigger :func:`recording_firings` adds beside each trigger


def record_firing(trigger: str) -> None:
    """Run by the twin trigger's extract: ``trigger`` fired at the published cycle."""
    import ascent_extract  # Ascent binds the published data there

    data = ascent_extract.ascent_data()
    cycle = int(data.child(0)["state/cycle"]) if data.number_of_children() and \
        data.child(0).has_path("state/cycle") else -1
    _FIRINGS.append((trigger, cycle))


def recording_firings(acts: list) -> list:
    """``acts`` with a twin beside each trigger: the same condition, and one extract that records the firing.

    Ascent's info keeps no trigger firings, and a trigger's own actions may fail to build in a given Ascent
    (a scene where Ascent has no rendering) while its condition held; the twin, named ``<trigger>__insitu_fired``,
    sorts right after the trigger, so it runs just after it in Ascent's name order and fires exactly when it does.
    """
    out = []
    for act in acts:
        if isinstance(act, dict) and act.get("action") == "add_triggers" and isinstance(act.get("triggers"), dict):
            triggers = dict(act["triggers"])
            for name, t in act["triggers"].items():
                cond = (t.get("params") or {}).get("condition") if isinstance(t, dict) else None
                if isinstance(cond, str):
                    triggers[f"{name}{_TWIN}"] = {"params": {"condition": cond, "actions": [
                        {"action": "add_extracts", "extracts": {f"{name}{_TWIN}": {"type": "python", "params": {
                            "source": f"import insitu.runtime.ascent_bridge as _b; _b.record_firing({name!r})"}}}}]}}
            act = dict(act, triggers=triggers)
        out.append(act)
    return out


def _fill(node: Any, value: Any) -> None:
    arr = _numbers(value)
    if arr is not None:
        node.set(arr)
    elif isinstance(value, dict):
        for key, item in value.items():
            _fill(node.fetch(str(key)), item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _fill(node.append(), item)
    elif isinstance(value, np.ndarray):
        node.set(np.ascontiguousarray(value))
    elif value is not None:
        node.set(value)


class AscentRuntime:
    """Real Ascent (``ascent.mpi.Ascent``) with dict-tree meshes and actions accepted."""

    def __init__(self, ascent_obj: Any) -> None:
        self.ascent = ascent_obj
        self._mesh = None
        self._firings_seen = len(_FIRINGS)

    def publish(self, mesh: Any) -> None:
        self._mesh = mesh if hasattr(mesh, "number_of_children") else to_conduit(mesh)
        self.ascent.publish(self._mesh)

    def execute(self, actions: Any) -> None:
        from insitu.runtime.actions import load

        if hasattr(actions, "number_of_children"):
            self.ascent.execute(actions)
            return
        acts = load(actions) if isinstance(actions, (str, Path)) else actions
        self.ascent.execute(to_conduit(recording_firings(list(acts))))

    def info(self, node: Any = None) -> dict:
        """Ascent's info as a plain dict, the type the embedded runtime returns (``node``, a conduit.Node,
        is filled as well when given)."""
        import conduit

        out = conduit.Node() if node is None else node
        self.ascent.info(out)
        info = from_conduit(out)
        info["triggers"] = [{"trigger": t, "cycle": c, "errors": []} for t, c in _FIRINGS[self._firings_seen:]]
        return info

    def close(self) -> None:
        self.ascent.close()


def open_ascent(comm: Any, options: dict) -> AscentRuntime:
    from ascent import mpi as ascent_mpi

    a = ascent_mpi.Ascent()
    opts = dict(options)
    if comm is not None:
        opts["mpi_comm"] = comm.py2f()
    a.open(to_conduit(opts))
    return AscentRuntime(a)
