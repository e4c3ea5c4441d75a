"""Exceptions of the temporal cache.

Every error names what it is about (the cache path, the file, the entry) so a
message alone tells the user what went wrong and where.
"""
from __future__ import annotations


class CacheError(Exception):
    """Base class of every error the cache raises."""


class CacheNotFoundError(CacheError, FileNotFoundError):
    """The cache directory does not exist."""


class CacheFormatError(CacheError):
    """Not a cache directory, or a format version this code does not read."""


class CacheKeyError(CacheError, KeyError):
    """An unknown field, cycle or domain; the message lists what exists."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CacheCorruptError(CacheError):
    """A stored entry failed its checksum (or could not be read at all).

    Attributes ``file``, ``field``, ``cycle`` and ``domain`` name the entry.
    """

    def __init__(self, message: str, *, file: str, field: str | None = None, cycle: int | None = None,
                 domain: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.field = field
        self.cycle = cycle
        self.domain = domain

    def __reduce__(self):  # picklable (broadcast between MPI ranks)
        return (_corrupt, (str(self), self.file, self.field, self.cycle, self.domain))


def _corrupt(message: str, file: str, field: str | None, cycle: int | None, domain: int | None) -> CacheCorruptError:
    return CacheCorruptError(message, file=file, field=field, cycle=cycle, domain=domain)


class CacheLockedError(CacheError):
    """Another process is already writing this rank's files of the cache."""


class CacheReadOnlyError(CacheError):
    """A write was attempted through a read-only (replay) handle."""


class CacheBudgetError(CacheError, ValueError):
    """A memory or disk budget that is malformed or too small."""


class GridTooLargeError(CacheError):
    """A grid whose size comes from the cache's metadata is larger than this machine's memory allows."""
