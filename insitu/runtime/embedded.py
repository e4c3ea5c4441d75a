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
``save_session``; ``execute`` and ``reset`` are accepted and do nothing (as in
Ascent 0.9.3, where they are deprecated).

An execute runs the way Ascent 0.9.3 runs one (see ``docs/runtime_semantics.md``):

1. *Build*: every action is checked first (a query needs ``params/name`` and a
   string ``params/expression``; YAML files are typed as Conduit types them;
   unsupported actions, extract types, pipelines and pipeline-qualified
   queries are refused). Any problem fails the execute and nothing in it runs,
   at every cycle.
2. *Order*: filters run in Ascent's flow-graph order, not the list order:
   by name (the name of an extract or trigger, ``exec_<name>`` for a scene),
   the queries of one ``add_queries`` action together, in the order listed, at
   the name of their last query, and those of the last ``add_queries`` action
   at the name of Ascent's filter ``default_filters_endpoint``. A trigger or
   query that uses a query running after it is reported once per execute,
   with a name that would fix it.
3. *Run*: the first failing filter ends the execute (``failed``); the ranks
   agree on it, so none is left waiting. Ascent then drops its graph but keeps
   the actions: later executes with identical actions do nothing and report
   ``completed``; this runtime does the same and says so in one line each time.

Python extracts run the way Ascent runs them: in one namespace per process
that persists across executes and runtime instances, with ``ascent_data()``
(a multi-domain, read-only ``conduit.Node`` look-alike, see
:mod:`.conduit_node`) and ``ascent_mpi_comm_id()`` defined there (and
``ascent_data`` also in module ``ascent_extract``); ``conduit`` is imported
there when it is installed. Query history also lives for the whole process.
The seconds each extract and scene took are kept per execute
(``info()["timings"]``) so a simulation can account for its in situ overhead.
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

from insitu.filters.session import Repeats
from insitu.runtime import actions as actions_mod
from insitu.runtime.conduit_node import multi_domain
from insitu.runtime.expressions import (Context, ExpressionError, evaluate_string, pick_history, referenced_names,
                                        to_plain, type_name)

SUPPORTED_ACTIONS = ("add_extracts", "add_queries", "add_triggers", "add_scenes", "execute", "reset",
                     "save_session")
SUPPORTED_EXTRACTS = ("python",)
EXCEPTION_MODES = ("catch", "forward")
TRIGGER_PARAMS = ("condition", "actions", "actions_file")
#: the name of Ascent's filter at which the queries of the last add_queries action run
QUERIES_ENDPOINT = "default_filters_endpoint"
PREFIX = "[insitu runtime]"

# ---- process-wide state, as in Ascent (one Python interpreter per process)
_PRINTED = Repeats()  # the errors printed so far (process-wide, as Ascent's interpreter is)
_NAMESPACE: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
_QUERY_HISTORY: dict[str, list[tuple[int, Any]]] = {}
_NOTES_SHOWN: set[str] = set()


class RuntimeActionError(RuntimeError):
    """An action failed (raised only with ``exceptions: forward``)."""


def reset_process_state() -> None:
    """Forget the extract namespace, query history and notes shown (what a new process would see)."""
    _NAMESPACE.clear()
    _NAMESPACE.update({"__name__": "__main__", "__builtins__": __builtins__})
    _QUERY_HISTORY.clear()
    _NOTES_SHOWN.clear()
    _PRINTED.clear()


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


# ---------------------------------------------------------------- the graph of one execute
@dataclass
class _Filter:
    """One filter of the flow graph: a query, python extract, trigger or scene, named as in the actions."""

    kind: str  # "query" | "extract" | "trigger" | "scene"
    key: str  # its name in the actions (Ascent's filter name; a scene's filter is exec_<key>)
    spec: Any  # query: (identifier, expression); extract: source; trigger: params; scene: SceneSpec
    chain: int = -1  # queries: which add_queries action (queries of one action run together, in order)

    @property
    def label(self) -> str:
        if self.kind == "query" and self.spec[0] != self.key:
            return f"query '{self.key}' (name '{self.spec[0]}')"
        return f"{self.kind} '{self.key}'"


