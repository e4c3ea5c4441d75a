"""Temporal cache: round trips, memory tier, retention, format and bad input (real HDF5 files)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from support.cache_common import entry_file_offset, make_entry

from insitu.cache import (CacheBudgetError, CacheCorruptError, CacheError, CacheFormatError, CacheKeyError,
                          CacheLockedError, CacheNotFoundError, CacheReadOnlyError, EntryMeta, Retention,
                          TemporalCache, parse_size)
from insitu.cache.segment import MARKER, parse_segment_name

ROOT = Path(__file__).resolve().parents[1]


def entry(seed: int, **kw):
    return make_entry(seed, **kw)[1:]


def segments(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if parse_segment_name(p.name))


# --- round trips -----------------------------------------------------------------------------------
def test_put_get_round_trip_is_bit_identical(tmp_path):
    path = tmp_path / "c"
    blobs = {}
    with TemporalCache(path, memory_budget="1MB") as cache:
        for cycle in range(3):
            for dom in range(2):
                b, meta = entry(10 * cycle + dom, start=(0, 0, 8 * dom), time=0.1 * cycle)
                cache.put("energy", cycle, dom, b, meta)
                blobs[("energy", cycle, dom)] = (b, meta)
        assert cache.get("energy", 1, 1) == blobs[("energy", 1, 1)][0]  # from memory
        assert cache.flush() == 0
        assert ("energy", 2, 1) in cache and ("energy", 3, 1) not in cache
        assert cache.fields() == ["energy"] and cache.cycles("energy") == [0, 1, 2]
        assert cache.domains("energy", 2) == [0, 1]
    reader = TemporalCache.open(path)
    assert len(reader) == 6
    for (f, c, d), (b, meta) in blobs.items():
        got = reader.get(f, c, d)
        assert got == b and isinstance(got, bytes)
        assert reader.meta(f, c, d) == meta
    m = reader.meta("energy", 2, 1)
    assert m.start == (0, 0, 8) and m.dims == (6, 7, 8) and m.time == pytest.approx(0.2)
    assert m.fit["psnr"] is not None and m.fit["ratio"] > 0 and m.model_config is not None
    reader.close()


def test_disk_reads_are_bit_identical_after_spill(tmp_path):
    b0, m0 = entry(0)
    with TemporalCache(tmp_path / "c", memory_budget=len(b0) + 10) as cache:
        items = [entry(s) for s in range(4)]
        for s, (b, m) in enumerate(items):
            cache.put("f", s, 0, b, m)
        assert cache.location("f", 0, 0) == "disk"
        for s, (b, m) in enumerate(items):
            assert cache.get("f", s, 0) == b and cache.meta("f", s, 0) == m


def test_entry_meta_from_model_and_json():
    model, b, meta = make_entry(3, start=(2, 4, 6), association="element", time=1.5)
    assert meta.dims == model.owned_shape and meta.association == "element"
    assert meta.value_range == model.value_range and meta.raw_bytes == model.raw_bytes
    assert meta.stop == (8, 11, 14)
    assert EntryMeta.from_json(meta.to_json()) == meta
    with pytest.raises(ValueError, match="association"):
        EntryMeta(start=(0, 0, 0), dims=(1, 1, 1), association="face")
    with pytest.raises(ValueError, match="dims"):
        EntryMeta(start=(0, 0, 0), dims=(0, 1, 1))


def test_replacing_an_entry_keeps_the_newest(tmp_path):
    path = tmp_path / "c"
    b1, m1 = entry(1)
    b2, m2 = entry(2)
    with TemporalCache(path) as cache:
        cache.put("f", 0, 0, b1, m1)
        cache.flush()
        cache.put("f", 0, 0, b2, m2)
        assert cache.get("f", 0, 0) == b2
    with TemporalCache.open(path) as r:
        assert r.get("f", 0, 0) == b2 and len(r) == 1


def test_reopen_appends(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as cache:
        cache.put("f", 0, 0, *entry(0))
    with TemporalCache(path) as cache:
        assert cache.cycles("f") == [0]
        cache.put("f", 1, 0, *entry(1))
    assert len(segments(path)) == 2
    assert TemporalCache.open(path).cycles("f") == [0, 1]


def test_a_run_into_a_cache_of_an_earlier_run_says_so(tmp_path):
    # a second run restarting at cycle 1 in the first run's folder: its first put says which cycles it will see
    # from the earlier run until it writes them (nothing is dropped); a run that continues the timeline is quiet
    import warnings

    from insitu.filters.session import on_timeline

    path = tmp_path / "c"
    with TemporalCache(path) as cache:
        for c in range(1, 6):
            cache.put("f", c, 0, *entry(c))
            cache.put("g", c, 0, *entry(c))
    with TemporalCache(path) as cache, pytest.warns(RuntimeWarning, match=r"'f' already holds cycles 1\.\.5 \(5 "):
        cache.put("f", 1, 0, *entry(9))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            cache.put("f", 2, 0, *entry(9))  # once per field and session
            cache.put("g", 6, 0, *entry(9))  # the next cycle of a run that goes on: nothing to say
        assert cache.cycles("f") == [1, 2, 3, 4, 5] and cache.get("f", 1, 0) == entry(9)[0]
        # this run's own timeline: what its renders and exports show (insitu.filters.session.on_timeline)
        assert cache.written_cycles("f") == {1, 2} and cache.written_cycles("g") == {6}
        assert on_timeline(cache.cycles("f"), cache.written_cycles("f")) == [1, 2]
        assert on_timeline(cache.cycles("g"), cache.written_cycles("g")) == [1, 2, 3, 4, 5, 6]
        assert on_timeline([3, 4], set()) == [3, 4]  # a run that wrote none of it shows every cycle


# --- memory tier ---------------------------------------------------------------------------------
def test_eviction_order_under_a_tiny_budget(tmp_path):
    items = [entry(s) for s in range(8)]
    size = max(len(b) for b, _ in items)  # sizes differ by a few header bytes
    assert 4 * min(len(b) for b, _ in items) > 3 * size
    with TemporalCache(tmp_path / "c", memory_budget=3 * size) as cache:
        for s in range(5):
            cache.put("f", s, 0, *items[s])
        # the newest three stay in memory, the two oldest left; the spill that made room for cycle 3
        # committed everything pending (0..3) in one go, so 2 and 3 are on disk too
        assert [cache.location("f", s, 0) for s in range(5)] == ["disk", "disk", "memory+disk", "memory+disk",
                                                                  "memory"]
        assert cache.stats()["memory_entries"] == 3 and cache.stats()["memory_bytes"] <= 3 * size
        cache.get("f", 2, 0)  # touch: 2 becomes the most recently used
        cache.put("f", 5, 0, *items[5])
        assert cache.location("f", 3, 0).startswith("disk") and cache.location("f", 2, 0) == "memory+disk"
        cache.put("f", 6, 0, *items[6])
        cache.put("f", 7, 0, *items[7])
        assert cache.location("f", 2, 0) == "disk"  # LRU now
        assert {s for s in range(8) if "memory" in cache.location("f", s, 0)} == {5, 6, 7}
        for s in range(8):  # nothing lost
            assert cache.get("f", s, 0) == items[s][0]
        assert cache.dropped_total == 0


def test_an_entry_larger_than_the_budget_goes_straight_to_disk(tmp_path):
    b, m = entry(0)
    with TemporalCache(tmp_path / "c", memory_budget=len(b) // 2) as cache:
        with pytest.warns(RuntimeWarning, match="straight to disk"):
            cache.put("f", 0, 0, b, m)
        assert cache.location("f", 0, 0) == "disk" and cache.get("f", 0, 0) == b


def test_a_commit_shares_segment_files_between_cycles(tmp_path):
    path = tmp_path / "c"
    blobs = {}
    with TemporalCache(path) as cache:
        for c in range(30):
            blobs[c] = entry(c)
            cache.put("f", c, 0, *blobs[c])
    # one commit (at close) of 30 small entries: one file, not 30 (each costs ~2 KB of HDF5 structure)
    assert len(segments(path)) == 1
    total = sum((path / n).stat().st_size for n in segments(path))
    assert (total - sum(len(b) + len(m.to_json()) for b, m in blobs.values())) / len(blobs) < 1000  # per entry
    # dropping some of its cycles rewrites the file with the rest
    with TemporalCache(path, retention={"keep_last": 3}) as cache:
        cache.put("f", 30, 0, *entry(30))
        assert cache.cycles("f") == [28, 29, 30]
    with TemporalCache.open(path) as r:
        assert r.cycles("f") == [28, 29, 30] and r.verify() == []
        assert r.get("f", 29, 0) == blobs[29][0]
    (path / "r00000.journal").unlink()  # the slow path reads the (gzipped, many-row) index datasets
    with TemporalCache.open(path) as r:
        assert r.cycles("f") == [28, 29, 30] and r.meta("f", 28, 0) == blobs[28][1]


def test_large_commits_are_split_between_cycles(tmp_path, monkeypatch):
    from insitu.cache import store

    monkeypatch.setattr(store, "SEGMENT_BYTES", 1)  # every cycle fills a file
    path = tmp_path / "c"
    with TemporalCache(path) as cache:
        for c in range(4):
            for d in range(3):
                cache.put("f", c, d, *entry(10 * c + d))
    assert sorted(parse_segment_name(n)[1] for n in segments(path)) == [0, 1, 2, 3]  # a cycle is never split


# --- retention -----------------------------------------------------------------------------------
def test_keep_last(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path, retention={"keep_last": 3}, memory_budget=5000) as cache:
        for c in range(10):
            for d in range(2):
                cache.put("f", c, d, *entry(10 * c + d))
            cache.flush()
        assert cache.cycles("f") == [7, 8, 9]
        assert cache.dropped == {"keep_last": 14, "keep_every": 0, "disk_budget": 0, "base_replaced": 0}
        assert [k for k in cache.drop_log][:2] == [("f", 0, 0, "keep_last"), ("f", 0, 1, "keep_last")]
    assert {parse_segment_name(n)[1] for n in segments(path)} == {7, 8, 9}
    with TemporalCache.open(path) as r:
        assert r.cycles("f") == [7, 8, 9] and r.dropped()["keep_last"] == 14


def test_keep_every(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path, retention=Retention(keep_every=3)) as cache:
        for c in range(11):
            cache.put("f", c, 0, *entry(c))
            cache.flush()
        assert cache.cycles("f") == [0, 3, 6, 9, 10]  # multiples of 3, plus the newest
        assert cache.dropped["keep_every"] == 6
    with TemporalCache(path, retention=Retention(keep_last=2, keep_every=5)) as cache:
        for c in range(11, 16):
            cache.put("f", c, 0, *entry(c))
        assert cache.cycles("f") == [0, 10, 14, 15]
        assert cache.dropped["keep_every"] == 6 + 6  # 3, 6, 9 and 11, 12, 13
    assert TemporalCache.open(path).cycles("f") == [0, 10, 14, 15]


def test_retention_is_per_field_and_rewrites_shared_segments(tmp_path):
    path = tmp_path / "c"
    bp, mp = entry(99)
    with TemporalCache(path, retention={"keep_last": 2}) as cache:
        cache.put("pressure", 0, 0, bp, mp)
        for c in range(5):
            cache.put("energy", c, 0, *entry(c))
            cache.flush()
        assert cache.cycles("energy") == [3, 4] and cache.cycles("pressure") == [0]
    with TemporalCache.open(path) as r:
        assert r.get("pressure", 0, 0) == bp and r.cycles("energy") == [3, 4]
        assert r.verify() == []


def test_disk_budget_evicts_oldest_first(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path, memory_budget="1MB") as probe:
        probe.put("f", 0, 0, *entry(0))
        probe.put("f", 0, 1, *entry(1))
        probe.flush()
        one_cycle = probe.stats()["disk_bytes"]
    for p in path.iterdir():
        p.unlink()
    path.rmdir()
    budget = int(3.5 * one_cycle)
    with TemporalCache(path, disk_budget=budget) as cache:
        for c in range(10):
            cache.put("f", c, 0, *entry(10 * c))
            cache.put("f", c, 1, *entry(10 * c + 1))
            cache.flush()
            assert cache.stats()["disk_bytes"] <= budget
        assert cache.cycles("f") == [7, 8, 9]
        assert cache.dropped["disk_budget"] == 14
        assert cache.drop_log[0] == ("f", 0, 0, "disk_budget")
    with TemporalCache(tmp_path / "tiny", disk_budget=100) as cache:  # never drops the newest cycle
        with pytest.warns(RuntimeWarning, match="newest cycle"):
            for c in range(3):
                cache.put("f", c, 0, *entry(c))
                cache.flush()
        assert cache.cycles("f") == [2] and cache.dropped["disk_budget"] == 2


def test_retention_validation():
    with pytest.raises(ValueError, match="keep_last"):
        Retention(keep_last=0)
    with pytest.raises(ValueError, match="unknown retention keys"):
        Retention.coerce({"keep": 3})


# --- format ----------------------------------------------------------------------------------------
def test_segment_files_are_self_describing(tmp_path):
    path = tmp_path / "c"
    b, m = entry(5, time=2.5)
    with TemporalCache(path, rank=3) as cache:
        cache.put("energy", 42, 7, b, m)
    (name,) = segments(path)
    assert name == "r00003-c0000000042-s000001.h5"
    with h5py.File(path / name, "r") as f:
        assert f.attrs["format_version"] == 2 and f.attrs["rank"] == 3 and f.attrs["cycle"] == 42
        configs = json.loads(f.attrs["model_configs"])
        assert configs[0]["encoding"]["otype"] == "HashGrid"
        idx = f["index"][()]
        assert f["data"][idx["offset"][0]:idx["offset"][0] + idx["nbytes"][0]].tobytes() == b
        assert idx["field"][0].decode() == "energy" and idx["cycle"][0] == 42 and idx["base_cycle"][0] == -1
        assert EntryMeta.from_json(idx["meta"][0].decode()) == m
    # fixed-length strings everywhere: no 4 KiB global heap, little beyond the model bytes and meta JSON
    assert (path / name).stat().st_size - len(b) - len(m.to_json()) < 2500
    assert json.loads((path / MARKER).read_text())["format_version"] == 1
    assert not [p for p in path.iterdir() if p.name.startswith(".tmp-")]


def test_flipped_byte_names_exactly_that_entry(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as cache:
        for c in range(3):
            for d in range(3):
                cache.put("energy", c, d, *entry(10 * c + d))
            cache.flush()
    seg = path / "r00000-c0000000001-s000002.h5"
    with h5py.File(seg, "r") as f:
        row = [i for i, r in enumerate(f["index"][()]) if r["domain"] == 2][0]
    offset = entry_file_offset(seg, row)
    with open(seg, "r+b") as fh:
        fh.seek(offset + 100)
        byte = fh.read(1)
        fh.seek(offset + 100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with TemporalCache.open(path) as r:
        problems = r.verify()
        assert [(p.field, p.cycle, p.domain) for p in problems] == [("energy", 1, 2)]
        assert problems[0].file == str(seg)
        with pytest.raises(CacheCorruptError, match=r"field 'energy', cycle 1, domain 2") as err:
            r.get("energy", 1, 2)
        assert seg.name in str(err.value)
        for c in range(3):
            for d in range(3):
                if (c, d) != (1, 2):
                    assert r.get("energy", c, d) == entry(10 * c + d)[0]


def test_unreadable_segment_leaves_the_rest_readable(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as cache:
        for c in range(3):
            cache.put("f", c, 0, *entry(c))
            cache.flush()
    (path / "r00000-c0000000001-s000002.h5").write_bytes(b"garbage" * 100)
    with pytest.warns(RuntimeWarning, match="unreadable segment"):
        r = TemporalCache.open(path)
    assert r.cycles("f") == [0, 2] and r.get("f", 2, 0) == entry(2)[0]
    problems = r.verify()
    assert len(problems) == 1 and "r00000-c0000000001-s000002.h5" in problems[0].file


# --- bad input -----------------------------------------------------------------------------------
def test_missing_and_non_cache_directories(tmp_path):
    with pytest.raises(CacheNotFoundError, match="does not exist"):
        TemporalCache.open(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hello")
    with pytest.raises(CacheFormatError, match="not an insitu cache"):
        TemporalCache.open(tmp_path / "plain")
    with pytest.raises(CacheFormatError, match="not an insitu cache"):
        TemporalCache(tmp_path / "plain")  # refuses to write into a foreign directory
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheFormatError, match="is a file"):
        TemporalCache.open(tmp_path / "file")


def test_wrong_format_version(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as cache:
        cache.put("f", 0, 0, *entry(0))
    doc = json.loads((path / MARKER).read_text())
    doc["format_version"] = 99
    (path / MARKER).write_text(json.dumps(doc))
    with pytest.raises(CacheFormatError, match="format_version 99"):
        TemporalCache.open(path)
    with pytest.raises(CacheFormatError, match="format_version 99"):
        TemporalCache(path)
    doc["format_version"] = 1
    (path / MARKER).write_text(json.dumps(doc))
    (seg,) = segments(path)
    with h5py.File(path / seg, "r+") as f:
        f.attrs["format_version"] = 7
    with pytest.raises(CacheFormatError, match=f"{seg}.*format_version 7"):
        TemporalCache.open(path)


def test_unknown_field_cycle_domain_list_what_exists(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as cache:
        for c in (0, 5):
            cache.put("energy", c, 0, *entry(c))
        cache.put("pressure", 0, 1, *entry(9))
        with pytest.raises(CacheKeyError, match=r"unknown field 'rho'.*\['energy', 'pressure'\]"):
            cache.get("rho", 0, 0)
    with TemporalCache.open(path) as r:
        with pytest.raises(CacheKeyError, match=r"unknown field 'rho'.*\['energy', 'pressure'\]"):
            r.cycles("rho")
        with pytest.raises(CacheKeyError, match=r"unknown cycle 3 of field 'energy'.*\[0, 5\]"):
            r.get("energy", 3, 0)
        with pytest.raises(CacheKeyError, match=r"unknown domain 4.*\[1\]"):
            r.get("pressure", 0, 4)
        with pytest.raises(KeyError):  # also a KeyError
            r.reconstruct("energy", 3)
        with pytest.raises(CacheReadOnlyError):
            r.put("energy", 9, 0, b"x", None)


def test_budgets(tmp_path):
    assert parse_size("2GB") == 2 * 10**9 and parse_size("512MB") == 512 * 10**6
    assert parse_size("64KiB") == 65536 and parse_size(" 1.5 gib ") == int(1.5 * 2**30) and parse_size(4096) == 4096
    for bad in ("lots", "12XB", "-5MB", 0, -1, True, None):
        with pytest.raises(CacheBudgetError):
            parse_size(bad)
    b, m = entry(0)
    with pytest.raises(CacheBudgetError, match=r"smaller than one entry"):
        TemporalCache(tmp_path / "c", memory_budget="1KB", entry_bytes=len(b))
    with pytest.raises(CacheBudgetError, match="memory_budget='plenty'"):
        TemporalCache(tmp_path / "c", memory_budget="plenty")
    with TemporalCache(tmp_path / "c", memory_budget="1MB", entry_bytes=len(b)) as cache:
        cache.put("f", 0, 0, b, m)


def test_bad_put_arguments(tmp_path):
    b, m = entry(0)
    with TemporalCache(tmp_path / "c") as cache:
        with pytest.raises(ValueError, match="field"):
            cache.put("", 0, 0, b, m)
        with pytest.raises(ValueError, match="cycle"):
            cache.put("f", -1, 0, b, m)
        with pytest.raises(ValueError, match="domain_id"):
            cache.put("f", 0, 1.5, b, m)
        with pytest.raises(TypeError, match="EntryMeta"):
            cache.put("f", 0, 0, b, {"start": 0})
        with pytest.raises(ValueError, match="empty"):
            cache.put("f", 0, 0, b"", m)
    with pytest.raises(CacheError, match="closed"):
        cache.put("f", 0, 0, b, m)


def test_second_writer_on_the_same_rank_is_refused(tmp_path):
    path = tmp_path / "c"
    b, m = entry(0)
    with TemporalCache(path) as first:
        first.put("f", 0, 0, b, m)
        first.flush()
        with pytest.raises(CacheLockedError, match=f"rank 0 .*pid {os.getpid()}"):
            TemporalCache(path)
        code = f"from insitu.cache import TemporalCache\nTemporalCache({str(path)!r})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and "CacheLockedError" in proc.stderr
        with TemporalCache(path, rank=1) as other:  # another rank is fine
            other.put("f", 0, 1, *entry(1))
        first.put("f", 1, 0, *entry(2))
    with TemporalCache(path) as again:  # released on close
        assert again.cycles("f") == [0, 1]
    with TemporalCache.open(path) as r:
        assert r.verify() == [] and r.domains("f", 0) == [0, 1]


DISK_FULL = textwrap.dedent("""
    import resource, signal, sys, warnings
    from support.cache_common import make_entry
    from insitu.cache import TemporalCache
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    cache = TemporalCache({path!r}, memory_budget="10MB")
    cache.put("f", 0, 0, *make_entry(0)[1:])
    assert cache.flush() == 0
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))  # "the disk is full" from here on
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        cache.put("f", 1, 0, *make_entry(1)[1:])
        pending = cache.flush()
    print("pending", pending, "failures", cache.stats()["write_failures"])
    print("warning", w[0].message)
    assert cache.get("f", 1, 0) == make_entry(1)[1]   # still there, in memory
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
    print("pending after", cache.flush())
    cache.close()
