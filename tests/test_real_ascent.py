"""The compress filter inside real Ascent (runs only where LLNL Ascent's Python module imports)."""
import pytest

from insitu.runtime.ascent_bridge import ascent_import_error
from insitu.blueprint import uniform_domain
from sims.analytic import gaussians

ERR = ascent_import_error()


@pytest.mark.skipif(ERR is not None, reason=f"real Ascent is not importable here ({ERR}); "
                                            "the embedded runtime and the Ascent-like harness cover the contract")
def test_compress_inside_real_ascent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from insitu.filters import compress as compression
    from insitu.cache import TemporalCache
    from insitu.runtime import connect

    rt = connect(prefer="ascent")
    acts = [{"action": "add_extracts", "extracts": {"inr": {"type": "python", "params": {
        "source": "import ascent_filters as af; af.compress(fields=['e'], ratio=4, max_steps=200, cache='run.cache')"}}}}]
    for c in range(3):
        rt.publish([uniform_domain(gaussians((12, 12, 12), shift=0.01 * c), field="e", cycle=c)])
        rt.execute(acts)
    rt.close()
    compression.close_all()
    assert TemporalCache.open("run.cache").cycles("e") == [0, 1, 2]
