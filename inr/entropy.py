"""Context-adaptive binary range coding of the residual coder's integer codes (the reference; C++ in
``cpp/inr_native/entropy.cpp`` gives the same bytes, and :func:`encode_codes` / :func:`decode_codes` use it
where it is built).

Why not zstd on byte planes: a pass's codes are interpolation errors, small
where the field is smooth and larger near its features, so a code is best
predicted by the size of its already coded neighbours in the same pass. An
adaptive binary coder conditioned on them (the context modelling of CALIC and
SPERR) stores 20-50 % less than zstd at level 19 on the same codes (CT and MR
scans, the proxies' fields), 30-50x faster than zstd 19, and needs no tables (a
small block pays nothing for them).

Each pass's codes are in the C order of its targets, shape ``(nz, ny, nx)``,
coded row by row (a row: the ``nx`` codes of one ``(z, y)``). A row first
gets one bit, whether any of its codes is nonzero, context (level, how many of
the rows before it at ``y - 1`` and ``z - 1`` had one): smooth stretches cost a
bit per row, not per sample. In a row that has one, a code ``k`` with
neighbours ``a, b, c`` (the codes before it along x, y and z in the pass; 0
past an edge) and ``m = min(|a|,3) + min(|b|,3) + min(|c|,3)`` is coded as
bits, each with an adaptive probability:

* ``k != 0``, context (level, m);
* the sign, context (sign of ``a``);
* ``|k| - 1`` in unary up to :data:`UNARY` ones, context (level class, m, position);
* past that, ``|k| - 1 - UNARY`` in Exp-Golomb: its exponent in unary (context: position), then the bits
  below the leading one (context: place from the lowest bit).

The level is that of the pass (1 the finest); the level class is 0 for level 1, 1 for level 2, 2 for the rest.

A plain stream (:func:`encode_codes`) of a grid of :data:`SPLIT_CODES` codes or
more is coded in two independent segments, ``varint size of the first | first |
second``: the passes before the last, and the last (half of the codes), each
with fresh contexts, so that two threads decode it (the segments follow from the
passes: nothing says so).

A split stream (:func:`encode_parts`, what inr/residual.py's RANGE_SPLIT
sections hold) is ``varint K | K - 1 varint starts | K - 1 varint sizes |
K segments``: segment i codes the z-planes from ``starts[i - 1]`` (0 for the
first) to the next start, counted over every pass's planes in order, as passes
of their own (a segment's first plane has no plane before it, and its contexts
start afresh); the last segment's size is what is left. The encoder places the
starts so that the segments take about as long to decode, and K threads decode
them at once.

The coder is LZMA's range coder with 16-bit probabilities: a 32-bit range,
``bound = (range >> 16) * p0``; the first output byte (always 0) is not
stored, nor are up to :data:`FLUSH_ZEROS` trailing zero bytes of the flush (the
decoder reads zeros past the end, and a stream whose decoding stops elsewhere is
malformed). A probability ``P(bit = 0)`` is kept in 31 bits and
moves toward each coded bit by ``1 / 2^shift`` of the distance, the shift
growing with the bits the context has seen (1, 2, 2, 3, 3, 3, 3, 4, ... up to
:data:`MAX_SHIFT`): a context learns in a few bits, then averages over ~2^7.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from .errors import ModelFormatError
from .packing import Reader, varint

#: unary positions of the magnitude before Exp-Golomb takes over
UNARY = 14
#: the slowest adaptation (1 / 2^MAX_SHIFT of the distance per bit)
MAX_SHIFT = 7
#: levels with contexts of their own (coarser ones share the last)
LEVELS = 12
#: m = min(|a|,3) + min(|b|,3) + min(|c|,3): 0 .. 9
NEIGHBOURHOODS = 10
#: Exp-Golomb exponent positions with contexts of their own
EXPONENTS = 40
#: Exp-Golomb mantissa bits with contexts of their own, by their place from the lowest (integer-valued data at
#: a tight bound gives codes whose low bits repeat: 8 % fewer bytes on a CT scan at 1e-5 of its range)
MANTISSAS = 64
#: from this many codes on, the stream is two segments coded independently (the passes before the last, and the
#: last: about half the codes each), which two threads decode at once; the second costs its contexts' learning
#: again (a few dozen bytes) and the first's size (a varint)
SPLIT_CODES = 1 << 20
#: segments of a split stream at most (:func:`encode_parts`): as many threads decode them at once
MAX_PARTS = 16
#: trailing zero bytes of the flush left out at most (so a decoder that ends further past the end than this read
#: a stream that is not the one of these passes)
FLUSH_ZEROS = 4

_ONE = 1 << 31  # probability scale of the state
_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF

# the contexts, as offsets into one table of states
_ROW = 0
_ZERO = _ROW + LEVELS * 3
_SIGN = _ZERO + LEVELS * NEIGHBOURHOODS
_MAG = _SIGN + 3
_EXP = _MAG + 3 * NEIGHBOURHOODS * UNARY
_MANT = _EXP + EXPONENTS
N_CONTEXTS = _MANT + MANTISSAS


def _shift(count: int) -> int:
    """The adaptation shift after ``count`` bits seen (1 + floor(log2(count + 1)), at most MAX_SHIFT)."""
    return min(MAX_SHIFT, (count + 1).bit_length())


class _Model:
    """Every context's probability of a 0 (31-bit) and the bits it has seen (saturating)."""

    def __init__(self) -> None:
        self.p = [_ONE >> 1] * N_CONTEXTS
        self.n = [0] * N_CONTEXTS

    def p16(self, ctx: int) -> int:
        return min(max(self.p[ctx] >> 15, 1), 0xFFFF)

    def update(self, ctx: int, bit: int) -> None:
        s = _shift(self.n[ctx])
        if bit:
            self.p[ctx] -= self.p[ctx] >> s
        else:
            self.p[ctx] += (_ONE - self.p[ctx]) >> s
        if self.n[ctx] < 255:
            self.n[ctx] += 1


