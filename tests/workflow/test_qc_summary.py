"""The build-wide QC summary: flagged overlays grouped by code, and the label figures table."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image

from workflow_scripts.dataset.tables import INDEX_SCHEMA
from workflow_scripts.files import parquet_bytes
from workflow_scripts.qc.summary import PAGE_SIZE, write_qc_summary


def row(study: str, number: int, mask: int, flags: str = "", **fields) -> dict:
    return {
        "version": "1.0.0",
        "study_id": study,
        "original_id": f"O-{study}",
        "slice": number,
        "npz": f"slices/{study}/{number:04d}.npz",
        "qc": f"qc/{study}/{number:04d}.png",
        "split": "train",
        "height": 8,
        "width": 8,
        "image_dtype": "int16",
        "has_omask": False,
        "mask_pixels": mask,
        "omask_pixels": None,
        "icontour": f"contourfiles/O-{study}/i-contours/{number}.txt",
        "ocontour": None,
        "i_outside_o": None,
        "flags": flags,
        **fields,
    }


def summarize(tmp_path: Path, rows: list[dict]) -> tuple[Path, list[dict]]:
    """Write a version folder holding ``rows`` and an overlay per row, summarize it, and
    return the flagged folder and the label_checks.csv rows."""
    version_dir = tmp_path / "1.0.0"
    for item in rows:
        overlay = version_dir / item["qc"]
        overlay.parent.mkdir(parents=True, exist_ok=True)
        Image.new("P", (8, 10), 3).save(overlay)
    index = version_dir / "index.parquet"
    index.write_bytes(parquet_bytes(pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)))
    flagged, label_checks = tmp_path / "report" / "flagged", tmp_path / "report" / "checks.csv"
    write_qc_summary(index, version_dir, flagged, label_checks)
    return flagged, list(csv.DictReader(io.StringIO(label_checks.read_text())))


def test_flagged_overlays_get_pages_per_code(tmp_path):
    rows = [row("A", n, 10, "mask_too_large") for n in range(1, PAGE_SIZE + 3)]  # 2 pages
    rows += [row("B", 1, 10, "mask_area_outlier,mask_empty"), row("B", 2, 10, "mask_empty")]
    rows += [row("B", 3, 10)]
    flagged, _ = summarize(tmp_path, rows)
    assert sorted(os.listdir(flagged)) == [
        "mask_area_outlier-001.jpg",
        "mask_empty-001.jpg",
        "mask_too_large-001.jpg",
        "mask_too_large-002.jpg",
    ]
    sizes = {name: Image.open(flagged / name).size for name in os.listdir(flagged)}
    # 48 tiles fill whole rows of the sheet; the second page holds two, the others one or two
    assert sizes["mask_too_large-001.jpg"][1] > sizes["mask_too_large-002.jpg"][1]
    assert sizes["mask_too_large-002.jpg"] == sizes["mask_empty-001.jpg"]
    assert sizes["mask_area_outlier-001.jpg"][0] < sizes["mask_empty-001.jpg"][0]
    for name in sizes:
        assert Image.open(flagged / name).format == "JPEG"


def test_without_flags_the_flagged_folder_is_empty(tmp_path):
    flagged, checks = summarize(tmp_path, [row("A", 1, 10), row("A", 2, 12)])
    assert os.listdir(flagged) == []
    assert len(checks) == 2


def test_a_new_summary_replaces_the_old_pages(tmp_path):
    summarize(tmp_path, [row("A", 1, 10, "mask_empty")])
    flagged, _ = summarize(tmp_path, [row("A", 1, 10, "mask_too_large")])
    assert os.listdir(flagged) == ["mask_too_large-001.jpg"]


def test_label_checks_hold_each_samples_figures(tmp_path):
    rows = [
        row("A", 1, 10),
        row("A", 2, 20, "mask_area_outlier", omask_pixels=35, i_outside_o=0.25),
        row("A", 3, 40, split="val"),
        row("B", 1, 10),
        row("B", 2, 30, "mask_too_large"),
        row("C", 1, 0, "mask_empty"),
    ]
    _, checks = summarize(tmp_path, rows)
    # medians by hand: A 20 (10, 20, 40), B 20 (10 and 30), C 0 (no ratio)
    assert [list(c.values()) for c in checks] == [
        ["A", "1", "train", "10", "", "0.500", "", ""],
        ["A", "2", "train", "20", "35", "1.000", "0.2500", "mask_area_outlier"],
        ["A", "3", "val", "40", "", "2.000", "", ""],
        ["B", "1", "train", "10", "", "0.500", "", ""],
        ["B", "2", "train", "30", "", "1.500", "", "mask_too_large"],
        ["C", "1", "train", "0", "", "", "", "mask_empty"],
    ]
    assert list(checks[0]) == [
        "study_id", "slice", "split", "mask_pixels", "omask_pixels", "area_to_study_median",
        "i_outside_o", "flags",
    ]  # fmt: skip


@pytest.mark.parametrize("fraction", [0.0, 1 / 3])
def test_the_outside_fraction_is_written_with_four_decimals(tmp_path, fraction):
    _, checks = summarize(tmp_path, [row("A", 1, 9, omask_pixels=12, i_outside_o=fraction)])
    assert checks[0]["i_outside_o"] == {0.0: "0.0000", 1 / 3: "0.3333"}[fraction]
