"""Geometry and the resample grid on the real Sunnybrook studies (skipped when absent).

The workflow builds the real studies twice, natively and on a 1.3 mm grid of 256 x 256 pixels
(the real spacings are 1.367188, 1.3672 and 1.2891 mm: two studies are magnified and cropped,
one shrunk and padded). Every expectation is computed here from the raw files: spacings with
pydicom, contour positions with the stated convention, images with Pillow's own resize.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from conftest import is_known_real_data, real_data_missing, run_workflow
from dataset_checks import check_accounting
from loader.sample_file import read_sample
from workflow_scripts.raw.contours import parse_contour
from workflow_scripts.study.masks import contour_to_mask

pytestmark = [pytest.mark.realdata, pytest.mark.workflow]

SPACING, SIZE = 1.3, 256
GRID = f"resample={{spacing_mm: {SPACING}, shape: [{SIZE}, {SIZE}]}}"


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    from conftest import REAL_DATA

    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(real_data_missing())
    workdir = tmp_path_factory.mktemp("real_resample")
    config = ("--config", f"data_dir={REAL_DATA}", "out_dir=out", "contours=[i,o]")
    run_workflow(workdir, *config, "version=native")
    run_workflow(workdir, *config, "version=grid", GRID)  # the key as text, as users type it
    native, grid = workdir / "out" / "native", workdir / "out" / "grid"
    return REAL_DATA, native, grid


def index_of(version_dir):
    return pd.read_parquet(version_dir / "index.parquet").set_index(["study_id", "slice"])


def pixel_spacing(data_dir, study, number) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid UIDs in every real file
        ds = pydicom.dcmread(data_dir / "dicoms" / study / f"{number}.dcm")
    return float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])


def offset(native_size: int, spacing: float) -> int:
    """c0: the first kept pixel of the full grid, floor(n s / S + 0.5) pixels long."""
    return (math.floor(native_size * spacing / SPACING + 0.5) - SIZE) // 2


def test_native_index_spacing_is_each_dicoms_pixel_spacing(builds):
    data_dir, native, _ = builds
    index = index_of(native)
    assert len(index) > 0
    for (study, number), row in index.iterrows():
        expected = pixel_spacing(data_dir, study, number)
        assert (row.pixel_spacing_row, row.pixel_spacing_col) == expected
        assert (row.source_spacing_row, row.source_spacing_col) == expected
    if is_known_real_data():
        assert len(index) == 74
        assert set(index.pixel_spacing_row) == {1.367188, 1.3672, 1.2891}


def test_resampled_index_has_the_grid_spacing_and_keeps_the_dicoms(builds):
    data_dir, _, grid = builds
    index = index_of(grid)
    assert 0 < len(index) <= len(index_of(builds[1]))
    if is_known_real_data():
        assert len(index) == 74
    assert set(index.pixel_spacing_row) == set(index.pixel_spacing_col) == {SPACING}
    assert set(index.image_dtype) == {"float32"}
    assert set(zip(index.height, index.width, strict=True)) == {(SIZE, SIZE)}
    for (study, number), row in index.iterrows():
        spacing = pixel_spacing(data_dir, study, number)
        assert (row.source_spacing_row, row.source_spacing_col) == spacing
        origin = (offset(256, spacing[0]) + 0.5) * SPACING / spacing[0] - 0.5
        assert row.grid_origin_row == pytest.approx(origin, abs=1e-12)


def test_resampled_masks_are_the_contours_rasterized_on_the_grid(builds):
    data_dir, _, grid = builds
    index = index_of(grid)
    for (study, number), row in index.iterrows():
        s_row, s_col = pixel_spacing(data_dir, study, number)
        arrays = read_sample(grid / row.npz)
        for name, path in (("mask", row.icontour), ("omask", row.ocontour)):
            if name not in arrays:
                assert pd.isna(path)
                continue
            x, y = parse_contour((data_dir / path).read_text()).T
            moved = np.stack(
                [
                    (x + 0.5) * s_col / SPACING - 0.5 - offset(256, s_col),
                    (y + 0.5) * s_row / SPACING - 0.5 - offset(256, s_row),
                ],
                axis=1,
            )
            np.testing.assert_array_equal(arrays[name], contour_to_mask(moved, (SIZE, SIZE)))


def test_resampled_images_match_pillows_bilinear_resize_of_the_same_field(builds):
    # Pillow's resize with a box samples target pixel t at native edge coordinate
    # box0 + (t + 0.5) * S / s: the stated convention, where the box starts at full-grid pixel
    # c0. Growing the image (s > S), Pillow's BILINEAR is plain linear interpolation, as here;
    # shrinking it by 0.8% (1.2891 mm), Pillow widens its filter by 0.8% while this build's
    # Gaussian is negligible (sigma 0.05 pixel), so they differ slightly.
    data_dir, _, grid = builds
    index = index_of(grid)
    for (study, number), row in index.iterrows():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            native = pydicom.dcmread(data_dir / "dicoms" / study / f"{number}.dcm").pixel_array
        spacing = row.source_spacing_row
        c0, ratio = offset(256, spacing), SPACING / spacing
        first = max(0, -c0) + 1  # stay a pixel inside the field of view (Pillow's box must)
        last = SIZE - first
        box = ((c0 + first) * ratio,) * 2 + ((c0 + last) * ratio,) * 2
        pillow = Image.fromarray(native.astype(np.float32), mode="F").resize(
            (last - first, last - first), Image.Resampling.BILINEAR, box=box
        )
        ours = read_sample(grid / row.npz)["image"][first:last, first:last]
        # Pillow computes in float32: 2e-5 of the range is its rounding.
        tolerance = (2e-5 if spacing > SPACING else 0.01) * float(native.max())
        np.testing.assert_allclose(ours, np.asarray(pillow), atol=tolerance)


def test_resampled_mask_areas_agree_with_the_native_build_in_mm2(builds):
    # The check: physical areas (pixels x spacing^2) agree within 1% on average, and
    # each within 1% + 2 pixels' area. Two i-masks of SCD0000301 (1.2891 mm) exceed that by 3-4%
    # of the tolerance: the pixel-centre rule's own noise on these polygons, which merely
    # shifting them by a sub-pixel amount on the native grid reaches as often (about 2% of
    # masks; `python benchmarks/resample_areas.py`, README). All are within 1% + 3 pixels. On
    # another copy of the data the same noise allows a few percent of masks past 1% + 2 pixels.
    _, native, grid = builds
    before, after = index_of(native), index_of(grid)
    differences, beyond = [], set()
    for key, row in before.iterrows():
        native_arrays, grid_arrays = (
            read_sample(native / row.npz),
            read_sample(grid / after.loc[key].npz),
        )
        assert set(native_arrays) == set(grid_arrays)
        for name in ("mask", "omask"):
            if name not in native_arrays:
                continue
            a_native = native_arrays[name].sum() * row.pixel_spacing_row * row.pixel_spacing_col
            a_grid = grid_arrays[name].sum() * SPACING**2
            differences.append((a_grid - a_native) / a_native)
            assert abs(a_grid - a_native) <= 0.01 * a_native + 4 * SPACING**2, (key, name)
            if abs(a_grid - a_native) > 0.01 * a_native + 2 * SPACING**2:
                beyond.add((*key, name))
    assert abs(np.mean(differences)) < 0.01 and np.mean(np.abs(differences)) < 0.01
    assert len(beyond) <= 0.05 * len(differences), sorted(beyond)
    if is_known_real_data():
        assert len(differences) == 111
        assert beyond == {("SCD0000301", 47, "mask"), ("SCD0000301", 180, "mask")}


def test_resampled_build_accounts_for_every_contour_file(builds):
    data_dir, _, grid = builds
    check_accounting(data_dir, grid, ("i", "o"))
