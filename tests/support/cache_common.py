"""Shared by the cache tests and their MPI scripts: small deterministic models and their metas."""
from __future__ import annotations

import numpy as np

import inr
from insitu.cache import EntryMeta

CONFIG = inr.ModelConfig(inr.EncodingConfig(4, 2, 8, 4, 1.5), inr.NetworkConfig(16, 1))


def make_model(seed: int, owned_shape=(6, 7, 8), ghost: int = 1, association: str = "vertex") -> inr.Model:
    """A model with random fp16 params over a block of ``owned_shape`` plus ``ghost`` layers each side."""
    rng = np.random.default_rng(seed)
    params = rng.normal(0, 0.3, CONFIG.n_params).astype(np.float16)
    grid = tuple(n + 2 * ghost for n in owned_shape)
    owned = tuple((ghost, ghost + n) for n in owned_shape)
    lo = float(rng.uniform(-2, 0))
    return inr.Model(CONFIG, params, (lo, lo + 3.0), grid, association, owned)


def make_report(seed: int, stored_bytes: int, raw_bytes: int) -> inr.FitReport:
    rng = np.random.default_rng(seed + 7)
    return inr.FitReport(psnr=float(rng.uniform(30, 50)), max_abs_error=float(rng.uniform(0, 0.1)), steps=10,
                         seconds=0.01, stored_bytes=stored_bytes, ratio=raw_bytes / stored_bytes)


def make_entry(seed: int, start=(0, 0, 0), owned_shape=(6, 7, 8), spacing=(0.5, 0.25, 0.125),
               association: str = "vertex", time: float | None = None) -> tuple[inr.Model, bytes, EntryMeta]:
    """(model, model bytes, meta) of a block whose first owned sample is global index ``start``."""
    m = make_model(seed, owned_shape, association=association)
    b = m.to_bytes()
    origin = tuple(s * h for s, h in zip(start, spacing))
    meta = EntryMeta.from_model(m, make_report(seed, len(b), m.raw_bytes), start=start, origin=origin,
                                spacing=spacing, time=time)
    return m, b, meta


def decomposition(global_shape=(10, 12, 14), parts=(2, 2, 2)):
    """Blocks of a regular decomposition: list of (domain_id, start, dims), (z, y, x)."""
    out = []
    cuts = [np.linspace(0, n, p + 1).astype(int) for n, p in zip(global_shape, parts)]
    d = 0
    for i in range(parts[0]):
        for j in range(parts[1]):
            for k in range(parts[2]):
                lo = (cuts[0][i], cuts[1][j], cuts[2][k])
                hi = (cuts[0][i + 1], cuts[1][j + 1], cuts[2][k + 1])
                out.append((d, tuple(int(a) for a in lo), tuple(int(b - a) for a, b in zip(lo, hi))))
                d += 1
    return out


def entry_file_offset(segment_path, row: int) -> int:
    """Where entry ``row``'s model bytes start in a segment file (to corrupt them on purpose in tests)."""
    import h5py

    with h5py.File(segment_path, "r") as f:
        if "data" in f:  # segment version 2: one dataset, the index gives each entry's offset
            return f["data"].id.get_offset() + int(f["index"][row]["offset"])
        return f[f"entries/{row:06d}"].id.get_offset()


# The crash-safety writer's entries (tests/mpi/cache_crash_writer.py): bytes and meta are functions of
# (cycle, domain), so the test can check what survived a kill.
def blob(cycle: int, domain: int) -> bytes:
    rng = np.random.default_rng(cycle * 1000 + domain)
    return rng.bytes(int(rng.integers(2_000, 60_000)))


def meta(cycle: int, domain: int) -> EntryMeta:
    return EntryMeta(start=(0, 0, 16 * domain), dims=(16, 16, 16), value_range=(0.0, 1.0),
                     fit={"psnr": 40.0 + domain, "max_abs_error": 0.01, "ratio": 10.0, "seconds": 0.1}, time=cycle * 0.5)
