"""A fitted model: configs, parameters (float16 or quantised), value range, the block it covers.

Written in format version 4: version 3's binary header (``_pack_header``; docs/cache_format.md), and a residual
section in :mod:`inr.residual`'s layout 4 (its flags first, eps and step as float32). Versions 1 to 3 are read.

Byte format (little-endian), version 2 (still read)::

    b"INRM" | u16 format_version | u32 header_len | header (UTF-8 JSON)
    | parameter section (pb bytes) | residual section (rb bytes, may be empty)
    | u32 CRC-32 of everything before it

The JSON header (compact keys) holds ``v`` (format version), ``enc``
(n_levels, n_features_per_level, log2_hashmap_size, base_resolution,
per_level_scale of the HashGrid), ``net`` (n_neurons, n_hidden_layers,
activation, output_activation of the FullyFusedMLP), ``range`` (value min,
max), ``grid`` (block shape z, y, x), ``assoc``, ``owned`` (z0, z1, y0, y1,
x0, x1), ``np`` (parameter count), ``dtype`` (``"f16"`` or ``"q<b>"``, b = 4..8
bits, see :mod:`inr.quantize`), ``pb`` and ``rb`` (section lengths), and
``eb`` (the error bound of the residual section, or null). The parameter
section is zstd-compressed (:func:`inr.quantize.encode_params`); the residual
section (error-bounded mode) is described in :mod:`inr.residual`. So the bytes
describe themselves; no pickle anywhere.

A temporal delta (``to_bytes(base=...)``) has ``dtype`` ``"d<b>"`` and a
parameter section that holds only the change from its base model
(:func:`inr.quantize.encode_delta`), plus ``bc``: the CRC-32 of the base's
float16 parameters, so that decoding against any other base is refused,
and ``dm`` = 1: the section carries per-group step multipliers (deltas
written without ``dm`` still decode). A delta's header leaves out ``enc``,
``net``, ``grid``, ``assoc``, ``owned`` and ``np`` where they equal the base's
(those of the base then apply; deltas written before still carry them).
It decodes only with its base: ``Model.from_bytes(data, base=...)``.

Version 1 (still read): the same prefix and header without ``pb``/``rb``/``eb``
(``dtype`` "f16"), then the raw float16 parameters and the CRC.
"""
from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from . import layout
# ModelConfig lives in inr.config; importing it here also keeps ``from inr.model import ModelConfig`` working
from .config import VALID_ACTIVATIONS, VALID_OUTPUT_ACTIVATIONS, EncodingConfig, ModelConfig, NetworkConfig
from .errors import InrValueError, ModelFormatError
from .grid import ASSOCIATIONS, Box, axis_coords, box_shape
from .quantize import (VALID_PARAM_BITS, check_param_bits, decode_delta, decode_params, encode_delta, encode_params,
                       grid_scales, group_sizes, quantize_params, scales_fit_bf16)
from .nonfinite import NonFinite
from .packing import Reader as _Reader, varint as _varint
from .residual import Residual
from .sizing import smallest_config

MAGIC = b"INRM"
FORMAT_VERSION = 4
SUPPORTED_VERSIONS = (1, 2, 3, 4)
_PREFIX = struct.Struct("<4sHI")  # versions 1 and 2: magic, version, JSON header length
_PREFIX3 = struct.Struct("<4sH")  # version 3: magic, version; the binary header says its own length
#: header keys a temporal delta leaves out when they equal its base's (the base's then apply); version 3
#: leaves out each group whole or not at all
_INHERITED_GROUPS = (("enc", "net", "np"), ("grid", "assoc", "owned"))
_INHERITED = tuple(k for group in _INHERITED_GROUPS for k in group)


