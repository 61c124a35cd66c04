"""Every frame of a study's cine (config ``frames: all``): one stack per study, one row per frame.

A study's cine is P slice positions x T phases (:mod:`workflow_scripts.study.cine` places each
DICOM from its tags). With ``frames: all`` the study's build also writes
``cines/{study_id}.npy``, an array (P, T, H, W) holding at ``[position, phase]`` the image of
that frame exactly as a sample's ``image`` would hold it (the DICOM's pixels, rescaled if the
file says so; with ``resample`` on the common grid), and the rows of ``frames.parquet``. One
file per study, never one per frame: an archive of 100,000 studies would otherwise hold tens of
millions of files.

Conventions (``docs/frames.md``):

- **P and T**: ``P`` = the largest position + 1, ``T`` = the largest phase + 1 over the study's
  placed DICOMs. Every (position, phase) of that grid has a row; a cell no DICOM fills is a
  missing frame (``present`` false, zeros in the stack).
- **H and W**: the resample grid's shape; on the native grid the shape of the study's samples
  (which share one: :func:`~workflow_scripts.study.checks.leave_out_odd_shapes`), or, in a
  study without samples, its most common DICOM shape (ties: the lowest image number's).
- **Missing frames**, zeros with ``present`` false: no DICOM at that place; a DICOM whose
  pixels cannot be read (its error row: the slice's own when it is labelled, else a row of the
  same code naming the DICOM); a DICOM of another native shape (``slice_shape_mismatch``),
  also on a resample grid, as for samples; with ``resample``, a DICOM without PixelSpacing
  (``resample_spacing_missing``). A DICOM whose position or phase is unknown has no place and
  no row here (its ``cine_tags_missing`` row says why).
- **dtype**: the stored dtypes of the present frames, promoted to one (``numpy.result_type``:
  int16 stays int16; int16 with a rescaled float32 frame gives float32, which holds every int16
  exactly), little-endian; float32 on a resample grid. A cine without any present frame is
  float32 and, on the native grid, (P, T, 0, 0).
- **Bytes**: a plain ``.npy`` (format 1.0, C order, no pickle), the same bytes on every build,
  readable with ``numpy.load(path, mmap_mode="r")``.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from workflow_scripts.raw.geometry import SliceGeometry, index_geometry
from workflow_scripts.study.resample import Placement, ResampleGrid

__all__ = [
    "FRAMES_ALL",
    "FRAMES_LABELLED",
    "FRAMES_SCHEMA",
    "FrameImage",
    "cine_npy_bytes",
    "cine_shape",
    "common_shape",
    "frame_rows",
    "stack_cine",
]

#: Config ``frames``: the samples only (the default), or also every frame of each cine.
FRAMES_LABELLED, FRAMES_ALL = "labelled", "all"

#: ``frames.parquet``: one row per (study, position, phase); see docs/frames.md.
FRAMES_SCHEMA = pa.schema(
    [
        ("study_id", pa.string()),
        ("position", pa.int32()),
        ("phase", pa.int32()),
        ("slice", pa.int32()),  # image number n of the DICOM {n}.dcm at this place (null: none)
        ("dicom", pa.string()),  # its path relative to data_dir
        ("present", pa.bool_()),  # its image is in the cine (else zeros there)
        ("codes", pa.string()),  # problem codes of this image number, comma-separated
        ("index_row", pa.int64()),  # its row in index.parquet when it is a sample, else null
        ("npz", pa.string()),  # its sample file when it is a sample
        ("cine", pa.string()),  # the study's cines/{study_id}.npy
        ("trigger_time", pa.float64()),
        ("cardiac_phase", pa.string()),
        ("position_mm", pa.float64()),
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
    ]
)


@dataclass
class FrameImage:
    """One placed DICOM of a study on its way into the cine.

    ``number``: its image number; ``path``: relative to the data folder; ``position`` and
    ``phase``: its place, ``position_mm`` and ``trigger_time`` (ms) with it; ``image``: the
    array to store ((H, W), the sample's ``image`` for a sample) or None when the frame is
    missing; ``native_shape``: the DICOM's (rows, columns)
    when its pixels were read; ``geometry``: its tags (from the full read, else the header's,
    else None); ``placement``: where it lies on the resample grid (None on the native grid or
    when missing).
    """

    number: int
    path: str
    position: int
    phase: int
    position_mm: float | None = None
    trigger_time: float | None = None
    image: np.ndarray | None = None
    native_shape: tuple[int, int] | None = None
    geometry: SliceGeometry | None = None
    placement: Placement | None = None

    @property
    def present(self) -> bool:
        return self.image is not None


def common_shape(frames: list[FrameImage], sample_shapes: list[tuple[int, int]]):
    """The native (rows, columns) of the study's cine: its samples' shape when it has samples,
    else the most common shape of its readable frames (ties: the lowest image number's); None
    when nothing was read."""
    if sample_shapes:
        return Counter(sample_shapes).most_common(1)[0][0]
    shapes = [f.native_shape for f in sorted(frames, key=lambda f: f.number) if f.native_shape]
    if not shapes:
        return None
    counts = Counter(shapes)
    return max(counts, key=lambda shape: (counts[shape], -shapes.index(shape)))


def cine_shape(frames: list[FrameImage], grid: ResampleGrid | None) -> tuple[int, int, int, int]:
    """(P, T, H, W) of the stack (see the module's docstring)."""
    positions = 1 + max((f.position for f in frames), default=-1)
    phases = 1 + max((f.phase for f in frames), default=-1)
    present = [f.image for f in frames if f.present]
    if grid is not None:
        height, width = grid.shape
    elif present:
        height, width = present[0].shape
    else:
        height = width = 0
    return positions, phases, height, width


def stack_cine(frames: list[FrameImage], grid: ResampleGrid | None) -> np.ndarray:
    """The (P, T, H, W) stack of the frames' images, zeros where a frame is missing."""
    shape = cine_shape(frames, grid)
    present = [f.image for f in frames if f.present]
    dtype = np.result_type(*present) if present else np.dtype(np.float32)
    dtype = dtype.newbyteorder("<")
    stack = np.zeros(shape, dtype=dtype)
    for frame in frames:
        if frame.present:
            if frame.image.shape != shape[2:]:  # the build keeps only the common shape
                raise ValueError(f"{frame.path}: {frame.image.shape} in a {shape} cine")
            stack[frame.position, frame.phase] = frame.image
    return stack


def cine_npy_bytes(stack: np.ndarray) -> bytes:
    """The ``.npy`` bytes of a stack: format 1.0 (2.0 only for a header too large for it), C
    order, no pickle; the same array always gives the same bytes."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(stack), allow_pickle=False)
    return buffer.getvalue()


def frame_rows(
    study_id: str,
    frames: list[FrameImage],
    grid: ResampleGrid | None,
    cardiac_phase: dict[int, str],
    codes_of,
    sample_files: dict[int, str],
    cine_path: str,
) -> list[dict]:
    """The study's rows of frames.parquet, by (position, phase), without ``index_row`` (the
    index stage adds it). ``cardiac_phase``: ``ED``/``ES`` by phase index (others empty);
    ``codes_of(number)``: the problem codes of an image number; ``sample_files``: the npz of
    each sample by image number."""
    positions, phases, *_ = cine_shape(frames, grid)
    at = {(f.position, f.phase): f for f in frames}
    position_mm = {f.position: f.position_mm for f in frames}
    rows = []
    for position in range(positions):
        for phase in range(phases):
            frame = at.get((position, phase))
            row = {
                "study_id": study_id,
                "position": position,
                "phase": phase,
                "slice": None,
                "dicom": None,
                "present": False,
                "codes": "",
                "npz": None,
                "cine": cine_path,
                "trigger_time": None,
                "cardiac_phase": cardiac_phase.get(phase, ""),
                "position_mm": position_mm.get(position),
                **_geometry(frame, grid),
            }
            if frame is not None:
                row.update(
                    slice=frame.number,
                    dicom=frame.path,
                    present=frame.present,
                    codes=codes_of(frame.number),
                    npz=sample_files.get(frame.number),
                    trigger_time=frame.trigger_time,
                )
            rows.append(row)
    return rows


def _geometry(frame: FrameImage | None, grid: ResampleGrid | None) -> dict:
    """The index's geometry columns for a frame (docs/geometry.md): the stored array's spacing
    (the grid's, else the DICOM's PixelSpacing), the DICOM's own geometry, and where the stored
    pixel (0, 0) lies on its pixel grid (only for a present frame)."""
    geometry = frame.geometry if frame is not None else None
    source = (geometry.pixel_spacing if geometry else None) or (None, None)
    spacing = (grid.spacing_mm, grid.spacing_mm) if grid is not None else source
    origin = (None, None)
    if frame is not None and frame.present:
        origin = frame.placement.origin if frame.placement is not None else (0.0, 0.0)
    return index_geometry(geometry, spacing, origin)
