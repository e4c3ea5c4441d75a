"""``insitu info CACHE``: what a cache holds: fields, cycles, domains, bytes, ratio, PSNR."""
from __future__ import annotations

import argparse
import json
from typing import Any

from insitu.cache.meta import human_bytes
from insitu.cache.summary import summary
from insitu.cli.common import open_cache


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("info", help="summarise a temporal cache (fields, cycles, ratio, PSNR)",
                              description="Summarise a temporal cache: fields, cycles, domains, raw vs stored "
                                          "bytes, compression ratio, PSNR measured at compression time.")
    p.add_argument("cache", help="the cache directory")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per cycle")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(run=run)


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
        print(f"total: raw {human_bytes(t['raw_bytes'])}, stored {human_bytes(t['stored_bytes'])} "
              f"(model ratio {_fmt_ratio(t['ratio'])}), PSNR min/mean/max {_fmt_psnr(t['psnr'])}")
        print(s["capacity_text"])
    dropped = {k: v for k, v in s["dropped"].items() if v}
    if dropped:
        print("dropped by retention: " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    for f in s["bad_segments"]:
        print(f"warning: unreadable segment {f} (run `insitu verify`)")
    # the figures come from the index: the entries' bytes were not read
    print(f"data not checked: `insitu verify {args.cache}` reads every entry and checks its checksum")
    return 0
