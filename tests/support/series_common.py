"""A small cache for the time-series tests (export to VTKHDF/.pvd, the xarray backend)."""
from __future__ import annotations

from pathlib import Path

from support.cache_common import decomposition, make_entry

from insitu.cache import TemporalCache

CYCLES = (0, 5, 9)
TIMES = {0: 0.0, 5: 2.5, 9: 4.75}


def write_cache(path: Path, cycles=CYCLES, times=TIMES, shapes=None) -> Path:
    """energy (vertex) and pressure (element) on 4 domains of a 10x12x14 grid; one segment file per cycle."""
    with TemporalCache(path) as c:
        for cycle in cycles:
            shape = (shapes or {}).get(cycle, (10, 12, 14))
            for d, start, dims in decomposition(shape, (2, 2, 1)):
                for fi, field in enumerate(("energy", "pressure")):
                    _, b, meta = make_entry(100 * cycle + 10 * d + fi, start=start, owned_shape=dims,
                                            association=("vertex", "element")[fi],
                                            time=None if times is None else times[cycle])
                    c.put(field, cycle, d, b, meta)
            c.flush()
    return path


def damage(cache: Path, field: str, cycle: int, domain: int) -> None:
    """Flip 16 bytes inside the model bytes of one entry (its checksum no longer matches)."""
    from support.cache_common import entry_file_offset

    with TemporalCache.open(cache) as r:
        row = r.index.row((field, cycle, domain))
        seg = r.index.path(row)
    raw = bytearray(seg.read_bytes())
    at = entry_file_offset(seg, row.row)
    raw[at + 20: at + 36] = bytes(b ^ 0xFF for b in raw[at + 20: at + 36])
    seg.write_bytes(bytes(raw))
