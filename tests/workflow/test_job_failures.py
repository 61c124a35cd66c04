"""A job that cannot finish says why in one message: a full disk names its folder, a refused
manifest names its studies (issue 12), a Ctrl-C is one line in the job's log and none from its
workers (issue 14); anything else keeps its traceback. The end-to-end cases (a real full disk,
a Ctrl-C to a whole run, Snakemake's output) are in test_interruptions.py and test_versions.py.
"""

from __future__ import annotations

import errno
import io
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import pytest

import workflow_scripts.files as files
from build_helpers import phantom, sha256
from workflow_scripts.build_plan import plan_build
from workflow_scripts.config import default_config
from workflow_scripts.dataset.stale_records import StaleRecordsError
from workflow_scripts.files import write_bytes_atomic
from workflow_scripts.job_failures import interrupted_message, job_failures, note_interrupts
from workflow_scripts.study.batch import build_batch


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


def test_a_ctrl_c_ends_a_job_with_one_line_in_its_log_and_status_130(job_log, tmp_path, capfd):
    log = job_log()
    with pytest.raises(SystemExit) as raised, job_failures("index_dataset", tmp_path):
        raise KeyboardInterrupt
    assert raised.value.code == 130
    assert capfd.readouterr().err == ""  # the run says it once, not each job
    said = "index_dataset: interrupted; what was completed is kept for the next run\n"
    assert log.read_text() == said


def ignores_sigint(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGINT, as the kernel says (``SigIgn`` in
    /proc/<pid>/status, a bit mask of signals: bit n - 1 for signal n)."""
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(
        next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16
    )
    return bool(ignored >> (signal.SIGINT - 1) & 1)


@pytest.fixture
def sigint_restored():
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def test_the_run_notes_a_ctrl_c_and_still_handles_it_as_before(sigint_restored):
    noted = note_interrupts()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler runs at the next bytecode
    assert noted == [signal.SIGINT]
    assert interrupted_message("1.0.0", "out") == (
        "Interrupted: version '1.0.0' in out is not finished (it has no manifest); run the "
        "same command again to finish it, keeping what was completed."
    )


def test_a_ctrl_c_stops_a_batch_after_the_studies_in_hand_and_its_workers_stay_quiet(
    tmp_path, capfd, sigint_restored
):
    raw = phantom(tmp_path / "raw", studies=12, slices=6, size=32)
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"))
    plan = plan_build(config)
    layout = plan.layout
    (batch,) = plan.batches

    class CtrlCAfterTwoStudies(io.StringIO):
        """The job's progress log; after two studies a Ctrl-C reaches this process and its
        workers, as a terminal's reaches its whole process group (which, here, would be more
        than the test's own processes)."""

        def __init__(self):
            super().__init__()
            self.ignoring: list[bool] = []  # whether each worker ignored SIGINT

        def write(self, text):
            if self.getvalue().count("\n") == 1 and text.endswith("\n"):
                for worker in multiprocessing.active_children():
                    self.ignoring.append(ignores_sigint(worker.pid))
                    os.kill(worker.pid, signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
            return super().write(text)

    progress = CtrlCAfterTwoStudies()
    with pytest.raises(KeyboardInterrupt):
        build_batch(
            batch, plan.batch_studies(batch), layout, plan.job_options, workers=2,
            record_path=layout.batch_record(batch), log=progress,
        )  # fmt: skip
    assert progress.ignoring == [True, True], "the workers would take the Ctrl-C too"
    assert not layout.batch_record(batch).exists()
    built = sorted(path.stem for path in (layout.work_dir / "studies").glob("*.json"))
    assert 2 <= len(built) < len(plan.studies), "studies not yet started were dropped"
    for study in built:  # each study whose record exists is complete
        record = json.loads(layout.study_record(study).read_text())
        for relpath, digest in record["outputs"].items():
            assert sha256(layout.version_dir / relpath) == digest["sha256"]
    assert not list(layout.version_dir.rglob(".staging-*"))
    assert "Traceback" not in capfd.readouterr().err  # no worker printed one
