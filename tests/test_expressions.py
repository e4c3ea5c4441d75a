"""Trigger/query expressions: safe parser and evaluator."""
import numpy as np
import pytest

from insitu.blueprint import uniform_domain
from insitu.runtime.expressions import (Context, ExpressionError, evaluate_string, parse, pick_history,
                                        referenced_names)


@pytest.fixture
def ctx():
    e = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    data = [uniform_domain(e, field="e", spacing=(2.0, 1.0, 1.0))]
    queries = {"mx": [5.0, 7.0, 11.0]}
    return Context(cycle=100, time=1.5, published=data,
                   lookup=lambda n: queries[n][-1],
                   history=lambda n, rel, ab: queries[n][ab] if ab is not None else queries[n][-1 - rel])


@pytest.mark.parametrize("expr, expected", [
    ("cycle() % 100 == 0", True),
    ("cycle() % 3 == 0", False),
    ("time() * 2", 3.0),
    ("1 + 2 * 3 - 4 / 2", 5.0),
    ("-(2 + 3) % 4", 3),
    ("max(field('e')) > 22.5 and not min(field('e')) > 0", True),
    ("max(field('e')).value", 23.0),
    ("avg(field('e'))", 11.5),
    ("sum(field('e'))", 276.0),
    ("mx - history(mx, relative_index = 1)", 4.0),
    ("history(mx, absolute_index=0)", 5.0),
    ("magnitude(max(field('e')).position - vector(0,0,0))", float(np.linalg.norm([6.0, 2.0, 1.0]))),
    ("max(field('e')).position.x", 6.0),
    ("max(2, 3, 1) == 3 or false", True),
    ("abs(-2.5) + sqrt(16)", 6.5),
    ("entropy(histogram(field('e'), num_bins=24)) > 3", True),
])
def test_evaluates(ctx, expr, expected):
    got = evaluate_string(expr, ctx)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("expr, pos", [("cycle() +", 9), ("max(field('e') > 3", 18), ("3 $ 4", 2), ("a = 1", 2)])
def test_syntax_errors_show_position(expr, pos):
    with pytest.raises(ExpressionError, match=f"position {pos}") as e:
        parse(expr)
    assert "^" in str(e.value)


def test_unknown_function_and_field(ctx):
    with pytest.raises(ExpressionError, match="unknown function 'gradient'.*supported functions"):
        evaluate_string("gradient(field('e'))", ctx)
    with pytest.raises(ExpressionError, match=r"unknown field 'p'.*\['e'\]"):
        evaluate_string("max(field('p'))", ctx)


def test_no_python_eval(ctx):
    for evil in ("__import__('os').system('true')", "().__class__", "open('x')"):
        with pytest.raises(ExpressionError):
            evaluate_string(evil, ctx)


# ---------------------------------------------------------------- Ascent's types and history (issue: semantics)
def test_value_position_arithmetic_needs_value(ctx):
    with pytest.raises(ExpressionError,
                       match=r"Unsupported math operation: 'value_position - value_position'.*\.value"):
        evaluate_string("max(field('e')) - min(field('e'))", ctx)
    with pytest.raises(ExpressionError, match="Unsupported math operation: 'value_position \\* int'"):
        evaluate_string("max(field('e')) * 2", ctx)
    with pytest.raises(ExpressionError, match=r"abs: expected a number, got a value_position.*\.value"):
        evaluate_string("abs(max(field('e')))", ctx)
    assert evaluate_string("max(field('e')).value - min(field('e')).value", ctx) == 23.0


def test_comparing_a_value_position_works_with_a_note():
    notes = []
    c = Context(published=[uniform_domain(np.arange(8, dtype=np.float32).reshape(2, 2, 2), field="e")],
                note=notes.append)
    assert evaluate_string("max(field('e')) > 6.5", c) is True
    assert len(notes) == 1 and "real Ascent 0.9.3 rejects it" in notes[0] and ".value" in notes[0]
    assert evaluate_string("max(field('e')).value > 6.5", c) is True and len(notes) == 1


