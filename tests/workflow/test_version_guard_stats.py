"""The immutability check's stat of every recorded input (``_stat_arrays``: one folder opened,
its files stat'ed relative to it) gives what ``os.stat`` of each path gives, whatever the
entries are: files, links to files (followed), broken links, folders, missing files and
folders, files directly in the data folder, and folders revisited out of order."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from workflow_scripts.dataset.version_guard import _stat_arrays


def by_path(root: Path, relpaths: list[str]) -> tuple[list[int], list[int]]:
    """(size, mtime_ns) by ``os.stat`` of each whole path, -1 where it fails."""
    sizes, times = [], []
    for relpath in relpaths:
        try:
            status = os.stat(root / relpath)
        except OSError:
            sizes.append(-1)
            times.append(-1)
            continue
        sizes.append(status.st_size)
        times.append(status.st_mtime_ns)
    return sizes, times


def test_stats_through_the_folder_equal_stats_by_path(tmp_path):
    root = tmp_path / "data"
    (root / "dicoms" / "A").mkdir(parents=True)
    (root / "dicoms" / "B").mkdir()
    (root / "contourfiles" / "A-1" / "i-contours").mkdir(parents=True)
    for number in range(5):
        (root / "dicoms" / "A" / f"{number}.dcm").write_bytes(b"x" * (number + 1))
    (root / "dicoms" / "B" / "1.dcm").write_bytes(b"bb")
    os.utime(root / "dicoms" / "B" / "1.dcm", ns=(1, 123456789))
    (root / "contourfiles" / "A-1" / "i-contours" / "c.txt").write_text("1 2\n")
    (root / "link.csv").write_text("patient_id,original_id\n")
    outside = tmp_path / "outside.dcm"
    outside.write_bytes(b"outside!")
    os.symlink(outside, root / "dicoms" / "B" / "2.dcm")  # followed, as stat does
    os.symlink(tmp_path / "nowhere", root / "dicoms" / "B" / "3.dcm")  # broken
    os.symlink(root / "dicoms" / "A", root / "dicoms" / "C")  # a linked study folder
    (root / "dicoms" / "B" / "sub").mkdir()  # a folder where a file was recorded
    relpaths = [
        "contourfiles/A-1/i-contours/c.txt",
        "dicoms/A/0.dcm",
        "dicoms/A/1.dcm",
        "dicoms/A/9.dcm",  # missing
        "dicoms/B/1.dcm",
        "dicoms/B/2.dcm",
        "dicoms/B/3.dcm",
        "dicoms/B/sub",
        "dicoms/C/4.dcm",
        "dicoms/D/1.dcm",  # its folder is missing
        "dicoms/A/4.dcm",  # a folder seen before, again
        "link.csv",  # directly in the data folder
    ]
    sizes, times = _stat_arrays(str(root), relpaths)
    expected_sizes, expected_times = by_path(root, relpaths)
    assert sizes.tolist() == expected_sizes and times.tolist() == expected_times
    assert sizes.dtype == np.int64 and times.dtype == np.int64
    # spot checks against what was written
    assert sizes[relpaths.index("dicoms/A/1.dcm")] == 2
    assert sizes[relpaths.index("dicoms/B/2.dcm")] == len(b"outside!")
    assert times[relpaths.index("dicoms/B/1.dcm")] == 123456789
    assert sizes[relpaths.index("dicoms/A/9.dcm")] == -1
    assert sizes[relpaths.index("dicoms/D/1.dcm")] == -1
    assert sizes[relpaths.index("dicoms/B/3.dcm")] == -1


def test_no_input_gives_empty_arrays(tmp_path):
    sizes, times = _stat_arrays(str(tmp_path), [])
    assert sizes.shape == (0,) and times.shape == (0,)