@dataclass
class _Plan:
    """A built, validated execute: its filters in Ascent's order, deferred save_session actions, warnings."""

    order: list[_Filter] = field(default_factory=list)
    sink_of: dict[int, str] = field(default_factory=dict)  # id(filter) -> the name its place comes from
    save_sessions: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def queries(self) -> list[_Filter]:
        return [f for f in self.order if f.kind == "query"]


def flow_order(chains: list[list[_Filter]], others: list[_Filter]) -> tuple[list[_Filter], dict[int, str]]:
    """Ascent's execution order (flow::Workspace: its sinks by name, each after the filters it needs).

    A chain of queries (one add_queries action) runs in its order at the name of its last query; the last
    chain is tied to Ascent's ``default_filters_endpoint`` and runs there. Extracts and triggers run at
    their own name, scenes at ``exec_<name>``.
    """
    sinks: list[tuple[str, list[_Filter]]] = []
    for i, chain in enumerate(chains):
        sinks.append((QUERIES_ENDPOINT if i == len(chains) - 1 else chain[-1].key, chain))
    for f in others:
        sinks.append(("exec_" + f.key if f.kind == "scene" else f.key, [f]))
    sinks.sort(key=lambda s: s[0])  # std::map<std::string, Filter*> order
    order: list[_Filter] = []
    sink_of: dict[int, str] = {}
    for name, group in sinks:
        for f in group:
            order.append(f)
            sink_of[id(f)] = name
    return order, sink_of


def _rename_after(f: _Filter, bounds: list[str]) -> str:
    """A name for ``f`` whose place sorts after every one of ``bounds``."""
    first = {"trigger": "t_", "extract": "x_", "scene": "z_"}.get(f.kind, "z_")
    for prefix in (first, "z_", "zz_", "zzz_", "zzzz_"):
        cand = prefix + f.key
        place = "exec_" + cand if f.kind == "scene" else cand
        if all(place > b for b in bounds):
            return cand
    return "zzzzz_" + f.key


def order_warnings(plan: _Plan, chains: list[list[_Filter]]) -> list[str]:
    """One line for each trigger/query that uses a query of these actions which runs after it."""
    pos = {id(f): i for i, f in enumerate(plan.order)}
    by_ident = {f.spec[0]: f for f in plan.order if f.kind == "query"}
    last_chain = len(chains) - 1
    out = []
    for f in plan.order:
        if f.kind == "query":
            expr = f.spec[1]
        elif f.kind == "trigger":
            expr = f.spec.get("condition")
        else:
            continue
        for ident in sorted(referenced_names(expr)):
            q = by_ident.get(ident)
            if q is None or q is f or pos[id(q)] < pos[id(f)]:
                continue
            sink = plan.sink_of[id(q)]
            if q.chain == last_chain:
                why = (f"Ascent orders filters by name, and runs the queries of the last add_queries action at the "
                       f"place of its filter '{QUERIES_ENDPOINT}'")
            else:
                why = (f"Ascent orders filters by name, and runs the queries of one add_queries action together at "
                       f"the name of the last one, '{sink}'")
            if f.kind == "query" and f.chain == q.chain:
                fix = f"list query '{q.key}' before query '{f.key}' in their add_queries action"
                why = "queries of one add_queries action run in the order listed"
            elif f.kind == "query":
                fix = (f"declare both in one add_queries action, '{q.key}' first (queries of one action run in the "
                       "order listed)")
            else:
                chain_keys = [x.key for x in chains[q.chain]]
                new = _rename_after(f, [sink, *chain_keys])
                fix = f"rename {f.kind} '{f.key}' so that it sorts after '{sink}', e.g. '{new}'"
            out.append(f"{f.label} runs before {q.label} ({why}): {fix}; otherwise it fails with "
                       f"\"Unknown expression identifier: '{ident}'\"")
    # a scene drawing this cycle's reconstruction needs the compress extract to have run before it
    for f in plan.order:
        if f.kind != "scene" or not any(getattr(p, "source", "") == "reconstruction" for p in f.spec.plots):
            continue
        for x in plan.order[pos[id(f)] + 1:]:
            if x.kind == "extract" and "compress(" in x.spec:
                out.append(f"scene '{f.key}' draws this cycle's reconstruction but runs before extract '{x.key}', "
                           f"which compresses it (Ascent orders filters by name, a scene at 'exec_{f.key}'): "
                           f"rename the extract so that it sorts before 'exec_{f.key}', e.g. 'compress'")
    return out


