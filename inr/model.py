"""A fitted model: configs, fp16 parameters, value range and the block it covers.

Byte format (little-endian), version 1::

    b"INRM" | u16 format_version | u32 header_len | header (UTF-8 JSON)
    | params (float16 x n_params) | u32 CRC-32 of everything before it

The JSON header (compact keys) holds ``v`` (format version), ``enc``
(n_levels, n_features_per_level, log2_hashmap_size, base_resolution,
per_level_scale of the HashGrid), ``net`` (n_neurons, n_hidden_layers,
activation, output_activation of the FullyFusedMLP), ``range`` (value min,
max), ``grid`` (block shape z, y, x), ``assoc``, ``owned`` (z0, z1, y0, y1,
x0, x1), ``np`` (parameter count) and ``dtype`` ("f16"), so the bytes describe
themselves; no pickle anywhere.
"""
from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import layout
from .config import EncodingConfig, NetworkConfig
from .errors import InrValueError, ModelFormatError
from .grid import ASSOCIATIONS, Box, axis_coords, box_shape

MAGIC = b"INRM"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
_PREFIX = struct.Struct("<4sHI")


@dataclass(frozen=True)
class ModelConfig:
    """Encoding + network: everything that fixes the parameter layout."""

    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)

    @property
    def n_params(self) -> int:
        """Parameters the model stores (unpadded MLP + tables)."""
        return layout.n_params(self.encoding, self.network)

    def to_tcnn(self) -> dict:
        return {"encoding": self.encoding.to_tcnn(), "network": self.network.to_tcnn()}

    @classmethod
    def from_tcnn(cls, d: dict) -> "ModelConfig":
        return cls(EncodingConfig.from_tcnn(d["encoding"]), NetworkConfig.from_tcnn(d["network"]))


