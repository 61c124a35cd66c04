"""Export a built version as a MONAI datalist, and the MONAI transforms that load its samples.

``export_monai(version, out)`` writes ``out/datalist.json``, a Decathlon-style datalist that
``monai.data.load_decathlon_datalist`` reads: ``training``, ``validation`` and ``test`` lists
(the version's patient-level splits train, val, test), one item per sample::

    {"image": "../results/1.0.0/slices/SCD0000101/0048.npz",
     "label": "../results/1.0.0/slices/SCD0000101/0048.npz",
     "case": "SCD0000101_s0048", "study_id": "SCD0000101", "slice": 48, "split": "train",
     "spacing_row": 1.367188, "spacing_col": 1.367188}

The paths point at the version's own npz files (nothing is copied), relative to the datalist's
folder, which is where ``load_decathlon_datalist`` resolves them by default. The metadata are
scalars, never lists (MONAI's Auto3DSeg joins its base folder onto every element of a list
value), and never null (PyTorch's collate refuses None): the spacing is always known, as samples
without one are left out, and the slice thickness, unknown for some, is not listed. There is
no ``fold`` key, so Auto3DSeg uses ``validation`` as its one, patient-level, fold instead of
splitting by item, which here would be by slice.

:func:`monai_transforms` returns the transforms that turn an item into arrays: the image
``(1, H, W)`` float32 and the label ``(1, H, W)`` uint8 as MetaTensors whose ``pixdim`` is the
sample's (row, column) spacing in mm, so that ``Spacingd`` and friends work in millimetres.
MONAI's ``NumpyReader`` reads the npz members by name (``allow_pickle`` stays False).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loader.export.cases import LABEL_NAMES, ExportSelection, check_output_folder, select_cases
from loader.files import write_file_atomic
from loader.index import DatasetIndex
from loader.targets import labels_from_masks

__all__ = ["DATALIST_NAME", "MonaiExport", "export_monai", "monai_transforms"]

DATALIST_NAME = "datalist.json"
#: MONAI's datalist keys of the version's splits.
SPLIT_KEYS = {"train": "training", "val": "validation", "test": "test"}


@dataclass(frozen=True)
class MonaiExport:
    """What :func:`export_monai` wrote: the datalist and the selection it lists."""

    datalist: Path
    selection: ExportSelection


def export_monai(
    version_dir: str | Path,
    out: str | Path,
    *,
    labels: str = "auto",
    exclude_flags: str | Iterable[str] | None = None,
    studies: str | Iterable[str] | None = None,
) -> MonaiExport:
    """Write ``out/datalist.json`` for the finished version ``version_dir`` (module docstring).

    ``labels``, ``exclude_flags`` and ``studies`` select the samples as for the nnU-Net export
    (``loader.export.cases``); the samples left out are listed under ``left_out`` with their
    reason. The same version, options and relative placement of ``out`` give the same bytes.

    Raises:
        ValueError: as ``loader.export.cases.select_cases``.
    """
    index = DatasetIndex(version_dir, verify="fast")
    selection = select_cases(index, labels, exclude_flags=exclude_flags, studies=studies)
    out = Path(out)
    check_output_folder(index.root, out)
    out.mkdir(parents=True, exist_ok=True)
    to_version = Path(os.path.relpath(index.root.resolve(), out.resolve())).as_posix()

    def item(case) -> dict:
        path = f"{to_version}/{case.npz}"
        return {
            "image": path,
            "label": path,
            "case": case.case,
            "study_id": case.study_id,
            "slice": case.slice,
            "split": case.split,
            "spacing_row": case.spacing_row,
            "spacing_col": case.spacing_col,
        }

    lists = {key: [item(c) for c in selection.in_split(split)] for split, key in SPLIT_KEYS.items()}
    datalist = {
        "name": f"Sunnybrook LV, lv-dataset version {index.version}",
        "release": index.version,
        "reference": "Radau et al., Sunnybrook Cardiac Data, MIDAS Journal 2009, hdl:10380/3070",
        "licence": "CC0 1.0 (Cardiac Atlas Project, Sunnybrook Cardiac Data)",
        "tensorImageSize": "2D",
        "modality": {"0": "cineMRI"},
        "labels": {str(value): name for name, value in selection.label_names.items()},
        "label_policy": selection.labels,
        "transforms": f'loader.monai_transforms(labels="{selection.labels}")',
        "numTraining": len(lists["training"]),
        "numValidation": len(lists["validation"]),
        "numTest": len(lists["test"]),
        **lists,
        "left_out": [
            {
                "npz": left.npz,
                "study_id": left.study_id,
                "slice": left.slice,
                "split": left.split,
                "reason": left.reason,
            }
            for left in selection.left_out
        ],
    }
    path = out / DATALIST_NAME
    write_file_atomic(path, json.dumps(datalist, indent=1) + "\n")
    return MonaiExport(datalist=path, selection=selection)


def monai_transforms(labels: str = "blood_pool", *, image_key: str = "image",
                     label_key: str = "label"):  # fmt: skip
    """MONAI transforms loading a datalist item's image and label, with their spacing.

    Args:
        labels: the datalist's ``label_policy``: ``"blood_pool"`` (label = the stored ``mask``,
            0/1) or ``"blood_pool_myocardium"`` (0/1/2 from ``mask`` and ``omask`` by the
            loader's rule, ``loader.targets.labels_from_masks``).
        image_key, label_key: the item keys naming the npz file.

    Returns:
        ``monai.transforms.Compose`` of: ``LoadImaged`` of the npz member ``image`` (float32,
        channel first), ``LoadImaged`` of ``mask`` (and ``omask``) (uint8), the labels (for
        ``blood_pool_myocardium``), and the spacing: both get the affine
        ``diag(spacing_row, spacing_col, 1)`` from the item, so ``pixdim`` is
        (row spacing, column spacing) in mm, in the array's axis order. Append your own
        transforms (``Spacingd``, augmentation) after it.

    Example:
        >>> from monai.data import Dataset, load_decathlon_datalist  # doctest: +SKIP
        >>> items = load_decathlon_datalist("export/datalist.json", data_list_key="training")
        >>> data = Dataset(items, transform=loader.monai_transforms("blood_pool_myocardium"))
    """
    from monai.data import NumpyReader  # deferred: MONAI is optional (extra "interop")
    from monai.transforms import Compose, LoadImaged

    if labels not in LABEL_NAMES:
        raise ValueError(f"labels must be one of {', '.join(LABEL_NAMES)}, got {labels!r}")
    members = ["mask", "omask"] if labels == "blood_pool_myocardium" else ["mask"]
    labels_from_masks_d, set_spacing_d = _transform_classes()
    steps = [
        LoadImaged(
            keys=image_key,
            reader=NumpyReader(npz_keys=["image"]),
            image_only=True,
            ensure_channel_first=True,
            dtype=np.float32,
        ),
        LoadImaged(
            keys=label_key,
            reader=NumpyReader(npz_keys=members),
            image_only=True,
            ensure_channel_first=True,
            dtype=np.uint8,
        ),
    ]
    if labels == "blood_pool_myocardium":
        steps.append(labels_from_masks_d(keys=label_key))
    steps.append(set_spacing_d(keys=(image_key, label_key)))
    return Compose(steps)


@functools.cache
def _transform_classes():
    """The two MapTransforms of :func:`monai_transforms`, defined when MONAI is first needed."""
    import torch
    from monai.transforms import MapTransform

    class LabelsFromMasksd(MapTransform):
        """Replace a ``(2, H, W)`` stack of mask and omask by the ``(1, H, W)`` uint8 labels of
        ``loader.targets.labels_from_masks`` (metadata kept)."""

        def __call__(self, data):
            d = dict(data)
            for key in self.key_iterator(d):
                masks = np.asarray(d[key].cpu().numpy(), dtype=bool)
                labels = labels_from_masks(masks[0], masks[1])
                result = d[key][:1].clone()
                result[0] = torch.from_numpy(labels)
                d[key] = result
            return d

    class SetSpacingd(MapTransform):
        """Give 2D MetaTensors the affine ``diag(spacing_row, spacing_col, 1)`` from the
        item's ``spacing_row``/``spacing_col`` (mm), so their ``pixdim`` is the spacing."""

        def __call__(self, data):
            d = dict(data)
            row_mm, col_mm = d.get("spacing_row"), d.get("spacing_col")
            if row_mm is None or col_mm is None:
                raise ValueError(f"item {d.get('case', '?')}: spacing_row/spacing_col unknown")
            # 3 x 3: the affine of 2 spatial dimensions (MONAI takes their number from it)
            spacing = torch.tensor([float(row_mm), float(col_mm), 1.0], dtype=torch.float64)
            affine = torch.diag(spacing)
            for key in self.key_iterator(d):
                d[key].affine = affine.clone()
            return d

    return LabelsFromMasksd, SetSpacingd