# ---------------------------------------------------------------- the runtime
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
        # Ascent's m_previous_actions / its graph: identical actions are not rebuilt
        self._previous_actions: Any = None
        self._plan: _Plan | None = None
        self._graph_ok = False  # False once an execute failed while running: the graph is gone
        self._pending: dict[str, _Filter] = {}  # queries of the running execute not run yet (by name)
        self._running: _Filter | None = None

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
        status: dict[str, Any] = {}
        self._timings = {"cycle": self.cycle, "extracts": {}, "scenes": {}, "triggers": {}, "queries": {}}
        try:
            self._execute(actions, errors, status)
        finally:
            self._timings["seconds"] = time.perf_counter() - t0
            status.update({"message": "failed" if errors else "completed", "errors": errors,
                           "seconds": self._timings["seconds"]})
            self._info["status"] = status

    def _execute(self, actions: Any, errors: list[str], status: dict) -> None:
        try:
            acts = actions_mod.load(actions)
        except actions_mod.ActionsError as exc:
            self._plan, self._graph_ok = None, False
            self._fail(errors, f"actions: {exc}")
            return
        if self._previous_actions is not None and actions_mod.same_actions(acts, self._previous_actions):
            if not self._graph_ok:
                # Ascent: identical actions are not rebuilt, and the graph was dropped when an execute failed
                msg = ("execute did nothing: these actions are identical to those of an earlier execute that failed, "
                       "and Ascent then neither rebuilds nor runs anything (it still reports completed); fix the "
                       "failing filter reported earlier, or change the actions (any change rebuilds)")
                for w in self._plan.warnings if self._plan is not None else []:
                    self._say(f"warning: {w}")
                self._say(msg)
                status["did_nothing"] = msg
                if self._plan is not None:
                    status["warnings"] = list(self._plan.warnings)
                    self._save_sessions(self._plan)
                return
            plan = self._plan
            assert plan is not None
        else:
            build_errors: list[str] = []
            plan = self._build(acts, build_errors)
            if build_errors:
                self._plan, self._graph_ok = None, False  # Ascent resets its workspace, keeps the old actions
                for msg in build_errors:
                    self._fail(errors, msg)
                return
            self._plan, self._graph_ok, self._previous_actions = plan, True, acts
        for w in plan.warnings:
            self._say(f"warning: {w}")
        status["warnings"] = list(plan.warnings)
        if not self._run(plan, errors):
            self._save_sessions(plan)

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
        # an error that comes back every cycle is printed the first time, then counted (info() keeps them all)
        line = _PRINTED.line(msg)
        if line is not None:
            print(f"{PREFIX} rank {self.rank}: {line}", file=sys.stderr, flush=True)
        if self.options.get("exceptions", "catch") == "forward":
            raise RuntimeActionError(msg)

    def _say(self, msg: str) -> None:
        """A line every rank would print alike: printed once, on rank 0."""
        if self.rank == 0:
            print(f"{PREFIX} {msg}", file=sys.stderr, flush=True)

    def _note(self, msg: str) -> None:
        """A portability note (works here, not in Ascent): once per process."""
        where = self._running.label + ": " if self._running is not None else ""
        if msg not in _NOTES_SHOWN:
            _NOTES_SHOWN.add(msg)
            self._say(f"note: {where}{msg}")

    def _agree(self, failed: bool) -> bool:
        """Whether any rank failed (every rank asks, so all stop together instead of waiting for each other)."""
        if self.comm is None or self.comm.Get_size() == 1:
            return failed
        from mpi4py import MPI

        return bool(self.comm.allreduce(int(failed), op=MPI.MAX))

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

    # ------------------------------------------------------------ building (validation)
    @staticmethod
    def _items(act: dict, key: str) -> list[tuple[str, Any]]:
        items = act.get(key)
        if not isinstance(items, dict) or not items:
            raise actions_mod.ActionsError(f"'{act['action']}' needs a mapping '{key}' of named entries")
        return [(str(k), v) for k, v in items.items()]

    def _build(self, acts: list[dict], errors: list[str]) -> _Plan:
        """Check every action and lay out the flow graph (Ascent's BuildGraph); problems go to ``errors``."""
        chains: list[list[_Filter]] = []
        groups: dict[str, list[tuple[str, _Filter]]] = {"trigger": [], "scene": [], "extract": []}
        plan = _Plan()
        for i, act in enumerate(acts):
            name = act.get("action")
            where = f"action {i} '{name}'"
            try:
                if name == "add_queries":
                    chain = [self._query(where, key, q, errors) for key, q in self._items(act, "queries")]
                    chain = [f for f in chain if f is not None]
                    if chain:
                        chains.append(chain)
                elif name == "add_triggers":
                    for key, t in self._items(act, "triggers"):
                        f = self._trigger(where, key, t, errors)
                        if f is not None:
                            groups["trigger"].append((where, f))
                elif name == "add_scenes":
                    from insitu.runtime.scenes import SceneError, parse_scene

                    for key, scene in self._items(act, "scenes"):
                        try:
                            groups["scene"].append((where, _Filter("scene", key, parse_scene(key, scene))))
                        except SceneError as exc:
                            errors.append(f"{where}: {exc}")
                elif name == "add_extracts":
                    for key, ex in self._items(act, "extracts"):
                        f = self._extract(where, key, ex, errors)
                        if f is not None:
                            groups["extract"].append((where, f))
                elif name in ("execute", "reset"):
                    pass  # deprecated in Ascent 0.9.3: accepted, does nothing
                elif name == "save_session":
                    plan.save_sessions.append(act)  # runs after the graph, as in Ascent
                else:
                    errors.append(f"{where}: unsupported action '{name}': this runtime supports "
                                  f"{list(SUPPORTED_ACTIONS)}")
            except actions_mod.ActionsError as exc:
                errors.append(f"{where}: {exc}")
        # Ascent creates queries, triggers, scenes, extracts in this order; a second filter of a name is dropped
        seen: dict[str, str] = {}
        chains = [kept for kept in ([f for f in chain if self._unique(f, seen, plan)] for chain in chains) if kept]
        for ci, chain in enumerate(chains):
            for f in chain:
                f.chain = ci
        others = [f for kind in ("trigger", "scene", "extract") for _, f in groups[kind] if self._unique(f, seen, plan)]
        plan.order, plan.sink_of = flow_order(chains, others)
        plan.warnings.extend(order_warnings(plan, chains))
        return plan

    @staticmethod
    def _unique(f: _Filter, seen: dict[str, str], plan: _Plan) -> bool:
        graph_name = "exec_" + f.key if f.kind == "scene" else f.key
        if graph_name in seen:
            plan.warnings.append(f"{f.label} has the name of {seen[graph_name]}: Ascent keeps the first filter of a "
                                 f"name and ignores this one; rename one of them")
            return False
        seen[graph_name] = f.label
        return True

    @staticmethod
    def _pipeline_refusal(label: str, where: str, entry: dict, params: dict) -> str | None:
        pipe = entry.get("pipeline", params.get("pipeline"))
        if pipe is None:
            return None
        return (f"{where}: {label} is pipeline-qualified (pipeline: '{pipe}'): the embedded runtime has no pipelines "
                f"and will not compute it on the published mesh instead; remove 'pipeline' to use the published "
                f"mesh, or run these actions under real Ascent")

    def _query(self, where: str, key: str, q: Any, errors: list[str]) -> _Filter | None:
        q = q if isinstance(q, dict) else {}
        params = q.get("params") if isinstance(q.get("params"), dict) else {}
        problems = []
        refusal = self._pipeline_refusal(f"query '{key}'", where, q, params)
        if refusal:
            errors.append(refusal)
            return None
        expr, name = params.get("expression"), params.get("name")
        if not isinstance(expr, str):
            if isinstance(expr, (int, float)) and not isinstance(expr, bool):
                problems.append(f"params/expression is the number {expr!r}, not a string: Conduit's YAML reader "
                                f"(which Ascent uses) makes a number of a quoted number; write it as an expression "
                                f"that is not a bare number, e.g. \"{expr!r} + 0\"")
            elif expr is None:
                problems.append("has no params/expression: add the expression to evaluate, e.g. "
                                "params/expression: \"max(field('e')).value\"")
            else:
                problems.append(f"params/expression must be a string, got {type(expr).__name__} {expr!r}")
        if name is None:
            problems.append(f"has no params/name: add params/name (the identifier triggers and other queries use, "
                            f"e.g. name: \"{key}\"); without it Ascent refuses the query (Cannot create filter "
                            f"{key}(type: basic_query) because verify_params failed) and runs nothing of this execute")
        elif not isinstance(name, str):
            problems.append(f"params/name must be a string (an identifier), got {type(name).__name__} {name!r}")
        if problems:
            errors.extend(f"{where}: query '{key}': {p}" for p in problems)
            return None
        return _Filter("query", key, (name, expr))

    def _trigger(self, where: str, key: str, t: Any, errors: list[str]) -> _Filter | None:
        t = t if isinstance(t, dict) else {}
        params = t.get("params") if isinstance(t.get("params"), dict) else {}
        refusal = self._pipeline_refusal(f"trigger '{key}'", where, t, params)
        if refusal:
            errors.append(refusal)
            return None
        bad = sorted(set(params) - set(TRIGGER_PARAMS))
        msgs = []
        if "callback" in bad:
            msgs.append("params/callback (a C++ callback) is not supported by the embedded runtime; use a condition")
            bad.remove("callback")
        if bad:
            msgs.append(f"unknown parameter(s) {bad}; valid: {list(TRIGGER_PARAMS)}")
        if not isinstance(params.get("condition"), str):
            msgs.append("params/condition must be a string (an expression giving a bool), got "
                        f"{params.get('condition')!r}")
        if ("actions" in params) == ("actions_file" in params):
            msgs.append("takes exactly one of params/actions and params/actions_file")
        elif "actions" in params and not isinstance(params["actions"], list):
            msgs.append("params/actions must be a list of actions")
        elif "actions_file" in params and not isinstance(params["actions_file"], str):
            msgs.append(f"params/actions_file must be a file name, got {params['actions_file']!r}")
        if msgs:
            errors.extend(f"{where}: trigger '{key}': {m}" for m in msgs)
            return None
        return _Filter("trigger", key, params)

    def _extract(self, where: str, key: str, ex: Any, errors: list[str]) -> _Filter | None:
        ex = ex if isinstance(ex, dict) else {}
        etype = ex.get("type")
        params = ex.get("params") if isinstance(ex.get("params"), dict) else {}
        if etype not in SUPPORTED_EXTRACTS:
            errors.append(f"{where}: extract '{key}': unsupported type '{etype}'; this runtime supports "
                          f"{list(SUPPORTED_EXTRACTS)}")
            return None
        refusal = self._pipeline_refusal(f"extract '{key}'", where, ex, {})
        if refusal:
            errors.append(refusal)
            return None
        if ("source" in params) == ("file" in params):
            errors.append(f"{where}: extract '{key}': python extracts take exactly one of params/source and "
                          "params/file")
            return None
        try:
            source = self._extract_source(key, params)  # read when the graph is built, as Ascent's MPI build does
        except actions_mod.ActionsError as exc:
            errors.append(f"{where}: extract '{key}': {exc}")
            return None
        return _Filter("extract", key, source)

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

    # ------------------------------------------------------------ running
    def _context(self) -> Context:
        return Context(cycle=self.cycle, time=self.time, published=self.published, comm=self.comm,
                       lookup=self._lookup, history=self._history, note=self._note)

    def _lookup(self, name: str) -> Any:
        hist = _QUERY_HISTORY.get(name)
        if not hist:
            raise ExpressionError(f"Unknown expression identifier: '{name}'{self._later_hint(name)}")
        return hist[-1][1]

    def _later_hint(self, name: str) -> str:
        q = self._pending.get(name)
        if q is not None and self._running is not None:
            return (f" ({q.label} is declared in these actions but runs after {self._running.label}, as Ascent "
                    "orders filters by name: see the warning above)")
        known = sorted(_QUERY_HISTORY)
        return f" (known: {known})" if known else " (no query has been evaluated yet)"

    def _history(self, name: str, relative: int | None, absolute: int | None) -> Any:
        hist = _QUERY_HISTORY.get(name)
        if not hist:
            raise ExpressionError(f"History: unknown identifier {name}{self._later_hint(name)}")
        return pick_history([v for _, v in hist], name, relative, absolute)

    def _run(self, plan: _Plan, errors: list[str]) -> bool:
        """Run the filters in order; True when one failed (on any rank): the rest does not run."""
        self._pending = {f.spec[0]: f for f in plan.order if f.kind == "query"}
        try:
            for i, f in enumerate(plan.order):
                self._running = f
                t0 = time.perf_counter()
                try:
                    err = self._run_filter(f)
                except Exception as exc:  # a bug here must not take the simulation down
                    err = f"{f.label}: {type(exc).__name__}: {exc}"
                self._add_time("queries" if f.kind == "query" else f.kind + "s", f.key, t0)
                if f.kind == "query":
                    self._pending.pop(f.spec[0], None)
                failed = self._agree(err is not None)
                if not failed:
                    continue
                rest = [g.label for g in plan.order[i + 1:]]
                tail = (f"; not run after it (Ascent ends the execute at the first failing filter): "
                        f"{', '.join(rest)}") if rest else ""
                if err is None:
                    err = f"{f.label} failed on another rank"
                self._graph_ok = False  # failed while running: Ascent drops its graph, remembers the actions
                lines = err.split("\n", 1)
                self._fail(errors, lines[0] + tail + ("\n" + lines[1] if len(lines) > 1 else ""))
                return True
            return False
        finally:
            self._running = None
            self._pending = {}

    def _run_filter(self, f: _Filter) -> str | None:
        """Run one filter; its error message (None when it worked). Never raises (except in forward mode)."""
        if f.kind == "query":
            ident, expr = f.spec
            try:
                value = evaluate_string(expr, self._context())
            except Exception as exc:
                return f"{f.label}: expression {expr!r}: {exc}"
            hist = _QUERY_HISTORY.setdefault(ident, [])
            if hist and hist[-1][0] == self.cycle:
                hist[-1] = (self.cycle, value)
            else:
                hist.append((self.cycle, value))
            return None
        if f.kind == "extract":
            return self._run_python_extract(f.key, f.spec)
        if f.kind == "scene":
            return self._run_scene(f.spec)
        return self._run_trigger(f.key, f.spec)

    def _add_time(self, kind: str, name: str, t0: float) -> None:
        table = self._timings.setdefault(kind, {})
        table[name] = table.get(name, 0.0) + time.perf_counter() - t0

    def _run_scene(self, spec: Any) -> str | None:
        from insitu.runtime.scenes import render_scene

        problems: list[str] = []
        try:
            self.images.extend(render_scene(spec, self.published, self.comm, self.cycle, problems))
        except Exception as exc:
            problems.append(f"scene '{spec.name}': {exc}")
        return "; ".join(problems) if problems else None

    def _extract_namespace(self) -> dict:
        """The namespace python extracts run in (one per process, as Ascent's interpreter)."""
        if "conduit" not in _NAMESPACE:
            try:
                import conduit  # type: ignore  # noqa: F401  (Ascent imports it before the extract runs)

                _NAMESPACE["conduit"] = conduit
            except Exception:
                pass  # not installed here: left undefined, as a script that needs it would find in a bare Python
        return _NAMESPACE

    def _run_python_extract(self, name: str, source: str) -> str | None:
        data = multi_domain(self.published)
        handle = self.comm.py2f() if self.comm is not None else 0
        module = sys.modules.get("ascent_extract") or types.ModuleType("ascent_extract")
        module.ascent_data = lambda: data  # type: ignore[attr-defined]
        module.ascent_mpi_comm_id = lambda: handle  # type: ignore[attr-defined]
        sys.modules["ascent_extract"] = module
        namespace = self._extract_namespace()
        namespace["ascent_data"] = module.ascent_data  # type: ignore[attr-defined]
        # as Ascent's MPI library does: prepend the communicator's Fortran handle to the source
        code = f"def ascent_mpi_comm_id():\n    return {handle}\n{source}"
        try:
            exec(compile(code, f"<python extract '{name}'>", "exec"), namespace)
        except Exception as exc:
            return extract_error(name, exc)
        return None

    def _run_trigger(self, name: str, params: dict) -> str | None:
        cond = params["condition"]
        try:
            value = evaluate_string(cond, self._context())
        except Exception as exc:
            return f"trigger '{name}': condition {cond!r}: {exc}"
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            return (f"trigger '{name}': condition {cond!r} gives a {type_name(value)}, not a bool (Ascent: result of "
                    f"expression is not an bool): make it a comparison, e.g. '{cond} > 0'")
        if not value:
            return None
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
        return None

    def _save_sessions(self, plan: _Plan) -> None:
        for act in plan.save_sessions:
            try:
                self._save_session(act)
            except Exception as exc:  # printed, as Ascent prints a failed session save
                self._say(f"save_session: {type(exc).__name__}: {exc}")

    def _save_session(self, act: dict) -> None:
        """Write the query history like Ascent's ``ascent_session.yaml`` (rank 0)."""
        if self.rank != 0:
            return
        names = act.get("expression_list") or sorted(_QUERY_HISTORY)
        if isinstance(names, str):
            names = [names]
        out = {n: {str(c): session_entry(v) for c, v in _QUERY_HISTORY.get(n, [])} for n in names}
        Path(f"{act.get('file_name', 'ascent_session')}.yaml").write_text(yaml.safe_dump(out))


def session_entry(value: Any) -> dict:
    """One cycle of a query in a session file (a binning in Ascent's own shape, so its scripts read it)."""
    from insitu.runtime.binning import Binning

    if isinstance(value, Binning):
        return value.session_entry()
    return {"value": to_plain(value)}


def extract_error(name: str, exc: BaseException) -> str:
    """The failure of a python extract: one summary line (with the fix where known), then the script's frames."""
    hint = ""
    if isinstance(exc, NameError) and "'conduit'" in str(exc):
        hint = (" (real Ascent imports conduit before the extract runs; Conduit's Python module is not installed "
                "here: install it, or keep conduit out of the script)")
    frames = [fr for fr in traceback.extract_tb(exc.__traceback__) if fr.filename.startswith("<python extract")]
    line = frames[-1].lineno if frames else getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    where = f" (line {line - 2})" if line else ""  # the prepended ascent_mpi_comm_id takes 2 lines
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)  # its str() names the shifted line
    return f"extract '{name}': {type(exc).__name__}: {text}{hint}{where}\n{tb}"


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
