"""Data access for the viewer: the cache's contents, per-cycle figures, decoded grids with prefetch.

:class:`CacheView` wraps a read-only :class:`insitu.cache.CacheReader`:

* :meth:`CacheView.refresh` looks at the directory listing (names and sizes of
  the segment files: one ``scandir``) and reopens the reader only when a segment
  was committed or removed, so cycles a running simulation commits later appear
  (reopening lists the directory and reads small indexes: ~0.1 s for 10k entries);
* :meth:`CacheView.grid` decodes one cycle's global grid on demand, through a
  bounded LRU of decoded grids; :meth:`CacheView.prefetch` queues the next
  cycles on a background thread so scrubbing forward hits the LRU;
* a corrupt entry makes its cycle *unavailable* (:class:`CycleUnavailable`,
  with the reason) without touching the other cycles.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from insitu.cache import CacheError, CacheReader, GridGeometry
from insitu.cache.summary import Capacity, capacity

Key = tuple[str, int]


class CycleUnavailable(Exception):
    """A cycle that cannot be shown (corrupt entry, vanished file, bad model); the message says why."""


@dataclass(frozen=True)
class CycleInfo:
    """What the viewer shows about one cycle of one field, from the index alone (no decoding)."""

    field: str
    cycle: int
    time: float | None
    domains: int
    raw_bytes: int
    stored_bytes: int
    psnr: float | None  # worst domain's PSNR (inf: every block exact; None: unknown)
    max_error: float | None  # largest max-abs error over the domains
    value_range: tuple[float, float]
    writer_ranks: tuple[int, ...] = field(default=())

    @property
    def ratio(self) -> float | None:
        """Compression ratio of the cycle: float32 bytes / stored model bytes."""
        return self.raw_bytes / self.stored_bytes if self.stored_bytes else None


@dataclass
class Decoded:
    """A decoded global grid and where it sits in the world."""

    values: np.ndarray  # float32 (z, y, x), NaN where no block covers
    geometry: GridGeometry
    value_range: tuple[float, float]  # finite min/max of ``values``


def _cycle_info(reader: CacheReader, field_name: str, cycle: int) -> CycleInfo:
    rows = [reader.index.row((field_name, cycle, d)) for d in reader.domains(field_name, cycle)]
    rows = [r for r in rows if r is not None]
    metas = [r.meta for r in rows]
    psnrs = [m.psnr for m in metas]
    psnr = None if any(p is None for p in psnrs) or not psnrs else min(psnrs)
    errors = [m.fit.get("max_abs_error") for m in metas]
    max_error = None if any(e is None for e in errors) or not errors else max(float(e) for e in errors)
    times = [m.time for m in metas if m.time is not None]
    return CycleInfo(field=field_name, cycle=cycle, time=times[0] if times else None, domains=len(rows),
                     raw_bytes=sum(m.raw_bytes for m in metas), stored_bytes=sum(r.nbytes for r in rows),
                     psnr=psnr, max_error=max_error,
                     value_range=(min(m.value_range[0] for m in metas), max(m.value_range[1] for m in metas)),
                     writer_ranks=tuple(sorted({reader.index.segments[r.segment].rank for r in rows
                                                if r.segment in reader.index.segments})))


class CacheView:
    """The viewer's read-only window on a cache directory (thread-safe).

    ``max_grids`` bounds the LRU of decoded grids (by count) and
    ``max_bytes`` by size; ``prefetch_ahead`` is how many following cycles
    :meth:`prefetch` queues.
    """

    def __init__(self, path: str | os.PathLike, *, max_grids: int = 16, max_bytes: int = 1 << 30,
                 prefetch_ahead: int = 3, backend: str = "auto") -> None:
        self.path = os.fspath(path)
        self.max_grids = int(max_grids)
        self.max_bytes = int(max_bytes)
        self.prefetch_ahead = int(prefetch_ahead)
        self.backend = backend
        # One lock serializes every use of the reader: its open-file LRU and h5py handles are not
        # meant for concurrent use, and a swap on refresh must not close a file under a decode.
        self._io = threading.Lock()
        self._lock = threading.Lock()  # guards the dicts below (never held while decoding)
        self._listing = self._segments_listing()  # before opening: a commit in between is seen by the next refresh
        self._reader = CacheReader(self.path)
        self._grids: "OrderedDict[Key, Decoded]" = OrderedDict()
        self._errors: dict[Key, str] = {}
        self._inflight: dict[Key, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="insitu-view-decode")
        self._infos: dict[str, list[CycleInfo]] = {}
        self._signature: Any = None
        self._capacity = Capacity(0, 0)
        self._build_infos()
        self.decode_count = 0  # grids decoded so far (tests and the benchmark read it)

    # --- the index ---
    def _build_infos(self) -> None:
        r = self._reader
        self._infos = {f: [_cycle_info(r, f, c) for c in r.cycles(f)] for f in r.fields()}
        self._signature = (frozenset(r.index.segments), tuple(r.index.bad_segments))
        self._capacity = capacity(r)

    def _segments_listing(self) -> frozenset[tuple[str, int]]:
        """(name, size) of the committed segment files: what changes when a writer commits, retention drops or a
        segment is rewritten (a write in progress has a ``.tmp-`` name and does not count yet)."""
        try:
            with os.scandir(self.path) as it:
                return frozenset((e.name, e.stat().st_size) for e in it
                                 if e.name.endswith(".h5") and not e.name.startswith("."))
        except OSError:
            return frozenset()

    def refresh(self) -> bool:
        """Pick up cycles committed since (True when anything changed): one directory listing, and the cache is
        reopened only when its segment files changed.

        Errors while reopening (e.g. a writer's rename in flight) keep the
        previous view and are reported by returning False.
        """
        listing = self._segments_listing()
        if listing == self._listing:
            return False
        try:
            fresh = CacheReader(self.path)
        except (CacheError, OSError):
            return False
        self._listing = listing
        sig = (frozenset(fresh.index.segments), tuple(fresh.index.bad_segments))
        if sig == self._signature:
            fresh.close()
            return False
        with self._io:
            old, self._reader = self._reader, fresh
            self._build_infos()
            old.close()
        with self._lock:
            # a rewritten segment may change an entry: forget errors, keep grids of unchanged cycles only
            self._errors.clear()
            stale = [k for k in self._grids if k[1] not in {i.cycle for i in self._infos.get(k[0], [])}]
            for k in stale:
                del self._grids[k]
        return True

    def capacity(self) -> Capacity:
        """The cache's capacity (:func:`insitu.cache.summary.capacity`, as of the last refresh)."""
        return self._capacity

    def fields(self) -> list[str]:
        """Fields with at least one cycle, sorted."""
        return sorted(self._infos)

    def cycles(self, field_name: str) -> list[int]:
        """Cycles of ``field_name``, ascending."""
        return [i.cycle for i in self._infos.get(field_name, [])]

    def infos(self, field_name: str) -> list[CycleInfo]:
        """Per-cycle figures of ``field_name`` (ascending cycles)."""
        return list(self._infos.get(field_name, []))

    def info(self, field_name: str, cycle: int) -> CycleInfo:
        for i in self._infos.get(field_name, []):
            if i.cycle == cycle:
                return i
        raise KeyError(f"field {field_name!r} has no cycle {cycle}: cycles are {self.cycles(field_name)}")

    def field_range(self, field_name: str) -> tuple[float, float]:
        """Value range of ``field_name`` over all its cycles (so colours mean the same in every cycle)."""
        infos = self._infos.get(field_name, [])
        if not infos:
            return (0.0, 1.0)
        lo = min(i.value_range[0] for i in infos)
        hi = max(i.value_range[1] for i in infos)
        return (lo, hi) if hi > lo else (lo, lo + 1.0)

    @property
    def bad_segments(self) -> list[tuple[str, str]]:
        return self._reader.bad_segments

    def error(self, field_name: str, cycle: int) -> str | None:
        """Why the cycle is unavailable, if decoding it already failed."""
        with self._lock:
            return self._errors.get((field_name, int(cycle)))

    # --- decoded grids ---
    def _decode(self, key: Key) -> Decoded:
        field_name, cycle = key
        try:
            with self._io:
                reader = self._reader
                values = reader.reconstruct(field_name, cycle, blocks=False, backend=self.backend)
                geo = reader.geometry(field_name, cycle)
        except Exception as exc:  # noqa: BLE001 - any failure makes this cycle unavailable, never the viewer
            reason = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._errors[key] = reason
                self._inflight.pop(key, None)
            raise CycleUnavailable(reason) from None
        assert values is not None
        finite = values[np.isfinite(values)]
        vr = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        out = Decoded(values, geo, vr)
        with self._lock:
            self.decode_count += 1
            self._grids[key] = out
            self._grids.move_to_end(key)
            self._inflight.pop(key, None)
            self._trim()
        return out

    def _trim(self) -> None:
        total = sum(g.values.nbytes for g in self._grids.values())
        while self._grids and (len(self._grids) > self.max_grids or total > self.max_bytes):
            if len(self._grids) == 1:
                break  # always keep the newest, even when it alone is over the byte budget
            _, g = self._grids.popitem(last=False)
            total -= g.values.nbytes

    def cached(self, field_name: str, cycle: int) -> bool:
        """Whether the cycle's grid is decoded already (a cycle change to it costs no decoding)."""
        with self._lock:
            return (field_name, int(cycle)) in self._grids

    def grid(self, field_name: str, cycle: int, timeout: float | None = None) -> Decoded:
        """The decoded global grid of ``field_name`` at ``cycle``; CycleUnavailable with the reason otherwise."""
        key = (field_name, int(cycle))
        while True:
            with self._lock:
                if key in self._grids:
                    self._grids.move_to_end(key)
                    return self._grids[key]
                if key in self._errors:
                    raise CycleUnavailable(self._errors[key])
                fut = self._inflight.get(key)
                if fut is None:
                    # the user waits for this one: drop queued prefetches (not started) so it goes first
                    for k, f in list(self._inflight.items()):
                        if f.cancel():
                            del self._inflight[k]
                    fut = self._pool.submit(self._decode_quiet, key)
                    self._inflight[key] = fut
            try:
                out = fut.result(timeout=timeout)
            except CancelledError:
                continue  # another request cancelled the queued prefetch we waited on: queue it again
            if out is not None:
                return out
            with self._lock:
                raise CycleUnavailable(self._errors.get(key, "decoding failed"))

    def prefetch(self, field_name: str, cycle: int, direction: int = 1) -> list[int]:
        """Queue the ``prefetch_ahead`` cycles after ``cycle`` (before it when ``direction < 0``); returns them."""
        cycles = self.cycles(field_name)
        if int(cycle) not in cycles:
            return []
        i = cycles.index(int(cycle))
        step = -1 if direction < 0 else 1
        ahead = [cycles[j] for j in range(i + step, i + step * (self.prefetch_ahead + 1), step) if 0 <= j < len(cycles)]
        queued = []
        with self._lock:
            for c in ahead:
                key = (field_name, c)
                if key in self._grids or key in self._errors or key in self._inflight:
                    continue
                self._inflight[key] = self._pool.submit(self._decode_quiet, key)
                queued.append(c)
        return queued

    def _decode_quiet(self, key: Key) -> Decoded | None:
        try:
            return self._decode(key)
        except CycleUnavailable:
            return None  # the reason is in _errors; shown when the user reaches that cycle

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until queued decodes are done (tests and the benchmark)."""
        with self._lock:
            futs = list(self._inflight.values())
        for f in futs:
            if not f.cancelled():
                f.exception(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._io:
            self._reader.close()


def format_info(info: CycleInfo) -> dict[str, str]:
    """The cycle's figures as display strings (the metadata panel)."""
    from insitu.cache.meta import human_bytes

    def psnr(v: float | None) -> str:
        return "n/a" if v is None else ("exact" if math.isinf(v) else f"{v:.2f} dB")

    return {
        "cycle": str(info.cycle),
        "time": "n/a" if info.time is None else f"{info.time:.6g}",
        "domains": f"{info.domains} (written by {len(info.writer_ranks)} rank{'s' if len(info.writer_ranks) != 1 else ''})",
        "stored": f"{human_bytes(info.stored_bytes)} of {human_bytes(info.raw_bytes)} raw",
        "ratio": "n/a" if info.ratio is None else f"{info.ratio:.1f}x",
        "psnr (worst domain)": psnr(info.psnr),
        "max error": "n/a" if info.max_error is None else f"{info.max_error:.4g}",
        "value range": f"{info.value_range[0]:.4g} .. {info.value_range[1]:.4g}",
    }


def series(infos: Sequence[CycleInfo]) -> tuple[list[int], list[float], list[float]]:
    """(cycles, PSNR, ratio) for the quality plot; NaN where unknown, exact PSNRs left out (NaN)."""
    cyc = [i.cycle for i in infos]
    ps = [float("nan") if i.psnr is None or math.isinf(i.psnr) else float(i.psnr) for i in infos]
    ra = [float("nan") if i.ratio is None else float(i.ratio) for i in infos]
    return cyc, ps, ra
