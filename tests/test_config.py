"""Configs: tiny-cuda-nn JSON, parameter counts, hash indices."""
import math

import numpy as np
import pytest
import torch

import inr
from inr.hashgrid import LevelTables, level_lookup


def independent_count(n_levels, F, log2_t, base, s):
    """Parameter count straight from the HashGrid formulas (float32 scale)."""
    total = 0
    for level in range(n_levels):
        scale = np.float32(np.exp2(np.float32(level) * np.float32(np.log2(np.float32(s)))) * np.float32(base) - 1)
        res = math.ceil(float(scale)) + 1
        total += min(-(-res**3 // 8) * 8, 2**log2_t)
    return total * F


@pytest.mark.parametrize("cfg", [
    (4, 2, 19, 4, 1.5),      # all dense
    (8, 2, 12, 8, 1.5),      # mixed
    (6, 4, 8, 16, 2.0),      # all hashed
    (16, 2, 15, 16, 1.447),  # mixed, instant-ngp-like
    (3, 1, 10, 5, 1.3),
])
def test_param_count_matches_formulas(cfg):
    enc = inr.EncodingConfig(*cfg)
    assert enc.n_params == independent_count(*cfg)


def test_param_count_matches_tiny_cuda_nn_reference():
    # instant-ngp's NeRF grid (16 levels, 2^19, base 16, max res 2048): tiny-cuda-nn reports 12196240 params
    enc = inr.EncodingConfig(16, 2, 19, 16, math.exp(math.log(2048 / 16) / 15))
    assert enc.n_params == 12196240


def test_level_kinds():
    enc = inr.EncodingConfig(4, 2, 10, 4, 2.0)
    # resolutions 4, 8, 16, 32 -> 64, 512 dense; 4096, 32768 hashed into 1024
    assert [enc.level_resolution(l) for l in range(4)] == [4, 8, 16, 32]
    assert [enc.level_is_dense(l) for l in range(4)] == [True, True, False, False]
    assert [enc.level_table_size(l) for l in range(4)] == [64, 512, 1024, 1024]


def test_tcnn_json_round_trip():
    enc = inr.EncodingConfig(8, 4, 14, 8, 1.6)
    net = inr.NetworkConfig(32, 2)
    d = enc.to_tcnn()
    assert d["otype"] == "HashGrid" and d["log2_hashmap_size"] == 14
    assert inr.EncodingConfig.from_tcnn(d) == enc
    n = net.to_tcnn()
    assert n == {"otype": "FullyFusedMLP", "n_neurons": 32, "n_hidden_layers": 2,
                 "activation": "ReLU", "output_activation": "None"}
    assert inr.NetworkConfig.from_tcnn(n) == net
    cfg = inr.ModelConfig(enc, net)
    assert inr.ModelConfig.from_tcnn(cfg.to_tcnn()) == cfg


def test_tcnn_network_param_count_is_padded():
    net = inr.NetworkConfig(64, 2)
    # input 8 levels x 2 = 16 (no pad), output 1 -> 16: 64*16 + 64*64 + 16*64
    assert net.n_tcnn_params(16) == 64 * 16 + 64 * 64 + 16 * 64
    # input 6 x 1 = 6 -> padded to 16
    assert net.n_tcnn_params(6) == 64 * 16 + 64 * 64 + 16 * 64
    assert net.n_params(6) == 64 * 6 + 64 * 64 + 1 * 64


def test_hash_indices_of_hand_computed_points():
    # base 2, scale 2: level 0 scale 1 (res 2, 8 entries, dense); level 1 scale 3 (res 4, 64 > 16: hashed)
    enc = inr.EncodingConfig(2, 2, 4, 2, 2.0)
    tables = LevelTables(enc)
    x = torch.tensor([[0.5, 0.25, 1.0]])
    idx0, w0 = level_lookup(x, tables, 0)
    # level 0: pos = (1.0, 0.75, 1.5) -> cell (1, 0, 1), frac (0, .75, .5); corner 0 = 1 + 0*2 + 1*4
    assert int(idx0[0, 0]) == (1 + 0 * 2 + 1 * 4) % 8
    # corner 7 = cell (2, 1, 2): 2 + 2 + 8 = 12, wraps modulo the table size 8 (as tiny-cuda-nn does)
    assert int(idx0[0, 7]) == (2 + 1 * 2 + 2 * 4) % 8
    assert float(w0[0, 0]) == pytest.approx(1.0 * 0.25 * 0.5)
    assert float(w0.sum()) == pytest.approx(1.0)
    idx1, w1 = level_lookup(x, tables, 1)
    # level 1: pos = (2.0, 1.25, 3.5) -> cell (2, 1, 3); hashed, offset 8 entries after level 0
    h = (2 * 1) ^ ((1 * 2654435761) & 0xFFFFFFFF) ^ ((3 * 805459861) & 0xFFFFFFFF)
    assert int(idx1[0, 0]) == 8 + h % 16
    c5 = (3 * 1) ^ ((1 * 2654435761) & 0xFFFFFFFF) ^ ((4 * 805459861) & 0xFFFFFFFF)  # corner 5: x+1, z+1
    assert int(idx1[0, 5]) == 8 + c5 % 16


@pytest.mark.parametrize("kwargs, word", [
    ({"n_features_per_level": 3}, "n_features_per_level"),
    ({"n_levels": 0}, "n_levels"),
    ({"log2_hashmap_size": 40}, "log2_hashmap_size"),
    ({"per_level_scale": float("nan")}, "per_level_scale"),
])
def test_bad_encoding_config(kwargs, word):
    with pytest.raises(inr.InrValueError, match=word) as e:
        inr.EncodingConfig(**kwargs)
    assert isinstance(e.value, ValueError) and isinstance(e.value, inr.InrError)


def test_bad_network_config_names_valid_choices():
    with pytest.raises(inr.InrValueError, match=r"n_neurons=48.*\[16, 32, 64, 128\]"):
        inr.NetworkConfig(n_neurons=48)
    with pytest.raises(inr.InrValueError, match="activation"):
        inr.NetworkConfig(activation="Snake")


def test_config_for_ratio_meets_ratio():
    for shape, ratio in [((64, 64, 64), 100), ((32, 48, 40), 20), ((128, 128, 128), 100), ((16, 16, 16), 10)]:
        cfg = inr.config_for_ratio(shape, ratio)
        m = inr.Model(cfg, np.zeros(cfg.n_params, np.float16), (0.0, 1.0), shape, "vertex",
                      tuple((0, n) for n in shape))
        assert 4 * np.prod(shape) / len(m.to_bytes()) >= ratio
    with pytest.raises(inr.InrValueError, match="ratio"):
        inr.config_for_ratio((8, 8, 8), 1000)


def finest(cfg: inr.ModelConfig) -> float:
    e = cfg.encoding
    return e.base_resolution * e.per_level_scale ** (e.n_levels - 1)


def test_default_grid_goes_only_as_fine_as_the_budget_holds():
    # a few thousand parameters: the finest level is far coarser than the block, ~0.85 cbrt(parameters)
    for shape, ratio in [((64, 64, 64), 100), ((64, 64, 64), 300), ((64, 64, 128), 100), ((128, 128, 128), 100)]:
        cfg = inr.config_for_ratio(shape, ratio)
        budget = (4 * np.prod(shape) / ratio - inr.sizing.MODEL_OVERHEAD_BYTES)  # 8-bit parameters: a byte each
        assert finest(cfg) < max(shape) / 2
        assert finest(cfg) == pytest.approx(inr.sizing.FINEST_PER_CBRT_PARAM * budget ** (1 / 3), rel=0.02)
    # a budget larger than the block's samples: the finest level is the block's own resolution
    assert finest(inr.config_for_ratio((32, 32, 32), 2)) == pytest.approx(32, rel=0.02)
    # a tiny budget: 6 levels, none coarser than the minimum
    small = inr.config_for_ratio((64, 64, 64), 1000)
    assert small.encoding.n_levels <= 6 and finest(small) >= inr.sizing.MIN_FINEST_RESOLUTION * 0.98
