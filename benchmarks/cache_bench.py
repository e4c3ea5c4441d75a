"""Temporal cache figures, printed as JSON.

* put / get throughput (entries/s, MB/s of model bytes): memory tier, put+flush
  to disk, reads from memory and from disk (checksum verified);
* open time of a cache of 10,000 entries (with the journals, and rebuilt from
  the segment files alone);
* capacity of a 100-cycle run: raw float32 bytes represented / bytes held.

Models are random-parameter models of the size ``inr.fit(ratio=100)`` gives a
64^3 block (``inr.config_for_ratio``): the cache stores opaque bytes, so fitting
them would only cost time. Usage: python benchmarks/cache_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import inr
from insitu.cache import EntryMeta, TemporalCache

BLOCK = (64, 64, 64)


def make_blobs(n: int, seed: int = 0) -> tuple[list[bytes], list[EntryMeta]]:
    cfg = inr.config_for_ratio(BLOCK, 100)
    rng = np.random.default_rng(seed)
    blobs, metas = [], []
    grid = tuple(s + 2 for s in BLOCK)
    owned = tuple((1, 1 + s) for s in BLOCK)
    for i in range(n):
        m = inr.Model(cfg, rng.normal(0, 0.3, cfg.n_params).astype(np.float16), (0.0, 1.0 + i % 7), grid, "vertex",
                      owned)
        b = m.to_bytes()
        report = inr.FitReport(psnr=40.0 + i % 5, max_abs_error=0.01, steps=500, seconds=1.0, stored_bytes=len(b),
                               ratio=m.raw_bytes / len(b))
        blobs.append(b)
        metas.append(EntryMeta.from_model(m, report, start=(0, 0, 64 * (i % 8)), time=0.1 * i))
    return blobs, metas


def rate(n: int, nbytes: int, seconds: float) -> dict:
    return {"entries": n, "seconds": round(seconds, 4), "entries_per_s": round(n / seconds, 1),
            "MB_per_s": round(nbytes / seconds / 1e6, 2)}


def bench_throughput(root: Path, n: int) -> dict:
    blobs, metas = make_blobs(n)
    nbytes = sum(map(len, blobs))
    per_cycle = 20
    out: dict = {"entry_bytes": len(blobs[0])}
    with TemporalCache(root / "mem", memory_budget="2GB") as c:
        t = time.perf_counter()
        for i, (b, m) in enumerate(zip(blobs, metas)):
            c.put("energy", i // per_cycle, i % per_cycle, b, m)
        out["put_memory"] = rate(n, nbytes, time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(n):
            c.get("energy", i // per_cycle, i % per_cycle)
        out["get_memory"] = rate(n, nbytes, time.perf_counter() - t)
    with TemporalCache(root / "disk", memory_budget="2GB") as c:
        t = time.perf_counter()
        for i, (b, m) in enumerate(zip(blobs, metas)):
            c.put("energy", i // per_cycle, i % per_cycle, b, m)
            if i % per_cycle == per_cycle - 1:
                c.flush()  # one durable segment (fsync'ed, renamed) per cycle
        c.flush()
        out["put_flush_per_cycle"] = rate(n, nbytes, time.perf_counter() - t)
    with TemporalCache(root / "spill", memory_budget=20 * len(blobs[0])) as c:
        t = time.perf_counter()
        for i, (b, m) in enumerate(zip(blobs, metas)):
            c.put("energy", i // per_cycle, i % per_cycle, b, m)
        c.flush()
        out["put_spilling_tiny_budget"] = rate(n, nbytes, time.perf_counter() - t)
    with TemporalCache.open(root / "disk") as r:
        t = time.perf_counter()
        for i in range(n):
            r.get("energy", i // per_cycle, i % per_cycle)
        out["get_disk_verified"] = rate(n, nbytes, time.perf_counter() - t)
    out["per_cycle_segment_entries"] = per_cycle
    return out


def bench_open(root: Path, ranks: int = 4, cycles: int = 100, fields: int = 5, domains: int = 5) -> dict:
    path = root / "open"
    blobs, metas = make_blobs(fields * domains)
    t = time.perf_counter()
    for rank in range(ranks):
        with TemporalCache(path, rank=rank, memory_budget="1GB") as c:
            for cycle in range(cycles):
                for f in range(fields):
                    for d in range(domains):
                        i = f * domains + d
                        c.put(f"field{f}", cycle, rank * domains + d, blobs[i], metas[i])
                c.flush()
    write_s = time.perf_counter() - t
    times = []
    for _ in range(3):
        t = time.perf_counter()
        r = TemporalCache.open(path)
        times.append(time.perf_counter() - t)
        n, segs = len(r), len(r.index.segments)
        r.close()
    for j in path.glob("*.journal"):
        j.rename(j.with_suffix(".journal.off"))
    t = time.perf_counter()
    r = TemporalCache.open(path)
    no_journal = time.perf_counter() - t
    assert len(r) == n
    r.close()
    return {"entries": n, "segments": segs, "writer_ranks": ranks, "write_s": round(write_s, 2),
            "open_s": round(min(times), 4), "open_s_without_journals": round(no_journal, 4)}


def bench_capacity(root: Path, cycles: int = 100, domains: int = 8) -> dict:
    blobs, metas = make_blobs(domains, seed=1)
    path = root / "capacity"
    with TemporalCache(path, memory_budget="16MB") as c:
        for cycle in range(cycles):
            for d in range(domains):
                c.put("energy", cycle, d, blobs[d], metas[d])
            c.flush()
        s = c.stats()
    with TemporalCache.open(path) as r:
        raw = sum(r.meta(*k).raw_bytes for k in r)
        model = sum(r.index.row(k).nbytes for k in r)
        disk = r.index.disk_bytes()
    return {"cycles": cycles, "domains": domains, "block": list(BLOCK), "raw_bytes": raw, "model_bytes": model,
            "disk_bytes": disk, "memory_bytes": s["memory_bytes"],
            "capacity_raw_per_disk_byte": round(raw / disk, 1), "ratio_raw_per_model_byte": round(raw / model, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    ap.add_argument("--dir", help="where to write the caches (default: a temp dir, removed afterwards)")
    args = ap.parse_args()
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="cache_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        out = {"throughput": bench_throughput(root, 200 if args.quick else 2000),
               "open": bench_open(root, cycles=10 if args.quick else 100),
               "capacity": bench_capacity(root, cycles=10 if args.quick else 100)}
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
