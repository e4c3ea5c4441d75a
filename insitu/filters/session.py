"""What the filters keep between executes: one :class:`FilterSession` per process.

Ascent runs every Python extract of a process in one interpreter whose module state lives for the
whole run (../shared/ascent_python_extract.md, "State persists"), and so does the embedded runtime:
the writer caches opened by ``af.compress``, the previous cycle's model of each block (warm starts,
temporal deltas), the delta chains, and the fitting time spent so far live here, in one explicit
object, instead of in module globals. :func:`current` is the process's session; a simulation sets
its per-cycle fitting budget on it (``current().cycle_budget_s = 2.0``), and ``af.compress`` uses it
where its own ``cycle_budget_s`` is not given.
"""
from __future__ import annotations

import atexit
import os
import re
from dataclasses import dataclass, field
from typing import Any

import inr

#: (absolute cache path, field, domain): one block's history in one cache
BlockKey = tuple[str, str, int]


class Repeats:
    """Messages counted by their text with numbers masked (a cycle, a domain, a value does not make a message
    new), so that one that comes back every cycle is printed once, then counted."""

    def __init__(self, counted_in: str = "") -> None:
        self.seen: dict[str, int] = {}
        self.counted_in = counted_in  # where the repeats are counted, for the line that says so

    def count(self, message: str) -> int:
        """How often ``message`` has come so far, this time included."""
        key = re.sub(r"\d+(\.\d+)?", "#", message)
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key]

    def line(self, message: str) -> str | None:
        """What to print for ``message`` now: all of it the first time, one line saying it repeats the 2nd, 10th,
        100th... time, else nothing (it is counted where the run reports its errors)."""
        n = self.count(message)
        if n == 1:
            return message
        if n in (2, 10, 100, 1000, 10000):
            return (f"{message.splitlines()[0]} (the same error {n} times so far; repeats are counted"
                    f"{self.counted_in}, not printed)")
        return None

    def clear(self) -> None:
        self.seen.clear()


@dataclass
class FilterSession:
    """The filters' state of one process (see the module docstring)."""

    #: seconds of fitting per cycle and rank at most, for every ``af.compress`` that does not give its own
    cycle_budget_s: float | None = None
    caches: dict[tuple[str, int], Any] = field(default_factory=dict)  # (abs path, rank) -> TemporalCache
    previous: dict[BlockKey, inr.Model] = field(default_factory=dict)  # the last model of each block
    #: the delta chain of each block: (cycle of its newest entry, entries in the chain so far)
    chains: dict[BlockKey, tuple[int, int]] = field(default_factory=dict)
    #: searches for a network in a row that found none, per block coded without one (they come back less often)
    misses: dict[BlockKey, int] = field(default_factory=dict)
    #: the cycle each block far under its neighbours was last fitted again with a larger model
    raised: dict[BlockKey, int] = field(default_factory=dict)
    noted: set[str] = field(default_factory=set)  # fields already noted (one note per run)
    fit_seconds: float = 0.0  # every fit of this process, for in situ overhead accounting
    calls: int = 0  # filter calls (af.compress, af.render, af.export) of this process
    #: problems the filters reported (``action: message``, first line), until a simulation takes them
    problems: list[str] = field(default_factory=list)

    messages: Repeats = field(default_factory=lambda: Repeats(" in the run summary"))  # what the filters printed

    def take_problems(self) -> list[str]:
        """The problems reported since the last call (a simulation counts them per cycle)."""
        out, self.problems = self.problems, []
        return out

    def open_cache(self, path: str, comm: Any, *, memory_budget: Any = "2GB", disk_budget: Any = None,
                   keep_last: int | None = None, keep_every: int | None = None) -> Any:
        """The writer cache of this rank for ``path``, opened once and kept for the run (the options count only
        at the first opening)."""
        from insitu.cache import Retention, TemporalCache

        key = (os.path.abspath(path), comm.Get_rank() if comm is not None else 0)
        cache = self.caches.get(key)
        if cache is None:
            retention = None
            if keep_last is not None or keep_every is not None:
                retention = Retention(keep_last=keep_last, keep_every=keep_every)
            # absolute: the run may change directory before the cache is flushed at exit
            cache = TemporalCache(os.path.abspath(path), comm=comm, memory_budget=memory_budget,
                                  disk_budget=disk_budget, retention=retention)
            self.caches[key] = cache
        return cache

    def flush_all(self) -> None:
        """Write every cache's in-memory entries to disk (also run at interpreter exit)."""
        for cache in list(self.caches.values()):
            try:
                cache.flush()
            except Exception:  # reported by the cache itself; exit must go on
                pass

    def unwritten(self, path: str, field: str) -> int:
        """Entries of ``field`` in this process's caches at ``path`` still in memory only (their write failed)."""
        where = os.path.abspath(path)
        return sum(cache.unwritten(field) for (p, _), cache in self.caches.items() if p == where)

    def own_cycles(self, path: str, field: str, comm: Any = None) -> set[int]:
        """The cycles of ``field`` this run put into the cache at ``path`` (see :func:`on_timeline`). Collective
        when ``comm`` is given: the union of every rank's puts, so that every rank keeps the same cycles."""
        where = os.path.abspath(path)
        mine: set[int] = set()
        for (p, _), cache in self.caches.items():
            if p == where:
                mine |= cache.written_cycles(field)
        return set().union(*comm.allgather(mine)) if comm is not None else mine

    def close_all(self) -> None:
        """Flush and close every cache; warm starts and delta chains start over after this."""
        for key, cache in list(self.caches.items()):
            try:
                cache.close()
            finally:
                self.caches.pop(key, None)
        self.previous.clear()
        self.chains.clear()
        self.misses.clear()
        self.raised.clear()


_SESSION = FilterSession()


def on_timeline(cycles: list[int], own: set[int]) -> list[int]:
    """``cycles`` of a field in a cache less those of an earlier run into the same folder: once this run has put
    the field (``own``: :meth:`FilterSession.own_cycles`), a cycle at or past its first put that it has not
    written is another timeline's (a rerun, a restart from an earlier checkpoint), which its renders, look-backs
    and exports must not show. A run that put none of it (a render of an older cache) shows every cycle."""
    if not own:
        return list(cycles)
    first = min(own)
    return [c for c in cycles if c < first or c in own]


def current() -> FilterSession:
    """The filters' session of this process."""
    return _SESSION


# h5py registers its own exit handler when first imported; handlers run last-in first-out, so
# import it before registering ours: the caches must be flushed while h5py still works.
import h5py  # noqa: E402,F401



def _close_at_exit() -> None:
    """Flush and close every cache at interpreter exit; what goes wrong is one line each, not a warning with
    its source line (the run is ending: nothing else will report it)."""
    import sys
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _SESSION.close_all()
        except Exception as exc:  # noqa: BLE001 - exit goes on; the user is told once
            print(f"[insitu-inr] closing the caches at exit failed: {exc}", file=sys.stderr, flush=True)
    for w in dict.fromkeys(str(w.message) for w in caught):
        print(f"[insitu-inr] {w}", file=sys.stderr, flush=True)


atexit.register(_close_at_exit)
