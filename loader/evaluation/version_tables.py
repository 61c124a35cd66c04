"""What evaluation reads from a dataset version besides the sample files: the columns of
``index.parquet`` it needs, ``measures.parquet`` (the manual volumes per study) and the size of
each study's cine.

The cine columns (``position``, ``phase``, ``cardiac_phase``) and ``measures.parquet`` exist in
versions built since the cine was added (DESIGN.md, *The cine*); without them evaluation scores
each contour but cannot compute per-study volumes, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from loader.index import DatasetIndex

__all__ = ["CINE_COLUMNS", "GRID_COLUMNS", "VersionTables"]

MEASURES_NAME = "measures.parquet"
FRAMES_NAME = "frames.parquet"
#: Index columns that place a sample in its study's cine.
CINE_COLUMNS = ("position", "phase", "cardiac_phase")
#: Index columns that place the stored grid on the DICOM's pixel grid (resampled versions).
GRID_COLUMNS = ("grid_origin_row", "grid_origin_col", "source_spacing_row", "source_spacing_col")
_WANTED = (
    "study_id",
    "original_id",
    "slice",
    "split",
    "height",
    "width",
    "has_omask",
    "pixel_spacing_row",
    "pixel_spacing_col",
    *GRID_COLUMNS,
    *CINE_COLUMNS,
)


@dataclass
class VersionTables:
    """A version opened for evaluation.

    Attributes:
        index: the opened :class:`~loader.DatasetIndex` (manifest checked, sample paths).
        samples: one row per sample, in index order (column ``row`` = its row number), with the
            columns of ``_WANTED`` the index has.
        measures: ``measures.parquet`` (one row per study with ED and ES), or None when absent.
    """

    index: DatasetIndex
    samples: pd.DataFrame
    measures: pd.DataFrame | None

    @classmethod
    def open(cls, root: str | Path, verify: str = "fast") -> VersionTables:
        index = DatasetIndex(root, verify=verify)
        import pyarrow.parquet as pq

        path = index.root / "index.parquet"
        present = set(pq.read_schema(path).names)
        samples = pq.read_table(path, columns=[c for c in _WANTED if c in present]).to_pandas()
        samples.insert(0, "row", np.arange(len(samples)))
        if "original_id" not in samples:
            samples["original_id"] = samples["study_id"]
        if "has_omask" not in samples:
            samples["has_omask"] = False
        for name in ("pixel_spacing_row", "pixel_spacing_col"):
            if name not in samples:  # versions built before the geometry columns
                samples[name] = np.nan
        measures_path = index.root / MEASURES_NAME
        measures = pd.read_parquet(measures_path) if measures_path.is_file() else None
        return cls(index=index, samples=samples, measures=measures)

    @property
    def root(self) -> Path:
        return self.index.root

    @property
    def has_cine_columns(self) -> bool:
        """Whether the index places samples in their cine and the version has measures."""
        return all(c in self.samples for c in CINE_COLUMNS[:2]) and self.measures is not None

    def measures_of(self, study_id: str) -> pd.Series | None:
        """The study's row of ``measures.parquet``, or None."""
        if self.measures is None:
            return None
        found = self.measures[self.measures["study_id"] == study_id]
        return None if found.empty else found.iloc[0]

    def cine_shape(self, study_id: str) -> tuple[int, int] | None:
        """(positions, phases) of the study's cine, from ``frames.parquet`` or the study's pairs
        table; None when the version records neither."""
        frames = self.root / FRAMES_NAME
        if frames.is_file():
            table = pd.read_parquet(frames, columns=["study_id", "position", "phase"])
            table = table[table["study_id"] == study_id]
            if not table.empty:
                return int(table["position"].max()) + 1, int(table["phase"].max()) + 1
        pairs = self.root / "pairs" / f"{study_id}.parquet"
        if pairs.is_file():
            import pyarrow.parquet as pq

            if {"position", "phase"} <= set(pq.read_schema(pairs).names):
                table = pd.read_parquet(pairs, columns=["position", "phase"]).dropna()
                if not table.empty:
                    return int(table["position"].max()) + 1, int(table["phase"].max()) + 1
        return None
