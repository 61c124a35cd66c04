"""The workflow end to end on the built-in phantom, in a temporary folder."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import run_workflow
from dataset_checks import check_accounting, check_samples_match_raw

pytestmark = pytest.mark.workflow

STUDIES = 20  # the default phantom
SAMPLES = STUDIES * 10 - 1  # 10 contoured slices each, less the one whose DICOM is corrupt


@pytest.fixture(scope="module")
def phantom_build(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("phantom")
    result = run_workflow(workdir, "--config", "out_dir=out", "contours=[i,o]")
    return workdir, result


def test_phantom_build_writes_the_dataset_layout(phantom_build):
    workdir, _ = phantom_build
    version_dir = workdir / "out" / "1.0.0"
    for name in ("manifest.json", "index.parquet", "validation.parquet"):
        assert (version_dir / name).is_file()
    index = pd.read_parquet(version_dir / "index.parquet")
    assert set(index["study_id"]) == {f"PHANTOM{n:04d}" for n in range(1, STUDIES + 1)}
    assert set(index["split"]) == {"train", "val", "test"}
    assert set(index["split"]) <= {"train", "val", "test"}
    assert (index.groupby("study_id")["split"].nunique() == 1).all()  # patient-level splits
    for study in index["study_id"].unique():
        assert (version_dir / "pairs" / f"{study}.parquet").is_file()
        assert (version_dir / "qc" / study / "contact_sheet.jpg").is_file()
    assert list(index["npz"]) == [
        f"slices/{s}/{n:04d}.npz" for s, n in zip(index.study_id, index.slice, strict=True)
    ]


def test_phantom_faults_are_recorded_and_the_rest_is_built(phantom_build):
    workdir, _ = phantom_build
    version_dir = workdir / "out" / "1.0.0"
    validation = pd.read_parquet(version_dir / "validation.parquet")
    rows = {(row.code, row.path) for row in validation.itertuples()}
    assert ("study_missing", f"dicoms/PHANTOM{STUDIES + 1:04d}") in rows
    assert ("dicom_missing", "dicoms/PHANTOM0001/22.dcm") in rows
    assert ("dicom_unreadable", "dicoms/PHANTOM0002/4.dcm") in rows
    assert ("hidden_file", "dicoms/PHANTOM0003/._2.dcm") in rows
    assert (
        "ocontour_unpaired",
        "contourfiles/PH-HF-2/o-contours/IM-0001-0004-ocontour-manual.txt",
    ) in rows
    assert len(pd.read_parquet(version_dir / "index.parquet")) == SAMPLES


def test_phantom_samples_equal_their_raw_sources(phantom_build):
    workdir, _ = phantom_build
    raw = workdir / "out" / "work" / "_phantom"
    assert check_samples_match_raw(raw, workdir / "out" / "1.0.0") == SAMPLES


def test_every_phantom_contour_file_is_accounted_for_once(phantom_build):
    workdir, _ = phantom_build
    check_accounting(workdir / "out" / "work" / "_phantom", workdir / "out" / "1.0.0", ("i", "o"))


def test_run_ends_with_a_summary(phantom_build):
    _, result = phantom_build
    assert f"{SAMPLES} samples" in result.stdout
    assert "study_missing 1" in result.stdout


def test_second_run_has_nothing_to_do(phantom_build):
    workdir, _ = phantom_build
    result = run_workflow(workdir, "--config", "out_dir=out", "contours=[i,o]", "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_manifest_counts_match_the_tables(phantom_build):
    workdir, _ = phantom_build
    version_dir = workdir / "out" / "1.0.0"
    manifest = json.loads((version_dir / "manifest.json").read_text())
    validation = pd.read_parquet(version_dir / "validation.parquet")
    assert manifest["counts"]["samples"] == SAMPLES
    assert manifest["counts"]["problems"] == validation["code"].value_counts().to_dict()
