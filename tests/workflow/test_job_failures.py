"""A job that cannot finish says why in one message (issue 12): a full disk names its folder,
a refused manifest names its studies; anything else keeps its traceback. The end-to-end cases
(a real full disk, Snakemake's output) are in test_interruptions.py and test_versions.py."""

from __future__ import annotations

import errno
import io
import sys
from pathlib import Path

import pytest

import workflow_scripts.files as files
from workflow_scripts.dataset.stale_records import StaleRecordsError
from workflow_scripts.files import write_bytes_atomic
from workflow_scripts.job_failures import job_failures


@pytest.fixture
def job_log(tmp_path, monkeypatch):
    """Call to make sys.stderr a file, as the scripts set up their log; returns its path.
    (Called in the test itself: pytest's capture puts its own sys.stderr back between a
    fixture's set-up and the test.)"""
    opened = []

    def use() -> Path:
        opened.append(open(tmp_path / "job.log", "w"))
        monkeypatch.setattr(sys, "stderr", opened[-1])
        return tmp_path / "job.log"

    yield use
    for log in opened:
        log.close()


def test_a_full_disk_is_one_message_naming_the_folder_and_how_to_finish(job_log, tmp_path, capfd):
    log = job_log()
    with pytest.raises(SystemExit) as raised, job_failures("build_studies", tmp_path / "out"):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out/x.npz"))
    assert raised.value.code == 1
    console = capfd.readouterr().err
    assert console.count("\n") == 1
    assert console.startswith("build_studies: No space left on device: the disk holding ")
    assert f"{(tmp_path / 'out').resolve()} is full (" in console
    assert f"while writing {tmp_path / 'out/x.npz'}" in console
    assert "The version has no manifest" in console
    assert "run the same command again" in console
    assert "Traceback" not in console
    assert log.read_text() == console


def test_a_quota_is_a_full_disk_too(job_log, tmp_path, capfd):
    job_log()
    with pytest.raises(SystemExit), job_failures("index_dataset", tmp_path):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")
    console = capfd.readouterr().err
    assert console.startswith("index_dataset: Disk quota exceeded: the disk holding")
    assert "while writing" not in console  # no file named: the folder is


def test_a_refused_manifest_is_its_message(job_log, tmp_path, capfd):
    job_log()
    message = "version '1.0.0': 1 study(ies) were built from files that have changed since"
    with pytest.raises(SystemExit) as raised, job_failures("write_manifest", tmp_path):
        raise StaleRecordsError(message)
    assert raised.value.code == 1
    assert capfd.readouterr().err == f"write_manifest: {message}\n"


def test_other_failures_keep_their_traceback(job_log, tmp_path):
    job_log()
    with pytest.raises(PermissionError), job_failures("build_studies", tmp_path):
        raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(ValueError), job_failures("build_studies", tmp_path):
        raise ValueError("a bug")


def test_a_log_on_the_full_disk_does_not_fail_a_second_time(tmp_path, monkeypatch, capfd):
    class FullLog(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stderr", FullLog())
    with pytest.raises(SystemExit), job_failures("plot_qc", tmp_path):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert "plot_qc: No space left on device" in capfd.readouterr().err
    assert sys.stderr is sys.__stderr__


def test_an_atomic_write_that_fails_names_its_file_and_leaves_nothing(tmp_path, monkeypatch):
    def full_disk(fd, mode):
        import os

        os.close(fd)
        handle = io.BytesIO()
        handle.write = lambda data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full"))
        return handle

    monkeypatch.setattr(files.os, "fdopen", full_disk)
    target = tmp_path / "sub" / "file.bin"
    with pytest.raises(OSError) as raised:
        write_bytes_atomic(target, b"data")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert list((tmp_path / "sub").iterdir()) == []
