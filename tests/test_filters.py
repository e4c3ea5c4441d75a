"""ascent_filters entry points: parse, delegate, never raise; compress + export through the runtime."""
import math
import re

import numpy as np
import pytest

import insitu.runtime.embedded as runtime_mod
from insitu.filters import compress as compression
from insitu.filters.session import current
from insitu.blueprint import uniform_domain
from insitu.runtime import connect
from sims.analytic import gaussians


@pytest.fixture(autouse=True)
def clean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runtime_mod.reset_process_state()
    yield
    compression.close_all()
    current().previous.clear()


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


def test_a_nan_domain_is_cached_with_the_others(capsys):
    """A simulation blowing up is the event a reactive cache is for: the block is cached (tests/faults has the
    exact decode), and a note says how its NaN is kept."""
    current().messages.clear()  # a note is printed once per process: as if this were the run's first
    rt = connect(prefer="embedded")
    bad = np.ones((4, 4, 4), np.float32)
    bad[1, 1, 1] = np.nan
    good = gaussians((6, 6, 6))
    rt.publish([uniform_domain(bad, field="e", domain_id=0), uniform_domain(good, field="e", domain_id=1)])
    rt.execute(extract("import ascent_filters as af; r = af.compress(fields=['e'], ratio=2, max_steps=20)"))
    r = runtime_mod._NAMESPACE["r"]
    assert r["stats"]["blocks"] == 2 and r["errors"] == []
    assert "1 NaN/Inf sample(s) in a block (e.g. field 'e' domain 0" in capsys.readouterr().out


def test_outside_an_extract_returns_none(capsys):
    import ascent_filters as af
    import sys
    sys.modules.pop("ascent_extract", None)
    assert af.compress(fields=["e"]) is None
    assert "ascent_data() not found" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["param", "session"])
def test_cycle_budget_is_shared_by_the_blocks(how, monkeypatch):
    """A cycle budget of 0 s leaves each block its first check only; without one the fit runs its steps."""
    rt = connect(prefer="embedded")
    doms = [uniform_domain(gaussians((12, 12, 12), seed=d), field="e", cycle=1, domain_id=d) for d in range(3)]
    rt.publish(doms)
    budget = ", cycle_budget_s=0" if how == "param" else ""
    if how == "session":  # what a simulation sets (sims --fit-budget)
        monkeypatch.setattr(current(), "cycle_budget_s", 0.0)
    res = {}
    runtime_mod._NAMESPACE["res"] = res
    rt.execute(extract("import ascent_filters as af; res['r'] = af.compress(fields=['e'], ratio=4, max_steps=200, "
                       f"backend='native', cache='b.cache'{budget})"))
    rt.publish([uniform_domain(gaussians((12, 12, 12), seed=9), field="e", cycle=2, domain_id=9)])
    monkeypatch.setattr(current(), "cycle_budget_s", None)
    rt.execute(extract("import ascent_filters as af; af.compress(fields=['e'], ratio=4, max_steps=200, "
                       "backend='native', cache='b.cache', warm_start=False)"))
    current().flush_all()
    from insitu.cache import TemporalCache

    with TemporalCache.open("b.cache") as r:
        capped = [r.meta("e", 1, d).fit["steps"] for d in range(3)]
        free = r.meta("e", 2, 9).fit["steps"]
    assert res["r"]["errors"] == [] and max(capped) < 50 and free == 200


@pytest.mark.parametrize("kwargs, match", [
    ("device='gpu'", r"device='gpu' is invalid: valid choices are 'auto', 'cpu', 'cuda', 'cuda:N'"),
    ("device='cuda:x'", r"device='cuda:x' is invalid"),
    ("backend='native', device='cuda'", r"backend='native' runs on the CPU only"),
    ("backend='tcnn', device='cpu'", r"backend='tcnn' needs a GPU"),
    ("temporal='deltas'", r"temporal='deltas' is invalid: valid choices are \['none', 'delta'\]"),
    ("temporal='delta', param_bits=16", r"param_bits 4..8, not 16"),
    ("temporal='delta', warm_start=False", r"needs warm_start=True"),
    ("temporal='delta', keyframe_every=0", r"keyframe_every=0 must be a positive integer"),
])
def test_bad_compress_parameter_is_reported_with_choices(kwargs, match, capsys):
    rt = connect(prefer="embedded")
    rt.publish([uniform_domain(gaussians((6, 6, 6)), field="e")])
    rt.execute(extract(f"import ascent_filters as af; r = af.compress(fields=['e'], {kwargs})"))
    r = runtime_mod._NAMESPACE["r"]
    assert r["errors"] and not r.get("stats")
    assert re.search(match, r["errors"][0]), r["errors"][0]


