"""Flat parameter vector layout, ours and tiny-cuda-nn's.

Ours (what a Model stores): the MLP weight matrices first, row-major
``[out][in]`` and unpadded (input width ``levels*F``, output width 1), then the
hash tables level-major ``[level][entry][feature]``.

tiny-cuda-nn's ``NetworkWithInputEncoding``: the same order (network, then
encoding), but the first matrix has its input padded to a multiple of 16 and
the last its output padded to 16; the padding is zero (the encoding pads its
output with zeros, and only output 0 is read), so dropping it loses nothing.
"""
from __future__ import annotations

import numpy as np

from .config import EncodingConfig, NetworkConfig
from .errors import InrValueError


def mlp_shapes(enc: EncodingConfig, net: NetworkConfig) -> list[tuple[int, int]]:
    return net.layer_shapes(enc.n_output_dims)


def n_params(enc: EncodingConfig, net: NetworkConfig) -> int:
    """Length of our flat parameter vector."""
    return net.n_params(enc.n_output_dims) + enc.n_params


def n_tcnn_params(enc: EncodingConfig, net: NetworkConfig) -> int:
    """Length of tiny-cuda-nn's flat parameter vector for the same model."""
    return net.n_tcnn_params(enc.n_output_dims) + enc.n_params


def split(params: np.ndarray, enc: EncodingConfig, net: NetworkConfig) -> tuple[list[np.ndarray], np.ndarray]:
    """Views of ``params``: the MLP matrices and the table (entries, F)."""
    if params.ndim != 1 or params.size != n_params(enc, net):
        raise InrValueError(f"params has {params.size} values; this config needs {n_params(enc, net)}")
    mats, at = [], 0
    for o, i in mlp_shapes(enc, net):
        mats.append(params[at:at + o * i].reshape(o, i))
        at += o * i
    return mats, params[at:].reshape(-1, enc.n_features_per_level)


def to_tcnn(params: np.ndarray, enc: EncodingConfig, net: NetworkConfig) -> np.ndarray:
    """Our flat vector -> tiny-cuda-nn's (zero padding inserted), float32."""
    mats, table = split(np.asarray(params, dtype=np.float32), enc, net)
    out = []
    for m, (o, i) in zip(mats, net.tcnn_layer_shapes(enc.n_output_dims)):
        padded = np.zeros((o, i), dtype=np.float32)
        padded[: m.shape[0], : m.shape[1]] = m
        out.append(padded.ravel())
    out.append(table.ravel())
    return np.concatenate(out)


def from_tcnn(tcnn_params: np.ndarray, enc: EncodingConfig, net: NetworkConfig) -> np.ndarray:
    """tiny-cuda-nn's flat vector -> ours (padding dropped), float32."""
    p = np.asarray(tcnn_params, dtype=np.float32).ravel()
    if p.size != n_tcnn_params(enc, net):
        raise InrValueError(
            f"tiny-cuda-nn params have {p.size} values; this config needs {n_tcnn_params(enc, net)}"
        )
    out, at = [], 0
    for (o, i), (uo, ui) in zip(net.tcnn_layer_shapes(enc.n_output_dims), mlp_shapes(enc, net)):
        out.append(p[at:at + o * i].reshape(o, i)[:uo, :ui].ravel())
        at += o * i
    out.append(p[at:])
    return np.concatenate(out)


def init_params(enc: EncodingConfig, net: NetworkConfig, seed: int) -> np.ndarray:
    """Initial parameters as tiny-cuda-nn draws them (same distributions, numpy RNG).

    Tables uniform in [-1e-4, 1e-4]; each matrix uniform in +-sqrt(6/(fan_in+fan_out)).
    Every backend starts from these, so fits with the same seed start identically.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for o, i in mlp_shapes(enc, net):
        bound = np.sqrt(6.0 / (o + i))
        parts.append(rng.uniform(-bound, bound, size=o * i))
    parts.append(rng.uniform(-1e-4, 1e-4, size=enc.n_params))
    return np.concatenate(parts).astype(np.float32)
