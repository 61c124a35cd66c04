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

import itertools
import operator
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, overload

import numpy as np

__all__ = [
    "INDEX_COLUMNS",
    "INDEX_NAME",
    "DatasetIndexError",
    "SamplePaths",
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


def read_index_columns(path: Path, data: bytes | None = None) -> dict[str, Any]:
    """The columns of ``index.parquet`` at ``path`` the loader uses, validated; ``data``: the
    file's bytes, when already read (and checked against the manifest), parsed instead.

    Nothing is built per sample in Python: each column is checked by its Arrow type and
    converted vectorized (about 0.1 s per million samples in all).

    Returns:
        column name -> value for every required column and every optional one present: a
        :class:`SamplePaths` for ``npz`` (one ``str`` made per access); numpy arrays
        otherwise: int64 (integers), object (strings: one ``str`` object per distinct value,
        shared by the rows that hold it), bool (``has_omask``), float64 ``(N,)`` (geometry
        scalars) or ``(N, k)`` (geometry vectors).

    Raises:
        DatasetIndexError: the file is missing or unreadable, or a column is missing, null where
            it may not be, of the wrong type, or holds a refused value; the message names the
            column and the first bad row.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq  # deferred: importing pyarrow costs ~0.2 s

    if data is None and not path.is_file():
        raise DatasetIndexError(f"{path}: no {INDEX_NAME} in the dataset folder")
    try:
        parquet = pq.ParquetFile(path if data is None else pa.BufferReader(data))
        schema = parquet.schema_arrow
        present = set(schema.names)
        missing = [c for c in REQUIRED_COLUMNS if c not in present]
        if missing:
            raise DatasetIndexError(
                f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(schema.names)})"
            )
        wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in present]
        # ParquetFile, not read_table: read_table scans through pyarrow.dataset, whose threads
        # can outlive the interpreter's teardown (apache/arrow#34314); see loader.manifest.
        table = parquet.read(columns=wanted)
    except DatasetIndexError:
        raise
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DatasetIndexError(f"{path}: cannot read {INDEX_NAME}: {exc}") from exc
    columns: dict[str, Any] = {}
    for name in wanted:
        column = table.column(name).combine_chunks()
        if name in GEOMETRY_SCALARS:
            columns[name] = _geometry_scalar(path, name, column)
            continue
        if name in GEOMETRY_VECTORS:
            columns[name] = _geometry_vector(path, name, column)
            continue
        kind = column.type
        if name in OPTIONAL_STRINGS:
            if not (_is_string(kind) or pa.types.is_null(kind)):
                raise DatasetIndexError(f"{path}: column {name!r} must hold strings")
            columns[name] = _shared_strings(column.cast(pa.string()))
            continue
        if column.null_count:
            row = int(np.argmax(arrow_numpy(column.is_null())))
            raise DatasetIndexError(f"{path}: column {name!r} is empty (null) at row {row}")
        if name in _INTEGERS:
            if not pa.types.is_integer(kind):
                raise DatasetIndexError(f"{path}: column {name!r} must hold integers")
            columns[name] = arrow_numpy(column).astype(np.int64)
        elif name == "has_omask":
            if not pa.types.is_boolean(kind):
                raise DatasetIndexError(f"{path}: column 'has_omask' must hold booleans")
            columns[name] = arrow_numpy(column)
        elif name == "npz":
            columns[name] = _relative_paths(column)
        else:
            if not _is_string(kind):
                raise DatasetIndexError(f"{path}: column {name!r} must hold strings")
            if name == "image_dtype":
                _check_dtype_names(path, column)
            columns[name] = _shared_strings(column)
    _check_required_values(path, columns)
    # The decoded table is dropped: hand its memory back (Arrow's allocator keeps freed pages
    # for reuse, ~500 bytes a sample of the index otherwise held by the open index).
    del table
    pa.default_memory_pool().release_unused()
    return columns


def arrow_numpy(array: Any, null: Any = None) -> np.ndarray:
    """The values of a pyarrow array (or chunked array) of a fixed-width number or bool type
    as a numpy array (a view where the type allows and there are no nulls; bools unpacked),
    ``null`` where null (ValueError for a null when ``null`` is None).

    pyarrow's own ``to_numpy`` (and any Python scalar given to pyarrow) imports pandas (~0.4 s,
    a sixth of the fast open at 100,000 studies) even where it copies nothing; this reads the
    buffers directly.
    """
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind, count, offset = array.type, len(array), array.offset
    validity, data = array.buffers()[:2]
    if pa.types.is_boolean(kind):
        values = _bits(data, offset, count)
    else:
        if pa.types.is_floating(kind):
            letter = "f"
        elif pa.types.is_signed_integer(kind):
            letter = "i"
        elif pa.types.is_unsigned_integer(kind):
            letter = "u"
        else:
            raise TypeError(f"arrow_numpy: {kind} is not a number or bool type")
        dtype = np.dtype(f"{letter}{kind.bit_width // 8}")
        values = (
            np.zeros(count, dtype=dtype)
            if data is None
            else np.frombuffer(data, dtype=dtype, count=offset + count)[offset:]
        )
    if not array.null_count:
        return values
    if null is None:
        raise ValueError("arrow_numpy: the array has nulls")
    values = values.astype(np.result_type(values.dtype, np.min_scalar_type(null)), copy=True)
    values[~_bits(validity, offset, count)] = null
    return values


def _bits(buffer: Any, offset: int, count: int) -> np.ndarray:
    """``count`` bools of an Arrow bitmap (least significant bit first) from bit ``offset``."""
    if buffer is None:
        return np.zeros(count, dtype=bool)
    bits = np.unpackbits(
        np.frombuffer(buffer, dtype=np.uint8), bitorder="little", count=offset + count
    )
    return bits[offset:].view(bool)


def _is_string(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _shared_strings(column: Any) -> np.ndarray:
    """An object array of the strings of ``column`` ("" where null), one ``str`` object per
    distinct value shared by its rows (dictionary-encoded in Arrow, then a numpy take):
    8 bytes a row, not a string each."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column)
    values = np.empty(len(encoded.dictionary) + 1, dtype=object)
    values[:] = [*encoded.dictionary.to_pylist(), ""]
    return values[arrow_numpy(encoded.indices, null=len(encoded.dictionary))]


