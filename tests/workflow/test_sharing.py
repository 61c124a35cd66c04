"""A built version is shared: other users read it, and the workflow runs from any folder.

Issue 12: files and folders of a version get the permissions the umask gives, so a second,
unprivileged user can open, iterate and verify it; the workflow runs from a project folder
other than the repository; and two builds of one version from two working folders are kept
apart by the version's own lock.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO, run_workflow
from other_user import CannotSwitchUser, interpreter_paths, run_as_other_user
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = pytest.mark.workflow


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def shared_folder():
    """A folder other users can traverse (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="lvds-shared-"))
    folder.chmod(0o755)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_a_built_version_is_readable_by_another_user(shared_folder, umask_022):
    raw = write_phantom(
        shared_folder / "raw", PhantomSpec.with_defaults(studies=3, slices=8, size=64)
    )
    run_workflow(shared_folder, "--config", f"data_dir={raw}", "out_dir=out")
    version_dir = shared_folder / "out" / "1.0.0"
    modes = {
        path.relative_to(version_dir).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in version_dir.rglob("*")
    }
    assert modes, "nothing was built"
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o755 if (version_dir / name).is_dir() else 0o644)
    }
    assert wrong == {}, "files or folders not as the umask 022 gives"

    epoch = (
        "from loader import BatchLoader\n"
        f"batches = BatchLoader({str(version_dir)!r}, batch_size=4, seed=0, verify='full')\n"
        "print(sum(len(images) for images, masks in batches))\n"
    )
    needed = [*interpreter_paths(), REPO, version_dir]
    try:
        served = run_as_other_user([sys.executable, "-c", epoch], needed, cwd=shared_folder)
        verified = run_as_other_user(
            [sys.executable, "-m", "loader", "verify", "--full", str(version_dir)],
            needed,
            cwd=shared_folder,
        )
    except CannotSwitchUser as reason:
        pytest.skip(f"cannot run as a second user here: {reason}")
    assert served.returncode == 0, served.stderr
    assert int(served.stdout) == 3 * 4 - 1  # 4 contoured slices per study, one corrupt DICOM
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ok" in verified.stdout


def snakemake_from(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the workflow as a user would from ``folder``: only ``-s`` points at the repository
    (no --configfile, --workflow-profile or --directory)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2"]
    result = subprocess.run([*command, *args], capture_output=True, text=True, cwd=folder)
    if check and result.returncode != 0:
        raise AssertionError(result.stdout[-3000:] + result.stderr[-3000:])
    return result


def test_the_workflow_runs_from_a_project_folder_without_a_config(tmp_path):
    raw = write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=2, slices=4, size=48))
    project = tmp_path / "project"
    project.mkdir()
    snakemake_from(project, "--config", f"data_dir={raw}", "out_dir=datasets")
    # the workflow's own config.yaml gave the version; out_dir resolved against the project
    assert (project / "datasets" / "1.0.0" / "manifest.json").is_file()


def test_a_project_folder_config_is_used_and_a_given_configfile_wins(tmp_path):
    raw = write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=2, slices=4, size=48))
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.yaml").write_text(f"data_dir: {raw}\nout_dir: mine\nversion: '2.0.0'\n")
    snakemake_from(project)
    assert (project / "mine" / "2.0.0" / "manifest.json").is_file()
    (project / "other.yaml").write_text("version: '3.0.0'\n")
    snakemake_from(project, "--configfile", "other.yaml")
    assert (project / "mine" / "3.0.0" / "manifest.json").is_file()


def test_a_second_build_of_the_same_version_from_another_folder_is_refused(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    raw = write_phantom(
        tmp_path / "raw", PhantomSpec.with_defaults(studies=30, slices=16, size=128)
    )
    out = tmp_path / "shared-out"
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1",
        "--config", f"data_dir={raw}", f"out_dir={out}",
    ]  # fmt: skip
    running = subprocess.Popen(command, cwd=first, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lock = out / "work" / "1.0.0" / "build.lock"
        deadline = time.monotonic() + 60
        while not lock.exists() and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.exists(), "the first build never took the version's lock"
        refused = subprocess.run(command, cwd=second, capture_output=True, text=True)
    finally:
        first_output = running.communicate(timeout=600)[0].decode()
    assert running.returncode == 0, first_output[-3000:]
    assert refused.returncode != 0
    message = refused.stdout + refused.stderr
    assert "is being built by another run" in message
    assert f"process {running.pid} on host" in message and str(first) in message
    assert not lock.exists(), "the finished build left its lock behind"
