"""Trigger/query expressions: safe parser and evaluator."""
import numpy as np
import pytest

from insitu.blueprint import uniform_domain
from insitu.runtime.expressions import Context, ExpressionError, evaluate_string, parse


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
