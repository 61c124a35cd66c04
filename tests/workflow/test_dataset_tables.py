"""The version's tables from study records, and the study folders link.csv does not list."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from loader.index_columns import INDEX_COLUMNS as SOURCE_COLUMNS
from workflow_scripts.config import default_config
from workflow_scripts.dataset.batch_tables import batch_tables, load_records
from workflow_scripts.dataset.splits import assign_split
from workflow_scripts.dataset.tables import (
    find_unlisted_studies,
    index_table,
    write_dataset_tables,
)
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.phantom import PhantomSpec

INDEX_COLUMNS = {
    "version": "string", "study_id": "string", "original_id": "string", "slice": "int32",
    "npz": "string", "qc": "string", "split": "string", "height": "int32", "width": "int32",
    "image_dtype": "string", "has_omask": "bool", "mask_pixels": "int64",
    "omask_pixels": "int64", "icontour": "string", "ocontour": "string",
    "i_outside_o": "double", "flags": "string",
    "position": "int32", "position_mm": "double", "phase": "int32", "trigger_time": "double",
    "cardiac_phase": "string",
    "pixel_spacing_row": "double", "pixel_spacing_col": "double",
    "source_spacing_row": "double", "source_spacing_col": "double",
    "grid_origin_row": "double", "grid_origin_col": "double",
    "slice_thickness": "double", "slice_location": "double",
    "image_position": "fixed_size_list<element: double>[3]",
    "image_orientation": "fixed_size_list<element: double>[6]",
    "intensity_p01": "double", "intensity_p25": "double", "intensity_p50": "double",
    "intensity_p75": "double", "intensity_p99": "double",
}  # fmt: skip
VALIDATION_COLUMNS = {
    "study_id": "string", "slice": "int32", "path": "string", "contour": "string",
    "code": "string", "severity": "string", "message": "string", "value": "double",
}  # fmt: skip


def sample(study: str, number: int, **fields) -> dict:
    return {
        "study_id": study,
        "original_id": f"O-{study}",
        "slice": number,
        "npz": f"slices/{study}/{number:04d}.npz",
        "qc": f"qc/{study}/{number:04d}.png",
        "icontour": f"contourfiles/O-{study}/i-contours/{number}.txt",
        "ocontour": None,
        "height": 64,
        "width": 64,
        "image_dtype": "int16",
        "has_omask": False,
        "mask_pixels": 10 * number,
        "omask_pixels": None,
        "i_outside_o": None,
        "flags": "",
        **fields,
    }


def problem(study: str, path: str, code: str, number=None, severity="error", **fields) -> dict:
    return {
        "study_id": study,
        "path": path,
        "code": code,
        "message": f"{code} at {path}",
        "slice": number,
        "value": None,
        "contour": None,
        "severity": severity,
        **fields,
    }


def record(study: str, samples: list[dict], problems: list[dict] = ()) -> dict:
    return {"study_id": study, "samples": samples, "problems": list(problems)}


def write_records(folder: Path, *records: dict) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in records:
        path = folder / f"{item['study_id']}.json"
        path.write_text(json.dumps(item))
        paths.append(path)
    return paths


SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}


def write_tables(tmp_path, records, links=(), fractions=SPLITS, data_dir=None, kinds=("i",)):
    paths = write_records(tmp_path / "records", *records)
    index, validation = tmp_path / "v" / "index.parquet", tmp_path / "v" / "validation.parquet"
    data_dir = data_dir or tmp_path / "raw"
    tables = batch_tables(data_dir, load_records(paths))
    write_dataset_tables(
        tables, list(links), data_dir, kinds, "7.0", fractions, 0, index, validation
    )
    return pq.read_table(index), pq.read_table(validation)


def test_records_are_read_sorted_by_study(tmp_path):
    paths = write_records(tmp_path, record("B", []), record("C", []), record("A", []))
    assert [r["study_id"] for r in load_records(paths)] == ["A", "B", "C"]


def test_index_rows_are_sorted_by_study_and_slice_whatever_the_record_order(tmp_path):
    records = [
        record("S2", [sample("S2", 10), sample("S2", 2)]),
        record("S1", [sample("S1", 30), sample("S1", 4)]),
        record("S0", []),
    ]
    index, _ = write_tables(tmp_path, records)
    assert [(r["study_id"], r["slice"]) for r in index.to_pylist()] == [
        ("S1", 4), ("S1", 30), ("S2", 2), ("S2", 10),
    ]  # fmt: skip
    assert {name: str(index.schema.field(name).type) for name in index.column_names} == (
        INDEX_COLUMNS
    )
    assert index.column_names == list(INDEX_COLUMNS)
    # the workflow's schema is the loader's one list of the columns (loader.index_columns)
    assert index.column_names == list(SOURCE_COLUMNS)
    assert set(index.column("version").to_pylist()) == {"7.0"}


def test_index_rows_keep_the_sample_fields(tmp_path):
    row = sample("S1", 3, ocontour="o.txt", has_omask=True, omask_pixels=50, i_outside_o=0.25)
    index, _ = write_tables(tmp_path, [record("S1", [row])])
    (written,) = index.to_pylist()
    assert {key: written[key] for key in row} == row


@pytest.mark.parametrize(
    ("fractions", "split"),
    [
        ({"train": 1.0, "val": 0.0, "test": 0.0}, "train"),
        ({"train": 0, "val": 0, "test": 1}, "test"),
    ],
)
def test_the_split_is_the_one_the_fractions_leave(tmp_path, fractions, split):
    records = [record(f"S{n}", [sample(f"S{n}", 1), sample(f"S{n}", 2)]) for n in range(20)]
    index, _ = write_tables(tmp_path, records, fractions=fractions)
    assert set(index.column("split").to_pylist()) == {split}


def test_every_sample_of_a_study_gets_the_studys_split(tmp_path):
    records = [record(f"S{n}", [sample(f"S{n}", k) for k in (1, 2, 3)]) for n in range(30)]
    samples = batch_tables(tmp_path, load_records(write_records(tmp_path, *records)))["samples"]
    rows = index_table(samples, "1", SPLITS, 5).to_pylist()
    by_study = {}
    for row in rows:
        by_study.setdefault(row["study_id"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in by_study.values())
    assert {s: splits.pop() for s, splits in by_study.items()} == {
        f"S{n}": assign_split(f"S{n}", SPLITS, 5) for n in range(30)
    }


def test_the_default_phantom_puts_studies_in_every_split():
    # config.yaml promises it: 20 phantom studies fill train, val and test with the defaults
    config = default_config()
    spec = PhantomSpec(**config["phantom"])
    on_disk = [patient for patient, _ in spec.study_ids()[: spec.studies]]
    splits = {assign_split(s, config["splits"], config["split_seed"]) for s in on_disk}
    assert splits == {"train", "val", "test"}


def test_validation_rows_are_every_problem_sorted(tmp_path):
    records = [
        record("S2", [], [problem("S2", "dicoms/S2", "study_missing")]),
        record(
            "S1",
            [sample("S1", 2)],
            [
                problem("S1", "dicoms/S1/4.dcm", "dicom_unreadable", 4),
                problem("S1", "c/i.txt", "mask_empty", 2, "warning", value=0.0),
                problem("S1", "c/i.txt", "contour_empty", 8),
                problem("S1", "c/i.txt", "contour_empty", 6),
            ],
        ),
    ]
    _, validation = write_tables(tmp_path, records)
    rows = validation.to_pylist()
    assert [(r["study_id"], r["path"], r["code"], r["slice"]) for r in rows] == [
        ("S1", "c/i.txt", "contour_empty", 6),
        ("S1", "c/i.txt", "contour_empty", 8),
        ("S1", "c/i.txt", "mask_empty", 2),
        ("S1", "dicoms/S1/4.dcm", "dicom_unreadable", 4),
        ("S2", "dicoms/S2", "study_missing", None),
    ]
    assert rows[2]["value"] == 0.0 and rows[2]["severity"] == "warning"
    assert validation.column_names == list(VALIDATION_COLUMNS)
    assert {n: str(validation.schema.field(n).type) for n in validation.column_names} == (
        VALIDATION_COLUMNS
    )


def test_the_same_records_give_the_same_table_bytes(tmp_path):
    records = [
        record("S1", [sample("S1", 2)], [problem("S1", "x", "study_missing")]),
        record("S2", [sample("S2", 4)], [problem("S2", "y", "hidden_file", severity="warning")]),
    ]
    write_tables(tmp_path / "a", records)
    write_tables(tmp_path / "b", list(reversed(records)))
    for name in ("index.parquet", "validation.parquet"):
        assert (tmp_path / "a" / "v" / name).read_bytes() == (
            tmp_path / "b" / "v" / name
        ).read_bytes()


def make(root: Path, *paths: str) -> Path:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("1 1\n2 2\n1 2\n")
    return root


@pytest.fixture
def raw(tmp_path) -> Path:
    """Listed study A (dicoms/A, contourfiles/OA); unlisted dicoms/STRAY and contourfiles/OS;
    hidden entries at the top of both folders."""
    return make(
        tmp_path / "raw",
        "dicoms/A/1.dcm",
        "dicoms/STRAY/1.dcm",
        "dicoms/.DS_Store",
        "contourfiles/OA/i-contours/IM-0001-0001-icontour-manual.txt",
        "contourfiles/OS/i-contours/IM-0001-0002-icontour-manual.txt",
        "contourfiles/OS/i-contours/notes.txt",
        "contourfiles/OS/i-contours/._IM-0001-0002-icontour-manual.txt",
        "contourfiles/OS/o-contours/IM-0001-0004-ocontour-manual.txt",
        "contourfiles/._OA/x",
    )


LINKS = [StudyLink("A", "OA", 2)]


def unlisted(raw: Path, kinds) -> set[tuple]:
    return {
        (p.study_id, p.path, p.code, p.slice, p.contour, p.severity)
        for p in find_unlisted_studies(raw, LINKS, kinds)
    }


def test_unlisted_study_folders_are_recorded_with_each_contour_file(raw):
    i_dir = "contourfiles/OS/i-contours"
    assert unlisted(raw, ("i",)) == {
        ("STRAY", "dicoms/STRAY", "study_unlisted", None, None, "error"),
        (".DS_Store", "dicoms/.DS_Store", "hidden_file", None, None, "warning"),
        ("._OA", "contourfiles/._OA", "hidden_file", None, None, "warning"),
        ("OS", f"{i_dir}/IM-0001-0002-icontour-manual.txt", "study_unlisted", 2,
         f"{i_dir}/IM-0001-0002-icontour-manual.txt", "error"),
        ("OS", f"{i_dir}/notes.txt", "study_unlisted", None, f"{i_dir}/notes.txt", "error"),
    }  # fmt: skip


def test_unlisted_o_contours_are_accounted_when_o_is_configured(raw):
    o_file = "contourfiles/OS/o-contours/IM-0001-0004-ocontour-manual.txt"
    added = unlisted(raw, ("i", "o")) - unlisted(raw, ("i",))
    assert added == {("OS", o_file, "study_unlisted", 4, o_file, "error")}


def test_no_rows_when_every_folder_is_listed(tmp_path):
    data = make(tmp_path, "dicoms/A/1.dcm", "contourfiles/OA/i-contours/x.txt")
    assert find_unlisted_studies(data, LINKS, ("i", "o")) == []
    assert find_unlisted_studies(tmp_path / "absent", LINKS, ("i",)) == []


def test_the_tables_add_the_unlisted_folders_to_the_records_problems(tmp_path, raw):
    records = [record("A", [sample("A", 1)], [problem("A", "dicoms/A/9.dcm", "dicom_missing", 9)])]
    index, validation = write_tables(tmp_path, records, LINKS, data_dir=raw)
    assert index.num_rows == 1
    codes = [row["code"] for row in validation.to_pylist()]
    assert sorted(codes) == sorted(
        ["dicom_missing", "hidden_file", "hidden_file", "study_unlisted", "study_unlisted",
         "study_unlisted"]
    )  # fmt: skip