@dataclass
class Model:
    """A block's neural representation.

    ``params`` are float16 in our layout (see :mod:`inr.layout`); the network
    maps normalised coordinates of the whole block (ghosts included) to values
    normalised by ``value_range``; ``owned`` is the (z, y, x) box that
    ``decode`` returns. A constant block stores no parameters.

    ``param_bits`` is the bit depth the parameters are stored at (16: float16;
    4..8: quantised, see :mod:`inr.quantize`); the constructor projects
    ``params`` onto that grid, so what a model decodes is what its bytes hold.
    ``residual`` (error-bounded mode, see :mod:`inr.residual`) corrects the
    owned grid so that every decoded owned value is within ``residual.eps`` of
    the data; :meth:`sample` at arbitrary points returns the network alone.
    ``scales`` is the quantisation grid (float32 step per quantised group); by
    default the parameters' own, or a base model's for a temporal delta
    (:meth:`to_bytes` with ``base``).
    """

    config: ModelConfig
    params: np.ndarray
    value_range: tuple[float, float]
    grid_shape: tuple[int, int, int]
    association: str
    owned: Box
    param_bits: int = 16
    residual: Residual | None = None
    scales: np.ndarray | None = None
    nonfinite: NonFinite | None = None  # NaN/Inf owned samples, stored exactly (inr.nonfinite)

    def __post_init__(self) -> None:
        self.param_bits = check_param_bits(self.param_bits)
        self.params = np.asarray(self.params).ravel()
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
        if self.is_constant or self.param_bits == 16:
            self.params = self.params.astype(np.float16)
            self.scales = None
        elif self.scales is None and not np.any(self.params):
            # no network (is_predictive): every step 0 and every parameter 0, what quantising would give, without
            # the work (a predictive block's decode is a millisecond: this was a fifth of it)
            self.scales = np.zeros(group_sizes(self.config)[0], np.float32)
            self.params = np.zeros(self.params.size, np.float16)
        else:
            if self.scales is None:
                self.scales = grid_scales(self.params, self.config, self.param_bits)
            self.scales = np.asarray(self.scales, np.float32).ravel()
            n_groups = group_sizes(self.config)[0]
            if self.scales.size != n_groups:
                raise InrValueError(f"scales has {self.scales.size} steps; the config has {n_groups} quantised groups")
            self.params = quantize_params(self.params, self.config, self.param_bits, self.scales)
        if self.residual is not None and (self.is_constant or self.residual.shape != self.owned_shape):
            raise InrValueError(f"residual of shape {self.residual.shape} does not fit the owned grid "
                                f"{self.owned_shape}" + (" (a constant block needs none)" if self.is_constant else ""))

    # --- properties ---
    @property
    def is_constant(self) -> bool:
        """A constant block: stored exactly as its value, no network."""
        return self.value_range[0] == self.value_range[1]

    @property
    def is_predictive(self) -> bool:
        """No network: every parameter is zero, and the residual coder predicts each value from those decoded before
        it (:mod:`inr.predictive`; a target-PSNR fit chose it as the smaller, or the error-bounded probe did)."""
        return not self.is_constant and not np.any(self.params)

    @property
    def owned_shape(self) -> tuple[int, int, int]:
        return box_shape(self.owned)

    @property
    def error_bound(self) -> float | None:
        """The guaranteed max abs error on the owned grid (0 for a constant block), None when unbounded."""
        if self.is_constant:
            return 0.0
        return None if self.residual is None else self.residual.eps

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
        The residual of an error-bounded model corrects the owned part of ``box``
        (every value there within its bound); ghost samples get the correction of
        the nearest owned sample added to the network's value.
        """
        if box is None:
            box = self.owned
        box = tuple((int(a), int(b)) for a, b in box)  # type: ignore[assignment]
        for (a, b), n in zip(box, self.grid_shape):
            if not 0 <= a < b <= n:
                raise InrValueError(f"decode box {box} does not fit the block's grid {self.grid_shape}")
        out = self._decode_box(box, backend, device, threads)
        if self.nonfinite is not None:  # NaN/Inf owned samples, back in place
            region = tuple((max(a, oa) - oa, min(b, ob) - oa) for (a, b), (oa, ob) in zip(box, self.owned))
            if all(lo < hi for lo, hi in region):
                at = tuple(max(a, oa) - a for (a, _), (oa, _) in zip(box, self.owned))
                self.nonfinite.put(out, self.owned_shape, region, at)
        return out

    def _decode_box(self, box: Box, backend: str, device: str, threads: int | None) -> np.ndarray:
        """:meth:`decode` without the non-finite samples."""
        if self.is_constant:
            return np.full(box_shape(box), self.value_range[0], dtype=np.float32)
        if self.residual is not None and self.is_predictive and not self.residual.reads_network:
            # no network to evaluate: the residual coder's values alone; ghost samples repeat the nearest owned
            # one (what the general case below gives for a network that is one constant everywhere)
            fixed = self.residual.apply(None)
            return fixed if box == self.owned else self._nearest_owned(fixed, box)
        out = self._network(box, backend, device, threads)
        if self.residual is None:
            return out
        # the correction is decoded coarse to fine over the whole owned grid, whatever the box
        covers = all(a <= oa and ob <= b for (a, b), (oa, ob) in zip(box, self.owned))
        inner = tuple(slice(oa - a, ob - a) for (a, _), (oa, ob) in zip(box, self.owned))
        net = out[inner] if covers else self._network(self.owned, backend, device, threads)
        fixed = self.residual.apply(net)
        if box != self.owned:
            # ghost samples: the network plus the correction of the nearest owned sample, so that they
            # continue the corrected owned values instead of falling back to the bare network at the faces
            out = (out + self._nearest_owned(fixed.astype(np.float64) - net, box)).astype(np.float32)
        lo = [max(a, oa) for (a, _), (oa, _) in zip(box, self.owned)]
        hi = [min(b, ob) for (_, b), (_, ob) in zip(box, self.owned)]
        if all(l < h for l, h in zip(lo, hi)):
            here = tuple(slice(l - a, h - a) for l, h, (a, _) in zip(lo, hi, box))
            region = tuple(slice(l - oa, h - oa) for l, h, (oa, _) in zip(lo, hi, self.owned))
            out[here] = fixed[region]
        return out

    def _nearest_owned(self, owned: np.ndarray, box: Box) -> np.ndarray:
        """``owned`` (values on the owned grid) on ``box``: each sample the value of the owned sample nearest to it
        (the owned part cut to the box, its edges repeated outward: 6x faster than a gather on a 64^2 x 128 block)."""
        inner = tuple(slice(max(a, oa) - oa, max(min(b, ob), a, oa) - oa) for (a, b), (oa, ob) in zip(box, self.owned))
        pads = tuple((max(oa - a, 0), max(b - ob, 0)) for (a, b), (oa, ob) in zip(box, self.owned))
        part = owned[inner]
        if any(n == 0 for n in part.shape):  # a box wholly in the ghost layers: a gather of the nearest face
            return owned[np.ix_(*(np.clip(np.arange(a, b), oa, ob - 1) - oa
                                  for (a, b), (oa, ob) in zip(box, self.owned)))]
        return np.pad(part, pads, mode="edge") if any(p != (0, 0) for p in pads) else part.copy()

    def _network(self, box: Box, backend: str, device: str, threads: int | None) -> np.ndarray:
        """The network's (denormalised) values on ``box``, without the residual."""
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
        """The network's values at ``points`` (N, 3), (x, y, z) in [0, 1]^3 over the whole block (ghosts included).

        The residual of an error-bounded model lives on the owned grid, so only
        :meth:`decode` meets the bound; sampled values are the network's.
        """
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
            "dtype": "f16" if self.param_bits == 16 else f"q{self.param_bits}",
        }

    # --- temporal deltas ---
    def delta_misfit(self, base: "Model") -> str | None:
        """Why this model cannot be stored as a delta against ``base`` (None when it can)."""
        if self.is_constant or base.is_constant:
            return "a constant block is stored whole"
        if self.param_bits == 16 or base.param_bits != self.param_bits:
            return (f"deltas need the same quantised param_bits (4..8) in both models; got {self.param_bits} "
                    f"and base {base.param_bits}")
        if base.config != self.config:
            return "the base model has a different config"
        if not np.array_equal(base.scales, self.scales):
            return "the model is not on the base model's quantisation grid (give Model(..., scales=base.scales))"
        return None

    def to_bytes(self, base: "Model | None" = None) -> bytes:
        """Versioned, self-describing bytes (format version 2, see module docstring).

        With ``base``, a temporal delta: only the change of the parameters from
        ``base`` is stored (the model must be on ``base``'s grid,
        ``scales=base.scales``); it decodes with ``Model.from_bytes(data, base=base)``.
        """
        h = self._header()
        if base is not None:
            why = self.delta_misfit(base)
            if why is not None:
                raise InrValueError(f"cannot store this model as a delta: {why}")
            pblob = encode_delta(self.params, base.params, self.config, self.param_bits, self.scales)
            raw = encode_delta(self.params, base.params, self.config, self.param_bits, self.scales, compress=False)
            if len(raw) < len(pblob):
                pblob, h["raw"] = raw, 1
            h.update(dtype=f"d{self.param_bits}", bc=_params_crc(base.params), dm=1)
            own = base._header()  # what the base already says is not repeated: a delta may be a few hundred bytes
            for group in _INHERITED_GROUPS:
                if all(h[k] == own[k] for k in group):
                    for k in group:
                        del h[k]
        else:
            pblob = b""
            implied = self.config == smallest_config() and (self.is_constant or self.is_predictive)
            if implied:  # no network: a constant block, or one the residual coder predicts alone
                del h["enc"], h["net"]
            if self.params.size and not implied:
                wide = self.param_bits != 16 and not scales_fit_bf16(self.scales)
                pblob = encode_params(self.params, self.config, self.param_bits, self.scales,
                                      scale_bytes=4 if wide else 2)
                raw = encode_params(self.params, self.config, self.param_bits, self.scales,
                                    scale_bytes=4 if wide else 2, compress=False)
                if len(raw) < len(pblob):  # a small model's codes are too few for zstd to pay for its frame
                    pblob, h["raw"] = raw, 1
                if wide:  # a model read from an older format keeps its float32 steps
                    h["s32"] = 1
        rblob = self.residual.to_bytes() if self.residual is not None else b""
        h.update(pb=len(pblob), rb=len(rblob), eb=None if self.residual is None else self.residual.eps)
        nblob = self.nonfinite.to_bytes() if self.nonfinite is not None else b""
        if nblob:  # only then: the bytes of an all-finite block are what they always were
            h["nb"] = len(nblob)
        body = _PREFIX3.pack(MAGIC, FORMAT_VERSION) + _pack_header(h) + pblob + rblob + nblob
        return body + struct.pack("<I", zlib.crc32(body))

    @staticmethod
    def is_delta(data: bytes) -> bool:
        """Whether model bytes are a temporal delta (decoding them needs the base model)."""
        try:
            return str(Model._read_header(bytes(data))[0].get("dtype", "")).startswith("d")
        except ModelFormatError:
            return False

    @staticmethod
    def _read_header(data: bytes) -> tuple[dict, int, int]:
        """(header, format version, end of the header) of model bytes, CRC checked."""
        if len(data) < _PREFIX.size + 4:
            raise ModelFormatError(f"model bytes truncated: {len(data)} bytes is shorter than any model")
        magic, version = _PREFIX3.unpack_from(data)
        if magic != MAGIC:
            raise ModelFormatError(f"not inr model bytes: magic {magic!r}, expected {MAGIC!r}")
        if version not in SUPPORTED_VERSIONS:
            raise ModelFormatError(
                f"unknown model format_version {version}: this inr reads versions {list(SUPPORTED_VERSIONS)}"
            )
        (crc,) = struct.unpack_from("<I", data, len(data) - 4)
        if zlib.crc32(data[:-4]) != crc:
            raise ModelFormatError("model bytes corrupt or truncated: CRC-32 mismatch")
        if version >= 3:
            h, end = _unpack_header(data, _PREFIX3.size, len(data) - 4)
            return h, version, end
        end = _PREFIX.size + _PREFIX.unpack_from(data)[2]
        try:
            h = json.loads(data[_PREFIX.size:end].decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"model header malformed: {exc}") from exc
        if not isinstance(h, dict):
            raise ModelFormatError("model header malformed: not a JSON object")
        return h, version, end

    @classmethod
    def from_bytes(cls, data: bytes, base: "Model | None" = None) -> "Model":
        """Inverse of :meth:`to_bytes`; raises :class:`ModelFormatError` on bad bytes.

        A temporal delta needs ``base``, the model it was stored against (the
        cache's ``reader.model()`` resolves that chain); a wrong base is refused.
        """
        data = bytes(data)
        h, version, end = cls._read_header(data)
        if str(h.get("dtype", "")).startswith("d"):
            if base is None:
                raise ModelFormatError("these model bytes are a temporal delta: decoding needs their base model "
                                       "(Model.from_bytes(data, base=...); a cache resolves it: reader.model())")
            h = {**{k: v for k, v in base._header().items() if k in _INHERITED}, **h}
        try:
            config = ModelConfig(EncodingConfig(*h["enc"]), NetworkConfig(*h["net"]))
            n = int(h["np"]) if "np" in h else 0 if h["range"][0] == h["range"][1] else config.n_params
            dtype = h.get("dtype")
            o = h["owned"]
            owned = ((o[0], o[1]), (o[2], o[3]), (o[4], o[5]))
            if version == 1:
                if dtype != "f16":
                    raise ModelFormatError(f"parameter dtype {dtype!r} unknown: expected 'f16'")
                if len(data) - 4 - end != 2 * n:
                    raise ModelFormatError(f"model bytes hold {len(data) - 4 - end} parameter bytes, header says "
                                           f"{2 * n}")
                params = np.frombuffer(data, dtype="<f2", count=n, offset=end).astype(np.float16)
                return cls(config, params, tuple(h["range"]), tuple(h["grid"]), h["assoc"], owned)
            quantised = [b for b in VALID_PARAM_BITS if b != 16]
            valid = ["f16"] + [f"q{b}" for b in quantised] + [f"d{b}" for b in quantised]
            if dtype not in valid:
                raise ModelFormatError(f"parameter dtype {dtype!r} unknown: valid choices are {valid}")
            bits = 16 if dtype == "f16" else int(dtype[1:])
            rb, nb = int(h.get("rb", 0)), int(h.get("nb", 0))
            pb = int(h["pb"]) if "pb" in h else len(data) - 4 - end - rb - nb
            if len(data) - 4 - end != pb + rb + nb:
                raise ModelFormatError(f"model bytes hold {len(data) - 4 - end} section bytes, header says "
                                       f"{pb + rb + nb}")
            nonfinite = None
            if nb:
                nonfinite = NonFinite.from_bytes(data[end + pb + rb:end + pb + rb + nb],
                                                 int(np.prod(box_shape(owned))))
            residual = None
            if rb:
                residual = Residual.from_bytes(data[end + pb:end + pb + rb], box_shape(owned), layout=version)
            scales = None
            if dtype.startswith("d"):
                if base.is_constant or base.config != config or base.param_bits != bits or base.params.size != n:
                    raise ModelFormatError("the base model given does not match this delta (config, param_bits or "
                                           "size differ)")
                if _params_crc(base.params) != int(h["bc"]):
                    raise ModelFormatError("the base model given is not the one this delta was stored against "
                                           "(base CRC mismatch)")
                scales = base.scales
                params = decode_delta(data[end:end + pb], base.params, config, bits, scales, n,
                                      multipliers=bool(h.get("dm")), compressed=not h.get("raw"))
            elif pb:
                params, scales = decode_params(data[end:end + pb], config, bits, n,
                                               scale_bytes=4 if h.get("s32", version < 3) else 2,
                                               compressed=not h.get("raw"))
            else:  # no parameter section: a constant block, or a network of zeros (``is_predictive``)
                params = np.zeros(n, np.float16 if n == 0 else np.float32)
            return cls(config, params, tuple(h["range"]), tuple(h["grid"]), h["assoc"], owned, bits, residual, scales,
                       nonfinite)
        except ModelFormatError:
            raise
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"model header malformed: {exc}") from exc


