"""VTK ImageData files (.vti) of decoded grids, for ParaView and VisIt."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_vti(path: Path, values: np.ndarray, name: str, geo: Any) -> None:
    """``values`` (z, y, x) as VTK ImageData: point data for vertex fields, cell data for element fields."""
    import vtk
    from vtk.util import numpy_support

    nz, ny, nx = values.shape
    img = vtk.vtkImageData()
    extra = 1 if geo.association == "element" else 0
    img.SetDimensions(nx + extra, ny + extra, nz + extra)
    img.SetOrigin(*reversed(geo.origin))
    img.SetSpacing(*reversed(geo.spacing))
    arr = numpy_support.numpy_to_vtk(np.ascontiguousarray(values, dtype=np.float32).ravel(), deep=True)
    arr.SetName(name)
    data = img.GetCellData() if extra else img.GetPointData()
    data.AddArray(arr)
    data.SetActiveScalars(name)
    writer = vtk.vtkXMLImageDataWriter()
    writer.SetFileName(str(path))
    writer.SetInputData(img)
    if writer.Write() != 1:
        raise OSError(f"could not write {path} (VTK writer failed)")
