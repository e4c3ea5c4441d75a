"""Table coding of the residual coder's integer codes: static per-context frequency tables and two interleaved
rANS states (the reference; C++ in ``cpp/inr_native/table_coder.cpp`` gives the same bytes, and :func:`encode` /
:func:`decode` use it where it is built).

Why a second coder: the adaptive binary coder of :mod:`inr.entropy` decodes a
code as a chain of dependent binary decisions (about 1.5 per code), each one a
branch the processor cannot predict. Here a code is one symbol, decoded by one
table lookup with no branch on what it is, about twice as fast (measured on the
residual codes of CT and MR scans), for 1-4 % more bytes: the tables are sent
(a few hundred bytes) and do not adapt. inr/residual.py keeps it where it costs
little (``TABLE_COST``).

The codes are walked as :mod:`inr.entropy` walks them: each pass's codes in the
C order of its targets, row by row. A row first gets a symbol, 1 when any of its
codes is nonzero (context: level class, how many of the rows before it at
``y - 1`` and ``z - 1`` had one); only then does each of its codes ``k`` get a
symbol, with neighbours ``a, b, c`` (the codes before it along x, y and z in the
pass; 0 past an edge), context (level class, ``min(min(|b|,3) + min(|c|,3),
NEAR)``, ``min(|a|,3)``). The level class is 0 for level 1, 1 for level 2, 2 for
the rest. The symbol of ``k`` is 0 for 0; for ``|k| <= DIRECT``, ``2|k| - 1``
when ``k`` has the sign of ``a`` (or ``a`` is 0 and ``k > 0``), else ``2|k|``;
past that ESCAPE, and ``|k| - DIRECT`` goes to the segment's escape bits as an
Elias gamma code, then one bit, whether ``k``'s sign differs from ``a``'s (as
above).

Each context has a table: the frequencies of its symbols out of ``2^PROB_BITS``.
The tables of all contexts come once, bit-packed (most significant bit first,
padded to a byte): per context, LENGTH_BITS of ``n``, the symbols up to the last
one used (0: the context is unused); from two on, PRECISION_BITS of ``p -
MIN_PRECISION`` and the frequencies of symbols ``1 .. n-1`` at precision ``p``
as gamma codes of frequency + 1; symbol 0 has what they leave of ``2^p``. A
frequency ``q`` at precision ``p`` is ``q << (PROB_BITS - p)``. The encoder
rounds each context's counts to the precision of fewest bits, tables and codes
(:func:`_quantize`, costs from :data:`inr.entropy._LOG_COST`).

A stream is ``varint K | K - 1 varint starts | K - 1 varint sizes | tables |
K segments``: as :func:`inr.entropy.encode_parts`' split stream, segment ``i``
codes the z-planes from ``starts[i - 1]`` (0 for the first) to the next start,
counted over every pass's planes, as passes of their own (a segment's first
plane has no plane before it); the last segment's size is what is left. A
segment is ``u32 state 0 | u32 state 1 | varint W | W 16-bit words | escape
bits``, little-endian. Its symbols alternate between the two states (symbol
``j`` from state ``j % 2``); a state ``x`` in ``[2^16, 2^32)`` decodes the
symbol whose slots hold ``x mod 2^PROB_BITS``, becomes ``freq * (x >>
PROB_BITS) + x mod 2^PROB_BITS - start``, and reads the next word as its low 16
bits when it falls below ``2^16``. A well-formed segment reads every word, ends
with both states at ``2^16`` and its escape bits at its last byte.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import entropy
from .errors import ModelFormatError
from .packing import Reader, varint

#: symbols: 0, the magnitudes 1..DIRECT with a sign each, and ESCAPE (larger magnitudes)
DIRECT = 7
ALPHABET = 2 * DIRECT + 2
ESCAPE = ALPHABET - 1
#: the y and z neighbours' size in a context: min(|b|,3) + min(|c|,3), at most NEAR
NEAR = 3
CLASSES = 3
CODE_CONTEXTS = CLASSES * (NEAR + 1) * 4
ROW_CONTEXTS = CLASSES * 3
N_CONTEXTS = CODE_CONTEXTS + ROW_CONTEXTS
#: frequencies are out of 2^PROB_BITS; a state lives in [LOW, LOW << 16)
PROB_BITS = 10
LOW = 1 << 16
MIN_PRECISION, LENGTH_BITS, PRECISION_BITS = 3, 5, 3


def _level_class(level: int) -> int:
    return 0 if level <= 1 else 1 if level == 2 else 2


def _code_context(cls: int, near: int, small_a: int) -> int:
    return (cls * (NEAR + 1) + min(near, NEAR)) * 4 + small_a


def _row_context(cls: int, busy_before: int) -> int:
    return CODE_CONTEXTS + cls * 3 + busy_before


class _BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, v: int, n: int) -> None:
        self.bits.extend((v >> i) & 1 for i in range(n - 1, -1, -1))

    def gamma(self, v: int) -> None:
        n = v.bit_length()
        self.put(0, n - 1)
        self.put(v, n)

    def finish(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def bit(self) -> int:
        byte = self.at >> 3
        b = (self.data[byte] >> (7 - (self.at & 7))) & 1 if byte < len(self.data) else 0
        self.at += 1
        return b

    def bits(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def gamma(self) -> int:
        zeros = 0
        while not self.bit():
            zeros += 1
            if zeros > 62 or self.past():
                raise ModelFormatError("residual codes malformed: a gamma code runs past 64 bits")
        return (1 << zeros) | self.bits(zeros)

    def past(self) -> bool:
        return self.at > 8 * len(self.data)

    def bytes_read(self) -> int:
        return (self.at + 7) >> 3


def _walk(table: np.ndarray, codes: np.ndarray, row_flag: Callable[[int, list[int], int, int, bool], object],
          code_one: Callable[[int, int, int], int], every: int = 1) -> None:
    """Walk the passes of ``table`` row by row, as :func:`inr.entropy._walk`, with this coder's contexts:
    ``row_flag(ctx, k, row, nx, counted)`` gives whether the row at ``k[row:row + nx]`` holds a nonzero code
    (``counted``: whether this row is one of every ``every``-th, counted over all passes); only for those that
    do and are counted, ``k[i] = code_one(ctx, k[i], a)`` for each code, ``a`` the one before it along x. ``k``:
    each pass's codes as a list of ints, written back to ``codes`` at the pass's end."""
    pos = counted = 0
    for nz, ny, nx, level in table.tolist():
        cls, plane = _level_class(level), ny * nx
        k = [int(v) for v in codes[pos:pos + nz * plane]]
        busy = [[False] * ny for _ in range(2)]
        for z in range(nz):
            prev, cur = busy[(z + 1) % 2], busy[z % 2]
            for y in range(ny):
                row = (z * ny + y) * nx
                take = counted % every == 0
                counted += 1
                cur[y] = bool(row_flag(_row_context(cls, (y > 0 and cur[y - 1]) + (z > 0 and prev[y])), k, row, nx,
                                       take))
                if not (cur[y] and take):
                    continue
                for i in range(row, row + nx):
                    a = k[i - 1] if i > row else 0
                    near = (min(abs(k[i - nx]), 3) if y else 0) + (min(abs(k[i - plane]), 3) if z else 0)
                    k[i] = code_one(_code_context(cls, near, min(abs(a), 3)), k[i], a)
        codes[pos:pos + nz * plane] = k
        pos += nz * plane


def _symbols(codes: np.ndarray, table: np.ndarray, every: int = 1) -> tuple[list[tuple[int, int]], _BitWriter]:
    """Each (context, symbol) of the codes of ``table``'s passes in coding order, and the escapes' bits; ``every``
    > 1: those of every ``every``-th row only (counted over all passes), a sample."""
    out: list[tuple[int, int]] = []
    esc = _BitWriter()

    def row_flag(ctx: int, k: list[int], row: int, nx: int, take: bool) -> bool:
        busy = any(k[row:row + nx])
        if take:
            out.append((ctx, int(busy)))
        return busy

    def code_one(ctx: int, k: int, a: int) -> int:
        out.append((ctx, _symbol(k, a, esc)))
        return k

    _walk(table, np.array(codes, dtype=np.int64), row_flag, code_one, every)
    return out, esc


def _symbol(k: int, a: int, esc: _BitWriter) -> int:
    mag, neg = abs(k), int((k < 0) != (a < 0))
    if not mag:
        return 0
    if mag <= DIRECT:
        return 2 * mag - 1 + neg
    esc.gamma(mag - DIRECT)
    esc.put(neg, 1)
    return ESCAPE


def _quantize(h: list[int], p: int) -> list[int]:
    """Frequencies at precision ``p`` (summing to 2^p, each used symbol at least 1) from counts ``h``: each rounded
    from its share, then the largest (the first of equals) takes up the difference, down to 1 at least."""
    total, target = sum(h), 1 << p
    q = [max(1, (c * target + total // 2) // total) if c else 0 for c in h]
    s = sum(q)
    while s != target:
        big = q.index(max(q))
        if s < target:
            q[big] += target - s
            s = target
        else:
            take = min(s - target, q[big] - 1)
            q[big] -= take
            s -= take
    return q


def _gamma_bits(v: int) -> int:
    return 2 * (v.bit_length() - 1) + 1


def _write_table(h: list[int], w: _BitWriter) -> list[int]:
    """Writes one context's table (module docstring) for counts ``h``; its frequencies out of 2^PROB_BITS."""
    n = max((s + 1 for s, c in enumerate(h) if c), default=0)
    w.put(n, LENGTH_BITS)
    if n < 2:
        return [1 << PROB_BITS] * n + [0] * (ALPHABET - n)
    seen = sum(1 for c in h if c)
    best: tuple[int, int, list[int]] | None = None
    for p in range(MIN_PRECISION, PROB_BITS + 1):
        if (1 << p) < seen:
            continue
        q = _quantize(h[:n], p)
        cost = PRECISION_BITS * entropy._COST_UNITS + sum(_gamma_bits(v + 1) for v in q[1:]) * entropy._COST_UNITS
        cost += sum(c * entropy._LOG_COST[q[s] << (12 - p)] for s, c in enumerate(h[:n]) if c)
        if best is None or cost < best[0]:
            best = (cost, p, q)
    assert best is not None
    _, p, q = best
    w.put(p - MIN_PRECISION, PRECISION_BITS)
    for v in q[1:]:
        w.gamma(v + 1)
    return [v << (PROB_BITS - p) for v in q] + [0] * (ALPHABET - n)


