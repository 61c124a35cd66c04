"""The real Sunnybrook studies (skipped when absent): built by direct calls to check what the
dataset holds, and once through Snakemake to check it builds the same and that a rerun has
nothing to do (the real data's job fingerprints are file sizes and times).

The checks hold for any correct copy of the data (``LVDS_REAL_DATA`` names another one); the
counts of the copy the project ships beside it are checked only when the data is that copy,
recognised by its content digest (``conftest.is_known_real_data``).
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd
import pytest

from build_helpers import assert_same_build, build_by_calls, reference_mask
from conftest import REAL_DATA, is_known_real_data, real_data_missing, run_workflow
from dataset_checks import all_contour_files, check_accounting, check_samples_match_raw
from loader.sample_file import read_sample
from workflow_scripts.config import default_config

pytestmark = pytest.mark.realdata

CONFIG = ("--config", f"data_dir={REAL_DATA}", "out_dir=out", "contours=[i,o]")


@pytest.fixture(scope="module")
def real_build(tmp_path_factory):
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(real_data_missing())
    workdir = tmp_path_factory.mktemp("real")
    config = default_config(data_dir=str(REAL_DATA), out_dir="out", contours=["i", "o"])
    version_dir = workdir / build_by_calls(config, workdir).layout.version_dir
    return REAL_DATA, version_dir, workdir


def contour_number(path: str) -> int:
    return int(re.search(r"IM-0001-(\d{4})-[io]contour", path)[1])


def test_samples_come_from_the_i_contours_each_on_its_own_slice(real_build):
    data_dir, version_dir, _ = real_build
    index = pd.read_parquet(version_dir / "index.parquet")
    assert set(index["icontour"]) <= all_contour_files(data_dir, ("i",))
    assert index["icontour"].is_unique
    assert [contour_number(path) for path in index["icontour"]] == list(index["slice"])
    if is_known_real_data():  # every i-contour of the shipped copy is sound
        assert set(index["icontour"]) == all_contour_files(data_dir, ("i",))
        assert len(index) == 74


def test_o_contours_are_paired_with_their_slice(real_build):
    data_dir, version_dir, _ = real_build
    index = pd.read_parquet(version_dir / "index.parquet")
    paired = index.dropna(subset=["ocontour"])
    assert set(paired["ocontour"]) <= all_contour_files(data_dir, ("o",))
    assert [contour_number(path) for path in paired["ocontour"]] == list(paired["slice"])
    assert list(index["has_omask"]) == list(index["ocontour"].notna())
    if is_known_real_data():
        assert set(paired["ocontour"]) == all_contour_files(data_dir, ("o",))
        assert len(paired) == 37


def test_real_samples_equal_dicom_pixels_and_rasterized_contours(real_build):
    data_dir, version_dir, _ = real_build
    checked = check_samples_match_raw(data_dir, version_dir)
    assert checked == len(pd.read_parquet(version_dir / "index.parquet")) > 0
    if is_known_real_data():
        assert checked == 74


def test_real_masks_equal_an_independent_rasterization(real_build):
    data_dir, version_dir, _ = real_build
    index = pd.read_parquet(version_dir / "index.parquet")
    first_per_study = index.groupby("study_id").head(1)
    assert len(first_per_study) == index["study_id"].nunique()
    if is_known_real_data():
        assert len(first_per_study) == 4
    for row in first_per_study.itertuples():
        mask = read_sample(version_dir / row.npz)["mask"]
        expected = reference_mask(np.loadtxt(data_dir / row.icontour), mask.shape)
        np.testing.assert_array_equal(mask, expected)


def test_listed_studies_missing_on_disk_are_reported(real_build):
    data_dir, version_dir, _ = real_build
    with open(data_dir / "link.csv", newline="", encoding="utf-8-sig") as handle:
        listed = [row["patient_id"].strip() for row in csv.DictReader(handle)]
    absent = sorted(
        f"dicoms/{study}" for study in listed if not (data_dir / "dicoms" / study).is_dir()
    )
    validation = pd.read_parquet(version_dir / "validation.parquet")
    missing = validation[validation["code"] == "study_missing"]
    assert sorted(missing["path"]) == absent
    if is_known_real_data():
        assert absent == ["dicoms/SCD0000501"]


def test_real_contours_are_all_accounted_for(real_build):
    data_dir, version_dir, _ = real_build
    check_accounting(data_dir, version_dir, ("i", "o"))


@pytest.fixture(scope="module")
def real_snakemake_build(real_build, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("real_snakemake")
    run_workflow(workdir, *CONFIG)
    return workdir


@pytest.mark.workflow
def test_snakemake_builds_the_same_real_dataset_as_the_direct_calls(
    real_build, real_snakemake_build
):
    _, _, calls_workdir = real_build
    assert_same_build(real_snakemake_build / "out", calls_workdir / "out")


@pytest.mark.workflow
def test_real_data_second_run_has_nothing_to_do(real_snakemake_build):
    result = run_workflow(real_snakemake_build, *CONFIG, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_the_real_studies_hold_no_copied_contour(real_build):
    """No contour file of the real data is a copy of another (test_copied_contours_realdata.py
    compares every pair of parsed contours directly); the build agrees."""
    _, version_dir, _ = real_build
    validation = pd.read_parquet(version_dir / "validation.parquet")
    assert "contour_duplicate" not in set(validation["code"])
    index = pd.read_parquet(version_dir / "index.parquet")
    assert not index["flags"].fillna("").str.contains("contour_duplicate").any()
