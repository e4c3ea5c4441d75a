"""Ascent-style expressions for queries and trigger conditions, parsed safely (no eval).

Covers Ascent's common expressions::

    cycle() % 100 == 0
    max(field('energy')) > 1.5 and not time() < 2
    max_pressure - history(max_pressure, relative_index = 1) > 100
    magnitude(max(field('braid')).position - vector(0,0,0)) > 0
    entropy(histogram(field('pressure'))) < 5

Numbers, strings, + - * / %, comparisons, ``and``/``or``/``not``, attribute
access (``.value``, ``.position``, ``.x``) and the functions in
:data:`FUNCTIONS` (``binning``/``axis``/``bin`` in :mod:`.binning`). Field
reductions cover the owned samples of every rank (each rank reduces its
domains, then one collective); every rank agrees on failure before a
collective, so a bad field on one rank raises everywhere instead of hanging
the others.

Types follow Ascent's: ``max()``/``min()`` of a field give a value with its
position, and arithmetic on it is an error (``Unsupported math operation``:
use ``.value``); ``and``/``or``/``not`` take bools and evaluate both sides (an
Ascent expression is a data-flow graph: nothing short-circuits);
``history(q, relative_index=k)`` with ``k`` past the recorded values gives
the newest one (Ascent clamps ``k`` to 0); a negative index or an
``absolute_index`` out of range is an error. Comparing a value-with-position
works here (``max(field('e')) > 1``) but not in Ascent 0.9.3; the context's
``note`` callback is told so once, with the fix.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from insitu.runtime import binning as binning_mod


class ExpressionError(ValueError):
    """A syntax or evaluation error; syntax errors show the position with a caret."""


# ---------------------------------------------------------------- values
@dataclass(frozen=True)
class FieldRef:
    name: str


@dataclass(frozen=True)
class ValuePosition:
    """What Ascent's max()/min() of a field yield: a value and where it is (world coordinates)."""

    value: float
    position: np.ndarray

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class Histogram:
    counts: np.ndarray
    min_val: float
    max_val: float


def type_name(v: Any) -> str:
    """The Ascent type name of a value (as Ascent's error messages name it)."""
    from insitu.runtime.binning import Axis, Bin, Binning

    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int"
    if isinstance(v, (float, np.floating)):
        return "double"
    if isinstance(v, np.ndarray):
        return "vector"
    for cls, name in ((ValuePosition, "value_position"), (Histogram, "histogram"), (Binning, "binning"),
                      (Axis, "axis"), (Bin, "bin"), (FieldRef, "field"), (str, "string"), (list, "list")):
        if isinstance(v, cls):
            return name
    return type(v).__name__


def _value_hint(v: Any) -> str:
    return (" (max()/min() of a field give a value with its position: use its .value, e.g. "
            "max(field('p')).value, or end the query's expression with .value)") if isinstance(v, ValuePosition) else ""


def _num(v: Any, what: str) -> Any:
    """A number or a vector; anything else (a value-with-position included, as in Ascent) is an error."""
    if isinstance(v, (bool, int, float, np.floating, np.integer, np.bool_)):
        return v
    if isinstance(v, np.ndarray):
        return v
    raise ExpressionError(f"{what}: expected a number, got a {type_name(v)}{_value_hint(v)}")


# ---------------------------------------------------------------- tokens
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>'[^']*'|"[^"]*")
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>()\[\],.=!])
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "True", "False", "true", "false"}


@dataclass
class Token:
    kind: str
    text: str
    pos: int


def tokenize(src: str) -> list[Token]:
    tokens, at = [], 0
    while at < len(src):
        m = _TOKEN.match(src, at)
        if not m:
            raise _syntax(src, at, f"unexpected character {src[at]!r}")
        if m.lastgroup != "ws":
            tokens.append(Token(m.lastgroup or "", m.group(), at))
        at = m.end()
    tokens.append(Token("end", "", len(src)))
    return tokens


