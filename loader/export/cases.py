"""What an export holds: the samples of a version it exports (the user's selection and the label
policy), their case ids and labels, the samples it leaves out and why, and the patient-level
folds. Shared by the nnU-Net and MONAI exports (see ``docs/exports.md``).

Label policy (``labels``):

- ``"blood_pool"``: every selected sample; label 1 inside the i-contour (the stored ``mask``),
  0 elsewhere.
- ``"blood_pool_myocardium"``: the selected samples that have an o-contour; labels 0 background,
  1 blood pool, 2 myocardium, by the loader's rule (``loader.targets.labels_from_masks``). A
  slice with an i-contour only is left out (listed with its reason): its pixels outside the blood
  pool are myocardium or background, unknown, and calling them background would teach a model
  that the myocardium is background on half the slices.
- ``"auto"`` (default): ``"blood_pool_myocardium"`` when a selected sample has an o-contour
  (the version was built with ``contours: [i, o]``), else ``"blood_pool"``.

Samples whose pixel spacing is unknown are left out too: both frameworks resample by spacing,
and a guessed spacing would silently put a slice at another scale.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loader.index import DatasetIndex
from loader.targets import labels_from_masks

__all__ = [
    "LABEL_POLICIES",
    "ExportCase",
    "ExportSelection",
    "LeftOut",
    "check_output_folder",
    "label_array",
    "patient_folds",
    "select_cases",
]

LABEL_POLICIES = ("auto", "blood_pool", "blood_pool_myocardium")
#: Label names and values of each resolved policy (nnU-Net's dataset.json ``labels``).
LABEL_NAMES = {
    "blood_pool": {"background": 0, "blood_pool": 1},
    "blood_pool_myocardium": {"background": 0, "blood_pool": 1, "myocardium": 2},
}
#: Study ids become file names: only these characters, so that none escapes its folder.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class ExportCase:
    """One exported sample.

    Attributes:
        row: its row in index.parquet.
        case: the case id, ``{study_id}_s{slice:04d}`` (starts with the study id; the ``s``
            keeps it from ending in ``_dddd``, which nnU-Net reads as a channel number).
        study_id, slice, split, npz: from the index (npz relative to the version folder).
        spacing_row, spacing_col: mm between the centres of adjacent rows / columns.
    """

    row: int
    case: str
    study_id: str
    slice: int
    split: str
    npz: str
    spacing_row: float
    spacing_col: float


@dataclass(frozen=True)
class LeftOut:
    """A sample of the version that the export leaves out, and why (one line of text)."""

    row: int
    study_id: str
    slice: int
    split: str
    npz: str
    reason: str


@dataclass(frozen=True)
class ExportSelection:
    """The outcome of :func:`select_cases`: the resolved policy, the cases (index order) and the
    samples left out (index order)."""

    labels: str
    cases: tuple[ExportCase, ...]
    left_out: tuple[LeftOut, ...]

    @property
    def label_names(self) -> dict[str, int]:
        return dict(LABEL_NAMES[self.labels])

    def in_split(self, *splits: str) -> list[ExportCase]:
        return [case for case in self.cases if case.split in splits]


def select_cases(
    index: DatasetIndex,
    labels: str = "auto",
    *,
    exclude_flags: str | Iterable[str] | None = None,
    studies: str | Iterable[str] | None = None,
) -> ExportSelection:
    """The samples of ``index`` an export holds, under the label policy (module docstring).

    The selection is the loader's (``DatasetIndex.rows``): ``exclude_flags`` leaves out the
    samples flagged with any of those codes, ``studies`` keeps only those studies. Every sample
    of the version that is not exported is in ``left_out`` with its reason.

    Raises:
        ValueError: unknown policy; ``blood_pool_myocardium`` asked of samples without any
            o-contour; a study id with characters other than letters, digits, ``_`` and ``-``;
            nothing left to export; or the errors of ``DatasetIndex.rows``.
    """
    if labels not in LABEL_POLICIES:
        raise ValueError(f"labels must be one of {', '.join(LABEL_POLICIES)}, got {labels!r}")
    selected = index.rows(studies=studies, exclude_flags=exclude_flags)
    has_omask = index.has_omask if index.has_omask is not None else np.zeros(len(index), dtype=bool)
    if labels == "auto":
        labels = "blood_pool_myocardium" if has_omask[selected].any() else "blood_pool"
    elif labels == "blood_pool_myocardium" and not has_omask[selected].any():
        raise ValueError(
            f"labels 'blood_pool_myocardium' needs samples with an o-contour, and none of the "
            f"{len(selected)} selected samples of {index.root} has one (build the version with "
            "contours: [i, o], or export labels 'blood_pool')"
        )
    reasons: dict[int, str] = {}
    codes = _codes(exclude_flags)
    studies_kept = set(index.study_id[selected].tolist())
    in_selection = np.zeros(len(index), dtype=bool)
    in_selection[selected] = True
    for row in np.flatnonzero(~in_selection).tolist():
        if index.study_id[row] not in studies_kept:
            reasons[row] = "study not selected (--studies)"
        else:
            flagged = sorted(codes & set(filter(None, (index.flags[row] or "").split(","))))
            reasons[row] = f"flag {','.join(flagged)} excluded (--exclude-flags)"
    cases = []
    for row in selected.tolist():
        study_id = str(index.study_id[row])
        if not _SAFE_ID.fullmatch(study_id):
            raise ValueError(
                f"{index.root}: study id {study_id!r} (row {row}) has characters other than "
                "letters, digits, '_' and '-'; it cannot name an exported file"
            )
        spacing = (float(index.pixel_spacing_row[row]), float(index.pixel_spacing_col[row]))
        if labels == "blood_pool_myocardium" and not has_omask[row]:
            reasons[row] = "no o-contour (labels blood_pool_myocardium)"
        elif not all(np.isfinite(spacing)):
            reasons[row] = "pixel spacing unknown"
        else:
            cases.append(
                ExportCase(
                    row=row,
                    case=f"{study_id}_s{int(index.slice[row]):04d}",
                    study_id=study_id,
                    slice=int(index.slice[row]),
                    split=str(index.split[row]),
                    npz=index.npz[row],
                    spacing_row=spacing[0],
                    spacing_col=spacing[1],
                )
            )
    if not cases:
        shown = "; ".join(sorted(set(reasons.values())))
        raise ValueError(f"{index.root}: no sample left to export ({shown})")
    left_out = tuple(
        LeftOut(
            row=row,
            study_id=str(index.study_id[row]),
            slice=int(index.slice[row]),
            split=str(index.split[row]),
            npz=index.npz[row],
            reason=reason,
        )
        for row, reason in sorted(reasons.items())
    )
    return ExportSelection(labels=labels, cases=tuple(cases), left_out=left_out)


def check_output_folder(version_dir: Path, out: Path) -> None:
    """Refuse an export folder inside the version folder: a finished version never changes."""
    version, target = version_dir.resolve(), out.resolve()
    if target == version or version in target.parents:
        raise ValueError(
            f"{out} is inside the version folder {version_dir}: a finished version is never "
            "changed; export elsewhere"
        )


def _codes(exclude_flags: str | Iterable[str] | None) -> set[str]:
    if exclude_flags is None:
        return set()
    return {exclude_flags} if isinstance(exclude_flags, str) else set(exclude_flags)


def label_array(arrays: dict[str, np.ndarray], labels: str) -> np.ndarray:
    """The uint8 label map of a sample's arrays (``loader.sample_file.read_sample``) under a
    resolved policy: the mask as 0/1, or the loader's 0/1/2 labels."""
    if labels == "blood_pool":
        return arrays["mask"].astype(np.uint8)
    return labels_from_masks(arrays["mask"], arrays["omask"])


def patient_folds(study_ids: Sequence[str], folds: int) -> list[tuple[list[str], list[str]]]:
    """Cross-validation folds over studies: (training studies, validation studies) per fold.

    Each study is in the validation part of exactly one fold, and never in both parts of one:
    a patient's slices are never split. The studies are ordered by the sha256 of their id and
    dealt out in turn, so the folds differ by at most one study in size and depend only on the
    set of studies (a version's folds never change, as the version never does). ``folds`` is
    capped at the number of studies; fewer than two studies give no fold.
    """
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    unique = sorted(set(study_ids), key=lambda s: (hashlib.sha256(s.encode()).hexdigest(), s))
    count = min(folds, len(unique))
    if count < 2:
        return []
    parts = [sorted(unique[k::count]) for k in range(count)]
    return [
        (sorted(s for j, part in enumerate(parts) if j != k for s in part), parts[k])
        for k in range(count)
    ]
