"""A sample's place in the patient's space, from the index's geometry columns, as the NIfTI
export writes it: spacing, origin and direction of a single-slice 3D image.

Conventions: ITK (and so SimpleITK and NIfTI as ITK writes it) uses LPS patient coordinates, as
DICOM does, so the DICOM vectors go in unchanged. A single-slice image of the stored array
``(H, W)`` is the ITK image of size ``(W, H, 1)``: ITK axis 0 runs along a row (towards
increasing column, the first three of ImageOrientationPatient, X), axis 1 down a column
(towards increasing row, the last three, Y), axis 2 along X x Y.

Stored pixel (r, c) lies at ``image_position + (grid_origin_col + c * pixel_spacing_col /
source_spacing_col) * source_spacing_col * X + (grid_origin_row + r * pixel_spacing_row /
source_spacing_row) * source_spacing_row * Y`` (README, geometry table), i.e. at
``origin + c * pixel_spacing_col * X + r * pixel_spacing_row * Y`` with the origin below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from loader.index import DatasetIndex

__all__ = ["NO_THICKNESS_FACTOR", "SliceGeometry", "slice_geometry"]

#: Through-plane spacing, as a multiple of the larger in-plane spacing, of slices whose
#: SliceThickness is unknown or not larger than the in-plane spacing: nnU-Net's own choice for
#: 2D images (SimpleITKIO gives them ``999 * max(in-plane)``).
NO_THICKNESS_FACTOR = 999.0


@dataclass(frozen=True)
class SliceGeometry:
    """ITK geometry of one slice: ``spacing`` (x, y, z) mm, ``origin`` (x, y, z) mm (LPS),
    ``direction`` 9 floats row-major (columns: the x, y, z axes in patient space), and which
    parts are known (``in_patient_space``: position and orientation; ``thickness_known``)."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    in_patient_space: bool
    thickness_known: bool


def slice_geometry(index: DatasetIndex, row: int) -> SliceGeometry:
    """The geometry of sample ``row`` (its pixel spacing must be known).

    - spacing: (pixel_spacing_col, pixel_spacing_row, z), z the SliceThickness when it exceeds
      both in-plane spacings, else ``NO_THICKNESS_FACTOR`` times the larger one. Either way z
      is the largest spacing, which nnU-Net needs to plan a 2D configuration (it moves the
      largest-spacing axis first and takes 2D patches across the other two; a singleton axis
      inside the plane gives patches of width 1, nnU-Net issue 2463).
    - direction: columns X, Y, X x Y from ImageOrientationPatient, made orthonormal (ITK
      refuses other direction cosines; DICOM's are rounded to a few digits); identity when
      the orientation or position is unknown.
    - origin: the patient position of stored pixel (0, 0) (module docstring); 0 when unknown.
    """
    row_mm = float(index.pixel_spacing_row[row])
    col_mm = float(index.pixel_spacing_col[row])
    if not (math.isfinite(row_mm) and math.isfinite(col_mm)):
        raise ValueError(f"{index.npz[row]}: pixel spacing unknown")
    in_plane = max(row_mm, col_mm)
    thickness = float(index.slice_thickness[row])
    thickness_known = math.isfinite(thickness) and thickness > in_plane
    z_mm = thickness if thickness_known else NO_THICKNESS_FACTOR * in_plane
    position = index.image_position[row]
    orientation = index.image_orientation[row]
    if np.isfinite(position).all() and np.isfinite(orientation).all():
        x_axis, y_axis = _orthonormal(orientation[:3], orientation[3:])
        z_axis = np.cross(x_axis, y_axis)
        grid_row = _or(index.grid_origin_row[row], 0.0)
        grid_col = _or(index.grid_origin_col[row], 0.0)
        source_row = _or(index.source_spacing_row[row], row_mm)
        source_col = _or(index.source_spacing_col[row], col_mm)
        origin = (
            position
            + grid_col * source_col * np.asarray(orientation[:3])
            + grid_row * source_row * np.asarray(orientation[3:])
        )
        direction = np.stack([x_axis, y_axis, z_axis], axis=1)  # columns are the axes
        in_patient_space = True
    else:
        origin, direction, in_patient_space = np.zeros(3), np.eye(3), False
    geometry = SliceGeometry(
        spacing=(col_mm, row_mm, z_mm),
        origin=tuple(float(v) for v in origin),
        direction=tuple(float(v) for v in direction.ravel()),
        in_patient_space=in_patient_space,
        thickness_known=thickness_known,
    )
    assert geometry.spacing[2] > max(geometry.spacing[:2]), geometry  # nnU-Net plans 2D only
    return geometry


def _or(value: float, default: float) -> float:
    return float(value) if math.isfinite(value) else default


def _orthonormal(row_cosine: np.ndarray, column_cosine: np.ndarray) -> tuple[np.ndarray, ...]:
    """The orthonormal pair nearest to two direction cosines (the polar factor of the 3x2
    matrix, via its SVD: symmetric in the two, unlike Gram-Schmidt, and exact for a pair that
    already is orthonormal)."""
    matrix = np.stack([row_cosine, column_cosine], axis=1).astype(np.float64)
    u, _, vt = np.linalg.svd(matrix, full_matrices=False)
    nearest = u @ vt
    return nearest[:, 0], nearest[:, 1]
