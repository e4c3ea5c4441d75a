"""The native backend: the C++ kernels of cpp/inr_native/ (module ``inr._native``).

Same interface as :class:`inr.backends.torch_backend.TorchBackend`, on our flat
parameter layout. Training is deterministic by default: the batch is cut into
a fixed number of partitions whose gradients are summed in a fixed order, so
the result does not depend on the thread count.
"""
from __future__ import annotations

import functools
import math
import os
import time

import numpy as np

from ..config import EncodingConfig, NetworkConfig
from ..problem import FitProblem

#: batch partitions in deterministic mode (each holds a gradient buffer the size of the model).
DETERMINISTIC_PARTITIONS = 8
#: environment variables giving the number of MPI ranks on this node (Open MPI, MPICH/Hydra, PMIx, Slurm, PALS).
_LOCAL_RANKS_ENV = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE", "PALS_LOCAL_SIZE",
                    "SLURM_NTASKS_PER_NODE")


def _positive_int(text: str | None) -> int | None:
    if text is None:  # the usual case, and raising for it cost 10 us per call of default_threads
        return None
    try:
        value = int(str(text).split(",")[0].split("(")[0])
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def local_ranks() -> int:
    """MPI ranks sharing this node (1 outside MPI); read from the launcher's environment."""
    for name in _LOCAL_RANKS_ENV:
        n = _positive_int(os.environ.get(name))
        if n is not None:
            return n
    # a launcher that only gives the world size: assume every rank is on this node
    return _positive_int(os.environ.get("PMI_SIZE")) or 1


#: the time constant of the kernel's 1-minute load average (an exponential average of the runnable threads)
LOAD_WINDOW_S = 60.0
# this process's CPU seconds and the clock when last read, and its own part of the load average since then
_own_seen = {"wall": time.monotonic(), "cpu": time.process_time(), "load": 0.0}


def own_load() -> float:
    """About this process's own part of the 1-minute load average: its CPU seconds per second (every thread's),
    averaged as the kernel averages the load (exponentially over :data:`LOAD_WINDOW_S`), from this module's import
    on. A process that keeps its 2 threads busy approaches 2."""
    wall, cpu = time.monotonic(), time.process_time()
    dt = wall - _own_seen["wall"]
    if dt > 0:
        keep = math.exp(-dt / LOAD_WINDOW_S)
        rate = max(cpu - _own_seen["cpu"], 0.0) / dt
        _own_seen.update(wall=wall, cpu=cpu, load=_own_seen["load"] * keep + rate * (1.0 - keep))
    return _own_seen["load"]