def _syntax(src: str, pos: int, msg: str) -> ExpressionError:
    flat = src.replace("\n", " ")
    return ExpressionError(f"syntax error at position {pos}: {msg}\n  {flat}\n  {' ' * pos}^")


# Bounds: an expression must never stall a simulation. Ascent computes in 64-bit numbers, so integers
# beyond int64 are refused (Python's would grow without bound, e.g. pow(9, 99999999) ran for minutes) and
# pow() is computed in doubles; texts, nestings and histogram bins are capped. Together these bound every
# evaluation by the expression's size times the data's, so no wall-clock limit is needed (one would be
# dangerous: a rank that gives up before a collective others reach would hang the run).
MAX_LENGTH = 10_000  # characters of one expression
MAX_DEPTH = 100  # nested brackets, calls and operators
MAX_BINS = 10_000_000  # of a histogram()
INT64 = (-(2 ** 63), 2 ** 63 - 1)


def check_int64(v: Any, what: str) -> Any:
    """``v``, or an error when it is an integer outside int64 (Ascent's integers)."""
    if isinstance(v, int) and not isinstance(v, bool) and not INT64[0] <= v <= INT64[1]:
        raise ExpressionError(f"{what}: integer overflow (the result does not fit in 64 bits, as in Ascent)")
    return v


# ---------------------------------------------------------------- parser -> AST (nested tuples)
class _Parser:
    def __init__(self, src: str) -> None:
        if len(src) > MAX_LENGTH:
            raise ExpressionError(f"the expression is {len(src)} characters long; at most {MAX_LENGTH} are read")
        self.src, self.toks, self.i, self.depth = src, tokenize(src), 0, 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        t = self.peek()
        if (text is not None and t.text != text) or (kind is not None and t.kind != kind):
            want = repr(text) if text else kind
            got = repr(t.text) if t.kind != "end" else "end of expression"
            raise _syntax(self.src, t.pos, f"expected {want}, found {got}")
        self.i += 1
        return t

    def accept(self, *texts: str) -> Token | None:
        if self.peek().text in texts and self.peek().kind in ("op", "name"):
            return self.take()
        return None

    def parse(self) -> tuple:
        node = self.or_()
        if self.peek().kind != "end":
            t = self.peek()
            msg = "assignments and multi-statement expressions are not supported" if t.text == "=" \
                else f"unexpected {t.text!r}"
            raise _syntax(self.src, t.pos, msg)
        return node

    def or_(self) -> tuple:
        node = self.and_()
        while self.accept("or", "||"):
            node = ("or", node, self.and_())
        return node

    def and_(self) -> tuple:
        node = self.not_()
        while self.accept("and", "&&"):
            node = ("and", node, self.not_())
        return node

    def not_(self) -> tuple:
        if self.accept("not", "!"):
            return ("not", self.not_())
        return self.cmp()

    def cmp(self) -> tuple:
        node = self.add()
        t = self.accept("<", "<=", ">", ">=", "==", "!=")
        if t:
            node = ("bin", t.text, node, self.add())
        return node

    def add(self) -> tuple:
        node = self.mul()
        while True:
            t = self.accept("+", "-")
            if not t:
                return node
            node = ("bin", t.text, node, self.mul())

    def mul(self) -> tuple:
        node = self.unary()
        while True:
            t = self.accept("*", "/", "%")
            if not t:
                return node
            node = ("bin", t.text, node, self.unary())

    def unary(self) -> tuple:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _syntax(self.src, self.peek().pos, f"nested more than {MAX_DEPTH} levels deep")
            if self.accept("-"):
                return ("neg", self.unary())
            if self.accept("+"):
                return self.unary()
            return self.postfix()
        finally:
            self.depth -= 1

    def postfix(self) -> tuple:
        node = self.primary()
        while True:
            if self.accept("."):
                node = ("attr", node, self.take(kind="name").text)
            elif self.accept("["):
                node = ("index", node, self.or_())
                self.take("]")
            else:
                return node

    def primary(self) -> tuple:
        t = self.peek()
        if t.kind == "num":
            self.i += 1
            if any(c in t.text for c in ".eE"):
                return ("const", float(t.text))
            return ("const", check_int64(int(t.text), f"the number {t.text[:30]}"))
        if t.kind == "str":
            self.i += 1
            return ("const", t.text[1:-1])
        if t.kind == "name" and t.text not in ("and", "or", "not"):
            self.i += 1
            if t.text in ("True", "true"):
                return ("const", True)
            if t.text in ("False", "false"):
                return ("const", False)
            if self.accept("("):
                args, kwargs = [], {}
                if not self.accept(")"):
                    while True:
                        if self.peek().kind == "name" and self.toks[self.i + 1].text == "=":
                            key = self.take().text
                            self.take("=")
                            kwargs[key] = self.or_()
                        else:
                            args.append(self.or_())
                        if self.accept(")"):
                            break
                        self.take(",")
                return ("call", t.text, t.pos, args, kwargs)
            return ("name", t.text, t.pos)
        if self.accept("("):
            node = self.or_()
            self.take(")")
            return node
        if self.accept("["):
            items = []
            if not self.accept("]"):
                while True:
                    items.append(self.or_())
                    if self.accept("]"):
                        break
                    self.take(",")
            return ("list", items)
        got = repr(t.text) if t.kind != "end" else "end of expression"
        raise _syntax(self.src, t.pos, f"expected a number, name, string or '(', found {got}")


