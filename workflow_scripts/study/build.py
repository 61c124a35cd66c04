"""Building one study: every paired slice becomes a sample file and a QC overlay.

For one row of link.csv, :func:`build_study` pairs the study's files
(:mod:`workflow_scripts.raw.pairing`), places every DICOM in the study's cine from its header
(:mod:`workflow_scripts.study.cine`), then works in three passes:

1. read every labelled slice: its contour files and its DICOM (this module);
2. check the study as a whole: slice shapes, masks, label sanity
   (:mod:`workflow_scripts.study.checks`), and measure it: ED/ES and volumes
   (:mod:`workflow_scripts.study.measures`);
3. write the samples, overlays, the study's plot and pairing table, and its report page
   (:mod:`workflow_scripts.study.outputs`),

and finally writes the study's *record*, a JSON file for the aggregate steps: its index rows,
its problems, and the digests of the inputs it read and the outputs it wrote. The record is
written last and atomically, so it marks a finished study. Each contour file of the study ends
either in a sample or in an error problem naming it in ``contour``
(:class:`~workflow_scripts.study.slices.LabelledSlice` keeps that rule).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from loader.manifest import bytes_digest
from workflow_scripts.files import write_bytes_atomic
from workflow_scripts.layout import Layout, RawLayout
from workflow_scripts.qc.exclusions import exclusion_message
from workflow_scripts.raw.contours import parse_contour, points_digest
from workflow_scripts.raw.dicom_slice import (
    DicomHeader,
    DicomSlice,
    read_dicom_header,
    read_dicom_slice,
)
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import list_study, open_input
from workflow_scripts.raw.pairing import StudyPairing, pair_listing
from workflow_scripts.raw.problems import InputProblem, Problem
from workflow_scripts.study.checks import (
    contour_digests,
    flag_copied_contours,
    flag_suspicious_labels,
    leave_out_odd_shapes,
)
from workflow_scripts.study.cine import CineFrame, StudyCine, arrange_cine
from workflow_scripts.study.frames import FrameImage, common_shape
from workflow_scripts.study.masks import contour_to_mask, polygon_area
from workflow_scripts.study.measures import ContourAreas, StudyMeasures, measure_study
from workflow_scripts.study.options import BuildOptions
from workflow_scripts.study.outputs import BuiltStudy, write_cine, write_study_outputs
from workflow_scripts.study.resample import ResampleGrid
from workflow_scripts.study.slices import LabelledSlice

__all__ = ["build_study"]


class _Inputs:
    """Reads input files once, remembering their digests and pydicom's warnings per file.

    pydicom warns about the same oddity (invalid UIDs, in the real data) on every file; the
    warnings are counted for the job's log instead of flooding the console. A study is the only
    work of its process while it runs (a worker process or a job's own), so the process-wide
    ``warnings.catch_warnings`` is safe here.
    """

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.digests: dict[str, dict] = {}
        self.warnings: Counter = Counter()
        self.warned_files: dict[str, str] = {}
        self.kept: dict[str, bytes] = {}  # labelled DICOMs' bytes, read for their header first

    def read(self, relpath: str) -> bytes:
        """The file's bytes; its digest (``sha256``, ``size``), ``mtime_ns`` (from ``fstat``
        of the open file: the time of exactly the bytes hashed) and, when a symbolic link led
        elsewhere, ``link_target`` (the file read, see
        :func:`~workflow_scripts.raw.listing.open_input`) are remembered."""
        path, link_target = open_input(self.data_dir, relpath)
        with open(path, "rb") as handle:
            mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
            data = handle.read()
        digest = {**bytes_digest(data), "mtime_ns": mtime_ns}
        if link_target is not None:
            digest["link_target"] = link_target
        self.digests[relpath] = digest
        return data

    def dicom(self, relpath: str, max_pixels: int) -> DicomSlice:
        data = self.kept.pop(relpath, None)
        if data is None:
            data = self.read(relpath)
        return self._pydicom(relpath, read_dicom_slice, data, max_pixels)

    def header(self, relpath: str, keep: bool) -> DicomHeader | None:
        """The file's cine tags, read from its header only (None when unreadable: the
        arrangement reports it); ``keep`` its bytes for :meth:`dicom`."""
        data = self.read(relpath)
        if keep:
            self.kept[relpath] = data
        try:
            return self._pydicom(relpath, read_dicom_header, data)
        except InputProblem:
            return None

    def _pydicom(self, relpath: str, reader, *args):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # every occurrence, not the first per line
            try:
                return reader(*args)
            finally:
                for warning in caught:
                    text = f"{warning.category.__name__}: {str(warning.message).strip()}"
                    self.warnings[text] += 1
                    self.warned_files.setdefault(text, relpath)


def build_study(
    link: StudyLink,
    layout: Layout,
    options: BuildOptions,
    log_path: str | Path | None = None,
    exclusions: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Build one study's samples, QC pictures and pairing table; return (and write) its record.

    Args:
        link: the study's row of link.csv.
        layout: where the raw data is and where the outputs go.
        options: build options (see BuildOptions).
        log_path: the job's log; pydicom warnings are summarized there, not printed.
        exclusions: reviewed decisions for this study (``slice``, ``reason``, ``reviewer``,
            ``date``, and ``contour`` "o" for a decision on the o-contour file alone; see
            :mod:`workflow_scripts.qc.exclusions`): those slices (or o-contour files) are left
            out with ``excluded_by_review``, before their contour files are read (their DICOMs
            are read for their headers, as every DICOM of the study, for the cine).

    Returns:
        the study record: ``study_id``, ``original_id``, ``samples`` (index rows), ``problems``
        (validation rows), ``inputs`` (``sha256``, ``size`` and ``mtime_ns`` of each file read,
        and ``link_target`` for one reached through a symbolic link, by relative path),
        ``outputs`` (digests by relative path), ``listing`` (the digest of the
        study's folder listing, :meth:`~workflow_scripts.raw.listing.StudyListing.digest`),
        ``contour_digests`` (the points digest of each contour file its samples put into the
        dataset, by relative path) and ``counts``.

    Input problems never raise: they become rows of the record's ``problems``.
    """
    study_id = link.patient_id
    listing = list_study(link, layout.data_dir, options.contour_kinds, options.follow_symlinks)
    pairing = pair_listing(listing)
    inputs = _Inputs(layout.data_dir)
    cine, headers = _read_cine(study_id, pairing, inputs, keep_all=options.all_frames)
    labelled = [LabelledSlice(study_id, pair) for pair in pairing.slices if pair.contours]
    _exclude_reviewed(labelled, exclusions)

    for item in labelled:
        if item.is_sample:
            _read_slice(item, inputs, options)
            item.place = cine.place(item.number)
    leave_out_odd_shapes(labelled)
    for item in labelled:
        _make_masks(item, options.resample)
    frames, frame_problems = None, []
    if options.all_frames:
        frames, frame_problems = _read_frames(
            study_id, pairing, cine, headers, labelled, inputs, options
        )
    inputs.kept.clear()
    built = BuiltStudy(link, pairing.slices, labelled, pairing.problems, cine)
    built.frame_problems = frame_problems
    flag_suspicious_labels(built.samples, options)
    flag_copied_contours(built.samples)
    built.measures = _measure(built)
    rows, outputs = write_study_outputs(built, layout, options)
    if frames is not None:
        frame_rows, cine_output = write_cine(built, frames, rows, layout, options)
        outputs = dict(sorted({**outputs, **cine_output}.items()))

    problems = built.problems
    record = {
        "study_id": study_id,
        "original_id": link.original_id,
        "samples": rows,
        # Every file read, not only those that fed a sample: a repaired file changes the dataset.
        "inputs": dict(sorted(inputs.digests.items())),
        "outputs": outputs,
        "problems": [problem.as_row() for problem in problems],
        "measures": built.measures.row,
        "listing": listing.digest(),
        # For the dataset stage's look for contours copied between studies.
        "contour_digests": contour_digests(built.samples),
        "counts": {
            "dicoms": sum(pair.dicom is not None for pair in pairing.slices),
            "contour_files": sum(len(pair.contours) for pair in pairing.slices),
            "samples": len(rows),
        },
    }
    if frames is not None:  # frames: all (records of labelled builds stay as they were)
        record["frames"] = frame_rows
        record["counts"]["frames_present"] = sum(row["present"] for row in frame_rows)
    write_bytes_atomic(
        layout.study_record(study_id), json.dumps(record, indent=1, sort_keys=True).encode()
    )
    if log_path is not None:
        _write_log(log_path, study_id, record, inputs)
    return record


