import hashlib
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from snakemake.exceptions import WorkflowError

from build_helpers import build_by_calls
from conftest import REPO
from loader.manifest import read_whole_manifest
from workflow_scripts.build_plan import plan_build
from workflow_scripts.config import check_config, default_config
from workflow_scripts.dataset.batch_tables import batch_tables
from workflow_scripts.dataset.splits import (
    SplitsFileError,
    SplitsTable,
    assign_split,
    read_splits_file,
    split_position,
    study_splits,
)
from workflow_scripts.dataset.tables import index_table
from workflow_scripts.dataset.version_guard import VersionChangedError, check_finished_version
from workflow_scripts.raw.links import StudyLink

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def test_assignment_is_stable_when_studies_are_added():
    before = {f"S{n}": assign_split(f"S{n}", FRACTIONS, 0) for n in range(100)}
    after = {f"S{n}": assign_split(f"S{n}", FRACTIONS, 0) for n in range(1000)}
    assert all(after[study] == split for study, split in before.items())


def test_fractions_are_respected_over_many_studies():
    counts = Counter(assign_split(f"STUDY{n:05d}", FRACTIONS, 0) for n in range(20000))
    assert counts["train"] / 20000 == pytest.approx(0.8, abs=0.01)
    assert counts["val"] / 20000 == pytest.approx(0.1, abs=0.01)
    assert counts["test"] / 20000 == pytest.approx(0.1, abs=0.01)


def test_seed_changes_the_assignment():
    studies = [f"S{n}" for n in range(200)]
    assert [assign_split(s, FRACTIONS, 0) for s in studies] != [
        assign_split(s, FRACTIONS, 1) for s in studies
    ]


def test_position_is_the_documented_hash():
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"0:SCD0000101").digest()[:8], "big") / 2**64
    assert split_position("SCD0000101", 0) == expected


def test_empty_split_never_receives_studies():
    fractions = {"train": 0.7, "val": 0.3, "test": 0.0}
    assert {assign_split(f"S{n}", fractions, 3) for n in range(2000)} == {"train", "val"}


# Splits from a table (config splits_file) ---------------------------------------------------

CHALLENGE_FILE = REPO / "splits" / "sunnybrook_challenge.csv"


