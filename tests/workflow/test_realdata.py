"""The workflow on the real Sunnybrook studies (skipped when ../shared/data is absent)."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import run_workflow
from dataset_checks import all_contour_files, check_accounting, check_samples_match_raw

pytestmark = [pytest.mark.realdata, pytest.mark.workflow]


@pytest.fixture(scope="module")
def real_build(tmp_path_factory):
    from conftest import REAL_DATA

    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(f"real data not found at {REAL_DATA}")
    workdir = tmp_path_factory.mktemp("real")
    run_workflow(workdir, "--config", f"data_dir={REAL_DATA}", "out_dir=out", "contours=[i,o]")
    return REAL_DATA, workdir / "out" / "1.0.0", workdir


def test_every_i_contour_becomes_a_sample(real_build):
    data_dir, version_dir, _ = real_build
    index = pd.read_parquet(version_dir / "index.parquet")
    assert set(index["icontour"]) == all_contour_files(data_dir, ("i",))
    assert len(index) == 74


def test_every_o_contour_is_paired_with_its_slice(real_build):
    data_dir, version_dir, _ = real_build
    index = pd.read_parquet(version_dir / "index.parquet")
    assert set(index["ocontour"].dropna()) == all_contour_files(data_dir, ("o",))
    assert int(index["has_omask"].sum()) == 37


def test_real_samples_equal_dicom_pixels_and_rasterized_contours(real_build):
    data_dir, version_dir, _ = real_build
    assert check_samples_match_raw(data_dir, version_dir) == 74


def test_missing_real_study_is_reported(real_build):
    _, version_dir, _ = real_build
    validation = pd.read_parquet(version_dir / "validation.parquet")
    missing = validation[validation["code"] == "study_missing"]
    assert list(missing["path"]) == ["dicoms/SCD0000501"]


def test_real_contours_are_all_accounted_for(real_build):
    data_dir, version_dir, _ = real_build
    check_accounting(data_dir, version_dir, ("i", "o"))


def test_real_data_second_run_has_nothing_to_do(real_build):
    data_dir, _, workdir = real_build
    result = run_workflow(
        workdir, "--config", f"data_dir={data_dir}", "out_dir=out", "contours=[i,o]", "--dry-run"
    )
    assert "Nothing to be done" in result.stdout + result.stderr
