"""The context-adaptive range coder of the residual codes: the C++ coder gives the reference's bytes, every stream
decodes to its codes, a stream that is not the passes' is refused, and stored residuals keep decoding."""
import numpy as np
import pytest
import zstandard

import inr
from inr import entropy
from inr import residual as R
from sims.analytic import gaussians, sphere_front
from support.coders import same_on_both_sides


def _python_only(monkeypatch):
    monkeypatch.setattr(entropy, "_native", lambda: None)


def _same_on_both_sides(codes, table, monkeypatch):
    """The plain stream of ``codes`` (two threads where there are two segments): :func:`same_on_both_sides`."""
    return same_on_both_sides(monkeypatch, lambda c, t: entropy.encode_codes(c, table, t),
                              lambda b, t: entropy.decode_codes(b, table, t), codes)


def _table(shapes, levels):
    return entropy.pass_table(shapes, levels)


def _codes(kind, n, rng):
    if kind == "sparse":  # mostly zero, as a smooth field's fine passes
        return np.where(rng.random(n) < 0.03, rng.integers(-3, 4, n), 0)
    if kind == "dense":  # small codes everywhere, as a CT scan's
        return np.rint(rng.laplace(0, 2.0, n)).astype(np.int64)
    # past the unary part, and the int64 extremes the Exp-Golomb tail must carry
    k = rng.integers(-(1 << 40), 1 << 40, n)
    k[:4] = [np.iinfo(np.int64).max, np.iinfo(np.int64).min, 15, -16]
    return k


SHAPES = [(1, 1, 1), (3, 4, 5), (0, 2, 2), (2, 1, 7), (5, 3, 1)]


@pytest.mark.parametrize("top", [2 ** 31 - 2, 2 ** 31 - 1, 2 ** 31, 2 ** 40])
def test_the_native_decoder_gives_int32_codes_where_they_fit_else_int64(monkeypatch, top):
    # half the memory for the residual passes to read, where every code fits int32 (|code| <= 2^31 - 1, either
    # sign); past that the very same codes as int64, and the decoded grid is the same either way
    if entropy._native() is None:
        pytest.skip("inr._native is not built: the reference decodes int64 only")
    table = _table(SHAPES, [9, 3, 2, 1, 1])
    codes = _codes("dense", int(np.prod(table[:, :3], axis=1).sum()), np.random.default_rng(4)).astype(np.int64)
    codes[5], codes[9] = top, -top
    back = entropy.decode_codes(entropy.encode_codes(codes, table), table)
    assert back.dtype == (np.int32 if top < 2 ** 31 else np.int64) and np.array_equal(back, codes)
    parts = entropy.decode_parts(entropy.encode_parts(codes, table, 3), table, threads=2)
    assert parts.dtype == back.dtype and np.array_equal(parts, codes)
    rng = np.random.default_rng(1)
    v = (sphere_front((20, 22, 24)) + 0.01 * rng.standard_normal((20, 22, 24))).astype(np.float32)
    res = R.compute_residual(v, None, 1e-3 * float(np.ptp(v)), float(np.ptp(v)))
    narrow = inr.Residual.from_bytes(res.to_bytes(), v.shape)
    assert narrow.codes.dtype == np.int32 and np.array_equal(narrow.codes, res.codes)
    assert np.array_equal(narrow.apply(None), res.apply(None))  # res holds int64 codes: the same grid