class _Encoder:
    def __init__(self) -> None:
        self.low, self.range, self.cache, self.pending, self.out = 0, _MASK32, 0, 1, bytearray()
        self.first = True

    def bit(self, p0: int, bit: int) -> None:
        bound = (self.range >> 16) * p0
        if bit:
            self.low += bound
            self.range -= bound
        else:
            self.range = bound
        while self.range < _TOP:
            self.range = (self.range << 8) & _MASK32
            self._shift_low()

    def _shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low >= 1 << 32:
            carry = self.low >> 32
            temp = self.cache
            while True:
                if self.first:  # LZMA's first byte: always 0, not stored
                    self.first = False
                else:
                    self.out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self.pending -= 1
                if not self.pending:
                    break
            self.cache = (self.low >> 24) & 0xFF
        self.pending += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift_low()
        out = bytes(self.out)
        return out[:max(len(out.rstrip(b"\0")), len(out) - FLUSH_ZEROS)]


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0
        self.range, self.code = _MASK32, 0
        for _ in range(4):
            self.code = (self.code << 8) | self._byte()

    def _byte(self) -> int:
        at = self.at
        self.at += 1
        return self.data[at] if at < len(self.data) else 0

    def bit(self, p0: int) -> int:
        bound = (self.range >> 16) * p0
        if self.code < bound:
            self.range = bound
            bit = 0
        else:
            self.code -= bound
            self.range -= bound
            bit = 1
        while self.range < _TOP:
            self.range = (self.range << 8) & _MASK32
            self.code = ((self.code << 8) | self._byte()) & _MASK32
        return bit


#: 2^0 .. 2^63: a magnitude's bit length is how many of them it reaches
_POW2 = np.array([1 << b for b in range(64)], np.uint64)


