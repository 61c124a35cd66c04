"""The common grid of a resampled build: its configuration, geometry, contours and images.

Expected values are hand calculations from the convention the module states: pixel centres at
integers, native pixel i covering [i - 0.5, i + 0.5] * s mm from pixel 0's centre, full grid of
floor(n s / S + 0.5) pixels, target starting at full-grid pixel (n_full - N) // 2.
"""

from __future__ import annotations

import numpy as np
import pytest

from workflow_scripts.config import command_line_values_typed
from workflow_scripts.study.masks import contour_to_mask
from workflow_scripts.study.resample import AxisPlacement, ResampleGrid


def test_empty_config_means_the_native_grid():
    for value in (None, "", {}):
        assert ResampleGrid.from_config(value) is None


def test_numbers_given_as_text_make_the_same_grid():
    # Snakemake's --config passes nested values as text; they get the schema's types first.
    config = {"resample": {"spacing_mm": "1.3", "shape": ["256", "192"]}}
    command_line_values_typed(config)
    grid = ResampleGrid.from_config(config["resample"])
    assert grid == ResampleGrid(1.3, (256, 192))
    assert grid == ResampleGrid.from_config({"spacing_mm": 1.3, "shape": [256, 192]})
    assert grid.as_config() == {"spacing_mm": 1.3, "shape": [256, 192]}


@pytest.mark.parametrize(
    "value",
    [
        {"spacing_mm": 0, "shape": [8, 8]},
        {"spacing_mm": "nan", "shape": [8, 8]},
        {"spacing_mm": 1, "shape": [8]},
        {"spacing_mm": 1, "shape": [0, 8]},
        {"spacing_mm": 1, "shape": [8, 5000]},
        {"spacing_mm": 1},
        {"spacing_mm": "x", "shape": [8, 8]},
        "1.3",
    ],
)
def test_bad_grids_are_refused_naming_the_key(value):
    with pytest.raises(ValueError, match="resample"):
        ResampleGrid.from_config(value)


@pytest.mark.parametrize(
    ("n", "s", "N", "S", "offset"),
    [
        (256, 1.367188, 256, 1.3, 6),  # 256 * 1.367188 / 1.3 = 269.23 -> 269; (269 - 256) // 2
        (256, 1.2891, 256, 1.3, -1),  # 253.85 -> 254; (254 - 256) // 2 = -1: pad 1 and 1
        (10, 1.0, 7, 1.0, 1),  # crop 3: 1 at the top/left, 2 at the bottom/right
        (10, 1.0, 13, 1.0, -2),  # pad 3: 2 at the top/left, 1 at the bottom/right
        (4, 2.0, 8, 1.0, 0),  # exactly the full grid
    ],
)
def test_target_grid_starts_at_the_centre_crop_offset(n, s, N, S, offset):
    assert AxisPlacement.of(n, s, N, S).offset == offset


def test_origin_is_the_native_position_of_the_first_target_centre():
    axis = AxisPlacement.of(256, 1.367188, 256, 1.3)
    # (c0 + 0.5) * S / s - 0.5 with c0 = 6
    assert axis.origin == pytest.approx(6.5 * 1.3 / 1.367188 - 0.5)
    assert AxisPlacement.of(5, 1.0, 5, 1.0).origin == 0.0


def test_contour_vertices_map_edge_to_edge_in_mm():
    # 4 x 4 native pixels of 2 mm onto 8 x 8 pixels of 1 mm: the native outer edge -0.5 stays
    # at -0.5, native 1.5 (the edge after two 2 mm pixels, 4 mm) goes to 3.5 (4 mm).
    placement = ResampleGrid(1.0, (8, 8)).place((4, 4), (2.0, 2.0))
    square = np.array([[-0.5, -0.5], [1.5, -0.5], [1.5, 1.5], [-0.5, 1.5]])
    mapped = placement.points(square)
    np.testing.assert_allclose(mapped, [[-0.5, -0.5], [3.5, -0.5], [3.5, 3.5], [-0.5, 3.5]])
    mask = contour_to_mask(mapped, placement.shape)
    expected = np.zeros((8, 8), bool)
    expected[:4, :4] = True  # 16 pixels of 1 mm^2 = the native 4 pixels of 4 mm^2
    np.testing.assert_array_equal(mask, expected)


def test_row_spacing_scales_y_and_column_spacing_scales_x():
    # PixelSpacing [0.5, 1.0]: rows 0.5 mm apart, columns 1 mm apart.
    placement = ResampleGrid(1.0, (10, 10)).place((20, 10), (0.5, 1.0))
    assert placement.rows.offset == 0 and placement.columns.offset == 0
    # x (column) 3 -> (3.5) * 1 / 1 - 0.5 = 3; y (row) 3 -> (3.5) * 0.5 - 0.5 = 1.25
    np.testing.assert_allclose(placement.points(np.array([[3.0, 3.0]])), [[3.0, 1.25]])


def test_same_spacing_and_shape_keep_the_image_values():
    image = (np.arange(35).reshape(5, 7) * 3 - 20).astype(np.int16)
    result = ResampleGrid(1.3, (5, 7)).place((5, 7), (1.3, 1.3)).image(image)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, image.astype(np.float32))


