"""Load Ascent actions (a list of dicts, or an ``ascent_actions.yaml``/``.json`` file).

A YAML file is typed the way Conduit's YAML reader types it (what real Ascent
sees), not the way PyYAML would: every scalar, quoted or not, becomes an
integer when all of it parses as one (``strtol``), else a float when all of it
parses as one (``strtod``: ``"1e300"``, ``"inf"``, ``".5"``), else an empty
value when empty, else a string (``true``/``false``/``null`` stay strings). A
sequence of numbers becomes a list of numbers. So ``expression: "1e300"`` is a
float there and a query with it fails validation, as in Ascent. JSON keeps
its own types (a quoted number stays a string).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml


class ActionsError(ValueError):
    """Actions that cannot be read: the message names the file and line, or the action."""


# what C's strtol(s, &end, 10) / strtod(s, &end) accept in full (leading white space allowed, as there)
_STRTOL = re.compile(r"\s*[+-]?[0-9]+")
_STRTOD = re.compile(r"""\s*[+-]?(
      ([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?
    | 0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?[0-9]+)?
    | inf(inity)? | nan(\([0-9A-Za-z_]*\))?
)""", re.VERBOSE | re.IGNORECASE)


def conduit_scalar(text: str) -> Any:
    """A YAML scalar typed as Conduit's YAML reader types it (int, float, None or the string)."""
    if _STRTOL.fullmatch(text):
        return int(text)
    if _STRTOD.fullmatch(text):
        s = text.strip()
        if s.lower().lstrip("+-").startswith("0x"):
            sign = -1.0 if s.startswith("-") else 1.0
            return sign * float.fromhex(s.lstrip("+-"))
        if s.lower().lstrip("+-").startswith("nan"):
            return float("nan")
        return float(s)
    if text == "":
        return None
    return text


def conduit_typed(value: Any) -> Any:
    """A tree of PyYAML BaseLoader strings typed as Conduit would type it."""
    if isinstance(value, dict):
        return {str(k): conduit_typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [conduit_typed(v) for v in value]
    if isinstance(value, str):
        return conduit_scalar(value)
    return value


def parse_yaml_text(text: str) -> Any:
    """Parse YAML as Conduit does (scalars typed by their text, quotes ignored); raises yaml.YAMLError."""
    return conduit_typed(yaml.load(text, Loader=yaml.BaseLoader))


def load_actions_file(path: str | Path) -> list[dict]:
    """Read a YAML or JSON actions file; syntax errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ActionsError(f"cannot read actions file {p}: {exc.strerror or exc}") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ActionsError(f"{p}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    else:
        try:
            data = parse_yaml_text(text)
        except yaml.YAMLError as exc:
            raise ActionsError(f"{p}: {yaml_error_text(exc, text)}") from None
    return normalize(data, source=str(p))


def yaml_error_text(exc: Exception, text: str) -> str:
    """Where a YAML error is and what it is, pointing at an unclosed quote when there is one: PyYAML reports
    such a quote where the quoted text runs into trouble, often lines below the quote itself."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    msg = where + (getattr(exc, "problem", None) or str(exc))
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and cmark is not None:
        msg += f" ({context} at line {cmark.line + 1})"
    lines = text.splitlines()
    last = mark.line if mark is not None else len(lines) - 1
    for i, line in enumerate(lines[: last + 1]):
        body = line.split("#", 1)[0] if '"' not in line.split("#", 1)[0] else line
        if body.count('"') % 2 or (body.count("'") % 2 and '"' not in body):
            msg += f"; line {i + 1} opens a quote it does not close: {line.strip()[:60]!r}"
            break
    return msg


def normalize(actions: Any, source: str = "actions") -> list[dict]:
    """The actions as a list of dicts, each with an ``action`` key."""
    if actions is None:
        return []
    if hasattr(actions, "to_yaml") and not isinstance(actions, (dict, list)):  # a conduit.Node: already typed
        actions = yaml.safe_load(actions.to_yaml())
    if isinstance(actions, dict):
        # conduit lists of actions sometimes arrive as an object of numbered children
        actions = list(actions.values()) if "action" not in actions else [actions]
    if not isinstance(actions, list):
        raise ActionsError(f"{source}: expected a list of actions, got {type(actions).__name__}")
    out = []
    for i, a in enumerate(actions):
        if not isinstance(a, dict) or "action" not in a:
            raise ActionsError(f"{source}: entry {i} is not an action (a mapping with an 'action' key)")
        out.append(a)
    return out


def load(actions: Any) -> list[dict]:
    """Actions from a list/dict/conduit.Node, or from a file path."""
    if isinstance(actions, (str, Path)):
        return load_actions_file(actions)
    return normalize(actions)


def same_actions(a: Any, b: Any) -> bool:
    """Whether two loaded action trees are identical (what Ascent's ``Node::diff`` decides)."""
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                        and not isinstance(a, bool) and not isinstance(b, bool)):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_actions(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_actions(x, y) for x, y in zip(a, b))
    try:
        import numpy as np

        if isinstance(a, np.ndarray):
            return a.shape == b.shape and bool(np.array_equal(a, b))
        return bool(a == b)
    except Exception:
        return False
