"""Model bytes, decode/sample, tiny-cuda-nn interchange."""
import struct
import zlib

import numpy as np
import pytest

import inr
from inr import layout
from inr.model import MAGIC


def random_model(seed=0, shape=(9, 10, 11), association="vertex", owned=None):
    cfg = inr.ModelConfig(inr.EncodingConfig(6, 2, 10, 4, 1.5), inr.NetworkConfig(16, 2))
    rng = np.random.default_rng(seed)
    params = rng.normal(0, 0.3, cfg.n_params).astype(np.float16)
    owned = owned or tuple((0, n) for n in shape)
    return inr.Model(cfg, params, (-2.0, 3.5), shape, association, owned)


def test_bytes_round_trip_decodes_bit_identically():
    m = random_model(owned=((1, 8), (0, 10), (2, 11)), association="element")
    blob = m.to_bytes()
    assert blob[:4] == MAGIC
    m2 = inr.Model.from_bytes(blob)
    assert m2.config == m.config and m2.owned == m.owned and m2.association == "element"
    assert np.array_equal(m2.params.view(np.uint16), m.params.view(np.uint16))
    a, b = m.decode(backend="torch"), m2.decode(backend="torch")
    assert a.shape == (7, 10, 9) and a.dtype == np.float32
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    assert m2.to_bytes() == blob


def test_decode_equals_sample_at_grid_points():
    m = random_model()
    grid = m.decode(backend="torch")
    pts = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [5 / 10, 3 / 9, 4 / 8]], np.float32)
    got = m.sample(pts, backend="torch")
    assert got == pytest.approx([grid[0, 0, 0], grid[-1, -1, -1], grid[4, 3, 5]], rel=1e-5, abs=1e-6)


def test_tcnn_params_round_trip():
    m = random_model()
    t = m.to_tcnn_params()
    assert t.size == layout.n_tcnn_params(m.config.encoding, m.config.network)
    # network first: input layer 16 x 12 padded to 16 x 16 with zero columns
    first = t[: 16 * 16].reshape(16, 16)
    assert np.all(first[:, 12:] == 0)
    assert np.array_equal(first[:, :12], m.params[: 16 * 12].astype(np.float32).reshape(16, 12))
    # the tables come last, unchanged
    assert np.array_equal(t[-m.config.encoding.n_params:], m.params[-m.config.encoding.n_params:].astype(np.float32))
    back = inr.Model.from_tcnn_params(t, m.config, value_range=m.value_range, grid_shape=m.grid_shape)
    assert np.array_equal(back.params, m.params)


def tcnn_or_skip():
    err = inr.backends.tcnn_import_error()
    if err is not None:
        pytest.skip(f"tiny-cuda-nn comparison needs tinycudann on a CUDA machine: {err}")
    import tinycudann
    import torch
    return tinycudann, torch


def test_tcnn_network_matches_torch_reference():
    tcnn, torch = tcnn_or_skip()
    m = random_model()
    net = tcnn.NetworkWithInputEncoding(3, 1, m.config.encoding.to_tcnn(), m.config.network.to_tcnn())
    with torch.no_grad():
        net.params.copy_(torch.from_numpy(m.to_tcnn_params()).to(net.params))
    pts = np.random.default_rng(1).random((4096, 3), dtype=np.float32)
    ref = inr.get_backend("torch").evaluate(m.config.encoding, m.config.network, m.params.astype(np.float32), pts)
    with torch.no_grad():
        got = net(torch.from_numpy(pts).cuda()).float().cpu().numpy()[:, 0]
    assert np.abs(got - ref).max() <= 2e-2 * max(1.0, np.abs(ref).max())  # tcnn runs in fp16


def tamper(blob: bytes, at: int, value: int) -> bytes:
    b = bytearray(blob)
    b[at] = value
    return bytes(b)


def test_corrupt_and_truncated_bytes_raise():
    blob = random_model().to_bytes()
    for bad in (blob[:10], blob[:-1], blob[: len(blob) // 2], tamper(blob, len(blob) // 2, blob[len(blob) // 2] ^ 0xFF)):
        with pytest.raises(inr.ModelFormatError) as e:
            inr.Model.from_bytes(bad)
        assert isinstance(e.value, ValueError)
    with pytest.raises(inr.ModelFormatError, match="magic"):
        inr.Model.from_bytes(b"XXXX" + blob[4:])


def test_unknown_format_version_raises_naming_supported():
    blob = random_model().to_bytes()
    body = blob[:4] + struct.pack("<H", 99) + blob[6:-4]
    bad = body + struct.pack("<I", zlib.crc32(body))
    with pytest.raises(inr.ModelFormatError, match=r"format_version 99.*\[1, 2, 3, 4\]"):
        inr.Model.from_bytes(bad)


def test_sample_rejects_bad_points():
    m = random_model()
    with pytest.raises(inr.InrValueError, match="points"):
        m.sample(np.zeros((4, 2)))
    with pytest.raises(inr.InrValueError, match=r"\[0, 1\]"):
        m.sample(np.full((1, 3), 1.5))


def test_backend_switch_rejects_unknown_and_unavailable():
    with pytest.raises(inr.InrValueError, match="valid choices"):
        random_model().decode(backend="jax")
    with pytest.raises(inr.BackendUnavailableError):
        random_model().decode(backend="tcnn")  # needs CUDA
