"""Every refusal of the workflow prints its message and nothing of Python's traceback machinery
(issue 18): no ``File ".../common.smk", line 36, in <module>`` lines, no exception names. (The
interrupted run's one line is checked in test_interruptions.py.)"""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest

from conftest import run_workflow
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom
from workflow_scripts.version_lock import _process_start

pytestmark = pytest.mark.workflow

TRACEBACK_LINE = re.compile(r'^\s*File ".*", line \d+', re.MULTILINE)


def refused(workdir, *args: str) -> str:
    """The output of a run that must be refused, checked for traceback lines."""
    result = run_workflow(workdir, *args, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert not TRACEBACK_LINE.search(output), output
    for machinery in ("Traceback", "WorkflowError", "in <module>", "Error in rule"):
        assert machinery not in output, output
    return output


def test_a_wrong_data_dir_and_a_config_typo_say_only_what_is_wrong(tmp_path):
    output = refused(tmp_path, "--config", "data_dir=/nonexistent/folder")
    assert "data_dir: '/nonexistent/folder' is not a folder" in output
    output = refused(tmp_path, "--config", "datadir=/data")
    assert "'datadir' is not a setting of this workflow (did you mean 'data_dir'?)" in output


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished version 1.0.0 of a small phantom in workdir/out."""
    root = tmp_path_factory.mktemp("finished")
    raw = write_phantom(root / "raw", PhantomSpec.with_defaults(studies=2, slices=6, size=64))
    workdir = root / "work"
    workdir.mkdir()
    run_workflow(workdir, "--config", f"data_dir={raw}", "out_dir=out")
    return workdir, raw


def test_a_finished_version_refusals_say_only_what_is_wrong(finished):
    workdir, raw = finished
    config = ("--config", f"data_dir={raw}", "out_dir=out")
    output = refused(workdir, *config, "contours=[i,o]")
    assert "config contours: ['i'] -> ['i', 'o']" in output
    output = refused(workdir, *config, "--forcerun", "build_studies")
    assert "a forced rerun would rewrite it" in output


def test_a_version_locked_by_another_build_says_only_who_holds_it(tmp_path):
    lock = tmp_path / "out" / "work" / "1.0.0" / "build.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock.write_text(
            json.dumps(
                {
                    "host": socket.gethostname(),
                    "pid": holder.pid,
                    "user": "ann",
                    "started": "2026-01-01T00:00:00Z",
                    "workdir": "/somewhere/else",
                    "process_start": _process_start(holder.pid),
                }
            )
        )
        output = refused(tmp_path, "--config", "out_dir=out")
    finally:
        holder.kill()
        holder.wait()
    assert f"is being built by another run: process {holder.pid}" in output
    assert not (tmp_path / "out" / "1.0.0").exists()  # no job ran
    # ended from onstart, with Snakemake's lock of the working folder taken: it let go
    assert not list((tmp_path / ".snakemake" / "locks").glob("*"))
