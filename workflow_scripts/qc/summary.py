"""Build-wide QC for the report: flagged slices grouped by problem code, and the label figures.

The per-study overlays show every slice; a reviewer looking for trouble wants the flagged ones
together. This writes, outside the dataset (into the build's work folder):

- ``flagged/<code>-<page>.jpg``: contact sheets of the overlays of all samples flagged with
  ``code`` (48 per page), so the report groups them by what is wrong;
- ``label_checks.csv``: one row per sample with the figures behind the label checks: i- and
  o-mask areas, the i-mask area relative to its study's median, and the fraction of the i-mask
  outside the o-mask.
"""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from workflow_scripts.files import staged_directory, write_bytes_atomic
from workflow_scripts.qc.overlays import contact_sheet, encode_jpeg

__all__ = ["PAGE_SIZE", "write_qc_summary"]

PAGE_SIZE = 48


def write_qc_summary(
    index_path: str | Path,
    version_dir: str | Path,
    flagged_dir: str | Path,
    label_checks_path: str | Path,
    columns: int = 8,
) -> None:
    """Write the flagged-slice sheets (a folder, atomically) and the label-checks table."""
    version_dir = Path(version_dir)
    samples = pq.read_table(index_path).to_pylist()
    by_code: dict[str, list[dict]] = {}
    for sample in samples:
        for code in filter(None, sample["flags"].split(",")):
            by_code.setdefault(code, []).append(sample)
    with staged_directory(flagged_dir) as staging:
        for code, flagged in sorted(by_code.items()):
            for page, start in enumerate(range(0, len(flagged), PAGE_SIZE), start=1):
                tiles = [
                    (Image.open(version_dir / sample["qc"]), True)
                    for sample in flagged[start : start + PAGE_SIZE]
                ]
                sheet = contact_sheet(tiles, columns, tile_size=160)
                (staging / f"{code}-{page:03d}.jpg").write_bytes(encode_jpeg(sheet))
    write_bytes_atomic(label_checks_path, _label_checks_csv(samples).encode())


def _label_checks_csv(samples: list[dict]) -> str:
    areas: dict[str, list[int]] = {}
    for sample in samples:
        areas.setdefault(sample["study_id"], []).append(sample["mask_pixels"])
    medians = {study: statistics.median(values) for study, values in areas.items()}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(
        ["study_id", "slice", "split", "mask_pixels", "omask_pixels", "area_to_study_median",
         "i_outside_o", "flags"]
    )  # fmt: skip
    for sample in samples:
        median = medians[sample["study_id"]]
        ratio = sample["mask_pixels"] / median if median else None
        writer.writerow(
            [
                sample["study_id"],
                sample["slice"],
                sample["split"],
                sample["mask_pixels"],
                "" if sample["omask_pixels"] is None else sample["omask_pixels"],
                "" if ratio is None else f"{ratio:.3f}",
                "" if sample["i_outside_o"] is None else f"{sample['i_outside_o']:.4f}",
                sample["flags"],
            ]
        )
    return text.getvalue()
