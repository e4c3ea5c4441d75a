"""Parameter quantisation + zstd (model format v3), v1 and v2 still readable, honest sizes."""
import json
import struct
import zlib

import numpy as np
import pytest

import inr
from inr.model import MAGIC, _PREFIX
from inr.quantize import VALID_PARAM_BITS, param_groups, quantize_params
from inr.sizing import MODEL_OVERHEAD_BYTES, param_section_bytes
from sims.analytic import sphere_front

CFG = inr.ModelConfig(inr.EncodingConfig(6, 2, 10, 4, 1.5), inr.NetworkConfig(16, 2))


def params(seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.3, CFG.n_params)
    p[-200:] = rng.uniform(-1e-6, 1e-6, 200)  # the last level barely trained
    return p.astype(np.float16)


def model(bits, seed=0):
    return inr.Model(CFG, params(seed), (-2.0, 3.5), (9, 10, 11), "vertex", ((0, 9), (0, 10), (0, 11)), bits)


@pytest.mark.parametrize("bits", VALID_PARAM_BITS)
def test_round_trip_is_exact_and_idempotent(bits):
    m = model(bits)
    blob = m.to_bytes()
    back = inr.Model.from_bytes(blob)
    assert back.param_bits == bits
    assert np.array_equal(back.params.view(np.uint16), m.params.view(np.uint16))
    assert back.to_bytes() == blob  # reading and writing again changes nothing
    assert np.array_equal(back.decode(backend="torch"), m.decode(backend="torch"))
    assert np.array_equal(quantize_params(m.params, CFG, bits).view(np.uint16), m.params.view(np.uint16))


@pytest.mark.parametrize("bits", [b for b in VALID_PARAM_BITS if b < 16])
def test_quantisation_error_is_half_a_step_per_group(bits):
    p = params().astype(np.float32)
    q = quantize_params(p, CFG, bits).astype(np.float32)
    groups = param_groups(CFG)
    assert not groups[len(CFG.network.layer_shapes(CFG.encoding.n_output_dims)) - 1][1]  # output layer: float16
    n_levels = sum(1 for sl, _ in groups) - len(CFG.network.layer_shapes(CFG.encoding.n_output_dims))
    assert n_levels == CFG.encoding.n_levels
    for sl, quantised in groups:
        g, h = p[sl], q[sl]
        if not quantised:
            assert np.array_equal(h, g.astype(np.float16).astype(np.float32))
            continue
        step = np.abs(g).max() / (2 ** (bits - 1) - 1)
        if step < 2.0 ** -23:
            assert np.all(h == 0)  # an untrained level is pruned to zeros
            continue
        assert np.abs(h - g).max() <= 0.5 * step * 1.01 + 1e-3 * np.abs(g).max()
        assert len(np.unique(h)) <= 2 ** bits - 1


def test_sizes_shrink_with_bits_and_are_counted_honestly():
    sizes = {b: len(model(b).to_bytes()) for b in VALID_PARAM_BITS}
    assert sizes[8] < 0.6 * sizes[16]
    assert sizes[4] < sizes[6] < sizes[8]
    for b in (8, 16):  # 8 and 16 bits: the section estimate is an upper bound
        assert sizes[b] <= param_section_bytes(CFG, b) + MODEL_OVERHEAD_BYTES


def test_fit_reports_the_stored_quantised_model_and_meets_the_ratio():
    v = sphere_front((24, 24, 24))
    for bits in (8, 16):
        m, rep = inr.fit(v, ratio=20, max_steps=100, backend="native", param_bits=bits)
        blob = m.to_bytes()
        assert rep.param_bits == bits == m.param_bits
        assert rep.stored_bytes == len(blob) and rep.ratio == pytest.approx(v.nbytes / len(blob))
        assert 0.9 * 20 <= rep.ratio <= 1.5 * 20  # near the asked ratio (within 10 % is the aim, on real data)
        again = inr.Model.from_bytes(blob).decode(backend="native")
        assert inr.psnr(v, again) == pytest.approx(rep.psnr, abs=1e-9)


def test_eight_bits_beat_float16_at_equal_ratio():
    v = sphere_front((32, 32, 32))
    kw = dict(ratio=40, max_steps=400, backend="native", batch_size=1 << 13)
    _, r8 = inr.fit(v, param_bits=8, **kw)
    _, r16 = inr.fit(v, param_bits=16, **kw)
    assert r8.ratio >= 0.9 * 40 and r16.ratio >= 0.9 * 40  # the asked ratio, within 10 %
    assert r8.psnr > r16.psnr, (r8, r16)


