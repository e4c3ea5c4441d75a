"""Gray-Scott reaction-diffusion in 3D (periodic), the evolving-pattern proxy.

    mpiexec -n 4 python -m sims.gray_scott --grid 96 --steps 60 --output gray_scott_run

    du/dt = Du lap(u) - u v^2 + F (1 - u)
    dv/dt = Dv lap(v) + u v^2 - (F + k) v

Explicit Euler on a unit grid with the 7-point Laplacian, with the update of
:func:`max_dt` (a discrete maximum principle: u stays in [0, 1] and v >= 0). The
initial state is u = 1, v = 0 with seeded cubes of v placed by global
coordinates, so it does not depend on the decomposition. With F = k = 0 the
reaction only turns u into v: sum(u + v) is conserved (a test checks it).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .decomposition import CartDecomposition
from .driver import Proxy, main


def laplacian(a: np.ndarray, g: int, out: np.ndarray, scale: float) -> np.ndarray:
    """``scale`` times the 7-point Laplacian of the owned part of ``a`` (ghost width ``g`` >= 1), into ``out``."""
    n = [m - 2 * g for m in a.shape]

    def shifted(axis: int, d: int) -> np.ndarray:
        idx = [slice(g, g + m) for m in n]
        idx[axis] = slice(g + d, g + d + n[axis])
        return a[tuple(idx)]

    np.multiply(shifted(0, 0), -6.0, out=out)
    for axis in range(3):
        out += shifted(axis, -1)
        out += shifted(axis, 1)
    out *= scale
    return out


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--feed", type=float, default=0.030, help="feed rate F (default %(default)s)")
    p.add_argument("--kill", type=float, default=0.062, help="kill rate k (default %(default)s)")
    p.add_argument("--du", type=float, default=0.16, help="diffusion of u (default %(default)s)")
    p.add_argument("--dv", type=float, default=0.08, help="diffusion of v (default %(default)s)")
    p.add_argument("--seeds", type=int, default=12, help="seeded cubes of v (default %(default)s)")


def max_dt(args: argparse.Namespace) -> float:
    """The largest Euler update that keeps every new value a non-negative combination of old ones.

    ``u' = u (1 - dt (6 Du + v^2 + F)) + dt Du sum(neighbours) + dt F``: with
    ``dt (6 Du + 1 + F) <= 1`` (v <= 1) it stays in [0, 1]; ``v'`` likewise stays
    >= 0 with ``dt (6 Dv + F + k) <= 1``. That bounds the solution, hence stability.
    """
    rates = {"--du": args.du, "--dv": args.dv, "--feed": args.feed, "--kill": args.kill}
    bad = [f"{k} {v}" for k, v in rates.items() if v < 0]
    if bad:
        raise ValueError(f"gray_scott: rates must be >= 0, got {', '.join(bad)}")
    return 1.0 / max(6 * args.du + 1.0 + args.feed, 6 * args.dv + args.feed + args.kill)


def init(dec: CartDecomposition, args: argparse.Namespace) -> dict:
    u, v = dec.allocate(fill=1.0), dec.allocate()
    rng = np.random.default_rng(args.seed)
    z, y, x = dec.global_index()
    nz, ny, nx = dec.shape
    ou, ov = dec.owned(u), dec.owned(v)
    for _ in range(args.seeds):
        c = rng.uniform(0.15, 0.85, 3) * np.array(dec.shape)
        r = max(rng.uniform(0.03, 0.07) * min(dec.shape), 2.5)  # small seeds would just decay
        # periodic distance, so a seed near a face wraps like the physics does
        d = [np.abs(i - ci) for i, ci in zip((z, y, x), c)]
        d = [np.minimum(di, n - di) for di, n in zip(d, (nz, ny, nx))]
        inside = (d[0] < r) & (d[1] < r) & (d[2] < r)
        ou[inside], ov[inside] = 0.5, 0.25
    dec.exchange(u)
    dec.exchange(v)
    return {"u": u, "v": v, "time": 0.0}


def update(dec: CartDecomposition, s: dict, args: argparse.Namespace, dt: float) -> None:
    """One explicit Euler update of both fields (in place, into preallocated work arrays), then their halos."""
    g = dec.ghosts
    u, v = s["u"], s["v"]
    ou, ov = dec.owned(u), dec.owned(v)
    du, dv, r = s.setdefault("work", tuple(np.empty(dec.local_shape) for _ in range(3)))
    laplacian(u, g, du, args.du * dt)
    laplacian(v, g, dv, args.dv * dt)
    np.multiply(ov, ov, out=r)
    r *= ou
    r *= dt  # dt u v^2: what u loses, v gains (exactly the same numbers: sum(u + v) balances)
    du -= r
    dv += r
    du += (dt * args.feed) * (1.0 - ou)
    dv -= (dt * (args.feed + args.kill)) * ov
    ou += du
    ov += dv
    dec.exchange(u)
    dec.exchange(v)


def fields(dec: CartDecomposition, s: dict) -> dict[str, np.ndarray]:
    return {"u": s["u"], "v": s["v"]}


PROXY = Proxy("gray_scott", "Gray-Scott reaction-diffusion (periodic 3D), published with ghost layers",
              init, update, fields, max_dt, default_grid=96, default_steps=60, default_step_time=20.0,
              add_options=add_options)

if __name__ == "__main__":
    sys.exit(main(PROXY))
