"""The embedded runtime: Ascent's API shape and actions, without Ascent.

    rt = insitu.runtime.Runtime()
    rt.open({"mpi_comm": comm.py2f()})      # or an mpi4py communicator
    rt.publish(mesh)                         # Blueprint tree(s) of this rank
    rt.execute("ascent_actions.yaml")        # or a list of action dicts
    rt.info(node); rt.close()

Supported actions: ``add_extracts`` (type ``python`` with ``params.source`` or
``params.file``), ``add_queries``, ``add_triggers`` (``condition`` with
``actions`` or ``actions_file``), ``add_scenes`` (``volume``, ``pseudocolor``
and ``slice`` plots drawn by :mod:`insitu.render`, see :mod:`insitu.scenes`),
``execute``, ``reset``, ``save_session``.
Anything else is rejected with a message naming it and the supported ones;
with ``exceptions: catch`` (the default, as Ascent) the error is reported and
the rest of the actions - and the simulation - go on.

Python extracts run the way Ascent runs them: in one namespace per process
that persists across executes and runtime instances, with ``ascent_data()``
and ``ascent_mpi_comm_id()`` defined there (and ``ascent_data`` also in
module ``ascent_extract``). Query history also lives for the whole process.
Per execute the graph runs as: queries, extracts, scenes, triggers. The
seconds each extract and scene took are kept per execute (``info()["timings"]``)
so a simulation can account for its in situ overhead.
"""
from __future__ import annotations

import sys
import time
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from insitu.runtime import actions as actions_mod
from insitu.runtime.expressions import Context, ExpressionError, evaluate_string, to_plain

SUPPORTED_ACTIONS = ("add_extracts", "add_queries", "add_triggers", "add_scenes", "execute", "reset",
                     "save_session")
SUPPORTED_EXTRACTS = ("python",)
EXCEPTION_MODES = ("catch", "forward")

# ---- process-wide state, as in Ascent (one Python interpreter per process)
_NAMESPACE: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
_QUERY_HISTORY: dict[str, list[tuple[int, Any]]] = {}


class RuntimeActionError(RuntimeError):
    """An action failed (raised only with ``exceptions: forward``)."""


def reset_process_state() -> None:
    """Forget the extract namespace and query history (what a new process would see)."""
    _NAMESPACE.clear()
    _NAMESPACE.update({"__name__": "__main__", "__builtins__": __builtins__})
    _QUERY_HISTORY.clear()


def _as_comm(mpi_comm: Any) -> Any:
    """An mpi4py communicator from an int Fortran handle, a communicator, or None (COMM_WORLD)."""
    try:
        from mpi4py import MPI
    except Exception:  # serial use without mpi4py
        return None
    if mpi_comm is None:
        return MPI.COMM_WORLD
    if isinstance(mpi_comm, int):
        return MPI.Comm.f2py(mpi_comm)
    return mpi_comm


@dataclass
class _Graph:
    """What the actions of one execute declared, run at its end (or at an ``execute`` action)."""

    queries: list[tuple[str, str]] = field(default_factory=list)
    extracts: list[tuple[str, dict]] = field(default_factory=list)
    triggers: list[tuple[str, dict]] = field(default_factory=list)
    scenes: list[Any] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.queries or self.extracts or self.triggers or self.scenes)


