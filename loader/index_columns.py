"""Reading ``index.parquet`` into numpy arrays, one element (or row) per sample, and validating
every column the loader uses.

Required columns (never null): ``study_id``, ``split``, ``image_dtype`` (strings), ``slice``,
``height``, ``width`` (integers), ``npz`` (a relative path inside the version folder).

Optional columns, read when present (datasets built by older versions of the workflow lack
some): ``has_omask`` (bool), ``mask_pixels`` (integer), ``flags`` (comma-separated problem codes;
null reads as no flag), and the slice geometry, in millimetres and the patient coordinate system
of DICOM, NaN where null or absent: ``pixel_spacing_row``, ``pixel_spacing_col`` (mm per pixel
of the stored arrays, > 0), ``source_spacing_row``, ``source_spacing_col`` (the DICOM's own
PixelSpacing, > 0), ``grid_origin_row``, ``grid_origin_col`` (where stored pixel (0, 0) lies on
the DICOM's pixel grid, in its pixels), ``slice_thickness`` (mm), ``slice_location`` (mm),
``image_position`` (3 floats per sample: x, y, z of the first pixel's centre) and
``image_orientation`` (6 floats: direction cosines of the rows, then of the columns).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

__all__ = ["INDEX_NAME", "DatasetIndexError", "read_index_columns"]

INDEX_NAME = "index.parquet"
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
}
#: Optional list columns, and the number of floats per sample.
GEOMETRY_VECTORS = {"image_position": 3, "image_orientation": 6}
OPTIONAL_COLUMNS = ("has_omask", "mask_pixels", "flags", *GEOMETRY_SCALARS, *GEOMETRY_VECTORS)


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
        values = column.to_pylist()
        if name in GEOMETRY_VECTORS:
            columns[name] = _geometry_vector(path, name, values)
            continue
        if name == "flags":
            if not all(v is None or isinstance(v, str) for v in values):
                raise DatasetIndexError(f"{path}: column 'flags' must hold strings")
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
            columns[name] = [check_relative_path(v, row) for row, v in enumerate(values)]
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


def _geometry_vector(path: Path, name: str, values: list) -> np.ndarray:
    """(N, k) float64 rows of a list column, NaN rows where null; refuses other lengths."""
    size = GEOMETRY_VECTORS[name]
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