def _read_cine(
    study_id: str, pairing: StudyPairing, inputs: _Inputs, keep_all: bool = False
) -> tuple[StudyCine, dict[int, DicomHeader | None]]:
    """Every DICOM's place in the study's cine, from its header (a study without contour
    files has no samples: its DICOMs are not read), and the headers by image number. The
    labelled DICOMs' bytes (with ``keep_all``, every DICOM's) are kept for their full read."""
    if not any(pair.contours for pair in pairing.slices):
        return StudyCine(), {}
    frames = [
        CineFrame(
            pair.slice, pair.dicom, inputs.header(pair.dicom, keep=keep_all or bool(pair.contours))
        )
        for pair in pairing.slices
        if pair.dicom is not None
    ]
    return arrange_cine(study_id, frames), {frame.number: frame.header for frame in frames}


def _read_frames(
    study_id: str,
    pairing: StudyPairing,
    cine: StudyCine,
    headers: dict[int, DicomHeader | None],
    labelled: list[LabelledSlice],
    inputs: _Inputs,
    options: BuildOptions,
) -> tuple[list[FrameImage], list[Problem]]:
    """Every placed DICOM's image as it is stored (``frames: all``;
    :mod:`workflow_scripts.study.frames`), and the rows of the frames left out that no row
    accounts for yet.

    A sample's frame is its stored ``image``. Any other DICOM is read here (the labelled ones
    that failed for their contour or a review keep their image), with the sample's rules: the
    study's shape, and on a resample grid its PixelSpacing. A DICOM left out that way gets a row
    of the code a labelled slice would get, unless its labelled slice's own error row already
    names it."""
    by_slice = {item.number: item for item in labelled}
    frames: list[FrameImage] = []
    problems: list[Problem] = []
    read: dict[int, tuple[DicomSlice, bool]] = {}  # image number -> (slice, accounted for)
    for pair in pairing.slices:
        place = cine.place(pair.slice)
        if pair.dicom is None or place.position is None or place.phase is None:
            continue  # no file, or no place (its cine_tags_missing row says why)
        header = headers.get(pair.slice)
        frame = FrameImage(
            pair.slice,
            pair.dicom,
            place.position,
            place.phase,
            place.position_mm,
            place.trigger_time,
            geometry=header.geometry if header is not None else None,
        )
        frames.append(frame)
        item = by_slice.get(pair.slice)
        if item is not None and item.is_sample:
            frame.image, frame.native_shape = item.image, item.dicom.pixels.shape
            frame.geometry, frame.placement = item.dicom.geometry, item.placement
            continue
        failure = item.failure if item is not None else None
        accounted = failure is not None and failure.path == pair.dicom
        if item is not None and item.dicom is not None:
            dicom = item.dicom
        elif accounted:
            continue  # unreadable: the slice's own error row names the DICOM
        else:
            try:
                dicom = inputs.dicom(pair.dicom, options.max_pixels)
            except InputProblem as problem:
                problems.append(
                    Problem(study_id, pair.dicom, problem.code, problem.message, pair.slice)
                )
                continue
        frame.geometry, frame.native_shape = dicom.geometry, dicom.pixels.shape
        read[pair.slice] = (dicom, accounted)

    samples = [item.dicom.pixels.shape for item in labelled if item.is_sample]
    shape = common_shape(frames, samples)
    grid = options.resample
    for frame in frames:
        if frame.present or frame.number not in read:
            continue
        dicom, accounted = read[frame.number]

        def leave_out(code: str, message: str, frame=frame, accounted=accounted) -> None:
            if not accounted:
                problems.append(Problem(study_id, frame.path, code, message, frame.number))

        if dicom.pixels.shape != shape:
            rows, columns = dicom.pixels.shape
            leave_out(
                "slice_shape_mismatch",
                f"{rows}x{columns}, the rest of the study is {shape[0]}x{shape[1]}: "
                "its cine frame is missing",
            )
            continue
        if grid is None:
            frame.image = dicom.pixels
            continue
        problem = dicom.geometry.spacing_problem
        if problem is not None:
            where = f"the {grid.spacing_mm:g} mm grid"
            leave_out("resample_spacing_missing", f"{problem}: cannot put its frame on {where}")
            continue
        frame.placement = grid.place(dicom.pixels.shape, dicom.geometry.pixel_spacing)
        frame.image = frame.placement.image(dicom.pixels)
    return frames, problems


