"""Model configuration, compatible with tiny-cuda-nn's HashGrid and FullyFusedMLP.

The two dataclasses mirror the JSON dicts tiny-cuda-nn takes, so a model fitted
here loads into ``tcnn.NetworkWithInputEncoding`` and back (see
``Model.to_tcnn_params``); :class:`ModelConfig` pairs them. All per-level arithmetic is done in float32 exactly
as tiny-cuda-nn does it, so level resolutions and table sizes agree bit for bit.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import InrValueError

#: primes of tiny-cuda-nn's coherent prime hash, one per input dimension.
HASH_PRIMES = (1, 2654435761, 805459861)

VALID_FEATURES_PER_LEVEL = (1, 2, 4, 8)
VALID_NEURONS = (16, 32, 64, 128)  # what FullyFusedMLP supports
VALID_ACTIVATIONS = ("ReLU",)
VALID_OUTPUT_ACTIVATIONS = ("None",)
#: FullyFusedMLP pads its input and output widths to multiples of this.
MLP_PAD = 16


def _next_multiple(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise InrValueError(f"{name}={value!r} is invalid: expected an integer in [{lo}, {hi}]")
    return int(value)


@dataclass(frozen=True)
class EncodingConfig:
    """tiny-cuda-nn ``HashGrid`` encoding of 3D positions in [0, 1]^3.

    Level ``l`` has scale ``2^(l*log2(per_level_scale)) * base_resolution - 1``
    and resolution ``ceil(scale) + 1``; its table holds
    ``min(next_multiple_of_8(resolution^3), 2^log2_hashmap_size)`` entries of
    ``n_features_per_level`` values, dense-indexed while ``resolution^3`` fits,
    prime-hashed otherwise.
    """

    n_levels: int = 16
    n_features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    per_level_scale: float = 2.0

    def __post_init__(self) -> None:
        _check_int("n_levels", self.n_levels, 1, 32)
        if self.n_features_per_level not in VALID_FEATURES_PER_LEVEL or isinstance(self.n_features_per_level, bool):
            raise InrValueError(
                f"n_features_per_level={self.n_features_per_level!r} is invalid: "
                f"valid choices are {list(VALID_FEATURES_PER_LEVEL)}"
            )
        _check_int("log2_hashmap_size", self.log2_hashmap_size, 1, 30)
        _check_int("base_resolution", self.base_resolution, 1, 1 << 16)
        scale = self.per_level_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)) or not math.isfinite(scale) \
                or not 1.0 <= float(scale) <= 16.0:
            raise InrValueError(f"per_level_scale={scale!r} is invalid: expected a number in [1, 16]")
        object.__setattr__(self, "per_level_scale", float(scale))

    # --- per-level geometry (float32 arithmetic, as tiny-cuda-nn) ---
    def level_scale(self, level: int) -> np.float32:
        """Scale of ``level`` in float32: positions map to ``x*scale + 0.5``."""
        log2s = np.float32(np.log2(np.float32(self.per_level_scale)))
        return np.float32(np.exp2(np.float32(level) * log2s) * np.float32(self.base_resolution) - np.float32(1.0))

    def level_resolution(self, level: int) -> int:
        return int(math.ceil(float(self.level_scale(level)))) + 1

    def level_table_size(self, level: int) -> int:
        """Number of entries (not parameters) in the table of ``level``."""
        res = self.level_resolution(level)
        dense = min(res**3, (1 << 32) // 2 - 1)
        return min(_next_multiple(dense, 8), 1 << self.log2_hashmap_size)

    def level_is_dense(self, level: int) -> bool:
        return self.level_resolution(level) ** 3 <= self.level_table_size(level)

    def level_offsets(self) -> list[int]:
        """Entry offset of each level's table (``n_levels + 1`` values, level-major)."""
        return list(_level_offsets(self))

    @property
    def n_entries(self) -> int:
        return self.level_offsets()[-1]

    @property
    def n_params(self) -> int:
        """Parameter count, equal to tiny-cuda-nn's for the same config."""
        return self.n_entries * self.n_features_per_level

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level

    # --- tiny-cuda-nn JSON ---
    def to_tcnn(self) -> dict:
        d = asdict(self)
        return {"otype": "HashGrid", **d, "interpolation": "Linear"}

    @classmethod
    def from_tcnn(cls, d: dict) -> "EncodingConfig":
        d = dict(d)
        otype = d.pop("otype", "HashGrid")
        if otype not in ("HashGrid", "Grid"):
            raise InrValueError(f"encoding otype={otype!r} is not supported: valid choices are ['HashGrid', 'Grid']")
        if d.pop("type", "Hash") != "Hash":
            raise InrValueError("encoding type must be 'Hash'")
        interp = d.pop("interpolation", "Linear")
        if interp != "Linear":
            raise InrValueError(f"encoding interpolation={interp!r} is not supported: valid choices are ['Linear']")
        d.pop("n_dims_to_encode", None)
        known = {"n_levels", "n_features_per_level", "log2_hashmap_size", "base_resolution", "per_level_scale"}
        unknown = set(d) - known
        if unknown:
            raise InrValueError(f"unknown encoding keys {sorted(unknown)}: valid keys are {sorted(known)}")
        return cls(**d)