""")


def test_disk_full_keeps_the_entry_in_memory(tmp_path):
    path = tmp_path / "c"
    code = DISK_FULL.format(path=str(path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pending 1 failures 1" in proc.stdout
    assert "could not write" in proc.stdout and "stay in memory" in proc.stdout
    assert "pending after 0" in proc.stdout
    with TemporalCache.open(path) as r:
        assert r.cycles("f") == [0, 1] and r.verify() == []
    assert not [p for p in path.iterdir() if p.name.startswith(".tmp-")]


def test_index_rebuilds_without_journals_and_past_a_torn_line(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path, rank=0) as a, TemporalCache(path, rank=1) as b:
        for c in range(4):
            a.put("f", c, 0, *entry(c))
            b.put("f", c, 1, *entry(10 + c))
            a.flush()
            b.flush()
    with TemporalCache.open(path) as r:
        expected = {k: r.meta(*k) for k in r}
    journal = path / "r00000.journal"
    text = journal.read_bytes()
    journal.write_bytes(text[:-40])  # a writer killed while appending its last line
    (path / "r00001.journal").unlink()  # no journal at all
    with TemporalCache.open(path) as r:
        assert {k: r.meta(*k) for k in r} == expected and r.verify() == []
    # a journal line that no longer matches its segment (size differs) is not trusted
    journal.write_bytes(text)
    seg = path / "r00000-c0000000003-s000004.h5"
    with TemporalCache(path, rank=9) as other:
        other.put("g", 0, 0, *entry(77))
    (path / "r00009-c0000000000-s000001.h5").replace(seg)
    with TemporalCache.open(path) as r:
        assert ("f", 3, 0) not in r and ("g", 0, 0) in r and r.get("g", 0, 0) == entry(77)[0]


def test_journal_lines_compressed_and_plain_both_read(tmp_path):
    import zlib

    from insitu.cache import journal
    from insitu.cache.segment import Row

    rows = [Row("f", c, 0, 100, 7, -1 if c == 0 else c - 1, entry(c)[1].to_json(), "seg.h5", c) for c in range(20)]
    line = journal.encode("seg.h5", 1234, rows)
    assert line[9:10] == b"z" and len(line) < len(json.dumps([r.meta_json for r in rows])) / 3
    body = json.dumps({"segment": "old.h5", "size": 99, "rows": [[r.field, r.cycle, r.domain, r.nbytes, r.checksum,
                                                                   r.base_cycle, r.meta_json] for r in rows[:2]]})
    plain = f"{zlib.crc32(body.encode()) & 0xFFFFFFFF:08x} {body}\n".encode()  # as earlier writers wrote
    (tmp_path / "r00000.journal").write_bytes(line + plain + line[:-30])  # the last one torn
    got = list(journal.read(tmp_path / "r00000.journal"))
    assert [(n, s) for n, s, _ in got] == [("seg.h5", 1234), ("old.h5", 99)]
    assert got[0][2] == rows and got[1][2][1].base_cycle == 0


def test_version_1_segments_still_read(tmp_path):
    """A segment as earlier writers wrote it: one dataset per entry, variable-length strings, no offsets."""
    from insitu.cache.segment import entry_checksum

    path = tmp_path / "c"
    with TemporalCache(path):
        pass
    b, m = entry(3)
    crc = entry_checksum(b, m.to_json())
    old = np.dtype([("field", h5py.string_dtype("utf-8")), ("cycle", "<i8"), ("domain", "<i8"), ("nbytes", "<i8"),
                    ("checksum", "<u4"), ("base_cycle", "<i8"), ("meta", h5py.string_dtype("utf-8"))])
    with h5py.File(path / "r00000-c0000000004-s000001.h5", "w") as f:
        f.attrs.update(format="insitu-inr-cache-segment", format_version=1, rank=0, cycle=4, seq=1, n_entries=1)
        ds = f.create_group("entries").create_dataset("000000", data=np.frombuffer(b, np.uint8))
        ds.attrs["meta"] = m.to_json()
        f.create_dataset("index", data=np.array([("f", 4, 0, len(b), crc, -1, m.to_json())], dtype=old))
    with TemporalCache.open(path) as r:
        assert r.get("f", 4, 0) == b and r.meta("f", 4, 0) == m and r.verify() == []
    with TemporalCache(path) as w:  # a writer appends next to it
        w.put("f", 5, 0, *entry(5))
    with TemporalCache.open(path) as r:
        assert r.cycles("f") == [4, 5] and r.verify() == []


def test_cache_created_by_another_rank_between_two_looks_is_joined(tmp_path, monkeypatch):
    """Rank B looks for the marker (absent), rank A writes it and its lock file, B lists the directory."""
    from insitu.cache import segment

    path = tmp_path / "c"
    with TemporalCache(path, rank=0):  # rank A: the marker, then r00000.lock
        pass
    marker, real_exists, looks = path / MARKER, Path.exists, []

    def exists(self):
        if self == marker:
            looks.append(1)
            if len(looks) == 1:
                return False  # B's first look happened before A wrote it
        return real_exists(self)

    monkeypatch.setattr(Path, "exists", exists)
    assert segment.init_cache_dir(path)["format"] == "insitu-inr-cache"
    assert len(looks) >= 2


def test_small_segments_are_merged_and_a_reader_opened_before_still_reads(tmp_path):
    """Per-cycle commits of small blocks are merged once COMPACT_AFTER have piled up: fewer files and bytes, the
    same entries, and a reader that scanned before the merge finds them in the merged file."""
    from insitu.cache.store import COMPACT_AFTER

    path = tmp_path / "c"
    n = COMPACT_AFTER - 1
    with TemporalCache(path) as w:
        for c in range(n):
            w.put("f", c, 0, *make_entry(c)[1:])
            w.flush()
        before = sorted(p.name for p in path.glob("*.h5"))
        size_before = sum(p.stat().st_size for p in path.glob("*.h5"))
        early = TemporalCache.open(path)  # scans the n files that are there now
        w.put("f", n, 0, *make_entry(n)[1:])
        w.flush()  # the COMPACT_AFTER-th small segment: all are merged into one
        after = sorted(p.name for p in path.glob("*.h5"))
    assert len(before) == n and len(after) == 1 and not set(after) & set(before)
    # the HDF5 structure is paid once, not per cycle: what is not model bytes shrinks several-fold
    model_bytes = sum(len(make_entry(c)[1]) for c in range(n + 1))
    overhead_before = size_before * (n + 1) / n - model_bytes
    assert sum(p.stat().st_size for p in path.glob("*.h5")) - model_bytes < 0.35 * overhead_before
    for c in range(n):  # the stale reader's files are gone; it finds the entries again
        assert early.get("f", c, 0) == make_entry(c)[1]
    early.close()
    with TemporalCache.open(path) as r:
        assert r.cycles("f") == list(range(n + 1)) and r.verify() == []
        assert all(r.get("f", c, 0) == make_entry(c)[1] for c in range(n + 1))


def test_close_keeps_a_journal_of_the_live_segments_only(tmp_path):
    """Segments merged away leave dead journal lines while the run goes on; at close the journal is rewritten to
    the live segments (each line about a model's worth of metadata), and every entry still reads back."""
    from insitu.cache.journal import journal_name, read as read_journal
    from insitu.cache.store import COMPACT_AFTER

    path = tmp_path / "c"
    n = COMPACT_AFTER + 3  # one merge of COMPACT_AFTER segments while writing, then 3 small ones
    w = TemporalCache(path)
    for c in range(n):
        w.put("f", c, 0, *make_entry(c)[1:])
        w.flush()
    journal = path / journal_name(0)
    lines_before = len(list(read_journal(journal)))
    w.close()
    live = sorted(p.name for p in path.glob("*.h5"))
    lines = list(read_journal(journal))
    assert lines_before > len(live) and sorted(name for name, _, _ in lines) == live
    assert sum(len(rows) for _, _, rows in lines) == n
    with TemporalCache.open(path) as r:
        assert r.cycles("f") == list(range(n)) and r.verify() == []
        assert all(r.get("f", c, 0) == make_entry(c)[1] for c in range(n))
