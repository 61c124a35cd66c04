"""Input that makes the whole build meaningless stops the run before any job, naming the cause."""

from __future__ import annotations

import pytest

from conftest import run_workflow

pytestmark = pytest.mark.workflow


def refuse(workdir, *config: str) -> str:
    result = run_workflow(workdir, "--config", "out_dir=out", *config, check=False)
    assert result.returncode != 0
    assert not (workdir / "out").exists(), "a job ran although the build was refused"
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (["version=../x"], "version = '../x': must be a plain name"),
        (["contours=[o]"], "contours = ['o']: must include 'i'"),
        (["checks={'max_pixels': 0}"], "checks.max_pixels = 0: must be >= 1"),
        (["datadir=/x"], "'datadir' is not a setting of this workflow (did you mean 'data_dir'?)"),
        (["data_dir=/nonexistent/folder"], "data_dir: '/nonexistent/folder' is not a folder"),
        (["version=logs"], "reserved"),
    ],
)
def test_bad_config_value_stops_before_any_job(tmp_path, config, fragment):
    assert fragment in refuse(tmp_path, *config)


def test_data_dir_without_link_table_is_refused(tmp_path):
    (tmp_path / "raw").mkdir()
    assert "has no link.csv" in refuse(tmp_path, f"data_dir={tmp_path / 'raw'}")


def test_out_dir_inside_data_dir_is_refused(tmp_path):
    (tmp_path / "link.csv").write_text("patient_id,original_id\nA,B\n")
    result = run_workflow(
        tmp_path, "--config", f"data_dir={tmp_path}", f"out_dir={tmp_path / 'out'}", check=False
    )
    assert result.returncode != 0
    assert "nested" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("patient_id,original_id\nA,B\nA,C\n", "line 3: duplicated patient_id 'A'"),
        ("patient,original\nA,B\n", "missing column(s) patient_id, original_id"),
        ("", "is empty"),
        ("patient_id,original_id\n../../etc,B\n", "line 2: patient_id '../../etc'"),
    ],
)
def test_bad_link_table_stops_before_any_job(tmp_path, content, fragment):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "link.csv").write_text(content)
    output = refuse(tmp_path, f"data_dir={raw}")
    assert fragment in output
    assert "link.csv" in output


def test_a_mistyped_key_is_one_short_paragraph_on_screen(tmp_path):
    output = refuse(tmp_path, "datadir=/data")
    assert "Failed validating" not in output  # the schema dump went to the detail file
    error = output[output.index("Invalid configuration") :]
    assert len(error.strip().splitlines()) <= 4, error
    detail = (tmp_path / ".snakemake" / "log" / "config_errors.txt").read_text()
    assert "Additional properties are not allowed ('datadir' was unexpected)" in detail


def test_exclusions_naming_an_unknown_slice_stop_before_any_job(tmp_path):
    exclusions = tmp_path / "exclusions.csv"
    exclusions.write_text("study_id,slice,reason\nPHANTOM0001,2,ok\nPHANTOM0001,3,no contour\n")
    output = refuse(tmp_path, f"exclusions={exclusions}")
    assert f"{exclusions}: line 3: slice 3 of study 'PHANTOM0001' has no i-contour file" in output