def parse(src: Any) -> tuple:
    """Parse an expression into an AST; raises :class:`ExpressionError` with the position."""
    if not isinstance(src, str):
        raise ExpressionError(f"an expression must be a string; got {type(src).__name__} {src!r}")
    return _Parser(src).parse()


# ---------------------------------------------------------------- evaluation
class Context:
    """What an expression sees: cycle, time, this rank's published data, the communicator, queries.

    ``lookup(name)`` returns the current value of a query; ``history(name, k)``
    its value ``k`` executes back.
    """

    def __init__(self, *, cycle: int = 0, time: float = 0.0, published: Any = None, comm: Any = None,
                 lookup: Callable[[str], Any] | None = None,
                 history: Callable[[str, int | None, int | None], Any] | None = None,
                 note: Callable[[str], None] | None = None) -> None:
        self.cycle, self.time, self.published, self.comm = cycle, time, published, comm
        self._lookup, self._history, self._note = lookup, history, note

    def lookup(self, name: str) -> Any:
        if self._lookup is None:
            raise ExpressionError(f"Unknown expression identifier: '{name}'")
        return self._lookup(name)

    def note(self, msg: str) -> None:
        """A portability note (works here, not in Ascent): passed to the runtime, which prints it once."""
        if self._note is not None:
            self._note(msg)

    def history(self, name: str, relative: int | None, absolute: int | None) -> Any:
        if self._history is None:
            raise ExpressionError("history() needs queries")
        return self._history(name, relative, absolute)

    # -- collectives: every rank contributes (result or error) before anyone raises
    def allgather(self, fn: Callable[[], Any]) -> list[Any]:
        try:
            mine: tuple = (None, fn())
        except Exception as exc:  # reported on every rank below
            mine = (f"{type(exc).__name__}: {exc}" if not isinstance(exc, ExpressionError) else str(exc), None)
        everyone = [mine] if self.comm is None or self.comm.Get_size() == 1 else self.comm.allgather(mine)
        errors = [(r, e) for r, (e, _) in enumerate(everyone) if e]
        if errors:
            rank, err = errors[0]
            raise ExpressionError(err if len(everyone) == 1 else f"rank {rank}: {err}")
        return [v for _, v in everyone]

    def owned_samples(self, field: str) -> list[tuple[np.ndarray, Any]]:
        """(owned values, block) for each local domain of ``field``."""
        from insitu.blueprint import blocks

        if self.published is None:
            raise ExpressionError(f"field('{field}'): no data published")
        return [(b.owned_values, b) for b in blocks(self.published, field)]


