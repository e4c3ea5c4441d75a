"""insitu: Blueprint adapter, temporal cache, embedded runtime, rendering and the `insitu` CLI."""
from __future__ import annotations

__version__ = "0.1.0"
