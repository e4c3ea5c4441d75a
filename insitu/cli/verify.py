"""``insitu verify CACHE``: read every entry and check its checksum; non-zero exit naming each bad one."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from insitu.cli.command import CliError
from insitu.cli.common import open_cache, progress

#: exit code when the cache holds corrupt entries (2 is for bad command-line input)
EXIT_CORRUPT = 1


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("verify", help="check every entry's checksum",
                              description="Read every entry of a temporal cache and check its checksum. Exits "
                                          f"{EXIT_CORRUPT} naming each corrupt entry (file, field, cycle, domain).")
    p.add_argument("cache", help="the cache directory")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the bad entries")
    p.add_argument("--repair", action="store_true",
                   help="restore a lost marker (insitu-cache.json) from the segment files, then verify; the index "
                        "needs no repair: readers rebuild it from the segments")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.repair:
        repair(args.cache)
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


def repair(path: str) -> None:
    """Restore what can be restored from the segment files (today: a lost marker)."""
    from insitu.cache import CacheError
    from insitu.cache.segment import MARKER, restore_marker

    if (Path(path) / MARKER).is_file():
        print(f"repair: {path} has its marker; nothing to restore")
        return
    try:
        segments = restore_marker(Path(path))
    except CacheError as exc:
        raise CliError(f"cannot repair {path}: {exc}") from None
    print(f"repair: restored {MARKER} of {path} ({len(segments)} segment files read)")
