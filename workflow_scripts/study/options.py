"""How a study is built: the ``contours``, ``checks``, ``qc``, ``resample`` and
``follow_symlinks`` and ``frames`` settings of the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflow_scripts.config import FOLLOW_SYMLINKS
from workflow_scripts.study.frames import FRAMES_ALL, FRAMES_LABELLED
from workflow_scripts.study.resample import ResampleGrid

__all__ = ["BuildOptions"]


@dataclass(frozen=True)
class BuildOptions:
    """The options a study's build follows; the config schema holds their meaning and defaults.

    ``contour_kinds``: ``("i",)`` or ``("i", "o")``. ``max_pixels``: DICOMs whose header claims
    more pixels are refused. ``max_mask_fraction`` is a fraction of the image's pixel count and
    ``max_i_outside_o`` of the i-mask's; ``neighbour_area_factor`` flags i-masks beyond f
    times (or below 1/f of) the area their phase's neighbouring positions give
    (:func:`~workflow_scripts.study.checks.area_off_its_phase`); ``area_outlier_factor`` is
    the band of the version's area-to-median plot (a view, no flag). ``window``:
    ``"dicom"`` (the file's display window when it has one) or ``"percentile"`` (always the
    ``percentiles`` range); ``sheet_columns``: tiles per row of the contact sheet.
    ``resample``: the common grid every slice is put on, or None for the native pixel grid.
    ``follow_symlinks``: follow links inside the data folder wherever they lead, or only those
    staying inside it (see :mod:`~workflow_scripts.raw.listing`). ``frames``: ``"labelled"``
    (the samples only) or ``"all"`` (also the study's whole cine, see
    :mod:`~workflow_scripts.study.frames`).
    """

    contour_kinds: tuple[str, ...]
    max_pixels: int
    max_mask_fraction: float
    area_outlier_factor: float
    max_i_outside_o: float
    neighbour_area_factor: float
    window: str
    percentiles: tuple[float, float]
    sheet_columns: int
    resample: ResampleGrid | None = None
    follow_symlinks: bool = FOLLOW_SYMLINKS
    frames: str = FRAMES_LABELLED

    @property
    def all_frames(self) -> bool:
        """Whether the study's whole cine is stored (config ``frames: all``)."""
        return self.frames == FRAMES_ALL

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BuildOptions:
        """Options from a validated configuration (or just its contours/checks/qc sections, and
        ``resample``, ``follow_symlinks`` and ``frames`` when they are set; the latter two
        default to the schema's defaults)."""
        checks, qc = config["checks"], config["qc"]
        return cls(
            contour_kinds=tuple(config["contours"]),
            max_pixels=int(checks["max_pixels"]),
            max_mask_fraction=float(checks["max_mask_fraction"]),
            area_outlier_factor=float(checks["area_outlier_factor"]),
            max_i_outside_o=float(checks["max_i_outside_o"]),
            neighbour_area_factor=float(checks["neighbour_area_factor"]),
            window=str(qc["window"]),
            percentiles=tuple(qc["percentiles"]),
            sheet_columns=int(qc["sheet_columns"]),
            resample=ResampleGrid.from_config(config.get("resample")),
            follow_symlinks=bool(config.get("follow_symlinks", FOLLOW_SYMLINKS)),
            frames=str(config.get("frames") or FRAMES_LABELLED),
        )
