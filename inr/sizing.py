"""Size a model so that its stored bytes meet a compression ratio."""
from __future__ import annotations

import math

import numpy as np

from .config import EncodingConfig, ModelConfig, NetworkConfig
from .errors import InrValueError

#: bytes of a stored model besides its parameter section (format 3: prefix, binary header, CRC, and the zstd frame
#: of a section large enough to compress), an upper bound; format 2's JSON header took ~300
MODEL_OVERHEAD_BYTES = 48
#: the finest level's resolution is this times the cube root of the parameter budget (at least
#: MIN_FINEST_RESOLUTION, at most the block's longest axis): a grid only as fine as the budget can hold
#: without heavy hash collisions. Measured (benchmarks/shape_sweep.py, docs/model_shape.md): on 64^3
#: blocks at ratios 20-1000 this beat a finest level at the block's resolution by 1-11 dB at equal bytes.
FINEST_PER_CBRT_PARAM = 0.85
MIN_FINEST_RESOLUTION = 8
#: below this many parameters 6 levels beat 8 (ratio 1000 on 64^3: +2 to +11 dB at equal bytes)
SIX_LEVELS_BELOW_PARAMS = 1200
#: below this many parameters one feature per level (and twice the table) beats two: on the eight 34^3 blocks
#: of a 64^3 field, 280 parameters with one feature gave 38.5-46.8 dB, 352 with two 36.7-42.3 dB (docs/model_shape.md)
ONE_FEATURE_BELOW_PARAMS = 600
#: no sized model has fewer levels than this: on the eight 33^3 blocks of hydrogen (64^3), 6 levels x 8 entries
#: (160 parameters) gave 39-43 dB over 4 seeds where 4 levels (112-136 parameters) gave 19-25 dB and 2 levels 23 dB
#: (issue 27's cliff at ratios 600-1100): the 16-neuron MLP (the smallest there is) takes most of such a model, and
#: fewer than 6 inputs leave it nothing to shape. A ratio past the smallest such model stores that model, off the
#: asked ratio, and the report says by how much (``FitReport.ratio_off``)
MIN_SIZED_LEVELS = 6
#: another level count than the default's is taken only when it fills the byte budget by more than this much better
FILL_TOLERANCE = 0.08
#: zstd's gain on 8-bit codes of trained parameters: none below ~1500 of them, then about 4 % less per doubling
#: (measured on 48^3 fits: 1.0 at 1k parameters, 0.96 at 3.6k, 0.88 at 11k)
CODE_GAIN_FROM, CODE_GAIN_PER_DOUBLING, CODE_GAIN_MIN = 1500, 0.04, 0.75


def smallest_config() -> ModelConfig:
    """The smallest model there is (used for constant blocks and unreachable ratios)."""
    return ModelConfig(EncodingConfig(2, 1, 3, 2, 2.0), NetworkConfig(16, 1))


def smallest_sized_config() -> ModelConfig:
    """The smallest model sizing gives (for an unreachable ratio): :data:`MIN_SIZED_LEVELS` one-feature levels of
    8 entries from resolution 2 to 8, the smallest MLP."""
    return ModelConfig(EncodingConfig(MIN_SIZED_LEVELS, 1, 3, 2, round(4.0 ** (1 / (MIN_SIZED_LEVELS - 1)), 4)),
                       NetworkConfig(16, 1))


def param_section_bytes(config: ModelConfig, param_bits: int) -> int:
    """Bytes of a model's parameter section before entropy coding (an upper bound after it, for 8 and 16 bits:
    a section that zstd does not shrink is stored as it is).

    For 4..7 bits the int8 codes are counted at ``param_bits / 8`` bytes each: zstd
    gets close to that on trained parameters, but it is an estimate, not a bound.
    """
    from .quantize import check_param_bits, group_sizes

    bits = check_param_bits(param_bits)
    if bits == 16:
        return 2 * config.n_params
    n_groups, n_q, n_kept = group_sizes(config)
    return 2 * n_groups + int(math.ceil(n_q * bits / 8)) + 2 * n_kept


