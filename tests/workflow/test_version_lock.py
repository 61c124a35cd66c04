"""The version's own lock: one build per version, a gone holder recognised and explained."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from workflow_scripts.layout import Layout
from workflow_scripts.version_lock import (
    LOCK_NAME,
    LockHolder,
    VersionLockedError,
    _process_start,
    acquire_version_lock,
    release_version_lock,
)


@pytest.fixture
def layout(tmp_path) -> Layout:
    return Layout(tmp_path / "raw", tmp_path / "out", "1.0.0", phantom=False)


def write_holder(layout: Layout, holder: LockHolder) -> Path:
    path = layout.work_dir / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(holder)))
    return path


def test_the_lock_names_this_process_and_is_released(layout):
    path = acquire_version_lock(layout)
    assert path == layout.out_dir / "work" / "1.0.0" / "build.lock"
    recorded = json.loads(path.read_text())
    assert recorded["pid"] == os.getpid()
    assert recorded["host"] == socket.gethostname()
    release_version_lock(path)
    assert not path.exists()


def test_a_running_holder_refuses_a_second_build_naming_it(layout):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = replace(
            LockHolder.this_process(),
            pid=sleeper.pid,
            process_start=_process_start(sleeper.pid),
            workdir="/somewhere/else",
            user="ann",
        )
        path = write_holder(layout, holder)
        with pytest.raises(VersionLockedError) as refusal:
            acquire_version_lock(layout)
    finally:
        sleeper.kill()
        sleeper.wait()
    message = str(refusal.value)
    assert f"process {sleeper.pid} on host {socket.gethostname()}" in message
    assert "user ann" in message and "/somewhere/else" in message
    assert str(path) in message  # how to remove it once that build is gone
    assert json.loads(path.read_text())["pid"] == sleeper.pid  # not taken


def test_a_lock_left_by_a_killed_build_on_this_host_is_taken_over(layout, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = write_holder(layout, replace(LockHolder.this_process(), pid=dead.pid))
    assert acquire_version_lock(layout) == path
    assert json.loads(path.read_text())["pid"] == os.getpid()
    note = capsys.readouterr().err
    assert f"left by a build that no longer runs: process {dead.pid}" in note
    release_version_lock(path)


def test_a_reused_process_id_does_not_keep_a_stale_lock(layout):
    # This very process, but recorded with another start time: the id was reused.
    me = LockHolder.this_process()
    if me.process_start is None:
        pytest.skip("no /proc: process start times unknown")
    write_holder(layout, replace(me, process_start=me.process_start + 1))
    path = acquire_version_lock(layout)
    assert json.loads(path.read_text())["process_start"] == me.process_start
    release_version_lock(path)


def test_a_lock_from_another_host_is_not_second_guessed(layout):
    write_holder(layout, replace(LockHolder.this_process(), host="elsewhere.example", pid=1))
    with pytest.raises(VersionLockedError, match=r"host elsewhere\.example"):
        acquire_version_lock(layout)


def test_release_leaves_another_holders_lock_alone(layout):
    other = replace(LockHolder.this_process(), host="elsewhere.example")
    path = write_holder(layout, other)
    release_version_lock(path)
    assert path.exists()
