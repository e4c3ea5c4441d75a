"""The reader side: replay a cache on any number of processes, and put blocks back together.

``CacheReader`` (what :meth:`TemporalCache.open` returns) rebuilds the index
from the directory alone: rank 0 lists the segment files and reads their small
index datasets, then broadcasts the index. The domains of a cycle are shared
out round-robin over the reader's ranks (:meth:`my_domains`); one process
reads everything.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import h5py
import numpy as np

from insitu.cache.errors import CacheCorruptError, CacheError, CacheReadOnlyError
from insitu.cache.index import Index, Key, KeyQueries
from insitu.cache.meta import EntryMeta, check_grid_size
from insitu.cache.segment import check_cache_dir, read_entry


@dataclass
class DecodedBlock:
    """One decoded block: ``values`` (float32, z, y, x) is the owned grid placed at ``meta.start``."""

    domain: int
    meta: EntryMeta
    values: np.ndarray

    @property
    def start(self) -> tuple[int, int, int]:
        return self.meta.start

    @property
    def dims(self) -> tuple[int, int, int]:
        return self.meta.dims


@dataclass(frozen=True)
class GridGeometry:
    """Where the reconstructed global grid sits: index box and world placement (all z, y, x)."""

    start: tuple[int, int, int]
    dims: tuple[int, int, int]
    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    association: str


def geometry(metas: Sequence[EntryMeta]) -> GridGeometry:
    """The bounding box of blocks' extents, and the world origin of its first sample."""
    if not metas:
        raise ValueError("no blocks: nothing to place")
    lo = tuple(min(m.start[a] for m in metas) for a in range(3))
    hi = tuple(max(m.stop[a] for m in metas) for a in range(3))
    ref = min(metas, key=lambda m: m.start)
    origin = tuple(o - (s - l) * h for o, s, l, h in zip(ref.origin, ref.start, lo, ref.spacing))
    return GridGeometry(lo, tuple(b - a for a, b in zip(lo, hi)), origin, ref.spacing,  # type: ignore[arg-type]
                        ref.association)


def assemble(blocks: Sequence[DecodedBlock], fill: float = np.nan) -> np.ndarray:
    """The blocks placed by their extents in one float32 array covering their bounding box.

    Element ``[0, 0, 0]`` is global index ``geometry(...).start`` (0 for a
    whole grid); samples no block covers hold ``fill``.
    """
    geo = geometry([b.meta for b in blocks])
    check_grid_size(geo.dims, "the blocks' bounding box")
    out = np.full(geo.dims, fill, dtype=np.float32)
    for b in blocks:
        sl = tuple(slice(s - l, s - l + n) for s, l, n in zip(b.meta.start, geo.start, b.meta.dims))
        out[sl] = b.values
    return out


def check_decodable(model: Any, meta: EntryMeta, where: str) -> None:
    """Refuse (one line) an entry whose index dims or model grid, both data read from the cache, this machine
    cannot hold: checked before anything is decoded."""
    check_grid_size(meta.dims, where)
    check_grid_size(model.grid_shape, f"{where}: its model")


def decode_entry(model: Any, meta: EntryMeta, where: str, backend: str = "auto") -> np.ndarray:
    """``model.decode()`` (an ``inr.Model``, see :meth:`ReconstructMixin.model`), checked against the meta's dims."""
    check_decodable(model, meta, where)
    values = model.decode(backend=backend)
    if tuple(values.shape) != tuple(meta.dims):
        raise CacheError(f"{where}: the model decodes to shape {values.shape} but the entry's dims are {meta.dims}")
    return values


#: decoded models kept for delta chains (a sequential replay decodes each delta once)
MODEL_MEMO = 64


