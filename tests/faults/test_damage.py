"""Damaged caches: a lost marker is restored from the segments; what was not checked is said."""
from __future__ import annotations

from insitu.cache import TemporalCache
from insitu.cli import main
from support.cache_common import make_entry


def small_cache(path):
    """Cycles 1 and 2 of field 'f', 2 domains each, one segment file per cycle."""
    with TemporalCache(path) as cache:
        for c in (1, 2):
            for d in range(2):
                cache.put("f", c, d, *make_entry(10 * c + d, start=(6 * d, 0, 0))[1:])
            cache.flush()


def flip_entry(cache, cycle: int, entry: int) -> None:
    """16 flipped bytes in the model bytes of ``entry`` of the segment of ``cycle`` (written by small_cache)."""
    from support.cache_common import entry_file_offset

    (seg,) = [p for p in cache.glob(f"r00000-c{cycle:010d}-*.h5")]
    raw = bytearray(seg.read_bytes())
    at = entry_file_offset(seg, entry)
    raw[at + 20: at + 36] = bytes(b ^ 0xFF for b in raw[at + 20: at + 36])
    seg.write_bytes(bytes(raw))


def test_a_lost_marker_is_named_and_repaired_from_the_segments(tmp_path, capsys):
    path = tmp_path / "c"
    small_cache(path)
    (path / "insitu-cache.json").unlink()
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lost its insitu-cache.json marker" in err[0] and f"insitu verify {path} --repair" in err[0]
    assert main(["verify", str(path), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "restored insitu-cache.json" in out and "OK: 4 entries" in out
    with TemporalCache.open(path) as r:
        assert r.cycles("f") == [1, 2] and r.get("f", 2, 1) == make_entry(21, start=(6, 0, 0))[1]


def test_repair_refuses_a_folder_that_is_no_cache(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["verify", str(tmp_path), "--repair"]) == 2
    err = capsys.readouterr().err
    assert "cannot repair" in err and "no segment file" in err and "Traceback" not in err
    assert not (tmp_path / "insitu-cache.json").exists()


def test_info_says_the_data_was_not_checked(tmp_path, capsys):
    small_cache(tmp_path / "c")
    assert main(["info", str(tmp_path / "c")]) == 0
    assert "data not checked: `insitu verify" in capsys.readouterr().out


def test_replay_skips_a_damaged_cycle_and_says_which_and_why(tmp_path, monkeypatch, capsys):
    """A cycle with a damaged entry is not drawn from the remaining domains (wrong data shown as data)."""
    monkeypatch.chdir(tmp_path)
    small_cache(tmp_path / "c")
    flip_entry(tmp_path / "c", cycle=2, entry=0)
    assert main(["replay", "c", "--field", "f", "-o", "frames", "--size", "32x32"]) == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["f_000001.png"]
    lines = [ln for ln in captured.err.splitlines() if "error" in ln]
    assert len(lines) == 1 and "cycle 2 skipped" in lines[0] and "checksum mismatch" in lines[0]
    assert "1 damaged cycle(s) skipped: [2]" in captured.out


def test_af_export_skips_a_damaged_cycle_and_writes_the_others(tmp_path, monkeypatch, capsys):
    import numpy as np

    import insitu.runtime.embedded as runtime_mod
    from insitu.blueprint import uniform_domain
    from insitu.runtime import connect
    monkeypatch.chdir(tmp_path)
    small_cache(tmp_path / "c")
    flip_entry(tmp_path / "c", cycle=2, entry=1)
    runtime_mod.reset_process_state()
    rt = connect(prefer="embedded")
    rt.publish([uniform_domain(np.ones((4, 4, 4), np.float32), field="g", cycle=3)])
    runtime_mod._NAMESPACE["res"] = res = {}
    rt.execute([{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"source":
                 "import ascent_filters as af; res['r'] = af.export(field='f', cycles='all', cache='c', "
                 "output_dir='out', format='npy')"}}}}])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f_000001.npy"]
    errors = res["r"]["errors"]
    assert len(errors) == 1 and "cycle 2 skipped" in errors[0] and "domain 1" in errors[0]


def delta_cache(path):
    """Field 'f', one domain: cycle 1 a keyframe, cycles 2 and 3 temporal deltas of it (a chain 1 <- 2 <- 3)."""
    import numpy as np

    import inr
    from support.cache_common import make_model, make_report

    fp16 = make_model(1)
    base = inr.Model(fp16.config, fp16.params.astype(np.float32), fp16.value_range, fp16.grid_shape,
                     fp16.association, fp16.owned, 8)
    with TemporalCache(path) as cache:
        prev = base
        for c in (1, 2, 3):
            p = base.params.astype(np.float32)
            p[:: 7] += 0.01 * c
            m = inr.Model(base.config, p, base.value_range, base.grid_shape, base.association, base.owned, 8,
                          scales=base.scales) if c > 1 else base
            blob = m.to_bytes(base=prev) if c > 1 else m.to_bytes()
            from insitu.cache import EntryMeta
            meta = EntryMeta.from_model(m, make_report(c, len(blob), m.raw_bytes), start=(0, 0, 0),
                                        origin=(0, 0, 0), spacing=(1, 1, 1))
            cache.put("f", c, 0, blob, meta, base_cycle=c - 1 if c > 1 else None)
            cache.flush()
            prev = m


def test_a_delta_whose_base_is_damaged_names_the_base(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    delta_cache(tmp_path / "c")
    flip_entry(tmp_path / "c", cycle=1, entry=0)  # the keyframe every later cycle is a delta of
    assert main(["replay", "c", "--field", "f", "-o", "frames", "--size", "32x32"]) == 1
    captured = capsys.readouterr()
    assert not (tmp_path / "frames").exists() or not list((tmp_path / "frames").iterdir())
    lines = [ln for ln in captured.err.splitlines() if "skipped" in ln]
    assert len(lines) == 3
    assert "checksum mismatch" in lines[0] and "cycle 1 skipped" in lines[0]
    for cycle, line in zip((2, 3), lines[1:]):
        assert f"cycle {cycle} skipped" in line and "temporal delta whose base, cycle 1, is damaged" in line
    assert main(["export", "c", "--field", "f", "--cycle", "3", "-o", "three.npy"]) != 0
    err = capsys.readouterr().err
    assert "base, cycle 1, is damaged" in err and "Traceback" not in err


def test_a_grid_size_from_metadata_is_checked_before_it_is_allocated(tmp_path, monkeypatch, capsys):
    """An index that asks for a grid this machine cannot hold gets one line naming it, never a MemoryError."""
    import dataclasses

    monkeypatch.chdir(tmp_path)
    model, blob, meta = make_entry(1)
    huge = dataclasses.replace(meta, dims=(40_000, 40_000, 40_000))  # 256 TB of float32
    with TemporalCache(tmp_path / "c") as cache:
        cache.put("f", 1, 0, blob, huge)
    assert main(["export", "c", "--field", "f", "--cycle", "1", "-o", "one.npy"]) != 0
    err = capsys.readouterr().err
    assert "(40000, 40000, 40000) (z, y, x) needs 256.00 TB" in err and "memory available" in err
    assert "Traceback" not in err and "MemoryError" not in err
    assert main(["replay", "c", "--field", "f", "-o", "frames", "--size", "32x32"]) == 1
    err = capsys.readouterr().err
    assert "needs 256.00 TB" in err and "Traceback" not in err