class SamplePaths(Sequence[str]):
    """The ``npz`` column: each sample's file relative to the version folder, a ``str`` made
    when asked for (``paths[row]``), not one held per sample.

    Kept as the column's UTF-8 bytes and offsets (~50 bytes a sample for paths of 40
    characters, against ~100 for a list of str). Supports ``len``, indexing by int (negative
    too) or slice (a list), iteration, and ``==`` with any sequence of str (a list compares
    equal to the same paths in order).
    """

    __slots__ = ("_data", "_offsets")

    def __init__(self, column: Any):
        import pyarrow as pa

        array = column.cast(pa.large_string())
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        _, offsets, data = array.buffers()
        self._offsets = np.frombuffer(offsets, dtype=np.int64)[
            array.offset : array.offset + len(array) + 1
        ]
        self._data = b"" if data is None else data.to_pybytes()

    @classmethod
    def of(cls, paths: Sequence[str]) -> SamplePaths:
        """The paths of a list of str."""
        import pyarrow as pa

        return cls(pa.array(list(paths), pa.large_string()))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, row: int) -> str: ...

    @overload
    def __getitem__(self, row: slice) -> list[str]: ...

    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = operator.index(row)
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"sample row {row} out of range (0..{len(self) - 1})")
        return self._data[self._offsets[row] : self._offsets[row + 1]].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        data, bounds = self._data, self._offsets.tolist()
        for start, end in itertools.pairwise(bounds):
            yield data[start:end].decode("utf-8")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SamplePaths):
            return bool(
                np.array_equal(self._offsets - self._offsets[0], other._offsets - other._offsets[0])
                and self._bytes() == other._bytes()
            )
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-equality semantics, like a list

    def _bytes(self) -> bytes:
        return self._data[self._offsets[0] : self._offsets[-1]]

    def arrow(self) -> Any:
        """The paths as a pyarrow ``large_string`` array (no copy of the bytes' Python str)."""
        import pyarrow as pa

        start = int(self._offsets[0])
        return pa.LargeStringArray.from_buffers(
            len(self), pa.py_buffer(self._offsets - start), pa.py_buffer(self._bytes())
        )

    def joined(self, rows: np.ndarray, separator: bytes = b"\n") -> bytes:
        """The UTF-8 bytes of the paths of ``rows`` (int, in order, repeats allowed) joined by
        ``separator``: ``separator.join(paths[r].encode() for r in rows)``, gathered in Arrow
        (no str per row)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"sample rows out of range (0..{len(self) - 1})")
        taken = self.arrow().take(
            pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])
        )
        one_list = pa.LargeListArray.from_arrays(
            pa.Array.from_buffers(
                pa.int64(), 2, [None, pa.py_buffer(np.array([0, len(rows)], dtype=np.int64))]
            ),
            taken,
        )
        separators = pa.LargeStringArray.from_buffers(
            1, pa.py_buffer(np.array([0, len(separator)], dtype=np.int64)), pa.py_buffer(separator)
        )
        joined = pc.binary_join(one_list, separators)
        _, offsets, data = joined.buffers()
        bounds = np.frombuffer(offsets, dtype=np.int64, count=2)
        return b"" if data is None else data.to_pybytes()[bounds[0] : bounds[1]]

    def __repr__(self) -> str:
        shown = ", ".join(repr(self[row]) for row in range(min(len(self), 3)))
        return f"SamplePaths([{shown}{', ...' if len(self) > 3 else ''}], {len(self)} paths)"


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


def _relative_paths(column: Any) -> SamplePaths:
    """The npz column checked by :func:`check_relative_path`, compared vectorized (one regular
    expression over the column: ~0.1 s per million rows, against ~5 µs a row in Python); the
    first refused row is passed to it for its message."""
    import pyarrow.compute as pc

    if not _is_string(column.type):
        for row, value in enumerate(column.to_pylist()):
            check_relative_path(value, row)  # raises at the first value, which is no str
        return SamplePaths.of([])
    # a null is refused; "" is (^$ in the expression)
    refused = arrow_numpy(
        pc.or_kleene(pc.is_null(column), pc.match_substring_regex(column, _ESCAPING + "|^$"))
    )
    for row in np.flatnonzero(refused)[:1].tolist():
        check_relative_path(column[row].as_py(), row)  # raises, naming the row
    return SamplePaths(column)


def _check_required_values(path: Path, columns: dict[str, Any]) -> None:
    import pyarrow.compute as pc

    for name in ("height", "width"):
        bad = np.flatnonzero(columns[name] <= 0)
        if len(bad):
            raise DatasetIndexError(
                f"{path}: row {bad[0]}: {name} {columns[name][bad[0]]} is not positive"
            )
    npz = columns["npz"]
    paths = npz.arrow()
    # Paths in strictly increasing order (as the workflow's index has them) are distinct: one
    # comparison of neighbours; in another order, a hash of each.
    if len(npz) < 2 or pc.all(pc.less(paths[:-1], paths[1:])).as_py():
        return
    if len(pc.unique(paths)) == len(npz):
        return
    first_row: dict[str, int] = {}
    for row, relpath in enumerate(npz):
        if first_row.setdefault(relpath, row) != row:
            raise DatasetIndexError(
                f"{path}: rows {first_row[relpath]} and {row} name the same file {relpath!r}"
            )


def _check_dtype_names(path: Path, column: Any) -> None:
    """Every distinct value of the ``image_dtype`` column names a numpy integer or float type;
    the first row of one that does not is named."""
    import pyarrow.compute as pc

    for name in pc.unique(column).to_pylist():
        try:
            kind = np.dtype(name).kind
        except TypeError:
            kind = None
        if kind is None or kind not in "iuf":
            row = pc.index(column, name).as_py()
            raise DatasetIndexError(
                f"{path}: row {row}: image_dtype {name!r} is not a numpy integer or float type"
            )


def _geometry_scalar(path: Path, name: str, column: Any) -> np.ndarray:
    """float64 values of a geometry column, NaN where null; refuses non-numbers and bad values."""
    import pyarrow as pa

    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise DatasetIndexError(f"{path}: column {name!r} must hold numbers, not {column.type}")
    values = arrow_numpy(column.cast(pa.float64()), null=np.nan)
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
        valid = arrow_numpy(column.is_valid())
        lengths = arrow_numpy(pc.list_value_length(column), null=size)
        flat = arrow_numpy(pc.list_flatten(column).cast(pa.float64()), null=np.nan)
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
