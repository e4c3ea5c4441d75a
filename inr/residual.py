"""Error-bounded mode: the quantised residual that makes ``|decoded - data| <= eps`` hold everywhere.

After a fit, ``r = data - network`` on the owned grid (float64) is rounded to
an integer multiple ``k`` of a step ``2 * (eps - margin)``; decoding computes
``float32(network + k * step)``. Every value is then checked in float64, after
the float32 rounding, against ``eps - margin``; the rare values that miss
(float32 rounding of large values when ``eps`` is tiny) are stored exactly.
The ``margin`` (``MARGIN_REL`` of the value range, at most ``eps / 2``) covers
the last-bit differences between backends (a model fitted with the native
kernels and decoded with torch still meets the bound).

Stored section::

    struct <d eps, d step, B k_width, I k_bytes, I n_exact>
    | zstd(k zigzag-coded as unsigned k_width-byte integers, byte planes transposed)   (k_bytes)
    | zstd(u32 deltas of the exact values' flat indices | float32 exact values)         (rest; empty if none)

When the top bit of ``k_width`` is set (``LORENZO``), what is coded is not
``k`` but its 3D Lorenzo prediction error (the mixed third difference
``dz dy dx k``, zero outside the grid), undone by cumulative sums along the
three axes: exact in integers, and much smaller where the network's error is
smooth (it usually is). The encoder keeps whichever of the two is smaller.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .errors import InrValueError, ModelFormatError

#: backend-to-backend tolerance of decoded values, as a fraction of the value range.
MARGIN_REL = 4e-6
#: zstd level of the residual (a 64^3 residual takes ~0.3 s at this level; 15 % smaller than level 9).
ZSTD_LEVEL = 19
_HEAD = struct.Struct("<ddBII")
#: flag in the width byte: the k are coded as their Lorenzo prediction errors
LORENZO = 0x80


def lorenzo(k: np.ndarray) -> np.ndarray:
    """The 3D Lorenzo prediction errors of integer ``k`` (the mixed third difference)."""
    e = k.astype(np.int64)
    for axis in range(e.ndim):
        e = np.diff(e, axis=axis, prepend=0)
    return e


def unlorenzo(e: np.ndarray) -> np.ndarray:
    """Inverse of :func:`lorenzo`."""
    k = e.astype(np.int64)
    for axis in range(k.ndim):
        k = np.cumsum(k, axis=axis)
    return k


def _planes(k: np.ndarray) -> tuple[int, bytes]:
    """(byte width, zigzag-coded ``k`` as transposed byte planes)."""
    k = k.astype(np.int64).ravel()
    zig = np.where(k >= 0, 2 * k, -2 * k - 1).astype(np.uint64)
    top = int(zig.max()) if zig.size else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    return width, zig.astype(f"<u{width}").view(np.uint8).reshape(-1, width).T.copy().tobytes()


@dataclass
class Residual:
    """Integer multiples ``k`` (owned shape) of ``step``, plus exactly stored values; bound ``eps``."""

    eps: float
    step: float
    k: np.ndarray
    exact_index: np.ndarray
    exact_values: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.k.shape)

    def apply(self, network: np.ndarray, region: tuple[slice, slice, slice] | None = None) -> np.ndarray:
        """``network`` (float32 values of ``region`` of the owned grid, default all of it) corrected."""
        region = region or tuple(slice(0, n) for n in self.k.shape)
        k = self.k[region]
        out = (network.astype(np.float64) + k.astype(np.float64) * self.step).astype(np.float32)
        if self.exact_index.size:
            coords = np.unravel_index(self.exact_index.astype(np.int64), self.k.shape)
            inside = np.ones(self.exact_index.size, bool)
            for c, sl in zip(coords, region):
                inside &= (c >= sl.start) & (c < sl.stop)
            local = tuple(c[inside] - sl.start for c, sl in zip(coords, region))
            out[local] = self.exact_values[inside]
        return out

    # --- bytes ---
    def to_bytes(self) -> bytes:
        import zstandard

        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        width, planes = _planes(self.k)
        if self.k.ndim == 3 and self.k.size:
            # keep the Lorenzo errors when a quick trial says they code smaller
            lw, lplanes = _planes(lorenzo(self.k))
            trial = zstandard.ZstdCompressor(level=3)
            if len(trial.compress(lplanes)) < len(trial.compress(planes)):
                width, planes = lw | LORENZO, lplanes
        kblob = cctx.compress(planes)
        eblob = b""
        if self.exact_index.size:
            idx = np.sort(self.exact_index.astype(np.int64))
            order = np.argsort(self.exact_index.astype(np.int64), kind="stable")
            deltas = np.diff(idx, prepend=0).astype("<u4")
            eblob = cctx.compress(deltas.tobytes() + self.exact_values[order].astype("<f4").tobytes())
        return _HEAD.pack(self.eps, self.step, width, len(kblob), int(self.exact_index.size)) + kblob + eblob

    @classmethod
    def from_bytes(cls, data: bytes, shape: tuple[int, int, int]) -> "Residual":
        import zstandard

        try:
            eps, step, width, kbytes, n_exact = _HEAD.unpack_from(data)
            predicted, width = bool(width & LORENZO), width & ~LORENZO
            dctx = zstandard.ZstdDecompressor()
            n = int(np.prod(shape))
            raw = dctx.decompress(data[_HEAD.size:_HEAD.size + kbytes])
            if width not in (1, 2, 4, 8) or len(raw) != n * width:
                raise ModelFormatError(f"residual holds {len(raw)} bytes for {n} values of width {width}")
            zig = np.frombuffer(raw, np.uint8).reshape(width, n).T.copy().view(f"<u{width}").ravel().astype(np.int64)
            k = np.where(zig % 2 == 0, zig // 2, -(zig + 1) // 2).reshape(shape)
            if predicted:
                k = unlorenzo(k)
            idx, vals = np.zeros(0, np.int64), np.zeros(0, np.float32)
            if n_exact:
                e = dctx.decompress(data[_HEAD.size + kbytes:])
                if len(e) != 8 * n_exact:
                    raise ModelFormatError(f"residual exact values hold {len(e)} bytes, expected {8 * n_exact}")
                idx = np.cumsum(np.frombuffer(e, "<u4", n_exact).astype(np.int64))
                vals = np.frombuffer(e, "<f4", n_exact, 4 * n_exact).astype(np.float32)
            elif len(data) != _HEAD.size + kbytes:
                raise ModelFormatError("residual section has trailing bytes")
        except (struct.error, zstandard.ZstdError, ValueError) as exc:
            raise ModelFormatError(f"residual section malformed: {exc}") from exc
        top = int(np.abs(k).max()) if k.size else 0
        return cls(float(eps), float(step), k.astype(np.int32 if top < 1 << 31 else np.int64), idx, vals)


def check_error_bound(eps: object, name: str = "max_abs_error") -> float:
    """``eps`` as a float > 0, or an :class:`InrValueError` naming ``name``."""
    ok = isinstance(eps, (int, float, np.integer, np.floating)) and not isinstance(eps, bool)
    if not ok or not np.isfinite(float(eps)) or float(eps) <= 0:  # type: ignore[arg-type]
        raise InrValueError(f"{name}={eps!r} is invalid: expected a number > 0 (absolute error, in data units)")
    return float(eps)  # type: ignore[arg-type]


def compute_residual(data: np.ndarray, network: np.ndarray, eps: float, value_range: float) -> Residual:
    """The residual making ``network`` (float32, owned grid) meet ``eps`` on ``data`` everywhere.

    Verified here in float64 after the float32 rounding decoding does; values
    that still miss ``eps - margin`` are stored exactly.
    """
    eps = check_error_bound(eps)
    margin = min(MARGIN_REL * float(value_range), eps / 2)
    step = 2.0 * (eps - margin)
    d = np.asarray(data, dtype=np.float64)
    r = d - network.astype(np.float64)
    k = np.rint(r / step)
    res = Residual(eps, step, k.astype(np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    out = res.apply(network)
    bad = np.abs(out.astype(np.float64) - d) > eps - margin
    if bad.any():
        flat = np.flatnonzero(bad.ravel())
        res.k.ravel()[flat] = 0
        res.exact_index = flat.astype(np.int64)
        res.exact_values = np.asarray(data, dtype=np.float32).ravel()[flat]
    top = int(np.abs(res.k).max()) if res.k.size else 0
    res.k = res.k.astype(np.int32 if top < 1 << 15 else np.int64)
    return res
