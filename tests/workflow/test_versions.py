"""Versioned datasets through Snakemake: a finished version refused before any job and a new
version beside it, a touched input rerun to the same bytes, a killed build finished by a rerun.

The kinds of change a finished version refuses are checked on check_finished_version
(test_version_guard.py), the manifest's content on a build by direct calls (test_manifest.py),
and byte-identical builds in two out_dirs in test_phantom_build.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from build_helpers import tree_digests
from conftest import REPO, run_workflow
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = pytest.mark.workflow


@pytest.fixture
def raw_data(tmp_path) -> Path:
    return write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=3, slices=8, size=96))


def build(workdir: Path, raw: Path, *config: str, check: bool = True):
    return run_workflow(workdir, "--config", f"data_dir={raw}", "out_dir=out", *config, check=check)


def test_a_finished_version_refuses_another_config_before_any_job_and_a_new_version_builds(
    tmp_path, raw_data
):
    build(tmp_path, raw_data)
    old_dir = tmp_path / "out" / "1.0.0"
    before = tree_digests(old_dir)
    old_manifest = (old_dir / "manifest.json").read_bytes()
    logs = sorted((tmp_path / "out" / "logs").rglob("*"))
    result = build(tmp_path, raw_data, "contours=[i,o]", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "version '1.0.0'" in output and "is finished" in output
    assert "config contours: ['i'] -> ['i', 'o']" in output
    assert "study(ies)" not in output  # a config change is not also reported as file changes
    assert tree_digests(old_dir) == before
    assert sorted((tmp_path / "out" / "logs").rglob("*")) == logs  # no job ran
    # what the refusal advises: the same change as a new version, the old one untouched
    build(tmp_path, raw_data, "version=2.0.0", "contours=[i,o]")
    assert (tmp_path / "out" / "2.0.0" / "manifest.json").is_file()
    assert tree_digests(old_dir) == before
    assert (old_dir / "manifest.json").read_bytes() == old_manifest


def test_touched_but_identical_input_rebuilds_its_study_to_the_same_bytes(tmp_path, raw_data):
    build(tmp_path, raw_data, "studies_per_job=2")  # 4 listed studies: 2 batches
    version_dir = tmp_path / "out" / "1.0.0"
    before = tree_digests(version_dir)
    contour = next(raw_data.glob("contourfiles/PH-HF-1/i-contours/*0004*"))
    os.utime(contour, ns=(time.time_ns(), time.time_ns()))
    result = build(tmp_path, raw_data, "studies_per_job=2")
    assert (result.stdout + result.stderr).count("rule build_studies:") == 1  # its batch only
    assert (version_dir / "manifest.json").is_file()
    assert tree_digests(version_dir) == before


def test_killed_build_leaves_no_manifest_and_a_rerun_finishes_the_same_dataset(tmp_path):
    raw = write_phantom(
        tmp_path / "raw", PhantomSpec.with_defaults(studies=40, slices=20, size=128)
    )
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir(), clean.mkdir()
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(REPO / "config.yaml"), "--directory", str(killed), "--cores", "2",
        "--config", f"data_dir={raw}", "out_dir=out",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = killed / "out" / "work" / "1.0.0" / "studies"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(records.glob("*.json"))) < 5:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # no chance to clean up: the hardest interruption
    process.wait()
    version_dir = killed / "out" / "1.0.0"
    assert 5 <= len(list(records.glob("*.json"))) < 41, "the kill came too late to test anything"
    assert not (version_dir / "manifest.json").exists()

    # Snakemake keeps its lock after a hard kill; --unlock is its documented first step.
    run_workflow(killed, "--config", f"data_dir={raw}", "out_dir=out", "--unlock")
    run_workflow(killed, "--config", f"data_dir={raw}", "out_dir=out")
    run_workflow(clean, "--config", f"data_dir={raw}", "out_dir=out")
    assert (version_dir / "manifest.json").is_file()
    assert not list(version_dir.rglob(".staging-*"))
    assert tree_digests(version_dir) == tree_digests(clean / "out" / "1.0.0")


def test_under_mtime_rerun_triggers_a_stale_study_refuses_the_manifest_until_rebuilt(
    tmp_path, raw_data
):
    """Snakemake compares the batch fingerprint (a param) only under its default rerun
    triggers: with --rerun-triggers mtime, a contour changed in an unfinished version would
    leave its study built from the old file under a manifest naming the new one."""
    workdir, clean = tmp_path / "build", tmp_path / "clean"
    workdir.mkdir(), clean.mkdir()
    build(workdir, raw_data, "studies_per_job=2", "--until", "build_studies")
    assert not (workdir / "out" / "1.0.0" / "manifest.json").exists()
    contour = next(raw_data.glob("contourfiles/PH-HF-1/i-contours/*0004*"))
    contour.write_text(contour.read_text() + "40.5 40.5\n")
    relpath = contour.relative_to(raw_data).as_posix()

    mtime = ("studies_per_job=2", "--rerun-triggers", "mtime")
    refused = build(workdir, raw_data, *mtime, check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "1 study(ies) were built from files that have changed since" in output
    assert f"PHANTOM0001: {relpath} changed" in output
    assert "Traceback" not in output
    assert not (workdir / "out" / "1.0.0" / "manifest.json").exists()
    # what the message advises, keeping the triggers: force the batch that built it
    forced = output[output.index("--forcerun ") :].split()[1]
    assert forced.startswith("out/work/1.0.0/batches/")
    build(workdir, raw_data, *mtime, "--forcerun", forced)
    build(clean, raw_data, "studies_per_job=2")
    version_dir = workdir / "out" / "1.0.0"
    assert (version_dir / "manifest.json").is_file()
    assert tree_digests(version_dir) == tree_digests(clean / "out" / "1.0.0")
