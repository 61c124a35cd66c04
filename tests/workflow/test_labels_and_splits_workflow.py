"""Copied labels, an o-contour excluded alone and splits from a table, through Snakemake on a
tmp copy of the phantom: the rules hand the splits and the decisions to the jobs, and the
index step finds the copy between studies from the records the batch jobs wrote."""

from __future__ import annotations

import hashlib
import shutil

import pandas as pd
import pytest

from conftest import run_workflow
from dataset_checks import check_accounting
from loader.manifest import read_whole_manifest
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = pytest.mark.workflow

SPLITS = {"PH-HF-1": "test", "PH-HF-2": "val", "PH-HF-3": "train", "PH-HF-4": "train"}


def contour(study: int, number: int, kind: str = "i") -> str:
    name = f"IM-0001-{number:04d}-{kind}contour-manual.txt"
    return f"contourfiles/PH-HF-{study}/{kind}-contours/{name}"


def test_copies_exclusions_of_an_o_contour_and_a_splits_file_through_snakemake(tmp_path):
    raw = write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=3, slices=8, size=64))
    shutil.copyfile(raw / contour(1, 6), raw / contour(3, 2))  # between studies
    shutil.copyfile(raw / contour(3, 4, "o"), raw / contour(3, 8, "o"))  # within a study
    splits = tmp_path / "splits.csv"
    splits.write_text("original_id,split\n" + "".join(f"{s},{v}\n" for s, v in SPLITS.items()))
    exclusions = tmp_path / "exclusions.csv"
    exclusions.write_text(
        "study_id,slice,reason,reviewer,date,contour\nPHANTOM0003,8,o copied from 4,Ann,,o\n"
    )
    run_workflow(
        tmp_path, "--config", f"data_dir={raw}", "out_dir=out", "contours=[i,o]",
        f"splits_file={splits}", f"exclusions={exclusions}",
    )  # fmt: skip
    version = tmp_path / "out" / "1.0.0"
    validation = pd.read_parquet(version / "validation.parquet")
    copies = validation[validation["code"] == "contour_duplicate"]
    assert sorted(zip(copies["path"], copies["message"], strict=True)) == [
        (contour(1, 6), f"its points equal those of {contour(3, 2)}"),
        (contour(3, 2), f"its points equal those of {contour(1, 6)}"),
    ]  # the o-contour copy's other file was excluded, so it is no copy in this version
    excluded = validation[validation["code"] == "excluded_by_review"]
    assert list(excluded["contour"]) == [contour(3, 8, "o")]
    index = pd.read_parquet(version / "index.parquet")
    assert {(s, v) for s, v in zip(index["original_id"], index["split"], strict=True)} == {
        (study, SPLITS[study]) for study in ("PH-HF-1", "PH-HF-2", "PH-HF-3")
    }
    flagged = index[index["flags"].str.contains("contour_duplicate")]
    assert sorted(flagged["icontour"]) == [contour(1, 6), contour(3, 2)]
    row = index[(index["study_id"] == "PHANTOM0003") & (index["slice"] == 8)].iloc[0]
    assert not row["has_omask"]
    check_accounting(raw, version, ("i", "o"))
    manifest = read_whole_manifest(version / "manifest.json")
    assert (
        manifest["inputs"]["splits.csv"]["sha256"]
        == hashlib.sha256(splits.read_bytes()).hexdigest()
    )
    assert manifest["counts"]["problems"]["contour_duplicate"] == 2
