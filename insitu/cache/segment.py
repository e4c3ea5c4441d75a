"""The on-disk format: the cache marker, segment files, atomic writes, the writer lock.

A cache is a directory (see docs/cache_format.md)::

    CACHE/insitu-cache.json              marker: {"format": "insitu-inr-cache", "format_version": 1, ...}
    CACHE/r00003.lock                    rank 3's writer lock (fcntl.flock), holds the writer's pid
    CACHE/r00003.drops.json              what retention dropped on rank 3 (counters, cumulative)
    CACHE/r00003-c0000000042-s000007.h5  a segment: entries of rank 3 from cycle 42 on, written 7th

Segments are immutable HDF5 files: built in memory, written under a temporary
name (``.tmp-...``), fsync'ed, renamed into place, and the directory fsync'ed.
A reader therefore sees a whole segment or none of it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from insitu.cache.errors import CacheCorruptError, CacheFormatError, CacheLockedError, CacheNotFoundError
from insitu.cache.meta import EntryMeta

FORMAT_NAME = "insitu-inr-cache"
FORMAT_VERSION = 1            # of the cache directory (the marker)
SUPPORTED_VERSIONS = (1,)
#: of a segment file: 2 = all entries' bytes in one dataset ``data`` at the index's offsets;
#: 1 = one dataset ``entries/<row>`` per entry (still read)
SEGMENT_VERSION = 2
SUPPORTED_SEGMENT_VERSIONS = (1, 2)
MARKER = "insitu-cache.json"
SEGMENT_KIND = "insitu-inr-cache-segment"
TMP_PREFIX = ".tmp-"

SEGMENT_RE = re.compile(r"^r(\d{5,})-c(\d{10,})-s(\d{6,})\.h5$")

def index_dtype(field_len: int, meta_len: int) -> np.dtype:
    """One row per entry in a segment's ``index`` dataset.

    Strings are fixed-length UTF-8 bytes sized to the longest in the segment:
    HDF5 keeps variable-length strings in a global heap of at least 4 KiB per file.
    (Segments written before 0.1.0 hold variable-length strings; both read the same.)
    """
    return np.dtype([
        ("field", f"S{max(1, field_len)}"),
        ("cycle", "<i8"),
        ("domain", "<i8"),
        ("nbytes", "<i8"),
        ("checksum", "<u4"),
        ("base_cycle", "<i8"),   # -1: a whole entry; else the cycle of the entry a temporal delta was stored against
        ("meta", f"S{max(1, meta_len)}"),
        ("offset", "<i8"),       # where the entry's bytes start in dataset ``data`` (segment version 2)
    ])


# --- names -------------------------------------------------------------------------------------------
def segment_name(rank: int, cycle: int, seq: int) -> str:
    return f"r{rank:05d}-c{cycle:010d}-s{seq:06d}.h5"


def parse_segment_name(name: str) -> tuple[int, int, int] | None:
    """(rank, cycle, seq) of a segment file name, None for any other name."""
    m = SEGMENT_RE.match(name)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def lock_name(rank: int) -> str:
    return f"r{rank:05d}.lock"


def drops_name(rank: int) -> str:
    return f"r{rank:05d}.drops.json"


def entry_checksum(data: bytes, meta_json: str) -> int:
    """CRC-32 over the model bytes, then the canonical meta JSON."""
    return zlib.crc32(meta_json.encode(), zlib.crc32(data)) & 0xFFFFFFFF


# --- durable file operations -------------------------------------------------------------------------
def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never a mix.

    Temp file in the same directory, write, fsync, rename, fsync the directory.
    On error (disk full...) the temp file is removed and the OSError raised.
    """
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:  # os.write names no file: say which one
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    fsync_dir(path.parent)


# --- the marker --------------------------------------------------------------------------------------
def marker_doc() -> dict:
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "created_unix": time.time(),
            "layout": "one writer per rank; immutable HDF5 segment files r<rank>-c<cycle>-s<seq>.h5"}