def estimated_section_bytes(config: ModelConfig, param_bits: int) -> int:
    """What a trained model's parameter section is expected to take (zstd's gain on the codes included, see
    :data:`CODE_GAIN_PER_DOUBLING`): what sizing aims at, so that the stored ratio is the asked one."""
    from .quantize import group_sizes

    if param_bits == 16:
        return 2 * config.n_params
    n_groups, n_q, n_kept = group_sizes(config)
    gain = 1.0 - CODE_GAIN_PER_DOUBLING * max(0.0, math.log2(max(n_q, 1) / CODE_GAIN_FROM))
    return 2 * n_groups + int(math.ceil(n_q * param_bits / 8 * max(gain, CODE_GAIN_MIN))) + 2 * n_kept


def _default_levels(budget_params: int) -> int:
    for n_levels in (16, 12, 8, 6):
        if not (n_levels == 16 and budget_params < 100_000 or n_levels == 12 and budget_params < 30_000
                or n_levels == 8 and budget_params < SIX_LEVELS_BELOW_PARAMS):
            return n_levels
    return 6


def _coarsest(table_entries: int) -> int:
    """Base resolution: 4, or less where the table cannot hold the coarsest level densely. A coarsest level
    hashed into a table smaller than itself is what left half the 32^3 blocks at ~25 dB (issue 27): every
    level collides, and no level carries the block's large-scale shape."""
    for base in (4, 3, 2):
        if base ** 3 <= table_entries:
            return base
    return 2


