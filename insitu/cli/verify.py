"""``insitu verify CACHE``: read every entry and check its checksum; non-zero exit naming each bad one."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from insitu.cli.common import open_cache, progress

#: exit code when the cache holds corrupt entries (2 is for bad command-line input)
EXIT_CORRUPT = 1


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("verify", help="check every entry's checksum",
                              description="Read every entry of a temporal cache and check its checksum. Exits "
                                          f"{EXIT_CORRUPT} naming each corrupt entry (file, field, cycle, domain).")
    p.add_argument("cache", help="the cache directory")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the bad entries")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    reader = open_cache(args.cache)
    with reader:
        n = len(reader)
        problems = reader.verify(progress=lambda rows: progress(rows, "verify", total=n))
    for p in problems:
        if p.field is None:
            print(f"BAD segment {p.file}: {p}")
        else:
            print(f"BAD entry field={p.field!r} cycle={p.cycle} domain={p.domain} file={p.file}: {p}")
    if problems:
        print(f"insitu verify: {len(problems)} problem(s) in {args.cache} ({n} entries checked)", file=sys.stderr)
        return EXIT_CORRUPT
    if not args.quiet:
        print(f"OK: {n} entries in {args.cache}, every checksum matches")
    return 0
