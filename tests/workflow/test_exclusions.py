"""Reviewed exclusions: the file's format, its checks at parse time, and a study build that
leaves the excluded slices out while accounting for every contour file."""

from __future__ import annotations

import json

import pytest
from snakemake.exceptions import WorkflowError

from workflow_scripts.build_plan import plan_build
from workflow_scripts.config import default_config
from workflow_scripts.dataset.manifest import EXCLUSIONS_INPUT, build_config
from workflow_scripts.dataset.version_guard import VersionChangedError, check_finished_version
from workflow_scripts.layout import Layout
from workflow_scripts.qc.exclusions import (
    ExclusionsError,
    exclusion_message,
    exclusions_csv,
    read_exclusions,
)
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom
from workflow_scripts.study.build import build_study
from workflow_scripts.study.options import BuildOptions

HEADER = "study_id,slice,reason,reviewer,date\n"


def write(tmp_path, text: str, name: str = "exclusions.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """3 phantom studies of 8 slices: i-contours on slices 2, 4, 6, 8 (o-contours on 4, 8),
    study 1 also on slice 10 (whose DICOM is missing)."""
    root = tmp_path_factory.mktemp("raw") / "raw"
    return write_phantom(root, PhantomSpec.with_defaults(studies=3, slices=8, size=64))


def test_reads_decisions_with_lines_and_optional_columns(tmp_path):
    text = '\ufeffstudy_id, slice ,reason,note\r\nS1,0040,wrong slice,x\r\n\r\nS2,7,"a, b",y\r\n'
    decisions = read_exclusions(write(tmp_path, text))
    assert [(d.study_id, d.slice, d.reason, d.reviewer, d.date, d.line) for d in decisions] == [
        ("S1", 40, "wrong slice", "", "", 2),
        ("S2", 7, "a, b", "", "", 4),
    ]


def test_the_review_sheets_format_reads_back_unchanged(tmp_path):
    rows = [
        {"study_id": "S1", "slice": 4, "reason": 'says "no", twice', "reviewer": "Ann",
         "date": "2024-05-02"},
        {"study_id": "S2", "slice": 10, "reason": "cut off", "reviewer": "", "date": ""},
    ]  # fmt: skip
    text = exclusions_csv(rows)
    assert text.splitlines()[0] == "study_id,slice,reason,reviewer,date"
    decisions = read_exclusions(write(tmp_path, text))
    assert [d.as_params() for d in decisions] == rows


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("study,slice,reason\nS1,2,x\n", "line 1: missing column(s) study_id"),
        (HEADER + "S1,2,,Ann,2024-01-01\n", "line 2: empty reason"),
        (HEADER + "S1,2,x\nS1,,x\n", "line 3: empty slice"),
        (HEADER + "S1,two,x\n", "line 2: slice 'two' is not a slice number"),
        (HEADER + "S1,-2,x\n", "line 2: slice '-2' is not a slice number"),
        (HEADER + "S1,2,x,Ann,2024-13-01\n", "line 2: date '2024-13-01' is not a date"),
        (HEADER + "S1,2,x\n\nS1,02,y\n",
         "line 4: study 'S1' slice 2 is excluded twice (first on line 2)"),
    ],
)  # fmt: skip
def test_malformed_files_are_refused_naming_file_line_and_value(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ExclusionsError) as caught:
        read_exclusions(path)
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


def test_message_records_who_excluded_what_and_when():
    decision = {"reason": "wrong slice", "reviewer": "Ann Lee", "date": "2024-05-02"}
    assert exclusion_message(decision) == "excluded by review (Ann Lee, 2024-05-02): wrong slice"
    unnamed = exclusion_message({"reason": "x", "reviewer": "", "date": ""})
    assert unnamed == "excluded by review (an unnamed reviewer, no date given): x"


def plan(raw, exclusions, tmp_path):
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"))
    config["exclusions"] = str(exclusions)
    return plan_build(config)


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("NOSUCH,2,x", "line 3: study 'NOSUCH' is not listed in link.csv"),
        ("PHANTOM0002,3,x", "line 3: slice 3 of study 'PHANTOM0002' has no i-contour file"),
        ("PHANTOM0002,99,x", "(labelled slices: 2, 4, 6, 8)"),
    ],
)
def test_parse_time_check_refuses_unknown_studies_and_unlabelled_slices(
    raw, tmp_path, row, fragment
):
    path = write(tmp_path, HEADER + "PHANTOM0001,2,ok\n" + row + "\n")
    with pytest.raises(WorkflowError) as caught:
        plan(raw, path, tmp_path)
    assert str(path) in str(caught.value) and fragment in str(caught.value)


def test_a_missing_exclusions_file_is_refused_naming_the_key(raw, tmp_path):
    with pytest.raises(WorkflowError, match=r"exclusions: '.*nope\.csv' is not a file"):
        plan(raw, tmp_path / "nope.csv", tmp_path)


def test_each_study_job_gets_only_its_own_decisions(raw, tmp_path):
    path = write(tmp_path, HEADER + "PHANTOM0002,6,b,Ann,\nPHANTOM0001,4,a,,\nPHANTOM0002,2,c,,\n")
    built = plan(raw, path, tmp_path)
    assert [d["slice"] for d in built.exclusions_params("PHANTOM0002")] == [2, 6]
    assert built.exclusions_params("PHANTOM0003") == []
    assert built.exclusions_input["path"] == str(path)
    assert built.exclusions_input["size"] == path.stat().st_size


def test_phantom_labelled_slices_match_the_written_contour_files(raw):
    spec = PhantomSpec.with_defaults(studies=3, slices=8, size=64)
    for patient_id, original_id in spec.study_ids():
        folder = raw / "contourfiles" / original_id / "i-contours"
        on_disk = {int(p.name.split("-")[2]) for p in folder.glob("*.txt")}
        assert spec.labelled_slices(patient_id) == on_disk


def test_excluded_slices_are_left_out_and_every_contour_file_accounted_for(raw, tmp_path):
    layout = Layout(raw, tmp_path / "out", "1.0.0", phantom=False)
    options = BuildOptions.from_config(default_config(contours=["i", "o"]))
    link = StudyLink("PHANTOM0002", "PH-HF-2", 3)
    decisions = [{"slice": 8, "reason": "wrong slice", "reviewer": "Ann", "date": "2024-05-02"}]
    record = build_study(link, layout, options, exclusions=decisions)
    # Slices 2, 6, 8 have readable DICOMs (4 is truncated); 8 is excluded.
    assert [sample["slice"] for sample in record["samples"]] == [2, 6]
    rows = {(p["code"], p["slice"]): p for p in record["problems"]}
    excluded = rows[("excluded_by_review", 8)]
    assert excluded["path"] == "contourfiles/PH-HF-2/i-contours/IM-0001-0008-icontour-manual.txt"
    assert excluded["contour"] == excluded["path"] and excluded["severity"] == "error"
    assert excluded["message"] == "excluded by review (Ann, 2024-05-02): wrong slice"
    unpaired = rows[("ocontour_unpaired", 8)]
    assert unpaired["contour"].endswith("IM-0001-0008-ocontour-manual.txt")
    # The excluded slice's contour files were not read, so they are no inputs of the version;
    # its DICOM is, as every DICOM of the study, for its place in the cine (header only).
    assert not any("0008" in path for path in record["inputs"])
    assert f"dicoms/PHANTOM0002/{8}.dcm" in record["inputs"]
    accounted = [s["icontour"] for s in record["samples"]]
    accounted += [s["ocontour"] for s in record["samples"] if s["ocontour"]]
    accounted += [p["contour"] for p in record["problems"] if p["contour"]]
    on_disk = sorted(
        p.relative_to(raw).as_posix() for p in (raw / "contourfiles" / "PH-HF-2").rglob("*.txt")
    )
    assert sorted(accounted) == on_disk


def finished_phantom_version(tmp_path, exclusions_entry):
    """A finished phantom version (its raw folder deleted, so only config and exclusions are
    compared), built with ``exclusions_entry``."""
    config = default_config(out_dir=str(tmp_path / "out"))
    layout = Layout.from_config(config)
    inputs = {} if exclusions_entry is None else {EXCLUSIONS_INPUT: exclusions_entry}
    manifest = {"format": 1, "build_config": build_config(config, True), "inputs": inputs}
    layout.version_dir.mkdir(parents=True)
    (layout.version_dir / "manifest.json").write_text(json.dumps(manifest))
    return config, layout


def guard(config, layout):
    check_finished_version(layout, config, [])


def test_version_guard_compares_the_exclusions_by_content(tmp_path):
    path = write(tmp_path, HEADER + "PHANTOM0001,2,x\n")
    entry = plan(*_phantom_plan_args(tmp_path, path)).exclusions_input
    config, layout = finished_phantom_version(tmp_path, entry)
    moved = write(tmp_path, path.read_text(), name="moved.csv")
    guard({**config, "exclusions": str(moved)}, layout)  # same content elsewhere: same version
    with pytest.raises(VersionChangedError, match="now without"):
        guard(config, layout)
    path.write_text(HEADER + "PHANTOM0001,4,x\n")
    with pytest.raises(VersionChangedError, match="differs from the file the version was built"):
        guard({**config, "exclusions": str(path)}, layout)


def test_version_guard_refuses_exclusions_added_to_a_finished_version(tmp_path):
    config, layout = finished_phantom_version(tmp_path, None)
    guard(config, layout)
    path = write(tmp_path, HEADER + "PHANTOM0001,2,x\n")
    with pytest.raises(VersionChangedError, match="exclusions: built without"):
        guard({**config, "exclusions": str(path)}, layout)


def _phantom_plan_args(tmp_path, path):
    raw = write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=1, slices=4, size=32))
    return raw, path, tmp_path / "plan"


def test_phantom_exclusions_are_checked_before_the_phantom_exists(tmp_path):
    config = default_config(out_dir=str(tmp_path / "out"), phantom={"studies": 2, "slices": 6})
    config["exclusions"] = str(write(tmp_path, HEADER + "PHANTOM0001,8,x\nPHANTOM0002,3,y\n"))
    with pytest.raises(WorkflowError, match="line 3: slice 3 of study 'PHANTOM0002'"):
        plan_build(config)
    assert not (tmp_path / "out").exists()


# A single contour: the optional `contour` column -------------------------------------------


def test_the_contour_column_names_the_o_contour_alone_or_the_whole_slice(tmp_path):
    text = HEADER.strip() + ",contour\nS1,2,a,,,o\nS1,2,b,,,\nS1,4,c,,,i\nS1,6,d,,, O \n"
    with pytest.raises(ExclusionsError, match="line 5: contour 'O' is not i, o or empty"):
        read_exclusions(write(tmp_path, text))
    decisions = read_exclusions(write(tmp_path, text.replace(" O ", "o")))
    # "i" is the whole slice again: a sample needs its i-contour.
    assert [(d.slice, d.contour) for d in decisions] == [(2, "o"), (2, ""), (4, ""), (6, "o")]
    assert decisions[0].as_params() == {"study_id": "S1", "slice": 2, "reason": "a",
                                        "reviewer": "", "date": "", "contour": "o"}  # fmt: skip
    assert "contour" not in decisions[1].as_params()  # as before the column existed


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ("S1,2,a,o\nS1,2,b,o\n", "line 3: study 'S1' slice 2's o-contour is excluded twice"),
        ("S1,2,a,\nS1,2,b,i\n", "line 3: study 'S1' slice 2 is excluded twice"),
    ],
)
def test_a_contour_excluded_twice_is_refused(tmp_path, rows, fragment):
    with pytest.raises(ExclusionsError, match=fragment):
        read_exclusions(write(tmp_path, "study_id,slice,reason,contour\n" + rows))


def test_the_review_sheets_format_writes_the_contour_column_only_when_needed(tmp_path):
    whole = {"study_id": "S1", "slice": 4, "reason": "x", "reviewer": "", "date": ""}
    assert exclusions_csv([whole]).splitlines()[0] == "study_id,slice,reason,reviewer,date"
    rows = [whole, {**whole, "slice": 8, "contour": "o"}]
    text = exclusions_csv(rows)
    assert text.splitlines() == [
        "study_id,slice,reason,reviewer,date,contour",
        "S1,4,x,,,",
        "S1,8,x,,,o",
    ]
    assert [d.as_params() for d in read_exclusions(write(tmp_path, text))] == rows


O_HEADER = "study_id,slice,reason,reviewer,date,contour\n"


def plan_with(raw, tmp_path, text, contours=("i", "o")):
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"))
    config["contours"] = list(contours)
    config["exclusions"] = str(write(tmp_path, text))
    return plan_build(config)


def test_an_o_contour_decision_needs_an_o_contour_file_that_the_build_reads(raw, tmp_path):
    built = plan_with(raw, tmp_path, O_HEADER + "PHANTOM0002,8,copied,,,o\n")
    assert built.exclusions_params("PHANTOM0002")[0]["contour"] == "o"
    with pytest.raises(WorkflowError) as caught:
        plan_with(raw, tmp_path, O_HEADER + "PHANTOM0002,6,copied,,,o\n")
    assert "line 2: slice 6 of study 'PHANTOM0002' has no o-contour file" in str(caught.value)
    assert "(slices with one: 4, 8)" in str(caught.value)
    with pytest.raises(WorkflowError, match="this build reads no o-contours"):
        plan_with(raw, tmp_path, O_HEADER + "PHANTOM0002,8,copied,,,o\n", contours=("i",))


def test_phantom_o_contour_slices_match_the_written_files(raw):
    spec = PhantomSpec.with_defaults(studies=3, slices=8, size=64)
    for patient_id, original_id in spec.study_ids():
        folder = raw / "contourfiles" / original_id / "o-contours"
        on_disk = {int(p.name.split("-")[2]) for p in folder.glob("*.txt")}
        assert spec.ocontour_slices(patient_id) == on_disk


def test_an_excluded_o_contour_leaves_a_sample_without_omask(raw, tmp_path):
    layout = Layout(raw, tmp_path / "out", "1.0.0", phantom=False)
    options = BuildOptions.from_config(default_config(contours=["i", "o"]))
    link = StudyLink("PHANTOM0003", "PH-HF-3", None)
    decisions = [{"slice": 8, "reason": "copied from 4", "reviewer": "Ann", "date": "",
                  "contour": "o"}]  # fmt: skip
    record = build_study(link, layout, options, exclusions=decisions)
    samples = {sample["slice"]: sample for sample in record["samples"]}
    assert sorted(samples) == [2, 4, 6, 8]
    assert samples[8]["has_omask"] is False and samples[8]["ocontour"] is None
    assert samples[4]["has_omask"] is True
    ocontour = "contourfiles/PH-HF-3/o-contours/IM-0001-0008-ocontour-manual.txt"
    rows = [p for p in record["problems"] if p["code"] == "excluded_by_review"]
    assert len(rows) == 1
    assert rows[0]["path"] == rows[0]["contour"] == ocontour and rows[0]["slice"] == 8
    assert rows[0]["message"] == "excluded by review (Ann, no date given): copied from 4"
    assert ocontour not in record["inputs"]  # never read
    assert "contourfiles/PH-HF-3/i-contours/IM-0001-0008-icontour-manual.txt" in record["inputs"]
    # Excluded whole as well: each contour file is accounted for by its own decision.
    decisions.append({"slice": 8, "reason": "wrong slice", "reviewer": "", "date": ""})
    record = build_study(link, layout, options, exclusions=decisions)
    assert [s["slice"] for s in record["samples"]] == [2, 4, 6]
    rows = {p["contour"]: p for p in record["problems"] if p["slice"] == 8}
    assert {path: row["code"] for path, row in rows.items()} == {
        ocontour: "excluded_by_review",
        "contourfiles/PH-HF-3/i-contours/IM-0001-0008-icontour-manual.txt": "excluded_by_review",
    }
    assert rows[ocontour]["message"].endswith("copied from 4")


def test_phantom_o_contour_exclusions_are_checked_before_the_phantom_exists(tmp_path):
    config = default_config(
        out_dir=str(tmp_path / "out"), phantom={"studies": 2, "slices": 8}, contours=["i", "o"]
    )
    config["exclusions"] = str(write(tmp_path, O_HEADER + "PHANTOM0002,8,copied,,,o\n"))
    assert plan_build(config).exclusions_params("PHANTOM0002")[0]["contour"] == "o"
    config["exclusions"] = str(write(tmp_path, O_HEADER + "PHANTOM0002,6,copied,,,o\n"))
    with pytest.raises(WorkflowError, match=r"slice 6 of study 'PHANTOM0002' has no o-contour"):
        plan_build(config)
    assert not (tmp_path / "out").exists()
