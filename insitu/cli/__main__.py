"""``python -m insitu.cli ...``: the same as ``insitu ...``."""
import sys

from insitu.cli.command import main

sys.exit(main())
