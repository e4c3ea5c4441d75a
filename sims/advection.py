"""Advection-diffusion of hot spots across a periodic box: the proxy with an analytic solution.

    mpiexec -n 4 python -m sims.advection --grid 128 --steps 40 --output advection_run

    dc/dt + a . grad(c) = D lap(c)      (constant velocity a, periodic)

Gaussian hot spots drift with the velocity (crossing rank boundaries) and
spread: the exact solution is each Gaussian with its centre at ``x0 + a t``
and variance ``s0^2 + 2 D t`` (periodic images summed), which
:func:`exact` computes for the tests. Space: central differences in flux form
(the total heat is conserved to round-off); time: the three-stage strong
stability preserving Runge-Kutta method (SSP-RK3), whose stability region holds
the central advection operator's imaginary spectrum (|z| <= sqrt(3)) as well as
the diffusion's real one (down to -2.51), so :func:`stable_dt` keeps every Fourier
mode's amplification at most 1, with or without diffusion.
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
    p.add_argument("--cfl", type=float, default=0.9,
                   help="fraction of the stable update used, in (0, 1] (default %(default)s)")


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
    """The largest update for which SSP-RK3 on this discretization amplifies no Fourier mode (unit cells).

    A mode's symbol is ``dt * sum_axes(-i a sin(theta) - 2 D (1 - cos(theta)))``: advection
    reaches ``|a|_1 dt`` up the imaginary axis (SSP-RK3 is stable to sqrt(3)), diffusion
    ``12 D dt`` along the negative real one (stable to 2.51); sharing the budget
    between the two, ``dt (|a|_1 / sqrt(3) + 12 D / 2.5) <= 1``, stays inside the region
    (checked against the symbol by the tests).
    """
    if not 0 < args.cfl <= 1:
        raise ValueError(f"--cfl must be in (0, 1], got {args.cfl}")
    if args.diffusion < 0:
        raise ValueError(f"--diffusion must be >= 0, got {args.diffusion}")
    rate = float(np.sum(np.abs(args.velocity))) / np.sqrt(3.0) + 12.0 * args.diffusion / 2.5
    return args.cfl / rate if rate > 0 else np.inf


def rhs(dec: CartDecomposition, c: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    """-div(a c) + D lap(c) on the owned samples, as differences of face fluxes (conservative)."""
    g = dec.ghosts
    n = dec.local_shape
    out = np.zeros(n)
    for axis in range(3):
        # the n + 1 faces along this axis that bound owned samples: face j lies between samples j-1 and j
        lo = [slice(g, g + m) for m in n]
        hi = list(lo)
        lo[axis] = slice(g - 1, g + n[axis])
        hi[axis] = slice(g, g + n[axis] + 1)
        # a (left + right) / 2 - D (right - left), in two products
        flux = (0.5 * args.velocity[axis] + args.diffusion) * c[tuple(lo)]
        flux += (0.5 * args.velocity[axis] - args.diffusion) * c[tuple(hi)]
        ends = [slice(None)] * 3
        ends[axis] = slice(1, None)
        first = tuple(ends)
        ends[axis] = slice(None, -1)
        out -= flux[first] - flux[tuple(ends)]
    return out


def init(dec: CartDecomposition, args: argparse.Namespace) -> dict:
    c = dec.allocate()
    dec.owned(c)[...] = exact(args, dec.shape, 0.0, dec.global_index())
    dec.exchange(c)
    return {"c": c, "time": 0.0}


def update(dec: CartDecomposition, s: dict, args: argparse.Namespace, dt: float) -> None:
    """One SSP-RK3 update (Shu-Osher form); each stage refills the ghosts for the next."""
    c = s["c"]
    own = dec.owned(c)
    c0 = own.copy()
    own[...] = c0 + dt * rhs(dec, c, args)
    dec.exchange(c)
    own[...] = 0.75 * c0 + 0.25 * (own + dt * rhs(dec, c, args))
    dec.exchange(c)
    own[...] = c0 / 3.0 + 2.0 / 3.0 * (own + dt * rhs(dec, c, args))
    dec.exchange(c)


def fields(dec: CartDecomposition, s: dict) -> dict[str, np.ndarray]:
    return {"temperature": s["c"]}


PROXY = Proxy("advection", "Advection-diffusion of hot spots in a periodic box (analytic solution), "
              "published with ghost layers", init, update, fields, stable_dt, default_grid=128, default_steps=40,
              default_step_time=1.5, add_options=add_options)

if __name__ == "__main__":
    sys.exit(main(PROXY))
