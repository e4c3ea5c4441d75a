"""The writer side: :class:`TemporalCache`, one per simulation rank.

Life of an entry::

    put() ──► memory tier (LRU, ``memory_budget`` bytes)
                │  an entry that must leave memory and is not on disk yet
                │  triggers a spill: every not-yet-written entry is committed
                ▼
              segment files on disk (immutable, atomic; a commit writes its entries in
                │  segments of consecutive cycles up to SEGMENT_BYTES each)
                │  retention (keep_last / keep_every) and ``disk_budget``
                ▼
              dropped: counted per reason, logged, listed in ``drop_log``

Temporal deltas (``put(..., base_cycle=b)``) form chains back to a whole
entry (a keyframe). Dropping never breaks one: retention keeps every entry a
kept entry needs, the disk budget removes a chain's oldest entries together
with everything that depends on them, and replacing an entry drops the
deltas stored against the old one (reason ``base_replaced``).

``flush()`` commits every entry put so far; once it returns 0 they survive a
crash. A failed write (disk full) keeps the entries in memory, warns, and is
retried at the next spill or flush: the simulation goes on.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from insitu.cache.errors import CacheBudgetError, CacheCorruptError, CacheError
from insitu.cache.index import Index, Key, KeyQueries, SegmentInfo
from insitu.cache.journal import JournalWriter
from insitu.cache.memory import MemEntry, MemoryTier
from insitu.cache.meta import EntryMeta, parse_size
from insitu.cache.replay import ReconstructMixin
from insitu.cache.retention import Retention
from insitu.cache.segment import (TMP_PREFIX, RankLock, atomic_write, build_segment, drops_name, init_cache_dir,
                      read_entry, segment_name)

if TYPE_CHECKING:
    from insitu.cache.replay import CacheReader

log = logging.getLogger("insitu.cache")

DEFAULT_MEMORY_BUDGET = "512MB"
DROP_REASONS = ("keep_last", "keep_every", "disk_budget", "base_replaced")
#: model bytes per segment file a commit aims at: each file costs ~2 KB of HDF5 structure, so small
#: entries share files, but a file is rewritten when some of its entries are dropped: keep that cheap
SEGMENT_BYTES = 256 * 1024
#: once a rank has this many small segments (under SMALL_SEGMENT bytes), they are merged: each file costs
#: ~3 KB of HDF5 structure and index, more than the model bytes of a small block committed every cycle
COMPACT_AFTER = 16
SMALL_SEGMENT = 64 * 1024


class TemporalCache(KeyQueries, ReconstructMixin):
    """A rank's temporal cache of compressed blocks, keyed by (field, cycle, domain_id).

    Parameters
    ----------
    path:
        The cache directory, shared by all ranks (created if missing; an
        existing cache is appended to).
    comm:
        An mpi4py communicator; its rank names this writer's files. None: rank 0.
    memory_budget:
        Bytes of model data kept in memory (int, or "512MB", "2GB", "64KiB").
    disk_budget:
        Bytes of segment files this rank may keep; oldest cycles leave first,
        the newest cycle always stays. None: unlimited.
    retention:
        A :class:`Retention` (or dict ``{"keep_last": N, "keep_every": k}``);
        None keeps every cycle.
    entry_bytes:
        Expected size of one entry (``len(model.to_bytes())``); when given, a
        memory budget smaller than one entry is refused here at construction.
    rank:
        Overrides the rank taken from ``comm`` (tools and tests).

    Writes are not collective: ranks never wait for each other. Use as a
    context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, *, comm: Any = None,
                 memory_budget: int | str = DEFAULT_MEMORY_BUDGET, disk_budget: int | str | None = None,
                 retention: Retention | dict | None = None, entry_bytes: int | None = None,
                 rank: int | None = None) -> None:
        self.path = Path(path)
        self.comm = comm
        self.rank = int(rank if rank is not None else (comm.Get_rank() if comm is not None else 0))
        self.memory_budget = parse_size(memory_budget, "memory_budget")
        if entry_bytes is not None and self.memory_budget < int(entry_bytes):
            raise CacheBudgetError(f"memory_budget={memory_budget!r} ({self.memory_budget} bytes) is smaller than one "
                                   f"entry ({int(entry_bytes)} bytes): give at least {int(entry_bytes)} bytes, "
                                   "better room for many entries")
        self.disk_budget = None if disk_budget is None else parse_size(disk_budget, "disk_budget")
        self.retention = Retention.coerce(retention)
        self._closed = True
        init_cache_dir(self.path)
        self._lock = RankLock(self.path, self.rank)
        self._closed = False
        self._remove_stale_temp_files()
        self._disk = Index.scan(self.path, rank_filter=lambda r: r == self.rank)
        #: per field, the cycles this rank's earlier sessions left (see put: a run that restarts the timeline)
        self._earlier: dict[str, set[int]] = {}
        #: per field, the cycles this session put (a run's own timeline: see written_cycles)
        self._written: dict[str, set[int]] = {}
        for f, c, _ in self._disk:
            self._earlier.setdefault(f, set()).add(c)
        self._seq = 1 + max((s.seq for s in self._disk.segments.values()), default=0)
        # the journal (fast index path) starts over with exactly the live segments
        self._journal = JournalWriter(self.path, self.rank)
        self._journal.rewrite([(s.name, s.size, s.rows) for s in sorted(self._disk.segments.values(),
                                                                       key=lambda s: s.seq)])
        self._journal_dead = 0
        self._mem = MemoryTier(self.memory_budget)
        self._models: OrderedDict[Key, Any] = OrderedDict()  # decoded models (model(), delta chains)
        #: every drop: (field, cycle, domain, reason), oldest first (this session)
        self.drop_log: list[tuple[str, int, int, str]] = []
        self._drops_total = self._load_drop_counts()
        self._drops_dirty = False
        self.segments_written = 0
        self.write_failures = 0
        self._budget_warned = False
        self._behind: threading.Thread | None = None  # a flush_behind() still writing
        self._deferred: list[str] = []  # warnings of that thread, given to the next caller (see _warn)

    # --- construction helpers ---
    def _remove_stale_temp_files(self) -> None:
        """Temp files of this rank left by a killed writer (we hold the lock: they are nobody's)."""
        mine = (f"{TMP_PREFIX}r{self.rank:05d}-", f"{TMP_PREFIX}r{self.rank:05d}.")  # segments; journal, drops
        for p in self.path.iterdir():
            if p.name.startswith(mine):
                try:
                    p.unlink()
                except OSError:
                    pass

    def _load_drop_counts(self) -> dict[str, int]:
        counts = {r: 0 for r in DROP_REASONS}
        try:
            doc = json.loads((self.path / drops_name(self.rank)).read_text())
            for r in DROP_REASONS:
                counts[r] = int(doc.get("dropped", {}).get(r, 0))
        except (OSError, ValueError, AttributeError):
            pass
        return counts

    @classmethod
    def open(cls, path: str | os.PathLike, comm: Any = None) -> "CacheReader":
        """Open a cache read-only for replay, on any number of processes (collective over ``comm``)."""
        from insitu.cache.replay import CacheReader

        return CacheReader(path, comm=comm)

    # --- writing ---
    def put(self, field: str, cycle: int, domain_id: int, model_bytes: bytes, meta: EntryMeta,
            base_cycle: int | None = None) -> None:
        """Cache one block: ``model_bytes`` (opaque, e.g. ``model.to_bytes()``) with its ``meta``.

        ``base_cycle``: the bytes are a temporal delta stored against the entry
        of the same field and domain at that (earlier, cached) cycle
        (``model.to_bytes(base=...)``); :meth:`model` resolves the chain.
        A later put of the same key replaces the entry (and drops the deltas
        stored against the old one). The entry is durable once :meth:`flush`
        has returned 0 (or a spill wrote it).
        """
        self._wait_behind()
        self._check_open()
        key = _check_key(field, cycle, domain_id)
        if not isinstance(meta, EntryMeta):
            raise TypeError(f"meta must be an insitu.cache.EntryMeta, not {type(meta).__name__}")
        data = bytes(model_bytes)
        if not data:
            raise ValueError(f"put({field!r}, {cycle}, {domain_id}): model_bytes is empty")
        base = -1
        if base_cycle is not None:
            if isinstance(base_cycle, bool) or not hasattr(base_cycle, "__index__") or not 0 <= int(base_cycle) < key[1]:
                raise ValueError(f"put({field!r}, {cycle}, {domain_id}): base_cycle={base_cycle!r} must be an earlier "
                                 "cycle")
            base = int(base_cycle)
            if (key[0], base, key[2]) not in self:
                raise self._missing(key[0], base, key[2])
        self._check_restart(key[0], key[1])
        self._written.setdefault(key[0], set()).add(key[1])
        if key in self:
            self._drop(sorted(self._dependents({key}) - {key}), "base_replaced")
        self._mem.put(key, MemEntry(data, meta, base_cycle=base))
        self._models.pop(key, None)
        if len(data) > self.memory_budget:
            warnings.warn(f"insitu cache: entry {key} is {len(data)} bytes, more than the whole memory_budget "
                          f"({self.memory_budget} bytes): it goes straight to disk", RuntimeWarning, stacklevel=2)
        self._apply_retention(field)
        self._enforce_memory()

    def written_cycles(self, field: str) -> set[int]:
        """The cycles of ``field`` this session put (empty before its first put). A run's own timeline is
        these and, before the first of them, what earlier sessions left: its renders and exports show no other
        cycle (see insitu.filters.session.on_timeline)."""
        return set(self._written.get(field, ()))

    def _check_restart(self, field: str, cycle: int) -> None:
        """At this session's first put of ``field``: say so when earlier sessions left cycles of it at or past
        ``cycle`` (a run into a folder that holds another run's). Nothing is dropped: this run replaces them
        as it writes the same keys, and its own renders and look-backs leave out those it has not written;
        replays after it show the earlier run's wherever it wrote fewer. One line, from rank 0."""
        if field in self._written:
            return
        later = sorted(c for c in self._earlier.get(field, ()) if c >= cycle)
        if later and self.rank == 0:
            self._warn(f"insitu cache {self.path}: field {field!r} already holds cycles {later[0]}..{later[-1]} "
                       f"({len(later)} cycles) from an earlier run, at or past this run's first cycle {cycle}: this "
                       "run replaces them as it writes the same cycles, and its renders and look-backs leave out "
                       "the earlier run's; replays after it show them wherever it writes fewer (write each run "
                       "into its own folder to keep them apart)", stacklevel=3)

    def flush(self) -> int:
        """Commit every entry not yet on disk; returns how many are still not on disk (0: all durable)."""
        self._wait_behind()
        self._check_open()
        self._commit(self._mem.dirty())
        self._compact()
        self._save_drop_counts()
        return len(self._mem.dirty())

    def unwritten(self, field: str | None = None) -> int:
        """Entries (of ``field``, or all) still in memory only: not yet flushed, or their write failed."""
        self._wait_behind()
        return sum(1 for k in self._mem.dirty() if field is None or k[0] == field)

    def flush_behind(self) -> None:
        """Start committing every entry not yet on disk on a background thread, and return at once.

        The simulation goes on meanwhile; whatever touches this cache next (a put, a read, a flush, close)
        first waits for that commit to end, so the entries put before this call are on disk (fsync'd)
        before the next ones arrive: a kill then loses at most what was put after it.
        """
        self._wait_behind()
        self._check_open()
        if not self._mem.dirty():
            return
        self._behind = threading.Thread(target=self.flush, name=f"insitu-cache-flush-r{self.rank}")
        self._behind.start()

    def _wait_behind(self) -> None:
        """Let a :meth:`flush_behind` still writing finish (every public method calls this first), then give
        its warnings (a failed write...) to the caller."""
        t = self._behind
        if t is not None and t is not threading.current_thread():
            t.join()
            self._behind = None
            deferred, self._deferred = self._deferred, []
            for message in deferred:
                warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _warn(self, message: str, stacklevel: int = 2) -> None:
        """A RuntimeWarning, or, on the write-behind thread, kept for the next call in the caller's thread:
        a warning raised on a thread meets no ``catch_warnings`` of the filter and prints its source line."""
        if self._behind is not None and threading.current_thread() is self._behind:
            self._deferred.append(message)
        else:
            warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)

    def close(self) -> None:
        """Flush, release the rank's lock. Entries that could not be written are reported lost."""
        self._wait_behind()
        if self._closed:
            return
        try:
            pending = self.flush()
            # what a run leaves: a journal of the live segments only (at a few hundred bytes a model, the lines of
            # segments merged away outweighed the models)
            if self._journal_dead:
                self._journal.rewrite([(sg.name, sg.size, sg.rows)
                                       for sg in sorted(self._disk.segments.values(), key=lambda sg: sg.seq)])
                self._journal_dead = 0
            if pending:
                warnings.warn(f"insitu cache: closing {self.path} with {pending} entries that could not be written "
                              "to disk (disk full?): they are lost", RuntimeWarning, stacklevel=2)
            if self.dropped_total:
                log.info("insitu cache %s rank %d: dropped %s", self.path, self.rank, self.dropped)
        finally:
            self._closed = True
            self._lock.release()

    def __enter__(self) -> "TemporalCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ---
    def get(self, field: str, cycle: int, domain_id: int) -> bytes:
        """The model bytes of an entry, from memory or disk (checksum verified on disk reads)."""
        self._wait_behind()
        self._check_open()
        key = (field, int(cycle), int(domain_id))
        e = self._mem.get(key)
        if e is not None:
            return e.data
        row = self._disk.row(key)
        if row is None:
            raise self._missing(*key)
        return read_entry(self._disk.path(row), row)

    def meta(self, field: str, cycle: int, domain_id: int) -> EntryMeta:
        """The :class:`EntryMeta` of an entry."""
        self._wait_behind()
        key = (field, int(cycle), int(domain_id))
        e = self._mem.get(key, touch=False)
        if e is not None:
            return e.meta
        row = self._disk.row(key)
        if row is None:
            raise self._missing(*key)
        return row.meta

    def base_of(self, field: str, cycle: int, domain_id: int) -> int | None:
        """The cycle an entry's temporal delta was stored against, None for a whole entry."""
        self._wait_behind()
        key = (field, int(cycle), int(domain_id))
        e = self._mem.get(key, touch=False)
        if e is not None:
            return None if e.base_cycle < 0 else e.base_cycle
        row = self._disk.row(key)
        if row is None:
            raise self._missing(*key)
        return None if row.base_cycle < 0 else row.base_cycle

    def location(self, field: str, cycle: int, domain_id: int) -> str:
        """Where an entry is: ``"memory"``, ``"disk"``, ``"memory+disk"``; CacheKeyError if absent."""
        self._wait_behind()
        key = (field, int(cycle), int(domain_id))
        in_mem, on_disk = key in self._mem, key in self._disk
        if not (in_mem or on_disk):
            raise self._missing(*key)
        return "memory+disk" if in_mem and on_disk else ("memory" if in_mem else "disk")

    def __contains__(self, key: object) -> bool:
        self._wait_behind()
        return isinstance(key, tuple) and len(key) == 3 and (key in self._mem or key in self._disk)

    def __len__(self) -> int:
        return len(set(self._all_keys()))

    def _all_keys(self) -> Iterable[Key]:
        self._wait_behind()
        return set(self._mem) | set(self._disk)

    # --- figures ---
    @property
    def dropped(self) -> dict[str, int]:
        """Entries dropped per reason, over the cache's whole life on this rank."""
        return dict(self._drops_total)

    @property
    def dropped_total(self) -> int:
        return sum(self._drops_total.values())

    def stats(self) -> dict[str, Any]:
        """Counters: memory and disk use, pending entries, segments, failures, drops."""
        self._wait_behind()
        return {
            "rank": self.rank,
            "entries": len(self),
            "memory_entries": len(self._mem), "memory_bytes": self._mem.nbytes, "memory_budget": self.memory_budget,
            "disk_entries": len(self._disk), "disk_bytes": self._disk.disk_bytes(), "disk_budget": self.disk_budget,
            "segments": len(self._disk.segments), "segments_written": self.segments_written,
            "pending": len(self._mem.dirty()), "write_failures": self.write_failures,
            "dropped": self.dropped, "dropped_total": self.dropped_total,
        }

    # --- internals: memory and commits ---
    def _check_open(self) -> None:
        if self._closed:
            raise CacheError(f"cache {self.path} (rank {self.rank}) is closed")

    def _enforce_memory(self) -> None:
        victims = self._mem.victims()
        if not victims:
            return
        if any(not self._mem.get(k, touch=False).on_disk for k in victims):
            self._commit(self._mem.dirty())  # one spill writes everything pending, in as few segments as possible
        for k in victims:
            if self._mem.get(k, touch=False).on_disk:
                self._mem.discard(k)

    def _commit(self, keys: list[Key]) -> bool:
        """Write ``keys`` (in memory) as new segments of consecutive cycles; False if a write failed."""
        ordered = sorted(keys, key=lambda k: (k[1], k[0], k[2]))
        chunks: list[list[Key]] = []
        size = SEGMENT_BYTES
        for k in ordered:  # a new file when the current one is full, never splitting a cycle's entries apart
            n = self._mem.get(k, touch=False).nbytes
            if size >= SEGMENT_BYTES and (not chunks or chunks[-1][-1][1] != k[1]):
                chunks.append([])
                size = 0
            chunks[-1].append(k)
            size += n
        ok = True
        for ks in chunks:
            entries = [(k, self._mem.get(k, touch=False)) for k in ks]
            if self._write_segment([(k[0], k[1], k[2], e.data, e.meta, e.base_cycle) for k, e in entries]):
                for _, e in entries:
                    e.on_disk = True
            else:
                ok = False
        if self.disk_budget is not None:
            self._enforce_disk_budget()
        return ok

    def _write_segment(self, entries: list[tuple[str, int, int, bytes, EntryMeta, int]]) -> bool:
        """Build and atomically write one segment; on OSError (disk full...) warn and return False."""
        cycle = min(e[1] for e in entries)
        name = segment_name(self.rank, cycle, self._seq)
        path = self.path / name
        try:
            image, rows = build_segment(self.rank, self._seq, entries)
            atomic_write(path, image)
        except OSError as exc:
            self.write_failures += 1
            self._warn(f"insitu cache: could not write {path} ({exc}); its {len(entries)} entries stay in "
                       "memory and will be retried at the next flush", stacklevel=3)
            return False
        self._journal.append(name, len(image), rows)
        self._seq += 1
        self.segments_written += 1
        self._disk.add_segment(SegmentInfo(name, self.rank, cycle, self._seq - 1, len(image), rows))
        return True

    # --- internals: dropping ---
    def _drop(self, keys: Iterable[Key], reason: str) -> None:
        """Remove ``keys`` from memory and disk, counting each once under ``reason``."""
        keys = [k for k in keys if k in self]
        if not keys:
            return
        for k in keys:
            self._mem.discard(k)
            self._models.pop(k, None)
            self._drops_total[reason] += 1
            self.drop_log.append((k[0], k[1], k[2], reason))
            log.info("insitu cache %s rank %d: dropped %s cycle %d domain %d (%s)", self.path, self.rank,
                     k[0], k[1], k[2], reason)
        self._drops_dirty = True
        gone = set(keys)
        for seg in [s for s in self._disk.segments.values() if any(r.key in gone for r in s.rows)]:
            self._shrink_segment(seg, gone)

    def _shrink_segment(self, seg: SegmentInfo, gone: set[Key]) -> None:
        """Remove a segment's ``gone`` rows: unlink it when nothing else is in it, else rewrite the rest."""
        keep = [r for r in seg.rows if r.key not in gone and self._disk.row(r.key) is r]
        if keep:
            path = self._disk.path(keep[0])
            try:
                entries = [(r.field, r.cycle, r.domain, read_entry(path, r), r.meta, r.base_cycle) for r in keep]
            except CacheCorruptError as exc:
                self._warn(f"insitu cache: cannot rewrite {path} without its dropped entries ({exc}); "
                           "the segment is kept as is", stacklevel=4)
                return
            if not self._write_segment(entries):
                return
        self._remove_segment_file(seg)

    def _compact(self) -> None:
        """Merge this rank's small segments (see COMPACT_AFTER) into files of up to SEGMENT_BYTES.

        The merged file is written (atomically, with a higher seq) before the old ones are removed, so a
        crash in between leaves duplicates, the newest winning (see the format's atomic commits), never a
        lost entry; entries are re-read from disk, so their checksums are verified on the way.
        """
        small = sorted((sg for sg in self._disk.segments.values() if sg.size < SMALL_SEGMENT), key=lambda sg: sg.seq)
        if len(small) < COMPACT_AFTER:
            return
        groups: list[list[SegmentInfo]] = []
        size = SEGMENT_BYTES
        for seg in small:
            if size + seg.size > SEGMENT_BYTES:
                groups.append([])
                size = 0
            groups[-1].append(seg)
            size += seg.size
        for group in (g for g in groups if len(g) > 1):
            rows = [r for seg in group for r in seg.rows if self._disk.row(r.key) is r]
            try:
                entries = [(r.field, r.cycle, r.domain, read_entry(self._disk.path(r), r), r.meta, r.base_cycle)
                           for r in rows]
            except CacheCorruptError as exc:
                self._warn(f"insitu cache: small segments not merged ({exc}); they are kept as they are")
                continue
            if entries and not self._write_segment(entries):
                return
            for seg in group:
                self._remove_segment_file(seg)

    def _remove_segment_file(self, seg: SegmentInfo) -> None:
        """Forget a segment whose live entries are elsewhere now, and unlink its file."""
        self._disk.remove_segment(seg.name)
        self._journal_dead += 1
        if self._journal_dead > max(256, len(self._disk.segments)):  # keep the journal about the live segments
            self._journal.rewrite([(s.name, s.size, s.rows) for s in sorted(self._disk.segments.values(),
                                                                           key=lambda s: s.seq)])
            self._journal_dead = 0
        try:
            os.unlink(self.path / seg.name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._warn(f"insitu cache: could not remove {self.path / seg.name}: {exc}", stacklevel=4)

    # --- internals: delta chains ---
    def _base_key(self, key: Key) -> Key | None:
        b = self.base_of(*key)
        return None if b is None else (key[0], b, key[2])

    def _dependents(self, keys: set[Key]) -> set[Key]:
        """``keys`` and every entry whose delta chain passes through one of them."""
        out = set(keys)
        pending = sorted(k for k in self._all_keys() if k not in out and k[0] in {f for f, _, _ in keys})
        changed = True
        while changed:  # chains are short (keyframe_every): a few passes
            changed = False
            for k in pending:
                if k not in out and self._base_key(k) in out:
                    out.add(k)
                    changed = True
        return out

    def _needed(self, keys: Iterable[Key]) -> set[Key]:
        """``keys`` and every entry their delta chains need."""
        out: set[Key] = set()
        for k in keys:
            while k is not None and k not in out:
                out.add(k)
                k = self._base_key(k) if k in self else None
        return out

    def _apply_retention(self, field: str) -> None:
        if self.retention.keeps_all:
            return
        keys = [k for k in self._all_keys() if k[0] == field]
        dropped = set(self.retention.dropped([k[1] for k in keys]))
        if not dropped:
            return
        last_only = self.retention.keep_every is None
        reason = "keep_last" if last_only else "keep_every"
        needed = self._needed(k for k in keys if k[1] not in dropped)  # a kept delta keeps its chain
        self._drop(sorted(k for k in keys if k[1] in dropped and k not in needed), reason)

    def _enforce_disk_budget(self) -> None:
        assert self.disk_budget is not None
        while self._disk.disk_bytes() > self.disk_budget:
            cycles = sorted({r.cycle for r in self._disk.rows()})
            keys: set[Key] = set()
            if len(cycles) > 1:
                oldest = cycles[0]
                # a chain leaves from its keyframe on, never cut in the middle
                keys = self._dependents({r.key for r in self._disk.rows() if r.cycle == oldest})
            if not keys or any(k[1] == cycles[-1] for k in keys):  # all that is left is the newest cycle's
                if not self._budget_warned:
                    what = "cycle alone" if len(cycles) <= 1 else "cycle's delta chain"
                    hint = "" if len(cycles) <= 1 else " (a smaller keyframe_every shortens chains)"
                    self._warn(f"insitu cache: disk_budget {self.disk_budget} bytes is smaller than the newest "
                                  f"{what} ({self._disk.disk_bytes()} bytes on rank {self.rank}); keeping it{hint}",
                               stacklevel=4)
                    self._budget_warned = True
                return
            self._drop(sorted(keys), "disk_budget")
            if any(r.cycle == oldest for r in self._disk.rows()):
                return  # it could not be removed (see the warning): stop rather than spin

    def _save_drop_counts(self) -> None:
        if not self._drops_dirty:
            return
        doc = {"rank": self.rank, "dropped": self._drops_total}
        try:
            atomic_write(self.path / drops_name(self.rank), (json.dumps(doc) + "\n").encode())
            self._drops_dirty = False
        except OSError as exc:
            self._warn(f"insitu cache: could not record drop counts: {exc}", stacklevel=3)

    # --- replay helpers (ReconstructMixin) ---
    def _share(self, domains: list[int]) -> list[int]:
        return domains  # a writer reconstructs what it holds: its own rank's domains


def _check_key(field: object, cycle: object, domain: object) -> Key:
    if not isinstance(field, str) or not field:
        raise ValueError(f"field={field!r} must be a non-empty string")
    for name, v in (("cycle", cycle), ("domain_id", domain)):
        if isinstance(v, bool) or not hasattr(v, "__index__") or int(v) < 0:  # type: ignore[call-overload]
            raise ValueError(f"{name}={v!r} must be a non-negative integer")
    return (field, int(cycle), int(domain))  # type: ignore[call-overload]
