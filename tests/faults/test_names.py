"""Names are data: a field named like a path never writes outside the output folder given."""
from __future__ import annotations

import os

from insitu.cache import TemporalCache
from insitu.cli import main
from support.cache_common import make_entry


def cache_with_field(path, field: str) -> None:
    with TemporalCache(path) as cache:
        for c in (1, 2):
            cache.put(field, c, 0, *make_entry(c)[1:])


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_field_named_like_a_path_stays_in_the_output_folder(tmp_path, monkeypatch, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for field in ("../../x", "/tmp/insitu-escape-x", "a\nb"):
        cache_with_field(work / "c.cache", field)
        assert main(["replay", "c.cache", "--field", field, "-o", "frames", "--size", "32x32"]) == 0, \
            capsys.readouterr().err
        written = files_under(work / "frames")
        assert len(written) == 2 and all("/" not in w for w in written), written
        for p in (work / "frames").iterdir():
            p.unlink()
        import shutil

        shutil.rmtree(work / "c.cache")
    assert files_under(tmp_path) == []  # nothing above: the frames were removed, nothing else written
    assert not os.path.exists("/tmp/insitu-escape-x_000001.png")


def test_an_image_prefix_that_leaves_the_folder_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cache_with_field(tmp_path / "c.cache", "f")
    for prefix in ("../up_%04d", "/tmp/insitu-escape_%04d"):
        assert main(["replay", "c.cache", "--field", "f", "-o", "frames", "--size", "32x32",
                     "--prefix", prefix]) != 0
        err = capsys.readouterr().err
        assert "would write outside the output folder" in err and "Traceback" not in err
    assert not (tmp_path / "up_0001.png").exists() and not os.path.exists("/tmp/insitu-escape_0001.png")
