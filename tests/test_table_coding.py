"""The table coder of the residual codes (static tables, interleaved rANS): the C++ coder writes the reference's
bytes, either side decodes the other's, a stream that is not the passes' is refused (never a crash), and a
residual keeps it only where it costs at most TABLE_COST more than the range coder."""
import numpy as np
import pytest

import inr
from inr import entropy
from inr import residual as R
from inr import table_coding as T
from sims.analytic import sphere_front
from support.coders import same_on_both_sides

NATIVE = entropy._native() is not None and hasattr(entropy._native(), "table_encode")
needs_native = pytest.mark.skipif(not NATIVE, reason="inr._native is not built: nothing to compare the reference with")

SHAPES = [(1, 1, 1), (3, 4, 5), (0, 2, 2), (6, 5, 7), (5, 3, 1), (7, 6, 4)]
LEVELS = [9, 3, 2, 2, 1, 1]


def _python_only(monkeypatch):
    monkeypatch.setattr(entropy, "_native", lambda: None)


def _codes(kind, n, rng):
    if kind == "sparse":  # mostly zero rows, as a smooth field's fine passes
        return np.where(rng.random(n) < 0.03, rng.integers(-3, 4, n), 0).astype(np.int64)
    if kind == "dense":  # small codes everywhere, as a CT scan's
        return np.rint(rng.laplace(0, 2.0, n)).astype(np.int64)
    # escapes, up to the int64 extremes (the one magnitude with no positive code included)
    k = np.rint(rng.laplace(0, 6.0, n)).astype(np.int64)
    k[:5] = [np.iinfo(np.int64).max, np.iinfo(np.int64).min, 8, -8, -(1 << 40)]
    return k


def _table():
    return entropy.pass_table(SHAPES, LEVELS)


@needs_native
@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("kind", ["sparse", "dense", "wide"])
def test_native_bytes_equal_the_reference_and_either_decodes_the_other(monkeypatch, kind, parts):
    table = _table()
    codes = _codes(kind, int(np.prod(table[:, :3], axis=1).sum()), np.random.default_rng(len(kind) + parts))
    blob = same_on_both_sides(monkeypatch, lambda c, t: T.encode(c, table, parts, t),
                              lambda b, t: T.decode(b, table, t), codes)
    assert 1 <= blob[0] <= parts


