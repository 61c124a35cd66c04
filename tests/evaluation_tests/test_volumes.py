"""The disc rule, the volume curve and ED/ES from it, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loader.evaluation.scoring import _positions_used
from loader.evaluation.volumes import (
    disc_volume_ml,
    ed_es_phases,
    ejection_fraction,
    volume_curve_ml,
)


def test_disc_volume_is_the_sum_of_areas_times_spacing_in_millilitres():
    # 3 positions of 1000, 1500 and 500 mm², 10 mm apart: 30,000 mm³ = 30 mL
    assert disc_volume_ml(np.array([1000.0, 1500.0, 500.0]), 10.0) == pytest.approx(30.0)


def test_volume_curve_counts_the_pixels_of_each_phase():
    masks = np.zeros((3, 4, 5, 5), dtype=bool)
    masks[0, 0, :2, :2] = True  # position 0, phase 0: 4 pixels
    masks[1, 0, :, :] = True  # position 1, phase 0: 25 pixels
    masks[2, 3, 0, :3] = True  # position 2, phase 3: 3 pixels
    curve = volume_curve_ml(masks, pixel_area_mm2=2.0, spacing_mm=5.0)
    # phase 0: 29 px x 2 mm² x 5 mm = 290 mm³ = 0.29 mL; phase 3: 3 x 2 x 5 = 30 mm³
    assert curve.tolist() == pytest.approx([0.29, 0.0, 0.0, 0.03])
    only_first_two = volume_curve_ml(masks, 2.0, 5.0, positions=[0, 1])
    assert only_first_two.tolist() == pytest.approx([0.29, 0.0, 0.0, 0.0])


def test_ed_and_es_are_the_largest_and_smallest_volume():
    assert ed_es_phases(np.array([5.0, 9.0, 3.0, 4.0])) == (1, 2)
    assert ed_es_phases(np.array([2.0, 2.0, 1.0, 1.0])) == (0, 2)  # first of ties
    with pytest.raises(ValueError):
        ed_es_phases(np.array([1.0, np.nan]))


def test_ejection_fraction():
    assert ejection_fraction(191.3, 141.3) == pytest.approx(100 * 50 / 191.3)
    assert math.isnan(ejection_fraction(0.0, 0.0))


def test_positions_used_are_listed_or_derived_and_a_count_must_agree():
    position = np.array([0, 0, 1, 1, 2])
    phase = np.array([19, 7, 19, 7, 19])  # position 2 lacks ES
    listed = pd.Series({"positions_used": np.array([1, 0])})
    assert _positions_used("S", position, phase, listed, 19, 7) == [0, 1]
    assert _positions_used("S", position, phase, pd.Series({"positions_used": 2}), 19, 7) == [0, 1]
    with pytest.raises(ValueError, match="uses 3 positions, but the index has 2"):
        _positions_used("S", position, phase, pd.Series({"positions_used": 3}), 19, 7)
