"""Building one study: every paired slice becomes a sample file and a QC overlay.

For one row of link.csv this writes, into the dataset version folder::

    pairs/<study_id>.parquet        every slice number seen and what became of it
    slices/<study_id>/<nnnn>.npz    image + mask (+ omask) per sample
    qc/<study_id>/<nnnn>.png        overlay per sample, and contact_sheet.jpg

and a JSON *study record* for the aggregate steps (samples, problems, sha256 of the inputs
read and the outputs written). Each contour file of the study ends either in a sample or in an
error problem naming it in ``contour``. The study is built in three passes: read every labelled
slice (so the study's common slice shape and median blood-pool area are known), decide each
slice's fate, then write.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from loader.sample_file import encode_sample
from workflow_scripts.atomic import remove_stale_staging, staged_directory, write_bytes_atomic
from workflow_scripts.contours import parse_contour
from workflow_scripts.dataset_index import parquet_bytes
from workflow_scripts.dicom_slice import DicomSlice, read_dicom_slice
from workflow_scripts.links import StudyLink
from workflow_scripts.masks import contour_to_mask
from workflow_scripts.pairing import SlicePair, pair_study, study_listing_digest
from workflow_scripts.problems import InputProblem, Problem
from workflow_scripts.qc import (
    contact_sheet,
    encode_jpeg,
    encode_png,
    render_overlay,
    window_image,
)
from workflow_scripts.settings import Layout
from workflow_scripts.warning_capture import captured_warnings

__all__ = ["PAIRS_SCHEMA", "BuildOptions", "build_study", "build_study_job"]

CONTACT_SHEET = "contact_sheet.jpg"

PAIRS_SCHEMA = pa.schema(
    [
        ("study_id", pa.string()),
        ("slice", pa.int32()),
        ("dicom", pa.string()),
        ("icontour", pa.string()),
        ("ocontour", pa.string()),
        ("status", pa.string()),  # sample | excluded | unlabelled
        ("codes", pa.string()),  # problem codes of this slice, comma-separated
        ("instance_number", pa.int32()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("npz", pa.string()),
        ("qc", pa.string()),
    ]
)


@dataclass(frozen=True)
class BuildOptions:
    """How a study is built; mirrors the ``contours``, ``checks`` and ``qc`` config sections.

    Fractions are of the image's pixel count (``max_mask_fraction``) or of the i-mask's pixel
    count (``max_i_outside_o``); ``area_outlier_factor`` flags i-masks smaller than median/f or
    larger than median*f, the median taken over the study's samples.
    """

    contour_kinds: tuple[str, ...] = ("i",)
    max_pixels: int = 4096 * 4096
    max_mask_fraction: float = 0.5
    area_outlier_factor: float = 4.0
    max_i_outside_o: float = 0.01
    window: str = "dicom"  # "dicom": the file's window when present; "percentile": always
    percentiles: tuple[float, float] = (1.0, 99.0)
    sheet_columns: int = 6

    @classmethod
    def from_config(cls, config: dict) -> BuildOptions:
        checks, qc = config.get("checks", {}), config.get("qc", {})
        defaults = cls()
        return cls(
            contour_kinds=tuple(config.get("contours", defaults.contour_kinds)),
            max_pixels=int(checks.get("max_pixels", defaults.max_pixels)),
            max_mask_fraction=float(checks.get("max_mask_fraction", defaults.max_mask_fraction)),
            area_outlier_factor=float(
                checks.get("area_outlier_factor", defaults.area_outlier_factor)
            ),
            max_i_outside_o=float(checks.get("max_i_outside_o", defaults.max_i_outside_o)),
            window=str(qc.get("window", defaults.window)),
            percentiles=tuple(qc.get("percentiles", defaults.percentiles)),
            sheet_columns=int(qc.get("sheet_columns", defaults.sheet_columns)),
        )


@dataclass
class _Slice:
    """Working state of one labelled slice while the study is built."""

    pair: SlicePair
    contours: dict[str, np.ndarray] = field(default_factory=dict)
    dicom: DicomSlice | None = None
    failure: Problem | None = None  # the error that keeps it out of the dataset
    problems: list[Problem] = field(default_factory=list)  # all rows of this slice
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)  # contour kinds that already have a row
    i_outside_o: float | None = None  # fraction of the i-mask outside the o-mask


class _Inputs:
    """Reads input files once, remembering their digests and pydicom's warnings per file."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.digests: dict[str, dict] = {}
        self.warnings: Counter = Counter()
        self.warned_files: dict[str, str] = {}

    def read(self, relpath: str) -> bytes:
        data = (self.data_dir / relpath).read_bytes()
        self.digests[relpath] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        return data

    def dicom(self, relpath: str, max_pixels: int) -> DicomSlice:
        data = self.read(relpath)
        with captured_warnings() as caught:
            try:
                return read_dicom_slice(data, max_pixels)
            finally:
                for text in caught:
                    self.warnings[text] += 1
                    self.warned_files.setdefault(text, relpath)