def bit_lengths(mag: np.ndarray) -> np.ndarray:
    """The bit length of each magnitude (uint64; 0 for 0), exactly (a float log2 rounds past 2^53)."""
    return np.searchsorted(_POW2, mag, side="right")


def pass_table(shapes: list[tuple[int, int, int]], levels: list[int]) -> np.ndarray:
    """The (n_passes, 4) int64 table the coder walks: each pass's target shape (nz, ny, nx) and level."""
    return np.array([(*s, lv) for s, lv in zip(shapes, levels)], dtype=np.int64).reshape(-1, 4)


def _walk(table: np.ndarray, codes: np.ndarray, row_flag, code_one) -> None:  # type: ignore[no-untyped-def]
    """Walk the passes of ``table`` row by row (a row: the ``nx`` codes of one (z, y)): ``row_flag(start, nx, ctx)``
    codes or decodes whether the row holds a nonzero code and returns it; only then is each of its codes ``i``
    coded by ``code_one(i, ctx_zero, ctx_sign, mag_base)`` (the contexts from the codes before it, which are in
    ``codes`` by then)."""
    pos = 0
    for nz, ny, nx, level in table.tolist():
        lv = min(max(level, 1), LEVELS) - 1
        zbase, rbase = _ZERO + lv * NEIGHBOURHOODS, _ROW + lv * 3
        mbase = _MAG + (0 if level <= 1 else 1 if level == 2 else 2) * NEIGHBOURHOODS * UNARY
        plane = ny * nx
        busy = [[False] * ny for _ in range(2)]  # whether each row of the previous and this z held a nonzero code
        for z in range(nz):
            prev, cur = busy[(z + 1) % 2], busy[z % 2]
            for y in range(ny):
                row = pos + (z * ny + y) * nx
                cur[y] = bool(row_flag(row, nx, rbase + (y > 0 and cur[y - 1]) + (z > 0 and prev[y])))
                if not cur[y]:
                    continue
                for x in range(nx):
                    i = row + x
                    a = int(codes[i - 1]) if x else 0
                    b = abs(int(codes[i - nx])) if y else 0
                    c = abs(int(codes[i - plane])) if z else 0
                    m = min(abs(a), 3) + min(b, 3) + min(c, 3)
                    code_one(i, zbase + m, _SIGN + (0 if a == 0 else 1 if a > 0 else 2), mbase + m * UNARY)
        pos += nz * plane


def encode_codes(codes: np.ndarray, table: np.ndarray, threads: int = 1) -> bytes:
    """The range-coded bytes of ``codes`` (int64, every pass's in order) for the passes of ``table``
    (:func:`pass_table`); ``threads`` > 1 codes two segments at once."""
    native = _native()
    codes = np.ascontiguousarray(codes, dtype=np.int64).ravel()
    if native is not None:
        return native.entropy_encode(codes, np.ascontiguousarray(table, dtype=np.int64), threads)
    _check(table, codes.size)
    return _plain_stream(_encode_pieces(codes, _part_tables(table, _implied_starts(table)), threads))


def decode_codes(data: bytes, table: np.ndarray, threads: int = 1) -> np.ndarray:
    """The codes :func:`encode_codes` stored in ``data`` (int64; from the C++ decoder int32 where every one fits);
    ``threads`` > 1 decodes two segments at once."""
    n = table_counts(table)[0]
    native = _native()
    if native is not None:
        return native.entropy_decode(bytes(data), np.ascontiguousarray(table, dtype=np.int64), n, threads)
    _check(table, n)
    data = bytes(data)
    pieces = _part_tables(table, _implied_starts(table))
    parts = [data]
    if len(pieces) > 1:
        r = Reader(data, 0, len(data), "residual codes")
        size = r.varint()
        if size > len(data) - r.at:
            raise ModelFormatError("residual codes malformed: segment past the end")
        parts = [data[r.at:r.at + size], data[r.at + size:]]
    codes = np.zeros(n, np.int64)
    for part, (t, a, b) in zip(parts, pieces):
        codes[a:b] = _decode_segment(part, t, b - a)
    return codes


