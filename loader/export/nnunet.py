"""Export a built version as an nnU-Net v2 raw dataset, with the version's patient-level folds.

Written under ``out`` (the layout nnU-Net reads through its environment variables
``nnUNet_raw`` and ``nnUNet_preprocessed``)::

    out/nnUNet_raw/Dataset{NNN}_{name}/
        dataset.json
        imagesTr/{case}_0000.nii.gz   labelsTr/{case}.nii.gz     # splits train and val
        imagesTs/{case}_0000.nii.gz   labelsTs/{case}.nii.gz     # split test (nnU-Net reads
                                                                  # neither; for evaluation)
        cases.csv                     # every sample of the version: where it went, or why not
    out/nnUNet_preprocessed/Dataset{NNN}_{name}/splits_final.json

Each case is one sample, a single-slice 3D NIfTI written by SimpleITK: the stored image in its
stored dtype (int16, or float32 in resampled versions) and a uint8 label map with the same
geometry (``loader.export.geometry``). ``splits_final.json`` holds patient-level
cross-validation folds over the train and val studies (``loader.export.cases.patient_folds``),
then one more fold: the version's own train/val split. Without this file nnU-Net would split
by case, i.e. by slice, and one patient's slices would land in training and validation.

The same version, options and SimpleITK give the same bytes (SimpleITK's gzip stream carries no
time stamp or file name; the tests check it). The dataset folder is written under a temporary
name and renamed when complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loader.export.cases import (
    ExportSelection,
    check_output_folder,
    label_array,
    patient_folds,
    select_cases,
)
from loader.export.geometry import slice_geometry
from loader.files import write_file_atomic
from loader.index import DatasetIndex
from loader.manifest import bytes_digest
from loader.sample_file import decode_sample
from loader.targets import check_sample

__all__ = ["NnunetExport", "dataset_folder_name", "export_nnunet"]

FILE_ENDING = ".nii.gz"
CHANNEL_NAME = "cineMRI"  # not "CT": nnU-Net z-scores each image, as for its ACDC/M&Ms sets
DEFAULT_DATASET_ID = 501
DEFAULT_FOLDS = 5
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class NnunetExport:
    """What :func:`export_nnunet` wrote: the dataset folder, the splits file, the selection,
    and ``version_fold``, the fold index of the version's own train/val split (None when the
    version has no val or no train studies)."""

    dataset_dir: Path
    splits_file: Path
    selection: ExportSelection
    folds: list[dict[str, list[str]]]
    version_fold: int | None
    default_thickness: int  # cases whose through-plane spacing is the no-thickness default


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``Dataset{NNN}_{name}``, as nnU-Net names dataset folders."""
    return f"Dataset{dataset_id:03d}_{name}"


