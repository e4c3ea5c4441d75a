"""The xarray backend: ``xr.open_dataset(cache, engine="insitu")`` and ``insitu.open``, decoded lazily per cycle."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

xr = pytest.importorskip("xarray")

from support.cache_common import make_entry  # noqa: E402
from support.series_common import TIMES, damage, write_cache  # noqa: E402

import insitu  # noqa: E402
from insitu.cache import TemporalCache  # noqa: E402
from insitu.cache.grid import CycleDamagedError  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return write_cache(tmp_path_factory.mktemp("xr") / "run.cache")


@pytest.fixture
def decodes(monkeypatch) -> list:
    """Every (field, cycle) the backend decodes from now on."""
    import insitu.xarray_backend as backend

    seen: list = []
    original = backend.decode_grid

    def counting(reader, field, cycle, **kw):
        seen.append((field, cycle))
        return original(reader, field, cycle, **kw)

    monkeypatch.setattr(backend, "decode_grid", counting)
    return seen


def expected(cache: Path, field: str, cycle: int) -> np.ndarray:
    with TemporalCache.open(cache) as r:
        return r.reconstruct(field, cycle)


def test_engine_is_registered_and_knows_a_cache_folder(cache, tmp_path):
    engine = xr.backends.list_engines()["insitu"]
    assert engine.guess_can_open(str(cache)) and not engine.guess_can_open(str(tmp_path))


def test_open_decodes_nothing_and_lays_out_fields_times_and_coordinates(cache, decodes):
    ds = xr.open_dataset(cache, engine="insitu")
    assert decodes == []
    assert ds["energy"].dims == ("cycle", "z", "y", "x") and ds["energy"].shape == (3, 10, 12, 14)
    assert ds["energy"].dtype == np.float32 and ds["energy"].attrs["association"] == "vertex"
    assert list(ds["cycle"].values) == [0, 5, 9] and list(ds["time"].values) == [TIMES[c] for c in (0, 5, 9)]
    # vertices at origin + i * spacing; the element field's cell centres half a cell further, on their own axes
    assert np.allclose(ds["x"], np.arange(14) * 0.125) and np.allclose(ds["z"], np.arange(10) * 0.5)
    assert ds["pressure"].dims == ("cycle", "z_pressure", "y_pressure", "x_pressure")
    assert np.allclose(ds["x_pressure"], (np.arange(14) + 0.5) * 0.125)
    with TemporalCache.open(cache) as r:
        for c in (0, 5, 9):
            rows = [r.index.row(("energy", c, d)) for d in r.domains("energy", c)]
            ratio = sum(row.meta.raw_bytes for row in rows) / sum(row.nbytes for row in rows)
            assert ds["ratio_energy"].sel(cycle=c) == pytest.approx(ratio)
            assert ds["psnr_energy"].sel(cycle=c) == pytest.approx(min(row.meta.psnr for row in rows))
    assert decodes == []
    ds.close()


def test_reading_one_cycle_decodes_that_cycle_once(cache, decodes):
    ds = xr.open_dataset(cache, engine="insitu")
    one = ds["energy"].isel(cycle=1).values
    assert decodes == [("energy", 5)] and np.array_equal(one, expected(cache, "energy", 5))
    plane = ds["energy"].sel(cycle=5).isel(z=3).values  # the same cycle again: kept, not decoded again
    assert decodes == [("energy", 5)] and np.array_equal(plane, one[3])
    both = ds["pressure"].sel(cycle=[0, 9]).isel(x_pressure=slice(2, 5)).values
    assert sorted(decodes[1:]) == [("pressure", 0), ("pressure", 9)]
    assert np.array_equal(both[1], expected(cache, "pressure", 9)[:, :, 2:5])
    assert ds["energy"].isel(cycle=slice(0, 0)).values.shape == (0, 10, 12, 14)
    assert len(decodes) == 3
    picked = ds["energy"].isel(cycle=[2], z=[1, 3], x=[0, 5]).values  # each list picks along its own axis
    assert np.array_equal(picked[0], expected(cache, "energy", 9)[[1, 3]][:, :, [0, 5]])
    assert decodes[3:] == [("energy", 9)]
    ds.close()


def test_insitu_open_is_the_same_dataset(cache):
    with insitu.open(cache, fields=["energy"]) as ds:
        assert list(ds.data_vars) == ["energy"]
        assert np.array_equal(ds["energy"].sel(cycle=9).values, expected(cache, "energy", 9))
    with pytest.raises(ValueError, match=r"fields \['rho'\] are not in the cache"):
        insitu.open(cache, fields=["rho"])


def test_a_damaged_cycle_names_itself_when_read_and_the_others_read(tmp_path):
    cache = write_cache(tmp_path / "c")
    damage(cache, "energy", 9, 1)
    with insitu.open(cache) as ds:  # opening reads the index only: it works
        with pytest.raises(CycleDamagedError, match=r"field 'energy' cycle 9 cannot be decoded: .*domain 1"):
            ds["energy"].sel(cycle=9).values
        assert np.array_equal(ds["energy"].sel(cycle=5).values, expected(cache, "energy", 5))


def test_fields_on_other_cycles_get_their_own_cycle_axis(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as c:
        for cycle in (1, 2):
            c.put("a", cycle, 0, *make_entry(cycle, time=cycle / 10)[1:])
        c.put("b", 2, 0, *make_entry(7, time=0.2)[1:])
    with insitu.open(path) as ds:
        assert ds["a"].dims == ("cycle", "z", "y", "x") and ds["b"].dims == ("cycle_b", "z", "y", "x")
        assert list(ds["cycle_b"].values) == [2] and list(ds["time_b"].values) == [0.2]
        assert list(ds["time"].values) == [0.1, 0.2]


def test_a_grid_that_changes_keeps_the_latest_grids_cycles_with_one_warning(tmp_path):
    path = tmp_path / "c"
    with TemporalCache(path) as c:
        c.put("a", 1, 0, *make_entry(1, owned_shape=(4, 5, 6))[1:])
        for cycle in (2, 3):
            c.put("a", cycle, 0, *make_entry(cycle)[1:])
    with pytest.warns(UserWarning, match=r"field 'a': 1 cycle\(s\) \[1\] are on another grid") as seen:
        ds = insitu.open(path)
    assert len(seen) == 1 and list(ds["cycle"].values) == [2, 3] and ds["a"].shape == (2, 6, 7, 8)
    ds.close()