@dataclass(frozen=True)
class NetworkConfig:
    """tiny-cuda-nn ``FullyFusedMLP``: no biases, ReLU hidden layers.

    ``n_hidden_layers`` counts hidden layers of width ``n_neurons``; the weight
    matrices are input->hidden, ``n_hidden_layers - 1`` hidden->hidden and
    hidden->output.
    """

    n_neurons: int = 64
    n_hidden_layers: int = 2
    activation: str = "ReLU"
    output_activation: str = "None"

    def __post_init__(self) -> None:
        if self.n_neurons not in VALID_NEURONS or isinstance(self.n_neurons, bool):
            raise InrValueError(
                f"n_neurons={self.n_neurons!r} is not supported by FullyFusedMLP: valid choices are {list(VALID_NEURONS)}"
            )
        _check_int("n_hidden_layers", self.n_hidden_layers, 1, 16)
        if self.activation not in VALID_ACTIVATIONS:
            raise InrValueError(f"activation={self.activation!r} is invalid: valid choices are {list(VALID_ACTIVATIONS)}")
        if self.output_activation not in VALID_OUTPUT_ACTIVATIONS:
            raise InrValueError(
                f"output_activation={self.output_activation!r} is invalid: valid choices are {list(VALID_OUTPUT_ACTIVATIONS)}"
            )

    def layer_shapes(self, n_input: int, n_output: int = 1) -> list[tuple[int, int]]:
        """(out, in) of each weight matrix, unpadded (what the model stores)."""
        w = self.n_neurons
        return [(w, n_input)] + [(w, w)] * (self.n_hidden_layers - 1) + [(n_output, w)]

    def tcnn_layer_shapes(self, n_input: int, n_output: int = 1) -> list[tuple[int, int]]:
        """(out, in) of each weight matrix as tiny-cuda-nn lays them out (padded to 16)."""
        shapes = self.layer_shapes(_next_multiple(n_input, MLP_PAD), _next_multiple(n_output, MLP_PAD))
        return shapes

    def n_params(self, n_input: int, n_output: int = 1) -> int:
        """Stored (unpadded) weight count."""
        return sum(o * i for o, i in self.layer_shapes(n_input, n_output))

    def n_tcnn_params(self, n_input: int, n_output: int = 1) -> int:
        """tiny-cuda-nn's weight count (padded input and output)."""
        return sum(o * i for o, i in self.tcnn_layer_shapes(n_input, n_output))

    def to_tcnn(self) -> dict:
        return {"otype": "FullyFusedMLP", **asdict(self)}

    @classmethod
    def from_tcnn(cls, d: dict) -> "NetworkConfig":
        d = dict(d)
        otype = d.pop("otype", "FullyFusedMLP")
        if otype not in ("FullyFusedMLP", "CutlassMLP"):
            raise InrValueError(f"network otype={otype!r} is not supported: valid choices are ['FullyFusedMLP']")
        known = {"n_neurons", "n_hidden_layers", "activation", "output_activation"}
        unknown = set(d) - known - {"n_input_dims", "n_output_dims"}
        if unknown:
            raise InrValueError(f"unknown network keys {sorted(unknown)}: valid keys are {sorted(known)}")
        return cls(**{k: v for k, v in d.items() if k in known})


@functools.lru_cache(maxsize=256)
def _level_offsets(enc: EncodingConfig) -> tuple[int, ...]:
    """:meth:`EncodingConfig.level_offsets`, made once per config: decoding a small predictive block computed them
    three times (the parameter count), a tenth of its Python time."""
    offsets = [0]
    for level in range(enc.n_levels):
        offsets.append(offsets[-1] + enc.level_table_size(level))
    return tuple(offsets)


@dataclass(frozen=True)
class ModelConfig:
    """Encoding + network: everything that fixes the parameter layout."""

    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)

    @property
    def n_params(self) -> int:
        """Parameters the model stores (unpadded MLP + tables)."""
        # the count inr.layout.n_params gives, spelt out here: layout imports this module, not the reverse
        return self.network.n_params(self.encoding.n_output_dims) + self.encoding.n_params

    def to_tcnn(self) -> dict:
        return {"encoding": self.encoding.to_tcnn(), "network": self.network.to_tcnn()}

    @classmethod
    def from_tcnn(cls, d: dict) -> "ModelConfig":
        return cls(EncodingConfig.from_tcnn(d["encoding"]), NetworkConfig.from_tcnn(d["network"]))
