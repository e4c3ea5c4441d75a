"""The parameters of a filter, declared once: checked, documented and listed from one :class:`Param` each.

A filter declares its keyword arguments as a :class:`ParamSet` of :class:`Param`
(name, kind, default, doc, check or valid choices, aliases)::

    EXPORT_PARAMS = ParamSet("export", [
        Param("field", "the cached field to export", required=True, check=text()),
        Param("format", "file format", default="npy", choices=("npy", "vti")),
        ...
    ])
    values = EXPORT_PARAMS.parse(kwargs)   # {canonical name: value}, defaults filled in

From the same declarations come the docstrings of ``af.compress``/``af.render``/
``af.export`` (:meth:`ParamSet.doc`), the list in the "unknown parameter"
message, and the help and checks of the command-line options that mean the
same thing (``insitu replay`` and ``af.render``, ``insitu export`` and
``af.export``: :meth:`Param.help`, :meth:`Param.validate`).

Every error is a :class:`FilterParamError` naming the action, the parameter
(as the caller spelled it: an alias is named as given), the bad value and the
valid choices, on one line, e.g. ``compress: temporal='deltas' is invalid:
valid choices are ['none', 'delta']``. Rules between parameters (e.g.
``temporal='delta'`` needs ``warm_start``) stay explicit checks of each filter,
run after these per-parameter ones.
"""
from __future__ import annotations

import copy
import difflib
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Sequence

import inr

from insitu.filters.cycles import CYCLES_FORMS, CyclesError, parse_cycles, select_cycles


class FilterParamError(ValueError):
    """A bad filter argument: the message names it and lists the valid ones."""


class Invalid(ValueError):
    """Raised by a :class:`Param` check with the reason only (``"must be ..."``, ``"is invalid: ..."``);
    the layer prefixes ``"<action>: <name>=<value!r> "``. Any other ValueError/TypeError a check raises
    (e.g. from a lower layer) already names the parameter and is prefixed with ``"<action>: "`` only."""


class Check:
    """A check of one parameter's value: ``check(value)`` returns the value to keep (normalised) or raises
    :class:`Invalid`; ``kind`` says in words what it accepts (for the docs)."""

    def __init__(self, fn: Callable[[Any], Any], kind: str) -> None:
        self.fn = fn
        self.kind = kind

    def __call__(self, value: Any) -> Any:
        return self.fn(value)

    def __repr__(self) -> str:
        return f"Check({self.kind!r})"


# --- the kinds of value the filters take -----------------------------------------------------------------

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def number(lo: float, *, above: bool = False, note: str = "") -> Check:
    """A finite number >= ``lo`` (> ``lo`` when ``above``)."""
    op = ">" if above else ">="
    reason = f"must be a number {op} {lo}{note}"

    def check(v: Any) -> Any:
        if not _is_number(v) or not math.isfinite(v) or (v <= lo if above else v < lo):
            raise Invalid(reason)
        return v
    return Check(check, f"number {op} {lo}")