def v1_bytes(m):
    """A model written the way format version 1 did."""
    e, n = m.config.encoding, m.config.network
    header = {"v": 1, "enc": [e.n_levels, e.n_features_per_level, e.log2_hashmap_size, e.base_resolution,
                              e.per_level_scale], "net": [n.n_neurons, n.n_hidden_layers, n.activation,
                                                          n.output_activation],
              "range": list(m.value_range), "grid": list(m.grid_shape), "assoc": m.association,
              "owned": [v for b in m.owned for v in b], "np": int(m.params.size), "dtype": "f16"}
    h = json.dumps(header, separators=(",", ":")).encode()
    body = _PREFIX.pack(MAGIC, 1, len(h)) + h + m.params.astype("<f2").tobytes()
    return body + struct.pack("<I", zlib.crc32(body))


def v2_bytes(m):
    """A quantised model written the way format version 2 did: JSON header, float32 scales, zstd always."""
    from inr.quantize import encode_params

    h = dict(m._header(), v=2)
    section = encode_params(m.params, m.config, m.param_bits, m.scales)
    h.update(pb=len(section), rb=0, eb=None)
    hb = json.dumps(h, separators=(",", ":")).encode()
    body = _PREFIX.pack(MAGIC, 2, len(hb)) + hb + section
    return body + struct.pack("<I", zlib.crc32(body))


def test_version_2_bytes_still_read_and_version_3_is_smaller():
    for bits in (8, 16):
        m = model(bits)
        old = v2_bytes(m)
        back = inr.Model.from_bytes(old)
        assert back.param_bits == bits and np.array_equal(back.params.view(np.uint16), m.params.view(np.uint16))
        assert (back.value_range, back.grid_shape, back.owned, back.config) == \
            (m.value_range, m.grid_shape, m.owned, m.config)
        assert len(old) - len(m.to_bytes()) >= 150  # the JSON header alone was ~200 bytes


def test_a_small_model_stores_little_besides_its_parameters():
    """Format 3: prefix, binary header and CRC under 40 bytes; 2-byte scales; a small section without zstd."""
    from inr.quantize import group_sizes
    from inr.sizing import smallest_config

    cfg = inr.ModelConfig(inr.EncodingConfig(6, 2, 5, 4, 1.1635), inr.NetworkConfig(16, 1))
    p = np.random.default_rng(1).normal(0, 0.3, cfg.n_params).astype(np.float16)
    for assoc, owned in (("vertex", ((1, 33), (1, 33), (0, 33))), ("element", ((0, 34), (1, 34), (1, 33)))):
        m = inr.Model(cfg, p, (0.25, 1.5), (34, 34, 34), assoc, owned, 8)
        blob = m.to_bytes()
        n_groups, n_q, n_kept = group_sizes(cfg)
        assert len(blob) <= 40 + 2 * n_groups + n_q + 2 * n_kept
        back = inr.Model.from_bytes(blob)
        assert (back.association, back.owned, back.value_range, back.config) == (assoc, owned, (0.25, 1.5), cfg)
        assert np.array_equal(back.params.view(np.uint16), m.params.view(np.uint16))
    const = inr.Model(smallest_config(), np.zeros(0), (2.5, 2.5), (5, 6, 7), "vertex", ((0, 5), (0, 6), (0, 7)))
    blob = const.to_bytes()
    assert len(blob) <= 30 and inr.Model.from_bytes(blob).decode()[0, 0, 0] == np.float32(2.5)
    wide = inr.Model(smallest_config(), np.zeros(0), (0.1, 0.1), (5, 6, 7), "vertex", ((0, 5), (0, 6), (0, 7)))
    assert inr.Model.from_bytes(wide.to_bytes()).value_range == (0.1, 0.1)  # not a float32: stored as a double


def test_version_1_bytes_still_read():
    m = model(16)
    back = inr.Model.from_bytes(v1_bytes(m))
    assert back.param_bits == 16 and back.residual is None
    assert np.array_equal(back.params.view(np.uint16), m.params.view(np.uint16))
    assert back.to_bytes()[4:6] == struct.pack("<H", inr.model.FORMAT_VERSION)


def test_bad_param_bits_and_bad_sections_raise():
    with pytest.raises(inr.InrValueError, match=r"param_bits=3.*valid choices are \[4, 5, 6, 7, 8, 16\]"):
        model(3)
    with pytest.raises(inr.InrValueError, match="param_bits"):
        inr.fit(np.random.default_rng(0).random((6, 6, 6)), param_bits=12)
    blob = model(8).to_bytes()
    # format 3: the second flag byte holds param_bits; a section one byte short no longer holds the parameters
    for body, pattern in ((blob[:7] + bytes([(blob[7] & 0xE0) | 9]) + blob[8:-4], "dtype 'q9' unknown"),
                          (blob[:-5], "parameter section")):
        with pytest.raises(inr.ModelFormatError, match=pattern):
            inr.Model.from_bytes(body + struct.pack("<I", zlib.crc32(body)))
