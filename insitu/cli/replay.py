"""``insitu replay CACHE --field F --cycles 0:100:10 -o frames/``: pictures of cached cycles, on any process count.

Run it alone or under ``mpiexec -n N python -m insitu.cli replay ...`` (or the
``insitu`` script under mpiexec): the domains of every cycle are shared out
over the processes, whatever number of ranks wrote the cache, and rank 0
writes the PNGs (or a Cinema database with ``--cinema``).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from insitu.cli.command import CliError
from insitu.cli.common import progress


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay", help="render cached cycles to PNG images or a Cinema database (works under mpiexec)",
        description="Reconstruct FIELD at the chosen cycles from the cache and render it (volume, pseudocolor "
                    "surface, slices or isosurfaces). Under `mpiexec -n N` the domains are shared out over the N processes "
                    "(any N, independent of the writer's); rank 0 writes the images.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  insitu replay run.cache --field v --cycles 0:100:10 -o frames/\n"
               "  mpiexec -n 4 insitu replay run.cache --field v --cycles last:20 --camera azimuth=30,elevation=20\n"
               "  insitu replay run.cache --field v --cycles last:1 --cinema 8x3 -o cinema/")
    p.add_argument("cache", help="the cache directory")
    p.add_argument("--field", help="field to render (default: the only cached field)")
    p.add_argument("--cycles", default="all",
                   help="'all' (default), 'last:N', one cycle, a list '3,7,9' or a range 'START:STOP[:STEP]' "
                        "(cached cycles with START <= c < STOP)")
    p.add_argument("--plot", default="volume", help="volume (default), pseudocolor, slice or isosurface")
    p.add_argument("--iso", type=float, nargs="+", metavar="VALUE",
                   help="iso values for --plot isosurface (default: the middle of the value range)")
    p.add_argument("--colormap", default="viridis", help="a matplotlib colormap name (default viridis)")
    p.add_argument("--opacity", help="opacity control points 'pos:alpha,...' over the value range, "
                                     "e.g. '0:0,0.5:0.1,1:0.8' (default 0:0,1:0.6)")
    p.add_argument("--range", nargs=2, type=float, metavar=("MIN", "MAX"),
                   help="value range of the colormap (default: the cached range of each cycle)")
    p.add_argument("--camera", default="", help="Ascent camera parameters 'azimuth=30,elevation=20,zoom=0.5,"
                                                "look_at=x;y;z,position=x;y;z,up=x;y;z,fov=30'")
    p.add_argument("--size", default="512x512", help="image size WIDTHxHEIGHT (default 512x512)")
    p.add_argument("--background", default="0,0,0", help="background colour r,g,b in [0, 1] (default black)")
    p.add_argument("--step", type=float, default=0.5, help="ray-marching step in cells (default 0.5)")
    p.add_argument("--cinema", metavar="PHIxTHETA", help="write a Cinema database over a ring of PHI x THETA views")
    p.add_argument("--db-name", help="Cinema database name (default: the field's name)")
    p.add_argument("--prefix", help="image name with a cycle format (default FIELD_%%06d)")
    p.add_argument("-o", "--output", default="frames", help="output folder (default frames/)")
    p.add_argument("--backend", default="auto", help="inr decode backend (auto, torch, native, tcnn)")
    p.set_defaults(run=run)


def select_cycles(spec: str, have: list[int]) -> list[int]:
    """Cycles chosen by ``spec`` among the cached ``have``; CliError showing the cached range otherwise."""
    span = f"{have[0]}..{have[-1]} ({len(have)} cycles)" if have else "none"
    try:
        if spec == "all":
            chosen = list(have)
        elif spec.startswith("last:"):
            n = int(spec[5:])
            if n < 1:
                raise ValueError
            chosen = have[-n:]
        elif ":" in spec:
            parts = [int(x) for x in spec.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] < 1):
                raise ValueError
            start, stop, step = parts[0], parts[1], parts[2] if len(parts) == 3 else 1
            chosen = [c for c in have if start <= c < stop and (c - start) % step == 0]
            if not chosen:
                raise CliError(f"--cycles {spec} selects no cached cycle; cached cycles: {span}")
        else:
            chosen = [int(x) for x in spec.split(",")]
            missing = [c for c in chosen if c not in set(have)]
            if missing:
                raise CliError(f"--cycles: cycle(s) {missing[:10]} are not cached; cached cycles: {span}")
    except ValueError:
        raise CliError(f"--cycles {spec!r} is invalid: use all, last:N, C, C1,C2,... or START:STOP[:STEP]") from None
    if not chosen:
        raise CliError(f"no cycles to render; cached cycles: {span}")
    return chosen


def _camera(text: str) -> dict:
    out: dict = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, val = item.partition("=")
        if not sep:
            raise CliError(f"--camera item {item!r} must be NAME=VALUE")
        try:
            out[key.strip()] = [float(v) for v in val.split(";")] if ";" in val else float(val)
        except ValueError:
            raise CliError(f"--camera {key}={val!r}: values are numbers (vectors as x;y;z)") from None
    return out


def _pairs(text: str | None, what: str) -> list[list[float]] | None:
    if text is None:
        return None
    try:
        return [[float(v) for v in item.split(":")] for item in text.split(",")]
    except ValueError:
        raise CliError(f"{what} {text!r} must look like '0:0,1:0.6'") from None


def run(args: argparse.Namespace) -> int:
    from mpi4py import MPI

    from insitu.cache import CacheError, CacheReader
    from insitu.render.cached import RenderSpec, render_cached

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    try:
        reader = CacheReader(args.cache, comm=comm)
    except CacheError as exc:
        raise CliError(str(exc)) from None
    fields = reader.fields()
    if not fields:
        raise CliError(f"{args.cache}: the cache holds no entries")
    field = args.field
    if field is None:
        if len(fields) > 1:
            raise CliError(f"the cache holds several fields {sorted(fields)}: choose one with --field")
        field = fields[0]
    if field not in fields:
        raise CliError(f"--field {field!r} is not in the cache; cached fields: {sorted(fields)}")
    cycles = select_cycles(args.cycles, reader.cycles(field))
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        bg = [float(v) for v in args.background.split(",")]
    except ValueError:
        raise CliError(f"--size {args.size!r} must be WIDTHxHEIGHT and --background r,g,b") from None
    spec = RenderSpec(plot=args.plot, colormap=args.colormap, opacity=_pairs(args.opacity, "--opacity"),
                      value_range=args.range, camera=_camera(args.camera), width=w, height=h, background=bg,
                      step=args.step, iso_values=args.iso)
    try:
        spec.check("replay")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    cinema = None
    if args.cinema:
        try:
            phi, theta = (int(v) for v in args.cinema.lower().split("x"))
        except ValueError:
            raise CliError(f"--cinema {args.cinema!r} must be PHIxTHETA, e.g. 8x3") from None
        if phi < 1 or theta < 1:
            raise CliError(f"--cinema {args.cinema!r}: both counts must be positive")
        cinema = (phi, theta, args.db_name or field)
    bar = (lambda it: progress(it, desc=f"replay {field}", total=len(cycles))) if rank == 0 else None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = render_cached(reader, field, cycles, spec, comm, output_dir=args.output, image_prefix=args.prefix,
                            cinema=cinema, decode_backend=args.backend, progress=bar)
    reader.close()
    errors = comm.gather(res.errors, root=0)
    if rank == 0:
        for msg in sorted({str(w.message) for w in seen}):
            print(f"insitu replay: warning: {msg}", file=sys.stderr)
        problems = [e for part in errors for e in part]
        for e in problems:
            print(f"insitu replay: error: {e}", file=sys.stderr)
        where = f"{args.output}/{cinema[2]}.cdb" if cinema else args.output
        print(f"replay: {len(res.written)} image(s) of {field!r} ({len(cycles)} cycle(s)) on "
              f"{comm.Get_size()} process(es) -> {where}")
        return 1 if problems else 0
    return 0
