"""Copied labels: a contour file whose points equal those of another one (another slice of the
study, or another study) is flagged ``contour_duplicate``, naming the other file, and kept.

The expected copies come from the test's own doing (a file copied onto another in a tmp copy of
the phantom) and from comparing the parsed point arrays directly, never from the digests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from build_helpers import build_by_calls
from loader.manifest import read_whole_manifest
from workflow_scripts.config import default_config
from workflow_scripts.dataset.batch_tables import batch_tables
from workflow_scripts.dataset.tables import copies_between_studies, index_table
from workflow_scripts.layout import Layout
from workflow_scripts.raw.contours import copies_message, parse_contour, points_digest
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom
from workflow_scripts.study.build import build_study
from workflow_scripts.study.options import BuildOptions

SPEC = PhantomSpec.with_defaults(studies=3, slices=8, size=64)
FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def contour(study: int, number: int, kind: str = "i") -> str:
    name = f"IM-0001-{number:04d}-{kind}contour-manual.txt"
    return f"contourfiles/PH-HF-{study}/{kind}-contours/{name}"


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """The phantom of SPEC: i-contours on slices 2, 4, 6, 8, o-contours on 4 and 8; study 1's
    slice 10 has no DICOM (its i-contour is slice 8's drawing: a copy that is no sample), study
    2's slice 4 DICOM is truncated."""
    return write_phantom(tmp_path_factory.mktemp("phantom") / "raw", SPEC)


@pytest.fixture
def raw(phantom, tmp_path):
    """A copy of the phantom that a test may change."""
    return shutil.copytree(phantom, tmp_path / "raw")


def test_the_digest_is_equal_exactly_when_the_parsed_points_are():
    text = "10.5 20.5\n11.5 20.5\n11.5 21.5\n"
    same_points = "10.50  20.5\r\n\r\n11.5 2.05e1\r\n11.500 21.5"
    reordered = "11.5 20.5\n10.5 20.5\n11.5 21.5\n"
    moved = "10.5 20.5\n11.5 20.5\n11.5 21.0\n"
    assert np.array_equal(parse_contour(text), parse_contour(same_points))
    assert points_digest(parse_contour(text)) == points_digest(parse_contour(same_points))
    assert points_digest(parse_contour(text)) != points_digest(parse_contour(reordered))
    assert points_digest(parse_contour(text)) != points_digest(parse_contour(moved))
    assert len(points_digest(parse_contour(text))) == 32


def test_the_message_names_the_first_copies_and_counts_the_rest():
    assert copies_message(["a"]) == "its points equal those of a"
    assert copies_message(list("abcde")) == "its points equal those of a, b, c and 2 more"


def build(raw, study: int, contours=("i", "o"), **kwargs) -> dict:
    layout = Layout(raw, raw.parent / "out", "1.0.0", phantom=False)
    options = BuildOptions.from_config(default_config(contours=list(contours), **kwargs))
    return build_study(StudyLink(f"PHANTOM{study:04d}", f"PH-HF-{study}", None), layout, options)


def rows_of(record: dict, code: str) -> dict[str, dict]:
    return {row["path"]: row for row in record["problems"] if row["code"] == code}


def test_the_untouched_phantom_has_no_copy_among_its_samples(phantom, tmp_path):
    raw = shutil.copytree(phantom, tmp_path / "raw")
    for study in (1, 2, 3):
        assert rows_of(build(raw, study), "contour_duplicate") == {}
    # Study 1's slice 10 is a copy of slice 8, but no sample (no DICOM): its error row accounts
    # for it, and slice 8 is not flagged for a file that is not in the dataset.
    assert (raw / contour(1, 10)).read_text() == (raw / contour(1, 8)).read_text()


def test_a_contour_copied_onto_another_slice_flags_both_files_and_keeps_them(raw):
    shutil.copyfile(raw / contour(3, 2), raw / contour(3, 6))
    record = build(raw, 3)
    rows = rows_of(record, "contour_duplicate")
    assert set(rows) == {contour(3, 2), contour(3, 6)}
    assert rows[contour(3, 6)]["message"] == f"its points equal those of {contour(3, 2)}"
    assert rows[contour(3, 2)]["message"] == f"its points equal those of {contour(3, 6)}"
    assert rows[contour(3, 6)]["severity"] == "warning" and rows[contour(3, 6)]["slice"] == 6
    assert rows[contour(3, 6)]["contour"] is None  # a warning: the file is still a sample's
    samples = {sample["slice"]: sample for sample in record["samples"]}
    assert sorted(samples) == [2, 4, 6, 8]
    assert "contour_duplicate" in samples[2]["flags"].split(",")
    assert "contour_duplicate" in samples[6]["flags"].split(",")
    assert "contour_duplicate" not in samples[4]["flags"]
    # The record carries the digest of every contour its samples put into the dataset.
    digests = record["contour_digests"]
    used = {s["icontour"] for s in record["samples"]} | {s["ocontour"] for s in record["samples"]}
    assert set(digests) == used - {None}
    assert digests[contour(3, 2)] == digests[contour(3, 6)] != digests[contour(3, 4)]


def test_an_o_contour_equal_to_an_i_contour_is_a_copy_too(raw):
    shutil.copyfile(raw / contour(3, 4, "i"), raw / contour(3, 8, "o"))
    rows = rows_of(build(raw, 3), "contour_duplicate")
    assert set(rows) == {contour(3, 4, "i"), contour(3, 8, "o")}
    # With contours: [i], o-contours are not read, so there is nothing to compare.
    assert rows_of(build(raw, 3, contours=("i",)), "contour_duplicate") == {}


def test_copies_are_found_on_the_files_points_also_with_resample(raw):
    shutil.copyfile(raw / contour(3, 2), raw / contour(3, 6))
    record = build(raw, 3, resample={"spacing_mm": 1.0, "shape": [64, 64]})
    assert set(rows_of(record, "contour_duplicate")) == {contour(3, 2), contour(3, 6)}


def record(study: str, digests: dict[str, str], flags: str = "") -> dict:
    samples = [
        {"study_id": study, "slice": n, "icontour": path, "ocontour": None, "flags": flags}
        for n, path in enumerate(sorted(digests), start=1)
    ]
    return {"study_id": study, "samples": samples, "contour_digests": digests, "problems": []}


def test_copies_between_studies_name_the_other_studies_files_only():
    records = [
        record("A", {"contourfiles/a/i-contours/IM-0001-0002-icontour-manual.txt": "d1",
                     "contourfiles/a/i-contours/IM-0001-0004-icontour-manual.txt": "d1",
                     "contourfiles/a/i-contours/IM-0001-0006-icontour-manual.txt": "d2"}),
        record("B", {"contourfiles/b/i-contours/IM-0001-0012-icontour-manual.txt": "d1",
                     "contourfiles/b/i-contours/IM-0001-0014-icontour-manual.txt": "d3"}),
        {"study_id": "C", "samples": [], "problems": []},  # a record without digests
    ]  # fmt: skip
    tables = batch_tables(Path("."), records)
    rows = {(p.study_id, p.path): p for p in copies_between_studies(tables["contours"])}
    a2, a4 = (f"contourfiles/a/i-contours/IM-0001-000{n}-icontour-manual.txt" for n in (2, 4))
    b12 = "contourfiles/b/i-contours/IM-0001-0012-icontour-manual.txt"
    assert set(rows) == {("A", a2), ("A", a4), ("B", b12)}
    assert rows[("A", a2)].message == f"its points equal those of {b12}"
    assert rows[("B", b12)].message == f"its points equal those of {a2}, {a4}"
    assert rows[("B", b12)].slice == 12 and rows[("B", b12)].code == "contour_duplicate"
    copied = {p.path for p in rows.values()}
    index = index_table(tables["samples"], "1", FRACTIONS, 0, copied=copied).to_pydict()
    flagged = {path for path, f in zip(index["icontour"], index["flags"], strict=True) if f}
    assert flagged == copied
    assert set(index["flags"]) == {"", "contour_duplicate"}


def test_a_copy_between_studies_is_flagged_in_the_tables_and_the_review_sheet(raw, tmp_path):
    # Study 1's slice 6 drawing copied onto study 3's slice 2 (both samples; 64x64 images).
    shutil.copyfile(raw / contour(1, 6), raw / contour(3, 2))
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"))
    layout = build_by_calls(config).layout
    validation = pd.read_parquet(layout.validation_file)
    copies = validation[validation["code"] == "contour_duplicate"]
    assert sorted(zip(copies["study_id"], copies["path"], copies["message"], strict=True)) == [
        ("PHANTOM0001", contour(1, 6), f"its points equal those of {contour(3, 2)}"),
        ("PHANTOM0003", contour(3, 2), f"its points equal those of {contour(1, 6)}"),
    ]
    assert set(copies["severity"]) == {"warning"}
    index = pd.read_parquet(layout.index_file)
    flagged = index[index["flags"].str.contains("contour_duplicate")]
    assert sorted(zip(flagged["study_id"], flagged["slice"], strict=True)) == [
        ("PHANTOM0001", 6),
        ("PHANTOM0003", 2),
    ]
    # The review sheet lists the flag on both samples (its data is the page's JSON).
    page = layout.review_sheet.read_text()
    data = json.loads(page.split('<script id="data" type="application/json">')[1].split("<")[0])
    sheet = {
        (study["id"], sample["slice"]): sample["flags"]
        for study in data["studies"]
        for sample in study["samples"]
    }
    assert "contour_duplicate" in sheet[("PHANTOM0001", 6)]
    assert "contour_duplicate" in sheet[("PHANTOM0003", 2)]
    assert "contour_duplicate" not in sheet[("PHANTOM0003", 4)]
    manifest = read_whole_manifest(layout.manifest)
    assert manifest["counts"]["problems"]["contour_duplicate"] == 2


def test_a_reviewer_drops_a_copied_o_contour_and_keeps_the_slices_i_contour(raw, tmp_path):
    """The loop of the issue: a copied o-contour is flagged; the next version excludes that
    o-contour alone; the slice stays a sample, without omask, and the review sheet carries the
    decision forward with its contour."""
    shutil.copyfile(raw / contour(3, 4, "o"), raw / contour(3, 8, "o"))
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), contours=["i", "o"])
    first = build_by_calls(config).layout
    validation = pd.read_parquet(first.validation_file)
    flagged = validation.loc[validation["code"] == "contour_duplicate", "path"]
    assert sorted(flagged) == [contour(3, 4, "o"), contour(3, 8, "o")]

    exclusions = tmp_path / "exclusions.csv"
    exclusions.write_text(
        "study_id,slice,reason,reviewer,date,contour\n"
        "PHANTOM0003,8,o-contour copied from slice 4,Ann,2024-05-02,o\n"
    )
    second = build_by_calls({**config, "version": "2.0.0", "exclusions": str(exclusions)}).layout
    index = pd.read_parquet(second.index_file).set_index(["study_id", "slice"])
    assert len(index) == len(pd.read_parquet(first.index_file))  # no sample lost
    row = index.loc[("PHANTOM0003", 8)]
    assert not row["has_omask"] and pd.isna(row["ocontour"])
    assert row["icontour"] == contour(3, 8)
    assert "contour_duplicate" not in index.loc[("PHANTOM0003", 4), "flags"]  # copy gone
    validation = pd.read_parquet(second.validation_file)
    excluded = validation[validation["code"] == "excluded_by_review"]
    assert list(zip(excluded["slice"], excluded["contour"], strict=True)) == [
        (8, contour(3, 8, "o"))
    ]
    assert "contour_duplicate" not in set(validation["code"])
    npz = np.load(second.version_dir / row["npz"], allow_pickle=False)
    assert "omask" not in npz.files and npz["mask"].any()
    page = second.review_sheet.read_text()
    data = json.loads(page.split('<script id="data" type="application/json">')[1].split("<")[0])
    (study,) = [study for study in data["studies"] if study["id"] == "PHANTOM0003"]
    assert study["excluded"] == [
        {"slice": 8, "reason": "o-contour copied from slice 4", "reviewer": "Ann",
         "date": "2024-05-02", "contour": "o"}
    ]  # fmt: skip