def _params_crc(params: np.ndarray) -> int:
    """CRC-32 of float16 parameters: the identity of a delta's base."""
    return zlib.crc32(np.ascontiguousarray(params, dtype="<f2").tobytes()) & 0xFFFFFFFF


@dataclass
class FitReport:
    """How a fit went, measured against the real data on what the stored bytes decode to."""

    psnr: float
    max_abs_error: float
    steps: int
    seconds: float
    stored_bytes: int
    ratio: float
    backend: str = "torch"
    stop_reason: str = "max_steps"
    #: the guaranteed max abs error (error-bounded mode; 0 for a constant block), None when unbounded
    error_bound: float | None = None
    #: bit depth of the stored parameters (16: float16)
    param_bits: int = 16
    #: stored as a temporal delta against the previous model (``fit(..., delta_base=...)``)
    delta: bool = False
    #: the ratio the model was sized for (``ratio``, or raw / ``max_bytes``), None when no sizing took place
    #: (a config, a warm start, the error-bounded mode's smallest model): compare ``ratio`` with it
    asked_ratio: float | None = None
    #: by how many dB the PSNR stayed below ``target_psnr`` (None: met, or no target)
    target_missed_db: float | None = None
    #: fits made again (a model over ``max_bytes``, or a target missed well within it)
    retries: int = 0
    #: stored ratio / ``asked_ratio`` - 1 when that is beyond 10 % (:data:`inr.fit.RATIO_TOLERANCE`): the closest
    #: the model family came (the smallest model stores more than a tiny block's budget); None when within it
    ratio_off: float | None = None

    def to_dict(self) -> dict:
        """The report as JSON-ready values. PSNR (to 1e-4 dB), ratio (1e-2) and seconds (1e-3 s) are
        rounded: every cache entry carries this dict twice (index and journal), and at a few hundred
        bytes per delta the digits beyond those cost ~10 % of the entry. ``max_abs_error`` stays exact."""
        d = dict(self.__dict__)
        d["psnr"] = None if math.isinf(self.psnr) else round(self.psnr, 4)  # JSON has no inf
        d["ratio"], d["seconds"] = round(self.ratio, 2), round(self.seconds, 3)
        for key in ("asked_ratio", "target_missed_db", "ratio_off"):  # only when there is something to say: bytes per entry
            if d[key] is None:
                del d[key]
            else:
                d[key] = round(d[key], 2)
        if not self.retries:
            del d["retries"]
        return d


