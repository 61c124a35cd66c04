"""Reading ``index.parquet`` into numpy arrays, one element (or row) per sample, and validating
every column the loader uses.

Required columns (never null): ``study_id``, ``split``, ``image_dtype`` (strings), ``slice``,
``height``, ``width`` (integers), ``npz`` (a relative path inside the version folder).

Optional columns, read when present (datasets built by older versions of the workflow lack
some): ``has_omask`` (bool), ``mask_pixels`` (integer), ``flags`` (comma-separated problem codes;
null reads as no flag), ``cardiac_phase`` (``ED``/``ES``/""), and the slice geometry, in
millimetres and the patient coordinate system of DICOM, NaN where null or absent:
``pixel_spacing_row``, ``pixel_spacing_col`` (mm per pixel of the stored arrays, > 0),
``source_spacing_row``, ``source_spacing_col`` (the DICOM's own PixelSpacing, > 0),
``grid_origin_row``, ``grid_origin_col`` (where stored pixel (0, 0) lies on the DICOM's pixel
grid, in its pixels), ``slice_thickness`` (mm), ``slice_location`` (mm), ``image_position`` (3
floats per sample: x, y, z of the first pixel's centre), ``image_orientation`` (6 floats:
direction cosines of the rows, then of the columns), and the cine's ``position``,
``position_mm``, ``phase``, ``trigger_time`` (ms).

Every column of the index is listed once, in :data:`INDEX_COLUMNS`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

__all__ = [
    "INDEX_COLUMNS",
    "INDEX_NAME",
    "DatasetIndexError",
    "index_columns_markdown",
    "read_index_columns",
]

INDEX_NAME = "index.parquet"

#: Every column of ``index.parquet``, in order: name -> (type, meaning). The one list of them:
#: the workflow's schema (``workflow_scripts.dataset.tables.INDEX_SCHEMA``) is built from it,
#: the loader reads its columns below, and ``docs/index-columns.md`` is written from it
#: (:func:`index_columns_markdown`; a test keeps them equal). Types: ``string``, ``int32``,
#: ``int64``, ``bool``, ``float64``, ``float64[k]`` (k floats). Null where unknown.
INDEX_COLUMNS: dict[str, tuple[str, str]] = {
    "version": ("string", "the dataset version"),
    "study_id": ("string", "the study's patient id (its DICOM folder)"),
    "original_id": ("string", "the study's original id (its contour folder)"),
    "slice": ("int32", "the DICOM's image number (its file name, `<n>.dcm`)"),
    "npz": ("string", "the sample file, relative to the version folder"),
    "qc": ("string", "the QC overlay, relative to the version folder"),
    "split": ("string", "`train`, `val` or `test`, assigned per study"),
    "height": ("int32", "rows of the stored arrays"),
    "width": ("int32", "columns of the stored arrays"),
    "image_dtype": ("string", "numpy dtype of the stored `image`"),
    "has_omask": ("bool", "whether the sample has an `omask` (an o-contour)"),
    "mask_pixels": ("int64", "pixels of the i-mask"),
    "omask_pixels": ("int64", "pixels of the o-mask"),
    "icontour": ("string", "the i-contour file, relative to the data folder"),
    "ocontour": ("string", "the o-contour file, relative to the data folder"),
    "i_outside_o": ("float64", "fraction of the i-mask outside the o-mask"),
    "flags": ("string", "the sample's problem codes, comma-separated (empty: none)"),
    "position": (
        "int32",
        "0-based slice position in its study's cine, from ImagePositionPatient on the stack "
        "normal; position 0 holds the lowest image numbers (docs/cine.md)",
    ),
    "position_mm": (
        "float64",
        "distance of the slice's plane from position 0's along the stack normal, mm; grows "
        "with `position`",
    ),
    "phase": ("int32", "0-based frame index within its position, by TriggerTime"),
    "trigger_time": ("float64", "TriggerTime, ms after the R wave"),
    "cardiac_phase": (
        "string",
        "`ED`, `ES` or empty: the study's two contoured phases, ED the one with the larger "
        "summed i-contour area",
    ),
    "pixel_spacing_row": (
        "float64",
        "mm between the centres of adjacent rows of the stored arrays (PixelSpacing's first "
        "value on the native grid, the grid's `spacing_mm` with `resample`)",
    ),
    "pixel_spacing_col": ("float64", "mm between the centres of adjacent columns, likewise"),
    "source_spacing_row": ("float64", "the DICOM's own PixelSpacing (rows), resampled or not"),
    "source_spacing_col": ("float64", "the DICOM's own PixelSpacing (columns)"),
    "grid_origin_row": (
        "float64",
        "DICOM pixel-grid row of the centre of stored pixel (0, 0): 0 on the native grid",
    ),
    "grid_origin_col": ("float64", "DICOM pixel-grid column of it, likewise"),
    "slice_thickness": ("float64", "SliceThickness, mm"),
    "slice_location": (
        "float64",
        "SliceLocation, mm: the scanner's coordinate along an axis of its choosing, not the "
        "distance between slices (use `position_mm`)",
    ),
    "image_position": (
        "float64[3]",
        "ImagePositionPatient: patient-space (x, y, z) of the DICOM's first pixel centre, mm",
    ),
    "image_orientation": (
        "float64[6]",
        "ImageOrientationPatient: direction cosines of a row, then of a column",
    ),
    "intensity_p01": ("float64", "1st percentile of the stored image's pixel values"),
    "intensity_p25": ("float64", "25th percentile"),
    "intensity_p50": ("float64", "50th percentile (median)"),
    "intensity_p75": ("float64", "75th percentile"),
    "intensity_p99": ("float64", "99th percentile"),
}

REQUIRED_COLUMNS = ("study_id", "slice", "npz", "split", "height", "width", "image_dtype")
_INTEGERS = ("slice", "height", "width", "mask_pixels")
_STRINGS = ("study_id", "split", "image_dtype")
#: Optional float columns, and whether a known value must be positive (the spacings, which the
#: workflow derives; the others are copied from the DICOM as they are, e.g. SliceThickness 0).
GEOMETRY_SCALARS = {
    "pixel_spacing_row": True,
    "pixel_spacing_col": True,
    "source_spacing_row": True,
    "source_spacing_col": True,
    "grid_origin_row": False,
    "grid_origin_col": False,
    "slice_thickness": False,
    "slice_location": False,
    # the cine (read as float64, NaN where unknown; position and phase are whole numbers)
    "position": False,
    "position_mm": False,
    "phase": False,
    "trigger_time": False,
}
#: Optional list columns, and the number of floats per sample.
GEOMETRY_VECTORS = {
    name: int(kind[len("float64[") : -1])
    for name, (kind, _) in INDEX_COLUMNS.items()
    if kind.startswith("float64[")
}
#: Optional string columns; null reads as "".
OPTIONAL_STRINGS = ("flags", "cardiac_phase")
OPTIONAL_COLUMNS = (
    "has_omask",
    "mask_pixels",
    *OPTIONAL_STRINGS,
    *GEOMETRY_SCALARS,
    *GEOMETRY_VECTORS,
)
assert set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS) <= set(INDEX_COLUMNS)


def index_columns_markdown() -> str:
    """The table of :data:`INDEX_COLUMNS` in Markdown (``docs/index-columns.md``'s)."""
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    lines += [
        f"| `{name}` | {kind} | {meaning} |" for name, (kind, meaning) in INDEX_COLUMNS.items()
    ]
    return "\n".join(lines) + "\n"


class DatasetIndexError(ValueError):
    """``index.parquet`` is missing, malformed, or names files the loader must not read."""


def read_index_columns(path: Path) -> dict[str, Any]:
    """The columns of ``index.parquet`` at ``path`` the loader uses, validated.

    Returns:
        column name -> value for every required column and every optional one present: a list
        of str for ``npz``; numpy arrays otherwise: int64 (integers), object (strings), bool
        (``has_omask``), float64 ``(N,)`` (geometry scalars) or ``(N, k)`` (geometry vectors).

    Raises:
        DatasetIndexError: the file is missing or unreadable, or a column is missing, null where
            it may not be, of the wrong type, or holds a refused value; the message names the
            column and the first bad row.
    """
    import pyarrow.parquet as pq  # deferred: importing pyarrow costs ~0.2 s

    if not path.is_file():
        raise DatasetIndexError(f"{path}: no {INDEX_NAME} in the dataset folder")
    try:
        schema = pq.read_schema(path)
        present = set(schema.names)
        missing = [c for c in REQUIRED_COLUMNS if c not in present]
        if missing:
            raise DatasetIndexError(
                f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(schema.names)})"
            )
        wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in present]
        table = pq.read_table(path, columns=wanted)
    except DatasetIndexError:
        raise
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DatasetIndexError(f"{path}: cannot read {INDEX_NAME}: {exc}") from exc
    columns: dict[str, Any] = {}
    for name in wanted:
        column = table.column(name)
        if name in GEOMETRY_SCALARS:
            columns[name] = _geometry_scalar(path, name, column)
            continue
        if name in GEOMETRY_VECTORS:
            columns[name] = _geometry_vector(path, name, column)
            continue
        values = column.to_pylist()
        if name in OPTIONAL_STRINGS:
            if not all(v is None or isinstance(v, str) for v in values):
                raise DatasetIndexError(f"{path}: column {name!r} must hold strings")
            columns[name] = np.asarray([v or "" for v in values], dtype=object)
            continue
        if column.null_count:
            row = values.index(None)
            raise DatasetIndexError(f"{path}: column {name!r} is empty (null) at row {row}")
        if name in _INTEGERS:
            if not all(type(v) is int for v in values):
                raise DatasetIndexError(f"{path}: column {name!r} must hold integers")
            columns[name] = np.asarray(values, dtype=np.int64)
        elif name == "has_omask":
            if not all(type(v) is bool for v in values):
                raise DatasetIndexError(f"{path}: column 'has_omask' must hold booleans")
            columns[name] = np.asarray(values, dtype=bool)
        elif name == "npz":
            columns[name] = _relative_paths(column, values)
        else:
            if not all(isinstance(v, str) for v in values):
                raise DatasetIndexError(f"{path}: column {name!r} must hold strings")
            columns[name] = np.asarray(values, dtype=object)
    _check_required_values(path, columns)
    return columns


