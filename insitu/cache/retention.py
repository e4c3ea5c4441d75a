"""Retention: which cycles a cache keeps. Nothing is dropped unless a policy here says so."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Retention:
    """Which cycles of a field to keep (per writer rank).

    * ``keep_last=N``: the N newest cycles of each field are kept.
    * ``keep_every=k``: cycles whose number is a multiple of ``k`` are kept
      (cycle numbers, not positions, so every rank and every restart agrees).
      Given alone, the newest cycle is kept as well (``keep_last`` defaults to 1).
    * both: a cycle is kept when either rule keeps it (recent history in full,
      older history thinned).
    * neither (the default): every cycle is kept.

    The disk budget of :class:`~insitu.cache.TemporalCache` is a separate,
    additional rule: oldest cycles leave the disk first, never the newest.
    """

    keep_last: int | None = None
    keep_every: int | None = None

    def __post_init__(self) -> None:
        for name in ("keep_last", "keep_every"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}={v!r} is invalid: expected a positive integer or None")

    @property
    def keeps_all(self) -> bool:
        return self.keep_last is None and self.keep_every is None

    def dropped(self, cycles: list[int]) -> list[int]:
        """The cycles of ``cycles`` (one field's cycles) this policy drops."""
        if self.keeps_all:
            return []
        last = self.keep_last if self.keep_last is not None else 1
        ordered = sorted(set(cycles))
        recent = set(ordered[-last:])
        return [c for c in ordered
                if c not in recent and not (self.keep_every is not None and c % self.keep_every == 0)]

    @classmethod
    def coerce(cls, value: "Retention | dict | None") -> "Retention":
        """A Retention from an instance, a dict of its fields, or None (keep everything)."""
        if value is None:
            return cls()
        if isinstance(value, Retention):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"keep_last", "keep_every"}
            if unknown:
                raise ValueError(f"unknown retention keys {sorted(unknown)}: valid are ['keep_every', 'keep_last']")
            return cls(**value)
        raise ValueError(f"retention={value!r} is invalid: give a Retention, a dict "
                         "{'keep_last': N, 'keep_every': k} or None")
