"""The parse-time immutability check with the lean listing: it still refuses every change of a
finished version's inputs, passes a touched but identical file, and ignores how the build ran
(``studies_per_job``). A finished version is built here by the workflow's own functions."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from build_helpers import build_by_calls, change_first_digit
from loader.manifest import read_whole_manifest
from workflow_scripts.build_plan import plan_build
from workflow_scripts.config import default_config
from workflow_scripts.dataset.version_guard import VersionChangedError, check_finished_version
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import read_link_table
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom


@pytest.fixture(scope="module")
def built_once(tmp_path_factory) -> Path:
    """A finished version of a 3-study phantom (plus the listed missing study), built once
    (``raw/``, ``out/``); each test changes a copy of it."""
    root = tmp_path_factory.mktemp("finished")
    raw = write_phantom(root / "raw", PhantomSpec.with_defaults(studies=3, slices=6, size=32))
    config = default_config(data_dir=str(raw), out_dir=str(root / "out"), studies_per_job=7)
    build_by_calls(config)
    return root


@pytest.fixture
def finished(built_once, tmp_path) -> tuple[dict, Layout]:
    """A copy of the finished version and of its raw data, with the files' modification times
    (shutil.copytree copies them to the nanosecond), as if built in ``tmp_path``."""
    for folder in ("raw", "out"):
        shutil.copytree(built_once / folder, tmp_path / folder, symlinks=True)
    config = default_config(
        data_dir=str(tmp_path / "raw"), out_dir=str(tmp_path / "out"), studies_per_job=7
    )
    return config, Layout.from_config(config)


def check(config: dict, **overrides) -> None:
    """The check as the workflow runs it: planning the build raises WorkflowError."""
    config = {**config, **overrides}
    layout = Layout.from_config(config)
    check_finished_version(layout, config, read_link_table(layout.data_dir / "link.csv"))


def a_contour(layout: Layout) -> Path:
    """A contour file that fed a sample (an input the manifest records)."""
    inputs = read_whole_manifest(layout.manifest)["inputs"]
    return layout.data_dir / next(path for path in inputs if path.startswith("contourfiles/"))


def test_an_unchanged_version_and_another_batch_size_pass(finished):
    config, _ = finished
    check(config)
    check(config, studies_per_job=1)
    plan_build({**config, "studies_per_job": 2})  # the workflow's own path, too


def test_manifest_records_no_run_setting_and_inputs_carry_read_time_mtimes(finished):
    _, layout = finished
    manifest = read_whole_manifest(layout.manifest)
    assert "studies_per_job" not in manifest["config"]
    record = json.loads(layout.study_record("PHANTOM0002").read_text())
    for relpath, entry in record["inputs"].items():
        assert set(entry) == {"sha256", "size", "mtime_ns"}
        assert entry["mtime_ns"] == (layout.data_dir / relpath).stat().st_mtime_ns
        assert manifest["inputs"][relpath] == entry


def test_a_changed_byte_is_refused_even_with_the_same_size_and_time(finished):
    config, layout = finished
    contour = a_contour(layout)
    stat = contour.stat()
    change_first_digit(contour)
    # same size; a time that differs from the recorded one (as any write gives)
    os.utime(contour, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    with pytest.raises(VersionChangedError, match="1 input file"):
        check(config)


def test_a_touched_identical_file_passes(finished):
    config, layout = finished
    later = time.time_ns() + 10**9
    os.utime(a_contour(layout), ns=(later, later))
    check(config)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: (d / "dicoms/PHANTOM0001/99.dcm").write_bytes(b"x"), "PHANTOM0001"),
        (lambda d: (d / "dicoms/PHANTOM0002/1.dcm").unlink(), "PHANTOM0002"),
        (lambda d: (d / "dicoms/NEW").mkdir(), r"1 study folder\(s\) added: dicoms/NEW"),
    ],
    ids=["added", "removed", "new-study-folder"],
)
def test_files_added_or_removed_are_refused(finished, change, message):
    config, layout = finished
    change(layout.data_dir)
    with pytest.raises(VersionChangedError, match=message):
        check(config)


def test_a_config_change_is_refused_naming_the_key(finished):
    config, _ = finished
    with pytest.raises(VersionChangedError, match="config contours"):
        check(config, contours=["i", "o"])