@pytest.mark.parametrize("kind", ["sparse", "dense", "wide"])
def test_native_bytes_equal_the_reference_and_either_decodes_the_other(monkeypatch, kind):
    if entropy._native() is None:
        pytest.skip("inr._native is not built: nothing to compare the reference with")
    rng = np.random.default_rng(len(kind))
    table = _table(SHAPES, [9, 3, 2, 1, 1])
    codes = _codes(kind, int(np.prod(table[:, :3], axis=1).sum()), rng).astype(np.int64)
    _same_on_both_sides(codes, table, monkeypatch)


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_a_stream_that_is_not_the_passes_is_refused(monkeypatch, native):
    if not native:
        _python_only(monkeypatch)
    elif entropy._native() is None:
        pytest.skip("inr._native is not built")
    values = (gaussians((14, 15, 16)) + 0.05 * np.random.default_rng(2).standard_normal((14, 15, 16)))
    res = R.compute_residual(values, None, 1e-3, float(np.ptp(values)))
    blob = res.to_bytes()
    # noise: the range coder, not byte planes (in segments: the stream is long)
    assert R._WIDTHS[blob[0] & 0x07] == R.RANGE_SPLIT
    assert np.array_equal(inr.Residual.from_bytes(blob, values.shape).codes, res.codes)
    with pytest.raises(inr.ModelFormatError, match="residual"):
        inr.Residual.from_bytes(blob[:-40], values.shape)  # truncated
    with pytest.raises(inr.ModelFormatError, match="residual"):
        inr.Residual.from_bytes(blob + b"\x01" * 8, values.shape)  # bytes past the codes
    with pytest.raises(inr.ModelFormatError, match="residual"):
        inr.Residual.from_bytes(blob, (14, 15, 17))  # another grid's passes


@pytest.mark.parametrize("parts", [2, 3, 5])
@pytest.mark.parametrize("kind", ["sparse", "dense", "wide"])
def test_a_split_stream_decodes_on_both_sides_and_refuses_a_wrong_head(monkeypatch, kind, parts):
    # segments cut at z-planes, each pass's planes in a segment coded as passes of their own: the C++ coder writes
    # the reference's bytes on any number of threads, either side decodes them, and a head that does not match
    # the passes is refused
    if entropy._native() is None:
        pytest.skip("inr._native is not built: nothing to compare the reference with")
    table = _table([(1, 1, 1), (3, 4, 5), (0, 2, 2), (6, 5, 7), (5, 3, 1), (7, 6, 4)], [9, 3, 2, 2, 1, 1])
    codes = _codes(kind, int(np.prod(table[:, :3], axis=1).sum()), np.random.default_rng(7)).astype(np.int64)
    blob = same_on_both_sides(monkeypatch, lambda c, t: entropy.encode_parts(c, table, parts, t),
                              lambda b, t: entropy.decode_parts(b, table, t), codes)
    k = blob[0]
    assert 2 <= k <= parts  # fewer where the planes' costs leave no room between two starts
    planes = int(table[:, 0].sum())
    r = entropy.Reader(blob, 1, len(blob), "codes")
    starts = [r.varint() for _ in range(k - 1)]
    sizes = [r.varint() for _ in range(k - 1)]
    head = bytes([k]) + b"".join(entropy.varint(v) for v in starts)
    bad_sizes = head + entropy.varint(len(blob)) + b"".join(entropy.varint(v) for v in sizes[1:]) + blob[r.at:]
    for bad in (bytes([0]) + blob[1:], bytes([entropy.MAX_PARTS + 1]) + blob[1:], bytes([k, planes]) + blob[2:],
                bad_sizes):
        with pytest.raises(ValueError, match="malformed"):  # ModelFormatError, or the native coder's
            entropy.decode_parts(bad, table)


def test_split_starts_balance_the_decoding_work():
    # the starts cut the planes where the estimated decisions are halved: a busy first pass and a quiet second
    # one put the cut inside the first
    table = _table([(8, 4, 4), (8, 4, 4)], [2, 1])
    codes = np.zeros(256, np.int64)
    codes[:128] = 5
    starts = entropy._balanced_starts(entropy._plane_costs(codes, table), 2)
    assert len(starts) == 1 and 2 <= starts[0] <= 6
    pieces = entropy._part_tables(table, starts)
    assert [p[1:] for p in pieces] == [(0, 16 * starts[0]), (16 * starts[0], 256)]
    assert pieces[1][0].tolist()[0] == [8 - starts[0], 4, 4, 2]


