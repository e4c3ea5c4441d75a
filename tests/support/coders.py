"""A check shared by the tests of the residual codes' two coders (inr.entropy and inr.table_coding)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from inr import entropy


def same_on_both_sides(monkeypatch, encode: Callable[[np.ndarray, int], bytes],  # type: ignore[no-untyped-def]
                       decode: Callable[[bytes, int], np.ndarray], codes: np.ndarray) -> bytes:
    """One coder's ``encode(codes, threads)`` and ``decode(blob, threads)``: two threads, one and the pure-Python
    reference (the native module switched off) write the same bytes; the native decoder reads them back on 1, 2
    and 4 threads, the reference on one. Returns the bytes."""
    blob = encode(codes, 2)
    assert encode(codes, 1) == blob  # any number of threads: the same bytes
    for threads in (1, 2, 4):
        assert np.array_equal(decode(blob, threads), codes)
    with monkeypatch.context() as m:
        m.setattr(entropy, "_native", lambda: None)
        assert encode(codes, 1) == blob
        assert np.array_equal(decode(blob, 1), codes)
    return blob
