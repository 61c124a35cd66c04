"""What the Python API says when given a folder that is not a finished version (issue 18): a
folder of versions lists them and says which to pass; raw data says it is raw data and how to
build a version from it; an unfinished build says to finish it. ``python -m loader info`` says
the same."""

from __future__ import annotations

import pytest
from loader_helpers import build_dataset

from loader import BatchLoader, DatasetIndex
from loader.cli import main
from loader.manifest import DatasetNotFinishedError
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom


def test_a_folder_of_versions_lists_the_finished_ones_and_says_which_to_pass(tmp_path):
    build_dataset(tmp_path, study_sizes=(1,), version="1.0.0", built_at="2026-01-01T00:00:00Z")
    build_dataset(tmp_path, study_sizes=(1,), version="1.1.0", built_at="2026-02-01T00:00:00Z")
    build_dataset(tmp_path, study_sizes=(1,), version="2.0.0", manifest=False)
    for opening in (DatasetIndex, lambda path: BatchLoader(path, batch_size=1)):
        with pytest.raises(DatasetNotFinishedError) as error:
            opening(tmp_path)
        message = str(error.value)
        assert "a folder of dataset versions" in message
        assert "2 finished version(s): 1.0.0, 1.1.0" in message  # 2.0.0 is not finished
        assert f"Pass one of them, e.g. {tmp_path / '1.1.0'}" in message  # the latest
        assert "Run the workflow to finish it" not in message


def test_a_raw_data_folder_is_named_as_such_with_how_to_build_a_version(tmp_path, capsys):
    raw = write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=1, slices=2, size=16))
    with pytest.raises(DatasetNotFinishedError) as error:
        DatasetIndex(raw)
    message = str(error.value)
    assert "raw data in the Sunnybrook layout" in message
    assert f"--config data_dir={raw}" in message
    assert "Run the workflow to finish it" not in message
    assert main(["info", str(raw)]) == 2
    assert "raw data in the Sunnybrook layout" in capsys.readouterr().err


def test_an_unfinished_version_is_told_to_finish_and_an_empty_folder_what_a_version_is(tmp_path):
    unfinished = build_dataset(tmp_path / "out", study_sizes=(1,), manifest=False)
    with pytest.raises(DatasetNotFinishedError, match=r"did not complete\. Run the workflow"):
        DatasetIndex(unfinished.root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFinishedError, match="not a dataset version folder"):
        DatasetIndex(empty)