def native_positions(axis: AxisPlacement) -> np.ndarray:
    """u = (t + c0 + 0.5) * S / s - 0.5, written out independently of the module."""
    t = np.arange(axis.size)
    return (t + axis.offset + 0.5) * axis.spacing / axis.source_spacing - 0.5


@pytest.mark.parametrize(("s", "S", "N"), [(2.0, 1.0, 60), (1.0, 1.6, 20), (1.0, 2.5, 12)])
def test_a_linear_ramp_is_reproduced_where_the_kernel_lies_inside(s, S, N):
    # Linear interpolation, and a symmetric widened kernel, reproduce a linear function.
    rows, columns = np.mgrid[0:32, 0:40].astype(np.float64)
    image = 3.0 * rows - 2.0 * columns + 7.0
    placement = ResampleGrid(S, (N, N)).place(image.shape, (s, s))
    result = placement.image(image)
    u_rows, u_columns = native_positions(placement.rows), native_positions(placement.columns)
    expected = 3.0 * u_rows[:, None] - 2.0 * u_columns[None, :] + 7.0
    # Linear interpolation reaches 1 pixel, the smoothing 4 sigma, sigma = sqrt((r^2 - 1) / 6).
    half = 1 + np.ceil(4 * np.sqrt(max(0.0, (S / s) ** 2 - 1) / 6))
    inner_r = (u_rows - half >= 0) & (u_rows + half <= 31)
    inner_c = (u_columns - half >= 0) & (u_columns + half <= 39)
    assert inner_r.sum() > 3 and inner_c.sum() > 3
    np.testing.assert_allclose(
        result[np.ix_(inner_r, inner_c)], expected[np.ix_(inner_r, inner_c)], atol=1e-4
    )


def test_a_constant_image_stays_constant_up_to_the_field_of_view_edge():
    image = np.full((9, 9), 5.0)
    result = ResampleGrid(0.7, (13, 13)).place((9, 9), (1.0, 1.0)).image(image)
    np.testing.assert_allclose(result, 5.0, rtol=1e-6)


def test_padding_outside_the_native_field_of_view_is_zero():
    image = np.arange(1, 17, dtype=np.float64).reshape(4, 4)
    placement = ResampleGrid(1.0, (8, 8)).place((4, 4), (1.0, 1.0))
    assert placement.rows.offset == -2  # (4 - 8) // 2
    result = placement.image(image)
    expected = np.zeros((8, 8))
    expected[2:6, 2:6] = image
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize(("S", "bound"), [(2.0, 0.2), (2.5, 0.05)])
def test_downsampling_filters_what_the_coarse_grid_cannot_hold(S, bound):
    # Stripes at the native Nyquist frequency (+1, -1, ...) have no representation on a grid
    # twice as coarse or more; point sampling would keep them at full amplitude (+-1) or alias
    # them into a flat +1 or -1.
    stripes = np.tile([1.0, -1.0], 20)[None, :].repeat(40, axis=0)
    result = ResampleGrid(S, (12, 12)).place((40, 40), (1.0, 1.0)).image(stripes)
    assert np.abs(result[3:-3, 3:-3]).max() < bound


def test_smoothing_is_symmetric_so_a_ramp_keeps_its_position():
    # sigma = sqrt((2^2 - 1) / 6) = sqrt(0.5) for a grid twice as coarse; a symmetric filter on
    # the native pixels leaves a linear ramp unchanged away from the border.
    axis = AxisPlacement.of(30, 1.0, 15, 2.0)
    assert axis.sigma == pytest.approx(np.sqrt(0.5))
    ramp = np.tile(np.arange(30, dtype=np.float64), (4, 1))
    np.testing.assert_allclose(axis.smooth(ramp, axis=1)[:, 4:-4], ramp[:, 4:-4], atol=1e-12)
    assert AxisPlacement.of(30, 1.0, 30, 1.0).sigma == 0.0  # not coarser: no smoothing


def test_resampling_is_deterministic_to_the_byte():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 3000, size=(64, 64)).astype(np.int16)
    placement = ResampleGrid(1.3, (64, 64)).place((64, 64), (1.367188, 1.367188))
    assert placement.image(image).tobytes() == placement.image(image.copy()).tobytes()


def test_a_finer_grid_samples_where_pillows_bilinear_resize_does():
    # Pillow's resize with a box (edge coordinates, pixel i covering [i, i + 1]) samples target
    # pixel t at box0 + (t + 0.5) * S / s: the convention here, with box0 = c0 * S / s.
    from PIL import Image

    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1000, size=(50, 40)).astype(np.float32)
    placement = ResampleGrid(0.7, (60, 50)).place(image.shape, (1.0, 0.9))
    c0_rows, c0_columns = placement.rows.offset, placement.columns.offset
    assert (c0_rows, c0_columns) == (5, 0)  # full grids 71 and 51: (71 - 60) // 2, (51 - 50) // 2
    box = (
        c0_columns * 0.7 / 0.9,
        c0_rows * 0.7,
        (c0_columns + 50) * 0.7 / 0.9,
        (c0_rows + 60) * 0.7,
    )
    pillow = Image.fromarray(image, mode="F").resize((50, 60), Image.Resampling.BILINEAR, box=box)
    np.testing.assert_allclose(placement.image(image), np.asarray(pillow), atol=2e-5 * 1000)
