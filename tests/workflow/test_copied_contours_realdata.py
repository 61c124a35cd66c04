"""Copied labels on the real studies (skipped when absent): the untouched studies hold no copy
(checked against a direct comparison of every pair of parsed contours), and in a tmp copy of
two of them, a contour copied onto another study's slice and one copied onto another slice of
its own study are flagged ``contour_duplicate``, each naming the other file, and kept."""

from __future__ import annotations

import csv
import itertools
import shutil

import numpy as np
import pandas as pd
import pytest

from build_helpers import build_by_calls
from conftest import REAL_DATA
from dataset_checks import all_contour_files, check_accounting
from workflow_scripts.config import default_config
from workflow_scripts.raw.contours import parse_contour

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real_links():
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(f"real data not found at {REAL_DATA}")
    with open(REAL_DATA / "link.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    present = [
        row
        for row in rows
        if (REAL_DATA / "dicoms" / row["patient_id"]).is_dir()
        and (REAL_DATA / "contourfiles" / row["original_id"] / "i-contours").is_dir()
    ]
    if len(present) < 2:
        pytest.skip("fewer than two real studies with DICOMs and i-contours")
    return present


def test_no_two_real_contour_files_hold_the_same_points(real_links):
    parsed = {}
    for path in sorted(all_contour_files(REAL_DATA)):
        try:
            parsed[path] = parse_contour((REAL_DATA / path).read_text())
        except Exception:  # a broken file is its own row, never a copy
            continue
    equal = [
        (a, b)
        for a, b in itertools.combinations(parsed, 2)
        if parsed[a].shape == parsed[b].shape and np.array_equal(parsed[a], parsed[b])
    ]
    assert len(parsed) > 0 and equal == []


def i_contours(original_id: str) -> list[str]:
    folder = REAL_DATA / "contourfiles" / original_id / "i-contours"
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    return [f"contourfiles/{original_id}/i-contours/{name}" for name in names]


def test_copies_in_a_copy_of_two_real_studies_are_flagged_and_kept(real_links, tmp_path):
    first, second = real_links[:2]
    raw = tmp_path / "raw"
    (raw / "dicoms").mkdir(parents=True)
    with open(raw / "link.csv", "w", newline="") as handle:
        handle.write("patient_id,original_id\n")
        for row in (first, second):
            handle.write(f"{row['patient_id']},{row['original_id']}\n")
            # The DICOM folders are read through links (follow_symlinks: true), not copied.
            (raw / "dicoms" / row["patient_id"]).symlink_to(
                REAL_DATA / "dicoms" / row["patient_id"]
            )
            shutil.copytree(
                REAL_DATA / "contourfiles" / row["original_id"],
                raw / "contourfiles" / row["original_id"],
            )
    source = i_contours(first["original_id"])
    target = i_contours(second["original_id"])
    # Across studies: the first study's first i-contour over the second's first one; within
    # the first study: its third i-contour over its fifth.
    shutil.copyfile(raw / source[0], raw / target[0])
    shutil.copyfile(raw / source[2], raw / source[4])

    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), contours=["i", "o"])
    layout = build_by_calls(config).layout
    validation = pd.read_parquet(layout.validation_file)
    copies = validation[validation["code"] == "contour_duplicate"]
    found = sorted(zip(copies["path"], copies["message"], strict=True))
    expected = sorted(
        [
            (source[0], f"its points equal those of {target[0]}"),
            (target[0], f"its points equal those of {source[0]}"),
            (source[2], f"its points equal those of {source[4]}"),
            (source[4], f"its points equal those of {source[2]}"),
        ]
    )
    assert found == expected
    index = pd.read_parquet(layout.index_file)
    flagged = set(index.loc[index["flags"].str.contains("contour_duplicate"), "icontour"])
    assert flagged == {source[0], source[2], source[4], target[0]}
    check_accounting(raw, layout.version_dir, ("i", "o"), follow_links=True)