def free_cores() -> int:
    """Cores this process may run on that other work does not keep busy: its cores less the 1-minute load average
    net of this process's own part, rounded to the nearest; at least 1. Its own part: :func:`own_load`, at least
    one (the thread asking runs now, and a process decoding in a loop holds the load at 1.0-1.1 by itself, which
    cut to one thread of two on an otherwise idle machine). Oversubscribing a busy node is costly: on a shared
    2-core machine 2 training threads ran 3x slower than 1. Net of all of its own part: a process keeping 2 threads
    busy for a minute raised the load by 2, which counted as others' work halved it on an idle 2-core machine
    (and left one thread of 16 on an idle 16-core node, or to each of 4 ranks of 4 threads there). A process that
    just ended still counts until its part of the load decays (a minute)."""
    n = cpu_count()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform: trust the affinity
        return n
    return max(1, min(n, round(n - max(load - max(own_load(), 1.0), 0.0))))


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set, else the cores shared out among the node's MPI ranks (one each when there
    are as many ranks as cores), and never more than the node's free cores (:func:`free_cores`); at least 1."""
    n = _positive_int(os.environ.get("OMP_NUM_THREADS"))
    if n is not None:
        return n
    return max(1, min(cpu_count() // local_ranks(), free_cores()))


def level_arrays(enc: EncodingConfig) -> dict[str, np.ndarray]:
    """Per-level constants in the form the C++ kernels take (computed here, once)."""
    levels = range(enc.n_levels)
    return {
        "scale": np.array([enc.level_scale(l) for l in levels], dtype=np.float32),
        "resolution": np.array([enc.level_resolution(l) for l in levels], dtype=np.uint32),
        "size": np.array([enc.level_table_size(l) for l in levels], dtype=np.uint32),
        "offset": np.array(enc.level_offsets()[:-1], dtype=np.uint32),
        "dense": np.array([enc.level_is_dense(l) for l in levels], dtype=np.uint8),
    }


def encode(points: np.ndarray, table: np.ndarray, enc: EncodingConfig) -> np.ndarray:
    """Hash-grid encoding of ``points`` (N, 3) in [0, 1]^3 -> (N, levels*F), in C++."""
    from .. import _native

    return _native.hashgrid_encode(np.ascontiguousarray(points, dtype=np.float32),
                                   np.ascontiguousarray(table, dtype=np.float32).ravel(),
                                   enc.n_features_per_level, **level_arrays(enc))


@functools.lru_cache(maxsize=64)
def native_model(enc: EncodingConfig, net: NetworkConfig):
    """The C++ description of a model's shape (``_native.Model``), cached per config."""
    from .. import _native

    return _native.Model(enc.n_features_per_level, **level_arrays(enc), width=net.n_neurons,
                         hidden=net.n_hidden_layers)


def _f32(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=np.float32)


def loss_gradient(enc: EncodingConfig, net: NetworkConfig, params: np.ndarray, points: np.ndarray,
                  target: np.ndarray, weight: np.ndarray | None = None, loss: str = "l2") -> tuple[float, np.ndarray]:
    """Mean loss and its gradient w.r.t. the flat parameters, through the training kernels."""
    from .. import _native

    value, grad = _native.loss_gradient(native_model(enc, net), _f32(params).ravel(), _f32(points),
                                        _f32(target).ravel(), None if weight is None else _f32(weight).ravel(), loss)
    return float(value), grad


#: samples per training step that each thread takes at least (2 shared cores: two threads trained 10-40 % slower
#: than one at 4096 samples per step, 1.3-2x faster from 32768 on; the fork and join of a step outweigh less work)
SAMPLES_PER_THREAD = 4096


class NativeTrainer:
    """Adam on random batches of grid samples in C++; ``step(n, lr)`` runs n steps."""

    def __init__(self, backend: "NativeBackend", problem: FitProblem, params0: np.ndarray, seed: int) -> None:
        from .. import _native

        # a small batch is not worth sharing out: each thread takes SAMPLES_PER_THREAD samples per step at least
        threads = max(1, min(backend.threads, int(problem.batch_size) // SAMPLES_PER_THREAD))
        partitions = DETERMINISTIC_PARTITIONS if backend.deterministic else threads
        self._trainer = _native.Trainer(
            native_model(problem.encoding, problem.network), _f32(params0).ravel(), _f32(problem.target).ravel(),
            None if problem.weight is None else _f32(problem.weight).ravel(),
            _f32(problem.xs), _f32(problem.ys), _f32(problem.zs), int(problem.batch_size), problem.loss,
            int(seed), threads, partitions,
        )

    def step(self, n_steps: int, lr: float) -> float:
        return float(self._trainer.step(int(n_steps), float(lr)))

    def params(self) -> np.ndarray:
        return self._trainer.params()


class NativeBackend:
    """The C++ kernels on the CPU, on ``threads`` threads (default: :func:`default_threads`).

    ``deterministic`` (default) makes training results independent of the
    thread count; ``False`` gives each thread its own gradient buffer instead
    (less memory for very large tables).
    """

    name = "native"

    def __init__(self, threads: int | None = None, deterministic: bool = True) -> None:
        from .. import _native  # noqa: F401  (fail here, not in the middle of a fit)

        self.threads = max(1, int(threads)) if threads is not None else default_threads()
        self.deterministic = bool(deterministic)

    def evaluate(self, enc: EncodingConfig, net: NetworkConfig, params: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Network output (normalised units) at ``points`` (N, 3) in [0, 1]^3."""
        from .. import _native

        pts = _f32(points)
        if pts.size == 0:
            return np.zeros(0, np.float32)
        return _native.evaluate(native_model(enc, net), _f32(params).ravel(), pts.reshape(-1, 3), self.threads)

    def decode_grid(self, enc: EncodingConfig, net: NetworkConfig, params: np.ndarray,
                    xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
        """Network output on the tensor grid ``zs x ys x xs`` -> (nz, ny, nx) float32."""
        from .. import _native

        return _native.decode_grid(native_model(enc, net), _f32(params).ravel(), _f32(xs).ravel(),
                                   _f32(ys).ravel(), _f32(zs).ravel(), self.threads)

    def trainer(self, problem: FitProblem, params0: np.ndarray, seed: int) -> NativeTrainer:
        return NativeTrainer(self, problem, params0, seed)
