"""``insitu info CACHE``: what a cache holds: fields, cycles, domains, bytes, ratio, PSNR."""
from __future__ import annotations

import argparse
import json
import math
from typing import Any

from .cli_cacheutil import human_bytes, open_cache


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("info", help="summarise a temporal cache (fields, cycles, ratio, PSNR)",
                              description="Summarise a temporal cache: fields, cycles, domains, raw vs stored "
                                          "bytes, compression ratio, PSNR measured at compression time.")
    p.add_argument("cache", help="the cache directory")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per cycle")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(run=run)


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
    return out


def _format_version() -> int:
    from .cache import FORMAT_VERSION

    return FORMAT_VERSION


def _fmt_psnr(p: dict[str, Any]) -> str:
    if p["min"] is None:
        text = "n/a"
    else:
        text = f"{p['min']:.2f} / {p['mean']:.2f} / {p['max']:.2f} dB"
    if p["exact"]:
        text += f" ({p['exact']} exact)"
    return text


def _fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.1f}x"


def _cycles_text(cycles: list[int]) -> str:
    if len(cycles) <= 8:
        return ", ".join(map(str, cycles))
    return f"{cycles[0]} .. {cycles[-1]}"


def run(args: argparse.Namespace) -> int:
    reader = open_cache(args.cache)
    with reader:
        s = summary(reader, per_cycle=args.verbose)
    if args.json:
        print(json.dumps(s, indent=1))
        return 0
    t = s["total"]
    print(f"cache {s['cache']} (format_version {s['format_version']}): {t['entries']} entries in {s['segments']} "
          f"segment files, {human_bytes(s['disk_bytes'])} on disk, written by {len(s['writer_ranks'])} rank(s)")
    if not s["fields"]:
        print("  (empty: no entries committed yet)")
    for name, f in s["fields"].items():
        print(f"field {name!r}: {len(f['cycles'])} cycles ({_cycles_text(f['cycles'])}), {len(f['domains'])} domains, "
              f"{f['entries']} entries" + (f" ({f['deltas']} temporal deltas)" if f["deltas"] else ""))
        print(f"  raw {human_bytes(f['raw_bytes'])}, stored {human_bytes(f['stored_bytes'])}, ratio "
              f"{_fmt_ratio(f['ratio'])}, PSNR min/mean/max {_fmt_psnr(f['psnr'])}")
        if args.verbose:
            print(f"  {'cycle':>10} {'time':>12} {'domains':>7} {'stored':>11} {'ratio':>9}  PSNR min/mean/max")
            for c, g in f["per_cycle"].items():
                time = "-" if g["time"] is None else f"{g['time']:.6g}"
                print(f"  {c:>10} {time:>12} {g['domains']:>7} {human_bytes(g['stored_bytes']):>11} "
                      f"{_fmt_ratio(g['ratio']):>9}  {_fmt_psnr(g['psnr'])}")
    if s["fields"]:
        ratio_disk = t["raw_bytes"] / s["disk_bytes"] if s["disk_bytes"] else None
        print(f"total: raw {human_bytes(t['raw_bytes'])}, stored {human_bytes(t['stored_bytes'])} "
              f"(ratio {_fmt_ratio(t['ratio'])}; {_fmt_ratio(ratio_disk)} counting the files' overhead), "
              f"PSNR min/mean/max {_fmt_psnr(t['psnr'])}")
    dropped = {k: v for k, v in s["dropped"].items() if v}
    if dropped:
        print("dropped by retention: " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    for f in s["bad_segments"]:
        print(f"warning: unreadable segment {f} (run `insitu verify`)")
    return 0
