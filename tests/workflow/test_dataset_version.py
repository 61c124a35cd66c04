"""A whole version of phantom studies built by direct calls (as the rules call the workflow's
functions), checked against its raw files with the independent checks of dataset_checks.py: the
checks test_phantom_build.py made on a Snakemake build, which now only shows that Snakemake
builds the same bytes."""

from __future__ import annotations

import pandas as pd
import pytest

from build_helpers import build_by_calls, phantom
from dataset_checks import check_accounting, check_samples_match_raw
from workflow_scripts.config import default_config

STUDIES = 3
SAMPLES = STUDIES * 4 - 1  # 4 contoured slices each, less the one whose DICOM is corrupt


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    root = tmp_path_factory.mktemp("version")
    raw = phantom(root / "raw", studies=STUDIES, slices=8, size=64)
    plan = build_by_calls(
        default_config(data_dir=str(raw), out_dir=str(root / "out"), contours=["i", "o"])
    )
    version_dir = plan.layout.version_dir
    return (
        raw,
        version_dir,
        pd.read_parquet(version_dir / "index.parquet"),
        pd.read_parquet(version_dir / "validation.parquet"),
    )


def test_the_version_holds_the_dataset_layout(version):
    _, version_dir, index, _ = version
    for name in ("manifest.json", "index.parquet", "validation.parquet"):
        assert (version_dir / name).is_file()
    assert set(index["study_id"]) == {f"PHANTOM{n:04d}" for n in range(1, STUDIES + 1)}
    assert (index.groupby("study_id")["split"].nunique() == 1).all()  # patient-level splits
    assert set(index["split"]) <= {"train", "val", "test"}
    for study in index["study_id"].unique():
        assert (version_dir / "pairs" / f"{study}.parquet").is_file()
        assert (version_dir / "qc" / study / "contact_sheet.jpg").is_file()
    assert list(index["npz"]) == [
        f"slices/{s}/{n:04d}.npz" for s, n in zip(index.study_id, index.slice, strict=True)
    ]


def test_the_phantoms_faults_are_rows_of_the_validation_table(version):
    _, _, index, validation = version
    rows = {(row.code, row.path) for row in validation.itertuples()}
    assert ("study_missing", f"dicoms/PHANTOM{STUDIES + 1:04d}") in rows
    assert ("dicom_missing", "dicoms/PHANTOM0001/10.dcm") in rows  # slices + 2
    assert ("dicom_unreadable", "dicoms/PHANTOM0002/4.dcm") in rows
    assert ("hidden_file", "dicoms/PHANTOM0003/._2.dcm") in rows
    assert (
        "ocontour_unpaired",
        "contourfiles/PH-HF-2/o-contours/IM-0001-0004-ocontour-manual.txt",
    ) in rows
    assert len(index) == SAMPLES


def test_the_samples_equal_their_raw_sources(version):
    raw, version_dir, _, _ = version
    assert check_samples_match_raw(raw, version_dir) == SAMPLES


def test_every_contour_file_is_accounted_for_once(version):
    raw, version_dir, _, _ = version
    check_accounting(raw, version_dir, ("i", "o"))
