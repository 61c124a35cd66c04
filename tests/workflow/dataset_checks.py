"""Independent checks of a built dataset against the raw data it came from.

These re-read the raw files with pydicom and the contour text directly, so that a test does not
take the workflow's own reader as the reference.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom

from loader.sample_file import read_sample
from workflow_scripts.raw.contours import parse_contour
from workflow_scripts.study.masks import contour_to_mask


def all_contour_files(data_dir: Path, kinds=("i", "o"), follow_links: bool = False) -> set[str]:
    """Every file in the contour folders of the configured kinds (``<study>/i-contours/``,
    ``o-contours/``), relative paths. Hidden files (macOS ._ copies) are not contour files;
    they get hidden_file warnings. Symbolic links in a contour folder count as contour files
    (whatever they lead to: one that cannot be followed is an error row that accounts for it);
    linked folders are looked into only with ``follow_links``."""
    found = set()
    for root, dirs, files in os.walk(data_dir / "contourfiles", followlinks=follow_links):
        if Path(root).name not in {f"{kind}-contours" for kind in kinds}:
            continue
        linked_folders = [name for name in dirs if os.path.islink(os.path.join(root, name))]
        for name in files + linked_folders:
            if not name.startswith("."):
                found.add((Path(root) / name).relative_to(data_dir).as_posix())
    return found


def accounted_contours(version_dir: Path) -> tuple[list[str], list[str]]:
    """(contour files used by samples, contour files named by error rows), with repeats."""
    index = pd.read_parquet(version_dir / "index.parquet")
    validation = pd.read_parquet(version_dir / "validation.parquet")
    used = list(index["icontour"]) + [path for path in index["ocontour"] if isinstance(path, str)]
    errors = validation[(validation["severity"] == "error") & validation["contour"].notna()]
    return used, list(errors["contour"])


def check_accounting(
    data_dir: Path, version_dir: Path, kinds=("i",), follow_links: bool = False
) -> None:
    """Every contour file appears exactly once: as a sample's contour or in one error row
    (``follow_links``: also those in linked folders, as a build that follows them sees)."""
    used, errored = accounted_contours(version_dir)
    everything = used + errored
    assert len(everything) == len(set(everything)), "a contour file is accounted twice"
    assert set(everything) == all_contour_files(data_dir, kinds, follow_links)


def check_samples_match_raw(data_dir: Path, version_dir: Path) -> int:
    """Each sample's image equals pydicom's pixels and its masks the rasterized contours."""
    index = pd.read_parquet(version_dir / "index.parquet")
    for row in index.itertuples():
        arrays = read_sample(version_dir / row.npz)
        dicom = pydicom.dcmread(data_dir / "dicoms" / row.study_id / f"{row.slice}.dcm")
        np.testing.assert_array_equal(arrays["image"], dicom.pixel_array)
        assert arrays["mask"].dtype == bool and arrays["mask"].shape == dicom.pixel_array.shape
        points = parse_contour((data_dir / row.icontour).read_text())
        np.testing.assert_array_equal(arrays["mask"], contour_to_mask(points, arrays["mask"].shape))
        assert int(arrays["mask"].sum()) == row.mask_pixels
        if row.has_omask:
            points = parse_contour((data_dir / row.ocontour).read_text())
            np.testing.assert_array_equal(
                arrays["omask"], contour_to_mask(points, arrays["omask"].shape)
            )
        else:
            assert "omask" not in arrays
        assert (version_dir / row.qc).is_file()
    return len(index)