def build_study(
    link: StudyLink, layout: Layout, options: BuildOptions, log_path: str | Path | None = None
) -> dict:
    """Build one study's samples, overlays and pairing table; return (and write) its record.

    Args:
        link: the study's row of link.csv.
        layout: where the raw data is and where the outputs go (see settings.Layout); the
            study record is written last, atomically, so it marks a finished study.
        options: build options (see BuildOptions).
        log_path: the job's log; pydicom warnings are summarized there, not printed.

    Input problems never raise: they become rows of the record's ``problems``.
    """
    data_dir = layout.data_dir
    study = link.patient_id
    pairing = pair_study(link, data_dir, options.contour_kinds)
    inputs = _Inputs(data_dir)
    labelled = [_Slice(pair) for pair in pairing.slices if pair.contours]

    for item in labelled:
        _read_slice(item, study, inputs, options)
    _check_shapes(labelled, study)
    for item in labelled:
        _make_masks(item, study, options)
    samples = [item for item in labelled if item.failure is None]
    _check_labels(samples, study, options)

    record = _write_outputs(link, pairing.slices, labelled, samples, layout, inputs, options)
    record["problems"] = [
        problem.as_row()
        for problem in [*pairing.problems, *(p for item in labelled for p in item.problems)]
    ]
    record["listing"] = study_listing_digest(pairing)
    record["counts"] = {
        "dicoms": sum(pair.dicom is not None for pair in pairing.slices),
        "contour_files": sum(len(pair.contours) for pair in pairing.slices),
        "samples": len(samples),
    }
    write_bytes_atomic(
        layout.study_record(study), json.dumps(record, indent=1, sort_keys=True).encode()
    )
    if log_path is not None:
        _write_log(log_path, study, record, inputs)
    return record


def _read_slice(item: _Slice, study: str, inputs: _Inputs, options: BuildOptions) -> None:
    pair = item.pair
    # The o-contour first: if the i-contour then fails, _fail knows whether the o-contour
    # already has its own row.
    for kind in sorted(pair.contours, reverse=True):
        path = pair.contours[kind]
        try:
            item.contours[kind] = parse_contour(inputs.read(path).decode("utf-8", "replace"))
        except InputProblem as problem:
            _reject_contour(item, study, kind, problem.code, problem.message)
    if item.failure is not None:
        return
    if "i" not in pair.contours:
        item.failure = Problem(
            study,
            pair.contours["o"],
            "ocontour_unpaired",
            "the slice has no i-contour",
            pair.slice,
            contour=pair.contours["o"],
        )
        if "o" not in item.rejected:
            item.problems.append(item.failure)
        return
    if pair.dicom is None:
        expected = f"dicoms/{study}/{pair.slice}.dcm"
        _fail(item, study, "dicom_missing", f"no DICOM {expected} for this contour", expected)
        return
    try:
        item.dicom = inputs.dicom(pair.dicom, options.max_pixels)
    except InputProblem as problem:
        _fail(item, study, problem.code, problem.message, pair.dicom)
        return
    if not item.dicom.has_file_meta:
        item.problems.append(
            Problem(
                study,
                pair.dicom,
                "dicom_no_file_meta",
                "no DICOM preamble/file meta; read as a raw dataset",
                pair.slice,
            )
        )
    number = item.dicom.instance_number
    if number is not None and number != pair.slice:
        _fail(
            item,
            study,
            "instance_number_mismatch",
            f"InstanceNumber {number} but file number {pair.slice}",
            pair.dicom,
        )


def _check_shapes(labelled: list[_Slice], study: str) -> None:
    """Leave out slices whose size differs from the study's most common one."""
    shapes = Counter(item.dicom.pixels.shape for item in labelled if item.failure is None)
    if len(shapes) <= 1:
        return
    # Most common; ties go to the shape of the lowest slice number (first in the list).
    common = max(shapes, key=lambda shape: shapes[shape])
    for item in labelled:
        if item.failure is None and item.dicom.pixels.shape != common:
            rows, columns = item.dicom.pixels.shape
            _fail(
                item,
                study,
                "slice_shape_mismatch",
                f"{rows}x{columns}, the rest of the study is {common[0]}x{common[1]}",
                item.pair.dicom,
            )