def encode_parts(codes: np.ndarray, table: np.ndarray, parts: int, threads: int = 1,
                 costs: np.ndarray | None = None) -> bytes:
    """``codes`` (every pass's, in order) range-coded in at most ``parts`` (<= :data:`MAX_PARTS`) independent
    segments of about the same decoding time, which ``threads`` code at once (the format: module docstring).
    ``costs``: the planes' :func:`_plane_costs`, where the caller has them."""
    codes = np.ascontiguousarray(codes, dtype=np.int64).ravel()
    _check(table, codes.size)
    if not 1 <= parts <= MAX_PARTS:
        raise ValueError(f"entropy coder: parts={parts} must be in 1..{MAX_PARTS}")
    starts = _balanced_starts(_plane_costs(codes, table) if costs is None else costs, parts)
    return _split_stream(starts, _encode_pieces(codes, _part_tables(table, starts), threads))


def encode_codes_and_parts(codes: np.ndarray, table: np.ndarray, parts_for: Callable[[int], int],
                           threads: int = 1, guess: int = 2) -> tuple[bytes, bytes | None]:
    """(:func:`encode_codes`' stream, :func:`encode_parts`' in ``parts_for(len(that stream))`` segments, or None
    when that is under 2), the same bytes as those two calls. With two threads or more, the split in ``guess``
    segments (2..:data:`MAX_PARTS`: what ``parts_for`` is expected to ask) is coded alongside the plain stream,
    and kept when it is the one asked, so that nothing is coded after the plain stream."""
    codes = np.ascontiguousarray(codes, dtype=np.int64).ravel()
    _check(table, codes.size)
    if not 2 <= guess <= MAX_PARTS:
        raise ValueError(f"entropy coder: guess={guess} must be in 2..{MAX_PARTS}")
    plain_pieces = _part_tables(table, _implied_starts(table))
    costs = _plane_costs(codes, table)
    starts = _balanced_starts(costs, guess) if threads > 1 else None
    pieces = plain_pieces + ([] if starts is None else _part_tables(table, starts))
    segs = _encode_pieces(codes, pieces, threads)
    plain = _plain_stream(segs[:len(plain_pieces)])
    parts = parts_for(len(plain))
    if parts < 2:
        return plain, None
    if parts == guess and starts is not None:
        return plain, _split_stream(starts, segs[len(plain_pieces):])
    return plain, encode_parts(codes, table, parts, threads, costs=costs)


def _encode_pieces(codes: np.ndarray, pieces: list[tuple[np.ndarray, int, int]], threads: int) -> list[bytes]:
    """The segment of each (pass table, first code, end code) piece, on up to ``threads`` threads."""
    native = _native()
    if native is not None:
        return native.entropy_encode_parts(codes, [t for t, _, _ in pieces], threads,
                                           np.array([a for _, a, _ in pieces], np.int64))
    return [_encode_segment(codes[a:b], t) for t, a, b in pieces]


def _plain_stream(segs: list[bytes]) -> bytes:
    """A plain stream (module docstring) of its one or two segments: the first's size before them when two."""
    return b"".join([varint(len(segs[0]))] * (len(segs) > 1) + segs)


def _split_stream(starts: list[int], segs: list[bytes]) -> bytes:
    """A split stream (module docstring) of its segments, cut at plane ``starts``."""
    head = varint(len(segs)) + b"".join(varint(v) for v in starts) + b"".join(varint(len(g)) for g in segs[:-1])
    return head + b"".join(segs)


