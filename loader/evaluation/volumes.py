"""Ventricular volumes from masks by the challenge's disc rule, and the volume curve of a cine.

The rule (the Sunnybrook evaluator's, and ``measures.parquet``'s): a volume is the sum, over the
slice positions used, of the area inside the contour at that position times the spacing between
adjacent positions (from ImagePositionPatient). Here an area is the mask's pixel count times the
pixel area (``pixel_spacing_row * pixel_spacing_col`` mm²). Units: mm² for areas, mm for
spacings, mL (= cm³ = 1000 mm³) for volumes, g for mass, % for the ejection fraction.

ED and ES of a cine are the phases of the largest and the smallest volume of its curve; for
sample predictions they are the manual ones (``measures.parquet``), as the challenge's evaluator
takes the manual ED/ES for the automatic contours.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MYOCARDIUM_DENSITY_G_PER_ML",
    "disc_volume_ml",
    "ed_es_phases",
    "ejection_fraction",
    "volume_curve_ml",
]

#: Density of the myocardium (the challenge's 1.05 g/cm³).
MYOCARDIUM_DENSITY_G_PER_ML = 1.05


def disc_volume_ml(areas_mm2: np.ndarray, spacing_mm: float) -> float:
    """Sum of ``areas_mm2`` (one per position) times ``spacing_mm``, in mL."""
    return float(np.sum(np.asarray(areas_mm2, dtype=np.float64)) * spacing_mm / 1000.0)


def volume_curve_ml(
    masks: np.ndarray,
    pixel_area_mm2: float,
    spacing_mm: float,
    positions: np.ndarray | list[int] | None = None,
) -> np.ndarray:
    """The volume at each phase of a cine of masks.

    Args:
        masks: bool (positions, phases, height, width), e.g. a whole-cine prediction (may be a
            memory map: read one position at a time).
        pixel_area_mm2: area of one pixel, mm².
        spacing_mm: spacing between adjacent positions, mm.
        positions: the positions summed (e.g. ``positions_used``, those contoured at ED and
            ES); None: all.

    Returns:
        float64 (phases,), mL.
    """
    if masks.ndim != 4:
        raise ValueError(
            f"a cine of masks is (positions, phases, height, width), got {masks.shape}"
        )
    chosen = range(masks.shape[0]) if positions is None else [int(p) for p in positions]
    pixels = np.zeros(masks.shape[1], dtype=np.int64)
    for position in chosen:
        pixels += np.count_nonzero(masks[position], axis=(1, 2))
    return pixels * pixel_area_mm2 * spacing_mm / 1000.0


def ed_es_phases(curve_ml: np.ndarray) -> tuple[int, int]:
    """(ED, ES): the phases (0-based) of the largest and of the smallest volume; the first one
    where several phases tie.

    Raises:
        ValueError: an empty curve, or one with NaN.
    """
    curve = np.asarray(curve_ml, dtype=np.float64)
    if curve.ndim != 1 or len(curve) == 0 or np.isnan(curve).any():
        raise ValueError(f"a volume curve is a non-empty 1D array of numbers, got {curve!r}")
    return int(np.argmax(curve)), int(np.argmin(curve))


def ejection_fraction(edv_ml: float, esv_ml: float) -> float:
    """``100 (EDV - ESV) / EDV`` in %; NaN when EDV is not positive."""
    if not edv_ml > 0:
        return float("nan")
    return 100.0 * (edv_ml - esv_ml) / edv_ml