def write(tmp_path, text: str, name: str = "splits.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def links(*pairs: tuple[str, str]) -> list[StudyLink]:
    return [StudyLink(patient, original, line) for line, (patient, original) in enumerate(pairs, 2)]


def test_reads_either_id_column_with_the_usual_csv_variations(tmp_path):
    text = "\ufefforiginal_id , split,note\r\nSC-N-2, train ,x\r\n\r\n"
    text += "SC-N-5,val,\r\nSC-N-9,test\r\n"
    table = read_splits_file(write(tmp_path, text))
    assert table.id_column == "original_id"
    assert table.splits == {"SC-N-2": "train", "SC-N-5": "val", "SC-N-9": "test"}
    table = read_splits_file(write(tmp_path, "split,study_id\nval,S1\n"))
    assert (table.id_column, table.splits) == ("study_id", {"S1": "val"})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("original_id\nA\n", "line 1: no split column"),
        ("id,split\nA,train\n", "line 1: no original_id or study_id column"),
        ("original_id,study_id,split\nA,B,train\n", "line 1: both original_id and study_id"),
        ("original_id,split\nA,training\n",
         "line 2: original_id 'A': split 'training' is not one of train, val, test"),
        ("original_id,split\nA,Train\n", "split 'Train' is not one of"),
        ("original_id,split\nA,\n", "split '' is not one of"),
        ("original_id,split\n,val\n", "line 2: empty original_id"),
        ("study_id,split\nS1,train\n\nS1,train\n",
         "line 4: study_id 'S1' is named twice (first on line 2)"),
    ],
)  # fmt: skip
def test_malformed_splits_files_are_refused_naming_file_line_and_value(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(SplitsFileError) as caught:
        read_splits_file(path)
    assert str(path) in str(caught.value) and fragment in str(caught.value)


def test_every_listed_study_gets_its_split_by_either_id():
    listed = links(("P1", "O-1"), ("P2", "O-2"))
    by_original = SplitsTable("f.csv", "original_id", {"O-2": "test", "O-1": "val", "O-9": "x"})
    assert study_splits(by_original, listed) == {"P1": "val", "P2": "test"}
    by_study = SplitsTable("f.csv", "study_id", {"P1": "train", "P2": "val"})
    assert study_splits(by_study, listed) == {"P1": "train", "P2": "val"}


def test_studies_the_table_does_not_name_are_refused_naming_them():
    listed = links(*[(f"P{n}", f"O-{n}") for n in range(1, 9)])
    table = SplitsTable("f.csv", "original_id", {"O-1": "train", "O-8": "val"})
    with pytest.raises(SplitsFileError) as caught:
        study_splits(table, listed)
    message = str(caught.value)
    assert message.startswith("f.csv: 6 of the 8 studies listed in link.csv have no split")
    assert "O-2 (P2), O-3 (P3), O-4 (P4), O-5 (P5), O-6 (P6) and 1 more" in message
    # A study_id table names the ids the other way round.
    table = SplitsTable("f.csv", "study_id", {"P1": "train"})
    with pytest.raises(SplitsFileError, match=r"by study_id\): P2 \(O-2\)"):
        study_splits(table, listed[:2])


def test_index_takes_the_assigned_splits_instead_of_the_hash():
    records = [
        {"study_id": study, "samples": [{"study_id": study, "slice": 2}]}
        for study in ("A", "B", "C")
    ]
    assigned = {"A": "test", "B": "test", "C": "val"}
    samples = batch_tables(Path("."), records)["samples"]
    table = index_table(samples, "1", FRACTIONS, 0, assigned).to_pydict()
    assert table["split"] == ["test", "test", "val"]
    hashed = index_table(samples, "1", FRACTIONS, 0).to_pydict()["split"]
    assert hashed == [assign_split(s, FRACTIONS, 0) for s in ("A", "B", "C")]
    with pytest.raises(ValueError, match="study 'C' has a record but no split"):
        index_table(samples, "1", FRACTIONS, 0, {"A": "val", "B": "val"})


def test_the_challenge_file_holds_its_45_studies_15_per_part():
    table = read_splits_file(CHALLENGE_FILE)
    assert table.id_column == "original_id"
    assert Counter(table.splits.values()) == {"train": 15, "val": 15, "test": 15}
    # Four pathology groups named as the archive names them (HF-I, HF-NI, HYP, N).
    groups = Counter(study.rsplit("-", 1)[0] for study in table.splits)
    assert groups == {"SC-HF-I": 12, "SC-HF-NI": 12, "SC-HYP": 12, "SC-N": 9}
    # The real sample's studies, as ../shared/notes/cardiac-users.md §0 read them in
    # vuptran/cardiac-segmentation's SAX_series.txt: -1, -2, -4 training, -5, -6 validation.
    expected = {"SC-HF-I-1": "train", "SC-HF-I-2": "train", "SC-HF-I-4": "train",
                "SC-HF-I-5": "val", "SC-HF-I-6": "val"}  # fmt: skip
    assert {study: table.splits[study] for study in expected} == expected


def phantom_config(tmp_path, splits_file) -> dict:
    config = default_config(
        out_dir=str(tmp_path / "out"), phantom={"studies": 3, "slices": 4, "size": 32}
    )
    config["splits_file"] = str(splits_file)
    return config


def test_plan_refuses_a_splits_file_missing_a_listed_study_before_the_phantom_exists(tmp_path):
    # The phantom lists PHANTOM0001-0004 (0004 absent on disk, still a listed study).
    path = write(tmp_path, "study_id,split\nPHANTOM0001,train\nPHANTOM0002,val\n")
    with pytest.raises(WorkflowError) as caught:
        plan_build(phantom_config(tmp_path, path))
    assert "2 of the 4 studies listed in link.csv have no split" in str(caught.value)
    assert "PHANTOM0003 (PH-HF-3), PHANTOM0004 (PH-HF-4)" in str(caught.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(WorkflowError, match=r"splits_file: '.*nope\.csv' is not a file"):
        plan_build(phantom_config(tmp_path, tmp_path / "nope.csv"))


CHOSEN = {"PHANTOM0001": "test", "PHANTOM0002": "test", "PHANTOM0003": "val",
          "PHANTOM0004": "train"}  # fmt: skip


def test_a_build_with_a_splits_file_assigns_its_splits_and_records_the_file(tmp_path):
    # original_id form, with a row for a study this archive does not list
    text = "original_id,split\n" + "".join(
        f"PH-HF-{study[-1]},{split}\n" for study, split in CHOSEN.items()
    )
    path = write(tmp_path, text + "PH-HF-99,val\n")
    plan = build_by_calls(phantom_config(tmp_path, path))
    index = pq.read_table(plan.layout.index_file, columns=["study_id", "split"]).to_pylist()
    assert {row["study_id"] for row in index} == {"PHANTOM0001", "PHANTOM0002", "PHANTOM0003"}
    assert all(row["split"] == CHOSEN[row["study_id"]] for row in index)
    manifest = read_whole_manifest(plan.layout.manifest)
    entry = manifest["inputs"]["splits.csv"]
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry["path"] == str(path) and manifest["config"]["splits_file"] == str(path)
    # The finished version is the file's content: moved, same version; edited, refused.
    config = phantom_config(tmp_path, path)
    check_config(config)
    moved = write(tmp_path, path.read_text(), name="moved.csv")
    check_finished_version(plan.layout, {**config, "splits_file": str(moved)}, plan.links)
    with pytest.raises(VersionChangedError, match=r"splits_file: built with .* now without"):
        check_finished_version(plan.layout, {**config, "splits_file": ""}, plan.links)
    path.write_text(text.replace("PH-HF-3,val", "PH-HF-3,train"))
    with pytest.raises(VersionChangedError, match=r"splits_file: .* differs from the file"):
        check_finished_version(plan.layout, config, plan.links)


@pytest.mark.realdata
def test_the_challenge_file_splits_the_real_studies_as_the_challenge_did(real_data, tmp_path):
    config = default_config(data_dir=str(real_data), out_dir=str(tmp_path / "out"))
    config["splits_file"] = str(CHALLENGE_FILE)
    plan = plan_build(config)
    by_original = {plan.studies[s].original_id: split for s, split in plan.split_assignment.items()}
    # Every study link.csv lists, also SC-HF-I-6, listed but absent on disk.
    assert set(by_original) == {link.original_id for link in plan.links}
    challenge = {"SC-HF-I-1": "train", "SC-HF-I-2": "train", "SC-HF-I-4": "train",
                 "SC-HF-I-5": "val", "SC-HF-I-6": "val"}  # fmt: skip
    assert {k: v for k, v in by_original.items() if k in challenge} == {
        k: v for k, v in challenge.items() if k in by_original
    }
