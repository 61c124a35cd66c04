"""The immutability check's stat of every recorded input (``raw_state._stat_arrays``: chunks of
an Arrow column through ``file_stat_arrays``) gives what ``os.stat`` of each path gives for a
file, and -1 for anything else (links to files followed, broken links, folders, missing files
and folders, files directly in the data folder, names beyond ASCII), in chunks of any size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from build_helpers import stats_by_path
from workflow_scripts.dataset import raw_state

RELPATHS = [
    "contourfiles/A-1/i-contours/c.txt",
    "dicoms/A/0.dcm",
    "dicoms/A/1.dcm",
    "dicoms/A/9.dcm",  # missing
    "dicoms/B/1.dcm",
    "dicoms/B/2.dcm",  # a link to a file outside
    "dicoms/B/3.dcm",  # a broken link
    "dicoms/B/sub",  # a folder where a file was
    "dicoms/C/4.dcm",  # through a linked study folder
    "dicoms/D/1.dcm",  # its folder is missing
    "dicoms/É/1.dcm",  # not ASCII
    "link.csv",  # directly in the data folder
]


@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "data"
    for folder in ("dicoms/A", "dicoms/B/sub", "dicoms/É", "contourfiles/A-1/i-contours"):
        (root / folder).mkdir(parents=True)
    for number in range(5):
        (root / "dicoms" / "A" / f"{number}.dcm").write_bytes(b"x" * (number + 1))
    (root / "dicoms" / "B" / "1.dcm").write_bytes(b"bb")
    os.utime(root / "dicoms" / "B" / "1.dcm", ns=(1, 123456789))
    (root / "dicoms" / "É" / "1.dcm").write_bytes(b"eee")
    (root / "contourfiles" / "A-1" / "i-contours" / "c.txt").write_text("1 2\n")
    (root / "link.csv").write_text("patient_id,original_id\n")
    (tmp_path / "outside.dcm").write_bytes(b"outside!")
    os.symlink(tmp_path / "outside.dcm", root / "dicoms" / "B" / "2.dcm")
    os.symlink(tmp_path / "nowhere", root / "dicoms" / "B" / "3.dcm")
    os.symlink(root / "dicoms" / "A", root / "dicoms" / "C")
    return root


@pytest.mark.parametrize("chunk", [65_536, 2, 1])
def test_stats_equal_stats_by_path(data, monkeypatch, chunk):
    monkeypatch.setattr(raw_state, "_STAT_CHUNK", chunk)
    # an Arrow slice starts at an offset into its buffers: the paths must not shift
    paths = pa.chunked_array([pa.array(["x", *RELPATHS])[1:]])
    sizes, times = raw_state._stat_arrays(str(data), paths)
    assert sizes.dtype == np.int64 and times.dtype == np.int64
    assert (sizes.tolist(), times.tolist()) == stats_by_path(data, RELPATHS)
    # spot checks against what was written
    assert sizes[RELPATHS.index("dicoms/A/1.dcm")] == 2
    assert sizes[RELPATHS.index("dicoms/B/2.dcm")] == len(b"outside!")
    assert sizes[RELPATHS.index("dicoms/É/1.dcm")] == 3
    assert times[RELPATHS.index("dicoms/B/1.dcm")] == 123456789
    for missing in ("dicoms/A/9.dcm", "dicoms/B/3.dcm", "dicoms/B/sub", "dicoms/D/1.dcm"):
        assert sizes[RELPATHS.index(missing)] == -1


def test_a_relative_data_folder_is_taken_from_the_working_folder(data, monkeypatch):
    monkeypatch.chdir(data.parent)
    sizes, _ = raw_state._stat_arrays("data", pa.chunked_array([["dicoms/A/4.dcm"]]))
    assert sizes.tolist() == [5]


def test_no_input_gives_empty_arrays(tmp_path):
    sizes, times = raw_state._stat_arrays(str(tmp_path), pa.chunked_array([[]], pa.string()))
    assert sizes.shape == (0,) and times.shape == (0,)