@pytest.mark.parametrize("kind", ["sparse", "dense", "wide"])
def test_plane_costs_are_the_references_integers(monkeypatch, kind):
    # the C++ estimate of each plane's decisions (where a split stream is cut) is the numpy reference's, also for
    # codes past the unary part and at the int64 extremes (a float log2 would round those)
    if entropy._native() is None:
        pytest.skip("inr._native is not built: nothing to compare the reference with")
    table = _table([(1, 1, 1), (3, 4, 5), (0, 2, 2), (6, 5, 7), (5, 3, 1), (7, 6, 4)], [9, 3, 2, 2, 1, 1])
    codes = _codes(kind, int(np.prod(table[:, :3], axis=1).sum()), np.random.default_rng(11)).astype(np.int64)
    native = entropy._plane_costs(codes, table)
    with monkeypatch.context() as m:
        _python_only(m)
        reference = entropy._plane_costs(codes, table)
    assert native.dtype == reference.dtype == np.int64 and np.array_equal(native, reference)
    assert len(native) == int(table[:, 0].sum()) and (native >= 0).all() and native.sum() > 0


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("parts", [0, 2, 5])
def test_the_plain_and_the_split_stream_coded_together_are_those_coded_apart(monkeypatch, threads, parts):
    # encode_codes_and_parts (the split in two coded alongside the plain stream on two threads, a longer split
    # after it) writes the very bytes of encode_codes and encode_parts, and asks for the split by the plain length
    table = _table([(1, 1, 1), (3, 4, 5), (6, 5, 7), (5, 3, 1), (7, 6, 4)], [9, 3, 2, 1, 1])
    codes = _codes("dense", int(np.prod(table[:, :3], axis=1).sum()), np.random.default_rng(5)).astype(np.int64)
    asked = []

    def parts_for(nbytes):
        asked.append(nbytes)
        return parts

    plain, split = entropy.encode_codes_and_parts(codes, table, parts_for, threads)
    assert plain == entropy.encode_codes(codes, table) and asked == [len(plain)]
    assert split == (None if parts < 2 else entropy.encode_parts(codes, table, parts))
    for guess in (2, 5, 7):  # a guess of the segments, right or wrong, changes no byte
        assert entropy.encode_codes_and_parts(codes, table, parts_for, threads, guess=guess) == (plain, split)
    with monkeypatch.context() as m:
        _python_only(m)
        assert entropy.encode_codes_and_parts(codes, table, parts_for, threads) == (plain, split)


