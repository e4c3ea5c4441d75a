"""Export reconstructed cycles from the temporal cache (the ``export`` filter, e.g. from a trigger).

A trigger fires *after* the event: ``af.export(field='e', cycles='last:20')``
writes the 20 newest cached cycles (this one included) as .npy or .vti files,
reconstructed from every rank's models. Each rank decodes its own domains
(no collective can be skipped by a failing rank), then one gather brings the
blocks to rank 0, which writes the files.
"""
from __future__ import annotations

import os
from pathlib import Path

from insitu.filters.env import ExtractEnv, FilterResult
from insitu.filters.params import (CACHE, CYCLES, DECODE_BACKEND, FilterParams, Param, ParamSet, path,
                                   select_cached, text)

FORMATS = ("npy", "vti")

EXPORT_PARAMS = ParamSet("export", [
    Param("field", "the cached field to export", required=True, check=text("the name of a cached field")),
    CYCLES,
    CACHE,
    Param("format", "file format", "npy", choices=FORMATS),
    Param("output_dir", "directory the files go to; files are FIELD_CYCLE.EXT", "exports", check=path(empty=True)),
    DECODE_BACKEND,
])


class ExportParams(FilterParams):
    """The checked parameters of one ``af.export`` call: one attribute per :data:`EXPORT_PARAMS` entry."""

    PARAMS = EXPORT_PARAMS

    def select(self, available: list[int]) -> list[int]:
        """The cycles asked for among the cached ones (FilterParamError showing the cached range)."""
        return select_cached(self.PARAMS.action, self.cycles, available)


def export_cycles(env: ExtractEnv, params: ExportParams, result: FilterResult) -> None:
    from insitu.cache import DecodedBlock, TemporalCache, assemble, geometry
    from insitu.cache.replay import decode_entry
    from insitu.render.output import safe_name
    from insitu.render.vti import write_vti
    from insitu.filters.session import current, on_timeline

    current().flush_all()  # this rank's newest entries may still be in memory only
    # collective (and a barrier): every rank's entries are on disk before anyone scans
    own = current().own_cycles(params.cache, params.field, env.comm if env.size > 1 else None)
    mine: dict[int, list] = {}
    damaged: dict[int, str] = {}  # cycle -> why (a domain that does not decode): the cycle is not written
    try:
        reader = TemporalCache.open(params.cache, comm=None)
        cycles = params.select(on_timeline(reader.cycles(params.field), own))
        for cycle in cycles:
            doms = reader.domains(params.field, cycle)
            share = [d for i, d in enumerate(doms) if i % env.size == env.rank]
            mine[cycle] = []
            for d in share:
                where = f"field {params.field!r} cycle {cycle} domain {d}"
                try:
                    meta = reader.meta(params.field, cycle, d)
                    values = decode_entry(reader.model(params.field, cycle, d), meta, where, params.backend)
                except Exception as exc:  # a damaged entry: this cycle is skipped, the others go on
                    damaged.setdefault(cycle, f"{where}: {exc}")
                    continue
                mine[cycle].append(DecodedBlock(d, meta, values))
        reader.close()
    except Exception as exc:  # reported; this rank still takes part in the gather below
        result.error(f"field '{params.field}': {exc}")
        cycles = []
    parts = env.comm.gather((mine, damaged), root=0) if env.comm is not None and env.size > 1 else [(mine, damaged)]
    if env.rank != 0:
        return
    out = Path(params.output_dir)
    os.makedirs(out, exist_ok=True)
    written = []
    bad = {c: why for _, dmg in parts for c, why in dmg.items()}
    for cycle, why in sorted(bad.items()):  # a grid with a hole would show wrong data as data
        result.error(f"cycle {cycle} skipped: {why}")
    for cycle in sorted({c for part, _ in parts for c in part} - set(bad)):
        blocks = [b for part, _ in parts for b in part.get(cycle, [])]
        grid = assemble(blocks)
        path = out / f"{safe_name(params.field)}_{cycle:06d}.{params.format}"
        if params.format == "npy":
            import numpy as np

            np.save(path, grid)
        else:
            write_vti(path, grid, params.field, geometry([b.meta for b in blocks]))
        written.append(str(path))
    result.stats = {"written": written}


def summarise(results: list[FilterResult]) -> str:
    written = [w for r in results for w in r.stats.get("written", [])]
    errors = sum(len(r.errors) for r in results)
    return f"export: wrote {len(written)} file(s)" + (f" ({written[0]} ...)" if written else "") + \
        (f", {errors} problem(s) reported above" if errors else "")
