"""Error-bounded mode: the quantised correction that makes ``|decoded - data| <= eps`` hold everywhere.

The owned grid is decoded coarse to fine, in the multilevel order of
interpolation compressors (SZ3): first the anchor sample (0, 0, 0), then, for
each stride ``s = 2^L, ..., 2`` and ``h = s / 2``, three passes (along x, then
y, then z) that fill the samples at odd multiples of ``h`` along the pass's
axis. Each pass predicts its samples from what is decoded already, by one of
:data:`MODES`:

* ``net``: the network's value; ``zero``: 0;
* ``lin`` / ``cub``: linear / cubic interpolation of the decoded values at
  ``t -+ h`` (``t -+ 3h``) along the axis (the left value past the far edge);
* ``rlin`` / ``rcub``: the network plus the interpolated decoded residual
  (decoded - network): where the network has the sharp features right.

The integer code of a sample is ``k = rint((data - prediction) / step_l)`` and
it decodes to ``float32(prediction + k * step_l)``: quantisation inside the
loop, so smooth data costs almost nothing whichever mode predicts it. The
step of a level is ``step / min(alpha^(level - 1), beta)`` (level 1 the
finest): coarse samples are stored more precisely because everything finer
is predicted from them. The encoder tries each mode on each pass and keeps
the one whose codes compress smallest; it does so twice, with and without
the modes that read the network, and keeps the smaller result (on smooth
data the network rarely wins, and the second needs no margin). Every decoded
value is checked, in float64, against ``eps - margin``; the rare misses
(float32 rounding of large values when ``eps`` is tiny) are stored exactly.

The ``margin`` covers the last-bit differences between backends: a model
fitted with the native kernels and decoded with torch gives network values a
few ``MARGIN_REL`` of the range apart, and that difference travels through
the predictions. The encoder bounds it pass by pass (:data:`_GROWTH`) and
uses a network mode only while the bound stays within the margin; the
``zero``/``lin``/``cub`` modes do not read the network and decode
identically everywhere.

Stored section::

    struct <d eps, d step, B k_width | PREDICTIVE, I k_bytes, I n_exact>
    | struct <f alpha, f beta, B n_passes> | n_passes mode bytes (indices into MODES)
    | zstd(k of all passes in order, zigzag-coded as unsigned k_width-byte integers, byte planes transposed)
    | zstd(u32 deltas of the exact values' flat indices | float32 exact values)   (empty if none)

Sections written before (no ``PREDICTIVE`` flag) are still read: there ``k``
is the plain residual on the grid (``net`` prediction for every sample, one
step), optionally coded as its 3D Lorenzo prediction errors (flag ``LORENZO``).
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import InrValueError, ModelFormatError

#: backend-to-backend tolerance of network values, as a fraction of the value range.
MARGIN_REL = 4e-6
#: the margin kept for backend differences, in multiples of that tolerance (at most eps / 2)
MARGIN_FACTOR = 16
#: zstd level of the codes (a 64^3 grid takes ~0.1 s)
ZSTD_LEVEL = 19
#: per-level step refinement: step / min(ALPHA^(level - 1), BETA) (measured best of (1, 1), (1.5, 4), (2, 8))
ALPHA, BETA = 1.5, 4.0
MODES = ("net", "zero", "lin", "cub", "rlin", "rcub")
#: the modes that read the network (the others decode identically on every backend)
NETWORK_MODES = ("net", "rlin", "rcub")
#: the order modes are tried in: on a tie the earlier wins, and those not reading the network come first
_TRIAL_ORDER = ("zero", "lin", "cub", "net", "rlin", "rcub")
#: how a decoder-side deviation grows through a pass of each mode: deviation after =
#: a * (largest deviation of the inputs) + b * (the network's deviation)
_GROWTH = {"net": (0.0, 1.0), "zero": (0.0, 0.0), "lin": (1.0, 0.0), "cub": (1.25, 0.0),
           "rlin": (1.0, 2.0), "rcub": (1.25, 2.25)}
_HEAD = struct.Struct("<ddBII")
_PRED_HEAD = struct.Struct("<ffB")
#: flags in the width byte
LORENZO, PREDICTIVE = 0x80, 0x40
_View = tuple[slice, slice, slice]


def _top_stride(shape: tuple[int, ...]) -> int:
    """The coarsest stride: the smallest power of two >= the longest axis (the anchor's level)."""
    top = max(shape)
    return 1 << int(np.ceil(np.log2(top))) if top > 1 else 1


def _passes(shape: tuple[int, ...]) -> Iterator[tuple[int, int, _View, np.ndarray]]:
    """(axis, h, view of the grid, targets along the axis) of each pass after the anchor, coarse to fine.

    The view holds every sample the pass reads or writes: stride ``h`` on the
    axes already refined at this stride (x before y before z), ``s`` on the others.
    """
    s = _top_stride(shape)
    while s >= 2:
        h = s // 2
        for axis in (2, 1, 0):
            t = np.arange(h, shape[axis], s)
            if t.size:
                view = tuple(slice(None) if ax == axis else slice(0, None, h if ax > axis else s) for ax in range(3))
                yield axis, h, view, t  # type: ignore[misc]
        s = h


def _level_step(step: float, h: int, alpha: float, beta: float) -> float:
    level = int(h).bit_length()  # h = 2^(level - 1)
    return step / min(alpha ** (level - 1), beta)


def _interp(a: np.ndarray, axis: int, t: np.ndarray, h: int, cubic: bool) -> np.ndarray:
    """Float64 prediction at ``t`` along ``axis`` of ``a`` from its values at ``t -+ h`` (and ``t -+ 3h``)."""
    n = a.shape[axis]
    shape = [1] * a.ndim
    shape[axis] = -1

    def take(i: np.ndarray) -> np.ndarray:
        return np.take(a, i, axis=axis).astype(np.float64)

    right = t + h < n
    left_v = take(t - h)
    right_v = take(np.where(right, t + h, t - h))
    out = np.where(right.reshape(shape), 0.5 * (left_v + right_v), left_v)
    if cubic:
        four = (t - 3 * h >= 0) & (t + 3 * h < n)
        if four.any():
            ll = take(np.where(four, t - 3 * h, t - h))
            rr = take(np.where(four, t + 3 * h, t - h))
            out = np.where(four.reshape(shape), (9.0 * (left_v + right_v) - (ll + rr)) / 16.0, out)
    return out


def _predict(mode: str, dec: np.ndarray, net: np.ndarray, axis: int, t: np.ndarray, h: int,
             net_t: np.ndarray) -> np.ndarray:
    if mode == "net":
        return net_t
    if mode == "zero":
        return np.zeros_like(net_t)
    cubic = mode.endswith("cub")
    if mode.startswith("r"):
        return net_t + (_interp(dec, axis, t, h, cubic) - _interp(net, axis, t, h, cubic))
    return _interp(dec, axis, t, h, cubic)


def _planes(k: np.ndarray) -> tuple[int, bytes]:
    """(byte width, zigzag-coded ``k`` as transposed byte planes)."""
    k = k.astype(np.int64).ravel()
    zig = np.where(k >= 0, 2 * k, -2 * k - 1).astype(np.uint64)
    top = int(zig.max()) if zig.size else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    return width, zig.astype(f"<u{width}").view(np.uint8).reshape(-1, width).T.copy().tobytes()


def _unplanes(raw: bytes, width: int, n: int) -> np.ndarray:
    zig = np.frombuffer(raw, np.uint8).reshape(width, n).T.copy().view(f"<u{width}").ravel().astype(np.int64)
    return np.where(zig % 2 == 0, zig // 2, -(zig + 1) // 2)


def _pass_index(view: _View, axis: int, t: np.ndarray) -> tuple:
    return tuple(t if ax == axis else slice(None) for ax in range(3))


@dataclass
class Residual:
    """The codes of every pass (concatenated, in pass order), their modes, exactly stored values; bound ``eps``."""

    eps: float
    step: float
    shape: tuple[int, int, int]
    modes: tuple[str, ...]
    codes: np.ndarray
    exact_index: np.ndarray
    exact_values: np.ndarray
    alpha: float = ALPHA
    beta: float = BETA

    def apply(self, network: np.ndarray) -> np.ndarray:
        """The corrected owned grid (float32) from the network's values on the whole owned grid."""
        if tuple(network.shape) != tuple(self.shape):
            raise InrValueError(f"the residual corrects an owned grid of {self.shape}; got network values of "
                                f"{tuple(network.shape)}")
        net = np.asarray(network, dtype=np.float32)
        out = np.zeros(self.shape, np.float32)
        exact = None
        if self.exact_index.size:
            exact = np.zeros(self.shape, bool)
            exact.ravel()[self.exact_index] = True
            exact_vals = np.zeros(self.shape, np.float32)
            exact_vals.ravel()[self.exact_index] = self.exact_values
        pos = 0
        for mode, (axis, h, view, t) in zip(self.modes, self._all_passes()):
            dec, nv = out[view], net[view]
            idx = _pass_index(view, axis, t)
            net_t = nv[idx].astype(np.float64)
            n = net_t.size
            k = self.codes[pos:pos + n].reshape(net_t.shape)
            pos += n
            st = _level_step(self.step, h, self.alpha, self.beta)
            rec = (_predict(mode, dec, nv, axis, t, h, net_t) + k * st).astype(np.float32)
            if exact is not None:
                rec = np.where(exact[view][idx], exact_vals[view][idx], rec)
            dec[idx] = rec
        return out

    def mode_counts(self) -> dict[str, int]:
        """How many owned samples each prediction mode coded (the modes that read the network show its use)."""
        counts = dict.fromkeys(MODES, 0)
        for mode, (axis, _, view, t) in zip(self.modes, self._all_passes()):
            dims = [len(range(n)[v]) for n, v in zip(self.shape, view)]
            dims[axis] = t.size
            counts[mode] += int(np.prod(dims))
        return counts

    def _all_passes(self) -> Iterator[tuple[int, int, _View, np.ndarray]]:
        """The anchor (a pass of one sample along x, at the coarsest level) then :func:`_passes`."""
        yield 2, _top_stride(self.shape), (slice(0, 1), slice(0, 1), slice(None)), np.zeros(1, np.int64)
        yield from _passes(self.shape)

    # --- bytes ---
    def to_bytes(self) -> bytes:
        import zstandard

        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        width, planes = _planes(self.codes)
        kblob = cctx.compress(planes)
        eblob = b""
        if self.exact_index.size:
            order = np.argsort(self.exact_index.astype(np.int64), kind="stable")
            deltas = np.diff(self.exact_index.astype(np.int64)[order], prepend=0).astype("<u4")
            eblob = cctx.compress(deltas.tobytes() + self.exact_values[order].astype("<f4").tobytes())
        modes = bytes(MODES.index(m) for m in self.modes)
        return (_HEAD.pack(self.eps, self.step, width | PREDICTIVE, len(kblob), int(self.exact_index.size))
                + _PRED_HEAD.pack(self.alpha, self.beta, len(modes)) + modes + kblob + eblob)

    @classmethod
    def from_bytes(cls, data: bytes, shape: tuple[int, int, int]) -> "Residual":
        import zstandard

        shape = tuple(int(n) for n in shape)  # type: ignore[assignment]
        n = int(np.prod(shape))
        try:
            eps, step, width, kbytes, n_exact = _HEAD.unpack_from(data)
            flags, width = width & (LORENZO | PREDICTIVE), width & ~(LORENZO | PREDICTIVE)
            at = _HEAD.size
            if flags & PREDICTIVE:
                alpha, beta, n_modes = _PRED_HEAD.unpack_from(data, at)
                at += _PRED_HEAD.size
                if any(b >= len(MODES) for b in data[at:at + n_modes]):
                    raise ModelFormatError(f"residual pass modes {list(data[at:at + n_modes])} unknown")
                modes = tuple(MODES[b] for b in data[at:at + n_modes])
                at += n_modes
            dctx = zstandard.ZstdDecompressor()
            raw = dctx.decompress(data[at:at + kbytes])
            if width not in (1, 2, 4, 8) or len(raw) != n * width:
                raise ModelFormatError(f"residual holds {len(raw)} bytes for {n} values of width {width}")
            codes = _unplanes(raw, width, n)
            idx, vals = np.zeros(0, np.int64), np.zeros(0, np.float32)
            if n_exact:
                e = dctx.decompress(data[at + kbytes:])
                if len(e) != 8 * n_exact:
                    raise ModelFormatError(f"residual exact values hold {len(e)} bytes, expected {8 * n_exact}")
                idx = np.cumsum(np.frombuffer(e, "<u4", n_exact).astype(np.int64))
                vals = np.frombuffer(e, "<f4", n_exact, 4 * n_exact).astype(np.float32)
                if idx.size and (idx[0] < 0 or idx[-1] >= n):
                    raise ModelFormatError("residual exact value indices lie outside the owned grid")
            elif len(data) != at + kbytes:
                raise ModelFormatError("residual section has trailing bytes")
        except (struct.error, zstandard.ZstdError, ValueError) as exc:
            raise ModelFormatError(f"residual section malformed: {exc}") from exc
        if flags & PREDICTIVE:
            res = cls(float(eps), float(step), shape, modes, codes, idx, vals, float(alpha), float(beta))
            if len(modes) != sum(1 for _ in res._all_passes()):
                raise ModelFormatError(f"residual has {len(modes)} pass modes for a grid of {shape}")
            return res
        # an older section: the plain residual on the grid, decoded as 'net' passes of one step
        k = codes.reshape(shape)
        if flags & LORENZO:
            for axis in range(3):
                k = np.cumsum(k, axis=axis)
        res = cls(float(eps), float(step), shape, (), np.zeros(0, np.int64), idx, vals, 1.0, 1.0)
        parts = [k[view][_pass_index(view, axis, t)].ravel() for axis, _, view, t in res._all_passes()]
        res.modes, res.codes = ("net",) * len(parts), np.concatenate(parts)
        return res


def check_error_bound(eps: object, name: str = "max_abs_error") -> float:
    """``eps`` as a float > 0, or an :class:`InrValueError` naming ``name``."""
    ok = isinstance(eps, (int, float, np.integer, np.floating)) and not isinstance(eps, bool)
    if not ok or not np.isfinite(float(eps)) or float(eps) <= 0:  # type: ignore[arg-type]
        raise InrValueError(f"{name}={eps!r} is invalid: expected a number > 0 (absolute error, in data units)")
    return float(eps)  # type: ignore[arg-type]


def _cost(k: np.ndarray) -> int:
    import zstandard

    return len(zstandard.ZstdCompressor(level=1).compress(_planes(k)[1]))


def compute_residual(data: np.ndarray, network: np.ndarray, eps: float, value_range: float) -> Residual:
    """The residual making ``network`` (float32, owned grid) meet ``eps`` on ``data`` everywhere.

    Encodes twice and keeps the smaller: once with every mode, and once
    without the modes that read the network. The second needs no margin for
    backend differences (it decodes identically everywhere) and keeps the
    whole deviation budget of the first from being spent on a coarse pass
    where the network barely helps, which would rule out cubic interpolation
    at the fine levels that hold most of the samples.
    """
    eps = check_error_bound(eps)
    d = np.asarray(data, dtype=np.float64)
    net = np.asarray(network, dtype=np.float32)
    if d.shape != net.shape or d.ndim != 3:
        raise InrValueError(f"data {d.shape} and network values {net.shape} must be the same 3D owned grid")
    tol = MARGIN_REL * float(value_range)
    # float32 spacing at the largest value: a deviation may flip a rounding by that much per pass
    ulp = float(np.spacing(np.float32(max(np.abs(d).max(), float(np.abs(net).max())))))
    alone = _encode(d, net, eps, min(ulp, eps / 2), tol, ulp,
                    tuple(m for m in _TRIAL_ORDER if m not in NETWORK_MODES))
    both = _encode(d, net, eps, min(MARGIN_FACTOR * tol, eps / 2), tol, ulp, _TRIAL_ORDER)
    return min((alone, both), key=_size)  # on a tie the one that does not read the network


def _size(res: Residual) -> int:
    return _cost(res.codes) + 8 * int(res.exact_index.size)


def _encode(d: np.ndarray, net: np.ndarray, eps: float, margin: float, tol: float, ulp: float,
            modes_tried: tuple[str, ...]) -> Residual:
    """One greedy encoding: each pass keeps the mode of ``modes_tried`` whose codes compress smallest among
    those whose backend deviation bound stays within ``margin``; every decoded value is verified here in
    float64 after the float32 rounding; misses are stored exactly."""
    step = 2.0 * (eps - margin)
    res = Residual(eps, step, tuple(d.shape), (), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(0, np.float32))
    out = np.zeros(d.shape, np.float32)
    flat = np.arange(d.size).reshape(d.shape)
    modes, codes, exact = [], [], []
    deviation = 0.0
    for i, (axis, h, view, t) in enumerate(res._all_passes()):
        dec, nv = out[view], net[view]
        idx = _pass_index(view, axis, t)
        target, net_t = d[view][idx], nv[idx].astype(np.float64)
        st = _level_step(step, h, res.alpha, res.beta)
        best = None
        for mode in modes_tried:
            a, b = _GROWTH[mode]
            dev = a * deviation + b * tol
            dev = dev + ulp if dev > 0 else 0.0
            if dev > margin or (i == 0 and mode not in ("net", "zero")):
                continue
            pred = _predict(mode, dec, nv, axis, t, h, net_t)
            k = np.rint((target - pred) / st)
            cost = _cost(k)
            if best is None or cost < best[0]:
                best = (cost, mode, pred, k, dev)
        assert best is not None  # 'zero' is always allowed
        _, mode, pred, k, dev = best
        deviation = max(deviation, dev)
        rec = (pred + k * st).astype(np.float32)
        bad = np.abs(rec.astype(np.float64) - target) > eps - margin
        if bad.any():
            k[bad] = 0
            rec[bad] = target[bad].astype(np.float32)
            exact.append(flat[view][idx][bad])
        dec[idx] = rec
        modes.append(mode)
        codes.append(k.astype(np.int64).ravel())
    res.modes, res.codes = tuple(modes), np.concatenate(codes)
    if exact:
        res.exact_index = np.concatenate(exact).astype(np.int64)
        res.exact_values = d.astype(np.float32).ravel()[res.exact_index]
    return res