class ReconstructMixin:
    """``model()`` / ``blocks()`` / ``reconstruct()`` over anything with ``domains``, ``get``, ``meta``,
    ``base_of``, ``_share``, ``comm``."""

    comm: Any
    _models: "OrderedDict[Key, Any]"
    path: Path

    def _share(self, domains: list[int]) -> list[int]:  # pragma: no cover - overridden
        raise NotImplementedError

    def model(self, field: str, cycle: int, domain_id: int) -> Any:
        """The entry as an ``inr.Model``, resolving a temporal delta's chain back to its keyframe.

        A broken chain (a base missing, or not the one the delta was stored
        against) raises CacheCorruptError naming the entry.
        """
        import inr

        key = (field, int(cycle), int(domain_id))
        chain = []  # walk back to a whole entry or one already decoded
        k: Key | None = key
        while k is not None and k not in self._models:
            chain.append(k)
            if len(chain) > 100_000:
                raise CacheCorruptError(f"field {field!r} cycle {cycle} domain {domain_id}: delta chain loops",
                                        file=str(self.path), field=field, cycle=key[1], domain=key[2])
            b = self.base_of(*k)  # type: ignore[attr-defined]
            if b is not None and (k[0], b, k[2]) not in self:  # type: ignore[operator]
                raise CacheCorruptError(f"broken delta chain: field {field!r} cycle {k[1]} domain {k[2]} needs its "
                                        f"base, cycle {b}, which is not in the cache", file=str(self.path),
                                        field=field, cycle=k[1], domain=k[2])
            k = None if b is None else (k[0], b, k[2])
        model = None if k is None else self._models[k]
        for k in reversed(chain):
            try:
                try:
                    model = inr.Model.from_bytes(self.get(*k), base=model)  # type: ignore[attr-defined]
                except inr.ModelFormatError as exc:
                    raise CacheCorruptError(f"field {k[0]!r} cycle {k[1]} domain {k[2]}: {exc}",
                                            file=str(self.path), field=k[0], cycle=k[1], domain=k[2]) from exc
            except CacheCorruptError as exc:
                if k == key:
                    raise
                # the damage is in an older entry this one is a temporal delta of: say so, naming both
                raise CacheCorruptError(f"field {field!r} cycle {cycle} domain {domain_id} is a temporal delta whose "
                                        f"base, cycle {k[1]}, is damaged: {exc}", file=str(self.path), field=field,
                                        cycle=key[1], domain=key[2]) from exc
            self._models[k] = model
            while len(self._models) > MODEL_MEMO:
                self._models.popitem(last=False)
        self._models.move_to_end(key)
        return model

    def _size(self) -> int:
        return 1 if self.comm is None else self.comm.Get_size()

    def blocks(self, field: str, cycle: int, *, backend: str = "auto",
               progress: Callable[[Iterable[int]], Iterable[int]] | None = None) -> list[DecodedBlock]:
        """This process's blocks of ``field`` at ``cycle``, decoded (``progress`` wraps the loop, e.g. tqdm)."""
        mine = self._share(self.domains(field, cycle))  # type: ignore[attr-defined]
        out = []
        for d in (progress(mine) if progress else mine):
            model, meta = self.model(field, cycle, d), self.meta(field, cycle, d)  # type: ignore[attr-defined]
            out.append(DecodedBlock(d, meta, decode_entry(model, meta, f"field {field!r} cycle {cycle} domain {d}", backend)))
        return out

    def reconstruct(self, field: str, cycle: int, *, blocks: bool | None = None, backend: str = "auto",
                    root: int = 0, progress: Callable[[Iterable[int]], Iterable[int]] | None = None
                    ) -> np.ndarray | list[DecodedBlock] | None:
        """Decode ``field`` at ``cycle``.

        * ``blocks=None`` (default): the global owned grid (numpy float32,
          z, y, x) when running on one process; this rank's blocks (a list of
          :class:`DecodedBlock` with their extents) on several.
        * ``blocks=True``: this rank's blocks, always.
        * ``blocks=False``: the global grid, gathered on ``root`` (other ranks get None).
        """
        mine = self.blocks(field, cycle, backend=backend, progress=progress)
        size = self._size()
        if blocks or (blocks is None and size > 1):
            return mine
        if size == 1:
            return assemble(mine)
        gathered = self.comm.gather(mine, root=root)
        if self.comm.Get_rank() != root:
            return None
        return assemble([b for part in gathered for b in part])

    def geometry(self, field: str, cycle: int) -> GridGeometry:
        """Index box and world placement of the global grid of ``field`` at ``cycle``."""
        return geometry([self.meta(field, cycle, d) for d in self.domains(field, cycle)])  # type: ignore[attr-defined]