def integer(lo: int = 1) -> Check:
    """A Python int >= ``lo`` (bool refused)."""
    reason = "must be a positive integer" if lo == 1 else f"must be an integer >= {lo}"

    def check(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise Invalid(reason)
        return v
    return Check(check, "positive integer" if lo == 1 else f"integer >= {lo}")


def flag() -> Check:
    """True or False (1 and 0 as well, kept as bool)."""
    def check(v: Any) -> Any:
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        raise Invalid("must be True or False")
    return Check(check, "bool")


def text(what: str = "a non-empty string", empty: bool = False) -> Check:
    """A str, non-empty unless ``empty``."""
    def check(v: Any) -> Any:
        if not isinstance(v, str) or not (v or empty):
            raise Invalid(f"must be {what}")
        return v
    return Check(check, "str")


def path(what: str = "a directory path", empty: bool = False) -> Check:
    """A str or os.PathLike, non-empty unless ``empty`` (kept as given)."""
    def check(v: Any) -> Any:
        if not isinstance(v, (str, os.PathLike)) or not (str(v) or empty):
            raise Invalid(f"must be {what}")
        return v
    return Check(check, "path")


def names(what: str = "a list of field names") -> Check:
    """A list of str (one str is a list of one), returned as a list."""
    def check(v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, (list, tuple)) or not all(isinstance(f, str) for f in v):
            raise Invalid(f"must be {what}")
        return list(v)
    return Check(check, "list of str")


def via(fn: Callable[[Any], Any], kind: str = "any") -> Check:
    """The check ``fn`` of a lower layer, whose ValueError already names the parameter and value; the
    value is kept as given (``fn``'s result is ignored)."""
    def check(v: Any) -> Any:
        fn(v)
        return v
    return Check(check, kind)


def cycles() -> Check:
    """A cycles selection in the one grammar of :mod:`insitu.filters.cycles` (checked here, resolved later
    against the cached cycles)."""
    def check(v: Any) -> Any:
        try:
            parse_cycles(v)
        except CyclesError:
            raise Invalid(f"is invalid: use {CYCLES_FORMS}") from None
        return v
    return Check(check, "cycles")


def size() -> Check:
    """A positive number of bytes: an int, or a string such as '512MB' or '2GB' (kept as given; the cache
    parses it)."""
    def check(v: Any) -> Any:
        from insitu.cache.meta import parse_size

        try:
            parse_size(v)
        except ValueError:
            raise Invalid("must be a positive size: bytes, or a string such as '512MB' or '2GB'") from None
        return v
    return Check(check, "size")


# --- declarations --------------------------------------------------------------------------------------

_NOTHING = object()


@dataclass(frozen=True)
class Param:
    """One keyword argument of a filter.

    ``name``: the canonical name; ``doc``: what it means (without its default or choices, which are
    added from ``default``/``default_doc`` and ``choices``); ``default``: the value when not given
    (copied for each call); ``check``: a :class:`Check` or a callable returning the value to keep or
    raising :class:`Invalid`; ``choices``: the valid values (checked before ``check``); ``aliases``:
    other accepted names; ``required``: no default; ``nullable``: None is accepted as "not set" (by
    default when the default is None); ``kind``: what it accepts, in words (default: from the check);
    ``default_doc``: the default in words, when ``repr(default)`` says too little.
    """

    name: str
    doc: str
    default: Any = None
    check: Callable[[Any], Any] | None = None
    choices: tuple | None = None
    aliases: tuple[str, ...] = ()
    required: bool = False
    nullable: bool | None = None
    kind: str | None = None
    default_doc: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def type_text(self) -> str:
        if self.kind is not None:
            return self.kind
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return getattr(self.check, "kind", "any")

    def default_value(self) -> Any:
        return copy.deepcopy(self.default)

    def default_text(self) -> str:
        """The default in words: ``default_doc``, else ``repr(default)`` ('none' for None)."""
        if self.required:
            return "required"
        if self.default_doc is not None:
            return self.default_doc
        return "none" if self.default is None else repr(self.default)

    def describe(self) -> str:
        """``name (alias: ...): doc; one of [...] (kind, default ...)`` on one line: the docstrings of the
        filters and the list of the unknown-name message."""
        alias = f" (alias: {', '.join(self.aliases)})" if self.aliases else ""
        choices = f"; one of {list(self.choices)}" if self.choices is not None else ""
        kind = "" if self.choices is not None or self.type_text == "any" else f"{self.type_text}, "
        default = "required" if self.required else f"default {self.default_text()}"
        return f"{self.name}{alias}: {self.doc}{choices} ({kind}{default})"

    def help(self, default: Any = _NOTHING, syntax: str = "") -> str:
        """The help text of a command-line option meaning this parameter: its doc, its choices, how the
        option writes a value (``syntax``) and the option's ``default`` (default: this parameter's, in words)."""
        choices = f": {', '.join(map(str, self.choices))}" if self.choices is not None else ""
        syntax = f", {syntax}" if syntax else ""
        if default is _NOTHING:
            shown = self.default_text() if self.default_doc is not None or self.default is None else str(self.default)
        else:
            shown = "none" if default is None else str(default)
        return f"{self.doc}{choices}{syntax} (default {shown})".replace("%", "%%")

    def validate(self, value: Any, action: str, given: str | None = None) -> Any:
        """``value`` checked (and normalised); FilterParamError ``"<action>: <given>=<value!r> ..."``."""
        name = given or self.name
        nullable = self.default is None if self.nullable is None else self.nullable
        if value is None and nullable and not self.required:
            return None
        try:
            if self.choices is not None and (isinstance(value, bool) or not _member(value, self.choices)):
                raise Invalid(f"is invalid: valid choices are {list(self.choices)}")
            return self.check(value) if self.check is not None else value
        except Invalid as exc:
            raise FilterParamError(f"{action}: {name}={value!r} {exc}") from None
        except (ValueError, TypeError) as exc:
            raise FilterParamError(f"{action}: {exc}") from None


def _member(value: Any, choices: tuple) -> bool:
    try:
        return value in choices
    except TypeError:
        return False


class ParamSet:
    """The declared parameters of one action, in order; ``parse`` checks a kwargs dict against them."""

    def __init__(self, action: str, params: Iterable[Param]) -> None:
        self.action = action
        self.params: tuple[Param, ...] = tuple(params)
        self._by_name: dict[str, Param] = {}
        for p in self.params:
            for n in p.names:
                if n in self._by_name:
                    raise ValueError(f"{action}: parameter name {n!r} declared twice")
                self._by_name[n] = p

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Param:
        """The parameter called ``name`` (or with that alias)."""
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        """The canonical names, in declaration order."""
        return [p.name for p in self.params]

    @property
    def aliases(self) -> dict[str, str]:
        """alias -> canonical name."""
        return {a: p.name for p in self.params for a in p.aliases}

    def doc(self, indent: str = "") -> str:
        """One line per parameter (:meth:`Param.describe`), for docstrings and the unknown-name message."""
        return "\n".join(f"{indent}{p.describe()}" for p in self.params)

    def unknown_error(self, unknown: list[str], action: str) -> FilterParamError:
        hints = sorted({m for u in unknown for m in difflib.get_close_matches(u, list(self._by_name), n=1)})
        hint = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
        alias = "; aliases: " + ", ".join(f"{a} = {n}" for a, n in self.aliases.items()) if self.aliases else ""
        return FilterParamError(f"{action}: unknown parameter(s) {unknown}{hint}; valid parameters are "
                                f"{self.names}{alias}; what each means:\n{self.doc(indent='    ')}")

    def parse(self, kwargs: Mapping[str, Any], action: str | None = None) -> dict[str, Any]:
        """``kwargs`` checked against the declarations: {canonical name: value} with every default filled in.

        FilterParamError for an unknown name (listing the valid ones, with what each means), a parameter
        given twice (by its name and an alias), a required one missing, or a bad value (see
        :meth:`Param.validate`). ``action`` names the caller in messages (default: this set's action).
        """
        action = action or self.action
        unknown = sorted(k for k in kwargs if k not in self._by_name)
        if unknown:
            raise self.unknown_error(unknown, action)
        given: dict[str, str] = {}
        for k in kwargs:
            p = self._by_name[k]
            if p.name in given:
                raise FilterParamError(f"{action}: {given[p.name]}= and {k}= are the same parameter "
                                       f"({p.name}): give one")
            given[p.name] = k
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                out[p.name] = p.validate(kwargs[given[p.name]], action, given[p.name])
            elif p.required:
                raise FilterParamError(f"{action}: {p.name}= is required ({p.doc})")
            else:
                out[p.name] = p.default_value()
        return out


class FilterParams:
    """The checked parameters of one call of a filter, as attributes (one per declared parameter).

    A subclass sets ``PARAMS`` and may override :meth:`check` with its rules between parameters.
    ``Cls()`` holds the defaults; ``Cls.from_kwargs(kwargs)`` checks a call's keyword arguments.
    """

    PARAMS: ClassVar[ParamSet]

    def __init__(self, **values: Any) -> None:
        for p in self.PARAMS:
            setattr(self, p.name, values.pop(p.name) if p.name in values else p.default_value())
        if values:
            raise TypeError(f"{type(self).__name__}: no parameter(s) {sorted(values)}")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], action: str | None = None) -> Any:
        """Every parameter checked (declarations first, then :meth:`check`); FilterParamError otherwise."""
        params = cls(**cls.PARAMS.parse(kwargs, action))
        params.check(action or cls.PARAMS.action)
        return params

    def check(self, action: str) -> None:
        """The rules between parameters (FilterParamError); none by default."""

    def values(self) -> dict[str, Any]:
        return {p.name: getattr(self, p.name) for p in self.PARAMS}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.values() == other.values()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.values().items())})"


# --- parameters several filters share (one declaration each) ---------------------------------------------

#: the cache directory of every filter
CACHE = Param("cache", "cache directory", "run.cache", check=path())
#: the cached cycles ``af.render`` and ``af.export`` work on (the grammar of :mod:`insitu.filters.cycles`)
CYCLES = Param("cycles", f"which cached cycles: {CYCLES_FORMS} (the cached cycles c with START <= c < STOP)",
               "last:1", check=cycles())
#: the inr backend that decodes cached models
DECODE_BACKEND = Param("backend", "inr decode backend", "auto", choices=tuple(inr.BACKENDS))


def select_cached(action: str, spec: Any, available: Sequence[int]) -> list[int]:
    """The cached cycles a filter's ``cycles=`` selects (:func:`insitu.filters.cycles.select_cycles`);
    FilterParamError ``"<action>: cycles=... "`` showing the cached range otherwise."""
    try:
        return select_cycles(spec, available)
    except CyclesError as exc:
        raise FilterParamError(f"{action}: {exc}") from None