def _measure(study: BuiltStudy) -> StudyMeasures:
    """ED/ES and the study's measures (:mod:`workflow_scripts.study.measures`) from its
    samples' contour polygons; a study with samples but no measures gets a
    ``measures_unavailable`` row saying why."""
    areas = []
    for item in study.samples:
        spacing = item.dicom.geometry.pixel_spacing
        areas.append(
            ContourAreas(
                slice=item.number,
                position=item.place.position,
                phase=item.place.phase,
                i_px=item.polygon_px["i"],
                o_px=item.polygon_px.get("o") if "o" in item.masks else None,
                pixel_area_mm2=spacing[0] * spacing[1] if spacing is not None else None,
            )
        )
    measures = measure_study(study.study_id, areas, study.cine.spacing_mm)
    if measures.reason is not None and areas:
        path = study.samples[0].pair.contours["i"].rsplit("/", 1)[0]
        study.listing_problems.append(
            Problem(
                study.study_id,
                path,
                "measures_unavailable",
                f"no volumes for this study: {measures.reason}",
            )
        )
    return measures


def _exclude_reviewed(
    labelled: list[LabelledSlice], exclusions: Iterable[Mapping[str, Any]]
) -> None:
    """Leave out the slices a reviewer excluded, and the o-contour files excluded alone (the
    slice stays a sample without ``omask``); each row names the contour file that was judged
    (the exclusions file was checked against the study's contour files at parse time).

    The o-contour decisions go first: a slice excluded whole whose o-contour was also excluded
    alone accounts for that file with its own decision, not with ``ocontour_unpaired``."""
    by_slice = {item.number: item for item in labelled}
    for decision in sorted(exclusions, key=lambda decision: decision.get("contour") != "o"):
        item = by_slice[int(decision["slice"])]
        message = exclusion_message(decision)
        if decision.get("contour") == "o":
            item.reject_contour("o", "excluded_by_review", message)
        else:
            item.fail("excluded_by_review", message, item.pair.contours["i"])