def test_logic_takes_bools_and_evaluates_both_sides(ctx):
    with pytest.raises(ExpressionError, match="logical operators are only supported on bools: 'int and bool'"):
        evaluate_string("cycle() and true", ctx)
    # no short-circuit (an Ascent expression is a data-flow graph): the right side's error shows
    with pytest.raises(ExpressionError, match="unknown field 'p'"):
        evaluate_string("cycle() < 0 and max(field('p')).value > 1", ctx)


@pytest.mark.parametrize("kwargs, expected", [
    ({"relative": 0}, 11.0), ({"relative": 2}, 5.0), ({"relative": 3}, 11.0), ({"relative": 99}, 11.0),
    ({"absolute": 0}, 5.0), ({"absolute": 2}, 11.0),
])
def test_history_indices_as_ascent(kwargs, expected):
    got = pick_history([5.0, 7.0, 11.0], "mx", kwargs.get("relative"), kwargs.get("absolute"))
    assert got == expected


@pytest.mark.parametrize("relative, absolute, match", [
    (-1, None, "relative_index must be a non-negative integer"),
    (None, 3, "found only 3 entries, cannot get entry at 3"),
    (None, -1, "absolute_index must be a non-negative integer"),
])
def test_history_bad_indices(relative, absolute, match):
    with pytest.raises(ExpressionError, match=match):
        pick_history([5.0, 7.0, 11.0], "mx", relative, absolute)


def test_history_needs_one_index(ctx):
    with pytest.raises(ExpressionError, match="Specify only one of relative_index or absolute_index"):
        evaluate_string("history(mx, relative_index=1, absolute_index=0)", ctx)
    with pytest.raises(ExpressionError, match="give relative_index=k"):
        evaluate_string("history(mx)", ctx)


def test_referenced_names():
    assert referenced_names("cycle() > 1 and peak < 0.8 * history(peak, absolute_index=0) and q2 > 0") == {"peak", "q2"}
    assert referenced_names("cycle( > 2") == set()


# ---------------------------------------------------------------- binning()
@pytest.fixture
def bctx():
    """A 4x4x4 vertex field e = x + 10 y + 100 z on unit spacing, and an element field c."""
    z, y, x = np.meshgrid(np.arange(4.0), np.arange(4.0), np.arange(4.0), indexing="ij")
    dom = uniform_domain(x + 10 * y + 100 * z, field="e")
    cz, cy, cx = np.meshgrid(np.arange(3.0), np.arange(3.0), np.arange(3.0), indexing="ij")
    dom["fields"]["c"] = {"association": "element", "topology": "topo", "values": (cx + 3 * cy + 9 * cz).ravel()}
    return Context(published=[dom]), x, y, z


@pytest.mark.parametrize("op, ref", [
    ("sum", np.sum), ("min", np.min), ("max", np.max), ("avg", np.mean), ("count", np.size),
    ("std", np.std), ("var", np.var), ("rms", lambda v: np.sqrt(np.mean(v * v))),
])
def test_binning_reductions_match_numpy(bctx, op, ref):
    c, x, y, z = bctx
    b = evaluate_string(f"binning('e', '{op}', [axis('x', num_bins=2), axis('z', [0, 1.5, 3])])", c)
    e = x + 10 * y + 100 * z
    want = []
    for zb in ((z >= 0) & (z < 1.5), (z >= 1.5) & (z <= 3)):  # the last edge is inclusive (Ascent's find_bin)
        for xb in (x < 2.0, x >= 2.0):  # x in [0, 3 + 3e-8): two bins split at 1.5 -> x 0,1 | 2,3
            want.append(ref(e[xb & zb]))
    assert b.values == pytest.approx(np.array(want, float))
    assert b.association == "vertex" and b.shape == (2, 2)
    assert b.bin_axes["x"]["min_val"] == 0.0 and b.bin_axes["x"]["max_val"] == pytest.approx(3.0 + 3e-8)


