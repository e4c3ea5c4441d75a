"""Disk full: the run summary is still printed, saying what could not be written."""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import resource, signal, sys
    from insitu.cache import TemporalCache
    from insitu.filters.report import summarize
    from support.cache_common import make_entry
    out = sys.argv[1]
    with TemporalCache(out + "/run.cache") as cache:
        for c in (1, 2):
            cache.put("f", c, 0, *make_entry(c)[1:])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))  # "the disk is full" from here on
    doc, lines = summarize(out, [{"cycle": 1, "sim_s": 0.1, "insitu_s": 0.1, "fit_s": None}], ranks=1)
    print("\\n".join(lines))
""")


def test_the_summary_is_printed_when_its_files_cannot_be_written(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "field 'f': 2 cycles cached" in proc.stdout
    assert "could not write" in proc.stdout and "summary.json" in proc.stdout


FILTERS = textwrap.dedent("""
    import resource, signal, sys
    import insitu.runtime.embedded as runtime_mod
    from insitu.blueprint import uniform_domain
    from insitu.runtime import connect
    from sims.analytic import gaussians
    out = sys.argv[1]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG
    rt = connect(prefer="embedded")
    runtime_mod._NAMESPACE["res"] = res = {}
    for cycle, field in ((1, "e"), (2, "g")):
        if cycle == 2:   # "the disk is full" from here on
            resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        rt.publish([uniform_domain(gaussians((16, 16, 16), seed=cycle), field=field, cycle=cycle)])
        rt.execute([{"action": "add_extracts", "extracts": {
            "c": {"type": "python", "params": {"source": "import ascent_filters as af; "
                  f"af.compress(fields=[{field!r}], ratio=8, max_steps=30, cache={out + '/c'!r})"}},
            "r": {"type": "python", "params": {"source": "import ascent_filters as af; "
                  f"res[{field!r}] = af.render(field={field!r}, cache={out + '/c'!r}, output_dir={out + '/img'!r})"}},
            "e": {"type": "python", "params": {"source": "import ascent_filters as af; "
                  f"res['e{cycle}'] = af.render(field='e', cache={out + '/c'!r}, output_dir={out + '/img2'!r})"}}}}])
    for key in ("e", "g", "e2"):
        print(key, "->", res[key]["errors"], res[key].get("notes"))
""")


def test_filters_say_what_a_full_disk_did(tmp_path):
    """Entries whose write failed are not 'missing'; an image that cannot be written is one line naming it."""
    proc = subprocess.run([sys.executable, "-c", FILTERS, str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = dict(line.split(" -> ", 1) for line in proc.stdout.splitlines() if " -> " in line)
    assert out["e"].startswith("[]")  # before the disk filled up, all is well
    # 'g' was compressed but its segment could not be written: kept in memory and retried, not "not cached"
    assert "has nothing on disk" in out["g"] and "retried at the next flush" in out["g"]
    assert "cached fields" not in out["g"]
    # rendering 'e' (on disk) now fails to write its picture: one line naming the file, no traceback
    assert "could not write" in out["e2"] and "e_000001.png" in out["e2"] and "Traceback" not in out["e2"]
    # the entries lost at exit are reported in one line each, never as a warning with its source line
    assert "Traceback" not in proc.stderr and "RuntimeWarning" not in proc.stderr
    assert "entries that could not be written to disk (disk full?): they are lost" in proc.stderr


def test_a_write_behind_that_fails_warns_in_the_callers_thread(tmp_path, monkeypatch):
    """The write-behind thread keeps its warnings for the next call: a warning raised on a thread would meet no
    ``catch_warnings`` of the filter and print with its source line."""
    import warnings

    import insitu.cache.store as store
    from insitu.cache import TemporalCache
    from support.cache_common import make_entry

    with TemporalCache(tmp_path / "c") as cache:
        cache.put("f", 1, 0, *make_entry(1)[1:])

        def full(path, data):
            raise OSError(28, "No space left on device", str(path))

        monkeypatch.setattr(store, "atomic_write", full)
        with warnings.catch_warnings(record=True) as on_thread:
            warnings.simplefilter("always")
            cache.flush_behind()
            cache._behind.join()  # the thread has met the full disk; nothing may have been printed or raised
        assert on_thread == []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert cache.unwritten("f") == 1
        assert any("could not write" in str(w.message) and "No space left" in str(w.message) for w in caught)
        monkeypatch.undo()
        assert cache.flush() == 0  # retried: nothing lost
