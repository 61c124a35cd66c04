"""Opening a finished dataset version (its manifest check and its sample table,
``index.parquet``), and selecting samples by split, study and problem flag.

The sample index is the row number in ``index.parquet`` (sorted by study and slice): shuffling,
``peek``, augmentation draws, ``with_rows`` batches and saved loader state all refer to samples
by it.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from loader.index_columns import (
    INDEX_NAME,
    DatasetIndexError,
    SamplePaths,
    arrow_numpy,
    read_index_columns,
)
from loader.manifest import (
    DatasetVerificationError,
    check_dataset,
    manifest_table,
    read_manifest,
    top_outputs,
)

__all__ = ["DatasetIndex", "Verify", "counted"]

VERIFY_MODES = ("fast", "full", "none")

Verify = Literal["fast", "full", "none"]


class DatasetIndex:
    """A finished dataset version, checked against its manifest, and its table of samples.

    Opening reads ``manifest.json`` (a folder without one is refused as unfinished), checks the
    files against it, then reads ``index.parquet`` into numpy arrays (one element per sample, in
    row order; ``loader.index_columns`` lists and validates the columns) without a Python
    object per sample (strings shared per distinct value, the npz paths kept as bytes).

    Args:
        path: the version folder, ``{out_dir}/{version}``.
        verify: what opening guarantees (docs/versions.md, "What each check guarantees"):

            - ``"fast"`` (default): ``index.parquet`` is the one the build wrote, byte for byte
              (its sha256 against manifest.json's ``top_outputs``, or the outputs table of a
              manifest written before them), so its sample paths are the ones the manifest
              lists; every other file directly in the version folder that the manifest records
              (the top-level tables, the manifest's own tables) exists with its recorded size.
              Sample files are not looked at (a missing or damaged one is named when read:
              ``SampleFileError``). Nothing per study or per sample file: ~0.1 s beyond
              reading the index, at any number of studies.
            - ``"full"``: every file the manifest lists exists with its recorded size and
              sha256 (reads the whole dataset), and every npz path of the index is listed.
            - ``"none"``: no file check, but a manifest is still required.

    Attributes:
        study_id, split, image_dtype: object arrays of str, one per sample.
        slice, height, width: int64 arrays (slice number; slice shape in pixels).
        npz: :class:`~loader.index_columns.SamplePaths`, the sample files relative to the
            version folder: a sequence of str (``npz[row]``), each made when asked for.
        has_omask: bool array, or None when the index has no such column (built before it).
        mask_pixels: int64 array, or None when absent.
        flags: object array of str (comma-separated problem codes, "" for none), or None when
            absent.
        pixel_spacing_row, pixel_spacing_col: float64 arrays, mm per pixel of the stored arrays
            along a column (between rows) and along a row (between columns); NaN where unknown or
            where the index has no such column (datasets built before it).
        source_spacing_row, source_spacing_col: float64 arrays, mm, the DICOM's own PixelSpacing
            (differs from pixel_spacing_* in resampled versions); NaN where unknown or absent.
        grid_origin_row, grid_origin_col: float64 arrays, where the centre of stored pixel
            (0, 0) lies on the DICOM's pixel grid (row, column, in DICOM pixels; 0 on the native
            grid); NaN where absent.
        slice_thickness, slice_location: float64 arrays, mm; NaN where unknown or absent.
        image_position: float64 (N, 3), mm, patient coordinates of the first pixel's centre;
            image_orientation: float64 (N, 6), direction cosines of the rows then the columns;
            rows of NaN where unknown or absent.
        position, phase: float64 arrays of whole numbers, the sample's slice position and
            frame in its study's cine; position_mm: float64, mm from position 0's plane;
            trigger_time: float64, ms; NaN where unknown or absent (datasets built before the
            cine columns). cardiac_phase: object array of str, ``"ED"``, ``"ES"`` or ``""``
            (also where absent). See ``docs/cine.md``.

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
        if verify == "full":
            self.manifest: dict[str, Any] = check_dataset(self.root, full=True)
        else:
            self.manifest = read_manifest(self.root)
        # fast: the index's bytes, once checked against their sha256, are the ones parsed
        index_bytes = self._check_top_files() if verify == "fast" else None
        columns = read_index_columns(self.root / INDEX_NAME, index_bytes)
        self.study_id: np.ndarray = columns["study_id"]
        self.slice: np.ndarray = columns["slice"]
        self.npz: SamplePaths = columns["npz"]
        self.split: np.ndarray = columns["split"]
        self.height: np.ndarray = columns["height"]
        self.width: np.ndarray = columns["width"]
        self.image_dtype: np.ndarray = columns["image_dtype"]
        self.mask_pixels: np.ndarray | None = columns.get("mask_pixels")
        self.has_omask: np.ndarray | None = columns.get("has_omask")
        self.flags: np.ndarray | None = columns.get("flags")
        unknown = np.full(len(self.npz), np.nan)
        self.pixel_spacing_row: np.ndarray = columns.get("pixel_spacing_row", unknown)
        self.pixel_spacing_col: np.ndarray = columns.get("pixel_spacing_col", unknown)
        self.source_spacing_row: np.ndarray = columns.get("source_spacing_row", unknown)
        self.source_spacing_col: np.ndarray = columns.get("source_spacing_col", unknown)
        self.grid_origin_row: np.ndarray = columns.get("grid_origin_row", unknown)
        self.grid_origin_col: np.ndarray = columns.get("grid_origin_col", unknown)
        self.slice_thickness: np.ndarray = columns.get("slice_thickness", unknown)
        self.slice_location: np.ndarray = columns.get("slice_location", unknown)
        self.image_position: np.ndarray = columns.get(
            "image_position", np.full((len(self.npz), 3), np.nan)
        )
        self.image_orientation: np.ndarray = columns.get(
            "image_orientation", np.full((len(self.npz), 6), np.nan)
        )
        self.position: np.ndarray = columns.get("position", unknown)
        self.position_mm: np.ndarray = columns.get("position_mm", unknown)
        self.phase: np.ndarray = columns.get("phase", unknown)
        self.trigger_time: np.ndarray = columns.get("trigger_time", unknown)
        self.cardiac_phase: np.ndarray = columns.get(
            "cardiac_phase", np.full(len(self.npz), "", dtype=object)
        )
        if verify == "full":
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
        """One problem line per npz path of the index that the manifest's outputs do not list
        (compared vectorized against the outputs' paths)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        outputs = manifest_table(self.root, self.manifest, "outputs", ["path"])["path"]
        named = self.npz.arrow()
        listed = pc.is_in(named, value_set=outputs.cast(pa.large_string()))
        listed = arrow_numpy(listed)
        return [
            f"{self.npz[row]}: named in {INDEX_NAME} but not in the manifest"
            for row in np.flatnonzero(~listed).tolist()
        ]

    def missing_sample_files(self) -> list[str]:
        """One problem line per npz file of the index that is not in its folder: one listing
        per folder (a study's), not a ``stat`` per file (~25 µs a study on the loaded 2-core
        machine: 2.5 s at 100,000 studies, which is why the fast open does not call it)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        named = self.npz.arrow()
        folders = pc.replace_substring_regex(named, pattern=r"/[^/]*$", replacement="")
        present = []
        for folder in pc.unique(folders).to_pylist():
            try:
                names = os.listdir(self.root / folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            prefix = f"{folder}/" if folder else ""
            present += [prefix + name for name in names]
        found = pc.is_in(named, value_set=pa.array(present, pa.large_string()))
        return [f"{self.npz[row]}: missing" for row in np.flatnonzero(~arrow_numpy(found)).tolist()]

    def _check_top_files(self) -> bytes:
        """The fast check: every file directly in the version folder that the manifest
        records (the outputs there, and the manifest's own tables) exists with its recorded
        size, and ``index.parquet`` with its recorded sha256 (from manifest.json, or from the
        outputs table of a manifest written before manifest.json recorded them, that table
        checked by its own sha256). Returns the index's bytes, to be parsed as checked."""
        problems, index_bytes = [], None
        recorded = top_outputs(self.root, self.manifest)
        for table in self.manifest.get("tables", {}).values():  # format 2: by size only
            recorded.setdefault(table["file"], {"sha256": None, "size": table["size"]})
        if INDEX_NAME not in recorded:
            problems.append(f"{INDEX_NAME}: not listed in the manifest")
        for name, entry in sorted(recorded.items()):
            path = self.root / name
            try:
                if name == INDEX_NAME:
                    data = path.read_bytes()
                    size = len(data)
                else:
                    size = os.stat(path).st_size
            except FileNotFoundError:
                problems.append(f"{name}: missing")
                continue
            if size != entry["size"]:
                problems.append(f"{name}: size {size} bytes, manifest says {entry['size']}")
            elif name == INDEX_NAME:
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    problems.append(f"{name}: content changed (sha256 differs from the manifest)")
                else:
                    index_bytes = data
        if problems or index_bytes is None:
            raise DatasetVerificationError(self.root, problems)
        return index_bytes

    def path(self, row: int) -> Path:
        """Path of the npz file of sample ``row`` (under the version folder)."""
        return self.root / self.npz[row]

    # ------------------------------------------------------------------------------- selection

    def rows(
        self,
        split: str | Iterable[str] | None = None,
        *,
        studies: str | Iterable[str] | None = None,
        exclude_flags: str | Iterable[str] | None = None,
    ) -> np.ndarray:
        """Row numbers (int64, ascending) of the samples selected; all rows by default.

        The selection is the intersection of the filters given.

        Args:
            split: a split name (``"train"``) or several (``["train", "val"]``); None: all.
            studies: study ids (a single id may be given as a string); None: all.
            exclude_flags: problem codes (e.g. ``"mask_area_outlier"``): leave out the samples
                whose ``flags`` column lists any of them; None: leave out nothing.

        Raises:
            ValueError: a split without samples or a study id not in the index (naming them and
                what the index has), an empty list, or a selection that leaves no sample (giving
                the count after each filter).
            DatasetIndexError: ``exclude_flags`` given but the index has no ``flags`` column.

        Warns:
            UserWarning: a code of ``exclude_flags`` occurs in no sample of this version (a
                typo, or a code this version never raised); nothing is left out for it.
        """
        keep = np.ones(len(self), dtype=bool)
        funnel = [f"{INDEX_NAME} has {counted(len(self), 'sample')}"]
        splits = _names(split, "split")
        if splits is not None:
            counts = self.split_counts()
            absent = [name for name in splits if name not in counts]
            if absent:
                present = ", ".join(f"{k!r} ({n})" for k, n in sorted(counts.items()))
                raise ValueError(
                    f"split {', '.join(map(repr, absent))} has no samples in {self.root}; the "
                    f"index has: {present or 'none'}"
                )
            keep &= np.isin(self.split, splits)
            funnel.append(f"{int(keep.sum())} in split {', '.join(map(repr, splits))}")
        wanted_studies = _names(studies, "studies")
        if wanted_studies is not None:
            known = sorted(set(self.study_id.tolist()))
            unknown = sorted(set(wanted_studies) - set(known))
            if unknown:
                shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
                raise ValueError(
                    f"studies not in {self.root / INDEX_NAME}: {', '.join(map(repr, unknown))} "
                    f"(it has {counted(len(known), 'study', 'studies')}: {shown})"
                )
            keep &= np.isin(self.study_id, wanted_studies)
            funnel.append(f"{int(keep.sum())} of studies {', '.join(wanted_studies)}")
        codes = _names(exclude_flags, "exclude_flags")
        if codes is not None:
            keep &= ~self._flagged(codes)
            funnel.append(f"{int(keep.sum())} without flags {', '.join(codes)}")
        if not keep.any():
            raise ValueError(f"no sample is selected in {self.root}: {'; '.join(funnel)}")
        return np.flatnonzero(keep).astype(np.int64)

    def _flagged(self, codes: tuple[str, ...]) -> np.ndarray:
        """bool per row: whether its flags list any of ``codes``; warns about absent codes."""
        if self.flags is None:
            raise DatasetIndexError(
                f"{self.root / INDEX_NAME} has no 'flags' column (built before the workflow "
                "recorded flags): exclude_flags cannot be applied; rebuild the version, or "
                "leave exclude_flags out"
            )
        row_codes = [set(filter(None, text.split(","))) for text in self.flags.tolist()]
        present = set().union(*row_codes)
        absent = [code for code in codes if code not in present]
        if absent:
            warnings.warn(
                f"exclude_flags {', '.join(map(repr, absent))} occur in no sample of "
                f"{self.root} (flags present: {', '.join(sorted(present)) or 'none'}); "
                "nothing is left out for them",
                UserWarning,
                stacklevel=4,
            )
        wanted = set(codes)
        return np.array([not wanted.isdisjoint(found) for found in row_codes], dtype=bool)

    def rows_with_omask(self, rows: np.ndarray) -> np.ndarray:
        """The rows among ``rows`` (int64, order kept) whose sample has an o-contour mask.

        Raises:
            DatasetIndexError: the index has no ``has_omask`` column.
            ValueError: none of ``rows`` has an o-contour.
        """
        if self.has_omask is None:
            raise DatasetIndexError(
                f"{self.root / INDEX_NAME} has no 'has_omask' column: this version does not say "
                "which samples have an o-contour, so 'omask' and 'labels' cannot be served; "
                "rebuild it with contours=[i,o]"
            )
        kept = rows[self.has_omask[rows]]
        if len(kept) == 0:
            raise ValueError(
                f"none of the {counted(len(rows), 'selected sample')} of {self.root} has an "
                "o-contour, so 'omask' and 'labels' cannot be served; build the version with "
                "contours=[i,o] (or select samples that have one)"
            )
        return kept

    # ---------------------------------------------------------------------------- description

    def split_counts(self) -> dict[str, int]:
        """Samples per split."""
        return dict(Counter(self.split.tolist()))

    def shapes(self, rows: np.ndarray | None = None) -> Counter:
        """Counter of (height, width) over ``rows`` (all rows by default)."""
        rows = self.rows() if rows is None else rows
        # one int64 key per row (height and width are positive int32 values), counted by
        # numpy; shapes in the order they first occur, as a Counter over the rows would be
        keys = (self.height[rows].astype(np.int64) << 32) | self.width[rows].astype(np.int64)
        unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        return Counter(
            {
                (key >> 32, key & 0xFFFFFFFF): count
                for key, count in zip(unique[order].tolist(), counts[order].tolist(), strict=True)
            }
        )

    def dtypes(self, rows: np.ndarray | None = None) -> Counter:
        """Counter of stored image dtype names over ``rows`` (all rows by default)."""
        rows = self.rows() if rows is None else rows
        return Counter(self.image_dtype[rows].tolist())

    def spacings(self, rows: np.ndarray | None = None) -> Counter:
        """Counter of (row spacing, column spacing) in mm over ``rows`` (all by default); None
        counts the samples whose spacing is unknown (NaN in either)."""
        rows = self.rows() if rows is None else rows
        pairs = zip(
            self.pixel_spacing_row[rows].tolist(),
            self.pixel_spacing_col[rows].tolist(),
            strict=True,
        )
        return Counter(
            None if np.isnan(row_mm) or np.isnan(col_mm) else (row_mm, col_mm)
            for row_mm, col_mm in pairs
        )

    def digest(self, rows: np.ndarray) -> str:
        """A short digest of the npz paths of ``rows``, in order (to recognise a selection)."""
        return hashlib.sha256(self.npz.joined(rows)).hexdigest()[:16]


def _names(value: str | Iterable[str] | None, option: str) -> tuple[str, ...] | None:
    """A selection option as a tuple of distinct names (a string is one name); None stays None."""
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names:
        raise ValueError(f"{option} is empty; pass None to leave this filter out")
    bad = [name for name in names if not isinstance(name, str) or not name]
    if bad:
        raise TypeError(f"{option} must hold non-empty strings, got {bad[0]!r}")
    return tuple(dict.fromkeys(names))


def counted(number: int, singular: str, plural: str | None = None) -> str:
    """``1 sample``, ``2 samples``; ``plural`` for irregular words (``studies``)."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"
