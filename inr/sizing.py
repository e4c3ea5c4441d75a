"""Size a model so that its stored bytes meet a compression ratio."""
from __future__ import annotations

import math

import numpy as np

from .config import EncodingConfig, ModelConfig, NetworkConfig
from .errors import InrValueError

#: bytes of a stored model besides its parameter section (prefix, JSON header, CRC, zstd frame), an upper bound.
MODEL_OVERHEAD_BYTES = 300
#: the finest level's resolution is this times the cube root of the parameter budget (at least
#: MIN_FINEST_RESOLUTION, at most the block's longest axis): a grid only as fine as the budget can hold
#: without heavy hash collisions. Measured (benchmarks/shape_sweep.py, docs/model_shape.md): on 64^3
#: blocks at ratios 20-1000 this beat a finest level at the block's resolution by 1-11 dB at equal bytes.
FINEST_PER_CBRT_PARAM = 0.85
MIN_FINEST_RESOLUTION = 8
#: below this many parameters 6 levels beat 8 (ratio 1000 on 64^3: +2 to +11 dB at equal bytes)
SIX_LEVELS_BELOW_PARAMS = 1200


def smallest_config() -> ModelConfig:
    """The smallest model there is (used for constant blocks and unreachable ratios)."""
    return ModelConfig(EncodingConfig(2, 1, 3, 2, 2.0), NetworkConfig(16, 1))


def param_section_bytes(config: ModelConfig, param_bits: int) -> int:
    """Bytes of a model's parameter section before entropy coding (an upper bound after it, for 8 and 16 bits).

    For 4..7 bits the int8 codes are counted at ``param_bits / 8`` bytes each: zstd
    gets close to that on trained parameters, but it is an estimate, not a bound.
    """
    from .quantize import check_param_bits, group_sizes

    bits = check_param_bits(param_bits)
    if bits == 16:
        return 2 * config.n_params
    n_groups, n_q, n_kept = group_sizes(config)
    return 4 * n_groups + int(math.ceil(n_q * bits / 8)) + 2 * n_kept


def config_for_ratio(shape: tuple[int, ...], ratio: float, *, n_features_per_level: int = 2,
                     param_bits: int | None = None, strict: bool = True) -> ModelConfig:
    """The largest default-shaped model whose stored bytes give at least ``ratio``:1.

    ``shape`` is the owned grid (z, y, x); raw size is 4 bytes per sample;
    ``param_bits`` the storage of the parameters (default
    :data:`inr.quantize.DEFAULT_PARAM_BITS`; see :func:`param_section_bytes`). The
    grid spans resolutions from 4 up to :func:`finest_resolution` over
    ``n_levels`` levels (16, 12, 8 or 6 by budget); the hash table size is the
    largest power of two that fits the byte budget after the MLP (16 neurons,
    1 hidden layer; wider when the budget is large). When no model is small
    enough, raises :class:`InrValueError`, or with ``strict=False`` returns the
    smallest one.
    """
    from .quantize import DEFAULT_PARAM_BITS, check_param_bits

    bits = check_param_bits(DEFAULT_PARAM_BITS if param_bits is None else param_bits)
    if len(shape) != 3 or min(shape) < 1:
        raise InrValueError(f"shape={tuple(shape)} must be three positive sizes (z, y, x)")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)) \
            or not math.isfinite(ratio) or ratio < 1:
        raise InrValueError(f"ratio={ratio!r} is invalid: expected a number >= 1")
    raw = 4 * int(np.prod(shape))
    budget_bytes = raw / float(ratio) - MODEL_OVERHEAD_BYTES
    budget_params = int(budget_bytes // (2 if bits == 16 else bits / 8))  # what picks the shape
    finest = finest_resolution(shape, budget_params)
    neurons = 16 if budget_params < 200_000 else 32
    for n_levels in (16, 12, 8, 6, 4, 2):
        if n_levels == 16 and budget_params < 100_000 or n_levels == 12 and budget_params < 30_000 \
                or n_levels == 8 and budget_params < SIX_LEVELS_BELOW_PARAMS:
            continue
        base = 4
        scale = (finest / base) ** (1.0 / max(1, n_levels - 1)) if n_levels > 1 else 2.0
        scale = min(max(scale, 1.05), 4.0)
        net = NetworkConfig(n_neurons=neurons, n_hidden_layers=1)
        mlp = net.n_params(n_levels * n_features_per_level)
        for log2_t in range(24, 3, -1):
            enc = EncodingConfig(n_levels, n_features_per_level, log2_t, base, round(scale, 4))
            if mlp + enc.n_params <= budget_params and param_section_bytes(ModelConfig(enc, net), bits) <= budget_bytes:
                return ModelConfig(enc, net)
    if not strict:
        return smallest_config()
    raise InrValueError(
        f"ratio={ratio} is too high for a block of shape {tuple(shape)}: "
        f"{raw} raw bytes leave no room for the smallest model; use a lower ratio"
    )


def finest_resolution(shape: tuple[int, ...], budget_params: int) -> float:
    """Resolution of the finest hash-grid level for a block of ``shape`` and ``budget_params`` parameters.

    ``FINEST_PER_CBRT_PARAM * budget_params ** (1/3)``, between
    :data:`MIN_FINEST_RESOLUTION` and the block's longest axis: a level as fine
    as the block itself with a few thousand parameters is almost all hash
    collisions, and training spends them on noise.
    """
    top = max(MIN_FINEST_RESOLUTION, max(shape))
    return min(top, max(MIN_FINEST_RESOLUTION, FINEST_PER_CBRT_PARAM * max(budget_params, 1) ** (1.0 / 3.0)))
