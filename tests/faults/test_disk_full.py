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
