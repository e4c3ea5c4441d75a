"""What a filter called from a Python extract needs: the data, the communicator, safe execution.

Ascent runs an extract's source in ``__main__`` with ``ascent_data()`` and
``ascent_mpi_comm_id()`` defined there (and ``ascent_data`` in module
``ascent_extract``); the embedded runtime does the same in its own namespace.
:func:`find_env` looks in the caller's frames first (that covers both), then
``__main__``, then ``ascent_extract``.

:func:`run_filter` is how every entry point runs: it catches every exception
(one escaping a Python extract breaks all later extracts of the process in
Ascent), reports rank, action, field and cause on stderr, and always reaches
one final ``gather`` so rank 0 can print a summary; no collective is ever
skipped by one rank and awaited by the others.
"""
from __future__ import annotations

import inspect
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from insitu.cache.errors import CacheError
from insitu.filters.params import FilterParamError
from insitu.filters.session import current

PREFIX = "[insitu-inr]"


@dataclass
class ExtractEnv:
    """The published data of this rank and the communicator of the run (None when serial)."""

    data: Any
    comm: Any

    @property
    def rank(self) -> int:
        return self.comm.Get_rank() if self.comm is not None else 0

    @property
    def size(self) -> int:
        return self.comm.Get_size() if self.comm is not None else 1


def _lookup(name: str) -> Any:
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if name in frame.f_globals:
                return frame.f_globals[name]
            frame = frame.f_back
    finally:
        del frame
    main = sys.modules.get("__main__")
    if main is not None and hasattr(main, name):
        return getattr(main, name)
    mod = sys.modules.get("ascent_extract")
    if mod is not None and hasattr(mod, name):
        return getattr(mod, name)
    return None


def find_env() -> ExtractEnv:
    """Locate ``ascent_data()`` and the communicator; raises RuntimeError outside an extract."""
    data_fn = _lookup("ascent_data")
    if data_fn is None:
        raise RuntimeError("ascent_data() not found: call this filter from an Ascent Python extract "
                           "(or the embedded runtime)")
    comm_fn = _lookup("ascent_mpi_comm_id")
    comm = None
    if comm_fn is not None:
        from mpi4py import MPI

        comm = MPI.Comm.f2py(int(comm_fn()))
    return ExtractEnv(data_fn(), comm)


@dataclass
class FilterResult:
    """What one rank did in a filter: figures for the summary and the problems met."""

    action: str
    stats: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, msg: str) -> None:
        self.errors.append(msg)


def run_filter(action: str, work: Callable[[ExtractEnv, FilterResult], None],
               summarise: Callable[[list[FilterResult]], str] | None = None) -> FilterResult | None:
    """Run ``work(env, result)`` safely on every rank; rank 0 prints the summary.

    Returns this rank's :class:`FilterResult` (None when not inside an extract).
    Never raises.
    """
    try:
        env = find_env()
    except Exception as exc:
        print(f"{PREFIX} {action}: {exc}", file=sys.stderr, flush=True)
        return None
    result = FilterResult(action)
    with warnings.catch_warnings(record=True) as caught:  # a warning is a note of one line, not source excerpts
        warnings.simplefilter("always")
        try:
            work(env, result)
        except Exception as exc:  # everything is reported, nothing escapes into Ascent
            detail = "" if isinstance(exc, (FilterParamError, ValueError, KeyError, CacheError, OSError)) else \
                "\n" + "".join(traceback.format_exception(exc, limit=4))
            result.error(f"{type(exc).__name__}: {exc}{detail}")
    result.notes += [str(w.message) for w in caught]
    session = current()
    session.calls += 1
    session.problems += [f"{action}: {msg.splitlines()[0]}" for msg in result.errors]
    # a message that comes back every cycle is printed the first time, then counted
    result.notes = [n for n in dict.fromkeys(result.notes) if session.messages.count(f"{action}: {n}") == 1]
    for msg in result.errors:
        line = session.messages.line(f"{action}: {msg}")
        if line is not None:
            print(f"{PREFIX} rank {env.rank}: {line}", file=sys.stderr, flush=True)
    try:
        everyone = env.comm.gather(result, root=0) if env.comm is not None and env.size > 1 else [result]
        if env.rank == 0 and summarise is not None:
            print(f"{PREFIX} {summarise(everyone)}", flush=True)
    except Exception as exc:
        print(f"{PREFIX} rank {env.rank}: {action}: summary failed: {exc}", file=sys.stderr, flush=True)
    return result
