"""ascent_filters entry points: parse, delegate, never raise; compress + export through the runtime."""
import numpy as np
import pytest

import insitu.runtime as runtime_mod
from insitu import compression
from insitu.blueprint import uniform_domain
from insitu.runtime import connect
from sims.analytic import gaussians


@pytest.fixture(autouse=True)
def clean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runtime_mod.reset_process_state()
    yield
    compression.close_all()
    compression._PREVIOUS.clear()


def extract(src):
    return [{"action": "add_extracts", "extracts": {"x": {"type": "python", "params": {"source": src}}}}]


def test_compress_then_export_last_cycles(tmp_path, capsys):
    rt = connect(prefer="embedded")
    fields = {}
    for c in range(4):
        f = gaussians((10, 12, 14), shift=0.01 * c)
        fields[c] = f
        rt.publish([uniform_domain(f, field="e", cycle=c, spacing=(0.5, 0.5, 0.5))])
        rt.execute(extract("import ascent_filters as af; "
                           "af.compress(fields=['e'], ratio=2, target_psnr=30, max_steps=300, backend='torch')"))
    rt.execute(extract("import ascent_filters as af; af.export(field='e', cycles='last:2', format='npy', "
                       "backend='torch')"))
    out = capsys.readouterr()
    assert "compress: 1 blocks" in out.out and "export: wrote 2 file(s)" in out.out
    for c in (2, 3):
        got = np.load(tmp_path / "exports" / f"e_{c:06d}.npy")
        assert got.shape == (10, 12, 14)
        err = np.sqrt(np.mean((got - fields[c]) ** 2))
        assert 20 * np.log10(np.ptp(fields[c]) / err) >= 29.5
    assert not (tmp_path / "exports" / "e_000001.npy").exists()


def test_unknown_kwarg_lists_valid_ones_and_never_raises(capsys):
    rt = connect(prefer="embedded")
    rt.publish([uniform_domain(np.ones((4, 4, 4), np.float32), field="e")])
    rt.execute(extract("import ascent_filters as af; r = af.compress(fields=['e'], ration=3)"))
    assert rt.info()["status"]["message"] == "completed"  # the filter reported, did not raise
    err = capsys.readouterr().err
    assert "unknown parameter(s) ['ration']" in err and "ratio:" in err and "target_psnr:" in err
    assert runtime_mod._NAMESPACE["r"]["errors"]


def test_nan_domain_skipped_rest_goes_on(capsys):
    rt = connect(prefer="embedded")
    bad = np.ones((4, 4, 4), np.float32)
    bad[1, 1, 1] = np.nan
    good = gaussians((6, 6, 6))
    rt.publish([uniform_domain(bad, field="e", domain_id=0), uniform_domain(good, field="e", domain_id=1)])
    rt.execute(extract("import ascent_filters as af; r = af.compress(fields=['e'], ratio=2, max_steps=20)"))
    r = runtime_mod._NAMESPACE["r"]
    assert r["stats"]["blocks"] == 1 and "NaN" in r["errors"][0] and "domain 0" in r["errors"][0]


def test_outside_an_extract_returns_none(capsys):
    import ascent_filters as af
    import sys
    sys.modules.pop("ascent_extract", None)
    assert af.compress(fields=["e"]) is None
    assert "ascent_data() not found" in capsys.readouterr().err