def test_a_long_stream_is_split_where_it_costs_little_and_decodes_the_same():
    # a CT-like grid: its section is written in segments (RANGE_SPLIT: as many threads decode them) at most
    # SPLIT_COST more than one; the model reads back the very codes and values either way
    rng = np.random.default_rng(3)
    values = (sphere_front((40, 44, 48)) + 0.02 * rng.standard_normal((40, 44, 48))).astype(np.float32)
    res = R.compute_residual(values, None, 1e-3 * float(np.ptp(values)), float(np.ptp(values)))
    blob = res.to_bytes()
    assert R._WIDTHS[blob[0] & 0x07] == R.RANGE_SPLIT
    one = entropy.encode_codes(res.codes, R._pass_table_of(values.shape))
    parts = min(entropy.MAX_PARTS, max(2, len(one) // R.SPLIT_PART_BYTES))
    split = entropy.encode_parts(res.codes, R._pass_table_of(values.shape), parts)
    assert len(one) >= R.SPLIT_MIN_BYTES and len(split) <= len(one) * (1 + R.SPLIT_COST) and split in blob
    back = inr.Residual.from_bytes(blob, values.shape)
    assert np.array_equal(back.codes, res.codes)
    assert np.array_equal(back.apply(None, threads=2), res.apply(None, threads=1))


@pytest.mark.parametrize("kind", ["sparse", "dense", "wide"])
def test_the_trials_estimate_is_the_references_and_about_the_coded_bytes(monkeypatch, kind):
    # what the mode trials are judged by: each bit's cost under the coder's own probabilities, the same integer
    # in C++ and in the reference, within a few bytes of the stream (its flush) and ranking streams as they code
    rng = np.random.default_rng(11)
    table = _table([(3, 20, 30), (2, 10, 15)], [1, 2])
    codes = _codes(kind, 2100, rng)
    est = entropy.estimate_bytes(codes, table)
    with monkeypatch.context() as m:
        _python_only(m)
        assert entropy.estimate_bytes(codes, table) == est
    coded = len(entropy.encode_codes(codes, table))
    assert coded - 8 <= est <= coded + 1, (est, coded)
    sparser = np.where(rng.random(codes.size) < 0.5, codes, 0)
    assert entropy.estimate_bytes(sparser, table) < est  # half the codes zeroed: fewer bytes, as coded
    assert len(entropy.encode_codes(sparser, table)) < coded


def test_a_stream_the_trials_say_is_long_is_split_without_coding_it_whole(monkeypatch):
    # from SPLIT_ALONE_BYTES on (the mode trials' guess), only the split is coded, and kept when it is within
    # SPLIT_COST of that guess; a guess it overshoots has the plain stream coded too, and the smaller kept
    rng = np.random.default_rng(5)
    values = (sphere_front((48, 52, 56)) + 0.05 * rng.standard_normal((48, 52, 56))).astype(np.float32)
    res = R.compute_residual(values, None, 1e-3 * float(np.ptp(values)), float(np.ptp(values)))
    assert res.bytes_hint is not None and res.bytes_hint >= R.SPLIT_ALONE_BYTES
    table = R._pass_table_of(values.shape)
    one = entropy.encode_codes(res.codes, table)
    calls = []
    for name in ("encode_codes", "encode_codes_and_parts"):  # what codes the whole stream
        real = getattr(entropy, name)
        monkeypatch.setattr(entropy, name, lambda *a, _r=real, _n=name, **k: calls.append(_n) or _r(*a, **k))
    blob = res.to_bytes()
    assert calls == [] and R._WIDTHS[blob[0] & 0x07] == R.RANGE_SPLIT
    assert len(blob) <= len(one) * (1 + R.SPLIT_COST) + 64  # the split's segments cost little (64: the head)
    back = inr.Residual.from_bytes(blob, values.shape)
    assert np.array_equal(back.codes, res.codes)
    assert np.array_equal(back.apply(None, threads=2), res.apply(None, threads=1))
    res.bytes_hint = R.SPLIT_ALONE_BYTES  # a guess far under the codes' bytes: the plain stream is coded to compare
    width, kept = R._code_bytes(res.codes, values.shape, res.bytes_hint)
    assert calls == ["encode_codes"]
    split = entropy.encode_parts(res.codes, table, R._split_parts(int(0.99 * res.bytes_hint)))
    assert (width, kept) == ((R.RANGE_SPLIT, split) if len(split) <= len(one) * (1 + R.SPLIT_COST)
                             else (R.RANGE_CODED, one))


def test_codes_of_a_volume_with_features_are_smaller_than_zstd_on_byte_planes():
    # what the range coder is for: codes sized by their neighbours cost less than a dictionary coder finds, where
    # the activity varies across the volume (a front, and noise over half of it: a scan's tissue beside air)
    rng = np.random.default_rng(0)
    shape = (40, 36, 32)
    noise = 0.01 * rng.standard_normal(shape) * (np.indices(shape)[2] >= 16)
    values = (sphere_front(shape) + noise).astype(np.float32)
    res = R.compute_residual(values, None, 2e-3 * float(np.ptp(values)), float(np.ptp(values)))
    ranged = entropy.encode_codes(res.codes, R._pass_table_of(values.shape))
    zipped = zstandard.ZstdCompressor(level=19).compress(R._planes(res.codes)[1])
    assert len(ranged) < 0.9 * len(zipped), (len(ranged), len(zipped))
    assert len(res.to_bytes()) < len(zipped)


def test_codes_that_repeat_whole_rows_keep_byte_planes():
    # a field constant along y, predicted by a network that misses it: the codes of every y repeat, which only
    # zstd's matches see; the section stores what is smaller and decodes either way
    z, y, x = np.indices((16, 16, 16))
    data = (np.sin(x / 3.0) * 40 + np.cos(z / 4.0) * 30).astype(np.float32)
    net = np.zeros_like(data)
    res = R._encode(data.astype(np.float64), net, 1e-2, 5e-3, 0.0, 0.0, ("net",))
    blob = res.to_bytes()
    assert R._WIDTHS[blob[0] & 0x07] in (1, 2, 4, 8)
    width, planes = R._planes(res.codes)
    assert len(blob) < len(entropy.encode_codes(res.codes, R._pass_table_of(data.shape)))
    back = inr.Residual.from_bytes(blob, data.shape)
    assert np.array_equal(back.codes, res.codes) and np.array_equal(back.apply(net), res.apply(net))


def _compact_planes_section(res):
    """A section as the compact layout of model format 3 stored it (zstd byte planes, eps and step as float64)."""
    width, planes = R._planes(res.codes)
    kblob = R._zstd(19).compress(planes)
    return (R._COMPACT_HEAD.pack(res.eps, res.step, width | R.PREDICTIVE | R.COMPACT | R.NARROW_MODES)
            + R.varint(len(kblob)) + R.varint(0) + bytes([round(res.alpha * 16), round(res.beta * 16)])
            + R._pack_modes([R.MODES.index(m) for m in res.modes], 4) + kblob)


def test_models_of_format_3_with_byte_planes_still_decode(monkeypatch):
    # how a model of format 3 stored a block coded without a network: read as it was written
    import inr.model

    values = (gaussians((9, 10, 11)) + 0.02 * np.random.default_rng(3).standard_normal((9, 10, 11)))
    model, _ = inr.fit(values.astype(np.float32), target_psnr=40.0)
    assert model.is_predictive
    with monkeypatch.context() as m:
        m.setattr(inr.model, "FORMAT_VERSION", 3)
        m.setattr(R.Residual, "to_bytes", _compact_planes_section)
        old = model.to_bytes()
    assert old[4:6] == b"\x03\x00"
    back = inr.Model.from_bytes(old)
    assert np.array_equal(back.residual.codes, model.residual.codes)
    assert np.array_equal(back.decode(), model.decode()) and len(model.to_bytes()) < len(old)


def test_a_pass_table_that_does_not_cover_the_codes_is_refused():
    table = _table([(2, 2, 2)], [1])
    with pytest.raises(ValueError, match="pass table"):
        entropy.encode_codes(np.zeros(9, np.int64), table)


def test_a_large_grid_is_two_segments_that_either_side_decodes(monkeypatch):
    # from SPLIT_CODES codes on: the passes before the last, then the last, coded apart (two threads decode them)
    rng = np.random.default_rng(7)
    table = _table([(1, 1, 1), (2, 512, 512), (2, 512, 512)], [11, 2, 1])
    n = int(np.prod(table[:, :3], axis=1).sum())
    assert n >= entropy.SPLIT_CODES
    codes = np.where(rng.random(n) < 0.0005, rng.integers(-40, 40, n), 0).astype(np.int64)  # sparse: fast in Python
    blob = _same_on_both_sides(codes, table, monkeypatch)
    with monkeypatch.context() as m:
        _python_only(m)
        with pytest.raises(inr.ModelFormatError, match="segment"):
            entropy.decode_codes(b"\xff\xff\xff\x0f" + blob[4:], table)
    with pytest.raises(ValueError, match="segment"):
        entropy.decode_codes(b"\xff\xff\xff\x0f" + blob[4:], table)


def test_low_bits_that_repeat_cost_little():
    # integer-valued data at a tight bound: the codes' lowest bits repeat, and the mantissa contexts learn them
    # (codes that are multiples of 8 save nearly the 3 bits per code that codes of the same size spend there)
    rng = np.random.default_rng(11)
    table = _table([(4, 50, 50)], [1])
    n = int(np.prod(table[0, :3]))
    eights = 8 * rng.integers(-(1 << 12), 1 << 12, n)
    anything = rng.integers(-(1 << 15), 1 << 15, n)
    saved_bits = 8 * (len(entropy.encode_codes(anything, table)) - len(entropy.encode_codes(eights, table))) / n
    assert saved_bits > 2.5, saved_bits


def test_codes_that_repeat_far_apart_keep_byte_planes():
    # a large grid whose codes repeat with a period of a third of them (as a network's residual on a periodic field
    # can): zstd on the whole planes finds each repeat a third of a megabyte back, which neither the range coder
    # nor chunks of a sample see; the section stores the planes (a gate that judged them on a sample lost 10 % on
    # such a field)
    shape = (64, 128, 128)
    n = int(np.prod(shape))
    rng = np.random.default_rng(8)
    period = np.where(rng.random(n // 3 + 1) < 0.1, rng.integers(-3, 4, n // 3 + 1), 0)  # sparse, as fine passes
    codes = np.tile(period, 3)[:n]
    width, blob = R._code_bytes(codes, shape)
    assert width in (1, 2, 4, 8)
    assert len(blob) < 0.75 * len(entropy.encode_codes(codes, R._pass_table_of(shape)))
