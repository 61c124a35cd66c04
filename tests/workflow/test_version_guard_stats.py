"""The immutability check's stat of every recorded input (``input_stats``): in this process or
in the worker process, it gives what ``os.stat`` of each path gives for a file, and -1 for
anything else (links to files followed, broken links, folders, missing files and folders,
files directly in the data folder, names beyond ASCII); a worker that fails leaves the answer
to this process."""

from __future__ import annotations

import itertools
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from workflow_scripts.dataset import input_stats

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


def by_path(root: Path, relpaths: list[str]) -> tuple[list[int], list[int]]:
    """(size, mtime_ns) by ``os.stat`` of each whole path, -1 where it fails or is no file."""
    sizes, times = [], []
    for relpath in relpaths:
        try:
            status = os.stat(root / relpath)
        except OSError:
            status = None
        if status is None or not stat.S_ISREG(status.st_mode):
            sizes.append(-1)
            times.append(-1)
            continue
        sizes.append(status.st_size)
        times.append(status.st_mtime_ns)
    return sizes, times


def request(relpaths: list[str]) -> tuple[np.ndarray, bytes]:
    # an Arrow slice starts at an offset into its buffers: the paths must not shift
    column = pa.chunked_array([pa.array(["x", *relpaths])[1:]])
    return input_stats.arrow_paths(column)


def test_the_paths_come_out_of_arrow_as_their_bytes():
    offsets, data = request(RELPATHS)
    assert [data[a:b].decode() for a, b in itertools.pairwise(offsets)] == RELPATHS


def test_stats_here_equal_stats_by_path(data):
    sizes, times = input_stats.stat_files(os.fsencode(data), *request(RELPATHS))
    expected_sizes, expected_times = by_path(data, RELPATHS)
    assert sizes.tolist() == expected_sizes and times.tolist() == expected_times
    # spot checks against what was written
    assert sizes[RELPATHS.index("dicoms/A/1.dcm")] == 2
    assert sizes[RELPATHS.index("dicoms/B/2.dcm")] == len(b"outside!")
    assert times[RELPATHS.index("dicoms/B/1.dcm")] == 123456789
    for missing in ("dicoms/A/9.dcm", "dicoms/B/3.dcm", "dicoms/B/sub", "dicoms/D/1.dcm"):
        assert sizes[RELPATHS.index(missing)] == -1


def test_the_worker_process_gives_the_same_answer(data, monkeypatch):
    worker = input_stats.StatWorker(str(data), *request(RELPATHS))
    assert worker._process is not None  # it did run
    sizes, times = worker.result()
    assert (sizes.tolist(), times.tolist()) == by_path(data, RELPATHS)
    # a worker that cannot start, or answers nothing, leaves it to this process
    for executable in (str(data / "no-python"), "/bin/true"):
        monkeypatch.setattr(sys, "executable", executable)
        sizes, times = input_stats.StatWorker(str(data), *request(RELPATHS)).result()
        assert (sizes.tolist(), times.tolist()) == by_path(data, RELPATHS)


def test_no_input_gives_empty_arrays(tmp_path):
    for stats in (
        input_stats.stat_files(os.fsencode(tmp_path), *request([])),
        input_stats.StatWorker(str(tmp_path), *request([])).result(),
    ):
        assert [array.shape for array in stats] == [(0,), (0,)]
