"""Backends behind one switch: ``"torch"`` (reference), ``"native"`` (cpp/inr_native/), ``"tcnn"``.

Every backend offers the same three operations on our flat parameter layout:
``evaluate(enc, net, params, points)``, ``decode_grid(enc, net, params, xs, ys, zs)``
and ``trainer(problem, params0, seed)`` (an object with ``step(n, lr)`` and
``params()``); :class:`Backend` and :class:`Trainer` spell that out.
``"auto"`` picks tiny-cuda-nn on a CUDA device when it imports, else the
native kernels on the CPU when they import, else torch.
"""
from __future__ import annotations

import warnings
from typing import Protocol

import numpy as np

from ..config import EncodingConfig, NetworkConfig
from ..errors import BackendUnavailableError, InrValueError
from ..problem import FitProblem

BACKENDS = ("auto", "torch", "native", "tcnn")

_warned_native = False


class Trainer(Protocol):
    """One model in training (made by :meth:`Backend.trainer`): Adam on random batches of grid samples.

    The optimiser state lives inside, so successive ``step`` calls continue one run; the
    learning rate is given per call because ``inr.fit`` owns the schedule.
    """

    def step(self, n_steps: int, lr: float) -> float:
        """Run ``n_steps`` steps at learning rate ``lr``; the loss of the last one."""
        ...

    def params(self) -> np.ndarray:
        """The current parameters, float32 in our flat layout (a copy the caller may keep)."""
        ...


class Backend(Protocol):
    """What :func:`get_backend` returns: the torch, native and tcnn backends all have this shape.

    Parameters are always float32 in our flat layout (:mod:`inr.layout`) and outputs are in
    normalised units, so that a model fitted on one backend decodes on any other.
    """

    #: the name ``get_backend`` knows it by ("torch", "native" or "tcnn"), recorded in FitReport.backend
    name: str

    def evaluate(self, enc: EncodingConfig, net: NetworkConfig, params: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Network output at ``points`` (N, 3), (x, y, z) in [0, 1]^3 -> (N,) float32."""
        ...

    def decode_grid(self, enc: EncodingConfig, net: NetworkConfig, params: np.ndarray,
                    xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
        """Network output on the tensor grid ``zs x ys x xs`` -> (nz, ny, nx) float32."""
        ...

    def trainer(self, problem: FitProblem, params0: np.ndarray, seed: int) -> Trainer:
        """A :class:`Trainer` for ``problem`` starting from ``params0``; ``seed`` fixes its batches."""
        ...


#: what the native module must offer to serve as a backend.
NATIVE_KERNELS = ("hashgrid_encode", "Model", "Trainer", "decode_grid", "evaluate", "loss_gradient")


def native_import_error() -> str | None:
    """Why the native backend cannot be used, or None when it can."""
    try:
        from .. import _native
    except Exception as exc:  # a broken build raises more than ImportError
        return f"{type(exc).__name__}: {exc}"
    missing = [k for k in NATIVE_KERNELS if not hasattr(_native, k)]
    if missing:
        return f"inr._native lacks {missing} (rebuild with pip install .)"
    return None


def tcnn_import_error() -> str | None:
    """Why tiny-cuda-nn cannot be used, or None when it can (needs CUDA)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return "CUDA is not available"
        import tinycudann  # noqa: F401
    except Exception as exc:  # broken CUDA installs raise OSError, RuntimeError, ...
        return f"{type(exc).__name__}: {exc}"
    return None


def available_backends(device: str = "cpu") -> list[str]:
    """Backends that can run on ``device`` here."""
    names = ["torch"]
    if not device.startswith("cuda") and native_import_error() is None:
        names.append("native")
    if device.startswith("cuda") and tcnn_import_error() is None:
        names.append("tcnn")
    return names


def get_backend(name: str = "auto", device: str = "cpu", threads: int | None = None) -> Backend:
    """The backend object for ``name`` on ``device``.

    An explicit name that cannot run raises :class:`BackendUnavailableError`
    with the cause; ``"auto"`` falls back to torch (warning once when the
    native module failed to import).
    """
    global _warned_native
    if name not in BACKENDS:
        raise InrValueError(f"backend={name!r} is invalid: valid choices are {list(BACKENDS)}")
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise InrValueError(f"device={device!r} is invalid: valid choices are 'cpu', 'cuda', 'cuda:N'")
    cuda = device.startswith("cuda")
    if name == "auto":
        if cuda:
            name = "tcnn" if tcnn_import_error() is None else "torch"
        else:
            err = native_import_error()
            if err is None:
                name = "native"
            else:
                if not _warned_native:
                    warnings.warn(f"inr: native backend unavailable ({err}); using torch", RuntimeWarning, stacklevel=2)
                    _warned_native = True
                name = "torch"
    if name == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend(device, threads)
    if name == "native":
        if cuda:
            raise InrValueError(f"backend='native' runs on the CPU only; got device={device!r}")
        err = native_import_error()
        if err is not None:
            raise BackendUnavailableError(f"backend='native' is unavailable: {err}")
        from .native_backend import NativeBackend

        return NativeBackend(threads)
    err = tcnn_import_error() if cuda else "tcnn needs a CUDA device (device='cuda')"
    if err is not None:
        raise BackendUnavailableError(f"backend='tcnn' is unavailable: {err}")
    from .tcnn_backend import TcnnBackend

    return TcnnBackend(device)
