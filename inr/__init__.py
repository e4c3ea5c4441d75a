"""inr: a small neural representation (hash grid + tiny MLP) of one block of a 3D field.

Public API::

    model, report = inr.fit(values, ratio=100)      # fit one block
    model.decode()                                   # owned grid back, float32
    blob = model.to_bytes(); inr.Model.from_bytes(blob)
    inr.fit(values, max_abs_error=1e-3)              # error-bounded: |decoded - values| <= 1e-3 everywhere

Backends behind one switch (``backend="auto"|"torch"|"native"|"tcnn"``); the
torch backend is the reference, the others are tested against it.
"""
from __future__ import annotations

from .backends import BACKENDS, available_backends, get_backend
from .config import EncodingConfig, ModelConfig, NetworkConfig
from .errors import BackendUnavailableError, InrError, InrValueError, ModelFormatError
from .fit import DEFAULT_RATIO, PREFERENCES, fit
from .metrics import max_abs_error, psnr
from .model import FitReport, Model
from .quantize import DEFAULT_PARAM_BITS, VALID_PARAM_BITS
from .residual import Residual
from .sizing import config_for_ratio

__version__ = "0.1.0"

__all__ = [
    "BACKENDS", "BackendUnavailableError", "DEFAULT_PARAM_BITS", "DEFAULT_RATIO", "PREFERENCES", "Residual",
    "VALID_PARAM_BITS", "EncodingConfig", "FitReport", "InrError", "InrValueError", "Model",
    "ModelConfig", "ModelFormatError", "NetworkConfig", "available_backends", "config_for_ratio", "fit",
    "get_backend", "max_abs_error", "psnr", "__version__",
]
