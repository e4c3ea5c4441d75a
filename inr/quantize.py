"""Parameter quantisation and entropy coding of a model's stored parameters.

A model's flat parameters (see :mod:`inr.layout`) fall into groups: each MLP
weight matrix and each hash-grid level's table. With ``param_bits`` b < 16,
every group except the MLP's output layer is quantised uniformly and
symmetrically to b bits::

    scale = bf16(float32(max |g| / (2^(b-1) - 1))),   q = rint(g / scale),   g' = float16(float32(q) * scale)

(``bf16``: rounded to the nearest bfloat16, 8 significant bits, so that a scale stores in 2 bytes; models written before
that have float32 scales, and keep them.)

The output layer (``n_neurons`` weights) stays float16: its errors reach the
output undamped (measured: 8-bit output weights cost 2-3 dB on a sharp front,
8-bit hidden weights and tables 0.1-0.2 dB). A group whose scale would be
below 2^-23 (all its values under ~1.5e-5, e.g. an unused level) is stored as
zeros: this keeps the round trip exact in float16. ``param_bits=16`` stores
every parameter as float16 (lossless for a float16 model).

Stored section (then zstd-compressed as one frame)::

    scale x n_quantised_groups | int8 q of the quantised groups (layout order)
    | float16 of the unquantised groups (layout order)

where a scale is a float32, or (model format 3, when every scale is a bfloat16) the upper 16 bits of
one; model format 3 also stores a section without zstd when that is smaller (small models).

Quantisation is a projection: ``dequantize(quantize(p))`` is a fixed point,
so a model's bytes do not change when it is read and written again.

Temporal deltas. A model may also live on another model's grid (its
``scales``): then ``q = rint(g / scale)`` may reach ``chain_limit(b)`` =
4 (2^(b-1) - 1), and the q of the stored section are int16 when any exceeds
int8 (the width follows from the section's length). On a shared grid the
parameters of two models differ by whole steps, so a delta section stores
only the change ``q - q_base``, group by group as a whole multiple of the
group's step count ``m`` (the greatest common divisor of the group's moves;
``m = 0`` for a group that did not move), and the output layer's float16
values::

    u16 m x n_quantised_groups | int8/int16 (q - q_base) / m of the quantised groups
    | float16 of the unquantised groups

Coarse moves (see :mod:`inr.delta_search`) are so stored as small integers.
A delta section written before the multipliers existed (no ``dm`` in the model
header) is the same without the leading ``m``: every ``m`` is 1.

``rint(p / scale)`` recovers q exactly from the float16 parameters for
``|q| <= chain_limit``: float16 keeps 11 significant bits, an error of at most
1/4 step there.
"""
from __future__ import annotations

import functools

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
    return list(_param_groups(config))


@functools.lru_cache(maxsize=256)
def _param_groups(config) -> tuple[tuple[slice, bool], ...]:  # once per config: every model read asks for it
    enc, net = config.encoding, config.network
    out, at = [], 0
    shapes = net.layer_shapes(enc.n_output_dims)
    for i, (o, n_in) in enumerate(shapes):
        out.append((slice(at, at + o * n_in), i < len(shapes) - 1))
        at += o * n_in
    f = enc.n_features_per_level
    for a, b in zip(enc.level_offsets()[:-1], enc.level_offsets()[1:]):
        out.append((slice(at + a * f, at + b * f), True))
    return tuple(out)


def chain_limit(bits: int) -> int:
    """The largest |q| a parameter may reach on a shared (delta) grid of ``bits`` bits."""
    return 4 * (2 ** (bits - 1) - 1)


def grid_scales(params: np.ndarray, config, bits: int) -> np.ndarray:
    """The float32 step of each quantised group (layout order) for ``params`` at ``bits`` bits: max |g| / qmax."""
    p = np.asarray(params, dtype=np.float32).ravel()
    qmax = 2 ** (bits - 1) - 1
    out = []
    for sl, quantised in param_groups(config):
        if quantised:
            g = p[sl]
            s = np.float32((float(np.max(np.abs(g))) if g.size else 0.0) / qmax)
            out.append(s if np.isfinite(s) and s >= _MIN_SCALE else np.float32(0.0))
    # rounded to the nearest bfloat16 (8 significant bits): stored in 2 bytes each. The largest |g| lands within
    # qmax * (1 + 2^-9) steps, which rounds to qmax; and the projection stays idempotent: the float16 values it
    # gives lead back to the same bfloat16 steps
    u = np.array(out, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)


def scales_fit_bf16(scales: np.ndarray) -> bool:
    """Whether every step is a bfloat16 (the low 16 bits of its float32 zero): then a section stores 2 bytes each."""
    return not np.any(np.asarray(scales, np.float32).view(np.uint32) & 0xFFFF)


def _scales_bytes(scales: np.ndarray, scale_bytes: int) -> bytes:
    s = np.asarray(scales, "<f4")
    return (s.view("<u4") >> 16).astype("<u2").tobytes() if scale_bytes == 2 else s.tobytes()


