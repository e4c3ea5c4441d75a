"""Ascent-style expressions for queries and trigger conditions, parsed safely (no eval).

Covers Ascent's common expressions::

    cycle() % 100 == 0
    max(field('energy')) > 1.5 and not time() < 2
    max_pressure - history(max_pressure, relative_index = 1) > 100
    magnitude(max(field('braid')).position - vector(0,0,0)) > 0
    entropy(histogram(field('pressure'))) < 5

Numbers, strings, + - * / %, comparisons, ``and``/``or``/``not``, attribute
access (``.value``, ``.position``, ``.x``) and the functions in
:data:`FUNCTIONS`. Field reductions cover the owned samples of every rank
(each rank reduces its domains, then one collective); every rank agrees on
failure before a collective, so a bad field on one rank raises everywhere
instead of hanging the others.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


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


def _num(v: Any, what: str) -> Any:
    """Coerce to a number (a value-with-position counts as its value) or a vector."""
    if isinstance(v, ValuePosition):
        return v.value
    if isinstance(v, (bool, int, float, np.floating, np.integer)):
        return v
    if isinstance(v, np.ndarray):
        return v
    raise ExpressionError(f"{what}: expected a number, got {type(v).__name__}")


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


# ---------------------------------------------------------------- parser -> AST (nested tuples)
class _Parser:
    def __init__(self, src: str) -> None:
        self.src, self.toks, self.i = src, tokenize(src), 0

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
        if self.accept("-"):
            return ("neg", self.unary())
        if self.accept("+"):
            return self.unary()
        return self.postfix()

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
            return ("const", float(t.text) if any(c in t.text for c in ".eE") else int(t.text))
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
                 history: Callable[[str, int | None, int | None], Any] | None = None) -> None:
        self.cycle, self.time, self.published, self.comm = cycle, time, published, comm
        self._lookup, self._history = lookup, history

    def lookup(self, name: str) -> Any:
        if self._lookup is None:
            raise ExpressionError(f"unknown name '{name}'")
        return self._lookup(name)

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
    if bins < 1:
        raise ExpressionError(f"histogram num_bins={bins} must be >= 1")
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
        "pow": lambda ctx, x, y: _num(x, "pow") ** _num(y, "pow"),
        "floor": lambda ctx, x: math.floor(_num(x, "floor")),
        "ceil": lambda ctx, x: math.ceil(_num(x, "ceil")),
        "round": lambda ctx, x: round(_num(x, "round")),
        "vector": lambda ctx, x, y, z=0.0: np.array([_num(x, "vector"), _num(y, "vector"), _num(z, "vector")], float),
        "magnitude": lambda ctx, v: float(np.linalg.norm(np.asarray(_num(v, "magnitude"), float))),
        "histogram": _histogram,
        "entropy": lambda ctx, h: _entropy(h),
    }
    return fns


def _bad(name: str) -> Any:
    raise ExpressionError(f"{name}() takes field('name')")


FUNCTIONS = _make_functions()
#: Ascent expression functions this engine does not provide (named in the error).
UNSUPPORTED = ("binning", "axis", "gradient", "topo", "bin", "quantile", "lineout", "field_nan_count",
               "field_inf_count", "point_and_axis", "max_from_point", "cycle_min", "recenter", "paint_binning")

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "%": lambda a, b: a % b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def evaluate(node: tuple, ctx: Context) -> Any:
    """Evaluate a parsed expression in ``ctx``."""
    kind = node[0]
    if kind == "const":
        return node[1]
    if kind == "name":
        return ctx.lookup(node[1])
    if kind == "list":
        return [evaluate(item, ctx) for item in node[1]]
    if kind == "not":
        return not bool(_num(evaluate(node[1], ctx), "not"))
    if kind == "and":
        return bool(_num(evaluate(node[1], ctx), "and")) and bool(_num(evaluate(node[2], ctx), "and"))
    if kind == "or":
        return bool(_num(evaluate(node[1], ctx), "or")) or bool(_num(evaluate(node[2], ctx), "or"))
    if kind == "neg":
        return -_num(evaluate(node[1], ctx), "-")
    if kind == "bin":
        op = node[1]
        a, b = _num(evaluate(node[2], ctx), op), _num(evaluate(node[3], ctx), op)
        try:
            out = _BINOPS[op](a, b)
        except ZeroDivisionError:
            raise ExpressionError(f"division by zero in '{op}'") from None
        return bool(out) if isinstance(out, (np.bool_,)) else out
    if kind == "attr":
        base, attr = evaluate(node[1], ctx), node[2]
        if isinstance(base, ValuePosition) and attr in ("value", "position"):
            return getattr(base, attr)
        if isinstance(base, np.ndarray) and attr in ("x", "y", "z"):
            return float(base["xyz".index(attr)])
        raise ExpressionError(f"{type(base).__name__} has no attribute '{attr}'")
    if kind == "index":
        base, i = evaluate(node[1], ctx), _num(evaluate(node[2], ctx), "[]")
        if isinstance(base, np.ndarray):
            return float(base[int(i)])
        if isinstance(base, Histogram):
            return int(base.counts[int(i)])
        raise ExpressionError(f"cannot index a {type(base).__name__}")
    if kind == "call":
        _, name, pos, args, kwargs = node
        if name == "history":
            return _eval_history(args, kwargs, ctx)
        fn = FUNCTIONS.get(name)
        if fn is None:
            hint = " (an Ascent function this runtime does not provide)" if name in UNSUPPORTED else ""
            raise ExpressionError(f"unknown function '{name}'{hint} at position {pos}; supported functions are "
                                  f"{sorted([*FUNCTIONS, 'history'])}")
        vals = [evaluate(a, ctx) for a in args]
        kw = {k: evaluate(v, ctx) for k, v in kwargs.items()}
        try:
            return fn(ctx, *vals, **kw)
        except TypeError as exc:
            raise ExpressionError(f"{name}(): bad arguments ({exc})") from None
    raise ExpressionError(f"cannot evaluate node {kind}")


def _eval_history(args: list, kwargs: dict, ctx: Context) -> Any:
    if not args or args[0][0] != "name":
        raise ExpressionError("history() takes the name of a query as its first argument")
    rel = kwargs.get("relative_index", args[1] if len(args) > 1 else None)
    ab = kwargs.get("absolute_index")
    rel_v = int(_num(evaluate(rel, ctx), "relative_index")) if rel is not None else None
    abs_v = int(_num(evaluate(ab, ctx), "absolute_index")) if ab is not None else None
    if rel_v is None and abs_v is None:
        rel_v = 0
    return ctx.history(args[0][1], rel_v, abs_v)


def evaluate_string(src: str, ctx: Context) -> Any:
    """Parse and evaluate ``src``; errors name the expression."""
    return evaluate(parse(src), ctx)


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
    return value