def split_head(data: bytes, table: np.ndarray) -> tuple[int, list[int], list[int], int]:
    """The head of a split stream (``varint K | K - 1 varint starts | K - 1 varint sizes``, this module's and
    :mod:`inr.table_coding`'s) for the passes of ``table``: (codes the passes cover, the segments' start planes, the
    sizes of all segments but the last, where the head ends); a head that does not fit the passes raises
    ModelFormatError."""
    n, planes = table_counts(table)
    r = Reader(data, 0, len(data), "residual codes")
    k = r.varint()
    if not 1 <= k <= MAX_PARTS:
        raise ModelFormatError(f"residual codes malformed: {k} segments (1..{MAX_PARTS})")
    starts = [r.varint() for _ in range(k - 1)]
    if any(not 0 < b < planes for b in starts) or starts != sorted(set(starts)):
        raise ModelFormatError(f"residual codes malformed: segment starts {starts} for {planes} planes")
    sizes = [r.varint() for _ in range(k - 1)]
    return n, starts, sizes, r.at


def decode_parts(data: bytes, table: np.ndarray, threads: int = 1) -> np.ndarray:
    """The codes :func:`encode_parts` stored in ``data`` (int64; from the C++ decoder int32 where every one fits);
    ``threads`` decode its segments at once."""
    data = bytes(data)
    n, starts, sizes, at = split_head(data, table)
    if sum(sizes) > len(data) - at:
        raise ModelFormatError("residual codes malformed: segment past the end")
    bounds = np.cumsum([at, *sizes, len(data) - at - sum(sizes)])
    pieces = _part_tables(table, starts)
    native = _native()
    if native is not None:
        try:
            return native.entropy_decode_parts(data, [t for t, _, _ in pieces], bounds.astype(np.int64), n, threads)
        except ValueError as exc:
            raise ModelFormatError(str(exc)) from exc
    codes = np.zeros(n, np.int64)
    for (t, a, b), s0, s1 in zip(pieces, bounds[:-1], bounds[1:]):
        codes[a:b] = _decode_segment(data[s0:s1], t, b - a)
    return codes


