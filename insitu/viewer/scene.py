"""The viewer's VTK scenes, rendered server-side offscreen: the volume view and the slice view.

Colours and opacity come from :class:`insitu.render.transfer.TransferFunction`
(the renderer's own lookup table), copied into VTK's colour/opacity transfer
functions, so the viewer and ``insitu replay`` agree on what a colormap and an
opacity ramp mean. Opacity is per unit length with one cell as the unit, as in
the renderer.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from insitu.render.transfer import TransferFunction

from insitu.viewer.data import Decoded

#: the views' background (the tests look for pixels that differ from it)
BACKGROUND = (0.09, 0.09, 0.11)
AXES = ("x", "y", "z")


def prefer_offscreen() -> None:
    """Pick a display-less OpenGL window (EGL) when there is no X display, before VTK makes a window.

    VTK's wheels otherwise try X first and print a warning on every start-up
    on a headless node before falling back.
    """
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def to_vtk_image(grid: Decoded) -> Any:
    """vtkImageData (point scalars ``values``) of a decoded grid; element data sits at cell centres.

    NaN (no block covers) becomes the grid's minimum, which the opacity ramp
    can make transparent; VTK's volume mappers have no NaN opacity.
    """
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData

    values = grid.values
    if not np.isfinite(values).all():
        values = np.where(np.isfinite(values), values, np.float32(grid.value_range[0]))
    geo = grid.geometry
    origin = np.asarray(geo.origin, dtype=float)
    if geo.association == "element":
        origin = origin + 0.5 * np.asarray(geo.spacing)
    img = vtkImageData()
    img.SetDimensions(*reversed(values.shape))  # numpy (z, y, x) C order is VTK's x-fastest order
    img.SetOrigin(*reversed(origin.tolist()))
    img.SetSpacing(*reversed(list(geo.spacing)))
    arr = numpy_to_vtk(np.ascontiguousarray(values, dtype=np.float32).ravel(), deep=True)
    arr.SetName("values")
    img.GetPointData().SetScalars(arr)
    return img


def transfer_function(colormap: str, opacity_range: tuple[float, float], max_opacity: float,
                      value_range: tuple[float, float]) -> TransferFunction:
    """The renderer's TransferFunction: transparent below ``opacity_range[0]``, ramping to ``max_opacity``.

    ``opacity_range`` is in [0, 1] of ``value_range``.
    """
    lo, hi = sorted(float(np.clip(v, 0.0, 1.0)) for v in opacity_range)
    a = float(np.clip(max_opacity, 0.0, 1.0))
    return TransferFunction(colormap, opacity=[(0.0, 0.0), (lo, 0.0), (hi, a), (1.0, a)], value_range=value_range)


def fill_vtk_transfer(tf: TransferFunction, ctf: Any, pwf: Any, n: int = 128) -> None:
    """Copy ``tf``'s lookup table (``n`` samples over its value range) into VTK's colour and opacity functions."""
    lo, hi = tf.value_range or (0.0, 1.0)
    lut = tf.lut(n)
    ctf.RemoveAllPoints()
    pwf.RemoveAllPoints()
    for i, (r, g, b, a) in enumerate(lut):
        x = lo + (hi - lo) * i / (n - 1)
        ctf.AddRGBPoint(x, float(r), float(g), float(b))
        pwf.AddPoint(x, float(a))


def _lookup_table(tf: TransferFunction, n: int = 256) -> Any:
    from vtkmodules.vtkCommonCore import vtkLookupTable

    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(n)
    lut.SetRange(*(tf.value_range or (0.0, 1.0)))
    for i, (r, g, b, _) in enumerate(tf.lut(n)):
        lut.SetTableValue(i, float(r), float(g), float(b), 1.0)  # slices are opaque: colour only
    lut.Build()
    return lut


def _window(width: int = 480, height: int = 400) -> tuple[Any, Any]:
    import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  (registers the OpenGL volume mappers)
    from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow, vtkRenderWindowInteractor

    ren = vtkRenderer()
    ren.SetBackground(*BACKGROUND)
    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(width, height)
    win.AddRenderer(ren)
    # trame's remote view drives the camera through an interactor, never starting its event loop
    iren = vtkRenderWindowInteractor()
    iren.SetRenderWindow(win)
    iren.SetInteractorStyle(vtkInteractorStyleTrackballCamera())
    iren.EnableRenderOff()
    return ren, win


def volume_mode(window: Any) -> str:
    """``"gpu"`` or ``"cpu"`` ray casting: $INSITU_VIEW_VOLUME when set, else CPU on a software OpenGL.

    On Mesa's llvmpipe (no GPU) VTK's CPU ray caster is 3-5x faster than its
    GPU ray caster run in software; with a real GPU the GPU one wins.
    """
    mode = os.environ.get("INSITU_VIEW_VOLUME", "").strip().lower()
    if mode in ("gpu", "cpu"):
        return mode
    window.Render()  # creates the context, so that the capabilities can be read
    caps = (window.ReportCapabilities() or "").lower()
    return "cpu" if any(s in caps for s in ("llvmpipe", "softpipe", "swrast", "software rasterizer")) else "gpu"


class VolumeScene:
    """Volume rendering of the current grid, with the data's outline for context."""

    def __init__(self) -> None:
        from vtkmodules.vtkFiltersModeling import vtkOutlineFilter
        from vtkmodules.vtkRenderingCore import (vtkActor, vtkColorTransferFunction, vtkPolyDataMapper, vtkVolume,
                                                 vtkVolumeProperty)
        from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
        from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

        self.renderer, self.window = _window()
        self.ctf = vtkColorTransferFunction()
        self.pwf = vtkPiecewiseFunction()
        self.prop = vtkVolumeProperty()
        self.prop.SetColor(self.ctf)
        self.prop.SetScalarOpacity(self.pwf)
        self.prop.SetInterpolationTypeToLinear()
        self.prop.ShadeOff()
        self.mapper = vtkSmartVolumeMapper()
        if volume_mode(self.window) == "cpu":
            self.mapper.SetRequestedRenderModeToRayCast()
        self.volume = vtkVolume()
        self.volume.SetMapper(self.mapper)
        self.volume.SetProperty(self.prop)
        self.outline = vtkOutlineFilter()
        om = vtkPolyDataMapper()
        om.SetInputConnection(self.outline.GetOutputPort())
        self.outline_actor = vtkActor()
        self.outline_actor.SetMapper(om)
        self.outline_actor.GetProperty().SetColor(0.7, 0.7, 0.7)
        self._bounds: tuple | None = None

    def show(self, image: Any | None, tf: TransferFunction) -> None:
        """Draw ``image`` (None: nothing, e.g. an unavailable cycle) with ``tf``; the camera resets on new bounds."""
        if image is None:
            self.renderer.RemoveAllViewProps()
            self._bounds = None
            return
        self.mapper.SetInputData(image)
        self.outline.SetInputData(image)
        self.prop.SetScalarOpacityUnitDistance(min(image.GetSpacing()))  # one cell, as the renderer
        self.set_transfer(tf)
        if not self.renderer.GetViewProps().GetNumberOfItems():
            self.renderer.AddVolume(self.volume)
            self.renderer.AddActor(self.outline_actor)
        bounds = tuple(round(b, 9) for b in image.GetBounds())
        if bounds != self._bounds:  # keep the user's camera while scrubbing through same-shaped cycles
            self._bounds = bounds
            self.renderer.ResetCamera()
            cam = self.renderer.GetActiveCamera()
            cam.Azimuth(30)
            cam.Elevation(20)
            self.renderer.ResetCamera()

    def set_transfer(self, tf: TransferFunction) -> None:
        fill_vtk_transfer(tf, self.ctf, self.pwf)

    def reset_camera(self) -> None:
        self._bounds = None


