"""Polygons to boolean masks.

Convention (shared with the contour files and PIL): pixel centres sit at integer coordinates;
the pixel in row ``r``, column ``c`` is the point ``(x=c, y=r)``. A pixel belongs to the mask
when its centre lies inside the polygon (even-odd rule). A centre that falls exactly on the
boundary is decided by the half-open "top-left" rule of scanline rasterizers: it is inside on a
left or top edge and outside on a right or bottom edge. That rule makes the pixel count of any
polygon equal to its area for integer-cornered shapes and unbiased in general, so that no
systematic ring of boundary pixels is added or removed (the prototype's PIL call removed one,
about 11% of a blood-pool mask; see docs/parsing.md).
"""

from __future__ import annotations

import numpy as np

__all__ = ["contour_to_mask", "polygon_area"]


def contour_to_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterize a closed polygon into a boolean mask.

    Args:
        points: (N, 2) array of vertices as (x, y) = (column, row) pixel coordinates; the
            polygon is closed from the last vertex back to the first. Vertices may lie outside
            the image; the polygon is clipped by the image frame.
        shape: (rows, columns) of the mask, i.e. the image's (height, width).

    Returns:
        bool array of ``shape``; True where the pixel centre is inside the polygon.
    """
    rows, columns = shape
    points = np.asarray(points, dtype=np.float64)
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)

    # Scanline y = r crosses an edge when exactly one end is at or below it (half-open in y,
    # which also makes a vertex lying on the scanline count once, not twice).
    r = np.arange(rows, dtype=np.float64)[:, None]
    crosses = (y0 <= r) != (y1 <= r)  # (rows, edges)
    edge_rows, edges = np.nonzero(crosses)
    if edges.size == 0:
        return np.zeros(shape, dtype=bool)
    ya, yb, xa, xb = y0[edges], y1[edges], x0[edges], x1[edges]
    x_cross = xa + (edge_rows - ya) * (xb - xa) / (yb - ya)

    # Even-odd: a centre c is inside when an odd number of crossings lie strictly to its right
    # (x_cross > c, i.e. c < ceil(x_cross): half-open in x). Count crossings per first column
    # they cover, then accumulate from the right.
    first_outside = np.clip(np.ceil(x_cross), 0, columns).astype(np.intp)
    counts = np.zeros((rows, columns + 1), dtype=np.int32)
    np.add.at(counts, (edge_rows, first_outside), 1)
    right_of = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]  # crossings with ceil(x) >= c
    return (right_of[:, 1:] & 1).astype(bool)


def polygon_area(points: np.ndarray) -> float:
    """Area of a simple polygon in square pixels (shoelace formula), vertices as (x, y)."""
    x, y = np.asarray(points, dtype=np.float64).T
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