class Runtime:
    """Ascent-shaped embedded runtime (``open``, ``publish``, ``execute``, ``info``, ``close``)."""

    def __init__(self) -> None:
        self.comm: Any = None
        self.options: dict = {}
        self.published: Any = None
        self._info: dict = {"status": {"message": "not opened"}}
        self.trigger_log: list[dict] = []  # every firing: trigger name, cycle, errors
        self.images: list[str] = []  # every image scenes wrote (rank 0)
        self._timings: dict = {}  # seconds per extract / scene of the last execute
        self._opened = False

    # ------------------------------------------------------------ Ascent API
    def open(self, options: dict | None = None) -> None:
        """Open with Ascent-style options: ``mpi_comm`` (Fortran handle or communicator), ``exceptions``."""
        self.options = dict(options or {})
        mode = self.options.get("exceptions", "catch")
        if mode not in EXCEPTION_MODES:
            raise ValueError(f"open: exceptions={mode!r} is invalid: valid choices are {list(EXCEPTION_MODES)}")
        self.comm = _as_comm(self.options.get("mpi_comm"))
        self._opened = True
        self._info = {"status": {"message": "opened"}}

    def publish(self, mesh: Any) -> None:
        """Publish this rank's Blueprint domains (kept by reference, as Ascent does: keep them alive)."""
        self._require_open("publish")
        self.published = mesh

    def execute(self, actions: Any) -> None:
        """Run actions (a list of dicts, a conduit.Node, or a .yaml/.json file path)."""
        self._require_open("execute")
        t0 = time.perf_counter()
        errors: list[str] = []
        self._timings = {"cycle": self.cycle, "extracts": {}, "scenes": {}, "triggers": {}}
        try:
            acts = actions_mod.load(actions)
        except actions_mod.ActionsError as exc:
            acts = []
            self._fail(errors, f"actions: {exc}")
        graph = _Graph()
        for i, act in enumerate(acts):
            name = act.get("action")
            try:
                if name == "add_extracts":
                    self._add_extracts(act, graph)
                elif name == "add_queries":
                    self._add_queries(act, graph)
                elif name == "add_triggers":
                    self._add_triggers(act, graph)
                elif name == "add_scenes":
                    self._add_scenes(act, graph)
                elif name == "execute":
                    self._run(graph, errors)
                    graph = _Graph()
                elif name == "reset":
                    graph = _Graph()
                elif name == "save_session":  # saves what this execute computed so far
                    self._run(graph, errors)
                    graph = _Graph()
                    self._save_session(act)
                else:
                    raise actions_mod.ActionsError(
                        f"unsupported action '{name}': this runtime supports {list(SUPPORTED_ACTIONS)}")
            except Exception as exc:  # one bad action never stops the others
                self._fail(errors, f"action {i} '{name}': {exc}")
        if not graph.empty():
            self._run(graph, errors)
        self._timings["seconds"] = time.perf_counter() - t0
        self._info["status"] = {"message": "failed" if errors else "completed", "errors": errors,
                                "seconds": self._timings["seconds"]}

    def info(self, node: dict | None = None) -> dict:
        """Status of the last execute, latest query values (``expressions``) and trigger firings."""
        out = node if node is not None else {}
        out.update(self._info)
        out["expressions"] = {name: {str(c): {"value": to_plain(v)}} for name, hist in _QUERY_HISTORY.items()
                              for c, v in hist[-1:]}
        out["triggers"] = list(self.trigger_log)
        out["timings"] = dict(self._timings)
        out["images"] = list(self.images)
        return out

    def close(self) -> None:
        self._opened = False
        self.published = None

    # ------------------------------------------------------------ helpers
    def _require_open(self, what: str) -> None:
        if not self._opened:
            raise RuntimeError(f"Runtime.{what}() called before open()")

    @property
    def rank(self) -> int:
        return self.comm.Get_rank() if self.comm is not None else 0

    def _fail(self, errors: list[str], msg: str) -> None:
        errors.append(msg)
        print(f"[insitu runtime] rank {self.rank}: {msg}", file=sys.stderr, flush=True)
        if self.options.get("exceptions", "catch") == "forward":
            raise RuntimeActionError(msg)

    def _state(self, key: str, default: Any) -> Any:
        from insitu.blueprint import _scalar, domains

        doms = domains(self.published) if self.published is not None else []
        return _scalar(doms[0].get(f"state/{key}"), default) if doms else default

    @property
    def cycle(self) -> int:
        return int(self._state("cycle", 0))

    @property
    def time(self) -> float:
        return float(self._state("time", 0.0))

    # ------------------------------------------------------------ declaring
    @staticmethod
    def _items(act: dict, key: str) -> list[tuple[str, dict]]:
        items = act.get(key)
        if not isinstance(items, dict) or not items:
            raise actions_mod.ActionsError(f"'{act['action']}' needs a mapping '{key}' of named entries")
        return [(str(k), v if isinstance(v, dict) else {}) for k, v in items.items()]

    def _add_extracts(self, act: dict, graph: _Graph) -> None:
        for name, ex in self._items(act, "extracts"):
            etype = ex.get("type")
            if etype not in SUPPORTED_EXTRACTS:
                raise actions_mod.ActionsError(f"extract '{name}': unsupported type '{etype}'; this runtime "
                                               f"supports {list(SUPPORTED_EXTRACTS)}")
            params = ex.get("params") or {}
            if ("source" in params) == ("file" in params):
                raise actions_mod.ActionsError(f"extract '{name}': python extracts take exactly one of "
                                               "params/source and params/file")
            graph.extracts.append((name, params))

    def _add_scenes(self, act: dict, graph: _Graph) -> None:
        from insitu.runtime.scenes import parse_scene

        for name, scene in self._items(act, "scenes"):
            graph.scenes.append(parse_scene(name, scene))

    def _add_queries(self, act: dict, graph: _Graph) -> None:
        for key, q in self._items(act, "queries"):
            params = q.get("params") or {}
            expr = params.get("expression")
            if not isinstance(expr, str):
                raise actions_mod.ActionsError(f"query '{key}': params/expression must be a string, "
                                               f"got {expr!r}")
            graph.queries.append((str(params.get("name", key)), expr))

    def _add_triggers(self, act: dict, graph: _Graph) -> None:
        for name, t in self._items(act, "triggers"):
            params = t.get("params") or {}
            if not isinstance(params.get("condition"), str):
                raise actions_mod.ActionsError(f"trigger '{name}': params/condition must be a string")
            if ("actions" in params) == ("actions_file" in params):
                raise actions_mod.ActionsError(f"trigger '{name}': takes exactly one of params/actions and "
                                               "params/actions_file")
            graph.triggers.append((name, params))

    # ------------------------------------------------------------ running
    def _context(self) -> Context:
        return Context(cycle=self.cycle, time=self.time, published=self.published, comm=self.comm,
                       lookup=self._lookup, history=self._history)

    @staticmethod
    def _lookup(name: str) -> Any:
        hist = _QUERY_HISTORY.get(name)
        if not hist:
            raise ExpressionError(f"unknown name '{name}'; known queries are {sorted(_QUERY_HISTORY)}")
        return hist[-1][1]

    @staticmethod
    def _history(name: str, relative: int | None, absolute: int | None) -> Any:
        hist = _QUERY_HISTORY.get(name)
        if not hist:
            raise ExpressionError(f"history(): unknown query '{name}'; known queries are {sorted(_QUERY_HISTORY)}")
        i = absolute if absolute is not None else len(hist) - 1 - int(relative or 0)
        if not 0 <= i < len(hist):
            raise ExpressionError(f"history({name}): index out of range ({len(hist)} values recorded)")
        return hist[i][1]

    def _run(self, graph: _Graph, errors: list[str]) -> None:
        for name, expr in graph.queries:
            try:
                value = evaluate_string(expr, self._context())
            except Exception as exc:
                self._fail(errors, f"query '{name}': {exc}")
                continue
            hist = _QUERY_HISTORY.setdefault(name, [])
            if hist and hist[-1][0] == self.cycle:
                hist[-1] = (self.cycle, value)
            else:
                hist.append((self.cycle, value))
        for name, params in graph.extracts:
            t0 = time.perf_counter()
            self._run_python_extract(name, params, errors)
            self._add_time("extracts", name, t0)
        for spec in graph.scenes:
            t0 = time.perf_counter()
            self._run_scene(spec, errors)
            self._add_time("scenes", spec.name, t0)
        for name, params in graph.triggers:
            t0 = time.perf_counter()
            self._run_trigger(name, params, errors)
            self._add_time("triggers", name, t0)

    def _add_time(self, kind: str, name: str, t0: float) -> None:
        table = self._timings.setdefault(kind, {})
        table[name] = table.get(name, 0.0) + time.perf_counter() - t0

    def _run_scene(self, spec: Any, errors: list[str]) -> None:
        from insitu.runtime.scenes import render_scene

        problems: list[str] = []
        try:
            self.images.extend(render_scene(spec, self.published, self.comm, self.cycle, problems))
        except Exception as exc:
            problems.append(f"scene '{spec.name}': {exc}")
        for msg in problems:
            self._fail(errors, msg)

    def _extract_source(self, name: str, params: dict) -> str:
        if "source" in params:
            return str(params["source"])
        # Ascent reads params/file on rank 0 and broadcasts it (relative to the working directory)
        text, err = None, None
        if self.rank == 0:
            try:
                text = Path(str(params["file"])).read_text()
            except OSError as exc:
                err = f"cannot read python script file {params['file']}: {exc.strerror or exc}"
        if self.comm is not None and self.comm.Get_size() > 1:
            text, err = self.comm.bcast((text, err), root=0)
        if err:
            raise actions_mod.ActionsError(err)
        return text or ""

    def _run_python_extract(self, name: str, params: dict, errors: list[str]) -> None:
        try:
            source = self._extract_source(name, params)
        except Exception as exc:
            self._fail(errors, f"extract '{name}': {exc}")
            return
        published = self.published
        handle = self.comm.py2f() if self.comm is not None else 0
        module = sys.modules.get("ascent_extract") or types.ModuleType("ascent_extract")
        module.ascent_data = lambda: published  # type: ignore[attr-defined]
        module.ascent_mpi_comm_id = lambda: handle  # type: ignore[attr-defined]
        sys.modules["ascent_extract"] = module
        _NAMESPACE["ascent_data"] = module.ascent_data  # type: ignore[attr-defined]
        # as Ascent's MPI library does: prepend the communicator's Fortran handle to the source
        code = f"def ascent_mpi_comm_id():\n    return {handle}\n{source}"
        try:
            exec(compile(code, f"<python extract '{name}'>", "exec"), _NAMESPACE)
        except Exception as exc:
            tb = traceback.format_exc(limit=3)
            self._fail(errors, f"extract '{name}': {type(exc).__name__}: {exc}\n{tb}")

    def _run_trigger(self, name: str, params: dict, errors: list[str]) -> None:
        try:
            fired = bool(evaluate_string(params["condition"], self._context()))
        except Exception as exc:
            self._fail(errors, f"trigger '{name}': condition {params['condition']!r}: {exc}")
            return
        if not fired:
            return
        record = {"trigger": name, "cycle": self.cycle, "errors": []}
        self.trigger_log.append(record)
        # as Ascent: a fresh instance on the same communicator, default options, the same data;
        # errors inside are printed and recorded, the outer execute still succeeds
        nested = Runtime()
        nested.open({"mpi_comm": self.comm} if self.comm is not None else {})
        nested.publish(self.published)
        nested.execute(params["actions"] if "actions" in params else params["actions_file"])
        record["errors"] = nested._info["status"].get("errors", [])
        self.images.extend(nested.images)
        nested.close()

    def _save_session(self, act: dict) -> None:
        """Write the query history like Ascent's ``ascent_session.yaml`` (rank 0)."""
        if self.rank != 0:
            return
        names = act.get("expression_list") or sorted(_QUERY_HISTORY)
        out = {n: {str(c): {"value": to_plain(v)} for c, v in _QUERY_HISTORY.get(n, [])} for n in names}
        Path(f"{act.get('file_name', 'ascent_session')}.yaml").write_text(yaml.safe_dump(out))


def connect(comm: Any = None, prefer: str = "auto", options: dict | None = None) -> Any:
    """An opened runtime: real Ascent when ``import ascent`` works (``prefer`` auto/ascent), else embedded.

    ``prefer="embedded"`` always gives the embedded runtime; ``prefer="ascent"``
    raises when Ascent cannot be imported. The PyPI package named ``ascent`` is
    an unrelated project and is not accepted as Ascent.
    """
    choices = ("auto", "ascent", "embedded")
    if prefer not in choices:
        raise ValueError(f"prefer={prefer!r} is invalid: valid choices are {list(choices)}")
    comm = _as_comm(comm)
    opts = dict(options or {})
    if prefer != "embedded":
        from insitu.runtime.ascent_bridge import ascent_import_error, open_ascent

        err = ascent_import_error()
        if err is None:
            return open_ascent(comm, opts)
        if prefer == "ascent":
            raise RuntimeError(f"prefer='ascent' but Ascent cannot be used here: {err}")
    rt = Runtime()
    if comm is not None:
        opts["mpi_comm"] = comm
    rt.open(opts)
    return rt
