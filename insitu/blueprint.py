"""Read what one rank published (a Conduit Blueprint mesh) into :class:`PublishedBlock` s.

One adapter for both shapes of the same tree: a ``conduit.Node`` (what real
Ascent hands a Python extract: a list of domains, ``child(i)``,
``number_of_children()``, path access ``dom["fields/e/values"]``) and nested
dicts/lists of numpy arrays (what the embedded runtime publishes). A single
domain (a tree with ``coordsets``) counts as a list of one.

Only uniform coordsets are read; the ghost field ``ascent_ghosts`` (0 owned,
1 ghost, vertex or element associated) gives the owned box.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

GHOST_FIELD = "ascent_ghosts"
ASSOCIATIONS = {"vertex": "vertex", "element": "element"}


class BlueprintError(ValueError):
    """A published mesh that cannot be read; the message names the domain and what is wrong."""


# ---------------------------------------------------------------- tree access
class Tree:
    """Uniform read access to a conduit.Node or a dict/list tree."""

    def __init__(self, node: Any) -> None:
        self.node = node

    @property
    def is_conduit(self) -> bool:
        return hasattr(self.node, "number_of_children") and not isinstance(self.node, (dict, list))

    def has(self, path: str) -> bool:
        if self.is_conduit:
            return bool(self.node.has_path(path))
        cur = self.node
        for part in path.split("/"):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                return False
        return True

    def get(self, path: str, default: Any = None) -> Any:
        if not self.has(path):
            return default
        if self.is_conduit:
            value = self.node[path]
            return Tree(value) if hasattr(value, "number_of_children") else value
        cur = self.node
        for part in path.split("/"):
            cur = cur[part]
        return Tree(cur) if isinstance(cur, (dict, list)) else cur

    def names(self) -> list[str]:
        if self.is_conduit:
            return list(self.node.child_names())
        return list(self.node.keys()) if isinstance(self.node, dict) else []

    def children(self) -> list["Tree"]:
        if self.is_conduit:
            return [Tree(self.node.child(i)) for i in range(self.node.number_of_children())]
        if isinstance(self.node, dict):
            return [Tree(v) for v in self.node.values()]
        return [Tree(v) for v in self.node]


def domains(published: Any) -> list[Tree]:
    """The domains of what one rank published (a list, a named set, or one domain)."""
    root = Tree(published)
    if root.has("coordsets"):
        return [root]
    return [d for d in root.children() if d.has("coordsets")]


def _scalar(value: Any, default: Any = None) -> Any:
    if value is None:
        return default
    arr = np.asarray(value)
    return arr.reshape(-1)[0].item() if arr.size else default


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tobytes().decode().rstrip("\x00") if value.dtype.kind in "SU" else str(value)
    return str(value)


# ---------------------------------------------------------------- blocks
@dataclass
class PublishedBlock:
    """One field of one published domain on a uniform grid.

    ``values`` are in C order (z, y, x) like every array here; ``origin``, ``spacing`` and ``dims`` keep
    Blueprint's (x, y, z) order, as the coordset gives them (:meth:`global_start` is in (z, y, x)).
    """

    field: str
    values: np.ndarray
    ghost: np.ndarray | None
    origin: tuple[float, float, float]    # (x, y, z) of the first vertex
    spacing: tuple[float, float, float]   # (dx, dy, dz)
    dims: tuple[int, int, int]            # vertex counts (i, j, k) of the coordset
    association: str                      # "vertex" or "element"
    domain_id: int
    cycle: int
    time: float

    @property
    def owned_box(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """(z, y, x) start/stop of the owned samples (the whole block without ghosts)."""
        from inr.grid import owned_box

        return owned_box(self.ghost, self.values.shape)

    @property
    def owned_values(self) -> np.ndarray:
        from inr.grid import box_slices

        return self.values[box_slices(self.owned_box)]

    def global_start(self) -> tuple[int, int, int]:
        """(z, y, x) index of the first owned sample on the world lattice of this spacing.

        The lattice is anchored at world coordinate 0 with the block's spacing, so
        every rank computes it alone (no communication); replay shifts all extents
        by their minimum.
        """
        box = self.owned_box
        start = []
        for axis_zyx, (a, _) in enumerate(box):
            xyz = 2 - axis_zyx
            start.append(int(round(self.origin[xyz] / self.spacing[xyz])) + a if self.spacing[xyz] else a)
        return tuple(start)  # type: ignore[return-value]


def _uniform_geometry(dom: Tree, coordset: str, where: str) -> tuple[tuple[int, int, int], tuple, tuple]:
    cs = f"coordsets/{coordset}"
    ctype = _text(dom.get(f"{cs}/type", "?"))
    if ctype != "uniform":
        raise BlueprintError(f"{where}: coordset '{coordset}' is of type '{ctype}'; only 'uniform' coordsets are "
                             "supported (rectilinear and explicit ones are not)")
    dims = tuple(int(_scalar(dom.get(f"{cs}/dims/{a}"), 1)) for a in "ijk")
    if not dom.has(f"{cs}/dims/i"):
        raise BlueprintError(f"{where}: coordset '{coordset}' has no dims/i")
    origin = tuple(float(_scalar(dom.get(f"{cs}/origin/{a}"), 0.0)) for a in "xyz")
    spacing = tuple(float(_scalar(dom.get(f"{cs}/spacing/d{a}"), 1.0)) for a in "xyz")
    return dims, origin, spacing  # type: ignore[return-value]


def _shape(dims: tuple[int, int, int], association: str) -> tuple[int, int, int]:
    i, j, k = dims
    if association == "vertex":
        return (k, j, i)
    return (max(k - 1, 1), max(j - 1, 1), max(i - 1, 1))


def _field_array(dom: Tree, name: str, where: str) -> np.ndarray:
    values = dom.get(f"fields/{name}/values")
    if isinstance(values, Tree):
        comps = values.names()
        raise BlueprintError(f"{where}: field '{name}' has components {comps}; only scalar fields are supported")
    if values is None:
        raise BlueprintError(f"{where}: field '{name}' has no values")
    return np.asarray(values)


def _owned_mask(dom: Tree, association: str, shape: tuple[int, int, int], dims, where: str) -> np.ndarray | None:
    if not dom.has(f"fields/{GHOST_FIELD}/values"):
        return None
    gassoc = _text(dom.get(f"fields/{GHOST_FIELD}/association", "element"))
    gshape = _shape(dims, gassoc)
    g = _field_array(dom, GHOST_FIELD, where).reshape(-1)
    if g.size != int(np.prod(gshape)):
        raise BlueprintError(f"{where}: {GHOST_FIELD} has {g.size} values; a {gassoc} field here has {int(np.prod(gshape))}")
    g = (g.reshape(gshape) != 0).astype(np.uint8)
    if gassoc == association:
        return g
    from inr.grid import owned_box

    box = owned_box(g, gshape)
    mask = np.ones(shape, np.uint8)
    if gassoc == "element":  # field on vertices: owned vertices are the corners of owned cells
        sl = tuple(slice(a, min(b + 1, n)) for (a, b), n in zip(box, shape))
    else:  # field on cells: owned cells have all their vertices owned
        sl = tuple(slice(a, max(b - 1, a + 1)) for (a, b) in box)
    mask[sl] = 0
    return mask


def published_fields(published: Any) -> list[str]:
    """Names of the fields of the first domain (ghost field excluded)."""
    doms = domains(published)
    return [n for n in (doms[0].get("fields").names() if doms and doms[0].has("fields") else []) if n != GHOST_FIELD]


def blocks(published: Any, field: str) -> Iterator[PublishedBlock]:
    """One :class:`PublishedBlock` of ``field`` per domain published on this rank.

    Raises :class:`BlueprintError` naming the domain for anything unreadable,
    and listing the published fields when ``field`` is unknown.
    """
    for n, dom in enumerate(domains(published)):
        domain_id = int(_scalar(dom.get("state/domain_id"), n))
        where = f"domain {domain_id}"
        if not dom.has(f"fields/{field}"):
            names = [x for x in dom.get("fields").names() if x != GHOST_FIELD] if dom.has("fields") else []
            raise BlueprintError(f"{where}: unknown field '{field}'; published fields are {names}")
        association = _text(dom.get(f"fields/{field}/association", ""))
        if association not in ASSOCIATIONS:
            raise BlueprintError(f"{where}: field '{field}' has association '{association}'; "
                                 f"valid choices are {sorted(ASSOCIATIONS)}")
        topo = _text(dom.get(f"fields/{field}/topology", ""))
        if not dom.has(f"topologies/{topo}"):
            topos = dom.get("topologies").names() if dom.has("topologies") else []
            raise BlueprintError(f"{where}: field '{field}' names topology '{topo}'; topologies are {topos}")
        coordset = _text(dom.get(f"topologies/{topo}/coordset", ""))
        dims, origin, spacing = _uniform_geometry(dom, coordset, where)
        shape = _shape(dims, association)
        values = _field_array(dom, field, where).reshape(-1)
        if values.size != int(np.prod(shape)):
            raise BlueprintError(f"{where}: field '{field}' has {values.size} values; a {association} field on "
                                 f"dims {dims} has {int(np.prod(shape))}")
        yield PublishedBlock(
            field=field, values=values.reshape(shape), ghost=_owned_mask(dom, association, shape, dims, where),
            origin=origin, spacing=spacing, dims=dims, association=association, domain_id=domain_id,
            cycle=int(_scalar(dom.get("state/cycle"), 0)), time=float(_scalar(dom.get("state/time"), 0.0)),
        )


def uniform_domain(values: np.ndarray, *, field: str = "field", association: str = "vertex",
                   origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 1.0), ghost: np.ndarray | None = None,
                   cycle: int = 0, time: float = 0.0, domain_id: int = 0, extra_fields: dict | None = None) -> dict:
    """A Blueprint domain (dict tree) holding ``values`` (z, y, x) on a uniform grid.

    Used by the proxy simulations and tests to publish; ``ghost`` is a mask of
    the same shape as ``values`` (1 = ghost), published as ``ascent_ghosts``.
    """
    nz, ny, nx = values.shape
    dims = (nx, ny, nz) if association == "vertex" else (nx + 1, ny + 1, nz + 1)
    fields = {field: {"association": association, "topology": "topo", "values": np.ascontiguousarray(values).ravel()}}
    for name, arr in (extra_fields or {}).items():
        fields[name] = {"association": association, "topology": "topo", "values": np.ascontiguousarray(arr).ravel()}
    if ghost is not None:
        fields[GHOST_FIELD] = {"association": association, "topology": "topo",
                               "values": np.ascontiguousarray(ghost, dtype=np.int32).ravel()}
    return {
        "state": {"cycle": cycle, "time": time, "domain_id": domain_id},
        "coordsets": {"coords": {"type": "uniform", "dims": dict(zip("ijk", dims)),
                                 "origin": dict(zip("xyz", origin)), "spacing": dict(zip(("dx", "dy", "dz"), spacing))}},
        "topologies": {"topo": {"type": "uniform", "coordset": "coords"}},
        "fields": fields,
    }