@needs_native
@pytest.mark.parametrize("top", [2 ** 31 - 2, 2 ** 31 - 1, 2 ** 31])
def test_the_native_decoder_gives_int32_codes_where_they_fit_else_int64(top):
    table = _table()
    codes = _codes("dense", int(np.prod(table[:, :3], axis=1).sum()), np.random.default_rng(4))
    codes[5], codes[9] = top, -top
    back = T.decode(T.encode(codes, table, 2), table, threads=2)
    assert back.dtype == (np.int32 if top < 2 ** 31 - 1 else np.int64) and np.array_equal(back, codes)


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_a_stream_that_is_not_the_passes_is_refused(monkeypatch, native):
    if not native:
        _python_only(monkeypatch)
    elif not NATIVE:
        pytest.skip("inr._native is not built")
    table = _table()
    n = int(np.prod(table[:, :3], axis=1).sum())
    codes = _codes("wide", n, np.random.default_rng(9))
    blob = T.encode(codes, table, 2)
    k = blob[0]
    bad = [blob[:-1], blob + b"\0", blob[:len(blob) // 2], bytes([0]) + blob[1:],
           bytes([entropy.MAX_PARTS + 1]) + blob[1:], bytes([k, int(table[:, 0].sum())]) + blob[2:]]
    for b in bad:
        with pytest.raises(inr.ModelFormatError, match="malformed|truncated"):
            T.decode(b, table)
    with pytest.raises(inr.ModelFormatError):
        T.decode(blob, entropy.pass_table([(7, 6, 4)], [1]))  # another grid's passes
    # any byte changed: refused, or codes of the passes' count (rANS detects most changes, never crashes)
    rng = np.random.default_rng(1)
    refused = 0
    for _ in range(60 if native else 12):
        b = bytearray(blob)
        b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
        try:
            out = T.decode(bytes(b), table)
        except inr.ModelFormatError:
            refused += 1
        else:
            assert out.shape == (n,)
    assert refused >= (40 if native else 6)


def test_a_table_keeps_to_the_precision_of_fewest_bits():
    # a context seen twice needs no 10-bit table: its frequencies come at a low precision; one seen often gets
    # them near its counts
    w = T._BitWriter()
    few = T._write_table([1, 1] + [0] * 14, w)
    assert len(w.bits) == T.LENGTH_BITS + T.PRECISION_BITS + 5 and few[:2] == [512, 512]  # 4 of 8: gamma(5)
    counts = [9000, 3000, 2900, 600, 580] + [0] * 11
    w = T._BitWriter()
    freqs = T._write_table(counts, w)
    assert sum(freqs) == 1 << T.PROB_BITS
    shares = np.array(freqs[:5]) / 1024 - np.array(counts[:5]) / sum(counts)
    assert np.abs(shares).max() < 0.01
    back = T._read_tables(T._BitReader(w.finish() + bytes(64)))  # this table, then unused ones
    assert back[0] == freqs and all(sum(f) == 0 for f in back[1:])


def _ct_like(shape, noise, seed):
    rng = np.random.default_rng(seed)
    return (sphere_front(shape) + noise * rng.standard_normal(shape)).astype(np.float32)


def test_a_residual_keeps_the_table_coder_only_where_it_costs_little():
    # a CT-like grid whose codes range-code to TABLE_MIN_BYTES or more: table-coded when that is at most
    # TABLE_COST larger (decodes faster), else the range-coded stream; the model reads back the very codes either
    # way
    values = _ct_like((40, 44, 48), 0.01, 3)
    res = R.compute_residual(values, None, 3e-3 * float(np.ptp(values)), float(np.ptp(values)))
    table = R._pass_table_of(values.shape)
    for cost in (0.1, -0.5):  # this table stream kept (3 % over) / none
        res.table_cost = cost
        blob = res.to_bytes()
        width = R._WIDTHS[blob[0] & 0x07]
        assert width == (R.TABLE_CODED if cost > 0 else R.RANGE_SPLIT)
        back = inr.Residual.from_bytes(blob, values.shape)
        assert np.array_equal(back.codes, res.codes)
        assert np.array_equal(back.apply(None, threads=2), res.apply(None, threads=1))
    res.table_cost = R.TABLE_COST
    width, kept = R._code_bytes(res.codes, values.shape, res.bytes_hint)
    split = entropy.encode_parts(res.codes, table, R._split_parts(int(0.99 * res.bytes_hint)))
    tabled = T.encode(res.codes, table, R._split_parts(len(split)))
    assert len(split) >= R.TABLE_MIN_BYTES
    assert (width, kept) == ((R.TABLE_CODED, tabled) if len(tabled) <= len(split) * (1 + R.TABLE_COST)
                             else (R.RANGE_SPLIT, split))


def test_a_short_stream_is_never_table_coded(monkeypatch):
    # under TABLE_MIN_BYTES the tables would be a large share: not even tried
    values = _ct_like((12, 13, 14), 0.02, 4)
    res = R.compute_residual(values, None, 1e-2 * float(np.ptp(values)), float(np.ptp(values)))
    monkeypatch.setattr(T, "encode", lambda *a, **k: pytest.fail("a short stream was table-coded"))
    blob = res.to_bytes()
    assert len(blob) < R.TABLE_MIN_BYTES and R._WIDTHS[blob[0] & 0x07] != R.TABLE_CODED


@pytest.mark.parametrize("kind", ["sparse", "dense", "wide"])
def test_the_estimate_is_the_references_and_near_the_coded_bytes(monkeypatch, kind):
    # what decides whether the table coder is tried: the same integer in C++ and in the reference (sampled rows
    # past ESTIMATE_SAMPLED codes), within a few percent of the stream
    table = entropy.pass_table([(20, 30, 40), (10, 15, 20), (5, 8, 10)], [1, 1, 2])
    codes = _codes(kind, int(np.prod(table[:, :3], axis=1).sum()), np.random.default_rng(3))
    for sampled in (False, True):
        monkeypatch.setattr(T, "ESTIMATE_SAMPLED", 1 if sampled else 1 << 40)
        est = T.estimate_bytes(codes, table, 2)
        if NATIVE:
            with monkeypatch.context() as m:
                _python_only(m)
                assert T.estimate_bytes(codes, table, 2) == est
        coded = len(T.encode(codes, table, 2))
        assert abs(est - coded) <= (0.05 if sampled else 0.01) * coded + 16, (sampled, est, coded)


def test_prefer_speed_table_codes_what_size_range_codes(monkeypatch):
    # the same residual search either way: prefer="speed" writes the table-coded stream where it costs up to
    # TABLE_COST_SPEED more (decodes faster), "size" only up to TABLE_COST; both read back through their bytes
    # (the speed one through the table decoder) to the very same grid
    values = _ct_like((40, 44, 48), 0.01, 3)
    models = {p: inr.fit(values, target_psnr=45.0, prefer=p) for p in ("size", "speed")}
    widths = {p: R._WIDTHS[m.residual.to_bytes()[0] & 0x07] for p, (m, _) in models.items()}
    sizes = {p: len(m.to_bytes()) for p, (m, _) in models.items()}
    assert widths == {"size": R.RANGE_SPLIT, "speed": R.TABLE_CODED}
    assert sizes["size"] * (1 + R.TABLE_COST) < sizes["speed"] <= sizes["size"] * (1 + R.TABLE_COST_SPEED)
    assert models["speed"][1].stored_bytes == sizes["speed"]  # the report says what is stored
    calls = []
    real = T.decode
    monkeypatch.setattr(T, "decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    grids = {p: inr.Model.from_bytes(m.to_bytes()).decode() for p, (m, _) in models.items()}
    assert calls == [1]
    assert np.array_equal(grids["size"], grids["speed"])
    assert inr.psnr(values, grids["speed"]) >= 45.0