def _position(block: Any, flat_index: int) -> np.ndarray:
    box = block.owned_box
    shape = tuple(b - a for a, b in box)
    zyx = np.unravel_index(flat_index, shape)
    shift = 0.0 if block.association == "vertex" else 0.5
    xyz = [box[2][0] + zyx[2], box[1][0] + zyx[1], box[0][0] + zyx[0]]
    return np.array([block.origin[d] + (xyz[d] + shift) * block.spacing[d] for d in range(3)])


def _extreme(ctx: Context, field: str, largest: bool) -> ValuePosition:
    def local() -> tuple[float, list[float]] | None:
        best = None
        for vals, block in ctx.owned_samples(field):
            if vals.size == 0:
                continue
            i = int(np.argmax(vals) if largest else np.argmin(vals))
            v = float(vals.reshape(-1)[i])
            if best is None or (v > best[0] if largest else v < best[0]):
                best = (v, _position(block, i).tolist())
        return best

    found = [r for r in ctx.allgather(local) if r is not None]
    if not found:
        raise ExpressionError(f"field('{field}') has no owned samples on any rank")
    v, pos = (max if largest else min)(found, key=lambda r: r[0])
    return ValuePosition(v, np.asarray(pos))


def _sum_count(ctx: Context, field: str) -> tuple[float, int]:
    parts = ctx.allgather(lambda: [(float(np.sum(v, dtype=np.float64)), int(v.size)) for v, _ in ctx.owned_samples(field)])
    flat = [p for rank in parts for p in rank]
    return sum(s for s, _ in flat), sum(n for _, n in flat)


def _histogram(ctx: Context, ref: Any, num_bins: Any = 256, min_val: Any = None, max_val: Any = None) -> Histogram:
    if not isinstance(ref, FieldRef):
        raise ExpressionError("histogram() takes field('name')")
    if min_val is None or max_val is None:
        lo = _extreme(ctx, ref.name, False).value if min_val is None else float(_num(min_val, "min_val"))
        hi = _extreme(ctx, ref.name, True).value if max_val is None else float(_num(max_val, "max_val"))
    else:
        lo, hi = float(_num(min_val, "min_val")), float(_num(max_val, "max_val"))
    bins = int(_num(num_bins, "num_bins"))
    if not 1 <= bins <= MAX_BINS:
        raise ExpressionError(f"histogram num_bins={bins} must be in [1, {MAX_BINS}]")
    counts = ctx.allgather(lambda: sum((np.histogram(v, bins=bins, range=(lo, hi if hi > lo else lo + 1))[0]
                                        for v, _ in ctx.owned_samples(ref.name)), np.zeros(bins, np.int64)))
    return Histogram(np.sum(counts, axis=0), lo, hi)


def _entropy(h: Any) -> float:
    if not isinstance(h, Histogram):
        raise ExpressionError("entropy() takes histogram(...)")
    p = h.counts[h.counts > 0] / max(1, h.counts.sum())
    return float(-(p * np.log(p)).sum())


def _field_or_number(name: str, reduce_field: Callable[[FieldRef], Any], pairwise: Callable[..., Any]):
    def fn(ctx: Context, *args: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], FieldRef):
            return reduce_field(args[0])
        if len(args) >= 2:
            return pairwise(*[_num(a, name) for a in args])
        raise ExpressionError(f"{name}() takes field('name') or two or more numbers")
    return fn


