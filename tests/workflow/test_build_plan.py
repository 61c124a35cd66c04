"""What the Snakefile works out when parsed: the studies, each job's parameters, and the
refusals that stop a run before any job (one WorkflowError message each)."""

from __future__ import annotations

import json
import os

import pytest
from snakemake.exceptions import WorkflowError

from build_helpers import build_by_calls, phantom
from workflow_scripts.build_plan import plan_build, print_summary
from workflow_scripts.config import default_config
from workflow_scripts.raw.links import StudyLink, read_link_table
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom


@pytest.fixture
def raw(tmp_path):
    return phantom(tmp_path / "raw", studies=2, slices=4, size=32)


def test_a_phantom_plan_lists_the_studies_the_phantom_link_table_will_list(tmp_path):
    config = default_config(out_dir=str(tmp_path / "out"), phantom={"studies": 3, "slices": 4})
    plan = plan_build(config)
    assert plan.layout.phantom and not plan.layout.data_dir.exists()
    spec = PhantomSpec(**config["phantom"])
    written = read_link_table(write_phantom(tmp_path / "generated", spec) / "link.csv")
    assert plan.links == written
    assert list(plan.studies) == ["PHANTOM0001", "PHANTOM0002", "PHANTOM0003", "PHANTOM0004"]
    assert plan.fingerprint("PHANTOM0001") == "phantom"
    assert plan.raw_listing_inputs == [str(plan.layout.data_dir)]


def test_a_data_plan_lists_the_studies_of_link_csv_in_file_order(tmp_path):
    data = tmp_path / "raw"
    data.mkdir()
    (data / "link.csv").write_text("patient_id,original_id\nZ9,oz\n\nA1,oa\n")
    plan = plan_build(default_config(data_dir=str(data), out_dir=str(tmp_path / "out")))
    assert plan.links == [StudyLink("Z9", "oz", 2), StudyLink("A1", "oa", 4)]
    assert list(plan.studies) == ["Z9", "A1"]
    assert plan.link_params("A1") == {"patient_id": "A1", "original_id": "oa", "line": 4}
    assert plan.links_params == [plan.link_params("Z9"), plan.link_params("A1")]
    assert [StudyLink(**params) for params in plan.links_params] == plan.links
    assert plan.raw_listing_inputs == []  # neither dicoms/ nor contourfiles/ exists
    (data / "dicoms").mkdir()
    assert plan.raw_listing_inputs == [str(data / "dicoms")]


def test_job_options_are_the_config_sections_that_shape_a_study(raw, tmp_path):
    config = default_config(
        data_dir=str(raw),
        out_dir=str(tmp_path / "out"),
        contours=["i", "o"],
        qc={"window": "percentile"},
    )
    plan = plan_build(config)
    assert plan.contour_kinds == ("i", "o")
    assert plan.options_params == {
        "contours": ["i", "o"],
        "checks": config["checks"],
        "qc": config["qc"],
    }
    assert plan.options_params["qc"]["window"] == "percentile"
    json.dumps(plan.options_params)  # plain data, as a job's params must be


def test_fingerprints_and_pairings_are_worked_out_once_per_run(raw, tmp_path):
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"))
    plan = plan_build(config)
    link = plan.studies["PHANTOM0001"]
    assert plan.pairing(link, raw, ("i",)) is plan.pairing(link, raw, ("i",))
    before = plan.fingerprint("PHANTOM0001")
    other = plan.fingerprint("PHANTOM0002")
    assert before != other
    contour = next(raw.glob("contourfiles/PH-HF-1/i-contours/*0002*"))
    later = contour.stat().st_mtime_ns + 5_000_000_000
    os.utime(contour, ns=(later, later))
    assert plan.fingerprint("PHANTOM0001") == before  # this run's value
    assert plan_build(config).fingerprint("PHANTOM0001") != before  # the next run sees it


def refusal(config) -> str:
    with pytest.raises(WorkflowError) as raised:
        plan_build(config)
    error = raised.value
    assert error.__cause__ is None and error.__suppress_context__  # one message, no chain
    return str(error)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("patient_id,original_id\nA,B\nA,C\n", "line 3: duplicated patient_id 'A'"),
        ("patient,original\nA,B\n", "missing column(s) patient_id, original_id"),
        ("", "is empty"),
        ("patient_id,original_id\n../../etc,B\n", "line 2: patient_id '../../etc'"),
    ],
)
def test_a_bad_link_table_stops_the_plan_naming_the_file(tmp_path, content, fragment):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "link.csv").write_text(content)
    message = refusal(default_config(data_dir=str(tmp_path / "raw"), out_dir=str(tmp_path / "o")))
    assert fragment in message
    assert str(tmp_path / "raw" / "link.csv") in message


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"version": "logs"}, "version: 'logs' is reserved"),
        ({"splits": {"train": 0.5, "val": 0.1, "test": 0.1}}, "add up to 0.7, not 1"),
        ({"data_dir": "/nonexistent/folder"}, "data_dir: '/nonexistent/folder' is not a folder"),
        ({"out_dir": "{raw}/out"}, "are nested"),
    ],
)
def test_a_config_the_schema_cannot_judge_stops_the_plan(raw, tmp_path, overrides, fragment):
    config = {"data_dir": str(raw), "out_dir": str(tmp_path / "out")}
    config |= {k: v.format(raw=raw) if isinstance(v, str) else v for k, v in overrides.items()}
    assert fragment in refusal(default_config(**config))


def test_a_data_dir_without_link_table_stops_the_plan(tmp_path):
    (tmp_path / "raw").mkdir()
    config = default_config(data_dir=str(tmp_path / "raw"), out_dir=str(tmp_path / "out"))
    assert refusal(config).endswith("has no link.csv")


def test_a_finished_version_built_otherwise_stops_the_plan(raw, tmp_path):
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"))
    build_by_calls(config)
    plan_build(config)  # the same build again: nothing to refuse
    message = refusal(default_config(**{**config, "contours": ["i", "o"]}))
    assert "is finished" in message and "config contours: ['i'] -> ['i', 'o']" in message


def test_the_summary_gives_the_counts_and_the_problems_by_code(tmp_path, capsys):
    counts = {
        "studies": 21, "studies_with_samples": 20, "dicoms": 400, "contour_files": 201,
        "samples": 199, "problems": {"dicom_missing": 1, "study_missing": 1},
    }  # fmt: skip
    manifest = tmp_path / "out" / "1.0.0" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"counts": counts}))
    print_summary(manifest)
    assert capsys.readouterr().out.splitlines() == [
        f"Dataset {manifest.parent}: 21 studies listed (20 with samples), 400 DICOM files, "
        "201 contour files -> 199 samples.",
        f"Problems ({manifest.parent / 'validation.parquet'}): dicom_missing 1, study_missing 1.",
    ]
    manifest.write_text(json.dumps({"counts": {**counts, "problems": {}}}))
    print_summary(manifest)
    assert capsys.readouterr().out.splitlines()[-1] == "No problems found."


def test_the_summary_of_a_built_version(raw, tmp_path, capsys):
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"))
    plan = build_by_calls(config)
    print_summary(plan.layout.manifest)
    out = capsys.readouterr().out
    # two studies and an absent one; slices 2 and 4 contoured, study 1's contour 6 has no
    # DICOM and study 2's DICOM 4 is truncated: 3 samples
    assert "3 studies listed (2 with samples), 8 DICOM files, 5 contour files -> 3 samples." in out
    assert "dicom_missing 1, dicom_unreadable 1, study_missing 1." in out
