"""The browser viewer of a temporal cache (``insitu view CACHE``): trame + VTK offscreen rendering.

* :mod:`.data`: the cache's contents, per-cycle figures, decoded grids (LRU + background prefetch);
* :mod:`.scene`: VTK volume and slice scenes, coloured through the renderer's transfer functions;
* :mod:`.plots`: the PSNR / ratio per cycle plot;
* :mod:`.app`: the trame application; :mod:`insitu.cli.view` the subcommand;
* :mod:`.sample`: a small demo cache (tests, benchmark, docs).

Importing this package needs neither trame nor VTK; only :mod:`.app` and :mod:`.scene` do.
"""
from __future__ import annotations

from insitu.viewer.data import CacheView, CycleInfo, CycleUnavailable, Decoded

__all__ = ["CacheView", "CycleInfo", "CycleUnavailable", "Decoded"]
