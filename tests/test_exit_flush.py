"""A run that ends without closing anything still has every compressed entry on disk."""
import subprocess
import sys

from insitu.cache import TemporalCache

SCRIPT = """
import numpy as np, insitu.runtime as R
from insitu.blueprint import uniform_domain
rt = R.connect(prefer="embedded")
src = "import ascent_filters as af; af.compress(fields=['t'], ratio=8, cache='run.cache', max_steps=20)"
for cycle in (1, 2):
    rt.publish([uniform_domain(np.random.rand(12, 12, 12).astype(np.float32), field="t", cycle=cycle)])
    rt.execute([{"action": "add_extracts", "extracts": {"c": {"type": "python", "params": {"source": src}}}}])
"""


def test_entries_in_memory_are_flushed_at_exit(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    with TemporalCache.open(tmp_path / "run.cache") as reader:
        assert reader.cycles("t") == [1, 2] and reader.verify() == []
