"""Writer for the crash-safety test: puts entries forever, prints a line after each flush returns.

usage: python cache_crash_writer.py CACHE FIRST_CYCLE
Line printed after each committed cycle: ``committed <cycle> <domains>``. The
entry bytes are a function of (cycle, domain), see ``blob``, so the test can
check them.
"""
from __future__ import annotations

import sys

from insitu.cache import TemporalCache
from support.cache_common import blob, meta


def main() -> None:
    path, first = sys.argv[1], int(sys.argv[2])
    domains = 3
    cache = TemporalCache(path, memory_budget="200KB")  # small: puts spill as well as flushes
    cycle = first
    while True:
        for d in range(domains):
            cache.put("energy", cycle, d, blob(cycle, d), meta(cycle, d))
        if cycle % 2 == 0:
            cache.put("pressure", cycle, 0, blob(cycle, 99), meta(cycle, 99 % 7))
        pending = cache.flush()
        assert pending == 0, pending
        print(f"committed {cycle}", flush=True)
        cycle += 1


if __name__ == "__main__":
    main()