def _plane_costs(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Each z-plane's (every pass's, in order) binary decisions, about: a bit per row, a zero bit per code of a
    row that has a nonzero one, sign, unary and Exp-Golomb bits per nonzero code: what its decoding takes (the C++
    twin gives the same integers, a tenth of the time)."""
    native = _native()
    if native is not None:
        return native.entropy_plane_costs(np.ascontiguousarray(codes, dtype=np.int64).ravel(),
                                          np.ascontiguousarray(table, dtype=np.int64))
    out, pos = [], 0
    for nz, ny, nx, _ in table:
        k = np.abs(codes[pos:pos + nz * ny * nx].reshape(nz, ny, nx)).view(np.uint64)  # |INT64_MIN| = 2^63
        pos += nz * ny * nx
        busy = (k != 0).any(axis=2) if nx else np.zeros((nz, ny), bool)
        # Exp-Golomb past the unary part: 2e + 1 bits, e the bit length of k - UNARY less one
        tail = bit_lengths(np.maximum(k, UNARY + 1) - np.uint64(UNARY)) - 1
        bits = (2 * (k != 0) + np.minimum(np.maximum(k, 1) - np.uint64(1), UNARY).astype(np.int64)
                + np.where(k > UNARY, 2 * tail + 1, 0))
        out.append(ny + busy.sum(axis=1) * nx + bits.sum(axis=(1, 2)))
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def _balanced_starts(costs: np.ndarray, parts: int) -> list[int]:
    """Plane indices (ascending, inside the planes) where segments 2.. start, so that each holds about
    1 / ``parts`` of the costs (fewer segments when the planes are too few)."""
    cum = np.cumsum(costs)
    if not len(cum) or cum[-1] <= 0:
        return []
    starts = {int(np.searchsorted(cum, cum[-1] * i / parts)) + 1 for i in range(1, parts)}
    return sorted(b for b in starts if 0 < b < len(cum))


def _part_tables(table: np.ndarray, starts: list[int]) -> list[tuple[np.ndarray, int, int]]:
    """(pass table, first code, end code) of each segment of the planes cut at ``starts``: the passes' planes in
    each, as passes of their own (made once per grid shape and cut: a tenth of a small grid's decoding)."""
    return _part_tables_of(np.ascontiguousarray(table, dtype=np.int64).tobytes(), tuple(starts))


@functools.lru_cache(maxsize=256)
def _part_tables_of(table_bytes: bytes, starts: tuple[int, ...]) -> list[tuple[np.ndarray, int, int]]:
    table = np.frombuffer(table_bytes, np.int64).reshape(-1, 4)
    # the code each plane starts at, and where each pass's planes start
    at = np.concatenate([[0], np.cumsum(np.repeat(table[:, 1] * table[:, 2], table[:, 0]))]).astype(int)
    p0 = np.concatenate([[0], np.cumsum(table[:, 0])]).astype(int)
    bounds = [0, *starts, int(p0[-1])]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = [(min(b, p0[i] + nz) - max(a, p0[i]), ny, nx, lv) for i, (nz, ny, nx, lv) in enumerate(table.tolist())
                if max(a, p0[i]) < min(b, p0[i] + nz)]
        t = np.array(rows, np.int64).reshape(-1, 4)
        t.setflags(write=False)
        out.append((t, int(at[a]), int(at[b])))
    return out


def _implied_starts(table: np.ndarray) -> list[int]:
    """Where a plain stream's second segment starts (:func:`_part_tables`' cut): none, or, from
    :data:`SPLIT_CODES` codes on, at the last pass's first plane (the passes before it, and it: about half of
    the codes each)."""
    n = table_counts(table)[0]
    return [] if len(table) < 2 or n < SPLIT_CODES else [int(table[:-1, 0].sum())]


def _binarize(codes: np.ndarray, table: np.ndarray, put: Callable[[int, int], None]) -> None:
    """Hand each bit of the codes of ``table``'s passes to ``put(ctx, bit)`` with its context, in coding order:
    what a segment codes (:func:`_encode_segment`) and what a trial is costed by (:func:`estimate_bytes`)."""

    def code_one(i: int, cz: int, cs: int, mb: int) -> None:
        k = int(codes[i])
        put(cz, k != 0)
        if not k:
            return
        put(cs, k < 0)
        mag = abs(k) - 1
        for j in range(UNARY):
            put(mb + j, mag > j)
            if mag <= j:
                return
        v = mag - UNARY + 1  # Exp-Golomb of mag - UNARY: the exponent in unary, then its bits
        e = v.bit_length() - 1
        for j in range(e):
            put(_EXP + min(j, EXPONENTS - 1), 1)
        put(_EXP + min(e, EXPONENTS - 1), 0)
        for j in range(e - 1, -1, -1):
            put(_MANT + min(j, MANTISSAS - 1), (v >> j) & 1)

    def row_flag(start: int, nx: int, ctx: int) -> bool:
        busy = bool(np.any(codes[start:start + nx]))
        put(ctx, busy)
        return busy

    _walk(table, codes, row_flag, code_one)


def _encode_segment(codes: np.ndarray, table: np.ndarray) -> bytes:
    model, enc = _Model(), _Encoder()

    def put(ctx: int, bit: int) -> None:
        enc.bit(model.p16(ctx), bit)
        model.update(ctx, bit)

    _binarize(codes, table, put)
    return enc.finish()


#: the unit of :func:`estimate_bytes`' sums: 1/_COST_UNITS of a bit
_COST_UNITS = 256
#: -log2(q / 2^16) in 1/_COST_UNITS bits for a coded bit of 16-bit probability q, by q >> 4 (the middle of each of
#: 4096 steps), rounded half up; cpp/inr_native/entropy.cpp LOG_COST is the same table
_LOG_COST = [math.floor(-math.log2((max(i, 1) * 16 + 8) / 65536) * _COST_UNITS + 0.5) for i in range(4097)]


def estimate_bytes(codes: np.ndarray, table: np.ndarray) -> int:
    """About the bytes of ``codes`` coded as one segment for the passes of ``table``: each bit's cost under the
    coder's adaptive probabilities, summed and rounded up to bytes (within a few bytes of :func:`encode_codes`'
    stream below :data:`SPLIT_CODES` codes; the coder's arithmetic and output, a third of its time on dense codes,
    left out). What the encoder's mode trials are judged by."""
    codes = np.ascontiguousarray(codes, dtype=np.int64).ravel()
    native = _native()
    if native is not None:
        return int(native.entropy_estimate(codes, np.ascontiguousarray(table, dtype=np.int64)))
    _check(table, codes.size)
    model, units = _Model(), [0]

    def put(ctx: int, bit: int) -> None:
        p0 = model.p16(ctx)
        units[0] += _LOG_COST[((65536 - p0) if bit else p0) >> 4]
        model.update(ctx, bit)

    _binarize(codes, table, put)
    return -(-units[0] // (8 * _COST_UNITS))


def _decode_segment(data: bytes, table: np.ndarray, n: int) -> np.ndarray:
    codes = np.zeros(n, np.int64)
    model, dec = _Model(), _Decoder(data)

    def get(ctx: int) -> int:
        bit = dec.bit(model.p16(ctx))
        model.update(ctx, bit)
        return bit

    def code_one(i: int, cz: int, cs: int, mb: int) -> None:
        if not get(cz):
            return
        negative = get(cs)
        mag = 0
        while mag < UNARY and get(mb + mag):
            mag += 1
        if mag == UNARY:
            e = 0
            while get(_EXP + min(e, EXPONENTS - 1)):
                e += 1
                if e > 62:
                    raise ModelFormatError("residual codes malformed: a code runs past 64 bits")
            v = 1
            for j in range(e - 1, -1, -1):
                v = (v << 1) | get(_MANT + min(j, MANTISSAS - 1))
            mag = UNARY + v - 1
        codes[i] = -(mag + 1) if negative else mag + 1

    _walk(table, codes, lambda start, nx, ctx: get(ctx), code_one)
    _check_end(dec.at, len(data))
    return codes


def _check_end(read: int, size: int) -> None:
    """A stream of these passes ends where its decoder stops reading: at most FLUSH_ZEROS (left-out) bytes past it."""
    if not size <= read <= size + FLUSH_ZEROS:
        raise ModelFormatError(f"residual codes malformed: the passes read {read} bytes of a stream of {size}")


def table_counts(table: np.ndarray) -> tuple[int, int]:
    """(codes, z-planes) the passes of ``table`` cover; a ValueError when it is not (nz, ny, nx, level) rows of
    numbers >= 0. Kept per table: a small grid's decoding asked for them six times (numpy reductions, ~20 us)."""
    if table.ndim != 2 or table.shape[1] != 4:
        raise ValueError("entropy coder: a pass table of (nz, ny, nx, level) rows")
    return _table_counts(np.ascontiguousarray(table, dtype=np.int64).tobytes())


@functools.lru_cache(maxsize=256)
def _table_counts(raw: bytes) -> tuple[int, int]:
    t = np.frombuffer(raw, np.int64).reshape(-1, 4)
    if (t < 0).any():
        raise ValueError("entropy coder: negative entry in the pass table")
    return int(np.prod(t[:, :3], axis=1).sum()), int(t[:, 0].sum())


def _check(table: np.ndarray, n: int) -> None:
    if table_counts(table)[0] != n:
        raise ValueError(f"entropy coder: a pass table of (nz, ny, nx, level) rows covering {n} codes")


def _native():  # type: ignore[no-untyped-def]
    try:
        from . import _native
    except ImportError:
        return None
    return _native if hasattr(_native, "entropy_encode") else None
