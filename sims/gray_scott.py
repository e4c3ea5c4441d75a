"""Gray-Scott reaction-diffusion in 3D (periodic), the evolving-pattern proxy.

    mpiexec -n 4 python -m sims.gray_scott --grid 96 --steps 60 --output gray_scott_run

    du/dt = Du lap(u) - u v^2 + F (1 - u)
    dv/dt = Dv lap(v) + u v^2 - (F + k) v

Explicit Euler on a unit grid with the 7-point Laplacian (stable for
dt * 6 * max(Du, Dv) < 1). The initial state is u = 1, v = 0 with seeded cubes
of v placed by global coordinates, so it does not depend on the decomposition.
One ``--steps`` step is ``--substeps`` updates.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .decomposition import CartDecomposition
from .driver import Proxy, main


def laplacian(a: np.ndarray, g: int) -> np.ndarray:
    """7-point Laplacian of the owned part of ``a`` (ghost width ``g`` >= 1, unit spacing)."""
    c = a[g:-g, g:-g, g:-g]
    return (a[g - 1:-g - 1, g:-g, g:-g] + a[g + 1:a.shape[0] - g + 1, g:-g, g:-g]
            + a[g:-g, g - 1:-g - 1, g:-g] + a[g:-g, g + 1:a.shape[1] - g + 1, g:-g]
            + a[g:-g, g:-g, g - 1:-g - 1] + a[g:-g, g:-g, g + 1:a.shape[2] - g + 1] - 6.0 * c)


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--feed", type=float, default=0.030, help="feed rate F (default %(default)s)")
    p.add_argument("--kill", type=float, default=0.062, help="kill rate k (default %(default)s)")
    p.add_argument("--du", type=float, default=0.16, help="diffusion of u (default %(default)s)")
    p.add_argument("--dv", type=float, default=0.08, help="diffusion of v (default %(default)s)")
    p.add_argument("--dt", type=float, default=1.0, help="time step of one update (default %(default)s)")
    p.add_argument("--substeps", type=int, default=20, help="updates per step (default %(default)s)")
    p.add_argument("--seeds", type=int, default=12, help="seeded cubes of v (default %(default)s)")


def init(dec: CartDecomposition, args: argparse.Namespace) -> dict:
    if args.dt * 6 * max(args.du, args.dv) >= 1.0:
        raise SystemExit(f"gray_scott: --dt {args.dt} is unstable for Du={args.du}, Dv={args.dv}: "
                         f"use dt < {1 / (6 * max(args.du, args.dv)):.3f}")
    g = max(dec.ghosts, 1)
    if g != dec.ghosts:
        raise SystemExit("gray_scott: the Laplacian needs --ghosts >= 1")
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


def step(dec: CartDecomposition, s: dict, args: argparse.Namespace) -> None:
    g = dec.ghosts
    u, v = s["u"], s["v"]
    for _ in range(args.substeps):
        ou, ov = dec.owned(u), dec.owned(v)
        uvv = ou * ov * ov
        du = args.du * laplacian(u, g) - uvv + args.feed * (1.0 - ou)
        dv = args.dv * laplacian(v, g) + uvv - (args.feed + args.kill) * ov
        ou += args.dt * du
        ov += args.dt * dv
        dec.exchange(u)
        dec.exchange(v)
        s["time"] += args.dt


def fields(dec: CartDecomposition, s: dict) -> dict[str, np.ndarray]:
    return {"u": s["u"], "v": s["v"]}


PROXY = Proxy("gray_scott", "Gray-Scott reaction-diffusion (periodic 3D), published with ghost layers",
              init, step, fields, default_grid=96, default_steps=60, add_options=add_options)

if __name__ == "__main__":
    sys.exit(main(PROXY))
