"""insitu: Blueprint adapter, temporal cache, embedded runtime, rendering and the `insitu` CLI."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xarray

__version__ = "0.1.0"


def open(path: str | os.PathLike, **kwargs: Any) -> "xarray.Dataset":
    """Open the cache at ``path`` as an :class:`xarray.Dataset`, decoded lazily one cycle at a time.

    The same as ``xarray.open_dataset(path, engine="insitu", **kwargs)`` (the backend in
    :mod:`insitu.xarray_backend`; needs ``pip install insitu-inr[xarray]``): one variable per
    field, dims ``(cycle, z, y, x)``, coordinates ``time``, ``x``/``y``/``z`` and per field
    ``psnr_<field>`` and ``ratio_<field>``. Options: ``fields=[...]`` (a subset),
    ``decode_backend="native"|"torch"|...``.

    Example::

        >>> import insitu
        >>> ds = insitu.open("demo_run/run.cache")      # the demo's cache (scripts/demo.sh)
        >>> t = ds["temperature"].isel(cycle=-1)      # nothing decoded yet
        >>> t.sel(z=0.5, method="nearest").plot()     # decodes the latest cycle only
        >>> ds["psnr_temperature"].to_series()        # quality per cycle, from the index
    """
    try:
        import xarray
    except ImportError:
        raise ImportError("insitu.open needs xarray: pip install 'insitu-inr[xarray]'") from None
    from insitu.xarray_backend import InsituBackendEntrypoint

    return xarray.open_dataset(os.fspath(path), engine=InsituBackendEntrypoint, **kwargs)
