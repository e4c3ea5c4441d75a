"""The one grammar of ``cycles``: which cached cycles ``af.render``/``af.export`` (``cycles=``) and
``insitu replay`` (``--cycles``) mean.

=============================  ===================================================================
``'all'``                      every cached cycle
``'last:N'``                   the N newest cached cycles (N <= 0: none)
``C`` or ``'C'``               that cycle
``[C1, C2, ...]``              those cycles, in that order (a list or tuple, or the string
                               ``'C1,C2,...'``)
``'START:STOP'``               the cached cycles c with START <= c < STOP
``'START:STOP:STEP'``          ... and (c - START) % STEP == 0, STEP >= 1
=============================  ===================================================================

A cycle named by number must be cached, and a range must select at least one
cached cycle; otherwise :class:`CyclesError` shows the cached range.
:func:`parse_cycles` checks the form alone (a filter does that before it
reads the cache); :func:`select_cycles` resolves it against the cached cycles.
Both filters and the command line import it from here (cli -> filters).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Sequence

#: the forms, as error messages and help texts spell them
CYCLES_FORMS = "all, last:N, a cycle C, a list C1,C2,... ([C1, C2, ...] in Python) or a range START:STOP[:STEP]"


class CyclesError(ValueError):
    """A ``cycles`` selection that is malformed or names cycles that are not cached (the message shows which)."""


@dataclass(frozen=True)
class CycleSelection:
    """A parsed ``cycles`` value: ``kind`` is 'all', 'last' (``n``), 'list' (``cycles``) or 'range'
    (``start``, ``stop``, ``step``)."""

    kind: str
    n: int = 0
    cycles: tuple[int, ...] = ()
    start: int = 0
    stop: int = 0
    step: int = 1

    def resolve(self, available: Sequence[int], label: str) -> list[int]:
        """The cycles selected among the cached ``available`` (ascending); CyclesError as in :func:`select_cycles`."""
        have = list(available)
        span = f"{have[0]}..{have[-1]} ({len(have)} cycles)" if have else "none"
        if self.kind == "all":
            return have
        if self.kind == "last":
            return have[-self.n:] if self.n > 0 else []
        if self.kind == "range":
            chosen = [c for c in have if self.start <= c < self.stop and (c - self.start) % self.step == 0]
            if not chosen:
                raise CyclesError(f"{label} selects no cached cycle; cached cycles: {span}")
            return chosen
        cached = set(have)
        missing = [c for c in self.cycles if c not in cached]
        if missing:
            raise CyclesError(f"{label}: cycle(s) {missing[:10]} are not cached; cached cycles: {span}")
        return list(self.cycles)


def _cycle_number(x: Any) -> int:
    """A cycle given as a whole number (an int, a NumPy integer, or an integral float, e.g. from YAML)."""
    if isinstance(x, bool):
        raise ValueError
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, float) and x.is_integer():
        return int(x)
    raise ValueError


def parse_cycles(spec: Any, label: str | None = None) -> CycleSelection:
    """``spec`` in the grammar of this module; CyclesError ``"<label> is invalid: use ..."`` otherwise.

    ``label`` names the value in the message (default ``cycles=<spec!r>``).
    """
    label = label or f"cycles={spec!r}"
    try:
        if isinstance(spec, str):
            text = spec.strip()
            if text == "all":
                return CycleSelection("all")
            if text.startswith("last:"):
                return CycleSelection("last", n=int(text[5:]))
            if ":" in text:
                parts = [int(x) for x in text.split(":")]
                if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] < 1):
                    raise ValueError
                return CycleSelection("range", start=parts[0], stop=parts[1], step=parts[2] if len(parts) == 3 else 1)
            return CycleSelection("list", cycles=tuple(int(x) for x in text.split(",")))
        if isinstance(spec, (list, tuple)):
            return CycleSelection("list", cycles=tuple(_cycle_number(x) for x in spec))
        return CycleSelection("list", cycles=(_cycle_number(spec),))
    except (ValueError, TypeError):
        raise CyclesError(f"{label} is invalid: use {CYCLES_FORMS}") from None


def select_cycles(spec: Any, available: Sequence[int], label: str | None = None) -> list[int]:
    """The cached cycles (among ``available``, ascending) that ``spec`` selects, in the grammar of this module.

    CyclesError naming ``label`` (default ``cycles=<spec!r>``) when ``spec`` is malformed, a cycle it names
    is not cached, or its range selects no cached cycle; the message shows the cached range.
    """
    label = label or f"cycles={spec!r}"
    return parse_cycles(spec, label).resolve(available, label)