def _make_masks(item: _Slice, study: str, options: BuildOptions) -> None:
    if item.failure is not None:
        return
    rows, columns = item.dicom.pixels.shape
    for kind in sorted(item.contours):
        points = item.contours[kind]
        outside = _out_of_bounds(points, rows, columns)
        if outside:
            message = f"{outside} of {len(points)} points outside the {rows}x{columns} image"
            _reject_contour(item, study, kind, "contour_out_of_bounds", message)
            if item.failure is not None:
                return
            continue
        item.masks[kind] = contour_to_mask(points, (rows, columns))


def _check_labels(samples: list[_Slice], study: str, options: BuildOptions) -> None:
    """Flag (keep, but record) masks whose size or nesting looks wrong."""
    areas = {id(item): int(item.masks["i"].sum()) for item in samples}
    median = float(np.median(list(areas.values()))) if areas else 0.0
    factor = options.area_outlier_factor
    for item in samples:
        path, number = item.pair.contours["i"], item.pair.slice
        area, size = areas[id(item)], item.masks["i"].size
        if area == 0:
            item.problems.append(
                Problem(study, path, "mask_empty", "the i-mask is empty", number, 0.0)
            )
        elif area / size > options.max_mask_fraction:
            item.problems.append(
                Problem(
                    study,
                    path,
                    "mask_too_large",
                    f"the i-mask covers {area / size:.1%} of the image",
                    number,
                    area / size,
                )
            )
        if area and median and not (median / factor <= area <= median * factor):
            item.problems.append(
                Problem(
                    study,
                    path,
                    "mask_area_outlier",
                    f"i-mask area {area} px, study median {median:.0f} px",
                    number,
                    float(area),
                )
            )
        if "o" in item.masks and area:
            fraction = float((item.masks["i"] & ~item.masks["o"]).sum()) / area
            item.i_outside_o = fraction
            if fraction > options.max_i_outside_o:
                item.problems.append(
                    Problem(
                        study,
                        path,
                        "icontour_outside_ocontour",
                        f"{fraction:.1%} of the i-mask lies outside the o-mask",
                        number,
                        fraction,
                    )
                )


def _write_outputs(link, pairs, labelled, samples, layout, inputs, options) -> dict:
    study = link.patient_id
    slices_dir, qc_dir = layout.slices_dir(study), layout.qc_dir(study)
    for folder in (slices_dir, qc_dir):
        remove_stale_staging(folder.parent, study)
    outputs: dict[str, dict] = {}
    sample_rows, tiles = [], []
    by_slice = {item.pair.slice: item for item in labelled}

    with staged_directory(slices_dir) as slices_stage, staged_directory(qc_dir) as qc_stage:
        for item in samples:
            number, image = item.pair.slice, item.dicom.pixels
            arrays = {"image": image, "mask": item.masks["i"]}
            if "o" in item.masks:
                arrays["omask"] = item.masks["o"]
            npz, png = _sample_paths(study, number)
            _put(outputs, npz, slices_stage / f"{number:04d}.npz", encode_sample(arrays))

            codes = sorted({p.code for p in item.problems})
            window = item.dicom.window if options.window == "dicom" else None
            grey = window_image(image, window, options.percentiles)
            caption = f"{study} slice {number}" + (f"  {' '.join(codes)}" if codes else "")
            overlay = render_overlay(
                grey,
                item.masks,
                {k: item.contours[k] for k in item.masks},
                caption,
                flagged=bool(codes),
            )
            _put(outputs, png, qc_stage / f"{number:04d}.png", encode_png(overlay))
            tiles.append((overlay, bool(codes)))

            sample_rows.append(
                {
                    "study_id": study,
                    "original_id": link.original_id,
                    "slice": number,
                    "npz": npz,
                    "qc": png,
                    "icontour": item.pair.contours["i"],
                    "ocontour": item.pair.contours.get("o") if "o" in item.masks else None,
                    "height": int(image.shape[0]),
                    "width": int(image.shape[1]),
                    "image_dtype": str(image.dtype),
                    "has_omask": "o" in item.masks,
                    "mask_pixels": int(item.masks["i"].sum()),
                    "omask_pixels": int(item.masks["o"].sum()) if "o" in item.masks else None,
                    "i_outside_o": item.i_outside_o,
                    "flags": ",".join(codes),
                }
            )
        sheet = contact_sheet(tiles, options.sheet_columns)
        _put(outputs, f"qc/{study}/{CONTACT_SHEET}", qc_stage / CONTACT_SHEET, encode_jpeg(sheet))

    pairs_file = layout.pairs_file(study)
    rows = [_pair_row(study, pair, by_slice.get(pair.slice)) for pair in pairs]
    table = pa.Table.from_pylist(rows, schema=PAIRS_SCHEMA)
    relpath = pairs_file.relative_to(layout.version_dir).as_posix()
    _put(outputs, relpath, pairs_file, parquet_bytes(table), atomic=True)

    used = {path for row in sample_rows for path in (row["icontour"], row["ocontour"]) if path}
    used |= {by_slice[row["slice"]].pair.dicom for row in sample_rows}
    return {
        "study_id": study,
        "original_id": link.original_id,
        "samples": sample_rows,
        "inputs": {path: inputs.digests[path] for path in sorted(used)},
        "outputs": dict(sorted(outputs.items())),
    }