def _scales_from(raw: bytes, n: int, scale_bytes: int) -> np.ndarray:
    if scale_bytes == 2:
        return (np.frombuffer(raw, "<u2", n, 0).astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, "<f4", n, 0).astype(np.float32)


def _steps(params: np.ndarray, config, scales: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(q int16 of the quantised groups on the grid ``scales``, clipped at ``limit``; float16 of the others)."""
    p = np.asarray(params, dtype=np.float32).ravel()
    qs, keep, ig = [], [], 0
    for sl, quantised in param_groups(config):
        if not quantised:
            keep.append(p[sl].astype(np.float16))
            continue
        s = scales[ig]
        ig += 1
        if s == 0:  # a group of (near) zeros
            qs.append(np.zeros(sl.stop - sl.start, np.int16))
        else:
            qs.append(np.clip(np.rint(p[sl].astype(np.float64) / np.float64(s)), -limit, limit).astype(np.int16))
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return cat(qs, np.int16), cat(keep, np.float16)


def _on_grid(params: np.ndarray, config, bits: int,
             scales: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scales, q, kept) of ``params`` on the grid ``scales``, or on their own grid (steps up to
    2^(b-1) - 1) when None; on a given grid steps may reach :func:`chain_limit`."""
    if scales is None:
        scales = grid_scales(params, config, bits)
        return (scales, *_steps(params, config, scales, 2 ** (bits - 1) - 1))
    scales = np.asarray(scales, np.float32)
    return (scales, *_steps(params, config, scales, chain_limit(bits)))


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


def quantize_params(params: np.ndarray, config, bits: int, scales: np.ndarray | None = None) -> np.ndarray:
    """The float16 parameters a model stored at ``bits`` decodes with (a projection: idempotent).

    ``scales`` puts them on a given grid (another model's, for temporal
    deltas) instead of their own; steps beyond :func:`chain_limit` are clipped
    (check with :func:`grid_misfit` first).
    """
    bits = check_param_bits(bits)
    p = np.asarray(params)
    if bits == 16:
        return p.astype(np.float16).ravel()
    scales, q, kept = _on_grid(p, config, bits, scales)
    return _assemble(config, scales, q, kept, p.size)


def grid_misfit(params: np.ndarray, config, bits: int, scales: np.ndarray) -> str | None:
    """Why ``params`` cannot live on the grid ``scales`` (a step beyond the chain limit, or a
    non-zero group whose step is 0), or None when they can."""
    p = np.asarray(params, dtype=np.float32).ravel()
    limit, ig = chain_limit(bits), 0
    for sl, quantised in param_groups(config):
        if not quantised:
            continue
        s, m = float(scales[ig]), float(np.max(np.abs(p[sl]))) if sl.stop > sl.start else 0.0
        ig += 1
        if s == 0 and m >= _MIN_SCALE * (2 ** (bits - 1) - 1):
            return "a parameter group that was zero in the base is not any more"
        if s > 0 and m / s > limit + 0.5:
            return f"a parameter moved {m / s:.0f} steps from zero, beyond the chain limit {limit}"
    return None


def _pack(q: np.ndarray, kept: np.ndarray, head: bytes = b"", compress: bool = True) -> bytes:
    """zstd of head | q (int8 when it fits, else int16) | kept float16 (``compress=False``: without zstd)."""
    import zstandard

    wide = q.size and int(np.max(np.abs(q))) > 127
    raw = head + (q.astype("<i2") if wide else q.astype(np.int8)).tobytes() + kept.astype("<f2").tobytes()
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw) if compress else raw


def _unpack(blob: bytes, what: str, compressed: bool = True) -> bytes:
    import zstandard

    if not compressed:
        return bytes(blob)
    try:
        return zstandard.ZstdDecompressor().decompress(bytes(blob))
    except zstandard.ZstdError as exc:
        raise ModelFormatError(f"model {what} section is not a valid zstd frame: {exc}") from exc


def group_sizes(config) -> tuple[int, int, int]:
    """(quantised groups, quantised values, float16 values) of a model's parameters."""
    groups = param_groups(config)
    n_q = sum(sl.stop - sl.start for sl, qz in groups if qz)
    return sum(1 for _, qz in groups if qz), n_q, config.n_params - n_q


