"""The ``resample`` key end to end: given on the command line, recorded in the version, guarded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import run_workflow
from loader.manifest import read_whole_manifest
from loader.sample_file import read_sample
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = pytest.mark.workflow

GRID = "resample={spacing_mm: 1.0, shape: [128, 128]}"
OTHER_GRID = "resample={spacing_mm: 1.2, shape: [128, 128]}"


@pytest.fixture
def raw_data(tmp_path) -> Path:
    # 96 x 96 pixels of 1.3672 mm (the phantom's spacing): 131 mm, 131 pixels of 1 mm
    return write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=3, slices=8, size=96))


def build(workdir: Path, raw: Path, *config: str, check: bool = True):
    return run_workflow(workdir, "--config", f"data_dir={raw}", "out_dir=out", *config, check=check)


def test_a_resampled_version_is_built_recorded_and_guarded(tmp_path, raw_data):
    build(tmp_path, raw_data, GRID)
    version_dir = tmp_path / "out" / "1.0.0"
    index = pd.read_parquet(version_dir / "index.parquet")
    assert len(index) == 3 * 4 - 1
    assert set(index.pixel_spacing_row) == set(index.pixel_spacing_col) == {1.0}
    assert set(index.source_spacing_row) == {1.3672}
    assert set(index.image_dtype) == {"float32"}
    arrays = read_sample(version_dir / index.npz[0])
    assert arrays["image"].shape == arrays["mask"].shape == (128, 128)
    manifest = read_whole_manifest(version_dir / "manifest.json")
    assert manifest["build_config"]["resample"] == {"spacing_mm": 1.0, "shape": [128, 128]}

    again = build(tmp_path, raw_data, GRID, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr

    refused = build(tmp_path, raw_data, OTHER_GRID, check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "config resample: " in output and "-> {'spacing_mm': 1.2, 'shape': [128, 128]}" in output

    native = build(tmp_path, raw_data, "version=native")
    assert native.returncode == 0
    manifest = read_whole_manifest(tmp_path / "out" / "native" / "manifest.json")
    assert "resample" not in manifest["build_config"]


def test_a_bad_grid_stops_the_run_before_any_job(tmp_path):
    result = run_workflow(
        tmp_path, "--config", "out_dir=out", "resample={spacing_mm: 0, shape: [8, 8]}", check=False
    )
    assert result.returncode != 0
    assert "resample" in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()
