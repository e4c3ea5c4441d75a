"""The native backend: the C++ kernels of cpp/ (module ``inr._native``)."""
from __future__ import annotations

import numpy as np

from ..config import EncodingConfig


def level_arrays(enc: EncodingConfig) -> dict[str, np.ndarray]:
    """Per-level constants in the form the C++ kernels take (computed here, once)."""
    levels = range(enc.n_levels)
    return {
        "scale": np.array([enc.level_scale(l) for l in levels], dtype=np.float32),
        "resolution": np.array([enc.level_resolution(l) for l in levels], dtype=np.uint32),
        "size": np.array([enc.level_table_size(l) for l in levels], dtype=np.uint32),
        "offset": np.array(enc.level_offsets()[:-1], dtype=np.uint32),
        "dense": np.array([enc.level_is_dense(l) for l in levels], dtype=np.uint8),
    }


def encode(points: np.ndarray, table: np.ndarray, enc: EncodingConfig) -> np.ndarray:
    """Hash-grid encoding of ``points`` (N, 3) in [0, 1]^3 -> (N, levels*F), in C++."""
    from .. import _native

    return _native.hashgrid_encode(np.ascontiguousarray(points, dtype=np.float32),
                                   np.ascontiguousarray(table, dtype=np.float32).ravel(),
                                   enc.n_features_per_level, **level_arrays(enc))
