"""The dataset's tables: ``index.parquet`` (one row per sample) and ``validation.parquet``
(one row per problem), assembled from the study records.

It also looks for what the per-study jobs cannot see: folders under ``dicoms/`` and
``contourfiles/`` that link.csv does not list. Their contour files are accounted for one by one,
so that every contour file in the input appears in one of the two tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa

from workflow_scripts.dataset.splits import assign_split
from workflow_scripts.files import folder_names, parquet_bytes, write_bytes_atomic
from workflow_scripts.layout import RawLayout
from workflow_scripts.raw.contours import parse_contour_name
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import LINK_CODES, broken_folder_link
from workflow_scripts.raw.pairing import FOLDER_LINK_MESSAGES
from workflow_scripts.raw.problems import Problem

__all__ = [
    "INDEX_SCHEMA",
    "VALIDATION_SCHEMA",
    "find_unlisted_studies",
    "index_table",
    "load_records",
    "write_dataset_tables",
]

INDEX_SCHEMA = pa.schema(
    [
        ("version", pa.string()),
        ("study_id", pa.string()),
        ("original_id", pa.string()),
        ("slice", pa.int32()),
        ("npz", pa.string()),
        ("qc", pa.string()),
        ("split", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("image_dtype", pa.string()),
        ("has_omask", pa.bool_()),
        ("mask_pixels", pa.int64()),
        ("omask_pixels", pa.int64()),
        ("icontour", pa.string()),
        ("ocontour", pa.string()),
        ("i_outside_o", pa.float64()),
        ("flags", pa.string()),
        # Geometry, in mm (README "What a build produces"): the stored arrays' pixel spacing,
        # row then column; the DICOM's own PixelSpacing; the DICOM pixel-grid coordinates
        # (row, column) of stored pixel (0, 0); and the DICOM's slice and orientation tags.
        ("pixel_spacing_row", pa.float64()),
        ("pixel_spacing_col", pa.float64()),
        ("source_spacing_row", pa.float64()),
        ("source_spacing_col", pa.float64()),
        ("grid_origin_row", pa.float64()),
        ("grid_origin_col", pa.float64()),
        ("slice_thickness", pa.float64()),
        ("slice_location", pa.float64()),
        ("image_position", pa.list_(pa.float64(), 3)),
        ("image_orientation", pa.list_(pa.float64(), 6)),
        # The 1st, 25th, 50th, 75th and 99th percentiles of the stored image's pixel values
        # (workflow_scripts.qc.figures.INTENSITY_COLUMNS), for the intensity plot.
        ("intensity_p01", pa.float64()),
        ("intensity_p25", pa.float64()),
        ("intensity_p50", pa.float64()),
        ("intensity_p75", pa.float64()),
        ("intensity_p99", pa.float64()),
    ]
)

VALIDATION_SCHEMA = pa.schema(
    [
        ("study_id", pa.string()),
        ("slice", pa.int32()),
        ("path", pa.string()),
        ("contour", pa.string()),
        ("code", pa.string()),
        ("severity", pa.string()),
        ("message", pa.string()),
        ("value", pa.float64()),
    ]
)


def load_records(paths: Iterable[str | Path]) -> list[dict]:
    """Read study records (JSON), sorted by study id."""
    records = [json.loads(Path(path).read_text(encoding="utf-8")) for path in paths]
    return sorted(records, key=lambda record: record["study_id"])


def index_table(
    records: list[dict], version: str, fractions: Mapping[str, float], seed: int
) -> pa.Table:
    """One row per sample, sorted by (study_id, slice), with the version and the study's split."""
    rows = []
    for record in records:
        split = assign_split(record["study_id"], fractions, seed)
        for sample in sorted(record["samples"], key=lambda sample: sample["slice"]):
            rows.append({**sample, "version": version, "split": split})
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def validation_table(problems: Iterable[Mapping]) -> pa.Table:
    """One row per problem, sorted by (study_id, path, code, slice) for stable bytes."""
    rows = sorted(
        problems,
        key=lambda row: (row["study_id"], row["path"], row["code"], row["slice"] or -1),
    )
    return pa.Table.from_pylist(list(rows), schema=VALIDATION_SCHEMA)


def find_unlisted_studies(
    data_dir: str | Path, links: Iterable[StudyLink], contour_kinds: tuple[str, ...]
) -> list[Problem]:
    """Problems for study folders on disk that link.csv does not list.

    An unlisted DICOM folder gives one ``study_unlisted`` row; an unlisted contour folder gives
    one per file in its contour sub-folders (of the configured kinds), each accounting for that
    file, or, when it is a symbolic link that cannot be followed (so that its files are
    unknown), one row of that link's code. Hidden entries directly under dicoms/ and
    contourfiles/ give ``hidden_file`` rows.
    """
    data_dir = Path(data_dir)
    links = list(links)
    problems: list[Problem] = []
    listed_dicoms = {link.patient_id for link in links}
    for name in folder_names(data_dir / RawLayout.DICOMS):
        path = RawLayout.dicom_dir_relpath(name)
        if name.startswith("."):
            problems.append(Problem(name, path, "hidden_file", "hidden entry skipped"))
        elif name not in listed_dicoms:
            problems.append(Problem(name, path, "study_unlisted", "not listed in link.csv"))
    listed_contours = {link.original_id for link in links}
    for name in folder_names(data_dir / RawLayout.CONTOURS):
        path = RawLayout.contour_dir_relpath(name)
        if name.startswith("."):
            problems.append(Problem(name, path, "hidden_file", "hidden entry skipped"))
        elif name not in listed_contours:
            if link_kind := broken_folder_link(data_dir, path):
                message = FOLDER_LINK_MESSAGES[link_kind]
                problems.append(Problem(name, path, LINK_CODES[link_kind], message))
                continue
            for kind in contour_kinds:
                folder = RawLayout.contour_kind_relpath(name, kind)
                for file in folder_names(data_dir / folder):
                    if file.startswith("."):
                        continue  # not a contour file (macOS ._ copies and the like)
                    parsed = parse_contour_name(file)
                    problems.append(
                        Problem(
                            name,
                            f"{folder}/{file}",
                            "study_unlisted",
                            "its study folder is not listed in link.csv",
                            parsed[0] if parsed else None,
                            contour=f"{folder}/{file}",
                        )
                    )
    return problems


def write_dataset_tables(
    record_paths: Iterable[str | Path],
    links: list[StudyLink],
    data_dir: str | Path,
    contour_kinds: tuple[str, ...],
    version: str,
    fractions: Mapping[str, float],
    seed: int,
    index_path: str | Path,
    validation_path: str | Path,
) -> None:
    """Write index.parquet and validation.parquet (each atomically) from the study records,
    adding the problems of study folders that link.csv does not list."""
    records = load_records(record_paths)
    problems = [row for record in records for row in record["problems"]]
    problems += [
        problem.as_row() for problem in find_unlisted_studies(data_dir, links, contour_kinds)
    ]
    write_bytes_atomic(index_path, parquet_bytes(index_table(records, version, fractions, seed)))
    write_bytes_atomic(validation_path, parquet_bytes(validation_table(problems)))
