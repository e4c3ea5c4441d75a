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

Stored section (written; layout 4, in models of format 4)::

    u8 flags | eps, step (float32; float64 with flag WIDE) | varint k_bytes | [varint n_exact: flag EXACT]
    | [the refinement: two bytes in 1/16ths (code 0) or two float64 (code 3)] | the passes' modes (indices
      into MODES, as many as the grid's shape has passes), four per byte (flag NARROW: every index < 4) or
      two, the first in the low bits
    | k of all passes in order, range-coded with contexts (inr.entropy; k_bytes bytes), or table-coded
      (inr.table_coding) where that costs little more, or where that is smaller (rows that repeat) zstd(k
      zigzag-coded as unsigned k_width-byte integers, byte planes transposed)
    | zstd(u32 deltas of the exact values' flat indices | float32 exact values)   (empty if none)

(zstd frames without magic number nor content size.) The flags: bits 0-2 the
code width (0 RANGE_CODED, 1..4 for byte planes of 1, 2, 4, 8 bytes, 5
RANGE_SPLIT: range-coded in segments cut at z-planes, inr.entropy.encode_parts, 6
TABLE_CODED: static tables and rANS in such segments, inr.table_coding), WIDE,
NARROW, EXACT, and in bits 6-7 the refinement (alpha, beta): 1 = (1.5, 4), 2
= (1.75, 4) (the encoder's two), 0 and 3 stored as said.

Sections of models of format 3 and older are still read (``from_bytes(...,
layout=3)``): ``struct <d eps, d step, B k_width | PREDICTIVE | COMPACT> |
varint k_bytes | varint n_exact | u8 alpha * 16 | u8 beta * 16 | modes``, or
for a refinement not in 1/16ths ``struct <d eps, d step, B k_width |
PREDICTIVE, I k_bytes, I n_exact> | struct <f alpha, f beta, B n_passes> |
n_passes mode bytes`` (whole zstd frames), then the same streams; the low four
bits of that flags byte are the code width (0 RANGE_CODED, else byte planes).
Without ``PREDICTIVE``: there ``k`` is the plain residual on the grid (``net``
prediction for every sample, one step), optionally coded as its 3D Lorenzo
prediction errors (flag ``LORENZO``).
"""
from __future__ import annotations

import functools
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from . import entropy, table_coding
from .errors import InrValueError, ModelFormatError
from .packing import Reader, varint

#: backend-to-backend tolerance of network values, as a fraction of the value range.
MARGIN_REL = 4e-6
#: the margin kept for backend differences, in multiples of that tolerance (at most eps / 2)
MARGIN_FACTOR = 16
#: zstd level of the exact values (rare: float32 rounding misses at tiny bounds)
ZSTD_LEVEL = 19
#: zstd level of codes stored as byte planes (when that beats the range coder: repeated rows, which fast levels
#: find as well as slow ones)
ZSTD_LEVEL_PLANES = 3
#: passes of more targets than this choose their mode on a subsample of about this many (every m-th line); a 64^3
#: grid's passes are all tried whole (a subsample picked modes that stored up to 10 % more on such grids)
TRIAL_SAMPLES = 1 << 17
#: a mode trial is costed (inr.entropy.estimate_bytes) only when its codes' bit lengths sum to at most
#: (1 + 1/TRIAL_PRUNE) times the smallest sum of the modes tried, plus TRIAL_PRUNE_BITS: costing is what trials
#: cost (a tight bound codes ~15 bits a target), and a mode that far behind on the sum does not win on the bytes
TRIAL_PRUNE, TRIAL_PRUNE_BITS = 4, 256
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
_COMPACT_HEAD = struct.Struct("<ddB")
#: flags in the width byte (COMPACT: sizes as varints, the refinement in 1/16ths, modes packed with no count,
#: zstd frames without magic number nor content size; NARROW_MODES: four modes per byte instead of two)
LORENZO, PREDICTIVE, COMPACT, NARROW_MODES = 0x80, 0x40, 0x20, 0x10
_FLAGS = LORENZO | PREDICTIVE | COMPACT | NARROW_MODES
#: the code width (low four bits of that byte) of codes range-coded by inr.entropy (1, 2, 4, 8: zstd byte planes)
RANGE_CODED = 0
#: range-coded in independent segments of about equal decoding time (inr.entropy.encode_parts), which as many
#: threads decode at once: written when the stream is at least SPLIT_MIN_BYTES, in one segment per SPLIT_PART_BYTES
#: (at least two, at most inr.entropy.MAX_PARTS), and the split costs at most SPLIT_COST of it (each segment learns
#: its contexts again)
RANGE_SPLIT = 16
SPLIT_MIN_BYTES, SPLIT_PART_BYTES, SPLIT_COST = 2048, 8192, 0.02
#: from this many range-coded bytes on (as the mode trials guess them), the split is coded alone, not alongside
#: the plain stream: its segments then cost ~1 % (measured), and coding both took a quarter of the error-bounded
#: coder's time on a CT scan at 1e-3 of its range
SPLIT_ALONE_BYTES = 16384
#: coded with static tables and rANS (inr.table_coding), in segments as RANGE_SPLIT: decodes about twice as fast
#: as the range coder; tried for streams of TABLE_MIN_BYTES or more (below, its tables are a large share) and kept
#: when it is at most TABLE_COST larger than the range-coded stream
TABLE_CODED = 17
TABLE_MIN_BYTES, TABLE_COST = 4096, 0.02
#: the table coder's allowance where decoding speed comes first (inr.fit(prefer="speed"), Residual.table_cost):
#: a dense 33^3 block of an MR scan table-codes to 5.4 % more bytes and decodes 2.7x faster on one thread
TABLE_COST_SPEED = 0.10
#: the section's layout since model format 4 (``to_bytes``), and the flags of its first byte: the code width
#: (0 RANGE_CODED, then 1, 2, 4, 8 as 1..4, 5 RANGE_SPLIT, 6 TABLE_CODED) in bits 0-2, WIDE (eps and step as
#: float64, not float32), NARROW modes (four per byte), EXACT (a count of exactly stored values follows), and the
#: refinement in bits 6-7
LAYOUT = 4
_WIDTHS = (RANGE_CODED, 1, 2, 4, 8, RANGE_SPLIT, TABLE_CODED)
_WIDE, _NARROW4, _EXACT4 = 0x08, 0x10, 0x20
#: the refinement (alpha, beta) codes of bits 6-7: 1 and 2 the encoder's two (error bound, PSNR target);
#: 0 two bytes in 1/16ths follow, 3 two float64 (any other: the decoder must use the very refinement the encoder did)
_STEP_CODES = {(1.5, 4.0): 1, (1.75, 4.0): 2}
_STEPS_OF_CODE = {code: steps for steps, code in _STEP_CODES.items()}
#: the compact layout stores alpha and beta in these units, one byte each
_STEP_UNITS = 16
_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))


def _zstd(level: int):  # type: ignore[no-untyped-def]
    """The compressor of a section's streams: frames without magic number and content size (the section's header
    says what each holds: 5 bytes less per frame; the older layouts' whole frames are only read)."""
    import zstandard

    return zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters.from_level(
        level, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_content_size=0, write_checksum=0))


def _unzstd(compact: bool):  # type: ignore[no-untyped-def]
    import zstandard

    return zstandard.ZstdDecompressor(format=zstandard.FORMAT_ZSTD1_MAGICLESS if compact else zstandard.FORMAT_ZSTD1)


def _pack_modes(idx: list[int], per: int) -> bytes:
    """Mode indices, ``per`` (2 or 4) to a byte, the first in the low bits."""
    bits = 8 // per
    padded = idx + [0] * (-len(idx) % per)
    return bytes(sum(v << (bits * j) for j, v in enumerate(padded[i:i + per])) for i in range(0, len(padded), per))


def _unpack_modes(data: bytes, at: int, n_modes: int, per: int) -> tuple[tuple[str, ...], int]:
    """``n_modes`` modes packed ``per`` (1, 2 or 4) to a byte at ``data[at:]``, and where they end."""
    bits, size = 8 // per, -(-n_modes // per)
    chunk = data[at:at + size]
    idx = [(b >> (bits * j)) & ((1 << bits) - 1) for b in chunk for j in range(per)][:n_modes]
    if len(idx) != n_modes or any(v >= len(MODES) for v in idx):
        raise ModelFormatError(f"residual pass modes {idx} unknown or too few for {n_modes} passes")
    return tuple(MODES[v] for v in idx), at + size


def _compact_steps(alpha: float, beta: float) -> bool:
    """Whether the compact layout holds ``alpha`` and ``beta`` exactly."""
    return all(0 < v * _STEP_UNITS <= 255 and float(v * _STEP_UNITS).is_integer() for v in (alpha, beta))
_View = tuple[slice, slice, slice]


def _native_passes():  # type: ignore[no-untyped-def]
    """The C++ passes (``inr._native``) for the modes that do not read the network, or None where it is not built.

    They do the numpy reference's float64 operations in the same order (no FP contraction), so bytes encoded by
    either decode identically with the other."""
    try:
        from . import _native
    except ImportError:
        return None
    return _native if hasattr(_native, "residual_encode_pass") else None


#: how long coder_threads() keeps its answer, in seconds
THREADS_TTL_S = 1.0
_threads_seen: list[float] = [-THREADS_TTL_S, 1]  # (when, threads)


def coder_threads() -> int:
    """Threads the C++ coder runs a large pass (and the segments of a long stream) on: the native backend's default
    (``OMP_NUM_THREADS``, else the node's free cores shared among its MPI ranks), read again at most every
    :data:`THREADS_TTL_S`: reading the environment and the load took 30 us of a small block's 0.6 ms decode."""
    from .backends.native_backend import default_threads

    now = time.monotonic()
    if now - _threads_seen[0] >= THREADS_TTL_S:
        _threads_seen[:] = [now, default_threads()]
    return int(_threads_seen[1])


#: the modes the C++ passes code, as their mode numbers
_NATIVE_MODES = {"zero": 0, "lin": 1, "cub": 2}


def _strides(view: _View) -> tuple[int, int, int]:
    return tuple(v.step or 1 for v in view)  # type: ignore[return-value]


def _top_stride(shape: tuple[int, ...]) -> int:
    """The coarsest stride: the smallest power of two >= the longest axis (the anchor's level)."""
    top = max(shape)
    return 1 << int(np.ceil(np.log2(top))) if top > 1 else 1


def _passes(shape: tuple[int, ...]) -> Iterator[tuple[int, int, _View, _View]]:
    """(axis, h, view of the grid, targets in the view) of each pass after the anchor, coarse to fine.

    The view holds every sample the pass reads or writes: stride ``h`` along
    the pass's axis and on the axes already refined at this stride (x before y
    before z), ``s`` on the others; the targets are its odd entries along the
    axis (grid indices ``h, 3h, ...``), the decoded samples its even ones.
    """
    s = _top_stride(shape)
    while s >= 2:
        h = s // 2
        for axis in (2, 1, 0):
            if h < shape[axis]:
                view = tuple(slice(0, None, h if ax >= axis else s) for ax in range(3))
                yield axis, h, view, _along(axis, slice(1, None, 2))  # type: ignore[misc]
        s = h


@functools.lru_cache(maxsize=64)
def _all_passes_of(shape: tuple[int, int, int]) -> tuple[tuple[int, int, _View, _View], ...]:
    """The anchor and :func:`_passes` of a grid's shape, made once per shape (decoding a small grid spent a third
    of its time making them)."""
    anchor = (2, _top_stride(shape), (slice(0, 1),) * 3, (slice(None),) * 3)
    return (anchor, *_passes(shape))  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _pass_table_of(shape: tuple[int, int, int]) -> np.ndarray:
    """The entropy coder's pass table of a grid's shape: each pass's target shape and level (inr.entropy)."""
    grid = np.broadcast_to(np.zeros((), np.uint8), shape)  # shapes of views only: no memory
    table = entropy.pass_table([grid[view][tsl].shape for _, _, view, tsl in _all_passes_of(shape)],
                               [int(h).bit_length() for _, h, _, _ in _all_passes_of(shape)])
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=64)
def _native_pass_table_of(shape: tuple[int, int, int]) -> np.ndarray:
    """(axis, h, stride z, stride y, stride x) of each pass after the anchor: the native decoder's pass table."""
    table = np.array([(axis, h, *_strides(view)) for axis, h, view, _ in _all_passes_of(shape)[1:]],
                     np.int64).reshape(-1, 5)
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=64)
def _native_plan(shape: tuple[int, int, int], modes: tuple[str, ...], step: float, alpha: float,
                 beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The mode numbers and steps of each pass after the anchor, as the native decoder takes them (made once per
    coding: a small grid's decode spent a tenth of its time on them)."""
    table = _native_pass_table_of(shape)
    numbers = np.array([_NATIVE_MODES[m] for m in modes[1:]], np.int64)
    steps = np.array([_level_step(step, h, alpha, beta) for h in table[:, 1]], np.float64)
    for a in (numbers, steps):
        a.setflags(write=False)
    return numbers, steps


def _along(axis: int, sl: slice) -> _View:
    return tuple(sl if ax == axis else slice(None) for ax in range(3))  # type: ignore[return-value]


def _level_step(step: float, h: int, alpha: float, beta: float) -> float:
    level = int(h).bit_length()  # h = 2^(level - 1)
    return step / min(alpha ** (level - 1), beta)


def _interp(a: np.ndarray, axis: int, cubic: bool) -> np.ndarray:
    """Float64 prediction of the odd entries of ``a`` along ``axis`` from its even ones: linear between the two
    neighbours (the left one past the far edge), cubic from four where they exist."""
    e = np.moveaxis(a, axis, 0)[0::2].astype(np.float64)
    nt, ne = a.shape[axis] // 2, e.shape[0]
    out = np.empty((nt,) + e.shape[1:])
    m = min(nt, ne - 1)  # targets with a right neighbour
    np.add(e[:m], e[1:m + 1], out=out[:m])
    out[:m] *= 0.5
    out[m:] = e[m:nt]
    hi = min(nt, ne - 2)  # targets 1 .. hi - 1 have two neighbours each side
    if cubic and hi > 1:
        # the same float64 operations, in the same order, as every decoder of this format
        out[1:hi] = (9.0 * (e[1:hi] + e[2:hi + 1]) - (e[0:hi - 1] + e[3:hi + 2])) / 16.0
    return np.moveaxis(out, 0, axis)


def _predict(mode: str, dec: np.ndarray, net: np.ndarray | None, axis: int, tsl: _View,
             net_t: np.ndarray | None) -> np.ndarray:
    """Float64 prediction of the targets ``dec[tsl]`` of a pass view by ``mode`` (``net``: the network's values on
    the same view, None when no mode reading it is used; ``net_t``: those at the targets, float64)."""
    if mode == "zero":
        return np.zeros(dec[tsl].shape)
    if mode == "net":
        return net_t  # type: ignore[return-value]
    cubic = mode.endswith("cub")
    if mode.startswith("r"):
        return net_t + (_interp(dec, axis, cubic) - _interp(net, axis, cubic))  # type: ignore[arg-type,operator]
    return _interp(dec, axis, cubic)


def _planes(k: np.ndarray) -> tuple[int, bytes]:
    """(byte width, zigzag-coded ``k`` as transposed byte planes)."""
    native = _native_passes()
    if native is not None:
        return native.residual_planes(np.ascontiguousarray(k, dtype=np.int64).ravel())
    k = k.astype(np.int64).ravel()
    zig = ((k << 1) ^ (k >> 63)).view(np.uint64)  # 0, -1, 1, -2, ... -> 0, 1, 2, 3, ...
    top = int(zig.max()) if zig.size else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    return width, zig.astype(f"<u{width}").view(np.uint8).reshape(-1, width).T.copy().tobytes()


def _unplanes(raw: bytes, width: int, n: int) -> np.ndarray:
    native = _native_passes()
    if native is not None and width in (1, 2, 4, 8) and len(raw) == n * width:
        return native.residual_unplanes(raw, width, n)
    zig = np.frombuffer(raw, np.uint8).reshape(width, n).T.copy().view(f"<u{width}").ravel().astype(np.uint64)
    return ((zig >> np.uint64(1)) ^ (np.uint64(0) - (zig & np.uint64(1)))).view(np.int64)


@dataclass
class Residual:
    """The codes of every pass (concatenated, in pass order; int64, or int32 as the native range decoder gives them
    where every one fits), their modes, exactly stored values; bound ``eps``."""

    eps: float
    step: float
    shape: tuple[int, int, int]
    modes: tuple[str, ...]
    codes: np.ndarray
    exact_index: np.ndarray
    exact_values: np.ndarray
    alpha: float = ALPHA
    beta: float = BETA
    #: about how many bytes the codes range-code to (the encoder's trials of the modes it kept, scaled to whole
    #: passes), or None: where to_bytes guesses the stream's split, so that it codes it once (the bytes never
    #: depend on it)
    bytes_hint: int | None = field(default=None, compare=False, repr=False)
    #: how much larger than the range-coded stream a table-coded one may be and still be written (TABLE_COST;
    #: TABLE_COST_SPEED where decoding speed comes first): a writer's choice, never stored
    table_cost: float = field(default=TABLE_COST, compare=False, repr=False)

    def apply(self, network: np.ndarray | None, threads: int | None = None) -> np.ndarray:
        """The corrected owned grid (float32) from the network's values on the whole owned grid (None, or any
        values, when no pass reads the network: a residual coded without one). ``threads``: for the large passes
        (default :func:`coder_threads`)."""
        reads = self.reads_network
        if network is None and reads:
            raise InrValueError("this residual reads the network: apply() needs its values on the owned grid")
        if network is not None and tuple(network.shape) != tuple(self.shape):
            raise InrValueError(f"the residual corrects an owned grid of {self.shape}; got network values of "
                                f"{tuple(network.shape)}")
        net = np.asarray(network, dtype=np.float32) if reads else None
        exact = None
        if self.exact_index.size:
            exact = np.zeros(self.shape, bool)
            exact.ravel()[self.exact_index] = True
            exact_vals = np.zeros(self.shape, np.float32)
            exact_vals.ravel()[self.exact_index] = self.exact_values
        pos = 0
        native = _native_passes()
        if native is not None:
            none_u8, none_f32 = np.zeros(0, np.uint8), np.zeros(0, np.float32)
            mask = none_u8 if exact is None else exact.view(np.uint8)
            vals = none_f32 if exact is None else exact_vals
            narrow = self.codes.dtype == np.int32  # the native passes read int32 codes as they are
            codes = np.ascontiguousarray(self.codes, dtype=np.int32 if narrow else np.int64)
            threads = coder_threads() if threads is None else threads
        # a predictive coding (no pass reads the network): the anchor here, every other pass in one native call
        if native is not None and self.modes[0] == "zero" and all(m in _NATIVE_MODES for m in self.modes[1:]):
            out = np.empty(self.shape, np.float32)  # every sample is the target of one pass: nothing to zero
            anchor = np.float32(0.0 + float(codes[0]) * _level_step(self.step, _top_stride(self.shape), self.alpha,
                                                                    self.beta))  # the reference's float64 ops
            out.flat[0] = exact_vals.flat[0] if exact is not None and exact.flat[0] else anchor
            modes, steps = _native_plan(tuple(self.shape), self.modes, self.step, self.alpha, self.beta)
            native.residual_decode_passes(out, codes, 1, _native_pass_table_of(tuple(self.shape)), modes, steps, mask,
                                          vals, threads)
            return out
        out = np.zeros(self.shape, np.float32)
        for i, (mode, (axis, h, view, tsl)) in enumerate(zip(self.modes, self._all_passes())):
            if native is not None and mode in _NATIVE_MODES and i > 0:  # i = 0: the anchor, one sample
                st = _level_step(self.step, h, self.alpha, self.beta)
                pos += native.residual_decode_pass(out, codes, pos, _strides(view), axis, h, _NATIVE_MODES[mode], st,
                                                   mask, vals, threads)
                continue
            dec = out[view]
            nv = None if net is None else net[view]
            net_t = None if nv is None else nv[tsl].astype(np.float64)
            shape = dec[tsl].shape
            n = int(np.prod(shape))
            k = self.codes[pos:pos + n].reshape(shape)
            pos += n
            st = _level_step(self.step, h, self.alpha, self.beta)
            rec = (_predict(mode, dec, nv, axis, tsl, net_t) + k * st).astype(np.float32)
            if exact is not None:
                rec = np.where(exact[view][tsl], exact_vals[view][tsl], rec)
            dec[tsl] = rec
        return out

    def settings(self) -> "Residual":
        """This residual without its codes: the bound and the passes' modes, what a later coding of a grid like
        this one starts from (``inr.fit(init=...)`` of a predictive model): a few dozen bytes to keep."""
        return Residual(self.eps, self.step, self.shape, self.modes, *_EMPTY, self.alpha, self.beta)

    @property
    def reads_network(self) -> bool:
        """Whether a pass predicts through the network (else the network's values are never read)."""
        return bool(set(self.modes) & set(NETWORK_MODES))

    def mode_counts(self) -> dict[str, int]:
        """How many owned samples each prediction mode coded (the modes that read the network show its use)."""
        counts = dict.fromkeys(MODES, 0)
        probe = np.broadcast_to(np.zeros(1, np.int8), self.shape)
        for mode, (_, _, view, tsl) in zip(self.modes, self._all_passes()):
            counts[mode] += int(probe[view][tsl].size)
        return counts

    def _all_passes(self) -> tuple[tuple[int, int, _View, _View], ...]:
        """The anchor (a pass of one sample along x, at the coarsest level) then :func:`_passes`."""
        return _all_passes_of(tuple(self.shape))

    # --- bytes ---
    def to_bytes(self) -> bytes:
        """The section in the current layout (:data:`LAYOUT`; see the module docstring)."""
        width, kblob = _code_bytes(self.codes, tuple(self.shape), self.bytes_hint, self.table_cost)
        eblob = b""
        if self.exact_index.size:
            order = np.argsort(self.exact_index.astype(np.int64), kind="stable")
            deltas = np.diff(self.exact_index.astype(np.int64)[order], prepend=0).astype("<u4")
            eblob = _zstd(ZSTD_LEVEL).compress(
                deltas.tobytes() + self.exact_values[order].astype("<f4").tobytes())
        idx = [MODES.index(m) for m in self.modes]
        per = 4 if max(idx, default=0) < 4 else 2  # modes per byte: four when none is past 'cub'
        steps = _STEP_CODES.get((self.alpha, self.beta), 0 if _compact_steps(self.alpha, self.beta) else 3)
        wide = not (_is_float32(self.eps) and _is_float32(self.step))
        flags = (_WIDTHS.index(width) | (_WIDE if wide else 0) | (_NARROW4 if per == 4 else 0)
                 | (_EXACT4 if self.exact_index.size else 0) | steps << 6)
        out = bytes([flags]) + struct.pack("<dd" if wide else "<ff", self.eps, self.step) + varint(len(kblob))
        if self.exact_index.size:
            out += varint(int(self.exact_index.size))
        if steps == 0:
            out += bytes([round(self.alpha * _STEP_UNITS), round(self.beta * _STEP_UNITS)])
        elif steps == 3:
            out += struct.pack("<dd", self.alpha, self.beta)
        return out + _pack_modes(idx, per) + kblob + eblob

    @classmethod
    def _from_layout4(cls, data: bytes, shape: tuple[int, int, int]) -> "Residual":
        r = Reader(data, 0, len(data), "residual section")
        (flags,) = r.take("<B")
        if flags & 0x07 >= len(_WIDTHS):
            raise ModelFormatError(f"residual code width {flags & 0x07} unknown")
        width = _WIDTHS[flags & 0x07]
        eps, step = r.take("<dd" if flags & _WIDE else "<ff")
        kbytes = r.varint()
        n_exact = r.varint() if flags & _EXACT4 else 0
        steps = flags >> 6
        if steps in _STEPS_OF_CODE:
            alpha, beta = _STEPS_OF_CODE[steps]
        elif steps == 0:
            a16, b16 = r.take("<BB")
            alpha, beta = a16 / _STEP_UNITS, b16 / _STEP_UNITS
        else:
            alpha, beta = r.take("<dd")
        modes, at = _unpack_modes(data, r.at, len(_all_passes_of(shape)), 4 if flags & _NARROW4 else 2)
        if at + kbytes > len(data):
            raise ModelFormatError("residual codes truncated")
        codes = _decode_codes(data[at:at + kbytes], width, shape, compact=True)
        idx, vals = _exact_values(data[at + kbytes:], n_exact, int(np.prod(shape)), compact=True)
        return cls(float(eps), float(step), shape, modes, codes, idx, vals, float(alpha), float(beta))

    @classmethod
    def from_bytes(cls, data: bytes, shape: tuple[int, int, int], layout: int = LAYOUT) -> "Residual":
        """The section ``data`` for an owned grid of ``shape``; ``layout``: the model format version it was
        written in (3 and before: the sections whose flags follow eps and step)."""
        import zstandard

        shape = tuple(int(n) for n in shape)  # type: ignore[assignment]
        if layout >= LAYOUT:
            try:
                return cls._from_layout4(data, shape)
            except (struct.error, zstandard.ZstdError, ValueError) as exc:
                if isinstance(exc, ModelFormatError):
                    raise
                raise ModelFormatError(f"residual section malformed: {exc}") from exc
        n = int(np.prod(shape))
        try:
            eps, step, width = _COMPACT_HEAD.unpack_from(data)
            flags, width = width & _FLAGS, width & ~_FLAGS
            if flags & COMPACT:
                r = Reader(data, _COMPACT_HEAD.size, len(data), "residual section")
                kbytes, n_exact = r.varint(), r.varint()
                a16, b16 = r.take("<BB")
                alpha, beta = a16 / _STEP_UNITS, b16 / _STEP_UNITS
                modes, at = _unpack_modes(data, r.at, len(_all_passes_of(shape)), 4 if flags & NARROW_MODES else 2)
            else:
                _, _, _, kbytes, n_exact = _HEAD.unpack_from(data)
                at = _HEAD.size
                if flags & PREDICTIVE:
                    alpha, beta, n_modes = _PRED_HEAD.unpack_from(data, at)
                    at += _PRED_HEAD.size
                    modes, at = _unpack_modes(data, at, n_modes, 1)
            if width == RANGE_CODED and not flags & PREDICTIVE:
                raise ModelFormatError(f"residual code width {width} unknown")
            if at + kbytes > len(data):
                raise ModelFormatError("residual codes truncated")
            codes = _decode_codes(data[at:at + kbytes], width, shape, bool(flags & COMPACT))  # type: ignore[arg-type]
            idx, vals = _exact_values(data[at + kbytes:], n_exact, n, bool(flags & COMPACT))
        except (struct.error, zstandard.ZstdError, ValueError) as exc:
            raise ModelFormatError(f"residual section malformed: {exc}") from exc
        if flags & PREDICTIVE:
            res = cls(float(eps), float(step), shape, modes, codes, idx, vals, float(alpha), float(beta))
            if len(modes) != len(res._all_passes()):
                raise ModelFormatError(f"residual has {len(modes)} pass modes for a grid of {shape}")
            return res
        # an older section: the plain residual on the grid, decoded as 'net' passes of one step
        k = codes.reshape(shape)
        if flags & LORENZO:
            for axis in range(3):
                k = np.cumsum(k, axis=axis)
        res = cls(float(eps), float(step), shape, (), np.zeros(0, np.int64), idx, vals, 1.0, 1.0)
        parts = [k[view][tsl].ravel() for _, _, view, tsl in res._all_passes()]
        res.modes, res.codes = ("net",) * len(parts), np.concatenate(parts)
        return res


def _decode_codes(blob: bytes, width: int, shape: tuple[int, int, int], compact: bool) -> np.ndarray:
    """The codes of a section: range-coded (``width`` RANGE_CODED) or zstd byte planes of ``width`` bytes."""
    n = int(np.prod(shape))
    if width == RANGE_CODED:
        return entropy.decode_codes(blob, _pass_table_of(shape), coder_threads())
    if width == RANGE_SPLIT:
        return entropy.decode_parts(blob, _pass_table_of(shape), coder_threads())
    if width == TABLE_CODED:
        return table_coding.decode(blob, _pass_table_of(shape), coder_threads())
    if width not in (1, 2, 4, 8):
        raise ModelFormatError(f"residual code width {width} unknown")
    raw = _unzstd(compact).decompress(blob, max_output_size=n * width)
    if len(raw) != n * width:
        raise ModelFormatError(f"residual holds {len(raw)} bytes for {n} values of width {width}")
    return _unplanes(raw, width, n)


def _exact_values(blob: bytes, n_exact: int, n: int, compact: bool) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices, float32 values) of the ``n_exact`` exactly stored samples in ``blob`` (the rest of a section,
    which must be empty when there are none)."""
    if not n_exact:
        if blob:
            raise ModelFormatError("residual section has trailing bytes")
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    e = _unzstd(compact).decompress(blob, max_output_size=8 * n_exact)
    if len(e) != 8 * n_exact:
        raise ModelFormatError(f"residual exact values hold {len(e)} bytes, expected {8 * n_exact}")
    idx = np.cumsum(np.frombuffer(e, "<u4", n_exact).astype(np.int64))
    vals = np.frombuffer(e, "<f4", n_exact, 4 * n_exact).astype(np.float32)
    if idx.size and (idx[0] < 0 or idx[-1] >= n):
        raise ModelFormatError("residual exact value indices lie outside the owned grid")
    return idx, vals


def _is_float32(x: float) -> bool:
    """Whether ``x`` > 0 is a normal float32 exactly (the current layout stores eps and step as float32)."""
    return np.finfo(np.float32).tiny <= x <= np.finfo(np.float32).max and float(np.float32(x)) == x


def float32_below(x: float) -> float:
    """The largest float32 <= ``x`` > 0; ``x`` itself where no normal float32 is (float64 then stores it)."""
    f = np.float32(x)
    if float(f) > x:
        f = np.nextafter(f, np.float32(0))
    return float(f) if np.finfo(np.float32).tiny <= float(f) <= np.finfo(np.float32).max else float(x)


def check_error_bound(eps: object, name: str = "max_abs_error") -> float:
    """``eps`` as a float > 0, or an :class:`InrValueError` naming ``name``."""
    ok = isinstance(eps, (int, float, np.integer, np.floating)) and not isinstance(eps, bool)
    if not ok or not np.isfinite(float(eps)) or float(eps) <= 0:  # type: ignore[arg-type]
        raise InrValueError(f"{name}={eps!r} is invalid: expected a number > 0 (absolute error, in data units)")
    return float(eps)  # type: ignore[arg-type]


#: a code must fit int64: one past it (a value far above its bound's step: data of 1e22 at a bound of 1e-3) is 0,
#: and the encoder's check then stores that value exactly
_CODE_LIMIT = 2.0 ** 63


def _codes_of(q: np.ndarray) -> np.ndarray:
    """The int64 codes of rounded quotients ``q``, 0 where one does not fit int64 (or is NaN), as the C++ passes
    give them (kernel_residual.h codes_kind). Cast as they were, such codes wrapped, and the values decoded from
    them broke the bound by up to the values themselves."""
    return np.where(np.abs(q) < _CODE_LIMIT, q, 0.0).astype(np.int64)


def _trial_cost(k: np.ndarray, h: int) -> int:
    """What a mode trial is judged by: about the range-coded bytes of its codes ``k`` (3D, the trial's targets) as a
    pass of its own at the level of ``h`` (:func:`inr.entropy.estimate_bytes`: the coder's adaptive probabilities
    without its arithmetic; the C++ trial's figure, bit for bit). A byte coder judged the small coarse passes all
    alike (its frame dwarfs them), and its ties kept 'zero', which on a smooth field with an offset stored nearly
    twice the bytes of interpolation."""
    return entropy.estimate_bytes(np.asarray(k, dtype=np.int64).ravel(),
                                  entropy.pass_table([k.shape], [int(h).bit_length()]))


def _bit_length_sum(k: np.ndarray) -> int:
    """The sum of the bit lengths of the codes' magnitudes (0 for a zero code): what a trial is first judged by."""
    mag = np.abs(np.asarray(k, dtype=np.int64).ravel()).view(np.uint64)  # |INT64_MIN| wraps to 2^63: right
    return int(entropy.bit_lengths(mag).sum())


def _worth_coding(sums: list[int]) -> list[bool]:
    """Which trials are costed: those whose bit-length sum is within :data:`TRIAL_PRUNE` of the smallest (the
    C++ trials apply the same rule, in the same integers)."""
    best = min(sums)
    return [TRIAL_PRUNE * s <= (TRIAL_PRUNE + 1) * best + TRIAL_PRUNE * TRIAL_PRUNE_BITS for s in sums]


def compute_residual(data: np.ndarray, network: np.ndarray | None, eps: float, value_range: float,
                     modes: tuple[str, ...] | None = None, alpha: float = ALPHA) -> Residual:
    """The residual making ``network`` (float32, owned grid; None: no network) meet ``eps`` on ``data`` everywhere.

    Encodes twice and keeps the smaller: once with every mode, and once
    without the modes that read the network (only that one without a network).
    ``modes`` (no network only): the mode of every pass, as an earlier coding of
    the same grid chose them (``Residual.modes``): no trials, a fraction of the
    time (the error-bound search of :mod:`inr.predictive` codes one grid several
    times). ``alpha``: the per-level step refinement (``step / min(alpha^(level - 1),
    BETA)``). The second needs no margin for backend differences (it decodes identically
    everywhere) and keeps the whole deviation budget of the first from being
    spent on a coarse pass where the network barely helps, which would rule
    out cubic interpolation at the fine levels that hold most of the samples.
    """
    eps = check_error_bound(eps)
    d = np.asarray(data, dtype=np.float64)
    net = None if network is None else np.asarray(network, dtype=np.float32)
    if d.ndim != 3 or (net is not None and d.shape != net.shape):
        raise InrValueError(f"data {d.shape} and network values {None if net is None else net.shape} must be "
                            "the same 3D owned grid")
    tol = MARGIN_REL * float(value_range)
    # float32 spacing at the largest value: a deviation may flip a rounding by that much per pass
    top = max(float(d.max()), -float(d.min()))
    if net is not None:
        top = max(top, float(net.max()), -float(net.min()))
    ulp = float(np.spacing(np.float32(top)))
    if modes is not None and (net is not None or any(m in NETWORK_MODES for m in modes)):
        raise InrValueError("fixed modes are for a coding without a network, and read no network")
    alone = _encode(d, None, eps, min(ulp, eps / 2), tol, ulp,
                    tuple(m for m in _TRIAL_ORDER if m not in NETWORK_MODES), modes, alpha)
    if net is None:
        return alone
    both = _encode(d, net, eps, min(MARGIN_FACTOR * tol, eps / 2), tol, ulp, _TRIAL_ORDER, alpha=alpha)
    return min((alone, both), key=_size)  # on a tie the one that does not read the network


def _code_bytes(codes: np.ndarray, shape: tuple[int, int, int], hint: int | None = None,
                table_cost: float = TABLE_COST) -> tuple[int, bytes]:
    """(code width, bytes) of a residual's codes: range-coded with contexts (width RANGE_CODED), or, when that is
    larger, fast zstd on their byte planes (codes that repeat whole rows, which only a dictionary coder sees:
    fields constant along an axis, a network far off a smooth field). A long range-coded stream is split into
    segments (RANGE_SPLIT) where that costs little: as many threads decode them at once; from TABLE_MIN_BYTES on,
    table-coded (TABLE_CODED, in as many segments) where that costs at most ``table_cost`` more: it decodes faster.
    ``hint``: about the range-coded bytes (:attr:`Residual.bytes_hint`), which guesses the split's segments; from
    :data:`SPLIT_ALONE_BYTES` on, the split is coded alone and judged against the hint (the plain stream is coded
    too only when the split comes out over it by more than SPLIT_COST)."""
    table = _pass_table_of(shape)
    threads = coder_threads()
    parts = _split_parts(int(0.99 * hint)) if hint else 0  # the trials relearn their contexts: ~0.5 % high
    ranged: bytes | None = None
    split: bytes | None = None
    if hint is not None and hint >= SPLIT_ALONE_BYTES and parts >= 2:
        split = entropy.encode_parts(codes, table, parts, threads)
        if len(split) > hint * (1 + SPLIT_COST):
            ranged = entropy.encode_codes(codes, table, threads)
    else:
        ranged, split = entropy.encode_codes_and_parts(codes, table, _split_parts, threads, guess=max(parts, 2))
    if ranged is not None and split is not None and len(split) > len(ranged) * (1 + SPLIT_COST):
        split = None
    kept = split if split is not None else ranged
    assert kept is not None  # one of the two is coded whatever the hint
    best = (RANGE_SPLIT if split is not None else RANGE_CODED, kept)
    if len(best[1]) >= TABLE_MIN_BYTES:
        limit, segments = len(best[1]) * (1 + table_cost), max(1, _split_parts(len(best[1])))
        # estimated first: a table stream that will not be kept costs a walk of the codes, not a coding
        if table_coding.estimate_bytes(codes, table, segments) <= limit:
            tabled = table_coding.encode(codes, table, segments, threads)
            if len(tabled) <= limit:
                best = (TABLE_CODED, tabled)
    width, planes = _planes(codes)
    zipped = _zstd(ZSTD_LEVEL_PLANES).compress(planes)
    return (width, zipped) if len(best[1]) > len(zipped) else best


def _split_parts(nbytes: int) -> int:
    """The segments a range-coded stream of ``nbytes`` is split into: none under :data:`SPLIT_MIN_BYTES`, else one
    per :data:`SPLIT_PART_BYTES`, 2 to :data:`inr.entropy.MAX_PARTS`."""
    return 0 if nbytes < SPLIT_MIN_BYTES else min(entropy.MAX_PARTS, max(2, nbytes // SPLIT_PART_BYTES))


def _size(res: Residual) -> int:
    return len(_code_bytes(res.codes, tuple(res.shape), res.bytes_hint, res.table_cost)[1]) \
        + 8 * int(res.exact_index.size)


def _grid_index(shape: tuple[int, ...], view: _View, tsl: _View, at: tuple[np.ndarray, ...]) -> np.ndarray:
    """Flat grid indices of the targets ``at`` (indices into ``grid[view][tsl]``)."""
    coords = [(v.start or 0) + (v.step or 1) * ((t.start or 0) + (t.step or 1) * i) for v, t, i in zip(view, tsl, at)]
    return np.ravel_multi_index(coords, shape)


def _trial_every(shape: tuple[int, ...]) -> int:
    """Modes are tried on every m-th line across a pass's axis (targets of ``shape``): about
    :data:`TRIAL_SAMPLES` targets (m = 1, the whole pass, when it is small)."""
    n = int(np.prod(shape))
    return int(np.ceil(np.sqrt(n / TRIAL_SAMPLES))) if n > 2 * TRIAL_SAMPLES else 1


def _trial_view(shape: tuple[int, ...], axis: int) -> _View:
    """The part of a pass view its modes are tried on (:func:`_trial_every`)."""
    m = _trial_every(shape)
    return tuple(slice(None) if ax == axis else slice(None, None, m) for ax in range(3))  # type: ignore[return-value]


def _encode(d: np.ndarray, net: np.ndarray | None, eps: float, margin: float, tol: float, ulp: float,
            modes_tried: tuple[str, ...], fixed: tuple[str, ...] | None = None, alpha: float = ALPHA) -> Residual:
    """One greedy encoding: each pass keeps the mode of ``modes_tried`` whose codes compress smallest (judged on
    :func:`_trial_view`) among those whose backend deviation bound stays within ``margin``; every decoded value
    is verified here in float64 after the float32 rounding; misses are stored exactly. ``net`` None: no network
    (the modes reading it are not tried)."""
    # a float32 step (rounded down: every value stays in bound), which the section stores in 4 bytes; so is the
    # bound where it is a float32 (the PSNR search's are), else the section keeps both as float64
    step = float32_below(2.0 * (eps - margin))
    res = Residual(eps, step, tuple(d.shape), (), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(0, np.float32), alpha=alpha)
    out = np.zeros(d.shape, np.float32)
    d = np.ascontiguousarray(d, dtype=np.float64)
    codes = np.zeros(d.size, np.int64)  # every sample is the target of exactly one pass
    modes, exact, pos = [], [], 0
    native = _native_passes()
    threads = coder_threads()
    deviation = 0.0
    coded: float | None = 0.0  # the kept trials' bytes, scaled to whole passes (None: a pass without a trial)
    for i, (axis, h, view, tsl) in enumerate(res._all_passes()):
        dec, dv = out[view], d[view]
        nv = None if net is None else net[view]
        st = _level_step(step, h, res.alpha, res.beta)
        allowed = []
        for mode in modes_tried:
            a, b = _GROWTH[mode]
            dev = a * deviation + b * tol
            dev = dev + ulp if dev > 0 else 0.0
            if dev <= margin and (i > 0 or mode in ("net", "zero")) and (nv is not None or mode not in NETWORK_MODES):
                allowed.append((mode, dev))
        mode, dev = allowed[0]  # 'zero' is always allowed
        if fixed is not None:  # an earlier coding's choice (no network: every mode allowed past the anchor)
            mode, dev = next((m, dv_m) for m, dv_m in allowed if m == fixed[i])
        elif len(allowed) > 1 and native is not None and i > 0 and all(m in _NATIVE_MODES for m, _ in allowed):
            # the C++ pass gives the numpy trial's codes bit for bit: the same choice, no per-pass numpy work
            every = _trial_every(dv[tsl].shape)
            costs = native.residual_trial_passes(out, d, _strides(view), axis, h,
                                                 np.array([_NATIVE_MODES[m] for m, _ in allowed], np.int64), st,
                                                 every, TRIAL_PRUNE, TRIAL_PRUNE_BITS, threads)
            mode, dev = allowed[int(np.argmin(costs))]  # on a tie the earlier; a trial not coded costs INT64_MAX
            shp = dv[tsl].shape
            tried = int(np.prod([n if a == axis else -(-n // every) for a, n in enumerate(shp)]))
            coded = None if coded is None else coded + min(costs) * int(np.prod(shp)) / max(tried, 1)
        elif len(allowed) > 1:
            sub = _trial_view(dv[tsl].shape, axis)
            dsub, nsub = dec[sub], None if nv is None else nv[sub]
            nt_sub = None if nsub is None else nsub[tsl].astype(np.float64)
            target_sub = dv[sub][tsl]
            ks = [_codes_of(np.rint((target_sub - _predict(m, dsub, nsub, axis, tsl, nt_sub)) / st))
                  for m, _ in allowed]
            best = None
            for (m, dv_m), k, worth in zip(allowed, ks, _worth_coding([_bit_length_sum(k) for k in ks])):
                cost = _trial_cost(k, h) if worth else None
                if cost is not None and (best is None or cost < best[0]):
                    best = (cost, m, dv_m)
            cost, mode, dev = best  # type: ignore[misc]
            coded = None if coded is None else coded + cost * dv[tsl].size / max(target_sub.size, 1)
        elif i > 0:  # one mode allowed, or the modes given: no trial to go by
            coded = None
        deviation = max(deviation, dev)
        modes.append(mode)
        if native is not None and mode in _NATIVE_MODES and i > 0:
            n = dec[tsl].size
            missed = native.residual_encode_pass(out, d, codes, pos, _strides(view), axis, h, _NATIVE_MODES[mode],
                                                 st, eps - margin, threads)
            pos += n
            if missed.size:
                exact.append(missed)
            continue
        target = dv[tsl]
        pred = _predict(mode, dec, nv, axis, tsl, None if nv is None else nv[tsl].astype(np.float64))
        k = _codes_of(np.rint((target - pred) / st))
        rec = (pred + k * st).astype(np.float32)
        bad = ~(np.abs(rec.astype(np.float64) - target) <= eps - margin)  # NaN: stored exactly too
        if bad.any():
            k[bad] = 0
            rec[bad] = target[bad].astype(np.float32)
            exact.append(_grid_index(d.shape, view, tsl, np.nonzero(bad)))
        dec[tsl] = rec
        codes[pos:pos + k.size] = k.ravel()
        pos += k.size
    res.modes, res.codes, res.bytes_hint = tuple(modes), codes, None if coded is None else int(coded)
    if exact:
        res.exact_index = np.concatenate(exact).astype(np.int64)
        res.exact_values = d.ravel()[res.exact_index].astype(np.float32)
    return res