def test_auto_device_is_the_cpu_without_a_gpu_or_for_native(monkeypatch):
    import torch

    p = compression.CompressParams.from_kwargs({"backend": "native"})
    assert compression.fit_device(p, None) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert compression.fit_device(compression.CompressParams.from_kwargs({}), None) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)

    class Comm:
        def Get_rank(self):
            return 3

    assert compression.fit_device(compression.CompressParams.from_kwargs({}), Comm()) == "cuda:1"
    assert compression.fit_device(compression.CompressParams.from_kwargs({"device": "cpu"}), Comm()) == "cpu"


def test_compress_without_a_ratio_searches_the_size_for_the_target(capsys):
    rt = connect(prefer="embedded")
    rt.publish([uniform_domain(gaussians((16, 18, 20)), field="e")])
    rt.execute(extract("import ascent_filters as af; "
                       "r = af.compress(fields=['e'], ratio=None, target_psnr=32, max_steps=300, backend='native')"))
    r = runtime_mod._NAMESPACE["r"]
    assert not r["errors"] and r["stats"]["psnr"][0] >= 32


def test_device_auto_on_a_node_without_gpu_does_not_import_torch():
    """Counting GPUs through torch costs seconds at the first cycle; a node without a GPU driver answers 'cpu'
    without it (and a node with one still asks torch)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import insitu.filters.compress as c\n"
            "c._gpu_device_files = lambda: {gpu}\n"
            "p = c.CompressParams.from_kwargs({{'fields': ['e'], 'backend': 'torch'}})\n"
            "print(c.fit_device(p, None), 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code.format(gpu=False)], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["cpu", "False"], out.stderr
    out = subprocess.run([sys.executable, "-c", code.format(gpu=True)], capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[1] == "True", out.stderr  # a driver is there: torch is asked


def test_a_block_coded_without_a_network_stays_so_and_searches_again_every_keyframe_interval(capsys, monkeypatch):
    """Noise is coded without a network; the next cycles code it the same way at once (no search), and the
    search for a network comes back after keyframe_every cycles, then twice that after a second search that found
    none."""
    import sys

    fit_module = sys.modules["inr.fit"]
    searches = []
    real = fit_module.smallest_for_psnr
    monkeypatch.setattr(fit_module, "smallest_for_psnr", lambda *a, **k: searches.append(1) or real(*a, **k))
    rng = np.random.default_rng(0)
    rt = connect(prefer="embedded")
    counts = []
    for c in range(10):
        noise = (gaussians((14, 16, 18)) + 0.03 * rng.standard_normal((14, 16, 18))).astype(np.float32)
        rt.publish([uniform_domain(noise, field="e", cycle=c)])
        rt.execute(extract("import ascent_filters as af; r = af.compress(fields=['e'], target_psnr=40, "
                           "keyframe_every=3, max_steps=300, backend='native')"))
        r = runtime_mod._NAMESPACE["r"]
        assert not r["errors"] and r["stats"]["predictive"] == 1 and r["stats"]["psnr"][0] >= 40
        counts.append(len(searches))
    # cycles 0, 3 and 9 (3 + 2 * 3) searched; the others went straight to the coder
    assert counts == [1, 1, 1, 2, 2, 2, 2, 2, 2, 3]
    assert "1 coded without a network: the predictive coder was smaller" in capsys.readouterr().out


def test_compress_prefer_speed_never_searches_a_network(capsys, monkeypatch):
    """prefer='speed': a smooth field whose first cycle would search for a network keeps the predictive coding
    on every cycle, keyframe intervals included; a wrong choice is reported naming the valid ones."""
    import sys

    fit_module = sys.modules["inr.fit"]
    trained = []
    real = fit_module._fit_planned
    monkeypatch.setattr(fit_module, "_fit_planned", lambda *a, **k: trained.append(1) or real(*a, **k))
    rt = connect(prefer="embedded")
    for c in range(5):
        rt.publish([uniform_domain(gaussians((24, 26, 28), shift=0.01 * c), field="e", cycle=c)])
        rt.execute(extract("import ascent_filters as af; r = af.compress(fields=['e'], target_psnr=40, "
                           "keyframe_every=2, prefer='speed', backend='native')"))
        r = runtime_mod._NAMESPACE["r"]
        assert not r["errors"] and r["stats"]["predictive"] == 1 and r["stats"]["psnr"][0] >= 40
    assert not trained  # no network trained, not even on the keyframe cycles
    assert "1 coded without a network: prefer='speed'" in capsys.readouterr().out
    import inr

    inr.fit(gaussians((24, 26, 28)), target_psnr=40, backend="native", prefer="size")
    assert trained  # the control: this field's predictive coding is above NETWORK_MIN_RATIO, 'size' searches
    rt.execute(extract("import ascent_filters as af; r = af.compress(fields=['e'], target_psnr=40, prefer='fast')"))
    assert runtime_mod._NAMESPACE["r"]["errors"]
    assert "prefer" in capsys.readouterr().err and "'size', 'speed'" in "".join(runtime_mod._NAMESPACE["r"]["errors"])


def test_a_rerun_into_the_same_folder_exports_only_its_own_timeline(tmp_path, capsys):
    # the first run leaves cycles 0..5; a second run (a new session) into the same folder writes 0..2 of another
    # field: its look-back 'last:2' is its own 1 and 2, not the earlier run's 4 and 5, which stay on disk
    from insitu.cache import TemporalCache

    def run(cycles, sign):
        rt = connect(prefer="embedded")
        for c in cycles:
            rt.publish([uniform_domain(sign * gaussians((10, 12, 14), shift=0.01 * c), field="e", cycle=c)])
            rt.execute(extract("import ascent_filters as af; af.compress(fields=['e'], target_psnr=40)"))
        return rt

    run(range(6), 1.0)
    compression.close_all()
    runtime_mod.reset_process_state()
    rt = run(range(3), -1.0)
    rt.execute(extract("import ascent_filters as af; af.export(field='e', cycles='last:2', format='npy')"))
    out = capsys.readouterr()
    assert "export: wrote 2 file(s)" in out.out and "from an earlier run" in out.err + out.out
    for c in (1, 2):
        got = np.load(tmp_path / "exports" / f"e_{c:06d}.npy")
        assert np.corrcoef(got.ravel(), gaussians((10, 12, 14), shift=0.01 * c).ravel())[0, 1] < -0.99
    assert not list((tmp_path / "exports").glob("e_00000[45].npy"))
    compression.close_all()
    assert TemporalCache.open(tmp_path / "run.cache").cycles("e") == list(range(6))  # nothing dropped


def _three_blocks_one_sharp(cycle=0):
    shape = (16, 18, 20)
    z, y, x = np.indices(shape)
    sharp = (np.sin(x * 1.3) * np.cos(y * 1.1) * np.sin(z * 0.9)).astype(np.float32)
    return [uniform_domain(gaussians(shape, seed=0), field="e", domain_id=0, cycle=cycle),
            uniform_domain(gaussians(shape, seed=1), field="e", domain_id=1, cycle=cycle),
            uniform_domain(sharp, field="e", domain_id=2, cycle=cycle)]


def test_a_sized_block_far_under_its_neighbours_is_fitted_again_larger(tmp_path, capsys, monkeypatch):
    # at ratio=30 a field of fine waves falls ~16 dB under the two smooth blocks beside it: the filter fits it again
    # with a model twice as large (ratio 15), keeps that better fit in the cache, and the summary says so and still
    # names it as low; the next cycle starts from that fit and tries no larger one (a hard block, not a cliff);
    # without the refit (threshold out of reach) the cache holds the first, worse fit
    from insitu.cache import TemporalCache

    def run(cache, cycles=1):
        rt = connect(prefer="embedded")
        raised = []
        for c in range(cycles):
            rt.publish(_three_blocks_one_sharp(c))
            rt.execute(extract("import ascent_filters as af; r = af.compress(fields=['e'], ratio=30, "
                               f"backend='native', max_steps=400, cache='{cache}')"))
            raised.append(runtime_mod._NAMESPACE["r"]["stats"]["raised"])
        first = dict(runtime_mod._NAMESPACE["r"]["stats"]) if cycles == 1 else None
        compression.close_all()
        return raised, first, TemporalCache.open(tmp_path / cache)

    raised_per_cycle, _, _ = run("two.cache", cycles=2)
    assert raised_per_cycle == [1, 0]
    runtime_mod.reset_process_state()
    _, stats, reader = run("raised.cache")
    out = capsys.readouterr().out
    assert stats["raised"] == 1 and "(1 with a larger model: far under their field's median)" in out
    assert "stayed low: 'e' domain 2" in out

    def ratio(cache, d):
        return cache.meta("e", 0, d).raw_bytes / len(cache.get("e", 0, d))

    assert abs(ratio(reader, 2) / (30 / compression.RAISE_FACTOR) - 1) < 0.15
    assert [ratio(reader, d) for d in (0, 1, 2)] == pytest.approx(stats["ratios"])
    raised = reader.meta("e", 0, 2).psnr
    runtime_mod.reset_process_state()
    monkeypatch.setattr(compression, "RAISE_BELOW_MEDIAN_DB", math.inf)
    _, stats, first = run("first.cache")
    assert stats["raised"] == 0 and abs(ratio(first, 2) / 30 - 1) < 0.15
    assert raised > first.meta("e", 0, 2).psnr + 3
