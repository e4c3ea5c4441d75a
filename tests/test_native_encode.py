"""The native hash-grid encoding equals the torch reference."""
import numpy as np
import pytest
import torch

import inr
from inr.backends.native_backend import encode as native_encode
from inr.hashgrid import LevelTables, encode as torch_encode


@pytest.mark.parametrize("cfg", [
    (4, 2, 19, 4, 1.5),
    (8, 2, 12, 8, 1.5),
    (6, 4, 8, 16, 2.0),
    (5, 1, 10, 3, 1.9),
    (3, 8, 6, 2, 3.0),
])
def test_native_encode_matches_torch(cfg):
    enc = inr.EncodingConfig(*cfg)
    rng = np.random.default_rng(int(sum(cfg) * 10))
    table = rng.normal(0, 1, (enc.n_entries, enc.n_features_per_level)).astype(np.float32)
    pts = rng.random((5000, 3), dtype=np.float32)
    pts[:8] = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 1], [0.25, 0.75, 1], [0, 1, 0], [1 / 3, 2 / 3, 1], [1, 1, 0]]
    ref = torch_encode(torch.from_numpy(pts), torch.from_numpy(table), LevelTables(enc)).numpy()
    got = native_encode(pts, table, enc)
    assert got.shape == ref.shape == (5000, enc.n_output_dims)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_native_encode_rejects_wrong_table():
    enc = inr.EncodingConfig(4, 2, 10, 4, 1.5)
    with pytest.raises(ValueError, match="table has"):
        native_encode(np.zeros((3, 3), np.float32), np.zeros(10, np.float32), enc)
