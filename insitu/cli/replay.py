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
from insitu.filters.cycles import CyclesError, select_cycles
from insitu.filters.params import FilterParamError
from insitu.filters.render import RENDER_PARAMS, RenderParams
from insitu.render.transfer import DEFAULT_OPACITY


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
    R = RENDER_PARAMS  # the options that af.render has too take their help and checks from its declarations
    p.add_argument("cache", help="the cache directory")
    p.add_argument("--field", help=R["field"].help(default="the only cached field"))
    p.add_argument("--cycles", default="all", help=R["cycles"].help(default="all"))
    p.add_argument("--plot", default=R["plot"].default, help=R["plot"].help())
    p.add_argument("--iso", type=float, nargs="+", metavar="VALUE",
                   help=R["iso_values"].help(default="the middle of the value range"))
    p.add_argument("--colormap", default=R["colormap"].default, help=R["colormap"].help())
    p.add_argument("--opacity", help=R["opacity"].help(syntax="written 'pos:alpha,...', e.g. '0:0,0.5:0.1,1:0.8'",
                                                       default=_opacity_text(DEFAULT_OPACITY)))
    p.add_argument("--range", nargs=2, type=float, metavar=("MIN", "MAX"), help=R["value_range"].help())
    p.add_argument("--camera", default="", help=R["camera"].help(
        syntax="written 'azimuth=30,elevation=20,zoom=0.5,look_at=x;y;z,position=x;y;z,up=x;y;z,fov=30'"))
    p.add_argument("--size", default=f"{R['width'].default}x{R['height'].default}",
                   help=f"image size WIDTHxHEIGHT in pixels (af.render's width and height; default "
                        f"{R['width'].default}x{R['height'].default})")
    background = ",".join(f"{v:g}" for v in R["background"].default)
    p.add_argument("--background", default=background, help=R["background"].help(syntax="written r,g,b",
                                                                                  default=f"{background} (black)"))
    p.add_argument("--step", type=float, default=R["step"].default, help=R["step"].help())
    p.add_argument("--no-annotations", dest="annotations", action="store_false",
                   help="bare pictures: no colour bar, cycle and time, or outline (af.render's annotations=False)")
    p.add_argument("--cinema", metavar="PHIxTHETA", help="write a Cinema database over a ring of PHI x THETA views "
                                                         "instead of images (af.render's cinema)")
    p.add_argument("--db-name", help="Cinema database name (default: the field's name)")
    p.add_argument("--prefix", help=R["image_prefix"].help())
    p.add_argument("-o", "--output", default="frames", help=R["output_dir"].help(default="frames/"))
    p.add_argument("--backend", default=R["backend"].default, help=R["backend"].help())
    p.set_defaults(run=run)


def select(spec: str, have: list[int]) -> list[int]:
    """Cycles chosen by ``--cycles spec`` among the cached ``have`` (the grammar of :mod:`insitu.filters.cycles`);
    CliError showing the cached range otherwise."""
    try:
        chosen = select_cycles(spec, have, label=f"--cycles {spec}")
    except CyclesError as exc:
        raise CliError(str(exc)) from None
    if not chosen:
        span = f"{have[0]}..{have[-1]} ({len(have)} cycles)" if have else "none"
        raise CliError(f"no cycles to render; cached cycles: {span}")
    return chosen


def _opacity_text(points: Any) -> str:
    return ",".join(f"{p:g}:{a:g}" for p, a in points)


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
    from insitu.render.cached import render_cached

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
    cycles = select(args.cycles, reader.cycles(field))
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        bg = [float(v) for v in args.background.split(",")]
    except ValueError:
        raise CliError(f"--size {args.size!r} must be WIDTHxHEIGHT and --background r,g,b") from None
    cinema = None
    if args.cinema:
        try:
            phi, theta = (int(v) for v in args.cinema.lower().split("x"))
        except ValueError:
            raise CliError(f"--cinema {args.cinema!r} must be PHIxTHETA, e.g. 8x3") from None
        if phi < 1 or theta < 1:
            raise CliError(f"--cinema {args.cinema!r}: both counts must be positive")
        cinema = {"phi": phi, "theta": theta, "db_name": args.db_name or field}
    try:  # the checks of af.render, under this command's name
        params = RenderParams.from_kwargs(
            dict(field=field, cycles=args.cycles, cache=args.cache, output_dir=args.output, image_prefix=args.prefix,
                 plot=args.plot, colormap=args.colormap, opacity=_pairs(args.opacity, "--opacity"),
                 value_range=args.range, camera=_camera(args.camera), width=w, height=h, background=bg,
                 step=args.step, iso_values=args.iso, cinema=cinema, backend=args.backend,
                 annotations=args.annotations), action="replay")
    except FilterParamError as exc:
        raise CliError(str(exc)) from None
    spec, cinema_views = params.spec(), params.cinema_views()
    bar = (lambda it: progress(it, desc=f"replay {field}", total=len(cycles))) if rank == 0 else None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = render_cached(reader, field, cycles, spec, comm, output_dir=params.output_dir,
                            image_prefix=params.image_prefix, cinema=cinema_views, decode_backend=params.backend,
                            progress=bar)
    reader.close()
    errors = comm.gather(res.errors, root=0)
    if rank == 0:
        for msg in sorted({str(w.message) for w in seen}):
            print(f"insitu replay: warning: {msg}", file=sys.stderr)
        problems = [e for part in errors for e in part]
        for e in problems:
            print(f"insitu replay: error: {e}", file=sys.stderr)
        where = f"{args.output}/{cinema_views[2]}.cdb" if cinema_views else args.output
        print(f"replay: {len(res.written)} image(s) of {field!r} ({len(cycles)} cycle(s)) on "
              f"{comm.Get_size()} process(es) -> {where}"
              + (f"; {len(res.skipped)} damaged cycle(s) skipped: {res.skipped[:10]}" if res.skipped else ""))
        return 1 if problems else 0
    return 0
