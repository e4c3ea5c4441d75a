"""A constant field is data, not an empty view: replay draws it and says once that it is constant."""
from __future__ import annotations

import numpy as np
from PIL import Image

import inr
from insitu.cache import EntryMeta, TemporalCache
from insitu.cli.command import main


def test_a_constant_field_is_drawn_and_named_once(tmp_path, capsys):
    values = np.full((12, 12, 12), 3.5, np.float32)
    model, report = inr.fit(values, ratio=20)
    with TemporalCache(tmp_path / "c") as cache:
        for cycle in (1, 2, 3):
            cache.put("p", cycle, 0, model.to_bytes(), EntryMeta.from_model(
                model, report, start=(0, 0, 0), origin=(0, 0, 0), spacing=(1, 1, 1), time=float(cycle)))
    assert main(["replay", str(tmp_path / "c"), "--field", "p", "--size", "64x64", "-o", str(tmp_path / "f")]) == 0
    err = capsys.readouterr().err
    assert "camera sees none" not in err
    assert err.count("is constant") == 1 and "3 cycle(s)" in err and "3.5" in err
    for cycle in (1, 2, 3):
        rgb = np.asarray(Image.open(tmp_path / "f" / f"p_{cycle:06d}.png"))
        assert (rgb.sum(-1) > 0).mean() > 0.05  # the block is on the picture