def _read_slice(item: LabelledSlice, inputs: _Inputs, options: BuildOptions) -> None:
    """Parse the slice's contour files and read its DICOM, recording what fails."""
    pair = item.pair
    # The o-contour first: if the i-contour then fails, fail() knows whether the o-contour
    # already has its own row.
    for kind in sorted(pair.contours, reverse=True):
        if kind in item.rejected:
            continue  # excluded by review: not read
        try:
            text = inputs.read(pair.contours[kind]).decode("utf-8", "replace")
            item.contours[kind] = parse_contour(text)
            item.point_digests[kind] = points_digest(item.contours[kind])
            item.polygon_px[kind] = polygon_area(item.contours[kind])  # native pixel grid
        except InputProblem as problem:
            item.reject_contour(kind, problem.code, problem.message)
    if not item.is_sample:
        return
    if "i" not in pair.contours:
        # An o-contour alone: its row accounts for it, unless it already has one.
        if "o" not in item.rejected:
            item.reject_contour("o", "ocontour_unpaired", "the slice has no i-contour")
        item.failure = item.problems[-1]
        return
    if pair.dicom is None:
        expected = RawLayout.dicom_relpath(item.study, pair.slice)
        item.fail("dicom_missing", f"no DICOM {expected} for this contour", expected)
        return
    try:
        item.dicom = inputs.dicom(pair.dicom, options.max_pixels)
    except InputProblem as problem:
        item.fail(problem.code, problem.message, pair.dicom)
        return
    if not item.dicom.has_file_meta:
        item.note(
            "dicom_no_file_meta", "no DICOM preamble/file meta; read as a raw dataset", pair.dicom
        )
    number = item.dicom.instance_number
    if number is not None and number != pair.slice:
        item.fail(
            "instance_number_mismatch",
            f"InstanceNumber {number} but file number {pair.slice}",
            pair.dicom,
        )
        return
    problem = item.dicom.geometry.spacing_problem
    if problem is not None and options.resample is None:
        item.note("pixel_spacing_missing", f"{problem}: spacing unknown", pair.dicom)
    elif problem is not None:
        grid = f"the {options.resample.spacing_mm:g} mm grid"
        item.fail("resample_spacing_missing", f"{problem}: cannot put it on {grid}", pair.dicom)


