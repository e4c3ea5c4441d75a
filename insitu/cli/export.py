"""``insitu export CACHE --field F ...``: reconstructed global grids as files ParaView, VisIt or numpy open.

* ``--cycle C -o out.vti|out.npy``: one cycle, one file;
* ``--cycles SEL -o run.vtkhdf``: every selected cycle in one VTKHDF file (temporal ImageData, with each
  cycle's simulation time: ParaView shows a time slider);
* ``--cycles SEL -o run.pvd``: a ``.pvd`` collection of one ``.vti`` per cycle in the folder ``run/``.

A series skips a cycle with a domain that does not decode (one line each, exit status 1) and writes the
others; the size of the global grid is checked from the cache's metadata before anything is decoded.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from insitu.cli.command import CliError
from insitu.cli.common import open_cache, progress
from insitu.cli.replay import select
from insitu.filters.cycles import CYCLES_FORMS
from insitu.filters.export import EXPORT_PARAMS
from insitu.filters.params import FilterParamError
from insitu.render.series import Frame, pvd_folder, same_grid, series_times, write_pvd, write_vtkhdf
from insitu.render.vti import write_vti

#: the one-cycle suffixes (af.export's formats) and the time-series ones
FORMATS = tuple(f".{f}" for f in EXPORT_PARAMS["format"].choices)
SERIES = (".vtkhdf", ".pvd")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="write a field as VTK files (.vti, a .vtkhdf or .pvd time series) or .npy",
        description="Decode every domain of FIELD, place each by its extent and write the global grid: one cycle "
                    "as .vti (VTK ImageData, with origin and spacing) or .npy (float32, z, y, x); several cycles "
                    "as one .vtkhdf file (VTKHDF temporal ImageData: ParaView >= 5.12 opens it with a time slider) "
                    "or a .pvd collection of .vti files (in a folder named after it). Vertex fields become point "
                    "data, element fields cell data.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  insitu export run.cache --field e --cycle 40 -o e40.vti\n"
               "  insitu export run.cache --field e --cycles all -o run.vtkhdf\n"
               "  insitu export run.cache --field e --cycles 0:100:10 -o run.pvd   # run.pvd + run/e_*.vti")
    p.add_argument("cache", help="the cache directory")
    E = EXPORT_PARAMS  # the options that af.export has too take their help and checks from its declarations
    p.add_argument("--field", required=True, help=f"{E['field'].doc} (see `insitu info`)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--cycle", type=int, help="one cycle number (for .vti and .npy, which hold one cycle)")
    which.add_argument("--cycles", help=f"the cycles of a {' or '.join(SERIES)} series: {CYCLES_FORMS} "
                                        "(as `insitu replay --cycles`; default all)")
    p.add_argument("-o", "--output", required=True,
                   help=f"output file; its suffix is the format: {', '.join(FORMATS + SERIES)}")
    p.add_argument("--backend", default=E["backend"].default, help=E["backend"].help())
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in FORMATS + SERIES:
        raise CliError(f"output {str(out)!r}: unknown format {out.suffix or '(no extension)'!r}; use one of "
                       f"{', '.join(FORMATS + SERIES)}")
    if not out.parent.is_dir():
        raise CliError(f"output directory {str(out.parent)!r} does not exist")
    try:
        EXPORT_PARAMS["backend"].validate(args.backend, "export", "--backend")
    except FilterParamError as exc:
        raise CliError(str(exc)) from None
    if suffix in SERIES:
        return _series(args, out, suffix)
    if args.cycle is None:
        if args.cycles is None:
            raise CliError(f"{suffix} holds one cycle: give --cycle C (or write a {' or '.join(SERIES)} series)")
        with open_cache(args.cache) as reader:
            chosen = select(args.cycles, _cycles_of(reader, args.field))
        if len(chosen) != 1:
            raise CliError(f"--cycles {args.cycles} selects {len(chosen)} cycles but {suffix} holds one: choose one, "
                           f"or write a {' or '.join(SERIES)} series")
        args.cycle = chosen[0]
    return _one(args, out)


def _cycles_of(reader: Any, field: str) -> list[int]:
    """The cached cycles of ``field``; CliError listing the cached fields when it is not one."""
    fields = reader.fields()
    if field not in fields:
        raise CliError(f"unknown field {field!r}: the cache holds fields {sorted(fields)}")
    return reader.cycles(field)


def _one(args: argparse.Namespace, out: Path) -> int:
    from insitu.cache import CacheError
    from insitu.cache.grid import decode_grid

    with open_cache(args.cache) as reader:
        try:
            n = len(reader.domains(args.field, args.cycle))
            values, geo = decode_grid(reader, args.field, args.cycle, backend=args.backend,
                                      progress=lambda ds: progress(ds, "decode", total=n))
        except CacheError as exc:
            raise CliError(str(exc)) from None
    if out.suffix.lower() == ".npy":
        np.save(out, values)
    else:
        try:
            write_vti(out, values, args.field, geo)
        except OSError as exc:
            raise CliError(str(exc)) from None
    holes = int(np.isnan(values).sum())
    print(f"wrote {out}: field {args.field!r} cycle {args.cycle}, {n} domains, grid {values.shape} (z, y, x)"
          + (f", {holes} samples no domain covers (NaN)" if holes else ""))
    return 0


def _series(args: argparse.Namespace, out: Path, suffix: str) -> int:
    """Every selected cycle into one .vtkhdf file or a .pvd collection; damaged cycles skipped, one line each."""
    import shutil

    from insitu.cache import CacheError
    from insitu.cache.grid import cycle_figures
    from insitu.cache.meta import check_grid_size
    from insitu.cache.meta import human_bytes

    if suffix == ".pvd" and pvd_folder(out).exists() and not pvd_folder(out).is_dir():
        raise CliError(f"output {str(out)!r}: its .vti files go to the folder {str(pvd_folder(out))!r}, "
                       "which exists and is not a folder")
    skipped: list[int] = []
    with open_cache(args.cache) as reader:
        cycles = select(args.cycles or "all", _cycles_of(reader, args.field))
        try:  # everything the metadata tells, before any decode
            geos = [reader.geometry(args.field, c) for c in cycles]
            total = sum(check_grid_size(g.dims, f"field {args.field!r} cycle {c}") for c, g in zip(cycles, geos))
            times, note = series_times(cycles, [cycle_figures(reader, args.field, c).time for c in cycles])
        except CacheError as exc:
            raise CliError(str(exc)) from None
        if suffix == ".vtkhdf":
            other = next((c for c, g in zip(cycles, geos) if not same_grid(g, geos[0])), None)
            if other is not None:
                raise CliError(f"field {args.field!r}: cycle {other}'s grid {tuple(geos[cycles.index(other)].dims)} "
                               f"differs from cycle {cycles[0]}'s {tuple(geos[0].dims)}; one VTKHDF ImageData holds "
                               "one grid: export to .pvd, or choose cycles with one grid (--cycles)")
        free = shutil.disk_usage(out.parent).free
        if total > free:
            raise CliError(f"output {str(out)!r}: {len(cycles)} cycle(s) of field {args.field!r} take "
                           f"{human_bytes(total)} as float32 but only {human_bytes(free)} are free there")
        if note:
            print(f"insitu export: note: {note}", file=sys.stderr)
        writer = write_vtkhdf if suffix == ".vtkhdf" else write_pvd
        try:
            written = writer(out, args.field, _frames(reader, args, cycles, times, skipped))
        except (OSError, ValueError) as exc:
            raise CliError(f"output {str(out)!r}: {exc}") from None
    if not written:
        raise CliError(f"field {args.field!r}: none of the {len(cycles)} selected cycle(s) could be decoded; "
                       f"nothing written to {str(out)!r}")
    where = f"{out} (+ {pvd_folder(out)}/)" if suffix == ".pvd" else str(out)
    print(f"wrote {where}: field {args.field!r}, {len(written)} cycle(s) {written[0]}..{written[-1]}, grid "
          f"{tuple(geos[cycles.index(written[0])].dims)} (z, y, x)"
          + (f"; {len(skipped)} damaged cycle(s) skipped: {skipped[:10]}" if skipped else ""))
    return 1 if skipped else 0


def _frames(reader: Any, args: argparse.Namespace, cycles: list[int], times: list[float],
            skipped: list[int]) -> Iterator[Frame]:
    """The decoded frames, one at a time; a damaged cycle is reported on one line and appended to ``skipped``."""
    from insitu.cache.grid import CycleDamagedError, decode_grid

    for cycle, time in progress(list(zip(cycles, times)), f"export {args.field}", total=len(cycles)):
        try:
            values, geo = decode_grid(reader, args.field, cycle, backend=args.backend)
        except CycleDamagedError as exc:  # a grid with a hole would show wrong data as data: skip it
            print(f"insitu export: error: cycle {cycle} skipped: {exc}", file=sys.stderr)
            skipped.append(cycle)
            continue
        yield Frame(cycle, time, values, geo)
