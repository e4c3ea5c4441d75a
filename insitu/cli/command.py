"""The ``insitu`` command line.

Each subcommand lives in its own module and registers itself here through
``add_parser(subparsers)`` and ``run(args) -> int``. Bad input prints one clear
line on stderr and exits non-zero, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from insitu import __version__

#: modules providing subcommands (each has ``add_parser`` and ``run``).
_SUBCOMMANDS: list[str] = ["info", "verify", "export", "replay", "view"]


class CliError(Exception):
    """A user-facing error: printed as ``insitu: error: ...`` with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="insitu",
        description="insitu-inr: look at every timestep of a simulation through its neural temporal cache.",
    )
    parser.add_argument("--version", action="version", version=f"insitu-inr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in _SUBCOMMANDS:
        importlib.import_module(f"insitu.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except CliError as exc:
        print(f"insitu: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("insitu: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
