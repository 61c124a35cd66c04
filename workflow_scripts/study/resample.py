"""Putting slices on a common in-plane grid (config key ``resample``).

Coordinates follow the rest of the project: pixel centres sit at integers, a point is
(x, y) = (column, row), and native pixel ``i`` of an axis with spacing ``s`` mm covers
``[i - 0.5, i + 0.5] * s`` mm from the centre of pixel 0 (``[i, i + 1] * s`` mm from the image's
outer edge, which lies at ``-0.5``). Per axis, with the native spacing ``s`` and size ``n``
(PixelSpacing's row spacing for rows, its column spacing for columns) and the target spacing
``S`` and size ``N``:

1. the *full grid* covers the native field of view with ``n_full = floor(n * s / S + 0.5)``
   pixels of ``S`` mm, starting at the image's outer edge: full-grid coordinate
   ``x_full = (x + 0.5) * s / S - 0.5``;
2. the *target grid* is its centre crop (or padding) to ``N`` pixels: it starts at full-grid
   pixel ``c0 = (n_full - N) // 2`` (floor division: when ``n_full - N`` is odd, the extra
   pixel is cropped at the bottom/right, or padded at the top/left), so
   ``x_new = (x + 0.5) * s / S - 0.5 - c0``.

Contours are mapped vertex by vertex with that formula and rasterized on the target grid by
:func:`~workflow_scripts.study.masks.contour_to_mask` (the same pixel-centre rule as native
masks: exact, no interpolated mask). The image is sampled at the native position of each target
pixel centre, ``u = (t + c0 + 0.5) * S / s - 0.5``, by separable linear interpolation
(bilinear). When the target grid is coarser (``r = S / s > 1``), the native image is first
smoothed along that axis by a sampled Gaussian of ``sigma = sqrt((r**2 - 1) / 6)`` native pixels
(taps to 4 sigma), so that the two steps together are as wide (same variance) as the triangle
filter of half-width ``r`` that Pillow's BILINEAR resize uses to anti-alias; unlike that
filter, both steps are symmetric about the sample point, so a linear intensity gradient is
reproduced exactly, without sub-pixel shifts. At the image border, taps beyond the image are
dropped and the weights renormalized (the edge pixel extends to the field of view's edge);
target pixels whose centre lies outside the native field of view (``u < -0.5`` or
``u > n - 0.5``: padding) are 0. The arithmetic is float64 in a fixed order (no BLAS, and
``math.exp`` for the few filter weights), the result float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AxisPlacement", "Placement", "ResampleGrid"]

#: Largest height or width of the resample grid (the schema's limit), pixels.
MAX_SIZE = 4096


@dataclass(frozen=True)
class ResampleGrid:
    """The common grid of a resampled build: ``spacing_mm`` mm per pixel along rows and
    columns, arrays of ``shape`` = (rows, columns) pixels."""

    spacing_mm: float
    shape: tuple[int, int]

    @classmethod
    def from_config(cls, value: Any) -> ResampleGrid | None:
        """The grid of the config key ``resample``; None (native grid) when it is empty.

        Raises ValueError naming ``resample`` for a value that is not a positive spacing and two
        positive integer sizes (the schema refuses those first; this guards direct callers).
        """
        if value is None or value == "" or value == {}:
            return None
        if not isinstance(value, dict) or set(value) != {"spacing_mm", "shape"}:
            raise ValueError(f"resample: expected {{spacing_mm: S, shape: [H, W]}}, got {value!r}")
        try:
            spacing = float(value["spacing_mm"])
            shape = tuple(int(size) for size in value["shape"])
        except (TypeError, ValueError):
            raise ValueError(f"resample: not numbers: {value!r}") from None
        if not (math.isfinite(spacing) and spacing > 0):
            raise ValueError(f"resample.spacing_mm: {value['spacing_mm']!r} is not positive")
        if len(shape) != 2 or min(shape) < 1 or max(shape) > MAX_SIZE:
            raise ValueError(
                f"resample.shape: {value['shape']!r} is not two sizes from 1 to {MAX_SIZE}"
            )
        return cls(spacing, (shape[0], shape[1]))

    def as_config(self) -> dict[str, Any]:
        """The canonical config value (numbers, not text): what a version's manifest records."""
        return {"spacing_mm": self.spacing_mm, "shape": list(self.shape)}

    def place(self, shape: tuple[int, int], spacing: tuple[float, float]) -> Placement:
        """Where a native slice of ``shape`` (rows, columns) and ``spacing`` (row, column
        spacing in mm, DICOM's PixelSpacing order) lands on this grid."""
        return Placement(
            rows=AxisPlacement.of(shape[0], spacing[0], self.shape[0], self.spacing_mm),
            columns=AxisPlacement.of(shape[1], spacing[1], self.shape[1], self.spacing_mm),
        )