def _make_functions() -> dict[str, Callable[..., Any]]:
    def field(ctx: Context, name: Any, component: Any = None) -> FieldRef:
        if not isinstance(name, str):
            raise ExpressionError("field() takes a field name string")
        return FieldRef(name if component is None else f"{name}/{component}")

    fns: dict[str, Callable[..., Any]] = {
        "cycle": lambda ctx: ctx.cycle,
        "time": lambda ctx: ctx.time,
        "field": field,
        "max": lambda ctx, *a: _field_or_number("max", lambda f: _extreme(ctx, f.name, True), max)(ctx, *a),
        "min": lambda ctx, *a: _field_or_number("min", lambda f: _extreme(ctx, f.name, False), min)(ctx, *a),
        "sum": lambda ctx, f: _sum_count(ctx, f.name)[0] if isinstance(f, FieldRef) else _bad("sum"),
        "avg": lambda ctx, f: (lambda s, n: s / n if n else math.nan)(*_sum_count(ctx, f.name))
        if isinstance(f, FieldRef) else _bad("avg"),
        "abs": lambda ctx, x: abs(_num(x, "abs")),
        "sqrt": lambda ctx, x: math.sqrt(_num(x, "sqrt")),
        "exp": lambda ctx, x: math.exp(_num(x, "exp")),
        "log": lambda ctx, x: math.log(_num(x, "log")),
        "pow": lambda ctx, x, y: _pow(_num(x, "pow"), _num(y, "pow")),
        "floor": lambda ctx, x: math.floor(_num(x, "floor")),
        "ceil": lambda ctx, x: math.ceil(_num(x, "ceil")),
        "round": lambda ctx, x: round(_num(x, "round")),
        "vector": lambda ctx, x, y, z=0.0: np.array([_num(x, "vector"), _num(y, "vector"), _num(z, "vector")], float),
        "magnitude": lambda ctx, v: float(np.linalg.norm(np.asarray(_num(v, "magnitude"), float))),
        "histogram": _histogram,
        "entropy": lambda ctx, h: _entropy(h),
        "binning": _binning,
        "axis": lambda ctx, *a, **k: _binning_call(lambda: binning_mod.make_axis(*a, **k)),
        "bin": lambda ctx, *a, **k: _binning_call(lambda: binning_mod.bin_by_index(*a, **k)),
    }
    return fns


def _binning_call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except binning_mod.BinningError as exc:
        raise ExpressionError(str(exc)) from None


def _binning(ctx: Context, *args: Any, **kwargs: Any) -> Any:
    return _binning_call(lambda: binning_mod.compute(ctx, *args, **kwargs))


def _bad(name: str) -> Any:
    raise ExpressionError(f"{name}() takes field('name')")


FUNCTIONS = _make_functions()
#: Ascent expression functions this engine does not provide (named in the error).
UNSUPPORTED = ("gradient", "topo", "quantile", "lineout", "field_nan_count", "field_inf_count", "point_and_axis",
               "max_from_point", "cycle_min", "recenter", "paint_binning", "binning_mesh", "pdf", "cdf",
               "bounds", "if", "nan", "null", "history_range", "gradient_range", "derived_field")

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "%": lambda a, b: a % b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


_MATH = ("+", "-", "*", "/", "%")


def _bool(v: Any, op: str, other: Any = None) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    types = f"'{type_name(v)} {op} {type_name(other)}'" if other is not None else f"'{op} {type_name(v)}'"
    raise ExpressionError(f"logical operators are only supported on bools: {types}{_value_hint(v)}")


def _binary(op: str, a: Any, b: Any, ctx: Context, src: str) -> Any:
    if op in _MATH:
        numeric = (bool, int, float, np.integer, np.floating, np.bool_, np.ndarray)
        if isinstance(a, ValuePosition) or isinstance(b, ValuePosition) or \
                not all(isinstance(x, numeric) for x in (a, b)):
            raise ExpressionError(f"Unsupported math operation: '{type_name(a)} {op} {type_name(b)}'"
                                  f"{_value_hint(a if isinstance(a, ValuePosition) else b)}")
    else:
        if isinstance(a, ValuePosition) or isinstance(b, ValuePosition):
            ctx.note(f"'{src}' compares a value_position ('{type_name(a)} {op} {type_name(b)}'): this works "
                     "here but real Ascent 0.9.3 rejects it (comparison operators are only supported on scalars); "
                     "compare its .value instead, e.g. max(field('e')).value")
            a = a.value if isinstance(a, ValuePosition) else a
            b = b.value if isinstance(b, ValuePosition) else b
        a, b = _num(a, op), _num(b, op)
    try:
        out = _BINOPS[op](a, b)
    except ZeroDivisionError:
        raise ExpressionError(f"division by zero in '{op}'") from None
    except OverflowError:
        raise ExpressionError(f"'{op}': the result does not fit in a 64-bit number") from None
    return bool(out) if isinstance(out, np.bool_) else check_int64(out, f"'{op}'")


