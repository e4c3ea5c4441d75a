"""The small binary fields of the stored formats (model header, residual section): varints and a bounded reader."""
from __future__ import annotations

import struct

from .errors import InrValueError, ModelFormatError


def varint(n: int) -> bytes:
    """``n`` >= 0 in 7-bit groups, low first (the high bit says another follows): 1 byte below 128."""
    out = bytearray()
    n = int(n)
    if n < 0:
        raise InrValueError(f"cannot store the negative size {n} in a model header")
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


class Reader:
    """Reads fields in order from ``data[at:stop]``; running past ``stop`` is a ModelFormatError naming ``what``."""

    def __init__(self, data: bytes, at: int, stop: int, what: str = "model header") -> None:
        self.data, self.at, self.stop, self.what = data, at, stop, what

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.at + size > self.stop:
            raise ModelFormatError(f"{self.what} truncated")
        out = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return out

    def varint(self) -> int:
        n = shift = 0
        while True:
            (b,) = self.take("<B")
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n
            if shift > 63:
                raise ModelFormatError(f"{self.what} malformed: a size runs past 64 bits")
