"""Shared fixtures: paths, the real data (when present), and running the workflow."""

from __future__ import annotations

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


@pytest.fixture
def real_data() -> Path:
    """The real Sunnybrook studies (see REAL_DATA); skips the test when absent."""
    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return REAL_DATA


def run_workflow(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run this repository's workflow with its default profile, in ``workdir``."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--configfile",
        str(REPO / "config.yaml"),
        "--workflow-profile",
        str(REPO / "profiles" / "default"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result
