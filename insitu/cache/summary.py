"""Figures of what a cache holds (fields, cycles, domains, bytes, ratio, PSNR): ``insitu info`` prints them,
the end-of-run report and the viewer read them.

The capacity factor is defined here once (:func:`capacity`): raw float32 bytes of every cached block / every
byte of the cache folder on disk (segments, journals, marker, locks, drop counters, anything else in it).
The run summary, ``insitu info`` and the viewer all print :meth:`Capacity.text` of it.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of every file under ``path`` (0 for files that vanish while we look: a writer's rename)."""
    total = 0
    for p in Path(path).rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class Capacity:
    """How many raw bytes the cache holds per byte it costs: ``factor`` = ``raw_bytes`` / ``folder_bytes``."""

    raw_bytes: int
    folder_bytes: int

    @property
    def factor(self) -> float | None:
        return self.raw_bytes / self.folder_bytes if self.folder_bytes else None

    def text(self) -> str:
        """The one way the figure is printed (run summary, ``insitu info``, viewer)."""
        from insitu.cache.meta import human_bytes

        if self.factor is None:
            return "capacity factor n/a (empty cache folder)"
        return (f"capacity factor {self.factor:.1f}x (raw float32 {human_bytes(self.raw_bytes)} / cache folder "
                f"{human_bytes(self.folder_bytes)} on disk)")


def capacity(reader: Any) -> Capacity:
    """The capacity of the cache ``reader`` reads: raw float32 bytes of its indexed entries / its folder's bytes."""
    return Capacity(sum(r.meta.raw_bytes for r in reader.index.rows()), folder_bytes(reader.path))


def _psnr_stats(values: list[float | None]) -> dict[str, Any]:
    """min/mean/max over finite PSNRs; exact blocks (inf) and unknown ones are counted apart."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return {"min": min(finite) if finite else None, "mean": sum(finite) / len(finite) if finite else None,
            "max": max(finite) if finite else None, "exact": sum(1 for v in values if v is not None and math.isinf(v)),
            "unknown": sum(1 for v in values if v is None)}


def _group(rows: list[Any]) -> dict[str, Any]:
    metas = [r.meta for r in rows]
    raw = sum(m.raw_bytes for m in metas)
    stored = sum(r.nbytes for r in rows)
    return {"entries": len(rows), "deltas": sum(1 for r in rows if r.base is not None), "raw_bytes": raw,
            "stored_bytes": stored,
            "ratio": raw / stored if stored else None, "psnr": _psnr_stats([m.psnr for m in metas])}


def summary(reader: Any, per_cycle: bool = False) -> dict[str, Any]:
    """The figures ``insitu info`` prints, as a dict (what ``--json`` prints)."""
    index = reader.index
    rows_by_field: dict[str, list[Any]] = {}
    for row in index.rows():
        rows_by_field.setdefault(row.field, []).append(row)
    out: dict[str, Any] = {
        "cache": str(reader.path), "format_version": _format_version(),
        "segments": len(index.segments), "disk_bytes": index.disk_bytes(),
        "writer_ranks": sorted({s.rank for s in index.segments.values()}),
        "bad_segments": [f for f, _ in index.bad_segments], "dropped": reader.dropped(), "fields": {},
    }
    all_rows = []
    for field in sorted(rows_by_field):
        rows = rows_by_field[field]
        all_rows += rows
        by_cycle: dict[int, list[Any]] = {}
        for r in rows:
            by_cycle.setdefault(r.cycle, []).append(r)
        f = _group(rows)
        f["cycles"] = sorted(by_cycle)
        f["domains"] = sorted({r.domain for r in rows})
        if per_cycle:
            f["per_cycle"] = {}
            for c in sorted(by_cycle):
                g = _group(by_cycle[c])
                g["domains"] = len(by_cycle[c])
                g["time"] = by_cycle[c][0].meta.time
                f["per_cycle"][str(c)] = g
        out["fields"][field] = f
    out["total"] = _group(all_rows)
    cap = capacity(reader)
    out["folder_bytes"], out["capacity"], out["capacity_text"] = cap.folder_bytes, cap.factor, cap.text()
    return out


def _format_version() -> int:
    from insitu.cache import FORMAT_VERSION

    return FORMAT_VERSION