def config_for_ratio(shape: tuple[int, ...], ratio: float, *, n_features_per_level: int = 2,
                     param_bits: int | None = None, strict: bool = True) -> ModelConfig:
    """The default-shaped model whose stored bytes come closest to ``ratio``:1 without exceeding its budget.

    ``shape`` is the owned grid (z, y, x); raw size is 4 bytes per sample;
    ``param_bits`` the storage of the parameters (default
    :data:`inr.quantize.DEFAULT_PARAM_BITS`); the bytes are those expected after
    entropy coding (:func:`estimated_section_bytes`) plus :data:`MODEL_OVERHEAD_BYTES`. The
    grid spans resolutions from 4 (less for a table too small to hold that level densely) up to
    :func:`finest_resolution`; the level count is 16, 12, 8 or 6 by budget, or up to
    two fewer or more where that fills the budget more closely (the table size
    is a power of two: alone it sizes models in steps of 2x); the hash table size is the
    largest power of two that fits the byte budget after the MLP (16 neurons,
    1 hidden layer; wider when the budget is large); one feature per level below
    :data:`ONE_FEATURE_BELOW_PARAMS` parameters. When no model is small
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
    features = 1 if budget_params < ONE_FEATURE_BELOW_PARAMS else n_features_per_level
    net = NetworkConfig(n_neurons=neurons, n_hidden_layers=1)
    default_levels = _default_levels(budget_params)
    top = default_levels if budget_params < SIX_LEVELS_BELOW_PARAMS else min(16, default_levels + 2)
    fits: dict[int, tuple[int, ModelConfig]] = {}  # the largest model of each level count, and its bytes
    for n_levels in range(max(MIN_SIZED_LEVELS, default_levels - 2), top + 1):
        mlp = net.n_params(n_levels * features)
        for log2_t in range(24, 2, -1):
            base = min(_coarsest(1 << log2_t), max(2, int(finest)))
            scale = (finest / base) ** (1.0 / max(1, n_levels - 1)) if n_levels > 1 else 2.0
            scale = min(max(scale, 1.05), 4.0)
            cfg = ModelConfig(EncodingConfig(n_levels, features, log2_t, base, round(scale, 4)), net)
            size = estimated_section_bytes(cfg, bits)
            if mlp + cfg.encoding.n_params <= budget_params and size <= budget_bytes:
                fits[n_levels] = (size, cfg)
                break
    if fits:
        # the default's level count unless another fills the budget more than FILL_TOLERANCE better
        most = max(size for size, _ in fits.values())
        if default_levels in fits and fits[default_levels][0] >= (1 - FILL_TOLERANCE) * most:
            return fits[default_levels][1]
        return max(fits.values(), key=lambda f: (f[0], -f[1].encoding.n_levels))[1]
    if not strict:
        return smallest_sized_config()
    raise InrValueError(
        f"ratio={ratio} is too high for a block of shape {tuple(shape)}: "
        f"{raw} raw bytes leave no room for the smallest model; use a lower ratio"
    )


#: a sized model whose expected bytes fill the budget to at least this fraction is taken as it is (its stored ratio
#: is then within 10 % of the asked one, with a margin for zstd doing better than expected); one that fills less is
#: traded for the next size up, whose smallest table entries are then zeroed until the bytes fit
#: (:func:`inr.quantize.zero_smallest_entries`). Thinning costs quality: on a 32^3 front at 40:1, 3648 parameters
#: thinned to the budget gave 40.0 dB where 3104 unthinned ones (7 % under it) gave 43.5 dB; so it is the last
#: resort, for sizes more than 10 % apart (issue 27: stored ratios came out 1.1-1.8x the asked one)
UNDER_FILL_OK = 0.93
#: the next size up is taken only when its expected bytes are at most this many times the budget
MAX_OVERSIZE = 1.35


def expected_bytes(config: ModelConfig, param_bits: int) -> int:
    """What a trained model of ``config`` is expected to store: its section after zstd plus the overhead."""
    return estimated_section_bytes(config, param_bits) + MODEL_OVERHEAD_BYTES


def config_near_ratio(shape: tuple[int, ...], ratio: float, *, param_bits: int | None = None) -> ModelConfig:
    """The model a fit asked for ``ratio`` trains: :func:`config_for_ratio`'s when that fills the budget to
    :data:`UNDER_FILL_OK`, else the next size up (within :data:`MAX_OVERSIZE` of the budget), which the fit then
    thins to the budget. Model sizes come in steps of up to 2x (power-of-two tables); this is what lets the stored
    ratio land within 10 % of the asked one. Never raises for an unreachable ratio: the smallest model then."""
    from .quantize import DEFAULT_PARAM_BITS

    bits = DEFAULT_PARAM_BITS if param_bits is None else param_bits
    under = config_for_ratio(shape, ratio, param_bits=bits, strict=False)
    budget = 4 * int(np.prod(shape)) / float(ratio)
    have = expected_bytes(under, bits)
    if have >= UNDER_FILL_OK * budget or bits == 16:  # float16 sections are not thinned (no codes to zero)
        return under
    for grow in (1.1, 1.2, 1.3, 1.45, 1.6, 1.8, 2.0, 2.3):
        if ratio / grow < 1:
            break
        bigger = config_for_ratio(shape, ratio / grow, param_bits=bits, strict=False)
        size = expected_bytes(bigger, bits)
        if size > have:
            return bigger if size <= MAX_OVERSIZE * budget else under
    return under


def finest_resolution(shape: tuple[int, ...], budget_params: int) -> float:
    """Resolution of the finest hash-grid level for a block of ``shape`` and ``budget_params`` parameters.

    ``FINEST_PER_CBRT_PARAM * budget_params ** (1/3)``, between
    :data:`MIN_FINEST_RESOLUTION` and the block's longest axis: a level as fine
    as the block itself with a few thousand parameters is almost all hash
    collisions, and training spends them on noise.
    """
    top = max(MIN_FINEST_RESOLUTION, max(shape))
    return min(top, max(MIN_FINEST_RESOLUTION, FINEST_PER_CBRT_PARAM * max(budget_params, 1) ** (1.0 / 3.0)))

