"""Parameter quantisation and entropy coding of a model's stored parameters.

A model's flat parameters (see :mod:`inr.layout`) fall into groups: each MLP
weight matrix and each hash-grid level's table. With ``param_bits`` b < 16,
every group except the MLP's output layer is quantised uniformly and
symmetrically to b bits::

    scale = float32(max |g| / (2^(b-1) - 1)),   q = rint(g / scale),   g' = float16(float32(q) * scale)

The output layer (``n_neurons`` weights) stays float16: its errors reach the
output undamped (measured: 8-bit output weights cost 2-3 dB on a sharp front,
8-bit hidden weights and tables 0.1-0.2 dB). A group whose scale would be
below 2^-23 (all its values under ~1.5e-5, e.g. an unused level) is stored as
zeros: this keeps the round trip exact in float16. ``param_bits=16`` stores
every parameter as float16 (lossless for a float16 model).

Stored section (then zstd-compressed as one frame)::

    float32 scale x n_quantised_groups | int8 q of the quantised groups (layout order)
    | float16 of the unquantised groups (layout order)

Quantisation is a projection: ``dequantize(quantize(p))`` is a fixed point,
so a model's bytes do not change when it is read and written again.
"""
from __future__ import annotations

import numpy as np

from .errors import InrValueError, ModelFormatError

#: bit depths a model's parameters may be stored at (16: float16, no quantisation).
VALID_PARAM_BITS = (4, 5, 6, 7, 8, 16)
#: the default, chosen by measurement (docs/rate_distortion.md): at equal stored bytes 8-bit
#: parameters beat float16 by 4-5 dB; 7 bits or fewer lose more to rounding than they gain in size.
DEFAULT_PARAM_BITS = 8
#: zstd level of the parameter section (models are small: the highest levels cost milliseconds).
ZSTD_LEVEL = 19
_MIN_SCALE = 2.0 ** -23  # below it float16 subnormal spacing could move a value by half a step


def check_param_bits(bits: object) -> int:
    """``bits`` as an int, or an :class:`InrValueError` listing the valid choices."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or int(bits) not in VALID_PARAM_BITS:
        raise InrValueError(f"param_bits={bits!r} is invalid: valid choices are {list(VALID_PARAM_BITS)}")
    return int(bits)


def param_groups(config) -> list[tuple[slice, bool]]:
    """(slice of the flat parameters, quantised?) per group, in layout order."""
    enc, net = config.encoding, config.network
    out, at = [], 0
    shapes = net.layer_shapes(enc.n_output_dims)
    for i, (o, n_in) in enumerate(shapes):
        out.append((slice(at, at + o * n_in), i < len(shapes) - 1))
        at += o * n_in
    f = enc.n_features_per_level
    for a, b in zip(enc.level_offsets()[:-1], enc.level_offsets()[1:]):
        out.append((slice(at + a * f, at + b * f), True))
    return out


def _quantise(params: np.ndarray, config, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scales float32, q int8 of the quantised groups, float16 values of the others)."""
    p = np.asarray(params, dtype=np.float32).ravel()
    qmax = 2 ** (bits - 1) - 1
    scales, qs, keep = [], [], []
    for sl, quantised in param_groups(config):
        g = p[sl]
        if not quantised:
            keep.append(g.astype(np.float16))
            continue
        m = float(np.max(np.abs(g))) if g.size else 0.0
        s = np.float32(m / qmax)
        if not np.isfinite(s) or s < _MIN_SCALE:
            s = np.float32(0.0)
            q = np.zeros(g.size, np.int8)
        else:
            q = np.clip(np.rint(g.astype(np.float64) / np.float64(s)), -qmax, qmax).astype(np.int8)
        scales.append(s)
        qs.append(q)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return np.array(scales, np.float32), cat(qs, np.int8), cat(keep, np.float16)


def _assemble(config, scales: np.ndarray, q: np.ndarray, kept: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(n, np.float16)
    iq = ik = ig = 0
    for sl, quantised in param_groups(config):
        size = sl.stop - sl.start
        if quantised:
            out[sl] = (q[iq:iq + size].astype(np.float32) * scales[ig]).astype(np.float16)
            iq += size
            ig += 1
        else:
            out[sl] = kept[ik:ik + size]
            ik += size
    return out


def quantize_params(params: np.ndarray, config, bits: int) -> np.ndarray:
    """The float16 parameters a model stored at ``bits`` decodes with (a projection: idempotent)."""
    bits = check_param_bits(bits)
    p = np.asarray(params)
    if bits == 16:
        return p.astype(np.float16).ravel()
    scales, q, kept = _quantise(p, config, bits)
    return _assemble(config, scales, q, kept, p.size)


def encode_params(params: np.ndarray, config, bits: int) -> bytes:
    """The stored (zstd-compressed) parameter section of a model at ``bits``."""
    import zstandard

    bits = check_param_bits(bits)
    if bits == 16:
        raw = np.asarray(params).astype("<f2").tobytes()
    else:
        scales, q, kept = _quantise(params, config, bits)
        raw = scales.astype("<f4").tobytes() + q.tobytes() + kept.astype("<f2").tobytes()
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)


def decode_params(blob: bytes, config, bits: int, n_params: int) -> np.ndarray:
    """Inverse of :func:`encode_params`: float16 parameters; :class:`ModelFormatError` on bad bytes."""
    import zstandard

    try:
        raw = zstandard.ZstdDecompressor().decompress(bytes(blob))
    except zstandard.ZstdError as exc:
        raise ModelFormatError(f"model parameter section is not a valid zstd frame: {exc}") from exc
    if bits == 16:
        if len(raw) != 2 * n_params:
            raise ModelFormatError(f"model parameter section holds {len(raw)} bytes, expected {2 * n_params}")
        return np.frombuffer(raw, dtype="<f2").astype(np.float16)
    groups = param_groups(config)
    n_groups = sum(1 for _, qz in groups if qz)
    n_q = sum(sl.stop - sl.start for sl, qz in groups if qz)
    n_kept = n_params - n_q
    expected = 4 * n_groups + n_q + 2 * n_kept
    if len(raw) != expected:
        raise ModelFormatError(f"model parameter section holds {len(raw)} bytes, expected {expected}")
    scales = np.frombuffer(raw, "<f4", n_groups, 0)
    q = np.frombuffer(raw, np.int8, n_q, 4 * n_groups)
    kept = np.frombuffer(raw, "<f2", n_kept, 4 * n_groups + n_q)
    return _assemble(config, scales, q, kept, n_params)