@dataclass(frozen=True)
class AxisPlacement:
    """One axis: ``source_size`` native pixels of ``source_spacing`` mm onto ``size`` target
    pixels of ``spacing`` mm, the target starting at full-grid pixel ``offset`` (c0)."""

    source_size: int
    source_spacing: float
    size: int
    spacing: float
    offset: int

    @classmethod
    def of(cls, source_size: int, source_spacing: float, size: int, spacing: float):
        full = math.floor(source_size * source_spacing / spacing + 0.5)
        return cls(source_size, source_spacing, size, spacing, (full - size) // 2)

    @property
    def step(self) -> float:
        """Native pixels per target pixel, S / s."""
        return self.spacing / self.source_spacing

    @property
    def origin(self) -> float:
        """Native coordinate of target pixel 0's centre: ``(c0 + 0.5) * S / s - 0.5``."""
        return (self.offset + 0.5) * self.step - 0.5

    def to_target(self, coordinates: np.ndarray) -> np.ndarray:
        """Native coordinates (pixel centres at integers) to target coordinates."""
        return (coordinates + 0.5) * (self.source_spacing / self.spacing) - 0.5 - self.offset

    @property
    def sigma(self) -> float:
        """Anti-aliasing Gaussian's standard deviation in native pixels (0: none)."""
        return math.sqrt(max(0.0, self.step**2 - 1.0) / 6.0)

    def smooth(self, values: np.ndarray, axis: int) -> np.ndarray:
        """``values`` (float64) smoothed along ``axis`` by the anti-aliasing Gaussian."""
        sigma = self.sigma
        reach = math.ceil(4 * sigma)
        if reach == 0:
            return values
        along = [1, 1]
        along[axis] = -1  # reshapes a per-position vector to broadcast along ``axis``
        positions = np.arange(values.shape[axis])
        result, total = np.zeros_like(values), np.zeros(values.shape[axis])
        for k in range(-reach, reach + 1):
            source = positions + k
            inside = (source >= 0) & (source < values.shape[axis])
            tap = np.where(inside, math.exp(-(k * k) / (2 * sigma * sigma)), 0.0)
            taken = np.take(values, np.clip(source, 0, positions[-1]), axis)
            result += tap.reshape(along) * taken
            total += tap
        return result / total.reshape(along)

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Linear interpolation: (taps, weights), each (size, 2); target pixel ``t`` is
        ``weights[t, 0] * native[taps[t, 0]] + weights[t, 1] * native[taps[t, 1]]``, all
        weights 0 for padding."""
        centres = self.origin + np.arange(self.size, dtype=np.float64) * self.step
        first = np.floor(centres)
        fraction = centres - first
        taps = first.astype(np.intp)[:, None] + np.arange(2)
        weights = np.stack([1.0 - fraction, fraction], axis=1)
        weights[(taps < 0) | (taps >= self.source_size)] = 0.0
        total = weights[:, 0] + weights[:, 1]
        inside = (centres >= -0.5) & (centres <= self.source_size - 0.5)
        weights = np.where(inside[:, None], weights / np.where(total > 0, total, 1.0)[:, None], 0.0)
        return np.clip(taps, 0, self.source_size - 1), weights


@dataclass(frozen=True)
class Placement:
    """A native slice's place on the resample grid, per axis."""

    rows: AxisPlacement
    columns: AxisPlacement

    @property
    def shape(self) -> tuple[int, int]:
        """The target (rows, columns)."""
        return (self.rows.size, self.columns.size)

    @property
    def origin(self) -> tuple[float, float]:
        """Native (row, column) coordinates of target pixel (0, 0)'s centre."""
        return (self.rows.origin, self.columns.origin)

    def points(self, points: np.ndarray) -> np.ndarray:
        """Contour vertices, (N, 2) as (x, y) = (column, row), to target coordinates."""
        points = np.asarray(points, dtype=np.float64)
        x, y = self.columns.to_target(points[:, 0]), self.rows.to_target(points[:, 1])
        return np.stack([x, y], axis=1)

    def image(self, pixels: np.ndarray) -> np.ndarray:
        """The native (rows, columns) image resampled onto the target grid, float32."""
        values = np.asarray(pixels, dtype=np.float64)
        values = self.columns.smooth(self.rows.smooth(values, axis=0), axis=1)
        taps, weights = self.rows.weights()
        along_rows = weights[:, 0, None] * values[taps[:, 0], :]
        along_rows += weights[:, 1, None] * values[taps[:, 1], :]
        taps, weights = self.columns.weights()
        result = weights[None, :, 0] * along_rows[:, taps[:, 0]]
        result += weights[None, :, 1] * along_rows[:, taps[:, 1]]
        return result.astype(np.float32)