def _make_masks(item: LabelledSlice, grid: ResampleGrid | None) -> None:
    """Rasterize each contour that fits, on the native grid or on ``grid``, and record those
    that do not. Sets the slice's stored ``image`` (and, on ``grid``, its ``placement``)."""
    if not item.is_sample:
        return
    pixels, shape = item.dicom.pixels, item.dicom.pixels.shape
    if grid is not None:
        item.placement = grid.place(shape, item.dicom.geometry.pixel_spacing)
        shape = item.placement.shape
    for kind in sorted(item.contours):
        problem = _fit_contour(item, kind)
        if problem is not None:
            item.reject_contour(kind, *problem)
            if not item.is_sample:
                return
            continue
        item.masks[kind] = contour_to_mask(item.contours[kind], shape)
    item.image = pixels if item.placement is None else item.placement.image(pixels)


def _fit_contour(item: LabelledSlice, kind: str) -> tuple[str, str] | None:
    """Check that a contour lies inside its image and, on a resample grid, inside the grid,
    moving its vertices to the grid's coordinates; (code, message) when it does not fit."""
    points, shape = item.contours[kind], item.dicom.pixels.shape
    outside = _out_of_bounds(points, shape)
    if outside:
        where = f"the {shape[0]}x{shape[1]} image"
        return "contour_out_of_bounds", f"{outside} of {len(points)} points outside {where}"
    if item.placement is None:
        return None
    points = item.contours[kind] = item.placement.points(points)
    rows, columns = item.placement.shape
    outside = _out_of_bounds(points, (rows, columns))
    if outside:
        spacing = item.placement.rows.spacing
        where = f"the {rows}x{columns} grid of {spacing:g} mm (centre-cropped)"
        return "contour_outside_grid", f"{outside} of {len(points)} points outside {where}"
    return None


def _out_of_bounds(points: np.ndarray, shape: tuple[int, int]) -> int:
    """How many vertices lie beyond the outer pixel edges of a (rows, columns) grid (centres
    at integers)."""
    rows, columns = shape
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
