"""The ``insitu`` command line: :mod:`.command` parses and dispatches, one module per subcommand
(:mod:`.info`, :mod:`.verify`, :mod:`.export`, :mod:`.replay`, :mod:`.view`), :mod:`.common` their shared
helpers."""
from insitu.cli.command import CliError, build_parser, main

__all__ = ["CliError", "build_parser", "main"]