def test_binning_empty_bins_clamp_pdf_and_field_axes(bctx):
    c, x, y, z = bctx
    b = evaluate_string("binning('e', 'max', [axis('x', [10, 11, 12])], empty_bin_val=-1)", c)
    assert list(b.values) == [-1.0, -1.0]  # nothing falls in: empty bins
    b = evaluate_string("binning('e', 'count', [axis('x', [1, 2], clamp=1)])", c)
    assert list(b.values) == [64.0]  # clamped into the only bin
    b = evaluate_string("binning('', 'pdf', [axis('z', num_bins=4), axis('e', num_bins=1)])", c)
    assert b.values == pytest.approx([0.25] * 4)
    b = evaluate_string("binning('', 'count', [axis('c', num_bins=3)])", c)  # a field axis: [min, max + 1)
    assert b.association == "element" and b.bin_axes["c"]["max_val"] == 27.0 and list(b.values) == [9.0] * 3
    b = evaluate_string("binning('x', 'avg', [axis('c', num_bins=1)])", c)  # element centres
    assert b.values == pytest.approx([1.5])  # centres at x = 0.5, 1.5, 2.5


def test_bin_of_a_binning_and_what_ascent_refuses(bctx):
    c, *_ = bctx
    assert evaluate_string("bin(binning('e', 'max', [axis('x', num_bins=3)]), index=2).value", c) == 333.0
    got = evaluate_string("bin(binning('e', 'max', [axis('x', num_bins=3)]), index=0).center", c)
    assert got == pytest.approx(0.5 * (3 + 3e-8) / 3)
    for expr, match in [
        ("binning('e', 'median', [axis('x')])", r"unknown reduction_op 'median'.*'sum'"),
        ("binning('', 'sum', [axis('x')])", r"only be left empty \(''\) if reduction_op is 'count' or 'pdf'"),
        ("binning('e', 'sum', [axis('x')], component='u')", "component"),
        ("binning('nope', 'sum', [axis('x')])", "unknown field 'nope'"),
        ("binning('e', 'sum', [axis('c')])", "same association"),
        ("binning('e', 'sum', [axis('x', [2, 1])])", "strictly increasing"),
        ("binning('e', 'sum', [axis('x', [0, 1], num_bins=3)])", "not both"),
        ("binning('x', 'sum', [axis('y')])", "could not determine the association"),
        ("binning('e', 'sum', [axis('x')]).value", "Cannot get attribute of non-object type: 'binning'"),
        ("bin(binning('e', 'sum', [axis('x'), axis('y')]), index=0)", "only binnings with one axis"),
        ("bin(binning('e', 'sum', [axis('x', num_bins=2)]), index=2)", "invalid bin 2"),
        ("binning('e', 'sum', [axis('x')]) + 1", "Unsupported math operation: 'binning \\+ int'"),
    ]:
        with pytest.raises(ExpressionError, match=match):
            evaluate_string(expr, c)


@pytest.mark.parametrize("expr, words", [
    ("pow(9, 99999999) > 0", "does not fit in a 64-bit number"),
    ("9 * 999999999999 * 999999999999 > 0", "integer overflow"),
    ("99999999999999999999999 > 1", "integer overflow"),
    ("(" * 150 + "1" + ")" * 150, "nested more than 100 levels"),
    ("1 + " * 6000 + "1", "at most 10000 are read"),
])
def test_expressions_have_bounds(expr, words):
    """Each is refused at once (pow(9, 99999999) used to keep a run busy for minutes), naming the cause."""
    import time as _time

    from insitu.runtime.expressions import Context, ExpressionError, evaluate_string

    t0 = _time.perf_counter()
    with pytest.raises(ExpressionError, match=words):
        evaluate_string(expr, Context(cycle=1))
    assert _time.perf_counter() - t0 < 1.0
