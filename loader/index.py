"""Opening a finished dataset version: its manifest check and its sample index (``index.parquet``).

The sample index is the row number in ``index.parquet`` (sorted by study and slice): shuffling,
``peek``, augmentation draws and saved loader state all refer to samples by it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from loader.manifest import (
    DatasetVerificationError,
    check_dataset,
    read_manifest,
)

__all__ = ["INDEX_NAME", "DatasetIndex", "DatasetIndexError"]

INDEX_NAME = "index.parquet"
VERIFY_MODES = ("fast", "full", "none")
REQUIRED_COLUMNS = ("study_id", "slice", "npz", "split", "height", "width", "image_dtype")
OPTIONAL_COLUMNS = ("has_omask", "mask_pixels")

Verify = Literal["fast", "full", "none"]


class DatasetIndexError(ValueError):
    """``index.parquet`` is missing, malformed, or names files the loader must not read."""


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


class DatasetIndex:
    """A finished dataset version, checked against its manifest, and its table of samples.

    Opening reads ``manifest.json`` (a folder without one is refused as unfinished), checks the
    files against it, then reads ``index.parquet`` into numpy arrays (one element per sample, in
    row order) and validates them: required columns present and non-null, npz paths relative and
    inside the folder, and, when verifying, every npz path listed in the manifest.

    Args:
        path: the version folder, ``{out_dir}/{version}``.
        verify: ``"fast"`` (default) checks that every file the manifest lists exists with its
            recorded size (one ``stat`` per file); ``"full"`` also recomputes every sha256 (reads
            the whole dataset); ``"none"`` skips the file checks but still requires a manifest.

    Raises:
        DatasetNotFinishedError: no ``manifest.json``.
        DatasetVerificationError: files missing or changed; the message names them.
        DatasetIndexError: ``index.parquet`` missing or malformed; the message names the column
            or row.

    Example:
        >>> index = DatasetIndex("results/1.0.0")  # doctest: +SKIP
        >>> len(index), index.split_counts()  # doctest: +SKIP
        (74, {'train': 36, 'val': 18, 'test': 20})
    """

    def __init__(self, path: str | Path, verify: Verify = "fast"):
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
        self.root = Path(path)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such dataset folder")
        if verify == "none":
            self.manifest: dict[str, Any] = read_manifest(self.root)
        else:
            self.manifest = check_dataset(self.root, full=verify == "full")
        columns = _read_columns(self.root / INDEX_NAME)
        self.study_id: np.ndarray = columns["study_id"]
        self.slice: np.ndarray = columns["slice"]
        self.npz: list[str] = columns["npz"]
        self.split: np.ndarray = columns["split"]
        self.height: np.ndarray = columns["height"]
        self.width: np.ndarray = columns["width"]
        self.image_dtype: np.ndarray = columns["image_dtype"]
        self.mask_pixels: np.ndarray | None = columns.get("mask_pixels")
        self.has_omask: np.ndarray | None = columns.get("has_omask")
        if verify != "none":
            unlisted = self.unlisted_files()
            if unlisted:
                raise DatasetVerificationError(self.root, unlisted)

    @property
    def version(self) -> str:
        """The dataset version recorded in the manifest."""
        return str(self.manifest.get("version", self.root.name))

    def __len__(self) -> int:
        return len(self.npz)

    def __repr__(self) -> str:
        return f"DatasetIndex({str(self.root)!r}, samples={len(self)}, version={self.version!r})"

    def unlisted_files(self) -> list[str]:
        """One problem line per npz path of the index that the manifest's outputs do not list."""
        outputs = self.manifest.get("outputs", {})
        return [
            f"{relpath}: named in {INDEX_NAME} but not in the manifest"
            for relpath in self.npz
            if relpath not in outputs
        ]

    def path(self, row: int) -> Path:
        """Path of the npz file of sample ``row`` (under the version folder)."""
        return self.root / self.npz[row]

    def rows(self, split: str | None = None) -> np.ndarray:
        """Row numbers (int64, ascending) of the samples of ``split``; all rows for None.

        Raises ValueError naming the splits present when ``split`` has no samples.
        """
        if split is None:
            return np.arange(len(self), dtype=np.int64)
        rows = np.flatnonzero(self.split == split).astype(np.int64)
        if len(rows) == 0:
            present = ", ".join(f"{k!r} ({n})" for k, n in sorted(self.split_counts().items()))
            raise ValueError(
                f"split {split!r} has no samples in {self.root}; the index has: {present or 'none'}"
            )
        return rows

    def split_counts(self) -> dict[str, int]:
        """Samples per split."""
        return dict(Counter(self.split.tolist()))

    def shapes(self, rows: np.ndarray | None = None) -> Counter:
        """Counter of (height, width) over ``rows`` (all rows by default)."""
        rows = self.rows() if rows is None else rows
        return Counter(zip(self.height[rows].tolist(), self.width[rows].tolist(), strict=True))

    def dtypes(self, rows: np.ndarray | None = None) -> Counter:
        """Counter of stored image dtype names over ``rows`` (all rows by default)."""
        rows = self.rows() if rows is None else rows
        return Counter(self.image_dtype[rows].tolist())

    def digest(self, rows: np.ndarray) -> str:
        """A short digest of the npz paths of ``rows``, in order (to recognise a selection)."""
        text = "\n".join(self.npz[row] for row in rows.tolist())
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_columns(path: Path) -> dict[str, Any]:
    """Read and validate the columns of ``index.parquet`` into numpy arrays / lists."""
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
        if column.null_count:
            row = next(i for i, v in enumerate(column.to_pylist()) if v is None)
            raise DatasetIndexError(f"{path}: column {name!r} is empty (null) at row {row}")
        values = column.to_pylist()
        if name in ("slice", "height", "width", "mask_pixels"):
            if not all(type(v) is int for v in values):
                raise DatasetIndexError(f"{path}: column {name!r} must hold integers")
            columns[name] = np.asarray(values, dtype=np.int64)
        elif name == "has_omask":
            columns[name] = np.asarray(values, dtype=bool)
        elif name == "npz":
            columns[name] = [check_relative_path(v, row) for row, v in enumerate(values)]
        else:
            if not all(isinstance(v, str) for v in values):
                raise DatasetIndexError(f"{path}: column {name!r} must hold strings")
            columns[name] = np.asarray(values, dtype=object)
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
    return columns
