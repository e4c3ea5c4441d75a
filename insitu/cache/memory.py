"""The memory tier: entries kept in RAM up to a byte budget, least recently used leaving first."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator

from insitu.cache.meta import EntryMeta

Key = tuple[str, int, int]


@dataclass
class MemEntry:
    """An entry in memory; ``on_disk`` once a segment holding it has been committed.

    ``base_cycle``: the cycle of the entry a temporal delta was stored against (-1: a whole entry).
    """

    data: bytes
    meta: EntryMeta
    on_disk: bool = False
    base_cycle: int = -1

    @property
    def nbytes(self) -> int:
        return len(self.data)


class MemoryTier:
    """An LRU of entries bounded by ``budget`` bytes of model bytes.

    The tier itself never writes anything: :meth:`victims` says which entries
    must leave to get back under budget, the cache spills the ones not yet on
    disk and then calls :meth:`discard`.
    """

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self._entries: "OrderedDict[Key, MemEntry]" = OrderedDict()
        self.nbytes = 0

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Key]:
        """Keys from least to most recently used."""
        return iter(self._entries)

    def items(self) -> Iterator[tuple[Key, MemEntry]]:
        return iter(self._entries.items())

    def put(self, key: Key, entry: MemEntry) -> None:
        """Insert (or replace) ``key`` as the most recently used entry."""
        old = self._entries.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._entries[key] = entry
        self.nbytes += entry.nbytes

    def get(self, key: Key, touch: bool = True) -> MemEntry | None:
        e = self._entries.get(key)
        if e is not None and touch:
            self._entries.move_to_end(key)
        return e

    def discard(self, key: Key) -> MemEntry | None:
        e = self._entries.pop(key, None)
        if e is not None:
            self.nbytes -= e.nbytes
        return e

    def victims(self) -> list[Key]:
        """Least recently used keys whose removal brings the tier within budget."""
        out, excess = [], self.nbytes - self.budget
        for key, e in self._entries.items():
            if excess <= 0:
                break
            out.append(key)
            excess -= e.nbytes
        return out

    def dirty(self) -> list[Key]:
        """Keys not yet on disk, oldest first."""
        return [k for k, e in self._entries.items() if not e.on_disk]