def evaluate(node: tuple, ctx: Context, src: str = "") -> Any:
    """Evaluate a parsed expression in ``ctx`` (``src``, the text, names it in notes)."""
    kind = node[0]
    if kind == "const":
        return node[1]
    if kind == "name":
        return ctx.lookup(node[1])
    if kind == "list":
        return [evaluate(item, ctx, src) for item in node[1]]
    if kind == "not":
        return not _bool(evaluate(node[1], ctx, src), "not")
    if kind in ("and", "or"):  # both sides always run, as in Ascent's expression graph
        a, b = evaluate(node[1], ctx, src), evaluate(node[2], ctx, src)
        a_, b_ = _bool(a, kind, b), _bool(b, kind, a)
        return (a_ and b_) if kind == "and" else (a_ or b_)
    if kind == "neg":
        v = evaluate(node[1], ctx, src)
        if isinstance(v, ValuePosition):
            raise ExpressionError(f"Unsupported math operation: '- value_position'{_value_hint(v)}")
        return -_num(v, "-")
    if kind == "bin":
        return _binary(node[1], evaluate(node[2], ctx, src), evaluate(node[3], ctx, src), ctx, src)
    if kind == "attr":
        base, attr = evaluate(node[1], ctx, src), node[2]
        if isinstance(base, ValuePosition) and attr in ("value", "position"):
            return getattr(base, attr)
        if isinstance(base, binning_mod.Bin) and attr in ("value", "min", "max", "center"):
            return getattr(base, attr)
        if isinstance(base, np.ndarray) and attr in ("x", "y", "z"):
            return float(base["xyz".index(attr)])
        if isinstance(base, binning_mod.Binning):
            raise ExpressionError(f"Cannot get attribute of non-object type: 'binning' attribute name: '{attr}' "
                                  "(as in Ascent): use bin(<binning>, index=i).value for one bin, or save the "
                                  "whole binning with save_session")
        raise ExpressionError(f"Attribute {attr} of {type_name(base)} not found")
    if kind == "index":
        base, i = evaluate(node[1], ctx, src), _num(evaluate(node[2], ctx, src), "[]")
        if isinstance(base, np.ndarray):
            return float(base[int(i)])
        if isinstance(base, Histogram):
            return int(base.counts[int(i)])
        raise ExpressionError(f"Cannot get index of non-array type: {type_name(base)}")
    if kind == "call":
        _, name, pos, args, kwargs = node
        if name == "history":
            return _eval_history(args, kwargs, ctx)
        fn = FUNCTIONS.get(name)
        if fn is None:
            hint = " (an Ascent function this runtime does not provide)" if name in UNSUPPORTED else ""
            raise ExpressionError(f"unknown function '{name}'{hint} at position {pos}; supported functions are "
                                  f"{sorted([*FUNCTIONS, 'history'])}")
        vals = [evaluate(a, ctx, src) for a in args]
        kw = {k: evaluate(v, ctx, src) for k, v in kwargs.items()}
        try:
            return fn(ctx, *vals, **kw)
        except TypeError as exc:
            raise ExpressionError(f"{name}(): bad arguments ({exc})") from None
    raise ExpressionError(f"cannot evaluate node {kind}")


