"""Orthogonal slices in radiological display convention, with millimetre extents.

Canonical arrays are RAS+: ``x`` grows towards the patient's right, ``y`` towards
anterior, ``z`` towards superior. Every view of breastlib (panels, browsers, the QC
picture) goes through :func:`orthogonal_slice` and so shows one convention, the
radiological one (book/conventions.md, "How slices are displayed"):

========  =================  ==================  =========
view      viewer's left      top                 seen from
========  =================  ==================  =========
axial     patient's right    anterior            the feet
coronal   patient's right    superior            the front
sagittal  anterior           superior            the patient's left
========  =================  ==================  =========

``breastlib.viz._plotly.ORIENTATION`` holds the matching edge letters.
"""

from __future__ import annotations

import numpy as np

VIEWS = ("axial", "coronal", "sagittal")
#: The array axis normal to each view (RAS+: x=0, y=1, z=2).
NORMAL_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}


def orthogonal_slice(
    array: np.ndarray, spacing: np.ndarray, view: str, index: int | None = None
) -> tuple[np.ndarray, list[float]]:
    """One display-ready 2-D slice and its ``imshow`` extent in mm.

    Parameters
    ----------
    array
        ``(X, Y, Z)`` canonical RAS+ volume.
    spacing
        ``(3,)`` voxel size in mm.
    view
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    index
        Slice index along the view's normal axis (centre when ``None``).

    Returns
    -------
    image : numpy.ndarray
        2-D array for ``imshow(image, origin="lower", extent=extent)``.
    extent : list of float
        ``[left, right, bottom, top]`` in mm, so anisotropic voxels keep their shape.
    """
    axis = NORMAL_AXIS[view]
    if index is None:
        index = array.shape[axis] // 2
    plane = np.take(array, index, axis=axis)
    rows_axis, cols_axis = [a for a in range(3) if a != axis][::-1]
    image = plane.T  # rows follow the higher axis (y for axial, z otherwise)
    # Reverse the columns: for axial/coronal views the patient's right (high x) then sits
    # on the viewer's left; for sagittal views anterior (high y) sits on the left.
    image = image[:, ::-1]
    width = array.shape[cols_axis] * spacing[cols_axis]
    height = array.shape[rows_axis] * spacing[rows_axis]
    return np.ascontiguousarray(image), [0.0, float(width), 0.0, float(height)]
