"""Advection-diffusion of hot spots across a periodic box: the proxy with an analytic solution.

    mpiexec -n 4 python -m sims.advection --grid 128 --steps 40 --output advection_run

    dc/dt + a . grad(c) = D lap(c)      (constant velocity a, periodic)

Gaussian hot spots drift with the velocity (crossing rank boundaries) and
spread: the exact solution is each Gaussian with its centre at ``x0 + a t``
and variance ``s0^2 + 2 D t`` (periodic images summed), which
:func:`exact` computes for the tests. Space: central differences in flux form
(the total heat is conserved to round-off); time: Heun's method (RK2) with a
step inside the advective and diffusive limits.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .decomposition import CartDecomposition
from .driver import Proxy, main


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--velocity", type=float, nargs=3, default=[0.15, 0.35, 0.6], metavar=("VZ", "VY", "VX"),
                   help="advection velocity in cells per unit time (default %(default)s)")
    p.add_argument("--diffusion", type=float, default=0.15, help="diffusion coefficient D (default %(default)s)")
    p.add_argument("--spots", type=int, default=4, help="number of hot spots (default %(default)s)")
    p.add_argument("--width", type=float, default=0.06, help="hot spot radius (sigma) as a fraction of the box "
                                                             "(default %(default)s)")
    p.add_argument("--substeps", type=int, default=4, help="RK2 updates per step (default %(default)s)")
    p.add_argument("--cfl", type=float, default=0.4, help="fraction of the stable time step used (default 0.4)")


def spots(args: argparse.Namespace, shape: tuple[int, int, int]) -> list[tuple[np.ndarray, float, float]]:
    """(centre (z, y, x), sigma, amplitude) of every hot spot, from the seed and the global shape only."""
    rng = np.random.default_rng(args.seed)
    return [(rng.uniform(0, 1, 3) * np.array(shape), args.width * min(shape), rng.uniform(0.5, 1.5))
            for _ in range(args.spots)]


def exact(args: argparse.Namespace, shape: tuple[int, int, int], t: float,
          index: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """The analytic field at time ``t`` at global ``index`` arrays (periodic images summed)."""
    out = np.zeros(index[0].shape)
    vel = np.asarray(args.velocity, dtype=np.float64)
    for c0, s0, amp in spots(args, shape):
        var = s0 * s0 + 2.0 * args.diffusion * t
        scale = amp * (s0 * s0 / var) ** 1.5
        c = c0 + vel * t
        term = np.full(index[0].shape, scale)
        for axis in range(3):  # the Gaussian is separable: sum the images axis by axis
            n = shape[axis]
            d = np.mod(index[axis] - c[axis] + n / 2, n) - n / 2  # nearest periodic image
            term = term * sum(np.exp(-(d + k * n) ** 2 / (2 * var)) for k in (-2, -1, 0, 1, 2))
        out += term
    return out


def stable_dt(args: argparse.Namespace) -> float:
    """Inside both limits: advection |a|_1 dt <= 1 and diffusion 6 D dt <= 1 (unit cells)."""
    adv = float(np.sum(np.abs(args.velocity)))
    limit = min(1.0 / adv if adv else np.inf, 1.0 / (6.0 * args.diffusion) if args.diffusion else np.inf)
    return args.cfl * (limit if np.isfinite(limit) else 1.0)


def rhs(dec: CartDecomposition, c: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    """-div(a c) + D lap(c) on the owned samples, as differences of face fluxes (conservative)."""
    g = dec.ghosts
    n = dec.local_shape
    out = np.zeros(n)
    for axis in range(3):
        def sl(offset: int) -> np.ndarray:
            idx = [slice(g, g + m) for m in n]
            idx[axis] = slice(g + offset, g + offset + n[axis])
            return c[tuple(idx)]

        centre, up, down = sl(0), sl(1), sl(-1)
        # flux through the face between i and i+1: a (c_i + c_i+1)/2 - D (c_i+1 - c_i)
        f_hi = args.velocity[axis] * 0.5 * (centre + up) - args.diffusion * (up - centre)
        f_lo = args.velocity[axis] * 0.5 * (down + centre) - args.diffusion * (centre - down)
        out -= f_hi - f_lo
    return out


def init(dec: CartDecomposition, args: argparse.Namespace) -> dict:
    if dec.ghosts < 1:
        raise SystemExit("advection: the stencil needs --ghosts >= 1")
    c = dec.allocate()
    dec.owned(c)[...] = exact(args, dec.shape, 0.0, dec.global_index())
    dec.exchange(c)
    return {"c": c, "time": 0.0, "dt": stable_dt(args)}


def step(dec: CartDecomposition, s: dict, args: argparse.Namespace) -> None:
    c, dt = s["c"], s["dt"]
    for _ in range(args.substeps):
        c0 = dec.owned(c).copy()
        k1 = rhs(dec, c, args)
        dec.owned(c)[...] = c0 + dt * k1
        dec.exchange(c)
        k2 = rhs(dec, c, args)
        dec.owned(c)[...] = c0 + 0.5 * dt * (k1 + k2)
        dec.exchange(c)
        s["time"] += dt


def fields(dec: CartDecomposition, s: dict) -> dict[str, np.ndarray]:
    return {"temperature": s["c"]}


PROXY = Proxy("advection", "Advection-diffusion of hot spots in a periodic box (analytic solution), "
              "published with ghost layers", init, step, fields, default_grid=128, default_steps=40,
              add_options=add_options)

if __name__ == "__main__":
    sys.exit(main(PROXY))
