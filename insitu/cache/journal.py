"""The per-rank journal: a fast path for rebuilding the index, never the source of truth.

Opening 10,000 HDF5 files costs seconds, so each writer also appends one line
per committed segment to ``r<rank>.journal``::

    <crc32 of the payload, 8 hex digits> <payload>\\n

where the payload is ``z`` + base64 of the zstd-compressed JSON
``{"segment": name, "size": bytes, "rows": [...]}`` (the rows' meta JSON is
repetitive: about 5x smaller than the plain JSON, which older writers wrote
and readers still accept).

A reader trusts a line only when its CRC matches, its segment file exists and
has the recorded size; any segment without such a line is read the slow way
(its HDF5 ``index`` dataset). So a torn last line (a writer killed while
appending), a missing journal, or a journal out of date all still give the
right index: deleting every journal is always safe.
"""
from __future__ import annotations

import base64
import json
import os
import zlib
from pathlib import Path
from typing import Iterator

from insitu.cache.segment import Row, atomic_write


def journal_name(rank: int) -> str:
    return f"r{rank:05d}.journal"


def encode(segment: str, size: int, rows: list[Row]) -> bytes:
    """One journal line for a committed segment."""
    import zstandard

    body = json.dumps({"segment": segment, "size": size,
                       "rows": [[r.field, r.cycle, r.domain, r.nbytes, r.checksum, r.base_cycle, r.meta_json,
                                 r.offset] for r in rows]}, separators=(",", ":")).encode()
    payload = b"z" + base64.b64encode(zstandard.ZstdCompressor(level=9).compress(body))
    return f"{zlib.crc32(payload) & 0xFFFFFFFF:08x} ".encode() + payload + b"\n"


def read(path: Path) -> Iterator[tuple[str, int, list[Row]]]:
    """(segment name, size, rows) of each intact line of a journal; damaged lines are skipped."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return
    import zstandard

    for line in data.split(b"\n"):
        if len(line) < 10 or line[8:9] != b" ":
            continue
        body = line[9:]
        try:
            if int(line[:8], 16) != zlib.crc32(body) & 0xFFFFFFFF:
                continue
            if body[:1] == b"z":
                body = zstandard.ZstdDecompressor().decompress(base64.b64decode(body[1:], validate=True))
            doc = json.loads(body)
            name = doc["segment"]
            # 8 fields; 7 (no offset: a version-1 segment) from earlier writers
            rows = [Row(f, int(c), int(d), int(n), int(k), int(b), m, name, i, int(rest[0]) if rest else -1)
                    for i, (f, c, d, n, k, b, m, *rest) in enumerate(doc["rows"])]
            yield name, int(doc["size"]), rows
        except (ValueError, KeyError, TypeError, zstandard.ZstdError):
            continue


class JournalWriter:
    """Appends lines to a rank's journal (the writer holds the rank lock, so it is the only one)."""

    def __init__(self, directory: Path, rank: int) -> None:
        self.path = Path(directory) / journal_name(rank)

    def rewrite(self, records: list[tuple[str, int, list[Row]]]) -> None:
        """Replace the journal by exactly ``records`` (atomically); errors are ignored: it is only a fast path."""
        try:
            atomic_write(self.path, b"".join(encode(*r) for r in records))
        except OSError:
            pass

    def append(self, segment: str, size: int, rows: list[Row]) -> None:
        """Append one line and fsync; on failure, cut the partial line off again (best effort)."""
        line = encode(segment, size, rows)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError:
            return
        try:
            before = os.fstat(fd).st_size
            try:
                os.write(fd, line)
                os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, before)
                except OSError:
                    pass
        finally:
            os.close(fd)