class CacheReader(KeyQueries, ReconstructMixin):
    """A read-only view of a whole cache (all ranks' files), for replay on any process count.

    Opening is collective over ``comm`` (rank 0 scans, everyone gets the index).
    Errors: CacheNotFoundError (no directory), CacheFormatError (not a cache,
    wrong format_version). Unreadable segments are listed in ``bad_segments``
    and skipped; every other entry stays readable.
    """

    def __init__(self, path: str | os.PathLike, comm: Any = None, max_open_files: int = 32) -> None:
        self.path = Path(path)
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self._index = _collective(comm, lambda: _scan(self.path))
        self._files: "OrderedDict[str, h5py.File]" = OrderedDict()
        self._max_open = int(max_open_files)
        self._models = OrderedDict()

    # --- queries ---
    @property
    def index(self) -> Index:
        return self._index

    @property
    def bad_segments(self) -> list[tuple[str, str]]:
        """Segment files that could not be read: (file, message)."""
        return list(self._index.bad_segments)

    def _all_keys(self) -> Iterable[Key]:
        return self._index

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[Key]:
        return iter(sorted(self._index))

    def _share(self, domains: list[int]) -> list[int]:
        size = self._size()
        return domains[self.rank::size] if size > 1 else list(domains)

    def my_domains(self, field: str, cycle: int) -> list[int]:
        """The domains of ``field`` at ``cycle`` this process reads (round-robin over the comm)."""
        return self._share(self.domains(field, cycle))

    def meta(self, field: str, cycle: int, domain_id: int) -> EntryMeta:
        row = self._index.row((field, int(cycle), int(domain_id)))
        if row is None:
            raise self._missing(field, int(cycle), int(domain_id))
        return row.meta

    def base_of(self, field: str, cycle: int, domain_id: int) -> int | None:
        """The cycle an entry's temporal delta was stored against, None for a whole entry."""
        row = self._index.row((field, int(cycle), int(domain_id)))
        if row is None:
            raise self._missing(field, int(cycle), int(domain_id))
        return None if row.base_cycle < 0 else row.base_cycle

    def get(self, field: str, cycle: int, domain_id: int) -> bytes:
        """The model bytes of an entry, checksum verified (CacheCorruptError naming file/field/cycle/domain)."""
        key = (field, int(cycle), int(domain_id))
        row = self._index.row(key)
        if row is not None and not self._index.path(row).exists():
            # a live writer merged or rewrote that segment after we scanned: its entries are in a newer file
            self._index = _scan(self.path)
            row = self._index.row(key)
        if row is None:
            raise self._missing(*key)
        return read_entry(self._index.path(row), row, self._handle(row.segment))

    def put(self, *args: Any, **kwargs: Any) -> None:
        raise CacheReadOnlyError(f"cache {self.path} is open read-only (TemporalCache.open): "
                                 "write through TemporalCache(path, ...)")

    def _handle(self, name: str) -> h5py.File | None:
        f = self._files.get(name)
        if f is not None:
            self._files.move_to_end(name)
            return f
        try:
            f = h5py.File(self.path / name, "r", locking=False)
        except OSError:
            return None  # read_entry opens it again and reports the error with the entry's name
        self._files[name] = f
        while len(self._files) > self._max_open:
            self._files.popitem(last=False)[1].close()
        return f

    # --- whole-cache operations ---
    def verify(self, progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None) -> list[CacheCorruptError]:
        """Read every entry and check its checksum, and every temporal delta's chain (each base
        present, earlier, and the very model the delta was stored against); the problems found
        (empty: all good). Unreadable segment files count as problems too.
        """
        problems = [CacheCorruptError(msg, file=f) for f, msg in self._index.bad_segments]
        rows = sorted(self._index.rows(), key=lambda r: (r.segment, r.row))
        bad: set[Key] = set()
        for row in (progress(rows) if progress else rows):
            try:
                read_entry(self._index.path(row), row, self._handle(row.segment))
            except CacheCorruptError as exc:
                problems.append(exc)
                bad.add(row.key)
        # chains, oldest first: each base is judged (and decoded, once: the model memo) before its deltas
        for row in sorted((r for r in self._index.rows() if r.base is not None), key=lambda r: (r.field, r.domain,
                                                                                                r.cycle)):
            if row.key in bad:
                continue  # already reported
            where, why = f"field {row.field!r} cycle {row.cycle} domain {row.domain}", None
            if row.base_cycle >= row.cycle:
                why = f"{where}: delta base cycle {row.base_cycle} is not earlier"
            elif row.base not in self._index:
                why = f"broken delta chain: {where} needs its base, cycle {row.base_cycle}, which is not in the cache"
            elif row.base in bad:
                why = f"broken delta chain: {where}: its base, cycle {row.base_cycle}, is broken (see above)"
            else:
                try:
                    self.model(row.field, row.cycle, row.domain)
                except CacheCorruptError as exc:
                    why = str(exc)
            if why is not None:
                problems.append(CacheCorruptError(why, file=str(self._index.path(row)), field=row.field,
                                                  cycle=row.cycle, domain=row.domain))
                bad.add(row.key)
        return problems

    def dropped(self) -> dict[str, int]:
        """Entries retention dropped, summed over the writer ranks (from ``r<rank>.drops.json``)."""
        import json

        total: dict[str, int] = {}
        for p in sorted(self.path.glob("r*.drops.json")):
            try:
                for k, v in json.loads(p.read_text()).get("dropped", {}).items():
                    total[k] = total.get(k, 0) + int(v)
            except (OSError, ValueError, AttributeError):
                continue
        return total

    def close(self) -> None:
        while self._files:
            self._files.popitem()[1].close()

    def __enter__(self) -> "CacheReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scan(path: Path) -> Index:
    check_cache_dir(path)
    return Index.scan(path)


def _collective(comm: Any, fn: Callable[[], Index]) -> Index:
    """Run ``fn`` on rank 0 and broadcast its result, or the exception it raised, to every rank."""
    if comm is None or comm.Get_size() == 1:
        return fn()
    result: Any = None
    if comm.Get_rank() == 0:
        try:
            result = fn()
        except Exception as exc:  # every rank must learn about the failure, not hang
            result = exc
    result = comm.bcast(result, root=0)
    if isinstance(result, Exception):
        raise result
    return result
