"""``insitu export CACHE --field F --cycle C -o out.vti|out.npy``: the reconstructed global field."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from insitu.cli.command import CliError
from insitu.cli.common import open_cache, progress
from insitu.filters.export import EXPORT_PARAMS
from insitu.filters.params import FilterParamError
from insitu.render.vti import write_vti

#: the output suffixes: af.export's formats
FORMATS = tuple(f".{f}" for f in EXPORT_PARAMS["format"].choices)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="write one field at one cycle as VTK ImageData (.vti) or .npy",
                              description="Decode every domain of FIELD at CYCLE, place each by its extent and "
                                          "write the global grid: .vti (VTK ImageData, opens in ParaView, with "
                                          "origin and spacing) or .npy (float32, z, y, x).")
    p.add_argument("cache", help="the cache directory")
    E = EXPORT_PARAMS  # the options that af.export has too take their help and checks from its declarations
    p.add_argument("--field", required=True, help=f"{E['field'].doc} (see `insitu info`)")
    p.add_argument("--cycle", required=True, type=int, help="cycle number (one cycle: the output is one file)")
    p.add_argument("-o", "--output", required=True,
                   help=f"output file; its suffix is the {E['format'].doc}: {', '.join(FORMATS)}")
    p.add_argument("--backend", default=E["backend"].default, help=E["backend"].help())
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from insitu.cache import CacheError

    out = Path(args.output)
    if out.suffix.lower() not in FORMATS:
        raise CliError(f"output {str(out)!r}: unknown format {out.suffix or '(no extension)'!r}; use one of "
                       f"{', '.join(FORMATS)}")
    if not out.parent.is_dir():
        raise CliError(f"output directory {str(out.parent)!r} does not exist")
    try:
        EXPORT_PARAMS["backend"].validate(args.backend, "export", "--backend")
    except FilterParamError as exc:
        raise CliError(str(exc)) from None
    reader = open_cache(args.cache)
    with reader:
        try:
            n = len(reader.domains(args.field, args.cycle))
            geo = reader.geometry(args.field, args.cycle)
            values = reader.reconstruct(args.field, args.cycle, backend=args.backend,
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