def test_a_large_group_of_copies_names_the_first_three_others_and_counts_the_rest():
    # one drawing copied into four studies, twice into study B: each file's row names the
    # first three of the other studies' files (sorted) and counts the others
    paths = {
        "A": ["contourfiles/a/i-contours/IM-0001-0002-icontour-manual.txt"],
        "B": [
            "contourfiles/b/i-contours/IM-0001-0002-icontour-manual.txt",
            "contourfiles/b/i-contours/IM-0001-0004-icontour-manual.txt",
        ],
        "C": ["contourfiles/c/i-contours/IM-0001-0002-icontour-manual.txt"],
        "D": ["contourfiles/d/i-contours/IM-0001-0002-icontour-manual.txt"],
    }
    records = [record(study, dict.fromkeys(files, "same")) for study, files in paths.items()]
    rows = copies_between_studies(batch_tables(Path("."), records)["contours"])
    messages = {(p.study_id, p.path): p.message for p in rows}
    assert len(messages) == 5
    a, (b2, b4), c, d = paths["A"][0], paths["B"], paths["C"][0], paths["D"][0]
    # A's others: b2, b4, c, d (4): three named, one more
    assert messages[("A", a)] == f"its points equal those of {b2}, {b4}, {c} and 1 more"
    # B's others: a, c, d (3): all named
    assert messages[("B", b4)] == f"its points equal those of {a}, {c}, {d}"
    assert messages[("D", d)] == f"its points equal those of {a}, {b2}, {b4} and 1 more"