# --- the binary header of format version 3 ---------------------------------------------------------------------
# first flag byte: bits 0-1 the parameter kind (_KINDS), then:
_ELEMENT, _RESIDUAL, _NONFINITE, _RANGE64, _CONFIG, _GEOMETRY = (1 << b for b in range(2, 8))
# second flag byte: bits 0-4 param_bits, then:
_RAW, _S32, _SCALE64 = 1 << 5, 1 << 6, 1 << 7
_KINDS = ("f", "q", "d")
#: per_level_scale is stored as round(scale * _SCALE_CODE) when that is exact (sizing rounds it to 4 decimals)
_SCALE_CODE = 10_000


def _pack_header(h: dict) -> bytes:
    """The version-3 header of the (version-2 style) header dict ``h`` (see docs/cache_format.md):
    two flag bytes, then only the fields that are there, sizes as varints; the parameter section's length is
    what is left. About 30 bytes where the JSON took 200."""
    dtype = h["dtype"]
    f1 = {"f": 0, "q": 1, "d": 2}[dtype[0]]
    f2 = 16 if dtype == "f16" else int(dtype[1:])
    out = bytearray()
    lo, hi = h["range"]
    wide_range = float(np.float32(lo)) != lo or float(np.float32(hi)) != hi
    f1 |= _RANGE64 if wide_range else 0
    f1 |= _RESIDUAL if h.get("rb") else 0
    f1 |= _NONFINITE if h.get("nb") else 0
    f2 |= _RAW if h.get("raw") else 0
    f2 |= _S32 if h.get("s32") else 0
    if "enc" in h:
        f1 |= _CONFIG
        nl, nf, lt, base, scale = h["enc"]
        code = round(scale * _SCALE_CODE)
        exact = code / _SCALE_CODE == scale
        f2 |= 0 if exact else _SCALE64
        out += struct.pack("<BBB", nl, nf, lt) + _varint(base)
        out += _varint(code) if exact else struct.pack("<d", scale)
        nn, nh, act, oact = h["net"]
        out += struct.pack("<BBB", nn, nh, VALID_ACTIVATIONS.index(act) << 4 | VALID_OUTPUT_ACTIVATIONS.index(oact))
    out += struct.pack("<dd" if wide_range else "<ff", lo, hi)
    if "grid" in h or "owned" in h or "assoc" in h:
        f1 |= _GEOMETRY | (_ELEMENT if h["assoc"] == "element" else 0)
        o = h["owned"]
        out += b"".join(_varint(n) for n in h["grid"])
        out += b"".join(_varint(a) + _varint(n - b) for a, b, n in zip(o[0::2], o[1::2], h["grid"]))
    if h.get("rb"):
        out += _varint(h["rb"])
    if h.get("nb"):
        out += _varint(h["nb"])
    if dtype[0] == "d":
        out += struct.pack("<I", h["bc"])
    return bytes([f1, f2]) + bytes(out)


