"""Writing one study's outputs: sample files, QC pictures, pairing table and report page.

Into the version folder (paths from :class:`~workflow_scripts.layout.Layout`)::

    pairs/<study_id>.parquet        every slice number seen, what became of it, its cine place
    slices/<study_id>/<nnnn>.npz    image + mask (+ omask) per sample
    qc/<study_id>/<nnnn>.png        overlay per sample, contact_sheet.jpg and mask_areas.png
    cines/<study_id>.npy            with frames: all, every frame (P, T, H, W)

and, outside it, the study's report page (``work/<version>/studies/<study_id>.html``; see
:mod:`workflow_scripts.study.study_qc`). The slice and QC folders are filled under temporary
names and renamed into place, the pairing table and page are written atomically, so an
interrupted build never leaves a study half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from loader.manifest import bytes_digest
from loader.sample_file import encode_sample
from workflow_scripts.files import (
    parquet_bytes,
    remove_stale_staging,
    staged_directory,
    write_bytes_atomic,
)
from workflow_scripts.layout import Layout
from workflow_scripts.qc.figures import intensity_percentiles
from workflow_scripts.qc.overlays import (
    contact_sheet,
    encode_jpeg,
    encode_png,
    render_overlay,
    window_image,
)
from workflow_scripts.qc.summary import study_page
from workflow_scripts.raw.geometry import index_geometry
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.pairing import SlicePair
from workflow_scripts.raw.problems import Problem
from workflow_scripts.study.cine import StudyCine
from workflow_scripts.study.frames import FrameImage, cine_npy_bytes, frame_rows, stack_cine
from workflow_scripts.study.measures import StudyMeasures
from workflow_scripts.study.options import BuildOptions
from workflow_scripts.study.slices import LabelledSlice
from workflow_scripts.study.study_qc import study_figures_of, study_plot_png

__all__ = ["PAIRS_SCHEMA", "BuiltStudy", "write_cine", "write_study_outputs"]

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
        # The cine (docs/cine.md): every DICOM's place, from its tags.
        ("position", pa.int32()),
        ("position_mm", pa.float64()),
        ("phase", pa.int32()),
        ("trigger_time", pa.float64()),
        ("cardiac_phase", pa.string()),
    ]
)


@dataclass
class BuiltStudy:
    """A study after its checks, ready to be written.

    ``slices``: every slice number of the study in order (pairing's result); ``labelled``: the
    slices with contour files, samples and left-out ones alike; ``listing_problems``: what
    pairing found in the study's folders (and why the study has no measures); ``cine``: every
    DICOM's position and phase; ``measures``: its ED/ES and volumes; ``frame_problems``: with
    ``frames: all``, the rows of unlabelled frames left out of the cine.
    """

    link: StudyLink
    slices: list[SlicePair]
    labelled: list[LabelledSlice]
    listing_problems: list[Problem] = field(default_factory=list)
    cine: StudyCine = field(default_factory=StudyCine)
    measures: StudyMeasures = field(default_factory=lambda: StudyMeasures(None, None, None, None))
    frame_problems: list[Problem] = field(default_factory=list)

    @property
    def study_id(self) -> str:
        return self.link.patient_id

    @property
    def samples(self) -> list[LabelledSlice]:
        return [item for item in self.labelled if item.is_sample]

    @property
    def problems(self) -> list[Problem]:
        """Every problem of the study: its folders', then each labelled slice's."""
        labelled = (p for item in self.labelled for p in item.problems)
        return [*self.listing_problems, *self.cine.problems, *labelled, *self.frame_problems]

    def excluded_positions(self) -> list[int]:
        """The slice positions of the slices a reviewer excluded (where known)."""
        excluded = [
            self.cine.place(item.number).position
            for item in self.labelled
            if item.failure is not None and item.failure.code == "excluded_by_review"
        ]
        return sorted({position for position in excluded if position is not None})

    def cine_columns(self, number: int) -> dict[str, Any]:
        """``position``, ``position_mm``, ``phase``, ``trigger_time`` and ``cardiac_phase``
        (``ED``, ``ES`` or empty) of image ``number``."""
        columns = self.cine.columns(number)
        phase, measures = columns["phase"], self.measures
        cardiac = {measures.ed_phase: "ED", measures.es_phase: "ES"}
        columns["cardiac_phase"] = cardiac.get(phase, "") if phase is not None else ""
        return columns


def write_study_outputs(
    study: BuiltStudy, layout: Layout, options: BuildOptions
) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """Write the study's files; return its index rows (one per sample, without version and
    split) and the digest (:func:`loader.manifest.bytes_digest`) of every file written in the
    version, by path relative to the version folder (the report page is not in the version)."""
    study_id = study.study_id
    slices_dir, qc_dir = layout.slices_dir(study_id), layout.qc_dir(study_id)
    for folder in (slices_dir, qc_dir):
        remove_stale_staging(folder.parent, study_id)
    outputs: dict[str, dict] = {}
    rows, tiles = [], []

    def put(final: Path, staged: Path, data: bytes) -> str:
        staged.write_bytes(data)
        relpath = layout.in_version(final)
        outputs[relpath] = bytes_digest(data)
        return relpath

    with staged_directory(slices_dir) as slices_stage, staged_directory(qc_dir) as qc_stage:
        for item in study.samples:
            npz_file = layout.sample_file(study_id, item.number)
            overlay_file = layout.overlay_file(study_id, item.number)
            npz = put(npz_file, slices_stage / npz_file.name, encode_sample(_arrays(item)))
            overlay = _overlay(item, options)
            png = put(overlay_file, qc_stage / overlay_file.name, encode_png(overlay))
            tiles.append((overlay, bool(item.codes)))
            rows.append(_index_row(study, item, npz, png))
        sheet = layout.contact_sheet(study_id)
        sheet_jpeg = encode_jpeg(contact_sheet(tiles, options.sheet_columns))
        put(sheet, qc_stage / sheet.name, sheet_jpeg)
        figures = study_figures_of(study_id, rows, [p.as_row() for p in study.problems])
        plot_png = study_plot_png(figures, study.measures.row, study.excluded_positions())
        plot = layout.study_plot(study_id)
        put(plot, qc_stage / plot.name, plot_png)

    by_slice = {item.number: item for item in study.labelled}
    table = pa.Table.from_pylist(
        [_pair_row(layout, study, pair, by_slice.get(pair.slice)) for pair in study.slices],
        schema=PAIRS_SCHEMA,
    )
    data = parquet_bytes(table)
    write_bytes_atomic(layout.pairs_file(study_id), data)
    outputs[layout.in_version(layout.pairs_file(study_id))] = bytes_digest(data)
    write_bytes_atomic(layout.report_page(study_id), study_page(figures, plot_png, sheet_jpeg))
    return rows, dict(sorted(outputs.items()))


def write_cine(
    study: BuiltStudy,
    frames: list[FrameImage],
    rows: list[dict[str, Any]],
    layout: Layout,
    options: BuildOptions,
) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """With ``frames: all``: write the study's ``cines/{study_id}.npy`` atomically (none when
    no DICOM of the study has a place) and return its rows of frames.parquet and the cine's
    digest by relative path (:mod:`workflow_scripts.study.frames`). ``rows``: the study's
    index rows (each sample's npz)."""
    if not frames:
        return [], {}
    path = layout.cine_file(study.study_id)
    data = cine_npy_bytes(stack_cine(frames, options.resample))
    write_bytes_atomic(path, data)
    relpath = layout.in_version(path)
    codes: dict[int, set[str]] = {}
    for problem in study.problems:
        if problem.slice is not None:
            codes.setdefault(problem.slice, set()).add(problem.code)
    measures = study.measures
    cardiac = {measures.ed_phase: "ED", measures.es_phase: "ES"}
    cardiac.pop(None, None)
    frame_table = frame_rows(
        study.study_id,
        frames,
        options.resample,
        cardiac,
        lambda number: ",".join(sorted(codes.get(number, ()))),
        {row["slice"]: row["npz"] for row in rows},
        relpath,
    )
    return frame_table, {relpath: bytes_digest(data)}


def _arrays(item: LabelledSlice) -> dict:
    arrays = {"image": item.image, "mask": item.masks["i"]}
    if "o" in item.masks:
        arrays["omask"] = item.masks["o"]
    return arrays


def _overlay(item: LabelledSlice, options: BuildOptions):
    codes = item.codes
    window = item.dicom.window if options.window == "dicom" else None
    grey = window_image(item.image, window, options.percentiles)
    caption = [f"{item.study} slice {item.number}", *codes]  # wrapped to the image's width
    if item.placement is not None:
        caption.append(f"{item.placement.rows.spacing:g} mm grid")
    drawn = {kind: item.contours[kind] for kind in item.masks}
    return render_overlay(grey, item.masks, drawn, caption, flagged=bool(codes))


def _index_row(study: BuiltStudy, item: LabelledSlice, npz: str, png: str) -> dict[str, Any]:
    image, masks = item.image, item.masks
    return {
        "study_id": study.study_id,
        "original_id": study.link.original_id,
        "slice": item.number,
        "npz": npz,
        "qc": png,
        "icontour": item.pair.contours["i"],
        "ocontour": item.pair.contours.get("o") if "o" in masks else None,
        "height": int(image.shape[0]),
        "width": int(image.shape[1]),
        "image_dtype": str(image.dtype),
        "has_omask": "o" in masks,
        "mask_pixels": int(masks["i"].sum()),
        "omask_pixels": int(masks["o"].sum()) if "o" in masks else None,
        "i_outside_o": item.i_outside_o,
        "flags": ",".join(item.codes),
        **study.cine_columns(item.number),
        **_geometry_columns(item),
        **intensity_percentiles(image),
    }


def _geometry_columns(item: LabelledSlice) -> dict[str, Any]:
    """The index's geometry columns (see docs/geometry.md): the stored arrays' spacing, and the
    DICOM's own geometry with where the stored pixel (0, 0) lies on its pixel grid."""
    geometry, placement = item.dicom.geometry, item.placement
    if placement is None:
        spacing, origin = geometry.pixel_spacing or (None, None), (0.0, 0.0)
    else:
        spacing = (placement.rows.spacing, placement.columns.spacing)
        origin = placement.origin
    return index_geometry(geometry, spacing, origin)


def _pair_row(
    layout: Layout, study: BuiltStudy, pair: SlicePair, item: LabelledSlice | None
) -> dict[str, Any]:
    study_id = study.study_id
    if item is None:
        status, codes = "unlabelled", ""
    else:
        status, codes = ("sample" if item.is_sample else "excluded"), ",".join(item.codes)
    dicom = item.dicom if item is not None else None
    sample = status == "sample"
    return {
        "study_id": study_id,
        "slice": pair.slice,
        "dicom": pair.dicom,
        "icontour": pair.contours.get("i"),
        "ocontour": pair.contours.get("o"),
        "status": status,
        "codes": codes,
        "instance_number": dicom.instance_number if dicom else None,
        "height": int(dicom.pixels.shape[0]) if dicom else None,
        "width": int(dicom.pixels.shape[1]) if dicom else None,
        "npz": layout.in_version(layout.sample_file(study_id, pair.slice)) if sample else None,
        "qc": layout.in_version(layout.overlay_file(study_id, pair.slice)) if sample else None,
        **study.cine_columns(pair.slice),
    }