def check_cache_dir(path: Path) -> dict:
    """The marker of an existing cache, or a clear error: missing, not a cache, wrong version."""
    path = Path(path)
    if not path.exists():
        raise CacheNotFoundError(f"cache directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise CacheFormatError(f"{str(path)!r} is not a cache: it is a file, a cache is a directory")
    marker = path / MARKER
    if not marker.is_file():
        segments = orphan_segments(path)
        if segments:
            raise CacheFormatError(f"{str(path)!r} has lost its {MARKER} marker but holds {len(segments)} segment "
                                   f"file(s): `insitu verify {path} --repair` restores it")
        raise CacheFormatError(f"{str(path)!r} is not an insitu cache: it has no {MARKER} marker file")
    try:
        doc = json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise CacheFormatError(f"{str(marker)!r} is unreadable or not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise CacheFormatError(f"{str(marker)!r} does not describe an insitu cache (format {doc.get('format')!r})"
                               if isinstance(doc, dict) else f"{str(marker)!r} does not describe an insitu cache")
    version = doc.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise CacheFormatError(f"cache {str(path)!r} has format_version {version!r}; this insitu reads "
                               f"versions {list(SUPPORTED_VERSIONS)}")
    return doc


def orphan_segments(path: Path) -> list[Path]:
    """Segment files of a directory (named as this cache names them), whatever its marker says."""
    return sorted(p for p in Path(path).iterdir() if SEGMENT_RE.match(p.name)) if Path(path).is_dir() else []


def restore_marker(path: Path) -> list[Path]:
    """Write the marker of a cache that lost it, once every segment file reads as one of ours.

    Returns the segments found; raises :class:`CacheFormatError` (nothing written) when there is no
    segment or one does not read, since the directory is then not known to be a cache.
    """
    path = Path(path)
    segments = orphan_segments(path)
    if not segments:
        raise CacheFormatError(f"{str(path)!r} holds no segment file: nothing to restore")
    for seg in segments:
        read_index(seg)  # raises CacheCorruptError/CacheFormatError naming the file
    atomic_write(path / MARKER, (json.dumps(marker_doc(), indent=1) + "\n").encode())
    return segments


def init_cache_dir(path: Path) -> dict:
    """Create (or check) a cache directory for writing; refuses a non-empty directory that is no cache."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CacheFormatError(f"{str(path)!r} is not a cache: it is a file, a cache is a directory")
    if (path / MARKER).exists():
        return check_cache_dir(path)
    # the marker is written before any other file, so look for it again after listing: another rank may
    # have created the cache (marker, then its lock file) between the first look and the listing
    if path.is_dir() and any(not p.name.startswith(TMP_PREFIX) for p in path.iterdir()) \
            and not (path / MARKER).exists():
        raise CacheFormatError(f"{str(path)!r} is not an insitu cache (no {MARKER}) and is not empty: "
                               "refusing to write a cache into it")
    if (path / MARKER).exists():
        return check_cache_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path / MARKER, (json.dumps(marker_doc(), indent=1) + "\n").encode())
    except FileNotFoundError:  # another rank raced us; its marker is as good as ours
        pass
    return check_cache_dir(path)


# --- the writer lock ---------------------------------------------------------------------------------
class RankLock:
    """An exclusive ``fcntl.flock`` on ``r<rank>.lock``: one writer per rank file set.

    The kernel drops the lock when the process dies, so a killed writer never
    leaves a stale lock behind.
    """

    def __init__(self, directory: Path, rank: int) -> None:
        self.path = Path(directory) / lock_name(rank)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            self._fd = None
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise CacheLockedError(f"rank {rank} of cache {str(directory)!r} is already being written by another "
                                       f"writer (pid {holder}); one writer per rank: close it first, or use "
                                       "TemporalCache.open() to read") from None
            raise
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# --- segments ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One entry as a segment's index lists it."""

    field: str
    cycle: int
    domain: int
    nbytes: int
    checksum: int
    base_cycle: int
    meta_json: str
    segment: str   # file name
    row: int       # position in the segment's index
    offset: int = -1  # start of the bytes in dataset ``data``; -1: dataset ``entries/<row>`` (segment version 1)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.field, self.cycle, self.domain)

    @property
    def base(self) -> tuple[str, int, int] | None:
        """The key of the entry this temporal delta was stored against; None for a whole entry."""
        return None if self.base_cycle < 0 else (self.field, self.base_cycle, self.domain)

    @property
    def meta(self) -> EntryMeta:
        return EntryMeta.from_json(self.meta_json)


def build_segment(rank: int, seq: int,
                  entries: list[tuple[str, int, int, bytes, EntryMeta, int]]) -> tuple[bytes, list["Row"]]:
    """The bytes (and index rows) of one segment file holding ``entries``:
    (field, cycle, domain, model bytes, meta, base_cycle (-1: a whole entry)).

    A segment holds the entries of one commit, of one or more cycles; its name
    and ``cycle`` attribute give the first. Layout (segment version 2): root
    attributes (format, format_version, rank, cycle, seq, ...), dataset
    ``index`` (one row per entry, see :func:`index_dtype`, the EntryMeta JSON
    and the entry's offset included), dataset ``data`` (uint8: every entry's
    model bytes, one after the other; one dataset, not one per entry, which
    would cost ~700 bytes of HDF5 structure each).
    """
    if not entries:
        raise ValueError("a segment needs at least one entry")
    cycle = min(e[1] for e in entries)
    rows = []
    name = segment_name(rank, cycle, seq)
    # built in memory (core driver, no backing store), written to disk by atomic_write;
    # libver v108..v110: compact object headers, readable by HDF5 >= 1.10
    # meta_block_size: metadata in small blocks, not the default 2 KiB ones (a few KiB per segment otherwise)
    with h5py.File(f"mem-{name}", "w", driver="core", backing_store=False, libver=("v108", "v110"),
                   meta_block_size=512) as f:
        # string attributes as fixed-length bytes, for the same reason as the index (see index_dtype)
        f.attrs["format"] = np.bytes_(SEGMENT_KIND.encode())
        f.attrs["format_version"] = SEGMENT_VERSION
        f.attrs["rank"] = rank
        f.attrs["cycle"] = cycle
        f.attrs["seq"] = seq
        f.attrs["created_unix"] = time.time()
        configs: list[str] = []
        offset = 0
        for i, (field, entry_cycle, domain, data, meta, base_cycle) in enumerate(entries):
            meta_json = meta.to_json()
            crc = entry_checksum(data, meta_json)
            if meta.model_config is not None:
                cfg = json.dumps(meta.model_config, sort_keys=True)
                if cfg not in configs:
                    configs.append(cfg)
            rows.append(Row(field, entry_cycle, domain, len(data), crc, int(base_cycle), meta_json, name, i, offset))
            offset += len(data)
        f.create_dataset("data", data=np.frombuffer(b"".join(e[3] for e in entries), dtype=np.uint8))
        f.attrs["n_entries"] = len(rows)
        f.attrs["model_configs"] = np.bytes_(json.dumps([json.loads(c) for c in configs]).encode())
        cells = [(r.field.encode(), r.cycle, r.domain, r.nbytes, r.checksum, r.base_cycle, r.meta_json.encode(),
                  r.offset) for r in rows]
        dtype = index_dtype(max((len(c[0]) for c in cells), default=1), max((len(c[6]) for c in cells), default=1))
        table = np.array(cells, dtype=dtype)
        # many rows: gzip the index (its meta JSON is most of a segment beyond the model bytes)
        gzip = {"compression": "gzip", "compression_opts": 6} if len(rows) >= 8 else {}
        f.create_dataset("index", data=table, **gzip)
        f.flush()
        return bytes(f.id.get_file_image()), rows


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def read_index(path: Path) -> list[Row]:
    """The index rows of a segment file (cheap: one small dataset); CacheFormatError/CacheCorruptError on trouble."""
    path = Path(path)
    try:
        with h5py.File(path, "r", locking=False) as f:
            version = f.attrs.get("format_version")
            version = int(version) if isinstance(version, (int, np.integer)) else version
            if _text(f.attrs.get("format", "")) != SEGMENT_KIND:
                raise CacheCorruptError(f"{path}: not a cache segment (format attribute missing)", file=str(path))
            if version not in SUPPORTED_SEGMENT_VERSIONS:
                raise CacheFormatError(f"segment {str(path)!r} has format_version {version!r}; this insitu reads "
                                       f"versions {list(SUPPORTED_SEGMENT_VERSIONS)}")
            table = f["index"][()]
    except (CacheFormatError, CacheCorruptError):
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CacheCorruptError(f"segment {str(path)!r} is unreadable: {exc}", file=str(path)) from exc
    name = path.name
    has_offset = "offset" in (table.dtype.names or ())
    return [Row(_text(r["field"]), int(r["cycle"]), int(r["domain"]), int(r["nbytes"]), int(r["checksum"]),
                int(r["base_cycle"]), _text(r["meta"]), name, i, int(r["offset"]) if has_offset else -1)
            for i, r in enumerate(table)]


def read_entry(path: Path, row: Row, handle: h5py.File | None = None) -> bytes:
    """The model bytes of ``row`` from segment ``path``, checksum verified."""
    where = f"file {str(path)!r}, field {row.field!r}, cycle {row.cycle}, domain {row.domain}"
    def read(f: h5py.File) -> bytes:
        if row.offset >= 0:
            return f["data"][row.offset:row.offset + row.nbytes].tobytes()
        return f["entries"][f"{row.row:06d}"][()].tobytes()  # segment version 1

    try:
        if handle is None:
            with h5py.File(path, "r", locking=False) as f:
                data = read(f)
        else:
            data = read(handle)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CacheCorruptError(f"unreadable entry ({where}): {exc}", file=str(path), field=row.field,
                                cycle=row.cycle, domain=row.domain) from exc
    if len(data) != row.nbytes or entry_checksum(data, row.meta_json) != row.checksum:
        raise CacheCorruptError(f"corrupt entry ({where}): checksum mismatch", file=str(path), field=row.field,
                                cycle=row.cycle, domain=row.domain)
    return data
