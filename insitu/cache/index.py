"""The index: which (field, cycle, domain) entries exist and where, rebuilt from the directory alone.

Every segment file carries a small ``index`` dataset, so rebuilding the index
means listing the directory and reading one small dataset per segment; the
entries' bytes are not touched. When the same key appears in several segments
(a re-put, or a compaction interrupted by a crash) the highest ``seq`` wins:
the copies are identical or the newer one is meant.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from insitu.cache import journal
from insitu.cache.errors import CacheCorruptError, CacheKeyError
from insitu.cache.segment import Row, parse_segment_name, read_index

Key = tuple[str, int, int]


@dataclass
class SegmentInfo:
    """One segment file: its name parts, size on disk and rows."""

    name: str
    rank: int
    cycle: int
    seq: int
    size: int
    rows: list[Row] = dc_field(default_factory=list)


def _fmt_list(values: Iterable[object], limit: int = 40) -> str:
    vals = list(values)
    text = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in vals[:limit])
    if len(vals) > limit:
        text += f", ... ({len(vals)} in all)"
    return f"[{text}]"


class KeyQueries:
    """fields()/cycles()/domains() over a set of keys, with errors that list what exists.

    Subclasses provide ``_all_keys()``.
    """

    def _all_keys(self) -> Iterable[Key]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tree(self) -> dict[str, dict[int, set[int]]]:
        tree: dict[str, dict[int, set[int]]] = {}
        for f, c, d in self._all_keys():
            tree.setdefault(f, {}).setdefault(c, set()).add(d)
        return tree

    def fields(self) -> list[str]:
        """Field names, sorted."""
        return sorted({k[0] for k in self._all_keys()})

    def cycles(self, field: str) -> list[int]:
        """Cycles cached for ``field``, sorted; CacheKeyError listing the fields if unknown."""
        tree = self._tree()
        if field not in tree:
            raise CacheKeyError(f"unknown field {field!r}: the cache holds fields {_fmt_list(sorted(tree))}")
        return sorted(tree[field])

    def domains(self, field: str, cycle: int) -> list[int]:
        """Domain ids cached for ``field`` at ``cycle``, sorted; CacheKeyError listing what exists if unknown."""
        tree = self._tree()
        if field not in tree:
            raise CacheKeyError(f"unknown field {field!r}: the cache holds fields {_fmt_list(sorted(tree))}")
        if cycle not in tree[field]:
            raise CacheKeyError(f"unknown cycle {cycle} of field {field!r}: cached cycles are "
                                f"{_fmt_list(sorted(tree[field]))}")
        return sorted(tree[field][cycle])

    def _missing(self, field: str, cycle: int, domain: int) -> CacheKeyError:
        """The error for a key that is absent, naming the first level that does not exist."""
        try:
            doms = self.domains(field, cycle)
        except CacheKeyError as exc:
            return exc
        return CacheKeyError(f"unknown domain {domain} of field {field!r} cycle {cycle}: cached domains are "
                             f"{_fmt_list(doms)}")


class Index(KeyQueries):
    """Entries of a cache directory (all ranks, or only some), keyed by (field, cycle, domain)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.segments: dict[str, SegmentInfo] = {}
        self._by_key: dict[Key, list[Row]] = {}
        #: segments that could not be read: (file, message)
        self.bad_segments: list[tuple[str, str]] = []

    # --- building ---
    @classmethod
    def scan(cls, directory: Path, rank_filter: Callable[[int], bool] | None = None,
             on_bad: str = "warn") -> "Index":
        """Read every segment's index in ``directory`` (only ranks ``rank_filter`` accepts).

        Segments that cannot be read are listed in ``bad_segments`` (and a
        warning issued when ``on_bad="warn"``); the others stay usable.
        A segment of an unknown format version raises CacheFormatError.
        """
        idx = cls(directory)
        for attempt in range(3):  # a writer may remove segments while we look: look again
            try:
                idx._scan_once(rank_filter, on_bad)
                return idx
            except FileNotFoundError:
                idx = cls(directory)
        idx._scan_once(rank_filter, on_bad, missing_ok=True)
        return idx

    def _scan_once(self, rank_filter: Callable[[int], bool] | None, on_bad: str, missing_ok: bool = False) -> None:
        present: dict[str, tuple[int, int, int]] = {}
        journals = []
        with os.scandir(self.directory) as it:
            for e in it:
                parts = parse_segment_name(e.name)
                if parts is not None:
                    if rank_filter is None or rank_filter(parts[0]):
                        present[e.name] = parts
                elif e.name.endswith(".journal"):
                    journals.append(e.name)
        # fast path: journal lines whose segment exists with the recorded size
        known: dict[str, tuple[int, list]] = {}
        for j in sorted(journals):
            for name, size, rows in journal.read(self.directory / j):
                if name in present:
                    known[name] = (size, rows)
        for name in sorted(present):
            rank, cycle, seq = present[name]
            path = self.directory / name
            try:
                size = path.stat().st_size
                if name in known and known[name][0] == size:
                    rows = known[name][1]
                else:  # slow path: the segment's own index dataset
                    rows = read_index(path)
            except CacheCorruptError as exc:
                if not path.exists():
                    if missing_ok:
                        continue
                    raise FileNotFoundError(path) from exc
                self.bad_segments.append((str(path), str(exc)))
                if on_bad == "warn":
                    warnings.warn(f"insitu cache: skipping unreadable segment: {exc}", RuntimeWarning, stacklevel=3)
                continue
            except FileNotFoundError:
                if missing_ok:
                    continue
                raise
            self.add_segment(SegmentInfo(name, rank, cycle, seq, size, rows))

    def add_segment(self, seg: SegmentInfo) -> None:
        self.segments[seg.name] = seg
        for row in seg.rows:
            lst = self._by_key.setdefault(row.key, [])
            lst.append(row)
            if len(lst) > 1:
                lst.sort(key=lambda r: (self.segments[r.segment].seq, self.segments[r.segment].rank))

    def remove_segment(self, name: str) -> SegmentInfo | None:
        seg = self.segments.pop(name, None)
        if seg is None:
            return None
        for row in seg.rows:
            lst = self._by_key.get(row.key)
            if lst is None:
                continue
            lst[:] = [r for r in lst if r.segment != name]
            if not lst:
                del self._by_key[row.key]
        return seg

    # --- queries ---
    def _all_keys(self) -> Iterable[Key]:
        return self._by_key.keys()

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Key]:
        return iter(self._by_key)

    def row(self, key: Key) -> Row | None:
        """The current (newest) row of ``key``, None if absent."""
        lst = self._by_key.get(key)
        return lst[-1] if lst else None

    def rows(self) -> Iterator[Row]:
        """The current row of every key."""
        for lst in self._by_key.values():
            yield lst[-1]

    def path(self, row: Row) -> Path:
        return self.directory / row.segment

    def disk_bytes(self) -> int:
        """Bytes of all segment files indexed."""
        return sum(s.size for s in self.segments.values())
