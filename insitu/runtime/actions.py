"""Load Ascent actions (a list of dicts, or an ``ascent_actions.yaml``/``.json`` file)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


class ActionsError(ValueError):
    """Actions that cannot be read: the message names the file and line, or the action."""


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
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ActionsError(f"{p}: {where}{problem}") from None
    return normalize(data, source=str(p))


def normalize(actions: Any, source: str = "actions") -> list[dict]:
    """The actions as a list of dicts, each with an ``action`` key."""
    if actions is None:
        return []
    if hasattr(actions, "to_yaml") and not isinstance(actions, (dict, list)):  # a conduit.Node
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
