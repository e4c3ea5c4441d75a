"""NaN and ±Inf samples of a block, stored exactly beside the network.

A simulation that blows up is the event a reactive cache is for, so such a block is cached, not skipped:
the network is fitted to the finite values (the others filled with the finite mean), and the positions
and values of the non-finite owned samples are stored here and put back when the block is decoded.
Section layout (zstd): ``u64 count | u64 index deltas (count) | f32 values (count)``, indices flat into the
owned grid in C order.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .errors import ModelFormatError


@dataclass(frozen=True)
class NonFinite:
    """The owned samples that are NaN/±Inf: flat owned-grid indices (sorted, int64) and their values (float32)."""

    index: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, owned_values: np.ndarray) -> "NonFinite | None":
        """The non-finite samples of an owned grid, or None when every sample is finite."""
        flat = np.asarray(owned_values, np.float32).ravel()
        idx = np.flatnonzero(~np.isfinite(flat))
        return cls(idx.astype(np.int64), flat[idx].copy()) if idx.size else None

    def to_bytes(self) -> bytes:
        import zstandard

        deltas = np.diff(self.index, prepend=0).astype("<u8")
        raw = struct.pack("<Q", self.index.size) + deltas.tobytes() + self.values.astype("<f4").tobytes()
        return zstandard.ZstdCompressor(level=19).compress(raw)

    @classmethod
    def from_bytes(cls, data: bytes, n_owned: int) -> "NonFinite":
        import zstandard

        try:
            raw = zstandard.ZstdDecompressor().decompress(data)
            (n,) = struct.unpack_from("<Q", raw)
            if len(raw) != 8 + 12 * n:
                raise ValueError(f"{len(raw)} bytes for {n} samples")
            index = np.cumsum(np.frombuffer(raw, "<u8", n, 8).astype(np.int64))
            values = np.frombuffer(raw, "<f4", n, 8 + 8 * n).astype(np.float32)
        except (ValueError, struct.error, zstandard.ZstdError) as exc:
            raise ModelFormatError(f"non-finite section malformed: {exc}") from exc
        if n and (index[-1] >= n_owned or np.any(np.diff(index) <= 0)):
            raise ModelFormatError("non-finite section malformed: indices outside the owned grid or unsorted")
        return cls(index, values)

    def put(self, out: np.ndarray, owned_shape: tuple[int, int, int], region: tuple[tuple[int, int], ...],
            at: tuple[int, ...]) -> None:
        """Write the samples that fall in ``region`` (an owned-grid box) into ``out``, whose element ``at``
        is the region's first sample."""
        zyx = np.unravel_index(self.index, owned_shape)
        keep = np.ones(self.index.size, bool)
        for c, (a, b) in zip(zyx, region):
            keep &= (c >= a) & (c < b)
        if keep.any():
            out[tuple(c[keep] - a + o for c, (a, _), o in zip(zyx, region, at))] = self.values[keep]
