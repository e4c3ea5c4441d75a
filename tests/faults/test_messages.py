"""Fail loud, once: a YAML error names the line of its cause; an error that repeats every cycle is counted."""
from __future__ import annotations

import numpy as np

import insitu.runtime.embedded as runtime_mod
from insitu.blueprint import uniform_domain
from insitu.runtime import connect

UNCLOSED = """-
  action: "add_extracts"
  extracts:
    inr:
      type: "python"
      params:
        source: "import ascent_filters as af; af.compress(fields=['e']
-
  action: "add_queries"
"""


def test_an_unclosed_quote_is_named_at_its_line_and_the_error_is_printed_once(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(UNCLOSED)
    runtime_mod.reset_process_state()
    rt = connect(prefer="embedded")
    for cycle in range(1, 6):
        rt.publish([uniform_domain(np.ones((4, 4, 4), np.float32), field="e", cycle=cycle)])
        rt.execute(str(path))
        assert rt.info()["status"]["message"] == "failed"
    err = [ln for ln in capsys.readouterr().err.splitlines() if "bad.yaml" in ln]
    assert "line 7 opens a quote it does not close" in err[0]
    # 5 cycles: the full line once, then one line saying it repeats; info() still has each cycle's error
    assert len(err) == 2 and "the same error 2 times so far" in err[1]
    assert len(rt.info()["status"]["errors"]) == 1