class SliceScene:
    """An axis-aligned slice of the current grid, coloured by the colormap (opaque)."""

    def __init__(self) -> None:
        from vtkmodules.vtkImagingCore import vtkImageMapToColors
        from vtkmodules.vtkRenderingCore import vtkImageActor

        self.renderer, self.window = _window(480, 400)
        self.colors = vtkImageMapToColors()
        self.colors.SetOutputFormatToRGB()
        self.actor = vtkImageActor()
        self.actor.GetMapper().SetInputConnection(self.colors.GetOutputPort())
        self._key: tuple | None = None

    def show(self, grid: Decoded | None, axis: str, position: float, tf: TransferFunction) -> None:
        """Draw the slice of ``grid`` normal to ``axis`` at ``position`` in [0, 1] of that axis."""
        from vtkmodules.util.numpy_support import numpy_to_vtk
        from vtkmodules.vtkCommonDataModel import vtkImageData

        if grid is None:
            self.renderer.RemoveAllViewProps()
            self._key = None
            return
        a = AXES.index(axis)  # x, y, z -> numpy axis 2, 1, 0
        np_axis = 2 - a
        n = grid.values.shape[np_axis]
        k = int(round(float(np.clip(position, 0.0, 1.0)) * (n - 1)))
        plane = np.take(grid.values, k, axis=np_axis)  # 2D, (rows, cols) in the remaining (z, y, x) order
        plane = np.where(np.isfinite(plane), plane, np.float32(grid.value_range[0]))
        spacing = [h for i, h in enumerate(grid.geometry.spacing) if i != np_axis]
        img = vtkImageData()
        img.SetDimensions(plane.shape[1], plane.shape[0], 1)  # columns along the view's x, rows along y
        img.SetSpacing(spacing[1], spacing[0], 1.0)
        arr = numpy_to_vtk(np.ascontiguousarray(plane, dtype=np.float32).ravel(), deep=True)
        arr.SetName("values")
        img.GetPointData().SetScalars(arr)
        self.colors.SetInputData(img)
        self.colors.SetLookupTable(_lookup_table(tf))
        self.colors.Update()
        if not self.renderer.GetViewProps().GetNumberOfItems():
            self.renderer.AddActor(self.actor)
        key = (axis, plane.shape)
        if key != self._key:
            self._key = key
            cam = self.renderer.GetActiveCamera()
            cam.ParallelProjectionOn()
            cam.SetPosition(0, 0, 1)
            cam.SetFocalPoint(0, 0, 0)
            cam.SetViewUp(0, 1, 0)
            self.renderer.ResetCamera()

    def set_transfer(self, tf: TransferFunction) -> None:
        self.colors.SetLookupTable(_lookup_table(tf))
        if self.colors.GetInput() is not None:
            self.colors.Update()

    @staticmethod
    def index_of(grid: Decoded, axis: str, position: float) -> int:
        """The slice index ``position`` selects along ``axis`` (shown next to the slider)."""
        n = grid.values.shape[2 - AXES.index(axis)]
        return int(round(float(np.clip(position, 0.0, 1.0)) * (n - 1)))