def export_nnunet(
    version_dir: str | Path,
    out: str | Path,
    *,
    dataset_id: int = DEFAULT_DATASET_ID,
    name: str | None = None,
    labels: str = "auto",
    folds: int = DEFAULT_FOLDS,
    exclude_flags: str | Iterable[str] | None = None,
    studies: str | Iterable[str] | None = None,
) -> NnunetExport:
    """Export the finished version ``version_dir`` as an nnU-Net v2 raw dataset under ``out``.

    Args:
        version_dir: the version folder (checked against its manifest, sizes).
        out: the folder holding ``nnUNet_raw/`` and ``nnUNet_preprocessed/`` (created).
        dataset_id: nnU-Net's dataset number, 1 to 999.
        name: the dataset name; default ``SunnybrookLV_v{version}`` (dots become dashes).
        labels: ``auto``, ``blood_pool`` or ``blood_pool_myocardium``
            (``loader.export.cases``).
        folds: patient-level cross-validation folds (capped at the number of train and val
            studies); the version's own split is the fold after them.
        exclude_flags, studies: the loader's selection (``DatasetIndex.rows``).

    Raises:
        ValueError: a bad option; a dataset with this id already in ``out`` (nnU-Net refuses
            two names for one id, and a finished export is not overwritten); a
            ``splits_final.json`` of another export in the way; no fold possible (fewer than
            two train and val studies and no version split); or nothing to export.
        ImportError: SimpleITK is not installed (``pip install lv-dataset[interop]``).
    """
    import SimpleITK as sitk  # deferred: an optional dependency (extra "interop")

    index = DatasetIndex(version_dir, verify="fast")
    if not 1 <= dataset_id <= 999:
        raise ValueError(f"dataset id must be 1 to 999 (nnU-Net's three digits), got {dataset_id}")
    name = name or "SunnybrookLV_v" + index.version.replace(".", "-")
    if not _NAME.fullmatch(name):
        raise ValueError(f"dataset name {name!r}: use letters, digits, '_' and '-' only")
    folder = dataset_folder_name(dataset_id, name)
    out = Path(out)
    check_output_folder(index.root, out)
    raw_dir, preprocessed_dir = out / "nnUNet_raw", out / "nnUNet_preprocessed"
    _refuse_taken_id(dataset_id, folder, raw_dir, preprocessed_dir)

    selection = select_cases(index, labels, exclude_flags=exclude_flags, studies=studies)
    training = selection.in_split("train", "val")
    if not training:
        raise ValueError(f"{index.root}: no train or val sample to export for nnU-Net training")
    split_file_folds, version_fold = _splits(selection, folds)
    splits_bytes = (json.dumps(split_file_folds, indent=1) + "\n").encode()
    splits_file = preprocessed_dir / folder / "splits_final.json"
    if splits_file.exists() and splits_file.read_bytes() != splits_bytes:
        raise ValueError(
            f"{splits_file} exists and holds other folds (from another export, or edited): "
            "remove it, with the preprocessed data beside it, or choose another --dataset-id"
        )

    raw_dir.mkdir(parents=True, exist_ok=True)
    work = raw_dir / f".{folder}.partial-{os.getpid()}"  # hidden from nnU-Net's listing
    shutil.rmtree(work, ignore_errors=True)  # left by an export killed in this process id
    work.mkdir()
    try:
        rows_written, default_thickness = _write_cases(sitk, index, selection, work)
        dataset_json = _dataset_json(index, selection, len(training), split_file_folds, folds)
        dataset_json["export"]["version_fold"] = version_fold
        write_file_atomic(work / "dataset.json", json.dumps(dataset_json, indent=1) + "\n")
        write_file_atomic(work / "cases.csv", _cases_csv(selection, rows_written, split_file_folds))
        os.replace(work, raw_dir / folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    splits_file.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomic(splits_file, splits_bytes.decode())
    return NnunetExport(
        dataset_dir=raw_dir / folder,
        splits_file=splits_file,
        selection=selection,
        folds=split_file_folds,
        version_fold=version_fold,
        default_thickness=default_thickness,
    )


def _refuse_taken_id(dataset_id: int, folder: str, *parents: Path) -> None:
    prefix = f"Dataset{dataset_id:03d}_"
    for parent in parents:
        if not parent.is_dir():
            continue
        for entry in sorted(parent.iterdir()):
            if not entry.name.startswith(prefix):
                continue
            if entry.name != folder:
                raise ValueError(
                    f"{entry} already uses dataset id {dataset_id} with another name; nnU-Net "
                    "refuses two names for one id: choose another --dataset-id"
                )
            if parent.name == "nnUNet_raw":
                raise ValueError(
                    f"{entry} exists: an export is never overwritten; remove it (and "
                    f"nnUNet_preprocessed/{folder}) or choose another --dataset-id"
                )


def _splits(
    selection: ExportSelection, folds: int
) -> tuple[list[dict[str, list[str]]], int | None]:
    """splits_final.json's list: the cross-validation folds, then the version's own split."""
    training = selection.in_split("train", "val")
    cases_of: dict[str, list[str]] = {}
    for case in training:
        cases_of.setdefault(case.study_id, []).append(case.case)

    def cases(studies: Iterable[str]) -> list[str]:
        return sorted(c for study in studies for c in cases_of[study])

    result = [
        {"train": cases(train), "val": cases(val)}
        for train, val in patient_folds(list(cases_of), folds)
    ]
    version_split = {
        "train": sorted(c.case for c in training if c.split == "train"),
        "val": sorted(c.case for c in training if c.split == "val"),
    }
    version_fold = None
    if version_split["train"] and version_split["val"]:
        version_fold = len(result)
        result.append(version_split)
    if not result:
        raise ValueError(
            "no patient-level fold is possible: the exported train and val samples come from "
            f"{len(cases_of)} study, and the version has no val split; nnU-Net would fall back "
            "to a split by slice"
        )
    return result, version_fold


def _write_cases(sitk, index: DatasetIndex, selection: ExportSelection, work: Path):
    """Write every case's image and label; returns {row: sha256 of its npz} and the number of
    cases given the default through-plane spacing."""
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (work / sub).mkdir()
    digests, default_thickness = {}, 0
    for case in selection.cases:
        path = index.path(case.row)
        data = path.read_bytes()
        digests[case.row] = bytes_digest(data)["sha256"]
        arrays = decode_sample(data, source=str(path))
        targets = ("mask", "omask") if selection.labels == "blood_pool_myocardium" else ("mask",)
        shape = (int(index.height[case.row]), int(index.width[case.row]))
        check_sample(arrays, str(path), shape, np.dtype(index.image_dtype[case.row]), targets)
        geometry = slice_geometry(index, case.row)
        default_thickness += not geometry.thickness_known
        image = sitk.GetImageFromArray(np.ascontiguousarray(arrays["image"])[None])
        image.SetSpacing(geometry.spacing)
        image.SetOrigin(geometry.origin)
        image.SetDirection(geometry.direction)
        label = sitk.GetImageFromArray(label_array(arrays, selection.labels)[None])
        label.CopyInformation(image)
        images, labels = (
            ("imagesTs", "labelsTs") if case.split == "test" else ("imagesTr", "labelsTr")
        )
        sitk.WriteImage(image, str(work / images / f"{case.case}_0000{FILE_ENDING}"), True)
        sitk.WriteImage(label, str(work / labels / f"{case.case}{FILE_ENDING}"), True)
    return digests, default_thickness


def _dataset_json(
    index: DatasetIndex,
    selection: ExportSelection,
    training: int,
    split_folds: list[dict[str, list[str]]],
    folds: int,
) -> dict:
    """nnU-Net's dataset.json: its four required keys and the reader, then free keys (nnU-Net
    ignores them) saying where the data came from and how it was exported."""
    return {
        "channel_names": {"0": CHANNEL_NAME},
        "labels": selection.label_names,
        "numTraining": training,
        "file_ending": FILE_ENDING,
        "overwrite_image_reader_writer": "SimpleITKIO",
        "name": f"Sunnybrook LV, lv-dataset version {index.version}",
        "description": (
            "2D short-axis cine MRI slices with their left-ventricle contours, one case per "
            "slice, exported by lv-dataset; splits_final.json in nnUNet_preprocessed holds "
            "patient-level folds"
        ),
        "reference": "Radau et al., Sunnybrook Cardiac Data, MIDAS Journal 2009, hdl:10380/3070",
        "licence": "CC0 1.0 (Cardiac Atlas Project, Sunnybrook Cardiac Data)",
        "release": index.version,
        "export": {
            "labels": selection.labels,
            "cases": {
                "imagesTr": training,
                "imagesTs": len(selection.in_split("test")),
                "left_out": len(selection.left_out),
            },
            "folds_asked": folds,
            "folds": len(split_folds),
        },
    }


def _cases_csv(
    selection: ExportSelection, digests: dict[int, str], split_folds: list[dict[str, list[str]]]
) -> str:
    """One line per sample of the version: case, where it went (or why it was left out), and
    the sha256 of its npz file (the exact input of the case)."""
    validated_in: dict[str, list[int]] = {}
    for number, fold in enumerate(split_folds):
        for case in fold["val"]:
            validated_in.setdefault(case, []).append(number)
    lines = []
    for case in selection.cases:
        folder = "imagesTs" if case.split == "test" else "imagesTr"
        folds = " ".join(str(n) for n in validated_in.get(case.case, []))
        lines.append(
            (case.row, case.case, case.study_id, case.slice, case.split, folder, folds,
             case.npz, digests[case.row], "")
        )  # fmt: skip
    for left in selection.left_out:
        lines.append(
            (left.row, "", left.study_id, left.slice, left.split, "", "", left.npz, "",
             left.reason)
        )  # fmt: skip
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(
        ("row", "case", "study_id", "slice", "split", "exported_to", "val_in_folds", "npz",
         "npz_sha256", "left_out_because")
    )  # fmt: skip
    writer.writerows(sorted(lines))
    return text.getvalue()