def _read_tables(r: _BitReader) -> list[list[int]]:
    """Every context's frequencies (all zero: unused), read as :func:`_write_table` wrote them."""
    freqs = []
    for c in range(N_CONTEXTS):
        n = r.bits(LENGTH_BITS)
        if n > (ALPHABET if c < CODE_CONTEXTS else 2):
            raise ModelFormatError(f"residual codes malformed: a table of {n} symbols")
        f = [0] * ALPHABET
        if n == 1:
            f[0] = 1 << PROB_BITS
        elif n >= 2:
            p = MIN_PRECISION + r.bits(PRECISION_BITS)
            q = [r.gamma() - 1 for _ in range(n - 1)]
            if sum(q) > 1 << p:
                raise ModelFormatError("residual codes malformed: a table's frequencies")
            f[:n] = [v << (PROB_BITS - p) for v in [(1 << p) - sum(q), *q]]
        freqs.append(f)
    if r.past():
        raise ModelFormatError("residual codes malformed: tables past the end")
    return freqs


def _starts_of(freqs: list[list[int]]) -> list[list[int]]:
    return [[sum(f[:s]) for s in range(ALPHABET)] for f in freqs]


def _encode_segment(symbols: list[tuple[int, int]], escapes: bytes, freqs: list[list[int]],
                    starts: list[list[int]]) -> bytes:
    x = [LOW, LOW]
    words: list[int] = []
    for j in range(len(symbols) - 1, -1, -1):
        ctx, s = symbols[j]
        f, c = freqs[ctx][s], starts[ctx][s]
        st = x[j & 1]
        if st >= f << (32 - PROB_BITS):
            words.append(st & 0xFFFF)
            st >>= 16
        x[j & 1] = ((st // f) << PROB_BITS) + st % f + c
    out = b"".join(v.to_bytes(4, "little") for v in x) + varint(len(words))
    return out + b"".join(w.to_bytes(2, "little") for w in reversed(words)) + escapes


def _decode_segment(data: bytes, table: np.ndarray, n: int, freqs: list[list[int]]) -> np.ndarray:
    if len(data) < 9:
        raise ModelFormatError(f"residual codes malformed: a table-coded segment of {len(data)} bytes")
    x = [int.from_bytes(data[0:4], "little"), int.from_bytes(data[4:8], "little")]
    r = Reader(data, 8, len(data), "residual codes")
    nwords = r.varint()
    if nwords > (len(data) - r.at) // 2:
        raise ModelFormatError("residual codes malformed: words past the end")
    words = [int.from_bytes(data[r.at + 2 * i:r.at + 2 * i + 2], "little") for i in range(nwords)]
    esc = _BitReader(data[r.at + 2 * nwords:])
    slots = []  # per context: the symbol of each slot
    for f in freqs:
        slots.append([s for s in range(ALPHABET) for _ in range(f[s])])
    starts = _starts_of(freqs)
    state = {"j": 0, "w": 0}

    def get(ctx: int) -> int:
        if not slots[ctx]:
            raise ModelFormatError("residual codes malformed: a symbol in a context that has no table")
        j = state["j"] & 1
        slot = x[j] & ((1 << PROB_BITS) - 1)
        s = slots[ctx][slot]
        v = freqs[ctx][s] * (x[j] >> PROB_BITS) + slot - starts[ctx][s]
        if v < LOW:
            if state["w"] >= nwords:
                raise ModelFormatError("residual codes malformed: the words run out")
            v = (v << 16) | words[state["w"]]
            state["w"] += 1
        x[j] = v
        state["j"] += 1
        return s

    def code_one(ctx: int, _: int, a: int) -> int:
        s = get(ctx)
        if s == ESCAPE:
            mag, neg = esc.gamma() + DIRECT, esc.bit()
        else:
            mag, neg = (s + 1) // 2, int(s > 0 and s % 2 == 0)
        neg ^= int(a < 0)
        if mag >= 1 << 63 and not (neg and mag == 1 << 63):
            raise ModelFormatError("residual codes malformed: a code past 64 bits")
        return -mag if neg else mag

    codes = np.zeros(n, np.int64)
    _walk(table, codes, lambda ctx, k, row, nx, take: get(ctx), code_one)
    if state["w"] != nwords or x != [LOW, LOW]:
        raise ModelFormatError("residual codes malformed: the rANS states do not end where they began")
    if esc.past() or r.at + 2 * nwords + esc.bytes_read() != len(data):
        raise ModelFormatError("residual codes malformed: the escapes do not end with the segment")
    return codes


def _plane_symbols(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Each z-plane's (every pass's, in order) symbols: one per row, one per code of a row that has a nonzero one
    (what its decoding takes)."""
    out, pos = [], 0
    for nz, ny, nx, _ in table.tolist():
        k = codes[pos:pos + nz * ny * nx].reshape(nz, ny, nx)
        pos += nz * ny * nx
        busy = k.any(axis=2) if nx else np.zeros((nz, ny), bool)
        out.append(ny + busy.sum(axis=1) * nx)
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


#: from this many codes on, :func:`estimate_bytes` samples every ESTIMATE_EVERY-th row
ESTIMATE_SAMPLED, ESTIMATE_EVERY = 1 << 16, 4


def estimate_bytes(codes: np.ndarray, table: np.ndarray, parts: int = 1) -> int:
    """About the bytes of :func:`encode`'s stream of ``codes`` in ``parts`` segments: the tables, each symbol's cost
    under them, the escapes' bits and each segment's states (the segments' own edges left out), from every
    :data:`ESTIMATE_EVERY`-th row of grids of :data:`ESTIMATE_SAMPLED` codes or more (within about 1 %, measured
    on CT and MR scans). What decides, before coding, whether the table coder is worth trying."""
    codes = np.ascontiguousarray(codes, dtype=np.int64).ravel()
    entropy._check(table, codes.size)
    every = ESTIMATE_EVERY if codes.size >= ESTIMATE_SAMPLED else 1
    native = entropy._native()
    if native is not None and hasattr(native, "table_estimate"):
        one = int(native.table_estimate(codes, np.ascontiguousarray(table, dtype=np.int64), every))
    else:
        syms, escapes = _symbols(codes, table, every)
        hist = [[0] * ALPHABET for _ in range(N_CONTEXTS)]
        for ctx, s in syms:
            hist[ctx][s] += every
        w = _BitWriter()
        units = 0
        for h in hist:
            f = _write_table(h, w)
            units += sum(c * entropy._LOG_COST[f[s] << (12 - PROB_BITS)] for s, c in enumerate(h) if c)
        one = len(w.finish()) + -(-units // (8 * entropy._COST_UNITS)) + -(-len(escapes.bits) * every // 8) + 8 + 3
    return one + (parts - 1) * 12 + 1


def encode(codes: np.ndarray, table: np.ndarray, parts: int, threads: int = 1) -> bytes:
    """``codes`` (int64, every pass's in order, for the passes of ``table``: :func:`inr.entropy.pass_table`)
    table-coded in at most ``parts`` (1..:data:`inr.entropy.MAX_PARTS`) segments of about the same decoding time,
    which ``threads`` code and decode at once."""
    codes = np.ascontiguousarray(codes, dtype=np.int64).ravel()
    entropy._check(table, codes.size)
    if not 1 <= parts <= entropy.MAX_PARTS:
        raise ValueError(f"table coder: parts={parts} must be in 1..{entropy.MAX_PARTS}")
    cuts = entropy._balanced_starts(_plane_symbols(codes, table), parts) if parts > 1 else []
    pieces = entropy._part_tables(table, cuts)
    native = entropy._native()
    if native is not None and hasattr(native, "table_encode"):
        head, segs = native.table_encode(codes, [t for t, _, _ in pieces],
                                         np.array([a for _, a, _ in pieces], np.int64), threads)
    else:
        found = [_symbols(codes[a:b], t) for t, a, b in pieces]
        hist = [[0] * ALPHABET for _ in range(N_CONTEXTS)]
        for syms, _ in found:
            for ctx, s in syms:
                hist[ctx][s] += 1
        w = _BitWriter()
        freqs = [_write_table(h, w) for h in hist]
        head, starts = w.finish(), _starts_of(freqs)
        segs = [_encode_segment(syms, esc.finish(), freqs, starts) for syms, esc in found]
    return (varint(len(segs)) + b"".join(varint(v) for v in cuts) + b"".join(varint(len(g)) for g in segs[:-1])
            + bytes(head) + b"".join(bytes(g) for g in segs))


def decode(data: bytes, table: np.ndarray, threads: int = 1) -> np.ndarray:
    """The codes :func:`encode` stored in ``data`` (int64; from the C++ decoder int32 where every one fits);
    ``threads`` decode its segments at once. A stream that is not one of these passes raises ModelFormatError."""
    data = bytes(data)
    n, cuts, sizes, head = entropy.split_head(data, table)
    pieces = entropy._part_tables(table, cuts)
    native = entropy._native()
    if native is not None and hasattr(native, "table_decode"):
        try:
            return native.table_decode(data, [t for t, _, _ in pieces], head, np.array(sizes, np.int64), n, threads)
        except ValueError as exc:
            raise ModelFormatError(str(exc)) from exc
    bits = _BitReader(data[head:])
    freqs = _read_tables(bits)
    at = head + bits.bytes_read()
    codes = np.zeros(n, np.int64)
    for i, (t, a, b) in enumerate(pieces):
        size = sizes[i] if i < len(sizes) else len(data) - at
        if size > len(data) - at:
            raise ModelFormatError("residual codes malformed: segment past the end")
        codes[a:b] = _decode_segment(data[at:at + size], t, b - a, freqs)
        at += size
    return codes