def _eval_history(args: list, kwargs: dict, ctx: Context) -> Any:
    if not args or args[0][0] != "name":
        raise ExpressionError("history() takes the name of a query as its first argument")
    bad = sorted(set(kwargs) - {"relative_index", "absolute_index"})
    if bad or len(args) > 2:
        raise ExpressionError(f"history(): unknown argument(s) {bad or args[2:]}; it takes a query name and one of "
                              "relative_index= / absolute_index=")
    rel = kwargs.get("relative_index", args[1] if len(args) > 1 else None)
    ab = kwargs.get("absolute_index")
    rel_v = _index(evaluate(rel, ctx), "relative_index") if rel is not None else None
    abs_v = _index(evaluate(ab, ctx), "absolute_index") if ab is not None else None
    if rel_v is not None and abs_v is not None:
        raise ExpressionError("History: Specify only one of relative_index or absolute_index.")
    if rel_v is None and abs_v is None:
        raise ExpressionError(f"history({args[0][1]}): give relative_index=k (k evaluations ago) or "
                              "absolute_index=i (the i-th evaluation)")
    return ctx.history(args[0][1], rel_v, abs_v)


def _index(v: Any, what: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ExpressionError(f"history(): {what} must be an integer, got {v!r}")
    return int(v)


def pick_history(entries: list, name: str, relative: int | None, absolute: int | None) -> Any:
    """The entry ``history()`` picks, as Ascent 0.9.3 does (``entries`` oldest first)."""
    n = len(entries)
    if n == 0:
        raise ExpressionError(f"History: unknown identifier {name}")
    if relative is not None:
        if relative < 0:
            raise ExpressionError("History: relative_index must be a non-negative integer.")
        if relative >= n:
            relative = 0  # Ascent clamps an index past the recorded values to the newest one
        return entries[n - 1 - relative]
    if absolute is None or absolute < 0:
        raise ExpressionError("History: absolute_index must be a non-negative integer.")
    if absolute >= n:
        raise ExpressionError(f"History: found only {n} entries, cannot get entry at {absolute}")
    return entries[absolute]


def referenced_names(src: Any) -> set[str]:
    """The identifiers (query names) an expression uses; empty when it does not parse."""
    try:
        tree = parse(src)
    except ExpressionError:
        return set()
    found: set[str] = set()

    def walk(n: Any) -> None:
        if isinstance(n, tuple) and n:
            if n[0] == "name":
                found.add(n[1])
                return
            for part in n[1:]:
                walk(part)
        elif isinstance(n, list):
            for part in n:
                walk(part)
        elif isinstance(n, dict):
            for part in n.values():
                walk(part)

    walk(tree)
    return found


def _pow(x: Any, y: Any) -> Any:
    """pow() in doubles, as Ascent computes it: a huge power overflows at once instead of growing an integer."""
    try:
        return np.float64(x) ** np.float64(y) if np.ndim(x) or np.ndim(y) else float(x) ** float(y)
    except OverflowError:
        raise ExpressionError(f"pow({x}, {y}): the result does not fit in a 64-bit number") from None


def evaluate_string(src: str, ctx: Context) -> Any:
    """Parse and evaluate ``src``; errors name the expression."""
    return evaluate(parse(src), ctx, src)


def to_plain(value: Any) -> Any:
    """A JSON/YAML-friendly form of a value (for ``info`` and sessions)."""
    if isinstance(value, ValuePosition):
        return {"value": value.value, "position": [float(x) for x in value.position]}
    if isinstance(value, Histogram):
        return {"counts": value.counts.tolist(), "min_val": value.min_val, "max_val": value.max_val}
    if isinstance(value, np.ndarray):
        return [float(x) for x in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, FieldRef):
        return {"field": value.name}
    if isinstance(value, binning_mod.Binning):
        return value.plain()
    if isinstance(value, binning_mod.Bin):
        return {"value": value.value, "min": value.min, "max": value.max, "center": value.center}
    if isinstance(value, binning_mod.Axis):
        return {value.name: value.described()}
    return value