def check_relative_path(relpath: object, row: int) -> str:
    """Return ``relpath`` if it is a plain relative POSIX path inside the version folder.

    Raises DatasetIndexError (naming the row and the path) for anything else: not a string, empty,
    absolute, with a backslash or drive, or with a ``..`` component.
    """
    if not isinstance(relpath, str) or not relpath:
        raise DatasetIndexError(f"{INDEX_NAME} row {row}: npz path {relpath!r} is not a path")
    parts = PurePosixPath(relpath).parts
    if relpath.startswith("/") or "\\" in relpath or ":" in parts[0] or ".." in parts:
        raise DatasetIndexError(
            f"{INDEX_NAME} row {row}: npz path {relpath!r} escapes the version folder "
            "(absolute paths, drives, backslashes and '..' are refused)"
        )
    return relpath


#: What :func:`check_relative_path` refuses in a non-empty string, as one regular expression:
#: absolute, a backslash, a drive (``:`` in the first part), a ``..`` component.
_ESCAPING = r"^/|\\|^[^/]*:|(^|/)\.\.(/|$)"


def _relative_paths(column: Any, values: list) -> list[str]:
    """The npz column checked by :func:`check_relative_path`, compared vectorized (one regular
    expression over the column: ~0.1 s per million rows, against ~5 µs a row in Python); the
    first refused row is passed to it for its message."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return [check_relative_path(v, row) for row, v in enumerate(values)]
    refused = pc.or_kleene(
        pc.equal(pc.utf8_length(column), 0), pc.match_substring_regex(column, _ESCAPING)
    )
    refused = pc.fill_null(refused, True).to_numpy(zero_copy_only=False)
    for row in np.flatnonzero(refused)[:1].tolist():
        check_relative_path(values[row], row)  # raises, naming the row
    return values


def _check_required_values(path: Path, columns: dict[str, Any]) -> None:
    for name in ("height", "width"):
        bad = np.flatnonzero(columns[name] <= 0)
        if len(bad):
            raise DatasetIndexError(
                f"{path}: row {bad[0]}: {name} {columns[name][bad[0]]} is not positive"
            )
    dtype_names = columns["image_dtype"].tolist()
    for name in set(dtype_names):
        try:
            kind = np.dtype(name).kind
        except TypeError:
            kind = None
        if kind is None or kind not in "iuf":
            raise DatasetIndexError(
                f"{path}: row {dtype_names.index(name)}: image_dtype {name!r} is not a numpy "
                "integer or float type"
            )
    if len(set(columns["npz"])) == len(columns["npz"]):
        return
    first_row: dict[str, int] = {}
    for row, relpath in enumerate(columns["npz"]):
        if first_row.setdefault(relpath, row) != row:
            raise DatasetIndexError(
                f"{path}: rows {first_row[relpath]} and {row} name the same file {relpath!r}"
            )


def _geometry_scalar(path: Path, name: str, column: Any) -> np.ndarray:
    """float64 values of a geometry column, NaN where null; refuses non-numbers and bad values."""
    import pyarrow as pa

    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise DatasetIndexError(f"{path}: column {name!r} must hold numbers, not {column.type}")
    values = column.cast(pa.float64()).to_numpy()
    known = ~np.isnan(values)
    bad = known & ~np.isfinite(values)
    if GEOMETRY_SCALARS[name]:
        bad |= known & ~(values > 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        expected = "a positive number of mm" if GEOMETRY_SCALARS[name] else "a finite number"
        raise DatasetIndexError(
            f"{path}: row {row}: {name} {float(values[row])!r} is not {expected} (null if unknown)"
        )
    return values


def _geometry_vector(path: Path, name: str, column: Any) -> np.ndarray:
    """(N, k) float64 rows of a list column, NaN rows where null; refuses other lengths.

    A list column of numbers whose rows all have k finite numbers (or are null) is converted
    vectorized; anything else is checked row by row, for the message naming the first bad row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    size = GEOMETRY_VECTORS[name]
    if (pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type)) and (
        pa.types.is_floating(column.type.value_type) or pa.types.is_integer(column.type.value_type)
    ):
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        lengths = pc.list_value_length(column).fill_null(size).to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(column).cast(pa.float64()).to_numpy(zero_copy_only=False)
        if (lengths == size).all() and np.isfinite(flat).all() and len(flat) == valid.sum() * size:
            out = np.full((len(column), size), np.nan)
            out[valid] = flat.reshape(-1, size)
            return out
    values = column.to_pylist()
    out = np.full((len(values), size), np.nan)
    for row, value in enumerate(values):
        if value is None:
            continue
        if (
            not isinstance(value, list)
            or len(value) != size
            or not all(isinstance(v, int | float) and np.isfinite(v) for v in value)
        ):
            raise DatasetIndexError(
                f"{path}: row {row}: {name} {value!r} is not {size} finite numbers (null if "
                "unknown)"
            )
        out[row] = value
    return out
