"""Versioned datasets through Snakemake: a finished version refused before any job and a new
version beside it, a finished version never rewritten (touched inputs, newer code, forced
reruns), a killed build finished by a rerun.

The kinds of change a finished version refuses are checked on check_finished_version
(test_version_guard.py), the manifest's content on a build by direct calls (test_manifest.py),
and byte-identical builds in two out_dirs in test_phantom_build.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from build_helpers import tree_digests
from conftest import REPO, run_workflow, workflow_command
from loader.manifest import read_whole_manifest
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


def test_a_finished_version_is_never_rewritten_and_what_would_rewrite_it_is_refused(
    tmp_path, raw_data
):
    """Each of these made Snakemake rerun a finished version's jobs: a touched raw file (its
    batch's fingerprint), a workflow script newer than the outputs (as a git pull leaves it:
    Snakemake's code trigger). Now no job runs and every byte stays, manifest included; a forced
    rerun and a missing file of the build, which would rebuild it, are refused."""
    workflow = tmp_path / "workflow"  # a copy whose scripts the test may touch
    shutil.copytree(
        REPO,
        workflow,
        ignore=shutil.ignore_patterns(".*", "tests", "docs", "benchmarks", "results", "*.egg-info"),
    )
    workdir = tmp_path / "work"
    workdir.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        config = ("--config", f"data_dir={raw_data}", "out_dir=out", "studies_per_job=2")
        return run_workflow(workdir, *config, *args, check=False, repo=workflow)

    assert run().returncode == 0
    version_dir = workdir / "out" / "1.0.0"
    before = tree_digests(version_dir, exclude=())
    logs = sorted((workdir / "out" / "logs").rglob("*"))

    contour = next(raw_data.glob("contourfiles/PH-HF-1/i-contours/*0004*"))
    later = time.time_ns() + 10**9
    os.utime(contour, ns=(later, later))
    for script in (workflow / "workflow_scripts" / "scripts").glob("*.py"):
        os.utime(script, ns=(later, later))
    result = run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr
    assert tree_digests(version_dir, exclude=()) == before
    assert sorted((workdir / "out" / "logs").rglob("*")) == logs  # no job ran

    for forced in (("--forceall",), ("--forcerun", "build_studies")):
        result = run(*forced)
        assert result.returncode != 0
        assert "a forced rerun would rewrite it" in result.stdout + result.stderr, forced
    link_table = workdir / "out" / "work" / "1.0.0" / "link_table.json"
    link_table.unlink()
    result = run()
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "files its build keeps are missing" in said and "link_table.json" in said
    assert tree_digests(version_dir, exclude=()) == before


def test_killed_build_leaves_no_manifest_and_a_rerun_finishes_the_same_dataset(tmp_path):
    raw = write_phantom(
        tmp_path / "raw", PhantomSpec.with_defaults(studies=40, slices=20, size=128)
    )
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir(), clean.mkdir()
    command = workflow_command(killed, "--config", f"data_dir={raw}", "out_dir=out")
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


def test_a_version_finished_before_measures_existed_is_left_as_it_is_and_loads(tmp_path, raw_data):
    """A version built before measures.parquet existed has none in its folder nor its
    manifest: a run over it does nothing (no index step to write one), and the loader opens
    it (older index columns are tested in loader_tests/test_index.py)."""
    import json

    from loader import DatasetIndex

    build(tmp_path, raw_data)
    version_dir = tmp_path / "out" / "1.0.0"
    (version_dir / "measures.parquet").unlink()
    manifest = read_whole_manifest(version_dir / "manifest.json")
    del manifest["outputs"]["measures.parquet"]
    (version_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    before = tree_digests(version_dir, exclude=())
    result = build(tmp_path, raw_data)
    assert "Nothing to be done" in result.stdout + result.stderr
    assert tree_digests(version_dir, exclude=()) == before
    assert len(DatasetIndex(version_dir, verify="full")) > 0
