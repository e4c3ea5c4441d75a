"""A perspective camera with Ascent's parameters (look_at, position, up, fov, zoom, azimuth, elevation).

World coordinates are (x, y, z). The default view, as Ascent's, looks at the
centre of the data's bounds from the +z side, far enough that the bounding
sphere fits the field of view; ``azimuth`` then turns the camera about the
up vector and ``elevation`` about its right vector (degrees), and ``zoom``
magnifies by ``4**zoom`` (narrower field of view; 0 = no zoom).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: Ascent camera parameters this renderer understands, with what they mean.
CAMERA_PARAMS = {
    "look_at": "[x, y, z] the point the camera looks at (default: centre of the data)",
    "position": "[x, y, z] where the camera is (default: on the +z side, the whole data in view)",
    "up": "[x, y, z] view-up direction (default [0, 1, 0])",
    "fov": "vertical field of view in degrees (default 30)",
    "zoom": "magnification 4**zoom (default 0)",
    "azimuth": "degrees to turn the camera about the up vector (default 0)",
    "elevation": "degrees to turn the camera about its right vector (default 0)",
}


class CameraError(ValueError):
    """Bad camera parameters (the message names the parameter and the valid ones)."""


def check_params(params: Any) -> dict:
    """``params`` as a dict when it is a mapping of :data:`CAMERA_PARAMS` names; CameraError otherwise."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise CameraError(f"camera={params!r} must be a mapping of {sorted(CAMERA_PARAMS)}")
    unknown = sorted(set(params) - set(CAMERA_PARAMS))
    if unknown:
        raise CameraError(f"camera: unknown parameter(s) {unknown}: valid ones are {sorted(CAMERA_PARAMS)}")
    return dict(params)


def _vec(name: str, value: Any) -> np.ndarray:
    try:
        v = np.asarray([float(x) for x in value], dtype=np.float64)
    except (TypeError, ValueError):
        raise CameraError(f"camera: {name}={value!r} must be three numbers [x, y, z]") from None
    if v.shape != (3,) or not np.isfinite(v).all():
        raise CameraError(f"camera: {name}={value!r} must be three finite numbers [x, y, z]")
    return v


def _rotate(v: np.ndarray, axis: np.ndarray, degrees: float) -> np.ndarray:
    """``v`` turned about the unit ``axis`` (Rodrigues)."""
    a = math.radians(degrees)
    return v * math.cos(a) + np.cross(axis, v) * math.sin(a) + axis * np.dot(axis, v) * (1 - math.cos(a))


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n == 0.0 or not math.isfinite(n):
        raise CameraError(f"camera: {what} is degenerate (zero length)")
    return v / n


@dataclass(frozen=True)
class Camera:
    """Eye ``position`` looking at ``look_at``; ``width`` x ``height`` pixels, vertical ``fov`` in degrees."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    fov: float = 30.0
    width: int = 512
    height: int = 512

    def __post_init__(self) -> None:
        if not (0.0 < float(self.fov) < 180.0):
            raise CameraError(f"camera: fov={self.fov!r} must be between 0 and 180 degrees")
        if int(self.width) < 1 or int(self.height) < 1:
            raise CameraError(f"camera: image size {self.width}x{self.height} must be positive")
        self.basis()  # validates: eye != look_at, up not along the view

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit (forward, right, up) vectors of the view."""
        fwd = _unit(np.subtract(self.look_at, self.position, dtype=np.float64), "position == look_at")
        right = _unit(np.cross(fwd, np.asarray(self.up, dtype=np.float64)), "up is parallel to the view direction")
        return fwd, right, np.cross(right, fwd)

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """The eye (3,) and unit ray directions (height, width, 3), row 0 at the top of the image."""
        fwd, right, up = self.basis()
        tan = math.tan(math.radians(self.fov) / 2)
        aspect = self.width / self.height
        xs = (2 * (np.arange(self.width) + 0.5) / self.width - 1) * tan * aspect
        ys = (1 - 2 * (np.arange(self.height) + 0.5) / self.height) * tan
        d = fwd[None, None, :] + xs[None, :, None] * right[None, None, :] + ys[:, None, None] * up[None, None, :]
        d /= np.linalg.norm(d, axis=2, keepdims=True)
        return np.asarray(self.position, dtype=np.float64), d

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) pixel coordinates (column, row) of world points (N, 3) in front of the camera."""
        fwd, right, up = self.basis()
        rel = np.asarray(points, dtype=np.float64) - np.asarray(self.position)
        z = rel @ fwd
        tan = math.tan(math.radians(self.fov) / 2)
        x = (rel @ right) / z / (tan * self.width / self.height)
        y = (rel @ up) / z / tan
        return np.stack([(x + 1) * self.width / 2 - 0.5, (1 - y) * self.height / 2 - 0.5], axis=1)

    @classmethod
    def from_params(cls, params: dict | None, bounds: tuple[Sequence[float], Sequence[float]],
                    width: int = 512, height: int = 512) -> "Camera":
        """A camera from Ascent-style ``params`` (see :data:`CAMERA_PARAMS`) around world ``bounds`` (lo, hi)."""
        params = check_params(params)
        lo, hi = np.asarray(bounds[0], dtype=np.float64), np.asarray(bounds[1], dtype=np.float64)
        centre = (lo + hi) / 2
        radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-12)
        fov = float(params.get("fov", 30.0))
        look_at = _vec("look_at", params["look_at"]) if "look_at" in params else centre
        up = _unit(_vec("up", params["up"]), "up") if "up" in params else np.array([0.0, 1.0, 0.0])
        if "position" in params:
            offset = _vec("position", params["position"]) - look_at
        else:
            if not (0.0 < fov < 180.0):
                raise CameraError(f"camera: fov={fov!r} must be between 0 and 180 degrees")
            dist = radius / math.sin(math.radians(fov) / 2)
            offset = np.array([0.0, 0.0, dist])
        for name in ("azimuth", "elevation", "zoom"):
            if name in params and not isinstance(params[name], (int, float)) or \
                    (name in params and not math.isfinite(float(params[name]))):
                raise CameraError(f"camera: {name}={params[name]!r} must be a number")
        az, el = float(params.get("azimuth", 0.0)), float(params.get("elevation", 0.0))
        if az:
            offset = _rotate(offset, up, az)
        if el:
            right = _unit(np.cross(-offset, up), "up is parallel to the view direction")
            offset, up = _rotate(offset, right, -el), _rotate(up, right, -el)
        zoom = float(params.get("zoom", 0.0))
        if zoom:
            fov = math.degrees(2 * math.atan(math.tan(math.radians(fov) / 2) / 4.0 ** zoom))
        return cls(tuple(look_at + offset), tuple(look_at), tuple(up), fov, int(width), int(height))  # type: ignore[arg-type]

    def orbit(self, azimuth: float, elevation: float) -> "Camera":
        """This camera turned about its look-at point (for Cinema rings of views)."""
        offset = np.subtract(self.position, self.look_at, dtype=np.float64)
        up = np.asarray(self.up, dtype=np.float64)
        if azimuth:
            offset = _rotate(offset, _unit(up, "up"), azimuth)
        if elevation:
            right = _unit(np.cross(-offset, up), "up is parallel to the view direction")
            offset, up = _rotate(offset, right, -elevation), _rotate(up, right, -elevation)
        return Camera(tuple(np.asarray(self.look_at) + offset), self.look_at, tuple(up), self.fov,  # type: ignore[arg-type]
                      self.width, self.height)
