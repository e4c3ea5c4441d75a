"""Entry points called from Ascent's Python extract (and the embedded runtime).

Each filter parses its keyword arguments and delegates to :mod:`insitu`; they
arrive with the Ascent-integration work.
"""
from __future__ import annotations
