"""Per-contour scores of a predicted mask against the manual one: Dice, average perpendicular
distance (APD), Hausdorff distance, in millimetres from the stored pixel spacing.

Coordinates: a mask is a 2D bool array (rows, columns) on the version's stored grid; pixel
``(r, c)`` has its centre at the point ``(row=r, col=c)``. A mask's *boundary* is the iso-line
at 0.5 of the mask as 0/1 values, traced by marching squares (``skimage.measure.find_contours``
on the mask padded with one row/column of background, so every boundary is closed): it passes
half-way between each inside pixel centre and its outside neighbour, i.e. on the pixel edges,
with corners cut diagonally. Foreground is 8-connected (``fully_connected="high"``): two pixels
touching at a corner belong to one outline. The boundary of a disc of radius ``R`` pixels
rasterized by pixel centres lies at about ``R`` from its centre, so two concentric discs of radii
``R`` and ``R + d`` are ``d`` pixels apart.

Distances are taken in millimetres: the boundary's (row, col) points are scaled by
(``pixel_spacing_row``, ``pixel_spacing_col``) first, so anisotropic pixels are measured as they
are. Each boundary is resampled to points at most ``STEP_PIXELS`` (0.25 pixel) apart along
its length, and the distance from a point to the other boundary is that to the nearest of the
other's points (``scipy.spatial.cKDTree``): exact for coincident boundaries; otherwise at most
``sqrt(d**2 + 0.125**2)`` pixels for a true distance of ``d``, i.e. 0.016 pixel too long at
half a pixel and less beyond (and never more than 0.125 pixel).

- ``apd_mm``: the mean, over the predicted boundary's points (evenly spaced along it), of the
  distance to the manual boundary. The challenge's evaluator (v1.0) also measures from the
  automatic contour's points to the manual contour, along the automatic contour's normal; the
  nearest-point distance used here equals that where the two are locally parallel and is never
  larger (see docs/evaluation.md).
- ``hausdorff_mm``: the larger of the two directed maxima (predicted to manual, manual to
  predicted), over the boundaries.
- ``dice``: ``2 |P & M| / (|P| + |M|)`` over the pixels of the two masks (the evaluator rasterizes
  both polygons with ``poly2mask``; here both are already masks).

Every boundary of a mask counts: all its connected parts and the borders of its holes, so a
stray blob far from the heart raises APD and Hausdorff as it lowers Dice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["STEP_PIXELS", "ContourScore", "boundaries", "dice", "score_contour"]

#: Largest distance between consecutive resampled boundary points, in pixels.
STEP_PIXELS = 0.25


@dataclass(frozen=True)
class ContourScore:
    """The scores of one predicted mask against its manual mask. ``detected``: the prediction is
    not empty. ``apd_mm`` and ``hausdorff_mm`` are NaN when either mask is empty or the pixel
    spacing is unknown (NaN); ``dice`` is 0 for an empty prediction of a non-empty manual
    mask."""

    detected: bool
    dice: float
    apd_mm: float
    hausdorff_mm: float


def boundaries(mask: np.ndarray) -> list[np.ndarray]:
    """The closed boundaries of ``mask`` (2D bool) as float64 (K, 2) arrays of (row, col) pixel
    coordinates, first point repeated at the end; an empty mask has none."""
    from skimage import measure  # deferred: importing scikit-image costs ~0.3 s

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2D (rows, columns), got shape {mask.shape}")
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return []
    cols = np.flatnonzero(mask.any(axis=0))
    top, left = rows[0], cols[0]
    # Trace only the bounding box, padded by one pixel of background so outlines close.
    box = np.zeros((rows[-1] - top + 3, cols[-1] - left + 3), dtype=np.float64)
    box[1:-1, 1:-1] = mask[top : rows[-1] + 1, left : cols[-1] + 1]
    found = measure.find_contours(box, 0.5, fully_connected="high")
    offset = np.array([top - 1.0, left - 1.0])
    return [contour + offset for contour in found]


def dice(predicted: np.ndarray, manual: np.ndarray) -> float:
    """Dice coefficient of two bool masks of one shape; NaN when both are empty."""
    total = int(predicted.sum()) + int(manual.sum())
    if total == 0:
        return float("nan")
    return 2.0 * int(np.count_nonzero(predicted & manual)) / total


def score_contour(
    predicted: np.ndarray, manual: np.ndarray, spacing_mm: tuple[float, float]
) -> ContourScore:
    """Score ``predicted`` against ``manual`` (2D bool masks of the same shape) with pixels of
    ``spacing_mm`` = (row spacing, column spacing) millimetres."""
    from scipy.spatial import cKDTree

    predicted = np.asarray(predicted, dtype=bool)
    manual = np.asarray(manual, dtype=bool)
    if predicted.shape != manual.shape:
        raise ValueError(f"masks differ in shape: {predicted.shape} vs {manual.shape}")
    detected = bool(predicted.any())
    overlap = dice(predicted, manual)
    if not detected or not manual.any():
        return ContourScore(detected, overlap, float("nan"), float("nan"))
    scale = np.asarray(spacing_mm, dtype=np.float64)
    if not (np.isfinite(scale).all() and (scale > 0).all()):  # unknown spacing: no mm
        return ContourScore(detected, overlap, float("nan"), float("nan"))
    step = STEP_PIXELS * float(scale.min())
    predicted_points = _resampled(boundaries(predicted), scale, step)
    manual_points = _resampled(boundaries(manual), scale, step)
    to_manual, _ = cKDTree(manual_points).query(predicted_points)
    to_predicted, _ = cKDTree(predicted_points).query(manual_points)
    return ContourScore(
        detected,
        overlap,
        float(to_manual.mean()),
        float(max(to_manual.max(), to_predicted.max())),
    )


def _resampled(outlines: list[np.ndarray], scale: np.ndarray, step: float) -> np.ndarray:
    """Points evenly spaced along each closed outline (scaled to mm), at most ``step`` mm
    apart, all outlines together as one (K, 2) array."""
    parts = []
    for outline in outlines:
        points = outline * scale
        lengths = np.hypot(*np.diff(points, axis=0).T)
        along = np.concatenate([[0.0], np.cumsum(lengths)])
        count = max(int(np.ceil(along[-1] / step)), 1)
        # endpoint=False: the outline is closed, its last point repeats the first
        wanted = np.linspace(0.0, along[-1], count, endpoint=False)
        parts.append(
            np.stack(
                [np.interp(wanted, along, points[:, 0]), np.interp(wanted, along, points[:, 1])],
                axis=1,
            )
        )
    return np.concatenate(parts)