def _split(raw: bytes, offset: int, n_q: int, n_kept: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(q, kept) from ``raw[offset:]``; the width of q (1 or 2 bytes) follows from the length."""
    for width, dt in ((1, np.int8), (2, "<i2")):
        if len(raw) == offset + width * n_q + 2 * n_kept:
            q = np.frombuffer(raw, dt, n_q, offset).astype(np.int16)
            return q, np.frombuffer(raw, "<f2", n_kept, offset + width * n_q)
    raise ModelFormatError(f"model {what} section holds {len(raw)} bytes, expected "
                           f"{offset + n_q + 2 * n_kept} or {offset + 2 * n_q + 2 * n_kept}")


def encode_params(params: np.ndarray, config, bits: int, scales: np.ndarray | None = None, *,
                  scale_bytes: int = 4, compress: bool = True) -> bytes:
    """The stored parameter section of a model at ``bits`` (on its grid ``scales``): zstd-compressed unless
    ``compress`` is False; ``scale_bytes`` 2 stores the steps as bfloat16 (they must be: :func:`scales_fit_bf16`)."""
    import zstandard

    bits = check_param_bits(bits)
    if bits == 16:
        raw = np.asarray(params).astype("<f2").tobytes()
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw) if compress else raw
    scales, q, kept = _on_grid(params, config, bits, scales)
    return _pack(q, kept, _scales_bytes(scales, scale_bytes), compress)


def _moves_per_group(dq: np.ndarray, config) -> tuple[np.ndarray, np.ndarray]:
    """(u16 multiplier per quantised group: the gcd of its moves, 0 when none moved; the moves divided by it)."""
    mult, k, at = [], np.zeros_like(dq), 0
    for sl, quantised in param_groups(config):
        if not quantised:
            continue
        g = slice(at, at + sl.stop - sl.start)
        at = g.stop
        m = int(np.gcd.reduce(np.abs(dq[g]).astype(np.int64))) if g.stop > g.start else 0
        mult.append(m)
        if m:
            k[g] = dq[g] // m
    return np.array(mult, "<u2"), k


def encode_delta(params: np.ndarray, base_params: np.ndarray, config, bits: int, scales: np.ndarray, *,
                 compress: bool = True) -> bytes:
    """The delta section of ``params`` against ``base_params``, both on the grid ``scales`` (module docstring)."""
    limit = chain_limit(bits)
    q, kept = _steps(params, config, scales, limit)
    q_base, _ = _steps(base_params, config, scales, limit)
    mult, k = _moves_per_group(q - q_base, config)
    return _pack(k, kept, mult.tobytes(), compress)


def decode_delta(blob: bytes, base_params: np.ndarray, config, bits: int, scales: np.ndarray,
                 n_params: int, multipliers: bool = True, compressed: bool = True) -> np.ndarray:
    """Inverse of :func:`encode_delta` (``multipliers=False``: a section written without them, every m = 1):
    the float16 parameters; :class:`ModelFormatError` on bad bytes."""
    n_groups, n_q, n_kept = group_sizes(config)
    raw = _unpack(blob, "delta", compressed)
    head = 2 * n_groups if multipliers else 0
    if len(raw) < head:
        raise ModelFormatError(f"model delta section holds {len(raw)} bytes, too few for {n_groups} multipliers")
    k, kept = _split(raw, head, n_q, n_kept, "delta")
    dq = k.astype(np.int32)
    if multipliers:
        sizes = [sl.stop - sl.start for sl, quantised in param_groups(config) if quantised]
        dq *= np.repeat(np.frombuffer(raw, "<u2", n_groups, 0).astype(np.int32), sizes)
    q_base, _ = _steps(base_params, config, scales, chain_limit(bits))
    q = q_base.astype(np.int32) + dq
    if q.size and int(np.max(np.abs(q))) > chain_limit(bits):
        raise ModelFormatError(f"model delta section moves a parameter beyond the chain limit {chain_limit(bits)}")
    return _assemble(config, scales, q.astype(np.int16), kept, n_params)


def decode_params(blob: bytes, config, bits: int, n_params: int, *, scale_bytes: int = 4,
                  compressed: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverse of :func:`encode_params`: (float16 parameters, their grid's scales or None at 16 bits);
    :class:`ModelFormatError` on bad bytes."""
    raw = _unpack(blob, "parameter", compressed)
    if bits == 16:
        if len(raw) != 2 * n_params:
            raise ModelFormatError(f"model parameter section holds {len(raw)} bytes, expected {2 * n_params}")
        return np.frombuffer(raw, dtype="<f2").astype(np.float16), None
    n_groups, n_q, n_kept = group_sizes(config)
    if len(raw) < scale_bytes * n_groups:
        raise ModelFormatError(f"model parameter section holds {len(raw)} bytes, too few for {n_groups} scales")
    scales = _scales_from(raw, n_groups, scale_bytes)
    q, kept = _split(raw, scale_bytes * n_groups, n_q, n_kept, "parameter")
    return _assemble(config, scales, q, kept, n_params), scales


def zero_smallest_entries(params: np.ndarray, config, n: int) -> np.ndarray:
    """``params`` (float32) with the ``n`` smallest-magnitude non-zero hash-table entries set to 0.

    The byte-fitting knob of a sized fit (:func:`inr.fit.fit`): zero codes are what
    zstd shrinks best, and the smallest table entries (mostly hash collisions'
    leftovers) move the output least. The MLP is left alone: a few hundred weights
    that every sample passes through. A group whose largest entry goes gets a finer
    step when the result is quantised again (still a valid model).
    """
    p = np.asarray(params, dtype=np.float32).ravel().copy()
    start = config.n_params - config.encoding.n_params  # the tables follow the MLP (inr.layout)
    tables = p[start:]
    nz = np.flatnonzero(tables)
    n = int(min(max(n, 0), nz.size))
    if n:
        # stable: equal magnitudes go in layout order, so the same n always zeroes the same entries
        order = np.argsort(np.abs(tables[nz]), kind="stable")
        tables[nz[order[:n]]] = 0.0
    return p