def _pair_row(study: str, pair: SlicePair, item: _Slice | None) -> dict:
    if item is None:
        status, codes = "unlabelled", ""
    else:
        status = "sample" if item.failure is None else "excluded"
        codes = ",".join(sorted({p.code for p in item.problems}))
    dicom = item.dicom if item is not None else None
    npz, png = _sample_paths(study, pair.slice) if status == "sample" else (None, None)
    return {
        "study_id": study,
        "slice": pair.slice,
        "dicom": pair.dicom,
        "icontour": pair.contours.get("i"),
        "ocontour": pair.contours.get("o"),
        "status": status,
        "codes": codes,
        "instance_number": dicom.instance_number if dicom else None,
        "height": int(dicom.pixels.shape[0]) if dicom else None,
        "width": int(dicom.pixels.shape[1]) if dicom else None,
        "npz": npz,
        "qc": png,
    }


def _sample_paths(study: str, number: int) -> tuple[str, str]:
    """A sample's npz and overlay paths, relative to the version folder."""
    return f"slices/{study}/{number:04d}.npz", f"qc/{study}/{number:04d}.png"


def _put(outputs: dict, relpath: str, path: Path, data: bytes, atomic: bool = False) -> None:
    if atomic:
        write_bytes_atomic(path, data)
    else:
        path.write_bytes(data)
    outputs[relpath] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _fail(item: _Slice, study: str, code: str, message: str, path: str) -> None:
    """Keep the slice out because of ``path``; the row accounts for the i-contour, and an
    o-contour without a row of its own gets ``ocontour_unpaired``."""
    pair = item.pair
    item.failure = Problem(study, path, code, message, pair.slice, contour=pair.contours["i"])
    item.problems.append(item.failure)
    if "o" in pair.contours and "o" not in item.rejected:
        item.rejected.add("o")
        item.problems.append(
            Problem(
                study,
                pair.contours["o"],
                "ocontour_unpaired",
                f"its slice yields no sample ({code})",
                pair.slice,
                contour=pair.contours["o"],
            )
        )


def _reject_contour(item: _Slice, study: str, kind: str, code: str, message: str) -> None:
    """Record a bad contour file; a bad i-contour fails the slice, a bad o-contour only itself."""
    path = item.pair.contours[kind]
    item.contours.pop(kind, None)
    if kind == "i":
        _fail(item, study, code, message, path)
    else:
        item.rejected.add(kind)
        item.problems.append(Problem(study, path, code, message, item.pair.slice, contour=path))


def _out_of_bounds(points: np.ndarray, rows: int, columns: int) -> int:
    x, y = points[:, 0], points[:, 1]
    return int(np.count_nonzero((x < -0.5) | (x > columns - 0.5) | (y < -0.5) | (y > rows - 0.5)))


def _write_log(log_path, study: str, record: dict, inputs: _Inputs) -> None:
    lines = [f"study {study}: {record['counts']}"]
    for problem in record["problems"]:
        lines.append(
            f"{problem['severity']}: {problem['code']}: {problem['path']}: {problem['message']}"
        )
    for text, count in sorted(inputs.warnings.items()):
        lines.append(
            f"pydicom warned {count} time(s) (first in {inputs.warned_files[text]}): {text}"
        )
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    Path(log_path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_study_job(link: dict, layout: Layout, options: dict, log_path: str | Path) -> dict:
    """build_study from a job's plain parameters: the link.csv row as a dict and the
    ``contours``/``checks``/``qc`` config sections."""
    return build_study(StudyLink(**link), layout, BuildOptions.from_config(options), log_path)
