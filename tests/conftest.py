"""Shared fixtures: paths, the real data (when present), and running the workflow."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: The real studies: ../shared/data/sunnybrook beside the repository, or the folder named by
#: the environment variable LVDS_REAL_DATA (a user's own archive in the same layout).
REAL_DATA = Path(
    os.environ.get("LVDS_REAL_DATA") or REPO.parent / "shared" / "data" / "sunnybrook"
).resolve()
#: Content digest of the copy of the real studies this project's tests were written against
#: (../shared/data/sunnybrook: 4 of the 5 studies link.csv lists, 74 i- and 37 o-contours).
#: Counts that hold only for that copy are checked only when REAL_DATA has this digest; every
#: other real-data check holds for any correct copy.
KNOWN_REAL_DATA_DIGEST = "373ad0a6fccd0528d1e1c508dd85675b61337e3f563a911f913c3dd5c8735948"


def real_data_missing() -> str:
    """Why the real-data tests are skipped: where the data was looked for, and how to point
    them at a copy."""
    return (
        f"real data not found at {REAL_DATA} (a folder with link.csv, dicoms/, contourfiles/); "
        "set LVDS_REAL_DATA=/path/to/sunnybrook to run these tests on your copy"
    )


def content_digest(root: Path) -> str:
    """sha256 over the sorted (relative path, sha256) of every file under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        with open(path, "rb") as handle:
            file_digest = hashlib.file_digest(handle, "sha256").hexdigest()
        digest.update(f"{path.relative_to(root).as_posix()}\t{file_digest}\n".encode())
    return digest.hexdigest()


@functools.cache
def is_known_real_data() -> bool:
    """Whether REAL_DATA is the copy the fixture-specific counts were taken from (by content,
    not by path)."""
    return (REAL_DATA / "link.csv").is_file() and content_digest(
        REAL_DATA
    ) == KNOWN_REAL_DATA_DIGEST


@pytest.fixture
def real_data() -> Path:
    """The real Sunnybrook studies (see REAL_DATA); skips the test when absent."""
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(real_data_missing())
    return REAL_DATA


def workflow_command(workdir: Path, *args: str, repo: Path = REPO) -> list[str]:
    """The snakemake command of the tests: the workflow in ``repo`` (this repository unless a
    test runs a copy) with its config and default profile, in ``workdir``, on two cores."""
    return [
        sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"),
        "--configfile", str(repo / "config.yaml"),
        "--workflow-profile", str(repo / "profiles" / "default"),
        "--directory", str(workdir), "--cores", "2", *args,
    ]  # fmt: skip


def run_workflow(
    workdir: Path, *args: str, check: bool = True, repo: Path = REPO
) -> subprocess.CompletedProcess:
    """Run the workflow (:func:`workflow_command`) in ``workdir``; fail unless it succeeds
    (``check``)."""
    command = workflow_command(workdir, *args, repo=repo)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


# Debian's Chromium, driven by Playwright (it never downloads a browser of its own); the flags
# keep it off the closed network (no background connections) and let it run as root.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for the browser tests (skipped cleanly without it or Playwright)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        # Playwright gives each launch a fresh temporary profile (user data dir).
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
