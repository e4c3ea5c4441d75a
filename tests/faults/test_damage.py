"""Damaged caches: a lost marker is restored from the segments; what was not checked is said."""
from __future__ import annotations

from insitu.cache import TemporalCache
from insitu.cli import main
from support.cache_common import make_entry


def small_cache(path):
    with TemporalCache(path) as cache:
        for c in (1, 2):
            for d in range(2):
                cache.put("f", c, d, *make_entry(10 * c + d)[1:])


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
        assert r.cycles("f") == [1, 2] and r.get("f", 2, 1) == make_entry(21)[1]


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