@dataclass
class Model:
    """A block's neural representation.

    ``params`` are float16 in our layout (see :mod:`inr.layout`); the network
    maps normalised coordinates of the whole block (ghosts included) to values
    normalised by ``value_range``; ``owned`` is the (z, y, x) box that
    ``decode`` returns. A constant block stores no parameters.
    """

    config: ModelConfig
    params: np.ndarray
    value_range: tuple[float, float]
    grid_shape: tuple[int, int, int]
    association: str
    owned: Box

    def __post_init__(self) -> None:
        self.params = np.asarray(self.params, dtype=np.float16).ravel()
        self.grid_shape = tuple(int(n) for n in self.grid_shape)  # type: ignore[assignment]
        self.owned = tuple((int(a), int(b)) for a, b in self.owned)  # type: ignore[assignment]
        self.value_range = (float(self.value_range[0]), float(self.value_range[1]))
        if self.association not in ASSOCIATIONS:
            raise InrValueError(f"association={self.association!r} is invalid: valid choices are {list(ASSOCIATIONS)}")
        if len(self.grid_shape) != 3 or min(self.grid_shape) < 1:
            raise InrValueError(f"grid_shape={self.grid_shape} must be three positive sizes")
        for (a, b), n in zip(self.owned, self.grid_shape):
            if not 0 <= a < b <= n:
                raise InrValueError(f"owned box {self.owned} does not fit grid_shape {self.grid_shape}")
        if not self.is_constant and self.params.size != self.config.n_params:
            raise InrValueError(f"params has {self.params.size} values; the config needs {self.config.n_params}")

    # --- properties ---
    @property
    def is_constant(self) -> bool:
        """A constant block: stored exactly as its value, no network."""
        return self.value_range[0] == self.value_range[1]

    @property
    def owned_shape(self) -> tuple[int, int, int]:
        return box_shape(self.owned)

    @property
    def raw_bytes(self) -> int:
        """float32 bytes of the owned grid (the numerator of the compression ratio)."""
        return 4 * int(np.prod(self.owned_shape))

    # --- evaluation ---
    def _denormalise(self, out: np.ndarray) -> np.ndarray:
        lo, hi = self.value_range
        return (out.astype(np.float64) * (hi - lo) + lo).astype(np.float32)

    def decode(self, backend: str = "auto", device: str = "cpu", threads: int | None = None,
               box: Box | None = None) -> np.ndarray:
        """The owned grid (or ``box``, a (z, y, x) index box of the whole block), float32, C order.

        ``box`` may reach into the ghost layers the model was trained on; the
        renderer uses that to interpolate across block boundaries without seams.
        """
        if box is None:
            box = self.owned
        box = tuple((int(a), int(b)) for a, b in box)  # type: ignore[assignment]
        for (a, b), n in zip(box, self.grid_shape):
            if not 0 <= a < b <= n:
                raise InrValueError(f"decode box {box} does not fit the block's grid {self.grid_shape}")
        if self.is_constant:
            return np.full(box_shape(box), self.value_range[0], dtype=np.float32)
        from .backends import get_backend

        nz, ny, nx = self.grid_shape
        (z0, z1), (y0, y1), (x0, x1) = box
        xs = axis_coords(nx, self.association)[x0:x1]
        ys = axis_coords(ny, self.association)[y0:y1]
        zs = axis_coords(nz, self.association)[z0:z1]
        be = get_backend(backend, device, threads)
        out = be.decode_grid(self.config.encoding, self.config.network, self.params.astype(np.float32), xs, ys, zs)
        return self._denormalise(out)

    def sample(self, points: np.ndarray, backend: str = "auto", device: str = "cpu",
               threads: int | None = None) -> np.ndarray:
        """Values at ``points`` (N, 3), (x, y, z) in [0, 1]^3 over the whole block (ghosts included)."""
        pts = np.asarray(points, dtype=np.float32)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise InrValueError(f"points must have shape (N, 3) in (x, y, z) order; got {pts.shape}")
        if pts.size and (not np.isfinite(pts).all() or pts.min() < 0.0 or pts.max() > 1.0):
            raise InrValueError("points must be finite and lie in [0, 1]^3")
        if self.is_constant:
            return np.full(pts.shape[0], self.value_range[0], dtype=np.float32)
        from .backends import get_backend

        be = get_backend(backend, device, threads)
        out = be.evaluate(self.config.encoding, self.config.network, self.params.astype(np.float32), pts)
        return self._denormalise(out)

    # --- tiny-cuda-nn interchange ---
    def to_tcnn_params(self) -> np.ndarray:
        """Parameters as tiny-cuda-nn's ``NetworkWithInputEncoding`` lays them out (float32).

        Network first (row-major matrices, input padded to a multiple of 16 and
        output to 16, zeros in the padding), then the hash tables.
        """
        return layout.to_tcnn(self.params.astype(np.float32), self.config.encoding, self.config.network)

    @classmethod
    def from_tcnn_params(cls, tcnn_params: np.ndarray, config: ModelConfig, *, value_range: tuple[float, float],
                         grid_shape: tuple[int, int, int], association: str = "vertex",
                         owned: Box | None = None) -> "Model":
        """A Model from tiny-cuda-nn's flat parameters (padding dropped)."""
        params = layout.from_tcnn(np.asarray(tcnn_params, dtype=np.float32), config.encoding, config.network)
        owned = owned if owned is not None else tuple((0, int(n)) for n in grid_shape)
        return cls(config, params, value_range, grid_shape, association, owned)

    # --- bytes ---
    def _header(self) -> dict:
        # compact keys: a 10 KB model should not spend 5% of itself on its header
        e, n = self.config.encoding, self.config.network
        return {
            "v": FORMAT_VERSION,
            "enc": [e.n_levels, e.n_features_per_level, e.log2_hashmap_size, e.base_resolution, e.per_level_scale],
            "net": [n.n_neurons, n.n_hidden_layers, n.activation, n.output_activation],
            "range": list(self.value_range),
            "grid": list(self.grid_shape),
            "assoc": self.association,
            "owned": [v for b in self.owned for v in b],
            "np": int(self.params.size),
            "dtype": "f16",
        }

    def to_bytes(self) -> bytes:
        """Versioned, self-describing bytes (see module docstring)."""
        header = json.dumps(self._header(), separators=(",", ":")).encode()
        body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header)) + header + self.params.astype("<f2").tobytes()
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Model":
        """Inverse of :meth:`to_bytes`; raises :class:`ModelFormatError` on bad bytes."""
        data = bytes(data)
        if len(data) < _PREFIX.size + 4:
            raise ModelFormatError(f"model bytes truncated: {len(data)} bytes is shorter than any model")
        magic, version, hlen = _PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise ModelFormatError(f"not inr model bytes: magic {magic!r}, expected {MAGIC!r}")
        if version not in SUPPORTED_VERSIONS:
            raise ModelFormatError(
                f"unknown model format_version {version}: this inr reads versions {list(SUPPORTED_VERSIONS)}"
            )
        (crc,) = struct.unpack_from("<I", data, len(data) - 4)
        if zlib.crc32(data[:-4]) != crc:
            raise ModelFormatError("model bytes corrupt or truncated: CRC-32 mismatch")
        end = _PREFIX.size + hlen
        try:
            h = json.loads(data[_PREFIX.size:end].decode())
            config = ModelConfig(EncodingConfig(*h["enc"]), NetworkConfig(*h["net"]))
            n = int(h["np"])
            if h.get("dtype") != "f16":
                raise ModelFormatError(f"parameter dtype {h.get('dtype')!r} unknown: expected 'f16'")
            if len(data) - 4 - end != 2 * n:
                raise ModelFormatError(f"model bytes hold {len(data) - 4 - end} parameter bytes, header says {2 * n}")
            params = np.frombuffer(data, dtype="<f2", count=n, offset=end).astype(np.float16)
            o = h["owned"]
            return cls(config, params, tuple(h["range"]), tuple(h["grid"]), h["assoc"],
                       ((o[0], o[1]), (o[2], o[3]), (o[4], o[5])))
        except ModelFormatError:
            raise
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"model header malformed: {exc}") from exc


@dataclass
class FitReport:
    """How a fit went, measured against the real data after fp16 rounding."""

    psnr: float
    max_abs_error: float
    steps: int
    seconds: float
    stored_bytes: int
    ratio: float
    backend: str = "torch"
    stop_reason: str = "max_steps"

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["psnr"] = None if math.isinf(self.psnr) else self.psnr  # JSON has no inf
        return d
