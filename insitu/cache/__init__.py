"""The temporal cache: every compressed timestep of every rank, in memory and in HDF5 on disk.

Writing (one :class:`TemporalCache` per simulation rank)::

    from insitu.cache import TemporalCache, EntryMeta
    with TemporalCache("run1.cache", comm=comm, memory_budget="2GB",
                       retention={"keep_last": 100}) as cache:
        meta = EntryMeta.from_model(model, report, start=(z0, y0, x0), origin=..., spacing=..., time=t)
        cache.put("energy", cycle, domain_id, model.to_bytes(), meta)
        cache.flush()                       # durable from here on

Replay (any number of processes, one included)::

    reader = TemporalCache.open("run1.cache", comm=comm)
    grid = reader.reconstruct("energy", 42)  # global owned grid (1 process) / my blocks (several)

On-disk format: docs/cache_format.md.
"""
from __future__ import annotations

from insitu.cache.errors import (CacheBudgetError, CacheCorruptError, CacheError, CacheFormatError, CacheKeyError,
                     CacheLockedError, CacheNotFoundError, CacheReadOnlyError)
from insitu.cache.meta import EntryMeta, parse_size
from insitu.cache.replay import DecodedBlock, CacheReader, GridGeometry, assemble, geometry
from insitu.cache.retention import Retention
from insitu.cache.segment import FORMAT_VERSION
from insitu.cache.store import TemporalCache

__all__ = [
    "DecodedBlock", "CacheBudgetError", "CacheCorruptError", "CacheError", "CacheFormatError", "CacheKeyError",
    "CacheLockedError", "CacheNotFoundError", "CacheReadOnlyError", "CacheReader", "EntryMeta", "FORMAT_VERSION",
    "GridGeometry", "Retention", "TemporalCache", "assemble", "geometry", "parse_size",
]
