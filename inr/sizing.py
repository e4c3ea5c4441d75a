"""Size a model so that its stored bytes meet a compression ratio."""
from __future__ import annotations

import math

import numpy as np

from .config import EncodingConfig, NetworkConfig
from .errors import InrValueError

#: bytes of a stored model besides its fp16 parameters (prefix, JSON header, CRC), an upper bound.
MODEL_OVERHEAD_BYTES = 256


def _model_config():
    from .model import ModelConfig  # late import: model imports nothing from here

    return ModelConfig


def smallest_config():
    """The smallest model there is (used for constant blocks and unreachable ratios)."""
    ModelConfig = _model_config()
    return ModelConfig(EncodingConfig(2, 1, 3, 2, 2.0), NetworkConfig(16, 1))


def config_for_ratio(shape: tuple[int, ...], ratio: float, *, n_features_per_level: int = 2, strict: bool = True):
    """The largest default-shaped model whose stored bytes give at least ``ratio``:1.

    ``shape`` is the owned grid (z, y, x); raw size is 4 bytes per sample. The
    grid spans resolutions from 4 up to the block's longest axis over
    ``n_levels`` levels; the hash table size is the largest power of two that
    fits the byte budget after the MLP (16 neurons, 1 hidden layer; wider when
    the budget is large). When no model is small enough, raises
    :class:`InrValueError`, or with ``strict=False`` returns the smallest one.
    """
    ModelConfig = _model_config()
    if len(shape) != 3 or min(shape) < 1:
        raise InrValueError(f"shape={tuple(shape)} must be three positive sizes (z, y, x)")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)) \
            or not math.isfinite(ratio) or ratio < 1:
        raise InrValueError(f"ratio={ratio!r} is invalid: expected a number >= 1")
    raw = 4 * int(np.prod(shape))
    budget_params = int((raw / float(ratio) - MODEL_OVERHEAD_BYTES) // 2)
    finest = max(8, max(shape))
    neurons = 16 if budget_params < 200_000 else 32
    for n_levels in (16, 12, 8, 6, 4, 2):
        if n_levels == 16 and budget_params < 100_000 or n_levels == 12 and budget_params < 30_000:
            continue
        base = 4
        scale = (finest / base) ** (1.0 / max(1, n_levels - 1)) if n_levels > 1 else 2.0
        scale = min(max(scale, 1.05), 4.0)
        net = NetworkConfig(n_neurons=neurons, n_hidden_layers=1)
        mlp = net.n_params(n_levels * n_features_per_level)
        for log2_t in range(24, 3, -1):
            enc = EncodingConfig(n_levels, n_features_per_level, log2_t, base, round(scale, 4))
            if mlp + enc.n_params <= budget_params:
                return ModelConfig(enc, net)
    if not strict:
        return smallest_config()
    raise InrValueError(
        f"ratio={ratio} is too high for a block of shape {tuple(shape)}: "
        f"{raw} raw bytes leave no room for the smallest model; use a lower ratio"
    )
