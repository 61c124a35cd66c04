"""Builds that stop before the end, through Snakemake: a Ctrl-C (issue 14) and a full disk
(issue 12). Each says so in one message, leaves no manifest, and the same command then finishes
the very dataset an uninterrupted build gives. (A hard kill is in test_versions.py; the
messages themselves are checked on job_failures in test_job_failures.py.)"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from build_helpers import assert_same_build, tree_digests
from conftest import run_workflow, workflow_command
from loader.manifest import read_whole_manifest
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = pytest.mark.workflow


def test_ctrl_c_says_so_in_one_line_and_a_rerun_finishes_the_same_dataset(tmp_path):
    raw = write_phantom(
        tmp_path / "raw", PhantomSpec.with_defaults(studies=40, slices=20, size=128)
    )
    interrupted, clean = tmp_path / "interrupted", tmp_path / "clean"
    interrupted.mkdir(), clean.mkdir()
    config = (f"data_dir={raw}", "out_dir=out", "studies_per_job=10")
    # its own process group, which a terminal's Ctrl-C signals as a whole
    process = subprocess.Popen(
        workflow_command(interrupted, "--config", *config),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    records = interrupted / "out" / "work" / "1.0.0" / "studies"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(records.glob("*.json"))) < 5:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    output = process.communicate(timeout=300)[0]
    version_dir = interrupted / "out" / "1.0.0"
    assert process.returncode != 0, output
    assert 5 <= len(list(records.glob("*.json"))) < 41, "the Ctrl-C came too late to test"
    assert not (version_dir / "manifest.json").exists()

    assert "Traceback" not in output
    said = [line for line in output.splitlines() if line.startswith("Interrupted")]
    assert said == [
        "Interrupted: version '1.0.0' in out is not finished (it has no manifest); run the "
        "same command again to finish it, keeping what was completed."
    ]
    # ... and it ends the output: no failed-job stanza from Snakemake (issue 18)
    assert output.strip().splitlines()[-1] == said[0]
    for stanza in ("RuleException", "exit status 130", "Error in rule", "WorkflowError"):
        assert stanza not in output, stanza
    snakemake_log = max((interrupted / ".snakemake" / "log").glob("*.snakemake.log"))
    assert "Error in rule build_studies" in snakemake_log.read_text()  # the log keeps it
    # the jobs (and their workers) stopped quietly too: one line in each log, no traceback
    logs = sorted((interrupted / "out" / "logs" / "1.0.0" / "build_studies").glob("*.log"))
    stopped = [log.read_text() for log in logs if "interrupted" in log.read_text()]
    assert stopped, "no batch job saw the Ctrl-C"
    for text in stopped:
        assert "Traceback" not in text and "KeyboardInterrupt" not in text
        assert text.rstrip().endswith(
            "build_studies: interrupted; what was completed is kept for the next run"
        )

    run_workflow(interrupted, "--config", *config)  # no --unlock: Snakemake let go
    run_workflow(clean, "--config", *config)
    assert_same_build(interrupted / "out", clean / "out")
    assert not list(version_dir.rglob(".staging-*"))


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs at tmp_path/disk, unmounted after the test whatever happens; skips where
    it cannot be mounted (mounting needs root, and a system that allows it)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)
        if os.path.ismount(disk):
            subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_says_which_and_after_freeing_space_the_same_command_finishes(
    tmp_path, small_disk
):
    raw = write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=6, slices=12, size=128))
    clean_out, full_out = tmp_path / "clean" / "out", small_disk / "out"
    (tmp_path / "clean").mkdir()
    run_workflow(tmp_path / "clean", "--config", f"data_dir={raw}", f"out_dir={clean_out}")
    needed = sum(path.stat().st_size for path in clean_out.rglob("*") if path.is_file())
    # everything else on the disk is taken by a balloon file, leaving half of what is needed
    balloon = small_disk / "balloon"
    with open(balloon, "wb") as handle:
        handle.write(b"\0" * (shutil.disk_usage(small_disk).free - needed // 2))
    workdir = tmp_path / "work"  # Snakemake's own files stay off the small disk
    workdir.mkdir()
    config = ("--config", f"data_dir={raw}", f"out_dir={full_out}")

    failed = run_workflow(workdir, *config, check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert f"No space left on device: the disk holding {full_out} is full" in output
    assert "Free some space and run the same command again" in output
    assert "Traceback" not in output
    assert not (full_out / "1.0.0" / "manifest.json").exists()

    balloon.unlink()
    run_workflow(workdir, *config)  # the same command
    version_dir = full_out / "1.0.0"
    assert (version_dir / "manifest.json").is_file()
    assert tree_digests(version_dir) == tree_digests(clean_out / "1.0.0")
    manifests = [
        read_whole_manifest(out / "1.0.0" / "manifest.json") for out in (full_out, clean_out)
    ]
    for manifest in manifests:
        del manifest["built_at"], manifest["config"]["out_dir"]
    assert manifests[0] == manifests[1]
    reports = [out / "work" / "1.0.0" / "report" for out in (full_out, clean_out)]
    assert tree_digests(reports[0]) == tree_digests(reports[1])
