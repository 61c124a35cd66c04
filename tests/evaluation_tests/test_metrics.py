"""Per-contour scores against known answers: analytic shapes whose distances are known in
advance, not values taken from the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from evaluation_helpers import disc
from loader.evaluation.metrics import boundaries, dice, score_contour

SHAPE = (128, 128)
CENTRE = (63.3, 64.6)  # off the pixel grid, so the discs are not symmetric rasters
#: Raster precision, pixels: two concentric raster discs' boundaries are staircases, and the
#: mean nearest-point distance between them falls short of the radius difference by up to this
#: (0.23 measured over radii 8-35 and gaps 1-7); their largest distance exceeds it by up to
#: HAUSDORFF_RASTER (0.54 measured).
RASTER = 0.25
HAUSDORFF_RASTER = 0.6


def test_identical_masks_score_dice_one_and_zero_distance():
    mask = disc(SHAPE, CENTRE, 20)
    score = score_contour(mask, mask, (1.3, 1.3))
    assert score.detected
    assert score.dice == 1.0
    assert score.apd_mm == 0.0
    assert score.hausdorff_mm == 0.0


@pytest.mark.parametrize("radius", [8, 20, 35])
@pytest.mark.parametrize("gap", [1, 3, 7])
@pytest.mark.parametrize("spacing", [0.7, 1.3672])
def test_concentric_discs_are_their_radius_difference_apart(radius, gap, spacing):
    """Discs of radii r and r + d: every point of one circle is d from the other, so APD and
    Hausdorff are d pixels x spacing (to the raster's precision), both ways."""
    small, large = disc(SHAPE, CENTRE, radius), disc(SHAPE, CENTRE, radius + gap)
    for predicted, manual in ((large, small), (small, large)):
        score = score_contour(predicted, manual, (spacing, spacing))
        assert score.apd_mm == pytest.approx(gap * spacing, abs=RASTER * spacing)
        assert score.hausdorff_mm == pytest.approx(gap * spacing, abs=HAUSDORFF_RASTER * spacing)
    # Dice from the pixel counts, and close to the analytic area ratio
    expected = 2 * small.sum() / (small.sum() + large.sum())
    assert score_contour(large, small, (1, 1)).dice == pytest.approx(expected)
    analytic = 2 * radius**2 / (radius**2 + (radius + gap) ** 2)
    assert score_contour(large, small, (1, 1)).dice == pytest.approx(analytic, abs=0.02)


def test_anisotropic_pixels_are_measured_in_millimetres():
    """Pixels 0.8 mm high, 1.6 mm wide: circles in millimetres (ellipses in pixels) of radii
    R and R + D mm are D mm apart."""
    rows, cols = np.mgrid[: SHAPE[0], : SHAPE[1]]
    distance_mm = np.hypot((rows - 64.2) * 0.8, (cols - 63.7) * 1.6)
    inner, outer = distance_mm < 30.0, distance_mm < 34.0
    score = score_contour(outer, inner, (0.8, 1.6))
    assert score.apd_mm == pytest.approx(4.0, abs=RASTER * 1.6)


def test_one_pixel_dilation_moves_the_boundary_about_one_pixel():
    """A 4-connected dilation moves the boundary one pixel along rows and columns and 1/sqrt(2)
    along diagonals: the APD lies between the two, in mm."""
    mask = disc(SHAPE, CENTRE, 25)
    score = score_contour(ndimage.binary_dilation(mask), mask, (1.5, 1.5))
    assert 1.5 / math.sqrt(2) - 0.1 <= score.apd_mm <= 1.5 + 0.05
    assert score.hausdorff_mm == pytest.approx(1.5, abs=0.15)


@pytest.mark.parametrize("shift", [(0, 3), (4, 0), (3, 4), (-5, 12)])
def test_a_shifted_mask_is_its_shift_away(shift):
    """The Hausdorff distance between a disc and its translate is the length of the shift."""
    mask = disc(SHAPE, CENTRE, 22)
    moved = np.roll(mask, shift, axis=(0, 1))
    length = math.hypot(*shift)
    score = score_contour(moved, mask, (1.25, 1.25))
    assert score.hausdorff_mm == pytest.approx(length * 1.25, abs=0.3 * 1.25)
    # the mean distance is smaller than the largest, and positive
    assert 0 < score.apd_mm < score.hausdorff_mm


def test_an_empty_prediction_is_not_detected():
    mask = disc(SHAPE, CENTRE, 10)
    score = score_contour(np.zeros(SHAPE, bool), mask, (1, 1))
    assert not score.detected
    assert score.dice == 0.0
    assert math.isnan(score.apd_mm) and math.isnan(score.hausdorff_mm)


def test_a_stray_blob_counts_in_hausdorff_and_apd():
    """Every part of the predicted mask is scored: a 3x3 blob beside a perfect disc makes the
    Hausdorff distance that of the blob's far edge from the circle."""
    mask = disc(SHAPE, (40.0, 40.0), 12)
    predicted = mask.copy()
    predicted[39:42, 90:93] = True  # boundary at column 92.5 on row 40: 52.5 from the centre
    score = score_contour(predicted, mask, (1, 1))
    assert score.hausdorff_mm == pytest.approx(52.5 - 12, abs=HAUSDORFF_RASTER)
    assert score.apd_mm > 0.5


def test_boundaries_of_a_square_lie_half_way_between_pixel_centres():
    mask = np.zeros((10, 10), bool)
    mask[2:6, 3:8] = True  # rows 2..5, columns 3..7
    (outline,) = boundaries(mask)
    assert outline[:, 0].min() == pytest.approx(1.5) and outline[:, 0].max() == pytest.approx(5.5)
    assert outline[:, 1].min() == pytest.approx(2.5) and outline[:, 1].max() == pytest.approx(7.5)
    assert np.array_equal(outline[0], outline[-1])  # closed


def test_dice_of_two_empty_masks_is_undefined():
    empty = np.zeros((4, 4), bool)
    assert math.isnan(dice(empty, empty))


def test_an_unknown_spacing_gives_no_distance_in_millimetres():
    mask = disc(SHAPE, CENTRE, 10)
    score = score_contour(mask, mask, (float("nan"), float("nan")))
    assert score.dice == 1.0 and score.detected
    assert math.isnan(score.apd_mm) and math.isnan(score.hausdorff_mm)
