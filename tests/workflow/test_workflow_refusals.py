"""Input that makes the whole build meaningless stops the run before any job, naming the cause.

One end-to-end test per kind of refusal: the schema, check_config, link.csv (and, in
test_versions.py, a finished version). Each value every kind refuses, and its message, is
checked on default_config (test_config.py), check_config (test_config.py) and plan_build
(test_build_plan.py).
"""

from __future__ import annotations

import pytest

from conftest import run_workflow

pytestmark = pytest.mark.workflow


def refuse(workdir, *config: str) -> str:
    result = run_workflow(workdir, "--config", "out_dir=out", *config, check=False)
    assert result.returncode != 0
    assert not (workdir / "out").exists(), "a job ran although the build was refused"
    return result.stdout + result.stderr


def test_a_value_the_schema_refuses_stops_before_any_job(tmp_path):
    assert "version = '../x': must be a plain name" in refuse(tmp_path, "version=../x")


def test_a_value_check_config_refuses_stops_before_any_job(tmp_path):
    output = refuse(tmp_path, "data_dir=/nonexistent/folder")
    assert "data_dir: '/nonexistent/folder' is not a folder" in output


def test_a_bad_link_table_stops_before_any_job(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "link.csv").write_text("patient_id,original_id\nA,B\nA,C\n")
    output = refuse(tmp_path, f"data_dir={raw}")
    assert "line 3: duplicated patient_id 'A'" in output
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


def test_a_splits_file_missing_a_listed_study_stops_before_any_job(tmp_path):
    splits = tmp_path / "splits.csv"
    splits.write_text("study_id,split\nPHANTOM0001,train\n")
    output = refuse(tmp_path, f"splits_file={splits}")
    assert f"{splits}: 20 of the 21 studies listed in link.csv have no split" in output
    assert "PHANTOM0002 (PH-HF-2)" in output