def _unpack_header(data: bytes, at: int, stop: int) -> tuple[dict, int]:
    """(header dict in version 2's keys, end of the header) of a version-3 header at ``data[at:]``."""
    r = _Reader(data, at, stop)
    f1, f2 = r.take("<BB")
    if f1 & 3 >= len(_KINDS):
        raise ModelFormatError(f"model header malformed: parameter kind {f1 & 3} unknown")
    kind, bits = _KINDS[f1 & 3], f2 & 0x1F
    h: dict = {"v": 3, "dtype": "f16" if kind == "f" else f"{kind}{bits}", "raw": bool(f2 & _RAW),
               "s32": bool(f2 & _S32)}
    if f1 & _CONFIG:
        nl, nf, lt = r.take("<BBB")
        base = r.varint()
        scale = r.take("<d")[0] if f2 & _SCALE64 else r.varint() / _SCALE_CODE
        nn, nh, acts = r.take("<BBB")
        if acts >> 4 >= len(VALID_ACTIVATIONS) or acts & 15 >= len(VALID_OUTPUT_ACTIVATIONS):
            raise ModelFormatError(f"model header malformed: activations {acts:#x} unknown")
        h["enc"] = [nl, nf, lt, base, scale]
        h["net"] = [nn, nh, VALID_ACTIVATIONS[acts >> 4], VALID_OUTPUT_ACTIVATIONS[acts & 15]]
    elif kind != "d":  # a constant block stores no config: the smallest one stands in
        small = smallest_config()
        e, n = small.encoding, small.network
        h["enc"] = [e.n_levels, e.n_features_per_level, e.log2_hashmap_size, e.base_resolution, e.per_level_scale]
        h["net"] = [n.n_neurons, n.n_hidden_layers, n.activation, n.output_activation]
    h["range"] = list(r.take("<dd" if f1 & _RANGE64 else "<ff"))
    if f1 & _GEOMETRY:
        h["assoc"] = "element" if f1 & _ELEMENT else "vertex"
        h["grid"] = [r.varint() for _ in range(3)]
        h["owned"] = []
        for n in h["grid"]:
            a, rest = r.varint(), r.varint()
            h["owned"] += [a, n - rest]
    h["rb"] = r.varint() if f1 & _RESIDUAL else 0
    h["nb"] = r.varint() if f1 & _NONFINITE else 0
    if kind == "d":
        h["bc"], h["dm"] = r.take("<I")[0], 1
    if kind != "d" or "enc" in h:
        h["np"] = 0 if h["range"][0] == h["range"][1] else ModelConfig(
            EncodingConfig(*h["enc"]), NetworkConfig(*h["net"])).n_params
    h["pb"] = stop - r.at - h["rb"] - h["nb"]
    if h["pb"] < 0:
        raise ModelFormatError(f"model bytes hold {stop - r.at} section bytes, header says at least "
                               f"{h['rb'] + h['nb']}")
    return h, r.at
